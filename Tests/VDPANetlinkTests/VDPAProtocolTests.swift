import Testing
import VirtioModel
@testable import VDPANetlink

@Suite struct VDPARequestEncodingTests {
    /// `vdpa dev add name vdpa0 mgmtdev vdpasim_net mac 00:11:22:33:44:55 mtu 1400 max_vqp 2 device_features 0x300000028`
    /// as iproute2 encodes it (mnl_attr_put_strz, 6-byte MAC, u16 MTU and max_vqp, u64 features).
    @Test func deviceNewMatchesIproute2Layout() throws {
        let request = DeviceCreateRequest(
            name: "vdpa0", managementDevice: ManagementDeviceHandle(bus: nil, name: "vdpasim_net"),
            macAddress: MACAddress("00:11:22:33:44:55"), mtu: 1400, maxVirtqueuePairs: 2,
            deviceFeatures: VirtioFeatures(rawValue: 0x3_0000_0028))
        let message = try GenericNetlinkSocket.encode(familyID: 0x1b, command: VDPACommand.deviceNew.rawValue, flags: 0x4,
                                                      attributes: NetlinkVDPAClient.createAttributes(request))
        let attributes = NetlinkBytes.string(4, "vdpa0") + NetlinkBytes.string(2, "vdpasim_net")
            + NetlinkBytes.attribute(10, [0x00, 0x11, 0x22, 0x33, 0x44, 0x55]) + NetlinkBytes.u16(13, 1400)
            + NetlinkBytes.u16(12, 2) + NetlinkBytes.u64(20, 0x3_0000_0028)
        let genl: [UInt8] = [VDPACommand.deviceNew.rawValue, 1, 0, 0]
        let header = NetlinkBytes.le(UInt32(16 + genl.count + attributes.count)) + NetlinkBytes.le(UInt16(0x1b))
            + NetlinkBytes.le(UInt16(0x4)) + NetlinkBytes.le(UInt32(0)) + NetlinkBytes.le(UInt32(0))
        #expect(message.bytes == header + genl + attributes)
    }

    @Test func busHandleAddsTheBusAttributeFirst() {
        let attributes = NetlinkVDPAClient.handleAttributes(ManagementDeviceHandle(bus: "pci", name: "0000:41:00.2"))
        #expect(attributes.map(\.type) == [1, 2])
    }
}

@Suite struct VDPAReplyDecoderTests {
    @Test func managementDeviceAsVdpasimNetReportsIt() throws {
        let bytes = NetlinkBytes.string(2, "vdpasim_net") + NetlinkBytes.u64(3, 1 << 1) + NetlinkBytes.u32(15, 3)
            + NetlinkBytes.u64(16, 0x3_0883_0028)
        let device = try VDPAReplyDecoder.managementDevice(try NetlinkAttributeSet(parsing: bytes))
        #expect(device.handle == ManagementDeviceHandle(bus: nil, name: "vdpasim_net"))
        #expect(device.supportedClasses == [.network])
        #expect(device.maxSupportedVirtqueues == 3)
        #expect(device.supportedFeatures?.names(for: .network) == ["MTU", "MAC", "STATUS", "CTRL_VQ", "CTRL_MAC_ADDR", "ANY_LAYOUT", "VERSION_1", "ACCESS_PLATFORM"])
    }

    @Test func deviceReply() throws {
        let bytes = NetlinkBytes.string(2, "vdpasim_net") + NetlinkBytes.string(4, "vdpa0") + NetlinkBytes.u32(5, 1)
            + NetlinkBytes.u32(6, 0) + NetlinkBytes.u32(7, 3) + NetlinkBytes.u16(8, 256) + NetlinkBytes.u16(9, 1)
        let device = try VDPAReplyDecoder.device(try NetlinkAttributeSet(parsing: bytes))
        #expect(device == VDPADeviceInfo(name: "vdpa0", managementDevice: .init(bus: nil, name: "vdpasim_net"), deviceType: .network,
                                         vendorID: 0, maxVirtqueues: 3, maxVirtqueueSize: 256, minVirtqueueSize: 1))
    }

    @Test func netConfigWithU16Status() throws {
        let bytes = NetlinkBytes.string(4, "vdpa0") + NetlinkBytes.u32(5, 1) + NetlinkBytes.u64(14, 0x3_0083_0028)
            + NetlinkBytes.u64(20, 0x3_0883_0028) + NetlinkBytes.u16(13, 1400)
            + NetlinkBytes.attribute(10, [0, 0x11, 0x22, 0x33, 0x44, 0x55]) + NetlinkBytes.u16(11, 1)
        let config = try VDPAReplyDecoder.config(try NetlinkAttributeSet(parsing: bytes))
        #expect(config.net == NetDeviceConfig(macAddress: MACAddress("00:11:22:33:44:55"), status: 1, maxVirtqueuePairs: nil, mtu: 1400))
        #expect(config.negotiatedFeatures == VirtioFeatures(rawValue: 0x3_0083_0028))
    }

    @Test func blockConfig() throws {
        let bytes = NetlinkBytes.string(4, "blk0") + NetlinkBytes.u32(5, 2) + NetlinkBytes.u64(21, 262_144)
            + NetlinkBytes.u32(23, 512) + NetlinkBytes.attribute(35, [0]) + NetlinkBytes.attribute(36, [1])
        let config = try VDPAReplyDecoder.config(try NetlinkAttributeSet(parsing: bytes))
        #expect(config.block?.capacity == 262_144)
        #expect(config.block?.blockSize == 512)
        #expect(config.block?.readOnly == false)
        #expect(config.block?.flush == true)
    }

    @Test func vendorStatisticsKeepPairsInOrder() throws {
        let bytes = NetlinkBytes.string(4, "vdpa0") + NetlinkBytes.u32(5, 1) + NetlinkBytes.u32(17, 1)
            + NetlinkBytes.string(18, "tx packets") + NetlinkBytes.u64(19, 8) + NetlinkBytes.string(18, "tx bytes") + NetlinkBytes.u64(19, 648)
        let stats = try VDPAReplyDecoder.vendorStatistics(try NetlinkAttributeSet(parsing: bytes))
        #expect(stats.statistics == [VendorStatistic(name: "tx packets", value: 8), VendorStatistic(name: "tx bytes", value: 648)])
        #expect(stats.queueIndex == 1)
    }

    @Test func missingNameIsAnErrorNamingTheAttribute() throws {
        let set = try NetlinkAttributeSet(parsing: NetlinkBytes.u32(5, 1))
        #expect(throws: NetlinkAttributeError.missing(attribute: "VDPA_ATTR_DEV_NAME")) { try VDPAReplyDecoder.device(set) }
    }

    @Test func shortMACIsRejected() throws {
        let set = try NetlinkAttributeSet(parsing: NetlinkBytes.string(4, "v") + NetlinkBytes.u32(5, 1) + NetlinkBytes.attribute(10, [1, 2]))
        #expect(throws: NetlinkAttributeError.self) { try VDPAReplyDecoder.config(set) }
    }
}

@Suite struct UeventTests {
    @Test func parsesAVdpaAddEvent() throws {
        let text = "add@/devices/vdpasim_net/vdpa0\0ACTION=add\0DEVPATH=/devices/vdpasim_net/vdpa0\0SUBSYSTEM=vdpa\0SEQNUM=1234\0"
        let event = try #require(Uevent(datagram: Array(text.utf8)))
        #expect(event.action == "add")
        #expect(event.subsystem == "vdpa")
        #expect(event.vdpaDeviceName == "vdpa0")
        #expect(event.concernsVDPABus)
    }

    @Test func vhostCharDeviceNamesItsParent() throws {
        let text = "add@/devices/vdpasim_net/vdpa0/vhost-vdpa-0\0SUBSYSTEM=vhost-vdpa\0"
        #expect(Uevent(datagram: Array(text.utf8))?.vdpaDeviceName == "vdpa0")
    }

    @Test(arguments: ["libudev\0junk", "", "noat\0SUBSYSTEM=vdpa", "add@relative\0"])
    func rejectsWhatIsNotAKernelUevent(_ text: String) {
        #expect(Uevent(datagram: Array(text.utf8)) == nil)
    }

    @Test func ignoresOtherSubsystems() throws {
        let event = try #require(Uevent(datagram: Array("add@/devices/virtual/net/tap0\0SUBSYSTEM=net\0".utf8)))
        #expect(!event.concernsVDPABus)
    }
}

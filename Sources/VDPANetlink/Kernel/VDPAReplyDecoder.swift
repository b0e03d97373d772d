import VirtioModel

/// Turns the attribute sets of `vdpa` family replies into models.
///
/// Input is untrusted kernel bytes: every size is checked and a malformed reply
/// is an error naming the attribute, never a crash (fuzzed by `fuzz-netlink`).
public enum VDPAReplyDecoder {
    public static func managementDevice(_ attributes: NetlinkAttributeSet) throws(NetlinkAttributeError) -> ManagementDevice {
        let name = try attributes.required(attributes.string(.managementDeviceName), .managementDeviceName)
        let classes = try attributes.u64(.managementSupportedClasses) ?? 0
        return ManagementDevice(
            handle: ManagementDeviceHandle(bus: try attributes.string(.managementBusName), name: name),
            supportedClasses: VirtioDeviceType.classes(inBitmap: classes),
            maxSupportedVirtqueues: try attributes.u32(.managementMaxVirtqueues),
            supportedFeatures: try attributes.u64(.supportedFeatures).map(VirtioFeatures.init(rawValue:))
        )
    }

    public static func device(_ attributes: NetlinkAttributeSet) throws(NetlinkAttributeError) -> VDPADeviceInfo {
        VDPADeviceInfo(
            name: try attributes.required(attributes.string(.deviceName), .deviceName),
            managementDevice: ManagementDeviceHandle(
                bus: try attributes.string(.managementBusName),
                name: try attributes.required(attributes.string(.managementDeviceName), .managementDeviceName)
            ),
            deviceType: VirtioDeviceType(rawValue: try attributes.required(attributes.u32(.deviceID), .deviceID)),
            vendorID: try attributes.u32(.vendorID) ?? 0,
            maxVirtqueues: try attributes.u32(.maxVirtqueues) ?? 0,
            maxVirtqueueSize: try attributes.u16(.maxVirtqueueSize) ?? 0,
            minVirtqueueSize: try attributes.u16(.minVirtqueueSize)
        )
    }

    public static func config(_ attributes: NetlinkAttributeSet) throws(NetlinkAttributeError) -> DeviceConfig {
        let deviceType = VirtioDeviceType(rawValue: try attributes.required(attributes.u32(.deviceID), .deviceID))
        var config = DeviceConfig(
            name: try attributes.required(attributes.string(.deviceName), .deviceName),
            deviceType: deviceType,
            deviceFeatures: try attributes.u64(.deviceFeatures).map(VirtioFeatures.init(rawValue:)),
            negotiatedFeatures: try attributes.u64(.negotiatedFeatures).map(VirtioFeatures.init(rawValue:))
        )
        switch deviceType {
        case .network:
            var net = NetDeviceConfig()
            if let bytes = attributes.binary(VDPAAttribute.netMACAddress.rawValue) {
                guard let mac = MACAddress(bytes: bytes) else {
                    throw .wrongSize(attribute: VDPAAttribute.netMACAddress.uapiName, expected: "6", actual: bytes.count)
                }
                net.macAddress = mac
            }
            net.status = try attributes.u8OrU16(VDPAAttribute.netStatus.rawValue, VDPAAttribute.netStatus.uapiName)
            net.maxVirtqueuePairs = try attributes.u16(.netMaxVirtqueuePairs)
            net.mtu = try attributes.u16(.netMTU)
            config.net = net
        case .block:
            var block = BlockDeviceConfig()
            block.capacity = try attributes.u64(.blockCapacity)
            block.sizeMax = try attributes.u32(.blockSizeMax)
            block.blockSize = try attributes.u32(.blockBlockSize)
            block.segmentMax = try attributes.u32(.blockSegmentMax)
            block.numQueues = try attributes.u16(.blockNumQueues)
            block.physicalBlockExponent = try attributes.u8(.blockPhysicalBlockExponent)
            block.alignmentOffset = try attributes.u8(.blockAlignmentOffset)
            block.minIOSize = try attributes.u16(.blockMinIOSize)
            block.optimalIOSize = try attributes.u32(.blockOptimalIOSize)
            block.maxDiscardSectors = try attributes.u32(.blockMaxDiscardSectors)
            block.maxDiscardSegments = try attributes.u32(.blockMaxDiscardSegments)
            block.discardSectorAlignment = try attributes.u32(.blockDiscardSectorAlignment)
            block.maxWriteZeroesSectors = try attributes.u32(.blockMaxWriteZeroesSectors)
            block.maxWriteZeroesSegments = try attributes.u32(.blockMaxWriteZeroesSegments)
            block.readOnly = try attributes.u8(.blockReadOnly).map { $0 != 0 }
            block.flush = try attributes.u8(.blockFlush).map { $0 != 0 }
            config.block = block
        default:
            break
        }
        return config
    }

    public static func vendorStatistics(_ attributes: NetlinkAttributeSet) throws(NetlinkAttributeError) -> VendorStatistics {
        var statistics: [VendorStatistic] = []
        var pendingName: String?
        for attribute in attributes.attributes {
            switch attribute.type {
            case VDPAAttribute.vendorAttributeName.rawValue:
                pendingName = try NetlinkAttributeSet.string(attribute, VDPAAttribute.vendorAttributeName.uapiName)
            case VDPAAttribute.vendorAttributeValue.rawValue:
                let value = try NetlinkAttributeSet.u64(attribute, VDPAAttribute.vendorAttributeValue.uapiName)
                if let name = pendingName {
                    statistics.append(VendorStatistic(name: name, value: value))
                    pendingName = nil
                }
            default:
                continue
            }
        }
        return VendorStatistics(
            name: try attributes.required(attributes.string(.deviceName), .deviceName),
            deviceType: VirtioDeviceType(rawValue: try attributes.required(attributes.u32(.deviceID), .deviceID)),
            queueIndex: try attributes.required(attributes.u32(.queueIndex), .queueIndex),
            negotiatedFeatures: try attributes.u64(.negotiatedFeatures).map(VirtioFeatures.init(rawValue:)),
            maxVirtqueuePairs: try attributes.u16(.netMaxVirtqueuePairs),
            statistics: statistics
        )
    }
}

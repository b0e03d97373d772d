import Foundation
import Testing
import VDPANetlink
import VDPASystem
import VirtioModel

/// All lab tests share one kernel: they run one at a time, each from an empty vdpa bus.
@Suite(.serialized, .enabled(if: Lab.isEnabled, "kernel lab only (Tests/Lab/lab.sh; VDPAD_LAB=1)"))
struct LabTests {}

extension LabTests {
    /// The netlink client and sysfs side against the real 6.12 `vdpa` family.
    @Suite(.serialized) struct KernelInterface {
        let kernel = Lab.kernel()
        /// vdpasim_net's device features: MTU MAC STATUS CTRL_VQ CTRL_MAC_ADDR ANY_LAYOUT VERSION_1 ACCESS_PLATFORM.
        static let simulatorNetFeatures = VirtioFeatures(rawValue: 0x3_0883_0028)

        init() async throws { try await Lab.removeAllDevices() }

        @Test func familyIsAvailable() async {
            #expect(await kernel.familyStatus().isAvailable)
        }

        @Test func managementDevicesAreTheSimulatorsAndVDUSE() async throws {
            let devices = try await kernel.managementDevices()
            #expect(Set(devices.map(\.handle.description)).isSuperset(of: ["vdpasim_net", "vdpasim_blk", "vduse"]))
            let net = try #require(devices.first { $0.handle.name == "vdpasim_net" })
            #expect(net.supportedClasses == [.network])
            #expect(net.supportedFeatures == Self.simulatorNetFeatures)
            #expect(net.maxSupportedVirtqueues == 3)
            let vduse = try #require(devices.first { $0.handle.name == "vduse" })
            #expect(Set(vduse.supportedClasses) == [.network, .block])
            // The same as iproute2 reads.
            let iproute2 = try #require(try await Lab.vdpaJSON("mgmtdev", "show") as? [String: Any])
            let entries = try #require(iproute2["mgmtdev"] as? [String: Any])
            #expect(Set(entries.keys) == Set(devices.map(\.handle.description)))
            let iproute2Net = try #require(entries["vdpasim_net"] as? [String: Any])
            #expect(iproute2Net["dev_features"] as? [String] == Self.simulatorNetFeatures.names(for: .network))
            // One handle on its own.
            #expect(try await kernel.managementDevice(net.handle) == net)
        }

        @Test func addWithMACAndMTU() async throws {
            let mac = try #require(MACAddress("52:54:00:12:34:56"))
            try await kernel.createDevice(DeviceCreateRequest(name: "lab0", managementDevice: .init(bus: nil, name: "vdpasim_net"), macAddress: mac, mtu: 1400))
            let device = try await kernel.device(named: "lab0")
            #expect(device.deviceType == .network)
            #expect(device.managementDevice.name == "vdpasim_net")
            let config = try await kernel.deviceConfig(named: "lab0")
            #expect(config.net?.macAddress == mac)
            #expect(config.net?.mtu == 1400)
            let iproute2 = try #require(try await Lab.vdpaJSON("dev", "config", "show", "lab0") as? [String: Any])
            let entry = try #require((iproute2["config"] as? [String: Any])?["lab0"] as? [String: Any])
            #expect(entry["mac"] as? String == "52:54:00:12:34:56")
            #expect(entry["mtu"] as? Int == 1400)
            // The vhost-vdpa character device and the driver, from sysfs.
            let binding = try await kernel.binding(ofDevice: "lab0")
            #expect(binding.driver == .vhostVDPA)
            let node = try #require(binding.vhostDevicePath)
            #expect(FileManager.default.fileExists(atPath: node))
            try await kernel.deleteDevice(named: "lab0")
        }

        @Test func provisionedFeaturesAreWhatTheKernelsVirtioDriverNegotiates() async throws {
            let provisioned: VirtioFeatures = [.version1, .accessPlatform, .Net.mac, .Net.mtu]
            try await kernel.createDevice(DeviceCreateRequest(name: "lab1", managementDevice: .init(bus: nil, name: "vdpasim_net"), deviceFeatures: provisioned))
            #expect(try await kernel.deviceConfig(named: "lab1").deviceFeatures == provisioned)
            try await kernel.bind(device: "lab1", to: .virtioVDPA)
            let binding = try await kernel.binding(ofDevice: "lab1")
            #expect(binding.driver == .virtioVDPA)
            let virtio = try #require(binding.virtioDevice)
            let negotiatedBySysfs = try Lab.virtioDriverFeatures(of: virtio)
            // Linux's virtio_net takes every bit offered here; nothing outside the provisioned set.
            #expect(negotiatedBySysfs == provisioned)
            #expect(try await kernel.deviceConfig(named: "lab1").negotiatedFeatures == negotiatedBySysfs)
            #expect(!binding.netdevs.isEmpty)
            try await kernel.deleteDevice(named: "lab1")
        }

        @Test func maxVirtqueuePairsOnTheSimulatorIsRefusedWithTheKernelsReason() async throws {
            let error = await #expect(throws: VDPAError.self) {
                try await kernel.createDevice(DeviceCreateRequest(name: "lab2", managementDevice: .init(bus: nil, name: "vdpasim_net"), maxVirtqueuePairs: 2))
            }
            #expect(error?.errno == ErrnoCode.notSupported)
            #expect(error?.extack?.contains("Some provided attributes are not supported") == true)
            #expect(try await kernel.devices().isEmpty)
        }

        @Test func unknownManagementDeviceAndDuplicateName() async throws {
            let unknown = await #expect(throws: VDPAError.self) {
                try await kernel.createDevice(DeviceCreateRequest(name: "lab3", managementDevice: .init(bus: nil, name: "nosuch")))
            }
            #expect(unknown?.errno == ErrnoCode.noSuchDevice)
            #expect(unknown?.extack?.hasSuffix("Fail to find the specified management device") == true)
            try await kernel.createDevice(DeviceCreateRequest(name: "lab3", managementDevice: .init(bus: nil, name: "vdpasim_net")))
            let duplicate = await #expect(throws: VDPAError.self) {
                try await kernel.createDevice(DeviceCreateRequest(name: "lab3", managementDevice: .init(bus: nil, name: "vdpasim_net")))
            }
            #expect(duplicate?.errno == ErrnoCode.fileExists)
            try await kernel.deleteDevice(named: "lab3")
            let gone = await #expect(throws: VDPAError.self) { try await kernel.device(named: "lab3") }
            #expect(gone?.errno == ErrnoCode.noSuchDevice)
        }

        @Test func macAddressChange() async throws {
            try await kernel.createDevice(DeviceCreateRequest(name: "lab4", managementDevice: .init(bus: nil, name: "vdpasim_net")))
            let mac = try #require(MACAddress("02:00:00:00:aa:01"))
            try await kernel.setMACAddress(device: "lab4", to: mac)
            #expect(try await kernel.deviceConfig(named: "lab4").net?.macAddress == mac)
            try await kernel.deleteDevice(named: "lab4")
        }

        @Test func blockDeviceConfig() async throws {
            try await kernel.createDevice(DeviceCreateRequest(name: "lab5", managementDevice: .init(bus: nil, name: "vdpasim_blk")))
            let config = try await kernel.deviceConfig(named: "lab5")
            #expect(config.deviceType == .block)
            let block = try #require(config.block)
            #expect(block.capacity == 0x40000)  // VDPASIM_BLK_CAPACITY, in 512-byte sectors
            #expect(block.blockSize == 512)
            // Cross-check with the kernel's own virtio_blk driver (iproute2 6.1 prints no block config).
            try await kernel.bind(device: "lab5", to: .virtioVDPA)
            let disk = try #require(try await kernel.binding(ofDevice: "lab5").blockDevices.first)
            let sectors = try String(contentsOfFile: "/sys/block/\(disk)/size", encoding: .utf8)
            #expect(UInt64(sectors.trimmingCharacters(in: .whitespacesAndNewlines)) == block.capacity)
            try await kernel.deleteDevice(named: "lab5")
        }

        @Test func vendorStatisticsOnceTheDriverIsBound() async throws {
            try await kernel.createDevice(DeviceCreateRequest(name: "lab6", managementDevice: .init(bus: nil, name: "vdpasim_net")))
            // Bound to vhost_vdpa with nobody using it, the device never reached FEATURES_OK.
            let early = await #expect(throws: VDPAError.self) { try await kernel.vendorStatistics(device: "lab6", queueIndex: 0) }
            #expect(early?.errno == ErrnoCode.tryAgain)
            try await kernel.bind(device: "lab6", to: .virtioVDPA)
            let statistics = try await kernel.vendorStatistics(device: "lab6", queueIndex: 0)
            #expect(statistics.queueIndex == 0)
            #expect(!statistics.statistics.isEmpty)
            #expect(statistics.negotiatedFeatures?.contains(.version1) == true)
            try await kernel.deleteDevice(named: "lab6")
        }

        @Test func ueventsReportDevicesMadeByOthers() async throws {
            let changes = kernel.busChanges()
            try await Task.sleep(for: .milliseconds(200))
            let output = try await Lab.vdpa("dev", "add", "name", "lab7", "mgmtdev", "vdpasim_net")
            #expect(output.status == 0, "\(output)")
            var seen: [BusChangeNotification] = []
            let waiter = Task {
                for await change in changes {
                    seen.append(change)
                    if change.deviceName == "lab7" && change.action == "add" { break }
                }
                return seen
            }
            let timeout = Task { try await Task.sleep(for: .seconds(10)); waiter.cancel() }
            let notifications = await waiter.value
            timeout.cancel()
            #expect(notifications.contains { $0.deviceName == "lab7" && $0.action == "add" && $0.subsystem == "vdpa" })
            try await kernel.deleteDevice(named: "lab7")
        }
    }
}

import Foundation
import Testing
@testable import VDPANetlink

/// VDPASysfs against a directory tree laid out as Linux's sysfs lays out the vdpa bus.
@Suite struct VDPASysfsTests {
    let root: String

    init() throws {
        root = NSTemporaryDirectory() + "/vdpad-sysfs-\(UUID().uuidString.prefix(8))"
        let fm = FileManager.default
        for driver in ["vhost_vdpa", "virtio_vdpa"] {
            try fm.createDirectory(atPath: "\(root)/bus/vdpa/drivers/\(driver)", withIntermediateDirectories: true)
            for file in ["bind", "unbind"] { fm.createFile(atPath: "\(root)/bus/vdpa/drivers/\(driver)/\(file)", contents: nil) }
        }
        try fm.createDirectory(atPath: "\(root)/bus/vdpa/devices/vdpa0/vhost-vdpa-3", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: "\(root)/bus/vdpa/devices/vdpa0/driver", withDestinationPath: "../../../../bus/vdpa/drivers/vhost_vdpa")
        try fm.createDirectory(atPath: "\(root)/bus/vdpa/devices/vdpa1/virtio2/net/eth0", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: "\(root)/bus/vdpa/devices/vdpa1/driver", withDestinationPath: "../../../../bus/vdpa/drivers/virtio_vdpa")
        try fm.createDirectory(atPath: "\(root)/bus/vdpa/devices/blk0/virtio3/block/vda", withIntermediateDirectories: true)
    }

    /// A device name from a request is one entry of the bus's directory: "vdpa1/../vdpa0"
    /// does not reach vdpa0's files (nor its vhost-vdpa node).
    @Test func namesThatAreNotOneEntryAreNoSuchDevice() throws {
        let sysfs = VDPASysfs(root: root)
        #expect(try sysfs.binding(of: "vdpa0").vhostDevicePath == "/dev/vhost-vdpa-3")
        for name in ["vdpa1/../vdpa0", "../devices/vdpa0", "..", ".", "", "vdpa0\u{0}"] {
            #expect(throws: VDPAError.self, "\(name)") { try sysfs.binding(of: name) }
            #expect(throws: VDPAError.self, "\(name)") { try sysfs.bind(name, to: .vhostVDPA) }
        }
    }

    @Test func readsTheParentDriverAndPCIIDsOfAManagementDevice() throws {
        let fm = FileManager.default
        // A PCI function with its driver, and an auxiliary sub-function under it.
        let function = "\(root)/devices/pci0000:00/0000:00:02.0/0000:41:00.2"
        try fm.createDirectory(atPath: function + "/mlx5_core.sf.2", withIntermediateDirectories: true)
        for (file, value) in [("vendor", "0x15b3"), ("device", "0x101e"), ("subsystem_vendor", "0x15b3"), ("subsystem_device", "0x0051")] {
            try (value + "\n").write(toFile: function + "/" + file, atomically: true, encoding: .utf8)
        }
        try fm.createDirectory(atPath: "\(root)/bus/pci/drivers/mlx5_core", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: "\(root)/bus/auxiliary/drivers/mlx5_core.sf", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: function + "/driver", withDestinationPath: "../../../../bus/pci/drivers/mlx5_core")
        try fm.createSymbolicLink(atPath: function + "/mlx5_core.sf.2/driver", withDestinationPath: "../../../../../bus/auxiliary/drivers/mlx5_core.sf")
        try fm.createDirectory(atPath: "\(root)/bus/pci/devices", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: "\(root)/bus/auxiliary/devices", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: "\(root)/bus/pci/devices/0000:41:00.2", withDestinationPath: "../../../devices/pci0000:00/0000:00:02.0/0000:41:00.2")
        try fm.createSymbolicLink(atPath: "\(root)/bus/auxiliary/devices/mlx5_core.sf.2", withDestinationPath: "../../../devices/pci0000:00/0000:00:02.0/0000:41:00.2/mlx5_core.sf.2")

        let sysfs = VDPASysfs(root: root)
        #expect(sysfs.parentDevice(of: ManagementDeviceHandle(bus: "pci", name: "0000:41:00.2"))
            == ManagementDeviceParent(driver: "mlx5_core", pciVendor: 0x15b3, pciDevice: 0x101e, pciSubsystemVendor: 0x15b3, pciSubsystemDevice: 0x0051))
        #expect(sysfs.parentDevice(of: ManagementDeviceHandle(bus: "auxiliary", name: "mlx5_core.sf.2"))
            == ManagementDeviceParent(driver: "mlx5_core.sf", pciVendor: 0x15b3, pciDevice: 0x101e, pciSubsystemVendor: 0x15b3, pciSubsystemDevice: 0x0051))
        // A simulator has no bus: nothing is known.
        #expect(sysfs.parentDevice(of: ManagementDeviceHandle(bus: nil, name: "vdpasim_net")) == ManagementDeviceParent())
        #expect(sysfs.parentDevice(of: ManagementDeviceHandle(bus: "pci", name: "0000:99:00.0")) == ManagementDeviceParent())
    }

    @Test func readsTheVhostBinding() throws {
        let binding = try VDPASysfs(root: root).binding(of: "vdpa0")
        #expect(binding == DeviceBinding(driver: .vhostVDPA, vhostDevicePath: "/dev/vhost-vdpa-3"))
    }

    @Test func readsTheVirtioBindingAndNetdev() throws {
        let binding = try VDPASysfs(root: root).binding(of: "vdpa1")
        #expect(binding == DeviceBinding(driver: .virtioVDPA, virtioDevice: "virtio2", netdevs: ["eth0"]))
        #expect(try VDPASysfs(root: root).binding(of: "blk0").blockDevices == ["vda"])
    }

    @Test func unboundDeviceHasNoDriver() throws {
        #expect(try VDPASysfs(root: root).binding(of: "blk0").driver == nil)
    }

    @Test func listsDevicesAndDrivers() throws {
        let sysfs = VDPASysfs(root: root)
        #expect(try sysfs.deviceNames() == ["blk0", "vdpa0", "vdpa1"])
        #expect(sysfs.availableDrivers() == [.vhostVDPA, .virtioVDPA])
    }

    @Test func rebindingWritesUnbindThenBind() throws {
        try VDPASysfs(root: root).bind("vdpa0", to: .virtioVDPA)
        #expect(try String(contentsOfFile: "\(root)/bus/vdpa/drivers/vhost_vdpa/unbind", encoding: .utf8) == "vdpa0")
        #expect(try String(contentsOfFile: "\(root)/bus/vdpa/drivers/virtio_vdpa/bind", encoding: .utf8) == "vdpa0")
    }

    @Test func bindingToAnUnloadedDriverIsRefused() {
        #expect(throws: VDPAError.driverUnavailable(BusDriver(rawValue: "mlx5_vnet"))) {
            try VDPASysfs(root: root).bind("vdpa0", to: BusDriver(rawValue: "mlx5_vnet"))
        }
    }

    @Test func missingDeviceIsENODEV() {
        #expect(throws: VDPAError.self) { try VDPASysfs(root: root).binding(of: "nope") }
    }

    @Test func missingBusListsNothing() throws {
        #expect(try VDPASysfs(root: root + "/nonexistent").deviceNames() == [])
    }
}

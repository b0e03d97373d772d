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

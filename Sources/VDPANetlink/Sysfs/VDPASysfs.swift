import VDPASystem

extension StringProtocol {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var result = Substring(self)
        while let first = result.first, set.contains(first) { result = result.dropFirst() }
        while let last = result.last, set.contains(last) { result = result.dropLast() }
        return String(result)
    }
}

/// The vdpa bus in sysfs (Documentation/ABI/testing/sysfs-bus-vdpa): which driver a
/// device is bound to, bind/unbind, and the host device nodes a binding creates.
///
/// `root` is "/sys" on a host; tests point it at a directory tree of their own.
public struct VDPASysfs: Sendable {
    public var root: String

    public init(root: String = "/sys") { self.root = root }

    var devicesDirectory: String { root + "/bus/vdpa/devices" }
    var driversDirectory: String { root + "/bus/vdpa/drivers" }

    /// Whether the vdpa bus exists (the `vdpa` module is loaded).
    public var busExists: Bool { FileSystem.isDirectory(root + "/bus/vdpa") }

    /// Names of the devices on the vdpa bus.
    public func deviceNames() throws(VDPAError) -> [String] {
        do { return try FileSystem.listDirectory(devicesDirectory) } catch let error as SystemError {
            if error.errno == ErrnoCode.noSuchFileOrDirectory { return [] }
            throw .sysfs(error)
        } catch { return [] }
    }

    /// The bound driver and the device nodes of `name`.
    public func binding(of name: String) throws(VDPAError) -> DeviceBinding {
        try Self.requireComponent(name, in: devicesDirectory)
        let deviceDirectory = devicesDirectory + "/" + name
        guard FileSystem.isDirectory(deviceDirectory) else {
            throw .sysfs(SystemError(errno: ErrnoCode.noSuchDevice, operation: "stat", path: deviceDirectory))
        }
        var binding = DeviceBinding()
        if let target = try? FileSystem.readLink(deviceDirectory + "/driver") {
            binding.driver = BusDriver(rawValue: Self.lastComponent(target))
        }
        let entries = (try? FileSystem.listDirectory(deviceDirectory)) ?? []
        for entry in entries {
            if entry.hasPrefix("vhost-vdpa-"), entry.dropFirst("vhost-vdpa-".count).allSatisfy(\.isNumber) {
                binding.vhostDevicePath = "/dev/" + entry
            } else if entry.hasPrefix("virtio"), entry.dropFirst("virtio".count).allSatisfy(\.isNumber), entry.count > 6 {
                binding.virtioDevice = entry
                let virtioDirectory = deviceDirectory + "/" + entry
                binding.netdevs = (try? FileSystem.listDirectory(virtioDirectory + "/net")) ?? []
                binding.blockDevices = (try? FileSystem.listDirectory(virtioDirectory + "/block")) ?? []
            }
        }
        return binding
    }

    /// Moves `name` to `driver` (nil: leave it unbound) through the drivers' unbind/bind files.
    public func bind(_ name: String, to driver: BusDriver?) throws(VDPAError) {
        let current = try binding(of: name).driver
        if current == driver { return }
        if let driver, !FileSystem.isDirectory(driversDirectory + "/" + driver.rawValue) {
            throw .driverUnavailable(driver)
        }
        do {
            if let current {
                try FileSystem.writeText(driversDirectory + "/" + current.rawValue + "/unbind", name)
            }
            if let driver {
                try FileSystem.writeText(driversDirectory + "/" + driver.rawValue + "/bind", name)
            }
        } catch let error as SystemError {
            throw .sysfs(error)
        } catch {
            throw .sysfs(SystemError(errno: ErrnoCode.invalidArgument, operation: "bind", path: name))
        }
    }

    /// The drivers registered on the vdpa bus.
    public func availableDrivers() -> [BusDriver] {
        ((try? FileSystem.listDirectory(driversDirectory)) ?? []).map(BusDriver.init(rawValue:))
    }

    /// The driver and PCI IDs of a management device's device: `/sys/bus/BUS/devices/NAME`,
    /// its `driver` link, and the `vendor`, `device`, `subsystem_vendor`, `subsystem_device`
    /// files of the device itself (a PCI function) or of its parent (a device on a PCI
    /// function, such as an auxiliary sub-function). Devices without a bus (simulators, VDUSE)
    /// have neither.
    public func parentDevice(of handle: ManagementDeviceHandle) -> ManagementDeviceParent {
        guard let bus = handle.bus, Self.isComponent(bus), Self.isComponent(handle.name) else { return ManagementDeviceParent() }
        let busDevices = root + "/bus/" + bus + "/devices"
        let device = busDevices + "/" + handle.name
        guard FileSystem.isDirectory(device) else { return ManagementDeviceParent() }
        var parent = ManagementDeviceParent()
        if let target = try? FileSystem.readLink(device + "/driver") { parent.driver = Self.lastComponent(target) }
        func id(_ directory: String, _ file: String) -> UInt16? {
            guard let text = try? FileSystem.readText(directory + "/" + file) else { return nil }
            var digits = Substring(text.trimmingCharacters(in: "\n \t"))
            if digits.hasPrefix("0x") { digits = digits.dropFirst(2) }
            return UInt16(digits, radix: 16)
        }
        var pciDirectory = device
        if id(device, "vendor") == nil, let link = try? FileSystem.readLink(device) {
            // The device's sysfs directory is a child of its parent's: drop the last component.
            let target = link.hasPrefix("/") ? link : busDevices + "/" + link
            pciDirectory = String(target[..<(target.lastIndex(of: "/") ?? target.endIndex)])
        }
        parent.pciVendor = id(pciDirectory, "vendor")
        parent.pciDevice = id(pciDirectory, "device")
        parent.pciSubsystemVendor = id(pciDirectory, "subsystem_vendor")
        parent.pciSubsystemDevice = id(pciDirectory, "subsystem_device")
        return parent
    }

    /// Whether `name` names an entry of a directory and nothing else: a name from a request
    /// ("vdpa1/../vdpa0") must not reach another device's files.
    static func isComponent(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.utf8.contains(UInt8(ascii: "/")) && !name.utf8.contains(0)
    }

    /// ``isComponent(_:)``, or ENODEV (no such device) naming the directory.
    static func requireComponent(_ name: String, in directory: String) throws(VDPAError) {
        guard isComponent(name) else {
            throw .sysfs(SystemError(errno: ErrnoCode.noSuchDevice, operation: "lookup of '\(name)'", path: directory))
        }
    }

    static func lastComponent(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}

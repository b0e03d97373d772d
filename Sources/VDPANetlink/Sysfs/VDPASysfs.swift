import VDPASystem

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

    static func lastComponent(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}

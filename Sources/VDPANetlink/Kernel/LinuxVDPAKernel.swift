import Dispatch
import Logging
import VDPASystem
import VirtioModel

/// The real kernel: the `vdpa` netlink family, the vdpa bus in sysfs, and uevents.
public final class LinuxVDPAKernel: VDPAManaging {
    public let netlink: NetlinkVDPAClient
    public let sysfs: VDPASysfs
    private let logger: Logger

    public init(sysfs: VDPASysfs = VDPASysfs(), logger: Logger) {
        self.netlink = NetlinkVDPAClient()
        self.sysfs = sysfs
        self.logger = logger
    }

    public func familyStatus() async -> VDPAFamilyStatus { await netlink.familyStatus() }
    public func managementDevices() async throws -> [ManagementDevice] { try await netlink.managementDevices() }
    public func managementDevice(_ handle: ManagementDeviceHandle) async throws -> ManagementDevice { try await netlink.managementDevice(handle) }
    public func devices() async throws -> [VDPADeviceInfo] { try await netlink.devices() }
    public func device(named name: String) async throws -> VDPADeviceInfo { try await netlink.device(named: name) }
    public func createDevice(_ request: DeviceCreateRequest) async throws { try await netlink.createDevice(request) }
    public func deleteDevice(named name: String) async throws {
        try refuseIfHeldOpen(name, binding: try? sysfs.binding(of: name), operation: "delete")
        try await netlink.deleteDevice(named: name)
    }
    public func deviceConfig(named name: String) async throws -> DeviceConfig { try await netlink.deviceConfig(named: name) }
    public func vendorStatistics(device name: String, queueIndex: UInt32) async throws -> VendorStatistics {
        try await netlink.vendorStatistics(device: name, queueIndex: queueIndex)
    }
    public func setMACAddress(device name: String, to address: MACAddress) async throws {
        try await netlink.setMACAddress(device: name, to: address)
    }
    public func binding(ofDevice name: String) async throws -> DeviceBinding { try sysfs.binding(of: name) }
    public func parentDevice(of handle: ManagementDeviceHandle) async -> ManagementDeviceParent { sysfs.parentDevice(of: handle) }
    public func bind(device name: String, to driver: BusDriver?) async throws {
        let current = try sysfs.binding(of: name)
        if current.driver != driver { try refuseIfHeldOpen(name, binding: current, operation: "unbind") }
        try sysfs.bind(name, to: driver)
    }

    /// vhost_vdpa removes a device (on DEV_DEL, or unbind) only after every opener of its
    /// /dev/vhost-vdpa-N has closed it, so deleting a device a VMM holds would block the
    /// caller, and vdpad with it, for as long as the VMM runs. The character device takes
    /// one opener at a time, so an open that fails with EBUSY says it is in use. (A device
    /// nobody holds is opened and closed again, which resets a device that was idle anyway.)
    private func refuseIfHeldOpen(_ name: String, binding: DeviceBinding?, operation: String) throws {
        guard let binding, binding.driver == .vhostVDPA,
              let path = binding.vhostDevicePath else { return }
        do {
            try DeviceFile(path: path).close()
        } catch let error as SystemError where error.errno == ErrnoCode.busy {
            throw VDPAError.deviceInUse(device: name, path: path, operation: operation)
        } catch {
            logger.debug("Could not probe the vhost-vdpa device", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }

    /// Uevents of the vdpa bus, read on a dedicated thread until the stream is dropped.
    public func busChanges() -> AsyncStream<BusChangeNotification> {
        let (stream, continuation) = AsyncStream<BusChangeNotification>.makeStream(bufferingPolicy: .bufferingNewest(1024))
        let logger = self.logger
        let stopped = StopFlag()
        continuation.onTermination = { _ in stopped.stop() }
        let thread = DispatchQueue(label: "vdpad.uevents")
        thread.async {
            let socket: UeventSocket
            do {
                socket = try UeventSocket()
            } catch {
                logger.error("Cannot listen to kernel uevents; changes made outside vdpad are seen at the next periodic resync", metadata: ["error": "\(error)"])
                continuation.finish()
                return
            }
            while !stopped.isStopped {
                do {
                    guard let datagram = try socket.receive(timeoutMilliseconds: 250) else { continue }
                    guard let event = Uevent(datagram: datagram), event.concernsVDPABus else { continue }
                    continuation.yield(BusChangeNotification(action: event.action, subsystem: event.subsystem ?? "", deviceName: event.vdpaDeviceName))
                } catch {
                    logger.warning("Uevent socket read failed", metadata: ["error": "\(error)"])
                }
            }
            continuation.finish()
        }
        return stream
    }
}

/// A flag set once from any thread.
final class StopFlag: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = DispatchSemaphore(value: 1)
    private var stopped = false
    func stop() { lock.wait(); stopped = true; lock.signal() }
    var isStopped: Bool { lock.wait(); defer { lock.signal() }; return stopped }
}

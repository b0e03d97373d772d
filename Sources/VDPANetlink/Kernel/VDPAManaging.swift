import VirtioModel

/// Whether the kernel's `vdpa` netlink family can be used, and why not.
public enum VDPAFamilyStatus: Hashable, Sendable {
    case available(familyID: Int32)
    case unavailable(reason: String)

    public var isAvailable: Bool {
        if case .available = self { return true }
        return false
    }
}

/// A notification that something on the vdpa bus changed (from kernel uevents).
/// It says *that* and roughly *what*; the daemon re-reads the kernel to learn the rest.
public struct BusChangeNotification: Hashable, Sendable {
    public var action: String
    public var subsystem: String
    /// The vdpa device concerned, when the notification names one.
    public var deviceName: String?

    public init(action: String, subsystem: String, deviceName: String?) {
        self.action = action
        self.subsystem = subsystem
        self.deviceName = deviceName
    }
}

/// Everything vdpad asks of the kernel's vDPA management interfaces: the `vdpa`
/// generic netlink family, the vdpa bus in sysfs, and uevents.
///
/// ``LinuxVDPAKernel`` is the real implementation (tested in the kernel lab);
/// `FakeVDPAKernel` in VDPATestSupport stands in for unit tests and benchmarks.
/// Every failure is a ``VDPAError``.
public protocol VDPAManaging: Sendable {
    /// Resolves the netlink family (again, if it was missing: modules can load later).
    func familyStatus() async -> VDPAFamilyStatus
    /// `VDPA_CMD_MGMTDEV_GET` dump.
    func managementDevices() async throws -> [ManagementDevice]
    /// `VDPA_CMD_MGMTDEV_GET` for one handle.
    func managementDevice(_ handle: ManagementDeviceHandle) async throws -> ManagementDevice
    /// `VDPA_CMD_DEV_GET` dump.
    func devices() async throws -> [VDPADeviceInfo]
    /// `VDPA_CMD_DEV_GET` for one device.
    func device(named name: String) async throws -> VDPADeviceInfo
    /// `VDPA_CMD_DEV_NEW`.
    func createDevice(_ request: DeviceCreateRequest) async throws
    /// `VDPA_CMD_DEV_DEL`.
    func deleteDevice(named name: String) async throws
    /// `VDPA_CMD_DEV_CONFIG_GET` for one device.
    func deviceConfig(named name: String) async throws -> DeviceConfig
    /// `VDPA_CMD_DEV_VSTATS_GET`.
    func vendorStatistics(device name: String, queueIndex: UInt32) async throws -> VendorStatistics
    /// `VDPA_CMD_DEV_ATTR_SET` with `VDPA_ATTR_DEV_NET_CFG_MACADDR` (Linux 6.12).
    func setMACAddress(device name: String, to address: MACAddress) async throws
    /// The bound driver and the host-side device nodes, from sysfs.
    func binding(ofDevice name: String) async throws -> DeviceBinding
    /// Binds the device to `driver` (unbinding it from its current one first), or only unbinds with nil.
    func bind(device name: String, to driver: BusDriver?) async throws
    /// Bus change notifications until the stream is dropped.
    func busChanges() -> AsyncStream<BusChangeNotification>
    /// The driver and PCI IDs of the device behind a management device, from sysfs (what
    /// quirks match on). Never fails: what cannot be read is nil.
    func parentDevice(of handle: ManagementDeviceHandle) async -> ManagementDeviceParent
}

extension VDPAManaging {
    /// Nothing known: an implementation without sysfs.
    public func parentDevice(of handle: ManagementDeviceHandle) async -> ManagementDeviceParent { ManagementDeviceParent() }
}

import Synchronization
import VDPANetlink
import VDPASystem
import VirtioModel

/// An in-memory stand-in for the kernel's vDPA interfaces, for unit tests and
/// benchmarks of the layers above ``VDPAManaging``. It applies the checks of
/// drivers/vdpa/vdpa.c (Linux 6.12) in the same order, with the same errno and
/// extack text, so error paths behave as against the real kernel (which the
/// kernel-lab tests cover).
public final class FakeVDPAKernel: VDPAManaging {
    public struct ManagementDeviceModel: Sendable {
        public var device: ManagementDevice
        /// Attribute numbers the parent accepts at creation (its `config_attr_mask`).
        public var acceptedAttributes: Set<VDPAAttribute>
        public var maxVirtqueuePairs: UInt16
        /// What sysfs says of the device behind it (driver, PCI IDs): a fixed identity.
        public var parent: ManagementDeviceParent

        public init(device: ManagementDevice, acceptedAttributes: Set<VDPAAttribute>, maxVirtqueuePairs: UInt16 = 1, parent: ManagementDeviceParent = ManagementDeviceParent()) {
            self.device = device
            self.acceptedAttributes = acceptedAttributes
            self.maxVirtqueuePairs = maxVirtqueuePairs
            self.parent = parent
        }
    }

    struct FakeDevice {
        var info: VDPADeviceInfo
        var config: DeviceConfig
        var binding: DeviceBinding
        var managedByUser: Bool
        /// A process holds /dev/vhost-vdpa-N open (a VMM): delete and unbind are refused.
        var heldOpen = false
    }

    struct State {
        var available = true
        var managementDevices: [ManagementDeviceModel] = []
        var devices: [String: FakeDevice] = [:]
        var nextVhostIndex = 0
        var nextVirtioIndex = 0
        var drivers: [BusDriver] = [.vhostVDPA, .virtioVDPA]
        var defaultDriver: BusDriver? = .vhostVDPA
        var continuations: [UInt64: AsyncStream<BusChangeNotification>.Continuation] = [:]
        var nextContinuation: UInt64 = 0
        var calls: [String] = []
        /// Run once by the next `devices()`, after it read the list and before it returns it.
        var listingHook: (@Sendable () async -> Void)?
        /// The next `setMACAddress` and `bind` calls fail with this errno.
        var failingChanges: Int32?
    }

    let state = Mutex(State())

    /// vdpasim_net as Linux 6.12's simulator presents it (features, attribute mask, one queue pair).
    public static let simulatorNet = ManagementDeviceModel(
        device: ManagementDevice(
            handle: ManagementDeviceHandle(bus: nil, name: "vdpasim_net"), supportedClasses: [.network],
            maxSupportedVirtqueues: 3, supportedFeatures: VirtioFeatures(rawValue: 0x3_0883_0028)),
        acceptedAttributes: [.netMACAddress, .netMTU, .deviceFeatures])

    /// vdpasim_blk as the simulator presents it.
    public static let simulatorBlock = ManagementDeviceModel(
        device: ManagementDevice(
            handle: ManagementDeviceHandle(bus: nil, name: "vdpasim_blk"), supportedClasses: [.block],
            maxSupportedVirtqueues: 1, supportedFeatures: VirtioFeatures(rawValue: 0x3_0000_0646)),
        acceptedAttributes: [.deviceFeatures])

    public init(managementDevices: [ManagementDeviceModel] = [FakeVDPAKernel.simulatorNet, FakeVDPAKernel.simulatorBlock]) {
        state.withLock { $0.managementDevices = managementDevices }
    }

    // MARK: Test controls

    /// Makes the family disappear or reappear (module unload/load).
    public func setAvailable(_ available: Bool) { state.withLock { $0.available = available } }

    /// The operations performed, in order ("DEV_NEW vdpa0", "bind vdpa0 virtio_vdpa", …).
    public var calls: [String] { state.withLock { $0.calls } }

    /// Creates a device as someone else would (iproute2) and raises the uevent.
    public func createExternally(_ request: DeviceCreateRequest) throws {
        try create(request, record: "external DEV_NEW \(request.name)")
    }

    /// Deletes a device as someone else would and raises the uevent.
    public func deleteExternally(_ name: String) {
        _ = state.withLock { $0.devices.removeValue(forKey: name) }
        notify(BusChangeNotification(action: "remove", subsystem: "vdpa", deviceName: name))
    }

    /// Changes a device's MAC as `vdpa dev set` would (no uevent, as in Linux).
    public func setMACExternally(_ name: String, _ mac: MACAddress) {
        state.withLock { $0.devices[name]?.config.net?.macAddress = mac }
    }

    /// Simulates a host reboot: every device is gone.
    public func reboot() { state.withLock { $0.devices.removeAll() } }

    /// Adds `count` devices quickly (benchmarks).
    public func populate(count: Int, prefix: String = "bench") throws {
        for index in 0..<count {
            try create(DeviceCreateRequest(name: "\(prefix)\(index)", managementDevice: ManagementDeviceHandle(bus: nil, name: "vdpasim_net")), record: nil, raiseEvent: false)
        }
    }

    private func notify(_ notification: BusChangeNotification) {
        let continuations = state.withLock { Array($0.continuations.values) }
        for continuation in continuations { continuation.yield(notification) }
    }

    private func log(_ call: String) { state.withLock { $0.calls.append(call) } }

    private static func kernelError(_ operation: String, _ errno: Int32, _ extack: String?) -> VDPAError {
        .kernel(operation: operation, errno: errno, extack: extack)
    }

    private func requireFamily() throws {
        guard state.withLock({ $0.available }) else {
            throw VDPAError.familyUnavailable(reason: "generic netlink family 'vdpa' not found (is the vdpa module loaded?)")
        }
    }

    // MARK: VDPAManaging

    public func familyStatus() async -> VDPAFamilyStatus {
        state.withLock { $0.available } ? .available(familyID: 42) : .unavailable(reason: "generic netlink family 'vdpa' not found (is the vdpa module loaded?)")
    }

    public func managementDevices() async throws -> [ManagementDevice] {
        try requireFamily()
        return state.withLock { $0.managementDevices.map(\.device) }
    }

    public func managementDevice(_ handle: ManagementDeviceHandle) async throws -> ManagementDevice {
        try requireFamily()
        guard let model = state.withLock({ $0.managementDevices.first { $0.device.handle == handle } }) else {
            throw Self.kernelError("VDPA_CMD_MGMTDEV_GET \(handle)", ErrnoCode.noSuchDevice, "vdpa: Fail to find the specified mgmt device")
        }
        return model.device
    }

    public func devices() async throws -> [VDPADeviceInfo] {
        try requireFamily()
        let listing = state.withLock { $0.devices.values.map(\.info).sorted { $0.name < $1.name } }
        if let hook = state.withLock({ state in defer { state.listingHook = nil }; return state.listingHook }) { await hook() }
        return listing
    }

    /// The next device listing runs `hook` after reading the list, before returning it: the
    /// list it returns is then stale, as a netlink dump is when a change lands during it.
    public func duringNextListing(_ hook: @escaping @Sendable () async -> Void) { state.withLock { $0.listingHook = hook } }

    /// MAC changes and bindings fail with `errno` (nil: they work again).
    public func failChanges(with errno: Int32?) { state.withLock { $0.failingChanges = errno } }

    public func device(named name: String) async throws -> VDPADeviceInfo {
        try requireFamily()
        guard let device = state.withLock({ $0.devices[name] }) else {
            throw Self.kernelError("VDPA_CMD_DEV_GET \(name)", ErrnoCode.noSuchDevice, "vdpa: device not found")
        }
        return device.info
    }

    public func createDevice(_ request: DeviceCreateRequest) async throws {
        try requireFamily()
        try create(request, record: "DEV_NEW \(request.name)")
    }

    private func create(_ request: DeviceCreateRequest, record: String?, raiseEvent: Bool = true) throws {
        let operation = "VDPA_CMD_DEV_NEW \(request.name)"
        if request.maxVirtqueuePairs == 0 {
            throw Self.kernelError(operation, ErrnoCode.invalidArgument, "vdpa: At least one pair of VQs is required")
        }
        if let features = request.deviceFeatures {
            var needed = VirtioFeatures()
            if request.macAddress != nil { needed.insert(VirtioFeatures.Net.mac) }
            if request.mtu != nil { needed.insert(VirtioFeatures.Net.mtu) }
            if (request.maxVirtqueuePairs ?? 1) > 1 { needed.insert(VirtioFeatures.Net.multiqueue) }
            let missing = needed.subtracting(features)
            if !missing.isEmpty {
                throw Self.kernelError(operation, ErrnoCode.invalidArgument, "vdpa: Missing features \(missing.hexString) for provided attributes")
            }
        }
        try state.withLock { state throws in
            guard let model = state.managementDevices.first(where: { $0.device.handle == request.managementDevice }) else {
                throw Self.kernelError(operation, ErrnoCode.noSuchDevice, "vdpa: Fail to find the specified management device")
            }
            var given: [VDPAAttribute] = []
            if request.macAddress != nil { given.append(.netMACAddress) }
            if request.mtu != nil { given.append(.netMTU) }
            if request.maxVirtqueuePairs != nil { given.append(.netMaxVirtqueuePairs) }
            if request.deviceFeatures != nil { given.append(.deviceFeatures) }
            let unsupported = given.filter { !model.acceptedAttributes.contains($0) }.reduce(UInt64(0)) { $0 | (1 << UInt64($1.rawValue)) }
            if unsupported != 0 {
                throw Self.kernelError(operation, ErrnoCode.notSupported, "vdpa: Some provided attributes are not supported: 0x\(String(unsupported, radix: 16))")
            }
            let offered = model.device.supportedFeatures ?? VirtioFeatures()
            let features = request.deviceFeatures ?? offered
            if !features.isSubset(of: offered) { throw Self.kernelError(operation, ErrnoCode.invalidArgument, nil) }
            guard state.devices[request.name] == nil else { throw Self.kernelError(operation, ErrnoCode.fileExists, nil) }
            let type = model.device.supportedClasses.first ?? .network
            var config = DeviceConfig(name: request.name, deviceType: type, deviceFeatures: features)
            if type == .network {
                config.net = NetDeviceConfig(
                    macAddress: features.contains(VirtioFeatures.Net.mac) ? (request.macAddress ?? MACAddress(bytes: [0, 0, 0, 0, 0, 0])) : nil,
                    status: features.contains(VirtioFeatures.Net.status) ? 1 : nil,
                    maxVirtqueuePairs: features.contains(VirtioFeatures.Net.multiqueue) ? (request.maxVirtqueuePairs ?? 1) : nil,
                    mtu: features.contains(VirtioFeatures.Net.mtu) ? (request.mtu ?? 1500) : nil)
            } else if type == .block {
                var block = BlockDeviceConfig()
                block.capacity = 262_144
                block.sizeMax = 4096
                block.segmentMax = 32
                block.blockSize = 512
                config.block = block
            }
            let info = VDPADeviceInfo(
                name: request.name, managementDevice: request.managementDevice, deviceType: type, vendorID: 0,
                maxVirtqueues: model.device.maxSupportedVirtqueues ?? 2, maxVirtqueueSize: 256, minVirtqueueSize: nil)
            var device = FakeDevice(info: info, config: config, binding: DeviceBinding(), managedByUser: true)
            Self.attach(&device, to: state.defaultDriver, state: &state)
            state.devices[request.name] = device
            if let record { state.calls.append(record) }
        }
        if raiseEvent { notify(BusChangeNotification(action: "add", subsystem: "vdpa", deviceName: request.name)) }
    }

    private static func attach(_ device: inout FakeDevice, to driver: BusDriver?, state: inout State) {
        device.binding = DeviceBinding(driver: driver)
        device.config.negotiatedFeatures = nil
        if driver == .vhostVDPA {
            device.binding.vhostDevicePath = "/dev/vhost-vdpa-\(state.nextVhostIndex)"
            state.nextVhostIndex += 1
        } else if driver == .virtioVDPA {
            device.binding.virtioDevice = "virtio\(state.nextVirtioIndex)"
            if device.info.deviceType == .network { device.binding.netdevs = ["eth\(state.nextVirtioIndex)"] }
            if device.info.deviceType == .block { device.binding.blockDevices = ["vda"] }
            state.nextVirtioIndex += 1
            // The kernel's own driver negotiates what it knows of the offered features.
            device.config.negotiatedFeatures = device.config.deviceFeatures?.subtracting(.anyLayout)
        }
    }

    /// Simulates a VMM opening (or closing) the device's /dev/vhost-vdpa-N.
    public func holdOpen(_ name: String, _ held: Bool = true) {
        state.withLock { $0.devices[name]?.heldOpen = held }
    }

    private static func refuseIfHeldOpen(_ device: FakeDevice?, _ name: String, operation: String) throws {
        guard let device, device.heldOpen, device.binding.driver == .vhostVDPA, let path = device.binding.vhostDevicePath else { return }
        throw VDPAError.deviceInUse(device: name, path: path, operation: operation)
    }

    public func deleteDevice(named name: String) async throws {
        try requireFamily()
        let removed = try state.withLock { state throws -> Bool in
            try Self.refuseIfHeldOpen(state.devices[name], name, operation: "delete")
            guard state.devices.removeValue(forKey: name) != nil else { return false }
            state.calls.append("DEV_DEL \(name)")
            return true
        }
        guard removed else { throw Self.kernelError("VDPA_CMD_DEV_DEL \(name)", ErrnoCode.noSuchDevice, "vdpa: device not found") }
        notify(BusChangeNotification(action: "remove", subsystem: "vdpa", deviceName: name))
    }

    public func deviceConfig(named name: String) async throws -> DeviceConfig {
        try requireFamily()
        guard let device = state.withLock({ $0.devices[name] }) else {
            throw Self.kernelError("VDPA_CMD_DEV_CONFIG_GET \(name)", ErrnoCode.noSuchDevice, "vdpa: device not found")
        }
        return device.config
    }

    public func vendorStatistics(device name: String, queueIndex: UInt32) async throws -> VendorStatistics {
        try requireFamily()
        let operation = "VDPA_CMD_DEV_VSTATS_GET \(name)"
        guard let device = state.withLock({ $0.devices[name] }) else {
            throw Self.kernelError(operation, ErrnoCode.noSuchDevice, "vdpa: device not found")
        }
        guard let negotiated = device.config.negotiatedFeatures else {
            throw Self.kernelError(operation, ErrnoCode.tryAgain, "vdpa: feature negotiation not complete")
        }
        guard queueIndex <= 0x8000 else { throw Self.kernelError(operation, ErrnoCode.outOfRange, "vdpa: queue index exceeds max value") }
        let kind = queueIndex % 2 == 0 ? "rx" : "tx"
        return VendorStatistics(
            name: name, deviceType: device.info.deviceType, queueIndex: queueIndex, negotiatedFeatures: negotiated,
            maxVirtqueuePairs: device.config.net?.maxVirtqueuePairs,
            statistics: [VendorStatistic(name: "\(kind) packets", value: 8), VendorStatistic(name: "\(kind) bytes", value: 648)])
    }

    public func setMACAddress(device name: String, to address: MACAddress) async throws {
        try requireFamily()
        let operation = "VDPA_CMD_DEV_ATTR_SET \(name)"
        try state.withLock { state throws in
            guard state.devices[name] != nil else { throw Self.kernelError(operation, ErrnoCode.noSuchDevice, "vdpa: device not found") }
            if let errno = state.failingChanges { throw Self.kernelError(operation, errno, "vdpa: refused (test)") }
            guard address.isValidUnicast else { throw Self.kernelError(operation, ErrnoCode.invalidArgument, "vdpa: Invalid MAC address") }
            state.devices[name]?.config.net?.macAddress = address
            state.calls.append("ATTR_SET \(name) mac \(address)")
        }
    }

    public func binding(ofDevice name: String) async throws -> DeviceBinding {
        guard let device = state.withLock({ $0.devices[name] }) else {
            throw VDPAError.sysfs(SystemError(errno: ErrnoCode.noSuchDevice, operation: "stat", path: "/sys/bus/vdpa/devices/\(name)"))
        }
        return device.binding
    }

    public func bind(device name: String, to driver: BusDriver?) async throws {
        let changed = try state.withLock { state throws -> Bool in
            guard var device = state.devices[name] else {
                throw VDPAError.sysfs(SystemError(errno: ErrnoCode.noSuchDevice, operation: "stat", path: "/sys/bus/vdpa/devices/\(name)"))
            }
            if let driver, !state.drivers.contains(driver) { throw VDPAError.driverUnavailable(driver) }
            if let errno = state.failingChanges { throw VDPAError.sysfs(SystemError(errno: errno, operation: "write", path: "/sys/bus/vdpa/drivers/bind")) }
            // Like the sysfs code: a device already on the requested driver stays as it is.
            guard device.binding.driver != driver else { return false }
            try Self.refuseIfHeldOpen(device, name, operation: "unbind")
            Self.attach(&device, to: driver, state: &state)
            state.devices[name] = device
            state.calls.append("bind \(name) \(driver?.rawValue ?? "none")")
            return true
        }
        if changed { notify(BusChangeNotification(action: driver == nil ? "unbind" : "bind", subsystem: "vdpa", deviceName: name)) }
    }

    public func parentDevice(of handle: ManagementDeviceHandle) async -> ManagementDeviceParent {
        state.withLock { $0.managementDevices.first { $0.device.handle == handle }?.parent } ?? ManagementDeviceParent()
    }

    public func busChanges() -> AsyncStream<BusChangeNotification> {
        let (stream, continuation) = AsyncStream<BusChangeNotification>.makeStream()
        let id = state.withLock { state in
            let id = state.nextContinuation
            state.nextContinuation += 1
            state.continuations[id] = continuation
            return id
        }
        continuation.onTermination = { [weak self] _ in _ = self?.state.withLock { $0.continuations.removeValue(forKey: id) } }
        return stream
    }
}

import Foundation
import VDPASystem
import VDPAVhost
import VirtioModel

/// A vhost-vdpa device in memory, for unit tests of ports and saved state: it keeps what
/// was set (status, features, vrings, IOTLB maps), answers what it was told to offer, and
/// keeps the kernel's rules that matter here: one opener, vring base/address only before
/// DRIVER_OK or while suspended, SUSPEND only with VHOST_BACKEND_F_SUSPEND. It processes no
/// rings: `advance(queue:by:)` moves a queue's position as a device would.
public final class FakeVhostVDPADevice: VhostVDPAControl, @unchecked Sendable {
    // SAFETY (@unchecked): every field is accessed under `lock`.
    public let path: String
    private let lock = NSLock()
    private let offered: VirtioFeatures
    private let offeredBackend: BackendFeatures
    private let vqCount: UInt32
    private let maxSize: UInt16
    private let configBytes: [UInt8]
    private var owner = false
    private var currentStatus: DeviceStatus = []
    private var acked: VirtioFeatures = []
    private var backend: BackendFeatures = []
    private(set) var suspendedFlag = false
    private var bases: [UInt32: UInt32] = [:]
    private var sizes: [UInt32: UInt16] = [:]
    private var enabled: [UInt32: Bool] = [:]
    private var maps: [(iova: UInt64, size: UInt64)] = []
    /// An ioctl that fails with EIO (fault injection), by its name.
    var failingStep: String?
    /// Called when the device is closed (the opener frees it for the next open).
    var onClose: (() -> Void)?
    public private(set) var closed = false

    public init(path: String, features: VirtioFeatures, backendFeatures: BackendFeatures, queueCount: UInt32, maximumQueueSize: UInt16, config: [UInt8]) {
        self.path = path
        offered = features
        offeredBackend = backendFeatures
        vqCount = queueCount
        maxSize = maximumQueueSize
        configBytes = config
    }

    private func locked<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    private func fail(_ step: String, _ errno: Int32, _ reason: String) -> VhostError {
        VhostError(step: step, device: path, errno: errno, reason: reason)
    }

    private func checkQueue(_ step: String, _ queue: QueueIndex) throws(VhostError) {
        guard queue.rawValue < vqCount else { throw fail(step, ENOBUFS, "queue \(queue.rawValue) of \(vqCount)") }
    }

    private func checkStopped(_ step: String) throws(VhostError) {
        if currentStatus.contains(.driverOK) && !suspendedFlag { throw fail(step, EINVAL, "DRIVER_OK and not suspended") }
    }

    public func setOwner() throws(VhostError) {
        try locked { () throws(VhostError) in
            guard !owner else { throw fail("VHOST_SET_OWNER", EBUSY, "already owned") }
            owner = true
        }
    }
    public func deviceID() throws(VhostError) -> UInt32 { 1 }
    public func features() throws(VhostError) -> VirtioFeatures { offered }
    public func setFeatures(_ features: VirtioFeatures) throws(VhostError) {
        try locked { () throws(VhostError) in
            guard features.isSubset(of: offered) else { throw fail("VHOST_SET_FEATURES", EINVAL, "not offered") }
            acked = features
        }
    }
    public func backendFeatures() throws(VhostError) -> BackendFeatures { offeredBackend }
    public func setBackendFeatures(_ features: BackendFeatures) throws(VhostError) {
        try locked { () throws(VhostError) in
            guard features.isSubset(of: offeredBackend) else { throw fail("VHOST_SET_BACKEND_FEATURES", EOPNOTSUPP, "not offered") }
            backend = features
        }
    }
    public func status() throws(VhostError) -> DeviceStatus { locked { currentStatus } }
    public func setStatus(_ status: DeviceStatus) throws(VhostError) {
        locked {
            currentStatus = status
            if status.isEmpty {
                suspendedFlag = false
                bases = [:]
                enabled = [:]
            }
        }
    }
    public func configSize() throws(VhostError) -> UInt32 { UInt32(configBytes.count) }
    public func config(offset: UInt32, length: UInt32) throws(VhostError) -> [UInt8] {
        guard Int(offset) + Int(length) <= configBytes.count else { throw fail("VHOST_VDPA_GET_CONFIG", EINVAL, "out of range") }
        return Array(configBytes[Int(offset)..<Int(offset + length)])
    }
    public func queueCount() throws(VhostError) -> UInt32 { vqCount }
    public func maximumQueueSize() throws(VhostError) -> UInt16 { maxSize }
    public func iovaRange() throws(VhostError) -> IOVARange { IOVARange(first: IOVA(0), last: IOVA(.max)) }
    public func setQueueSize(_ queue: QueueIndex, _ size: UInt16) throws(VhostError) {
        try checkQueue("VHOST_SET_VRING_NUM", queue)
        locked { sizes[queue.rawValue] = size }
    }
    public func setQueueAddresses(_ queue: QueueIndex, _ addresses: VringAddresses) throws(VhostError) {
        try checkQueue("VHOST_SET_VRING_ADDR", queue)
        try locked { () throws(VhostError) in try checkStopped("VHOST_SET_VRING_ADDR") }
    }
    public func queueBase(_ queue: QueueIndex) throws(VhostError) -> UInt32 {
        try checkQueue("VHOST_GET_VRING_BASE", queue)
        return locked { bases[queue.rawValue] ?? 0 }
    }
    public func setQueueBase(_ queue: QueueIndex, _ base: UInt32) throws(VhostError) {
        try checkQueue("VHOST_SET_VRING_BASE", queue)
        if failingStep == "VHOST_SET_VRING_BASE" { throw fail("VHOST_SET_VRING_BASE", EIO, "Input/output error (EIO)") }
        try locked { () throws(VhostError) in
            try checkStopped("VHOST_SET_VRING_BASE")
            bases[queue.rawValue] = base
        }
    }
    public func setKick(_ queue: QueueIndex, _ eventFD: Int32) throws(VhostError) { try checkQueue("VHOST_SET_VRING_KICK", queue) }
    public func setCall(_ queue: QueueIndex, _ eventFD: Int32) throws(VhostError) { try checkQueue("VHOST_SET_VRING_CALL", queue) }
    public func setQueueEnabled(_ queue: QueueIndex, _ enabled: Bool) throws(VhostError) {
        try checkQueue("VHOST_VDPA_SET_VRING_ENABLE", queue)
        locked { self.enabled[queue.rawValue] = enabled }
    }
    public func suspend() throws(VhostError) {
        try locked { () throws(VhostError) in
            guard backend.contains(.suspend) else { throw fail("VHOST_VDPA_SUSPEND", EOPNOTSUPP, "no suspend") }
            if currentStatus.contains(.driverOK) { suspendedFlag = true }
        }
    }
    public func resume() throws(VhostError) {
        try locked { () throws(VhostError) in
            guard backend.contains(.resume) else { throw fail("VHOST_VDPA_RESUME", EOPNOTSUPP, "no resume") }
            suspendedFlag = false
        }
    }
    public func send(_ messages: [IOTLBMessage]) throws(VhostError) {
        try locked { () throws(VhostError) in
            for message in messages {
                switch message {
                case .update(let iova, let size, _, _, _):
                    if maps.contains(where: { iova.rawValue < $0.iova + $0.size && $0.iova < iova.rawValue + size }) {
                        throw fail("IOTLB update", EFAULT, "overlap")
                    }
                    maps.append((iova.rawValue, size))
                case .invalidate(let iova, let size, _):
                    maps.removeAll { $0.iova == iova.rawValue && $0.size == size }
                case .batchBegin, .batchEnd: break
                }
            }
        }
    }
    public func close() {
        let callback: (() -> Void)? = locked {
            closed = true
            return onClose
        }
        callback?()
    }

    // MARK: for tests

    /// Moves a queue's position as a device that processed `count` descriptors would (split encoding).
    public func advance(queue: UInt32, by count: UInt16) {
        locked { bases[queue] = UInt32(UInt16(truncatingIfNeeded: bases[queue] ?? 0) &+ count) }
    }

    public var isRunning: Bool { locked { currentStatus.contains(.driverOK) && !suspendedFlag } }
    public var isSuspended: Bool { locked { suspendedFlag } }
    public var negotiatedFeatures: VirtioFeatures { locked { acked } }
    public var mappingCount: Int { locked { maps.count } }
}

/// Hands out ``FakeVhostVDPADevice``s by path, one opener at a time (EBUSY otherwise), like
/// `/dev/vhost-vdpa-N`. Each open is a fresh device (the kernel resets one on close).
public final class FakeVhostOpener: VhostVDPAOpening, @unchecked Sendable {
    // SAFETY (@unchecked): state under `lock`.
    public struct Profile: Sendable {
        public var features: VirtioFeatures
        public var backendFeatures: BackendFeatures
        public var queueCount: UInt32
        public var maximumQueueSize: UInt16
        public var config: [UInt8]
        /// An ioctl every device of this profile fails with EIO ("VHOST_SET_VRING_BASE").
        public var failingStep: String?
        public init(features: VirtioFeatures = VirtioFeatures(rawValue: 0x3_0883_0028), backendFeatures: BackendFeatures = [.iotlbMessageV2, .iotlbBatch, .iotlbASID, .suspend, .resume],
                    queueCount: UInt32 = 3, maximumQueueSize: UInt16 = 256, config: [UInt8] = [0x02, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0xdc, 0x05]) {
            self.features = features
            self.backendFeatures = backendFeatures
            self.queueCount = queueCount
            self.maximumQueueSize = maximumQueueSize
            self.config = config
        }
    }

    private let lock = NSLock()
    private var profiles: [String: Profile] = [:]
    private var open: [String: FakeVhostVDPADevice] = [:]
    /// The last device opened at each path.
    public private(set) var lastOpened: [String: FakeVhostVDPADevice] = [:]
    public let defaultProfile: Profile

    public init(defaultProfile: Profile = Profile()) { self.defaultProfile = defaultProfile }

    /// What the device at `path` offers from now on.
    public func setProfile(_ profile: Profile, forPath path: String) {
        lock.lock()
        profiles[path] = profile
        lock.unlock()
    }

    public func device(at path: String) -> FakeVhostVDPADevice? {
        lock.lock()
        defer { lock.unlock() }
        return lastOpened[path]
    }

    public func open(path: String) throws(VhostError) -> any VhostVDPAControl {
        lock.lock()
        defer { lock.unlock() }
        guard open[path] == nil else { throw VhostError(step: "open", device: path, errno: EBUSY, reason: "Device or resource busy (EBUSY)") }
        let profile = profiles[path] ?? defaultProfile
        let device = FakeVhostVDPADevice(path: path, features: profile.features, backendFeatures: profile.backendFeatures,
                                         queueCount: profile.queueCount, maximumQueueSize: profile.maximumQueueSize, config: profile.config)
        device.failingStep = profile.failingStep
        device.onClose = { [weak self] in
            guard let self else { return }
            lock.lock()
            if open[path] === device { open[path] = nil }
            lock.unlock()
        }
        open[path] = device
        lastOpened[path] = device
        return device
    }
}

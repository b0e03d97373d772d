import VDPASystem
import VDPAVhost
import VirtioModel

/// Microseconds per named step, in the order they ran.
public struct StepTimings: Sendable, Hashable {
    public private(set) var steps: [(name: String, microseconds: Int)] = []
    public init() {}

    public static func == (a: StepTimings, b: StepTimings) -> Bool { a.dictionary == b.dictionary }
    public func hash(into hasher: inout Hasher) { hasher.combine(dictionary) }

    /// Runs `body` and records how long it took under `name`.
    public mutating func measure<T, E: Error>(_ name: String, _ body: () throws(E) -> T) throws(E) -> T {
        let start = ContinuousClock.now
        defer { record(name, since: start) }
        return try body()
    }

    /// Records the time from `start` to now under `name`.
    public mutating func record(_ name: String, since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        steps.append((name, Int(elapsed.components.seconds) * 1_000_000 + Int(elapsed.components.attoseconds / 1_000_000_000_000)))
    }

    public mutating func append(_ other: StepTimings) { steps += other.steps }

    public var dictionary: [String: Int] {
        steps.reduce(into: [:]) { $0[$1.name, default: 0] += $1.microseconds }
    }

    public var totalMicroseconds: Int { steps.reduce(0) { $0 + $1.microseconds } }
}

/// The hardware backend of a port: a vhost-vdpa device vdpad owns, programmed with the
/// consumer's memory, rings and eventfds so the device processes the rings itself (packets
/// never touch vdpad). The sequence is the driver's (virtio 1.2 §3.1.1) as QEMU's
/// vhost-vdpa runs it: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, IOTLB maps,
/// vrings (num, addr, base, kick, call, enable), DRIVER_OK.
final class HardwareBackend: PortBackend {
    let deviceName: String
    /// The device's character device, `/dev/vhost-vdpa-N`.
    let path: String
    let device: any VhostVDPAControl
    let offeredFeatures: VirtioFeatures
    let backendFeatures: BackendFeatures
    let queueCount: Int
    let maximumQueueSize: Int
    let deviceType: UInt32
    private(set) var negotiatedFeatures: VirtioFeatures = []
    private var mapped: [(iova: UInt64, size: UInt64)] = []
    private(set) var running = false
    private(set) var suspended = false

    /// What vdpad asks of every device it holds: IOTLB v2 messages (it maps through
    /// `write()`), batching, and suspend/resume where the parent has them.
    static let wantedBackendFeatures: BackendFeatures = [.iotlbMessageV2, .iotlbBatch, .suspend, .resume]

    /// Takes ownership of an opened device (`path`: its character device) and reads what it offers.
    init(deviceName: String, path: String, device: any VhostVDPAControl) throws(VhostError) {
        self.deviceName = deviceName
        self.path = path
        self.device = device
        do {
            try device.setOwner()
            offeredFeatures = try device.features()
            let offered = try device.backendFeatures()
            backendFeatures = offered.intersection(Self.wantedBackendFeatures)
            try device.setBackendFeatures(backendFeatures)
            queueCount = Int(try device.queueCount())
            maximumQueueSize = Int(try device.maximumQueueSize())
            deviceType = try device.deviceID()
        } catch {
            device.close()
            throw error
        }
    }

    var canSuspend: Bool { backendFeatures.contains(.suspend) }

    /// Features a port never serves from a device: those of the control virtqueue, which vdpad
    /// does not mediate on devices yet, and ACCESS_PLATFORM (vdpad translates addresses itself).
    static let withheldFeatures: VirtioFeatures = [
        .accessPlatform, .Net.controlVirtqueue, .Net.controlRx, .Net.controlVLAN, .Net.controlRxExtra, .Net.guestAnnounce,
        .Net.multiqueue, .Net.controlMACAddress, .Net.controlGuestOffloads, .Net.rss, .Net.hashReport,
    ]

    var servedFeatures: VirtioFeatures { offeredFeatures.subtracting(Self.withheldFeatures) }

    /// What the API shows of it.
    var snapshot: PortBackendSnapshot {
        PortBackendSnapshot(device: deviceName, path: path, offeredFeatures: offeredFeatures, servedFeatures: servedFeatures,
                            backendFeatures: backendFeatures,
                            queueCount: queueCount, maximumQueueSize: maximumQueueSize, canSuspend: canSuspend, canResume: canResume)
    }
    var canResume: Bool { backendFeatures.contains(.resume) }

    /// The consumer's features, with ACCESS_PLATFORM when the device offers it: vdpad maps
    /// the consumer's memory through the IOTLB, IOVA = guest physical address.
    func runningFeatures(for consumerFeatures: VirtioFeatures) -> VirtioFeatures {
        offeredFeatures.contains(.accessPlatform) ? consumerFeatures.union(.accessPlatform) : consumerFeatures
    }

    /// Everything but the ring positions: reset, features, IOTLB maps, each vring's size,
    /// addresses and eventfds. A device prepared this way can be launched in a few ioctls,
    /// which is what keeps the pause of a move short.
    func prepare(features: VirtioFeatures, session: ConsumerSession, timings: inout StepTimings) throws(VhostError) {
        running = false
        suspended = false
        try timings.measure("reset") { () throws(VhostError) in
            try device.setStatus([])
            try device.setStatus([.acknowledge])
            try device.setStatus([.acknowledge, .driver])
        }
        try timings.measure("features") { () throws(VhostError) in
            try device.setFeatures(features)
            try device.setStatus([.acknowledge, .driver, .featuresOK])
            guard try device.status().contains(.featuresOK) else {
                throw VhostError(step: "FEATURES_OK", device: device.path, errno: 0, reason: "the device did not accept features \(features)")
            }
        }
        negotiatedFeatures = features
        try timings.measure("map") { () throws(VhostError) in try map(session.regions) }
        try timings.measure("vrings") { () throws(VhostError) in
            for (index, queue) in session.queues.sorted(by: { $0.key < $1.key }) {
                guard let addresses = queue.addresses, queue.size > 0 else { continue }
                let vq = QueueIndex(UInt32(index))
                try device.setQueueSize(vq, queue.size)
                try device.setQueueAddresses(vq, addresses)
                try device.setKick(vq, queue.kick?.rawValue ?? -1)
                try device.setCall(vq, queue.call?.rawValue ?? -1)
            }
        }
    }

    /// Sets each prepared queue's position (`bases[index]`, else the consumer's own), enables
    /// it as the consumer asked, and sets DRIVER_OK: the device processes the rings.
    ///
    /// **The start rule, kept by every backend**: rings started at a position may already hold
    /// work the driver published before (a move, a restore, a re-attach: a polling driver with
    /// a full ring, or one that suppressed notifications, never kicks again). So once the
    /// device runs, each enabled queue is looked at without waiting for the driver: here, one
    /// kick of each enabled queue after DRIVER_OK (a device ignores kicks before it; QEMU's
    /// vhost-vdpa does the same after starting a device). A spurious notification is always
    /// allowed (virtio 1.2 §2.9: the device finds no new buffers and waits again).
    func launch(session: ConsumerSession, bases: [Int: UInt32], timings: inout StepTimings) throws(VhostError) {
        try timings.measure("vring_base") { () throws(VhostError) in
            for (index, queue) in session.queues.sorted(by: { $0.key < $1.key }) where queue.isSetUp {
                let vq = QueueIndex(UInt32(index))
                try device.setQueueBase(vq, bases[index] ?? queue.base)
                try device.setQueueEnabled(vq, queue.enabled)
            }
        }
        try timings.measure("driver_ok") { () throws(VhostError) in
            try device.setStatus([.acknowledge, .driver, .featuresOK, .driverOK])
        }
        running = true
        try timings.measure("kick") { () throws(VhostError) in try kick(session.queues) }
    }

    /// Notifies the device of each enabled queue once, through the queue's kick eventfd (the
    /// one vhost-vdpa polls: `VHOST_SET_VRING_KICK`, then `vdpa_config_ops.kick_vq`).
    func kick(_ queues: [Int: ConsumerQueue]) throws(VhostError) {
        for (index, queue) in queues.sorted(by: { $0.key < $1.key }) where queue.enabled && queue.isSetUp {
            guard let kick = queue.kick else { continue }
            do {
                try EventFD(adopting: kick.rawValue, takingOwnership: false).signal()
            } catch {
                throw VhostError(step: "kick vq \(index)", device: device.path, failure: error)
            }
        }
    }

    /// Replaces the IOTLB mappings with `regions` (IOVA = guest physical address).
    func map(_ regions: [ConsumerMemoryRegion]) throws(VhostError) {
        let messages = mapped.map { IOTLBMessage.invalidate(iova: IOVA($0.iova), size: $0.size) } + regions.map {
            IOTLBMessage.update(iova: IOVA($0.guestPhysicalAddress), size: $0.size, userAddress: $0.mapping.userAddress, permission: .readWrite)
        }
        mapped = []
        try sendBatched(messages)
        mapped = regions.map { ($0.guestPhysicalAddress, $0.size) }
    }

    /// Sends IOTLB messages, as one batch when the device takes batches (VHOST_BACKEND_F_IOTLB_BATCH).
    private func sendBatched(_ messages: [IOTLBMessage]) throws(VhostError) {
        let batch = backendFeatures.contains(.iotlbBatch)
        try device.send(batch ? [.batchBegin()] + messages + [.batchEnd()] : messages)
    }

    /// Removes every IOTLB mapping (VHOST_IOTLB_INVALIDATE): the kernel unpins the consumer's
    /// pages. Best effort: a device that refuses still drops them when it is closed.
    func unmapAll() {
        guard !mapped.isEmpty else { return }
        let messages = mapped.map { IOTLBMessage.invalidate(iova: IOVA($0.iova), size: $0.size) }
        mapped = []
        try? sendBatched(messages)
    }

    /// VHOST_VDPA_SUSPEND: the device stops at a clean point; every used descriptor is
    /// written back, none is half-processed.
    func suspend() throws(VhostError) {
        guard running, !suspended else { return }
        guard canSuspend else {
            throw VhostError(step: "VHOST_VDPA_SUSPEND", device: device.path, errno: ErrnoCode.notSupported, reason: "the device's backend cannot suspend (no VHOST_BACKEND_F_SUSPEND)")
        }
        try device.suspend()
        suspended = true
    }

    /// VHOST_VDPA_RESUME, then one kick of each enabled queue of `queues` (the start rule of
    /// ``launch``: kicks that came while suspended may have been dropped).
    func resume(session: ConsumerSession) throws(VhostError) {
        guard suspended else { return }
        guard canResume else {
            throw VhostError(step: "VHOST_VDPA_RESUME", device: device.path, errno: ErrnoCode.notSupported, reason: "the device's backend cannot resume (no VHOST_BACKEND_F_RESUME)")
        }
        try device.resume()
        suspended = false
        try kick(session.queues)
    }

    /// VHOST_GET_VRING_BASE of each queue.
    func bases(of queues: [Int]) throws(VhostError) -> [Int: UInt32] {
        var bases: [Int: UInt32] = [:]
        for index in queues { bases[index] = try device.queueBase(QueueIndex(UInt32(index))) }
        return bases
    }

    /// Device-specific configuration space, whole.
    func configSpace() throws(VhostError) -> [UInt8] {
        try device.config(offset: 0, length: try device.configSize())
    }

    /// VHOST_VDPA_GET_CONFIG of `length` bytes at `offset`.
    func config(offset: UInt32, length: UInt32) throws(VhostError) -> [UInt8] {
        try device.config(offset: offset, length: length)
    }

    /// VHOST_VDPA_GET_STATUS.
    func status() throws(VhostError) -> DeviceStatus { try device.status() }

    /// The consumer replaced its memory table: the IOTLB follows when the device runs.
    func memoryChanged(_ session: ConsumerSession) throws(VhostError) {
        if running { try map(session.regions) }
    }

    /// VHOST_SET_VRING_KICK of a running device (a prepared one gets it in ``prepare``).
    func kickChanged(queue index: Int, session: ConsumerSession) throws(VhostError) {
        guard running else { return }
        try device.setKick(QueueIndex(UInt32(index)), session.queues[index]?.kick?.rawValue ?? -1)
    }

    /// VHOST_SET_VRING_CALL of a running device (a prepared one gets it in ``prepare``).
    func callChanged(queue index: Int, session: ConsumerSession) throws(VhostError) {
        guard running else { return }
        try device.setCall(QueueIndex(UInt32(index)), session.queues[index]?.call?.rawValue ?? -1)
    }

    /// VHOST_VDPA_SET_VRING_ENABLE of a running device; a ring enabled on it may already hold
    /// work (the start rule of ``launch``), so it is kicked once.
    func enabledChanged(queue index: Int, session: ConsumerSession) throws(VhostError) {
        guard running, !suspended else { return }
        let enabled = session.queues[index]?.enabled ?? false
        try device.setQueueEnabled(QueueIndex(UInt32(index)), enabled)
        if enabled, let queue = session.queues[index] { try kick([index: queue]) }
    }

    /// Resets the device (status 0): it stops touching guest memory.
    func stop() {
        try? device.setStatus([])
        running = false
        suspended = false
    }

    /// Gives the device up; the kernel resets it on close.
    func release() {
        stop()
        device.close()
    }
}

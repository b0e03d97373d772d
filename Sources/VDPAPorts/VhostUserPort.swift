import Foundation
import Synchronization
import VDPADatapath
import VDPASystem
import VDPAVhost
import VhostUser
import VirtioModel
import Virtqueue

/// Why a port cannot do what was asked.
public struct PortError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// No backend device, or a consumer that has not set up its rings.
        case notAttached
        /// The consumer asked for something the port does not offer.
        case consumer
        /// The port cannot do this (yet).
        case notSupported
    }
    public var kind: Kind
    public var message: String
    public var description: String { message }
}

/// What a port read from its suspended device: the makings of a saved virtqueue state.
public struct PortStateCapture: Sendable {
    public var device: String
    public var deviceType: UInt32
    public var offeredFeatures: VirtioFeatures
    public var negotiatedFeatures: VirtioFeatures
    public var backendFeatures: BackendFeatures
    public var status: DeviceStatus
    public var config: [UInt8]
    public var queueCount: Int
    public var queues: [(index: Int, size: Int, base: UInt32, enabled: Bool)]
    public var layout: QueueLayout
    public var timings: StepTimings
}

/// What processes a port's rings.
public enum PortBackendKind: String, Sendable, Hashable {
    /// A vhost-vdpa device: the rings are processed by the device.
    case hardware
    /// vdpad's own datapath, with a TAP interface as its network side.
    case software
}

/// The backend a port holds, as the API lists it.
public struct PortBackendSnapshot: Sendable, Hashable {
    public var kind: PortBackendKind = .hardware
    /// The device's name; for a software backend, the TAP's.
    public var device: String
    public var path: String
    public var offeredFeatures: VirtioFeatures
    /// What a port serves a VMM from it: its features less those vdpad does not mediate on
    /// this kind of backend (a device's control queue, ACCESS_PLATFORM).
    public var servedFeatures: VirtioFeatures
    public var backendFeatures: BackendFeatures
    public var queueCount: Int
    public var maximumQueueSize: Int
    /// Whether the backend can stop its rings at a clean point, and start them again there
    /// (a device: VHOST_BACKEND_F_SUSPEND / _RESUME; the software datapath always can).
    public var canSuspend: Bool
    public var canResume: Bool
}

/// What a port looks like right now.
public struct PortStatus: Sendable, Hashable {
    public enum State: String, Sendable { case waiting, configuring, running, suspended, detached }
    public var state: State
    public var consumerConnected: Bool
    public var consumerFeatures: VirtioFeatures?
    public var memoryRegions: Int
    public var queues: [Int]
    public var driverOK: Bool
    public var backend: PortBackendSnapshot?
    /// What the backend runs with, when it runs: the features and each set-up queue's size.
    public var runningFeatures: VirtioFeatures?
    public var runningDeviceType: UInt32?
    public var queueSizes: [Int: Int]
    /// Connections refused because their peer was not the allowed consumer.
    public var refusedConsumers: Int = 0
    /// A software backend's counters (read live, without the port's lock).
    public var softwareCounters: SoftwareCounters?
    /// The last request of the consumer the port refused, with the reason.
    public var lastConsumerError: String?
}

/// What a port presents to its VMM whatever backs it (a profile): exactly these features, and
/// this MAC and MTU in its configuration space. Fixed for the port's life: a backend that
/// cannot present it is refused before it is attached.
public struct PortPresentation: Sendable, Hashable {
    public var features: VirtioFeatures
    public var mac: MACAddress?
    public var mtu: UInt16?
    public init(features: VirtioFeatures, mac: MACAddress?, mtu: UInt16?) {
        self.features = features
        self.mac = mac
        self.mtu = mtu
    }

    /// `bytes` of a virtio_net_config read at `offset`, with this MAC (bytes 0–5) and MTU
    /// (bytes 10–11, little-endian) in place (§5.1.4).
    func overlaid(_ bytes: [UInt8], at offset: UInt32) -> [UInt8] {
        var result = bytes
        func put(_ value: [UInt8], at position: Int) {
            for (index, byte) in value.enumerated() {
                let target = position + index - Int(offset)
                if target >= 0 && target < result.count { result[target] = byte }
            }
        }
        if let mac { put(mac.bytes, at: 0) }
        if let mtu { put([UInt8(truncatingIfNeeded: mtu), UInt8(truncatingIfNeeded: mtu >> 8)], at: 10) }
        return result
    }
}

/// Who may connect to a port besides root: a VMM whose uid is `uid`, or whose groups
/// (its primary group and those the group database gives its user) include `gid`.
public struct AllowedConsumer: Sendable, Hashable {
    public var uid: UInt32?
    public var gid: UInt32?
    public init(uid: UInt32?, gid: UInt32?) {
        self.uid = uid
        self.gid = gid
    }

    public func admits(_ peer: PeerCredentials) -> Bool {
        if peer.uid == 0 || peer.uid == uid { return true }
        guard let gid else { return false }
        return PeerIdentity.groups(of: peer).contains(gid)
    }
}

/// A port: a vhost-user socket one consumer (a VMM) connects to, answered by vdpad itself,
/// with a vhost-vdpa device vdpad holds as the backend that processes the consumer's rings.
///
/// vdpad offers the consumer the device's features minus what it does not mediate yet (the
/// control virtqueue and what depends on it) and minus ACCESS_PLATFORM (vdpad maps the
/// consumer's memory into the device itself, IOVA = guest physical address). Because vdpad
/// owns the device (`VHOST_SET_OWNER`: vhost-vdpa takes one owner), it can suspend it, read
/// every ring's position and start another device there: the consumer notices nothing.
///
/// Thread safety: one lock guards all state; the connection thread and the controller both
/// take it, and device work (ioctls, mapping the consumer's memory, IOTLB updates that pin
/// it) runs under it. That work can take as long as a consumer makes it take, so what the
/// port looks like is published apart: ``status`` is the state at the last release of the
/// lock, read without waiting for the port.
public final class VhostUserPort: VhostUserBackendHandler, @unchecked Sendable {
    // SAFETY (@unchecked): every mutable field is read and written under `lock`; `published`
    // is a Mutex of its own.
    public let name: String
    public let socketPath: String
    private let opener: any VhostVDPAOpening
    private let lock = NSLock()
    private let published = Mutex(PortStatus(state: .waiting, consumerConnected: false, consumerFeatures: nil, memoryRegions: 0, queues: [],
                                             driverOK: false, backend: nil, runningFeatures: nil, runningDeviceType: nil, queueSizes: [:]))

    // The consumer's side.
    private var connected = false
    private var protocolFeatures: VhostUserProtocolFeatures = []
    /// The consumer's features, memory and rings: what every backend starts from.
    private var session = ConsumerSession()
    private var consumerStatus: UInt8 = 0
    private var driverOK = false
    /// Positions read from the last device the consumer's rings ran on, by queue: where the
    /// next device starts.
    private var lastKnownBases: [Int: UInt32] = [:]
    /// Changes whenever the consumer changes its memory or rings (a staged device is stale then).
    private var consumerGeneration: UInt64 = 0

    // The backend.
    private var backend: (any PortBackend)?
    /// The last offer made to a consumer, kept while no device is attached.
    private var lastOffer: VirtioFeatures?

    // Serving.
    /// The most guest memory (bytes, all regions together) a consumer may give the port: what
    /// the device pins of it is at most this.
    public let memoryLimit: UInt64
    public static let defaultMemoryLimit: UInt64 = 64 << 30
    public let allowedConsumer: AllowedConsumer?
    /// What the VMM is offered whatever backs the port (nil: the backend's own features, less
    /// what vdpad does not mediate).
    public let presentation: PortPresentation?
    private let onRefusal: @Sendable (PeerCredentials?) -> Void
    private let onConsumerError: @Sendable (String) -> Void
    private var lastConsumerError: String?
    private var refusedConsumers = 0
    private var listener: UnixListeningSocket?
    private var connection: VhostUserBackendConnection?
    private var stopped = false

    /// `VHOST_USER_F_PROTOCOL_FEATURES` (bit 30 of GET_FEATURES).
    public static let protocolFeaturesBit = VirtioFeatures(rawValue: 1 << 30)
    static let offeredProtocolFeatures: VhostUserProtocolFeatures = [.multipleQueues, .replyAck, .config, .status]

    /// The group of the socket file (nil: the daemon's): QEMU under libvirt runs as its own user.
    private let socketGroup: String?

    /// - Parameters:
    ///   - allowedConsumer: who may connect besides root (nil: whoever the socket lets in).
    ///   - onRefusal: told of each connection refused for its peer (for the log).
    ///   - onConsumerError: told of each request of the consumer the port refused, with why (for the log).
    ///   - memoryLimit: the most guest memory a consumer may map through the port.
    public init(name: String, socketPath: String, socketGroup: String? = nil, allowedConsumer: AllowedConsumer? = nil,
                presentation: PortPresentation? = nil, memoryLimit: UInt64 = defaultMemoryLimit,
                onRefusal: @escaping @Sendable (PeerCredentials?) -> Void = { _ in },
                onConsumerError: @escaping @Sendable (String) -> Void = { _ in }, opener: any VhostVDPAOpening) {
        self.onConsumerError = onConsumerError
        self.presentation = presentation
        self.memoryLimit = memoryLimit
        self.allowedConsumer = allowedConsumer
        self.onRefusal = onRefusal
        self.socketGroup = socketGroup
        self.name = name
        self.socketPath = socketPath
        self.opener = opener
    }

    /// Reads under the lock without publishing (for the accept loop's checks, which change nothing).
    private func readLocked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }

    /// Runs `body` under the lock, and publishes the status it leaves.
    private func locked<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock.lock()
        defer {
            let status = currentStatus()
            published.withLock { $0 = status }
            lock.unlock()
        }
        return try body()
    }

    // MARK: serving

    /// Creates the socket and serves consumers, one at a time, on a thread of its own.
    public func start() throws {
        let socket = try UnixListeningSocket(path: socketPath, mode: 0o660, group: socketGroup)
        locked { listener = socket }
        let thread = Thread { [self] in serve(socket) }
        thread.name = "vdpad-port-\(name)"
        thread.start()
    }

    private func serve(_ socket: UnixListeningSocket) {
        while !readLocked({ stopped }) {
            guard let accepted = try? socket.accept() else {
                if readLocked({ stopped }) { return }
                Thread.sleep(forTimeInterval: 0.05)
                continue
            }
            // The peer as the kernel recorded it at connect(2) (SO_PEERCRED).
            if let allowedConsumer {
                let peer = try? PeerIdentity.credentials(ofSocket: accepted.fileDescriptor)
                guard let peer, allowedConsumer.admits(peer) else {
                    accepted.close()
                    locked { refusedConsumers += 1 }
                    onRefusal(peer)
                    continue
                }
            }
            let connection = VhostUserBackendConnection(socket: accepted, handler: self)
            let refused: Bool = locked {
                if stopped || connected { return true }
                connected = true
                self.connection = connection
                return false
            }
            if refused {
                accepted.close()
                continue
            }
            connection.run()
        }
    }

    /// Stops serving: the consumer is disconnected, the socket removed, the device released.
    public func stop() {
        let (listener, connection): (UnixListeningSocket?, VhostUserBackendConnection?) = locked {
            stopped = true
            return (self.listener, self.connection)
        }
        connection?.stop()
        listener?.close()
        locked {
            backend?.release()
            backend = nil
            resetConsumer()
        }
    }

    // MARK: the backend

    /// Opens and takes `device` (its `/dev/vhost-vdpa-N` at `path`) as the backend. When the
    /// consumer's rings are running on another device, they move: see ``move(to:path:check:)``;
    /// when they are stopped, they start on it where they stood.
    @discardableResult
    public func attach(device: String, path: String, check: (PortBackendSnapshot) throws -> Void = { _ in }) throws -> StepTimings {
        try locked { () throws -> StepTimings in
            if let current = backend, current.running, !current.suspended, current.deviceName != device {
                if current.snapshot.kind == .software {
                    throw PortError(kind: .notSupported, message: "port \(name): its rings run in software on TAP \(current.deviceName); switching running rings to a device is not supported yet (detach first)")
                }
                return try moveLocked(to: device, path: path, check: check)
            }
            return try attachLocked(name: device) { timings in try open(device: device, path: path, check: check, timings: &timings) }
        }
    }

    /// Takes vdpad's own datapath as the backend, with TAP interface `tap` as its network side
    /// (created when it does not exist; `queuePairs` queues, multi-queue with more than one).
    /// When the consumer's rings are stopped, they start on it where they stood; rings running
    /// on a device do not switch (not supported yet).
    @discardableResult
    public func attach(tap: String, queuePairs: Int = 1, options: NetWorkerOptions = NetWorkerOptions(),
                       check: (PortBackendSnapshot) throws -> Void = { _ in }) throws -> StepTimings {
        try attach(name: tap, options: options, check: check) { try TapNetwork(name: tap, queuePairs: queuePairs) }
    }

    /// Takes vdpad's own datapath as the backend, with the network side `open` makes (for
    /// network sides other than a TAP: a benchmark's packet sink and source).
    @discardableResult
    public func attach(name network: String, options: NetWorkerOptions = NetWorkerOptions(),
                       check: (PortBackendSnapshot) throws -> Void = { _ in },
                       network open: () throws -> any SoftwareNetwork) throws -> StepTimings {
        try locked { () throws -> StepTimings in
            if let current = backend, current.running, !current.suspended, current.deviceName != network {
                throw PortError(kind: .notSupported, message: "port \(name): its rings run on \(current.deviceName); switching running rings to the software datapath is not supported yet (detach first)")
            }
            return try attachLocked(name: network) { timings in
                let software = try timings.measure("open") { () throws in
                    SoftwareBackend(network: try open(), mac: presentation?.mac, mtu: presentation?.mtu, options: options)
                }
                try check(software.snapshot)
                return software
            }
        }
    }

    /// Replaces the backend (released first when `name` is the one held) with the one `open`
    /// makes, and starts it when the consumer's rings are set up.
    private func attachLocked(name: String, open: (inout StepTimings) throws -> any PortBackend) throws -> StepTimings {
        var timings = StepTimings()
        if backend?.deviceName == name { releaseBackend() }
        let opened = try open(&timings)
        releaseBackend()
        install(opened)
        if driverOK { try startBackend(bases: lastKnownBases, timings: &timings) }
        return timings
    }



    /// Opens and owns a device, and lets `check` refuse it before anything is programmed.
    private func open(device: String, path: String, check: (PortBackendSnapshot) throws -> Void, timings: inout StepTimings) throws -> any PortBackend {
        let hardware = try timings.measure("open") { () throws in
            try HardwareBackend(deviceName: device, path: path, device: try opener.open(path: path))
        }
        do {
            try check(hardware.snapshot)
        } catch {
            hardware.release()
            throw error
        }
        return hardware
    }

    private func install(_ newBackend: any PortBackend) {
        backend = newBackend
        lastOffer = Self.offer(from: newBackend.servedFeatures)
    }

    /// Moves running rings to another device with the shortest pause: the target is opened
    /// and prepared (features, maps, vring sizes, addresses, eventfds) while the current
    /// device still runs; then the current one is suspended, its ring positions read, and the
    /// target launched there (bases, enable, DRIVER_OK). `pause` in the timings is that
    /// suspend-to-DRIVER_OK window; the old device is released after.
    public func move(to device: String, path: String, check: (PortBackendSnapshot) throws -> Void = { _ in }) throws -> StepTimings {
        try locked { () throws -> StepTimings in try moveLocked(to: device, path: path, check: check) }
    }

    private func moveLocked(to device: String, path: String, check: (PortBackendSnapshot) throws -> Void) throws -> StepTimings {
        guard let current = backend, current.running, !current.suspended else {
            throw PortError(kind: .notAttached, message: "port \(name): no device is running the consumer's rings")
        }
        guard current.canSuspend else {
            throw VhostError(step: "VHOST_VDPA_SUSPEND", device: current.snapshot.path, errno: ErrnoCode.notSupported,
                             reason: "the device's backend cannot suspend (no VHOST_BACKEND_F_SUSPEND): its rings cannot move")
        }
        var timings = StepTimings()
        let target = try open(device: device, path: path, check: check, timings: &timings)
        do {
            try target.prepare(features: current.negotiatedFeatures, session: session, timings: &timings)
            let pauseStart = ContinuousClock.now
            try timings.measure("suspend") { () throws in try current.suspend() }
            let indexes = session.configuredQueueIndexes
            let bases = try timings.measure("read_base") { () throws in try current.bases(of: indexes) }
            try target.launch(session: session, bases: bases, timings: &timings)
            timings.record("pause", since: pauseStart)
            lastKnownBases = bases
        } catch {
            target.release()
            if current.suspended { try? current.resume(session: session) }
            throw error
        }
        timings.measure("release") { current.release() }
        install(target)
        return timings
    }

    /// Releases the backend device (suspending it first to learn where the rings stand).
    public func detach() {
        locked { releaseBackend() }
    }

    private func releaseBackend() {
        guard let held = backend else { return }
        rememberWhereTheRingsStand()
        held.release()
        backend = nil
    }

    /// The device held, if any (as of the last release of the lock: never waits).
    public var backendDevice: PortBackendSnapshot? { status.backend }

    private func backendSnapshot() -> PortBackendSnapshot? { backend?.snapshot }

    /// What the port looks like, as of the last release of its lock: never waits for device work.
    public var status: PortStatus { published.withLock { $0 } }

    private func currentStatus() -> PortStatus {
        do {
            let state: PortStatus.State
            if !connected && !driverOK {
                state = .waiting
            } else if let backend {
                state = backend.running ? (backend.suspended ? .suspended : .running) : (driverOK ? .detached : .configuring)
            } else {
                state = driverOK ? .detached : .configuring
            }
            return PortStatus(state: state, consumerConnected: connected, consumerFeatures: session.features, memoryRegions: session.regions.count,
                              queues: session.queues.keys.sorted(), driverOK: driverOK, backend: backendSnapshot(),
                              runningFeatures: backend?.running == true ? backend?.negotiatedFeatures : nil, runningDeviceType: backend?.deviceType,
                              queueSizes: session.queues.filter { $0.value.addresses != nil }.mapValues { Int($0.size) }, refusedConsumers: refusedConsumers,
                              softwareCounters: (backend as? SoftwareBackend)?.counters, lastConsumerError: lastConsumerError)
        }
    }

    private func startBackend(bases: [Int: UInt32], timings: inout StepTimings) throws {
        guard let backend else { return }
        guard let consumerFeatures = session.features else { throw PortError(kind: .notAttached, message: "port \(name): the consumer has not set its features") }
        try backend.prepare(features: runningFeatures(for: consumerFeatures, on: backend), session: session, timings: &timings)
        try backend.launch(session: session, bases: bases, timings: &timings)
    }

    /// What a backend runs with: the consumer's features without the vhost-user bit, and
    /// what the backend adds (a device's ACCESS_PLATFORM: vdpad maps through the IOTLB).
    private func runningFeatures(for consumerFeatures: VirtioFeatures, on backend: any PortBackend) -> VirtioFeatures {
        backend.runningFeatures(for: consumerFeatures.subtracting(Self.protocolFeaturesBit))
    }

    // MARK: saving and restoring

    /// Suspends the backend and reads every ring's position, the negotiated features, the
    /// status and the configuration space. The device stays suspended unless `resume`.
    public func capture(resume: Bool) throws -> PortStateCapture {
        try locked { () throws -> PortStateCapture in
            guard let backend, backend.running else {
                throw PortError(kind: .notAttached, message: "port \(name): no device is running the consumer's rings (state: \(backend == nil ? "no backend" : "not started"))")
            }
            var timings = StepTimings()
            try timings.measure("suspend") { () throws in try backend.suspend() }
            let indexes = session.configuredQueueIndexes
            let bases = try timings.measure("read_base") { () throws in try backend.bases(of: indexes) }
            let (status, config) = try timings.measure("status_config") { () throws in (try backend.status(), try backend.configSpace()) }
            lastKnownBases = bases
            if resume { try timings.measure("resume") { () throws in try backend.resume(session: session) } }
            let layout: QueueLayout = backend.negotiatedFeatures.contains(.ringPacked) ? .packed : .split
            return PortStateCapture(
                device: backend.deviceName, deviceType: backend.deviceType, offeredFeatures: backend.offeredFeatures,
                negotiatedFeatures: backend.negotiatedFeatures, backendFeatures: backend.backendFeatures, status: status, config: config,
                queueCount: backend.queueCount,
                queues: indexes.map { (index: $0, size: Int(session.queues[$0]?.size ?? 0), base: bases[$0] ?? 0, enabled: session.queues[$0]?.enabled ?? false) },
                layout: layout, timings: timings)
        }
    }

    /// Resumes a suspended backend (VHOST_VDPA_RESUME, then a kick of each enabled queue):
    /// after a capture whose state could not be kept, the rings run on where they stopped.
    public func resume() throws {
        try locked { () throws in
            guard let backend, backend.suspended else { return }
            try backend.resume(session: session)
        }
    }

    /// Whether the consumer has set up its rings (a restore needs them); never waits.
    public var consumerReady: Bool {
        let status = self.status
        return status.driverOK && status.memoryRegions > 0
    }

    /// A device opened, checked and prepared for the consumer's rings, not yet running:
    /// the first half of a restore (the caller may replay device state in between).
    public final class StagedBackend: @unchecked Sendable {
        // SAFETY (@unchecked): used by one caller between stage and launch.
        fileprivate let backend: any PortBackend
        fileprivate let generation: UInt64
        public fileprivate(set) var timings: StepTimings
        fileprivate var launched = false
        fileprivate init(backend: any PortBackend, generation: UInt64, timings: StepTimings) {
            self.backend = backend
            self.generation = generation
            self.timings = timings
        }
        deinit { if !launched { backend.release() } }
    }

    /// Opens `device`, lets `check` refuse it, and prepares it (features, maps, vring sizes,
    /// addresses, eventfds). When the port holds that very device, it is released first.
    public func stage(device: String, path: String, check: (PortBackendSnapshot) throws -> Void = { _ in }) throws -> StagedBackend {
        try locked { () throws -> StagedBackend in
            guard driverOK, !session.regions.isEmpty, let consumerFeatures = session.features else {
                throw PortError(kind: .notAttached, message: "port \(name): no consumer has set up its rings to start a device under")
            }
            var timings = StepTimings()
            if backend?.deviceName == device, let held = backendSnapshot() {
                // The held device itself: checked as it is, then released and opened afresh.
                try check(held)
                timings.measure("release") { releaseBackend() }
            }
            let hardware = try open(device: device, path: path, check: check, timings: &timings)
            do {
                try hardware.prepare(features: runningFeatures(for: consumerFeatures, on: hardware), session: session, timings: &timings)
            } catch {
                hardware.release()
                throw error
            }
            return StagedBackend(backend: hardware, generation: consumerGeneration, timings: timings)
        }
    }

    /// Releases the current backend and launches the staged one with every ring at `bases`
    /// (the vhost encoding of a saved state). Returns the timings of both halves.
    public func launch(_ staged: StagedBackend, bases: [Int: UInt32]) throws -> StepTimings {
        try locked { () throws -> StepTimings in
            guard staged.generation == consumerGeneration, driverOK, session.features != nil else {
                throw PortError(kind: .notAttached, message: "port \(name): the consumer changed its set-up while the device was being prepared; try again")
            }
            var timings = staged.timings
            timings.measure("release") { releaseBackend() }
            staged.launched = true
            install(staged.backend)
            try staged.backend.launch(session: session, bases: bases, timings: &timings)
            lastKnownBases = bases
            return timings
        }
    }

    // MARK: vhost-user (the consumer's requests)

    /// What the consumer is offered: from the device held, else the last one held.
    private var currentOffer: VirtioFeatures? {
        // A presentation is the offer, whatever backs the port (the backend was checked to present it).
        if let presentation { return presentation.features.subtracting(.accessPlatform).union(Self.protocolFeaturesBit) }
        return backend.map { Self.offer(from: $0.servedFeatures) } ?? lastOffer
    }

    /// A consumer's SET_VRING_BASE as a full vhost base. A packed ring's base is the avail
    /// position and wrap counter in the low 16 bits and the used ones in the high 16 (QEMU sends
    /// both); DPDK's virtio-user sends the low half only, meaning nothing is in flight: the used
    /// position and wrap counter are the avail ones, as DPDK's own vhost library reads it.
    static func consumerBase(_ value: UInt32, packed: Bool) -> UInt32 {
        guard packed, value >> 16 == 0 else { return value }
        return value | value << 16
    }

    /// What a port offers its consumer from a backend (without a presentation): what it serves
    /// from it (``PortBackendSnapshot/servedFeatures``), plus the vhost-user protocol bit.
    public static func offer(from servedFeatures: VirtioFeatures) -> VirtioFeatures {
        servedFeatures.union(protocolFeaturesBit)
    }

    public func handle(_ request: VhostUserRequest, fileDescriptors: [OwnedFileDescriptor]) throws -> VhostUserReply? {
        do {
            return try locked { () throws -> VhostUserReply? in try handleLocked(request, fileDescriptors) }
        } catch {
            // The consumer hears only a failed ack (or the connection closes): the reason goes
            // to the log and to the port's status.
            let reason = "\(String(describing: request).prefix(120)): \(error)"
            locked { lastConsumerError = reason }
            onConsumerError(reason)
            throw error
        }
    }

    private func handleLocked(_ request: VhostUserRequest, _ fds: [OwnedFileDescriptor]) throws -> VhostUserReply? {
        switch request {
        case .setMemoryTable, .setVringNum, .setVringAddress, .setVringKick, .setVringCall, .setFeatures, .resetOwner: consumerGeneration &+= 1
        default: break
        }
        switch request {
        case .getFeatures:
            guard let offer = currentOffer else {
                throw PortError(kind: .consumer, message: "port \(name) has no backend device to offer features from")
            }
            return .u64(offer.rawValue)
        case .setFeatures(let raw):
            let features = VirtioFeatures(rawValue: raw)
            if let offer = currentOffer, !features.isSubset(of: offer) {
                throw PortError(kind: .consumer, message: "port \(name): features \(features.subtracting(offer)) were not offered")
            }
            session.features = features
            return nil
        case .setOwner:
            return nil
        case .resetOwner:
            resetConsumer()
            return nil
        case .getProtocolFeatures:
            return .u64(Self.offeredProtocolFeatures.rawValue)
        case .setProtocolFeatures(let raw):
            protocolFeatures = VhostUserProtocolFeatures(rawValue: raw).intersection(Self.offeredProtocolFeatures)
            return nil
        case .getQueueNum:
            let count = backend?.queueCount ?? 2
            return .u64(UInt64(max(1, count / 2)))
        case .setMemoryTable(let described):
            guard described.count == fds.count else {
                throw PortError(kind: .consumer, message: "port \(name): \(described.count) memory regions with \(fds.count) file descriptors")
            }
            // Every bound before anything is mapped: sizes, no address range past 2^64, the limit.
            var total: UInt64 = 0
            for region in described {
                guard region.size > 0, region.size <= UInt64(Int.max),
                      !region.guestPhysicalAddress.addingReportingOverflow(region.size).overflow,
                      !region.userAddress.addingReportingOverflow(region.size).overflow else {
                    throw PortError(kind: .consumer, message: "port \(name): memory region of \(region.size) bytes at 0x\(String(region.guestPhysicalAddress, radix: 16))")
                }
                let (sum, overflow) = total.addingReportingOverflow(region.size)
                guard !overflow, sum <= memoryLimit else {
                    throw PortError(kind: .consumer, message: "port \(name): the consumer's memory is over the port's limit of \(memoryLimit) bytes")
                }
                total = sum
            }
            var mapped: [ConsumerMemoryRegion] = []
            for (region, fd) in zip(described, fds) {
                // Sealed before it is mapped, where the file allows it (QEMU's and DPDK's memfds do).
                // A hardware port takes an unsealable file (vdpad does not read its memory: the
                // device does, through pages the kernel pinned); the software backend refuses it.
                let sealed = MappedFile.sealAgainstShrinking(fileDescriptor: fd.rawValue)
                let mapping = try MappedFile(fileDescriptor: fd.rawValue, offset: region.mmapOffset, length: Int(region.size))
                mapped.append(ConsumerMemoryRegion(guestPhysicalAddress: region.guestPhysicalAddress, size: region.size,
                                                   consumerAddress: region.userAddress, mapping: mapping, sealedAgainstShrinking: sealed))
            }
            var next = session
            next.regions = mapped
            try backend?.memoryChanged(next)
            session = next
            return nil
        case .setVringNum(let state):
            let index = try queueIndex(state.index)
            guard state.num > 0, state.num <= 32768, state.num & (state.num - 1) == 0 || session.features?.contains(.ringPacked) == true else {
                throw PortError(kind: .consumer, message: "port \(name): queue \(index) size \(state.num)")
            }
            session.queues[index, default: ConsumerQueue()].size = UInt16(state.num)
            return nil
        case .setVringAddress(let address):
            let index = try queueIndex(address.index)
            func translate(_ consumerAddress: UInt64, _ what: String) throws -> IOVA {
                guard let physical = session.regions.lazy.compactMap({ $0.guestPhysical(ofConsumerAddress: consumerAddress) }).first else {
                    throw PortError(kind: .consumer, message: "port \(name): queue \(index) \(what) address 0x\(String(consumerAddress, radix: 16)) is in no memory region")
                }
                return IOVA(physical)
            }
            session.queues[index, default: ConsumerQueue()].addresses = VringAddresses(
                descriptorTable: try translate(address.descriptorTable, "descriptor table"),
                driverArea: try translate(address.availableRing, "available ring"),
                deviceArea: try translate(address.usedRing, "used ring"))
            return nil
        case .setVringBase(let state):
            let index = try queueIndex(state.index)
            session.queues[index, default: ConsumerQueue()].base = Self.consumerBase(state.num, packed: session.features?.contains(.ringPacked) == true)
            lastKnownBases[index] = nil
            return nil
        case .getVringBase(let raw):
            // vhost-user: GET_VRING_BASE stops the ring and answers where it stands.
            let index = try queueIndex(raw)
            var base = lastKnownBases[index] ?? session.queues[index]?.base ?? 0
            if let backend, backend.running {
                if backend.canSuspend {
                    try backend.suspend()
                    base = try backend.bases(of: [index])[index] ?? base
                    lastKnownBases[index] = base
                } else {
                    backend.stop()
                }
            }
            session.queues[index]?.enabled = false
            return .vringState(VhostUserVringState(index: UInt32(index), num: base))
        case .setVringKick(let raw, let hasFD), .setVringCall(let raw, let hasFD):
            let index = try queueIndex(raw)
            let fd = hasFD ? fds.first : nil
            if case .setVringKick = request {
                session.queues[index, default: ConsumerQueue()].kick = fd
                try backend?.kickChanged(queue: index, session: session)
            } else {
                session.queues[index, default: ConsumerQueue()].call = fd
                try backend?.callChanged(queue: index, session: session)
            }
            return nil
        case .setVringErr:
            return nil
        case .setVringEnable(let state):
            let index = try queueIndex(state.index)
            session.queues[index, default: ConsumerQueue()].enabled = state.num != 0
            try backend?.enabledChanged(queue: index, session: session)
            if !protocolFeatures.contains(.status), !driverOK, session.allConfiguredQueuesReady {
                try consumerStarted()
            }
            return nil
        case .getConfig(let offset, let size, let flags):
            guard let backend else { throw PortError(kind: .consumer, message: "port \(name) has no backend device to read config from") }
            let bytes = try backend.config(offset: offset, length: size)
            return .config(offset: offset, flags: flags, bytes: presentation?.overlaid(bytes, at: offset) ?? bytes)
        case .setConfig:
            throw PortError(kind: .consumer, message: "port \(name): the configuration space is read-only")
        case .setStatus(let raw):
            consumerStatus = raw
            let status = DeviceStatus(rawValue: raw)
            if raw == 0 {
                backend?.stop()
                driverOK = false
            } else if status.contains(.driverOK), !driverOK {
                try consumerStarted()
            }
            return nil
        case .getStatus:
            return .u64(UInt64(consumerStatus))
        case .getMaxMemorySlots:
            return .u64(UInt64(VhostUserCodec.maximumFileDescriptors))
        default:
            throw PortError(kind: .consumer, message: "port \(name): request not supported")
        }
    }


    /// When the backend runs, suspends it and keeps each ring's position for the next device
    /// (best effort: a device that cannot suspend keeps the consumer's own bases).
    private func rememberWhereTheRingsStand() {
        guard let backend, backend.running else { return }
        if (try? backend.suspend()) != nil, let read = try? backend.bases(of: session.configuredQueueIndexes) {
            lastKnownBases = read
        }
    }

    private func consumerStarted() throws {
        driverOK = true
        var timings = StepTimings()
        try startBackend(bases: lastKnownBases, timings: &timings)
    }

    private func queueIndex(_ raw: UInt32) throws -> Int {
        let limit = backend?.queueCount ?? 256
        guard raw < UInt32(limit) else { throw PortError(kind: .consumer, message: "port \(name): queue \(raw) does not exist (\(limit) queues)") }
        return Int(raw)
    }

    /// Forgets the consumer: the device stops, its IOTLB mappings of the consumer's memory go
    /// (the kernel unpins the pages), then vdpad's own mappings.
    private func resetConsumer() {
        consumerGeneration &+= 1
        backend?.stop()
        backend?.unmapAll()
        session = ConsumerSession()
        protocolFeatures = []
        consumerStatus = 0
        driverOK = false
    }

    public func connectionClosed() {
        locked {
            rememberWhereTheRingsStand()
            resetConsumer()
            connected = false
            connection = nil
        }
    }
}

import Synchronization
import VDPADatapath
import VDPASystem
import VDPAVhost
import VirtioModel
import VirtioNet
import Virtqueue

/// The software backend of a port: vdpad's own virtio-net datapath (``SoftwareNetDevice``,
/// one worker thread per queue pair) serving the consumer's rings in the consumer's memory,
/// with a network side (``SoftwareNetwork``: a TAP interface with `IFF_VNET_HDR`, one queue
/// per pair; the guest's headers, and so its checksum and segmentation offloads, pass through
/// to the kernel as they are).
///
/// Queue pair N is receiveq 2N and transmitq 2N+1 (§5.1.2); the pairs served are those the
/// consumer set up and enabled, from pair 0 on (a VMM enables more as its guest asks for them
/// with VIRTIO_NET_CTRL_MQ); the control queue (2 × max_virtqueue_pairs with MQ, else 2) is
/// answered by the first worker when the consumer gives it rings. What the guest set through
/// it (receive mode, MAC, filters, pairs) is kept by the backend across every restart of the
/// workers, until the consumer resets the device.
///
/// Guest memory is read by vdpad itself here. Every ring and buffer address is checked against
/// the regions by the virtqueue library before it is touched; a region whose file is not
/// sealed against shrinking (DPDK's memfds, hugetlbfs files) is guarded: should the VMM
/// truncate it, the accesses past its end are absorbed (``GuardedMemoryRange``), counted in
/// `memory_faults`, and the device reports DEVICE_NEEDS_RESET; the daemon lives.
///
/// Suspending stops the workers at a clean point (nothing popped is left unfinished) and
/// keeps each ring's state; resuming, a change of the consumer's memory, eventfds or enabled
/// queues, start new workers from exactly those states.
final class SoftwareBackend: PortBackend {
    let network: any SoftwareNetwork
    let offeredFeatures: VirtioFeatures
    let backendFeatures: BackendFeatures = []
    /// The most queue pairs (config space `max_virtqueue_pairs`): one per queue of the network side.
    let queuePairs: Int
    let deviceType = VirtioDeviceType.network.rawValue
    let maximumQueueSize = Int(QueueState.maximumSize)
    let canSuspend = true
    let options: NetWorkerOptions
    private let mac: MACAddress?
    private let configuration: [UInt8]
    private(set) var negotiatedFeatures: VirtioFeatures = []
    private(set) var running = false
    private(set) var suspended = false
    private var device: SoftwareNetDevice<GuestMemoryRegions>?
    /// What the workers use and must outlive them: the regions (their mappings) and the
    /// consumer's eventfds as they were at launch.
    private var held: (regions: [ConsumerMemoryRegion], queues: [Int: ConsumerQueue]) = ([], [:])
    /// Where each ring stands while no worker runs it (at launch, after a stop), by queue index.
    private var states: [Int: QueueState] = [:]
    /// The counters, readable without the port's lock.
    let counters = SoftwareCounters()

    /// The features vdpad's datapath implements: split and packed rings, EVENT_IDX, indirect
    /// descriptors, mergeable receive buffers, checksum and TSO offloads in both directions
    /// (through the TAP), the status field, the control queue with receive modes, MAC and VLAN
    /// filters and the MAC address; MQ with more than one pair; MAC and MTU when configured.
    static let datapathFeatures: VirtioFeatures = [
        .version1, .ringPacked, .ringEventIndex, .ringIndirectDescriptors,
        .Net.mergeableRxBuffers, .Net.status, .Net.checksum, .Net.guestChecksum,
        .Net.hostTSO4, .Net.hostTSO6, .Net.hostECN, .Net.guestTSO4, .Net.guestTSO6, .Net.guestECN,
        .Net.controlVirtqueue, .Net.controlRx, .Net.controlRxExtra, .Net.controlVLAN, .Net.controlMACAddress,
    ]

    /// Serves the consumer's rings with `network` as the network side (one pair per queue).
    init(network: any SoftwareNetwork, mac: MACAddress?, mtu: UInt16?, options: NetWorkerOptions = NetWorkerOptions()) {
        self.network = network
        self.mac = mac
        self.options = options
        queuePairs = network.queuePairs
        var features = Self.datapathFeatures
        if queuePairs > 1 { features.insert(.Net.multiqueue) }
        if mac != nil { features.insert(.Net.mac) }
        if mtu != nil { features.insert(.Net.mtu) }
        offeredFeatures = features
        configuration = Self.netConfiguration(mac: mac, mtu: mtu, queuePairs: UInt16(queuePairs))
    }

    var deviceName: String { network.name }
    var servedFeatures: VirtioFeatures { offeredFeatures }
    /// Receive queues, transmit queues, the control queue.
    var queueCount: Int { 2 * queuePairs + 1 }

    var snapshot: PortBackendSnapshot {
        PortBackendSnapshot(kind: .software, device: network.name, path: network.path, offeredFeatures: offeredFeatures,
                            servedFeatures: servedFeatures,
                            backendFeatures: backendFeatures, queueCount: queueCount, maximumQueueSize: maximumQueueSize,
                            canSuspend: true, canResume: true)
    }

    func runningFeatures(for consumerFeatures: VirtioFeatures) -> VirtioFeatures { consumerFeatures }

    /// `struct virtio_net_config` (§5.1.4): mac, status (LINK_UP), max_virtqueue_pairs, mtu.
    static func netConfiguration(mac: MACAddress?, mtu: UInt16?, queuePairs: UInt16 = 1) -> [UInt8] {
        var bytes = mac?.bytes ?? [UInt8](repeating: 0, count: 6)
        bytes += [0x01, 0x00]  // VIRTIO_NET_S_LINK_UP
        bytes += [UInt8(truncatingIfNeeded: queuePairs), UInt8(truncatingIfNeeded: queuePairs >> 8)]
        let mtu = mtu ?? 1500
        bytes += [UInt8(truncatingIfNeeded: mtu), UInt8(truncatingIfNeeded: mtu >> 8)]
        return bytes
    }

    func prepare(features: VirtioFeatures, session: ConsumerSession, timings: inout StepTimings) throws {
        stopWorkers()
        running = false
        suspended = false
        guard features.isSubset(of: offeredFeatures.union(.accessPlatform)) else {
            throw PortError(kind: .consumer, message: "\(network.name): features \(features.subtracting(offeredFeatures)) are not the software datapath's")
        }
        try timings.measure("offloads") { () throws in try network.setOffloads(for: features, guestOffloads: nil) }
        negotiatedFeatures = features
        states = [:]
        counters.forgetControlState()
    }

    /// The control queue's index for the negotiated features (§5.1.2).
    private var controlQueueIndex: Int { 2 * (negotiatedFeatures.contains(.Net.multiqueue) ? queuePairs : 1) }

    func launch(session: ConsumerSession, bases: [Int: UInt32], timings: inout StepTimings) throws {
        guard session.queues[0]?.isSetUp == true, session.queues[1]?.isSetUp == true else {
            throw PortError(kind: .notAttached, message: "\(network.name): queue pair 0 has no rings (the software datapath serves receiveq 0 and transmitq 1)")
        }
        states = [:]
        addStates(of: session, bases: bases)
        try timings.measure("start") { () throws in try startWorkers(session: session) }
        running = true
        suspended = false
    }

    /// Adds the state of every queue the consumer set up that has none yet: at `bases` (else
    /// the consumer's own SET_VRING_BASE), with the negotiated ring features.
    private func addStates(of session: ConsumerSession, bases: [Int: UInt32] = [:]) {
        let layout: QueueLayout = negotiatedFeatures.contains(.ringPacked) ? .packed : .split
        for (index, queue) in session.queues where index < queueCount && states[index] == nil {
            guard let addresses = queue.addresses, queue.size > 0 else { continue }
            let base = VringBase.decode(bases[index] ?? queue.base, layout: layout)
            states[index] = base.applied(to: QueueState(
                layout: layout, size: queue.size, descriptorArea: GuestAddress(addresses.descriptorTable.rawValue),
                driverArea: GuestAddress(addresses.driverArea.rawValue), deviceArea: GuestAddress(addresses.deviceArea.rawValue),
                eventIndex: negotiatedFeatures.contains(.ringEventIndex),
                indirectDescriptors: negotiatedFeatures.contains(.ringIndirectDescriptors)))
        }
    }

    /// The pairs the workers serve: from pair 0 on, each whose two queues have rings, a kick
    /// eventfd and are enabled (at most max_virtqueue_pairs with MQ, else one).
    private func servedPairs(_ session: ConsumerSession) -> Int {
        let limit = negotiatedFeatures.contains(.Net.multiqueue) ? queuePairs : 1
        func serves(_ index: Int) -> Bool {
            guard let queue = session.queues[index] else { return false }
            return queue.isSetUp && queue.kick != nil && queue.enabled && states[index] != nil
        }
        var pairs = 0
        while pairs < limit, serves(2 * pairs), serves(2 * pairs + 1) { pairs += 1 }
        return pairs
    }

    /// Builds the device over the consumer's memory at the rings' states and starts its
    /// workers. They look at each ring at once (the start rule: work may be pending). With no
    /// pair enabled yet, nothing runs until the consumer enables one.
    private func startWorkers(session: ConsumerSession) throws {
        let pairs = servedPairs(session)
        try network.setServedPairs(pairs)
        guard pairs > 0 else { return }
        // Memory that can shrink under the workers is guarded before they touch it.
        var guards: [GuardedMemoryRange] = []
        for region in session.regions where !region.sealedAgainstShrinking {
            guard let guarded = GuardedMemoryRange(address: region.mapping.address, length: region.mapping.length) else {
                throw PortError(kind: .consumer, message: "\(network.name): the consumer's memory at 0x\(String(region.guestPhysicalAddress, radix: 16)) is not sealed against shrinking and cannot be guarded")
            }
            guards.append(guarded)
        }
        let memory: GuestMemoryRegions
        do {
            memory = try GuestMemoryRegions(session.regions.map {
                GuestMemoryRegion(guestAddress: GuestAddress($0.guestPhysicalAddress), size: $0.size, hostAddress: $0.mapping.address)
            })
        } catch {
            throw PortError(kind: .consumer, message: "\(network.name): the consumer's memory regions: \(error)")
        }
        func notifiers(_ index: Int) throws -> QueueNotifiers {
            guard let kick = session.queues[index]?.kick else {
                throw PortError(kind: .notAttached, message: "\(network.name): queue \(index) has no kick eventfd")
            }
            // The consumer's eventfds stay open while `held` keeps them (the session may drop them).
            let call = try session.queues[index]?.call.map { EventFD(adopting: $0.rawValue, takingOwnership: false) } ?? EventFD()
            return QueueNotifiers(kick: EventFD(adopting: kick.rawValue, takingOwnership: false), call: call)
        }
        var setups: [SoftwareNetDevice<GuestMemoryRegions>.QueuePairSetup] = []
        for pair in 0..<pairs {
            guard let receive = states[2 * pair], let transmit = states[2 * pair + 1] else { continue }
            setups.append(.init(receive: receive, transmit: transmit, receiveNotifiers: try notifiers(2 * pair),
                                transmitNotifiers: try notifiers(2 * pair + 1), backend: network.backend(pair: pair)))
        }
        var control: SoftwareNetDevice<GuestMemoryRegions>.ControlSetup?
        let controlIndex = controlQueueIndex
        if negotiatedFeatures.contains(.Net.controlVirtqueue), let queue = states[controlIndex],
           session.queues[controlIndex]?.enabled == true, session.queues[controlIndex]?.kick != nil {
            control = .init(queue: queue, notifiers: try notifiers(controlIndex))
        }
        // What the guest set before the workers last stopped (the counters keep it), else the state after reset.
        let initialControlState = counters.controlState ?? VirtioNetControlState(features: negotiatedFeatures, macAddress: mac)
        let device = try Self.makeDevice(memory: memory, features: negotiatedFeatures, queuePairs: UInt16(queuePairs), pairs: setups,
                                         control: control, controlState: initialControlState, options: options, name: network.name)
        held = (session.regions, session.queues)
        device.start()
        self.device = device
        // The counters own the guards (they read their fault counts) until the workers stop.
        counters.running(device, guards: guards)
    }

    private static func makeDevice(
        memory: GuestMemoryRegions, features: VirtioFeatures, queuePairs: UInt16,
        pairs: [SoftwareNetDevice<GuestMemoryRegions>.QueuePairSetup], control: SoftwareNetDevice<GuestMemoryRegions>.ControlSetup?,
        controlState: VirtioNetControlState, options: NetWorkerOptions, name: String
    ) throws -> SoftwareNetDevice<GuestMemoryRegions> {
        do {
            return try SoftwareNetDevice(memory: memory, features: features, maximumQueuePairs: queuePairs, pairs: pairs,
                                         control: control, controlState: controlState, options: options)
        } catch {
            throw PortError(kind: .consumer, message: "\(name): the consumer's rings: \(error)")
        }
    }

    /// Stops the workers at a clean point and keeps each ring's state and the control state.
    private func stopWorkers() {
        guard let device else { return }
        let report = device.quiesce()
        for pair in report.pairs {
            states[2 * pair.pair] = pair.receiveState
            states[2 * pair.pair + 1] = pair.transmitState
        }
        if let control = report.controlQueueState { states[controlQueueIndex] = control }
        counters.stopped(report.pairs.map { ($0.receive, $0.transmit) }, control: report.controlState)  // drops the guards, before the mappings they guard
        self.device = nil
        held = ([], [:])
    }

    /// Restarts the workers where they stopped, with the consumer's current memory, eventfds
    /// and enabled queues (queues set up since start where the consumer put them).
    private func restart(_ session: ConsumerSession) throws {
        guard running, !suspended else { return }
        stopWorkers()
        addStates(of: session)
        do {
            try startWorkers(session: session)
        } catch {
            running = false  // nothing serves the rings now: the status must not say otherwise
            throw error
        }
    }

    func suspend() throws {
        guard running, !suspended else { return }
        stopWorkers()
        suspended = true
    }

    func resume(session: ConsumerSession) throws {
        guard suspended else { return }
        addStates(of: session)
        try startWorkers(session: session)
        suspended = false
    }

    func bases(of queues: [Int]) throws -> [Int: UInt32] {
        if device != nil { stopWorkers(); suspended = true }
        var bases: [Int: UInt32] = [:]
        for index in queues {
            guard let state = states[index] else { continue }
            bases[index] = VringBase(state).encoded(for: state.layout)
        }
        return bases
    }

    func status() throws -> DeviceStatus {
        guard running else { return [] }
        var status: DeviceStatus = [.acknowledge, .driver, .featuresOK, .driverOK]
        if device?.fault != nil || counters.memoryFaults > 0 { status.insert(.deviceNeedsReset) }
        return status
    }

    func configSpace() throws -> [UInt8] { configuration }

    func config(offset: UInt32, length: UInt32) throws -> [UInt8] {
        let start = Int(offset), end = Int(offset) + Int(length)
        guard end <= configuration.count else {
            throw PortError(kind: .consumer, message: "\(network.name): config bytes \(start)..<\(end) are past the \(configuration.count) bytes of virtio_net_config")
        }
        return Array(configuration[start..<end])
    }

    func memoryChanged(_ session: ConsumerSession) throws { try restart(session) }
    func kickChanged(queue: Int, session: ConsumerSession) throws { try restart(session) }
    func callChanged(queue: Int, session: ConsumerSession) throws { try restart(session) }
    func enabledChanged(queue: Int, session: ConsumerSession) throws { try restart(session) }

    func unmapAll() {
        stopWorkers()
        running = false
    }

    func stop() {
        stopWorkers()
        states = [:]
        counters.forgetControlState()
        running = false
        suspended = false
    }

    func release() { stop() }
}

/// A software backend's packet counters per queue pair, since the backend was created: those
/// of the workers that ran before (they restart on every change of the consumer's set-up)
/// plus the running ones'. Read from any thread, without the port's lock.
public final class SoftwareCounters: Sendable, Hashable {
    public typealias Pair = (receive: NetQueueCounters, transmit: NetQueueCounters)
    private struct State: @unchecked Sendable {
        // SAFETY (@unchecked): the device's counters are read through its own locks.
        var earlier: [Pair] = [(NetQueueCounters(), NetQueueCounters())]
        var device: SoftwareNetDevice<GuestMemoryRegions>?
        var earlierFaults: UInt64 = 0
        var guards: [GuardedMemoryRange] = []
        var control: VirtioNetControlState?
    }
    private let state = Mutex(State())

    init() {}

    /// Per queue pair: receive (receiveq) and transmit (transmitq) counters.
    public var pairs: [Pair] {
        let (earlier, device) = state.withLock { ($0.earlier, $0.device) }
        return Self.sum(earlier, device?.counters ?? [])
    }

    /// Accesses to guest memory past the end of a file the VMM truncated (absorbed by the guard).
    public var memoryFaults: UInt64 {
        state.withLock { state in state.guards.reduce(state.earlierFaults) { $0 &+ $1.faults } }
    }

    /// What the guest set through the control queue (the running workers' state; else the
    /// state they stopped with; nil before the first start after a reset).
    public var controlState: VirtioNetControlState? {
        let (device, control) = state.withLock { ($0.device, $0.control) }
        return device?.controlState ?? control
    }

    func forgetControlState() { state.withLock { $0.control = nil } }

    func running(_ device: SoftwareNetDevice<GuestMemoryRegions>, guards: [GuardedMemoryRange]) {
        state.withLock {
            $0.device = device
            $0.guards = guards
        }
    }

    /// The workers stopped with these final counts.
    func stopped(_ final: [Pair], control: VirtioNetControlState) {
        state.withLock { state in
            state.control = control
            state.earlier = Self.sum(state.earlier, final)
            state.device = nil
            state.earlierFaults = state.guards.reduce(state.earlierFaults) { $0 &+ $1.faults }
            state.guards = []
        }
    }

    /// Pair by pair, the sum of two lists of counts (a missing pair counts nothing).
    static func sum(_ first: [Pair], _ second: [Pair]) -> [Pair] {
        let zero = (receive: NetQueueCounters(), transmit: NetQueueCounters())
        let pairs = max(first.count, second.count)
        var result: [Pair] = []
        result.reserveCapacity(pairs)
        for pair in 0..<pairs {
            let a = pair < first.count ? first[pair] : zero
            let b = pair < second.count ? second[pair] : zero
            result.append((a.receive + b.receive, a.transmit + b.transmit))
        }
        return result
    }

    public static func == (a: SoftwareCounters, b: SoftwareCounters) -> Bool { a === b }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

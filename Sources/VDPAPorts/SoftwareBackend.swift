import Synchronization
import VDPADatapath
import VDPASystem
import VDPAVhost
import VirtioModel
import VirtioNet
import Virtqueue

/// The software backend of a port: vdpad's own virtio-net datapath (``SoftwareNetDevice``,
/// one worker thread per queue pair) serving the consumer's rings in the consumer's memory,
/// with a TAP interface as the network side (`IFF_VNET_HDR`: the guest's headers, and so its
/// checksum and segmentation offloads, pass through to the kernel as they are).
///
/// Guest memory is read by vdpad itself here. Every ring and buffer address is checked against
/// the regions by the virtqueue library before it is touched; a region whose file is not
/// sealed against shrinking (DPDK's memfds, hugetlbfs files) is guarded: should the VMM
/// truncate it, the accesses past its end are absorbed (``GuardedMemoryRange``), counted in
/// `memory_faults`, and the device reports DEVICE_NEEDS_RESET; the daemon lives.
///
/// Suspending stops the workers at a clean point (nothing popped is left unfinished) and
/// keeps each ring's state; resuming, a change of the consumer's memory or eventfds, start
/// new workers from exactly those states.
final class SoftwareBackend: PortBackend {
    /// The TAP interface's name.
    let tapName: String
    let offeredFeatures: VirtioFeatures
    let backendFeatures: BackendFeatures = []
    let queueCount = 2
    let deviceType = VirtioDeviceType.network.rawValue
    let maximumQueueSize = Int(QueueState.maximumSize)
    let canSuspend = true
    private let tap: TapBackend
    private let configuration: [UInt8]
    private(set) var negotiatedFeatures: VirtioFeatures = []
    private(set) var running = false
    private(set) var suspended = false
    private var device: SoftwareNetDevice<GuestMemoryRegions>?
    /// What the workers use and must outlive them: the regions (their mappings) and the
    /// consumer's eventfds as they were at launch.
    private var held: (regions: [ConsumerMemoryRegion], queues: [Int: ConsumerQueue]) = ([], [:])
    /// Each ring's state when the workers last stopped, by queue index.
    private var stoppedStates: [Int: QueueState] = [:]
    /// The counters, readable without the port's lock.
    let counters = SoftwareCounters()

    /// The features vdpad's datapath implements: split and packed rings, EVENT_IDX, indirect
    /// descriptors, mergeable receive buffers, checksum and TSO offloads in both directions
    /// (through the TAP), the status field; MAC and MTU when configured.
    static let datapathFeatures: VirtioFeatures = [
        .version1, .ringPacked, .ringEventIndex, .ringIndirectDescriptors,
        .Net.mergeableRxBuffers, .Net.status, .Net.checksum, .Net.guestChecksum,
        .Net.hostTSO4, .Net.hostTSO6, .Net.hostECN, .Net.guestTSO4, .Net.guestTSO6, .Net.guestECN,
    ]

    /// Opens TAP `tapName` (creating it when it does not exist; an existing one is attached).
    init(tapName: String, mac: MACAddress?, mtu: UInt16?) throws {
        self.tapName = tapName
        tap = try TapBackend(tap: TapDevice(name: tapName))
        var features = Self.datapathFeatures
        if mac != nil { features.insert(.Net.mac) }
        if mtu != nil { features.insert(.Net.mtu) }
        offeredFeatures = features
        configuration = Self.netConfiguration(mac: mac, mtu: mtu)
    }

    var deviceName: String { tapName }

    var snapshot: PortBackendSnapshot {
        PortBackendSnapshot(kind: .software, device: tapName, path: "/dev/net/tun", offeredFeatures: offeredFeatures,
                            backendFeatures: backendFeatures, queueCount: queueCount, maximumQueueSize: maximumQueueSize,
                            canSuspend: true, canResume: true)
    }

    func runningFeatures(for consumerFeatures: VirtioFeatures) -> VirtioFeatures { consumerFeatures }

    /// `struct virtio_net_config` (§5.1.4): mac, status (LINK_UP), max_virtqueue_pairs, mtu.
    static func netConfiguration(mac: MACAddress?, mtu: UInt16?) -> [UInt8] {
        var bytes = mac?.bytes ?? [UInt8](repeating: 0, count: 6)
        bytes += [0x01, 0x00]  // VIRTIO_NET_S_LINK_UP
        bytes += [0x01, 0x00]  // one queue pair
        let mtu = mtu ?? 1500
        bytes += [UInt8(truncatingIfNeeded: mtu), UInt8(truncatingIfNeeded: mtu >> 8)]
        return bytes
    }

    func prepare(features: VirtioFeatures, session: ConsumerSession, timings: inout StepTimings) throws {
        stopWorkers()
        running = false
        suspended = false
        guard features.isSubset(of: offeredFeatures.union(.accessPlatform)) else {
            throw PortError(kind: .consumer, message: "TAP \(tapName): features \(features.subtracting(offeredFeatures)) are not the software datapath's")
        }
        try timings.measure("offloads") { () throws in try tap.tap.setOffloads(TapBackend.offloads(for: features)) }
        negotiatedFeatures = features
        stoppedStates = [:]
    }

    func launch(session: ConsumerSession, bases: [Int: UInt32], timings: inout StepTimings) throws {
        let layout: QueueLayout = negotiatedFeatures.contains(.ringPacked) ? .packed : .split
        var states: [Int: QueueState] = [:]
        for index in 0..<queueCount {
            guard let queue = session.queues[index], let addresses = queue.addresses, queue.size > 0 else {
                throw PortError(kind: .notAttached, message: "TAP \(tapName): queue \(index) has no rings (the software datapath serves receiveq 0 and transmitq 1)")
            }
            let base = VringBase.decode(bases[index] ?? queue.base, layout: layout)
            states[index] = base.applied(to: QueueState(
                layout: layout, size: queue.size, descriptorArea: GuestAddress(addresses.descriptorTable.rawValue),
                driverArea: GuestAddress(addresses.driverArea.rawValue), deviceArea: GuestAddress(addresses.deviceArea.rawValue),
                eventIndex: negotiatedFeatures.contains(.ringEventIndex),
                indirectDescriptors: negotiatedFeatures.contains(.ringIndirectDescriptors),
                ready: queue.enabled))
        }
        try timings.measure("start") { () throws in try startWorkers(session: session, states: states) }
        running = true
        suspended = false
    }

    /// Builds the device over the consumer's memory at `states` and starts its workers. They
    /// look at each ring at once (the start rule: work may be pending).
    private func startWorkers(session: ConsumerSession, states: [Int: QueueState]) throws {
        guard let receive = states[0], let transmit = states[1] else {
            throw PortError(kind: .notAttached, message: "TAP \(tapName): no receive and transmit rings to serve")
        }
        // Memory that can shrink under the workers is guarded before they touch it.
        var guards: [GuardedMemoryRange] = []
        for region in session.regions where !region.sealedAgainstShrinking {
            guard let guarded = GuardedMemoryRange(address: region.mapping.address, length: region.mapping.length) else {
                throw PortError(kind: .consumer, message: "TAP \(tapName): the consumer's memory at 0x\(String(region.guestPhysicalAddress, radix: 16)) is not sealed against shrinking and cannot be guarded")
            }
            guards.append(guarded)
        }
        let memory: GuestMemoryRegions
        do {
            memory = try GuestMemoryRegions(session.regions.map {
                GuestMemoryRegion(guestAddress: GuestAddress($0.guestPhysicalAddress), size: $0.size, hostAddress: $0.mapping.address)
            })
        } catch {
            throw PortError(kind: .consumer, message: "TAP \(tapName): the consumer's memory regions: \(error)")
        }
        func notifiers(_ index: Int) throws -> QueueNotifiers {
            guard let kick = session.queues[index]?.kick else {
                throw PortError(kind: .notAttached, message: "TAP \(tapName): queue \(index) has no kick eventfd")
            }
            // The consumer's eventfds stay open while `held` keeps them (the session may drop them).
            let call = try session.queues[index]?.call.map { EventFD(adopting: $0.rawValue, takingOwnership: false) } ?? EventFD()
            return QueueNotifiers(kick: EventFD(adopting: kick.rawValue, takingOwnership: false), call: call)
        }
        let device: SoftwareNetDevice<GuestMemoryRegions>
        do {
            device = try SoftwareNetDevice(
                memory: memory, features: negotiatedFeatures, maximumQueuePairs: 1,
                pairs: [.init(receive: receive, transmit: transmit, receiveNotifiers: try notifiers(0),
                              transmitNotifiers: try notifiers(1), backend: tap)])
        } catch let error as SoftwareNetDevice<GuestMemoryRegions>.SetupError {
            throw PortError(kind: .consumer, message: "TAP \(tapName): the consumer's rings: \(error)")
        }
        held = (session.regions, session.queues)
        device.start()
        self.device = device
        // The counters own the guards (they read their fault counts) until the workers stop.
        counters.running(device, guards: guards)
    }

    /// Stops the workers at a clean point and keeps each ring's state.
    private func stopWorkers() {
        guard let device else { return }
        let report = device.quiesce()
        for pair in report.pairs {
            stoppedStates[2 * pair.pair] = pair.receiveState
            stoppedStates[2 * pair.pair + 1] = pair.transmitState
        }
        counters.stopped(report.pairs.map { ($0.receive, $0.transmit) })  // drops the guards, before the mappings they guard
        self.device = nil
        held = ([], [:])
    }

    /// Restarts the workers where they stopped, with the consumer's current memory and eventfds.
    private func restart(_ session: ConsumerSession) throws {
        guard running, !suspended else { return }
        stopWorkers()
        var states = stoppedStates
        for (index, queue) in session.queues where states[index] != nil { states[index]?.ready = queue.enabled }
        do {
            try startWorkers(session: session, states: states)
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
        try startWorkers(session: session, states: stoppedStates)
        suspended = false
    }

    func bases(of queues: [Int]) throws -> [Int: UInt32] {
        if device != nil { stopWorkers(); suspended = true }
        var bases: [Int: UInt32] = [:]
        for index in queues {
            guard let state = stoppedStates[index] else { continue }
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
            throw PortError(kind: .consumer, message: "TAP \(tapName): config bytes \(start)..<\(end) are past the \(configuration.count) bytes of virtio_net_config")
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
        stoppedStates = [:]
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

    func running(_ device: SoftwareNetDevice<GuestMemoryRegions>, guards: [GuardedMemoryRange]) {
        state.withLock {
            $0.device = device
            $0.guards = guards
        }
    }

    /// The workers stopped with these final counts.
    func stopped(_ final: [Pair]) {
        state.withLock { state in
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

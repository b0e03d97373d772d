import VDPASystem
import Virtqueue
import VirtioModel
import VirtioNet

/// The software virtio-net device: one ``NetQueuePairWorker`` per queue pair
/// (queue pair N = receiveq 2N, transmitq 2N+1, §5.1.2), the control queue
/// served by the first worker, one shared ``VirtioNetControlState``.
public final class SoftwareNetDevice<Memory: GuestMemory>: @unchecked Sendable {
    // SAFETY (type level): `workers` is set in init and only read afterwards;
    // start/stop/quiesce are called by one owner (the port), not concurrently.

    /// One queue pair's rings, notifiers and backend.
    public struct QueuePairSetup {
        public var receive: QueueState
        public var transmit: QueueState
        public var receiveNotifiers: QueueNotifiers
        public var transmitNotifiers: QueueNotifiers
        public var backend: any NetBackend
        public init(
            receive: QueueState, transmit: QueueState, receiveNotifiers: QueueNotifiers,
            transmitNotifiers: QueueNotifiers, backend: any NetBackend
        ) {
            self.receive = receive
            self.transmit = transmit
            self.receiveNotifiers = receiveNotifiers
            self.transmitNotifiers = transmitNotifiers
            self.backend = backend
        }
    }

    /// The control queue's ring and notifiers.
    public struct ControlSetup {
        public var queue: QueueState
        public var notifiers: QueueNotifiers
        public init(queue: QueueState, notifiers: QueueNotifiers) {
            self.queue = queue
            self.notifiers = notifiers
        }
    }

    /// Everything another backend needs to continue: every queue's state and
    /// the control-queue state to replay.
    public struct Report: Sendable {
        public var pairs: [NetQueuePairReport]
        public var controlQueueState: QueueState?
        public var controlState: VirtioNetControlState
        /// The first guest fault that stopped a worker (set DEVICE_NEEDS_RESET).
        public var brokenError: VirtqueueError? { pairs.lazy.compactMap(\.brokenError).first }
    }

    /// Where a device failed to come up.
    public enum SetupError: Error {
        case noQueuePairs
        case tooManyQueuePairs(Int, maximum: UInt16)
        case receiveQueue(pair: Int, VirtqueueError)
        case transmitQueue(pair: Int, VirtqueueError)
        case controlQueue(VirtqueueError)
        case notifiers(any Error)
    }

    public let features: VirtioFeatures
    public let maximumQueuePairs: UInt16
    private let workers: [NetQueuePairWorker<Memory>]
    private let sharedControlState: LockedValue<VirtioNetControlState>

    /// Builds every queue from its untrusted state (the first bad one fails
    /// the whole device, naming it). `controlState` restores a saved one.
    public init(
        memory: Memory, features: VirtioFeatures, maximumQueuePairs: UInt16, pairs: [QueuePairSetup],
        control: ControlSetup? = nil, controlState: VirtioNetControlState? = nil,
        options: NetWorkerOptions = NetWorkerOptions()
    ) throws(SetupError) {
        guard !pairs.isEmpty else { throw .noQueuePairs }
        guard pairs.count <= Int(maximumQueuePairs) else { throw .tooManyQueuePairs(pairs.count, maximum: maximumQueuePairs) }
        self.features = features
        self.maximumQueuePairs = maximumQueuePairs
        let initialState = controlState ?? VirtioNetControlState(features: features)
        sharedControlState = LockedValue(initialState)
        var workers: [NetQueuePairWorker<Memory>] = []
        for (index, setup) in pairs.enumerated() {
            let receive: VirtioNetReceiveQueue<Memory>
            let transmit: VirtioNetTransmitQueue<Memory>
            do { receive = try VirtioNetReceiveQueue(state: setup.receive, memory: memory, features: features) } catch {
                throw .receiveQueue(pair: index, error)
            }
            do { transmit = try VirtioNetTransmitQueue(state: setup.transmit, memory: memory, features: features) } catch {
                throw .transmitQueue(pair: index, error)
            }
            var attachment: ControlQueueAttachment<Memory>?
            if index == 0, let control {
                do {
                    let queue = try VirtioNetControlQueue(
                        state: control.queue, memory: memory, features: features,
                        maximumQueuePairs: maximumQueuePairs, controlState: initialState)
                    attachment = ControlQueueAttachment(queue: queue, notifiers: control.notifiers)
                } catch {
                    throw .controlQueue(error)
                }
            }
            do {
                workers.append(try NetQueuePairWorker(
                    pair: index, receive: receive, transmit: transmit,
                    receiveNotifiers: setup.receiveNotifiers, transmitNotifiers: setup.transmitNotifiers,
                    backend: setup.backend, control: attachment, controlState: sharedControlState, options: options))
            } catch {
                throw .notifiers(error)
            }
        }
        self.workers = workers
    }

    /// The control-queue state as the driver has set it so far.
    public var controlState: VirtioNetControlState { sharedControlState.withLock { $0 } }

    /// Per pair: receive and transmit counters.
    public var counters: [(receive: NetQueueCounters, transmit: NetQueueCounters)] { workers.map(\.counters) }

    /// The first guest fault that stopped a worker, while running
    /// (the port should set DEVICE_NEEDS_RESET and signal a config change).
    public var fault: VirtqueueError? { workers.lazy.compactMap(\.fault).first }

    public func start() { for worker in workers { worker.start() } }

    /// Stops every worker (frames waiting for buffers stay where they are).
    @discardableResult
    public func stop() -> Report { report(workers.map { $0.stop() }) }

    /// Stops every worker at a clean point and reports the states to continue from.
    @discardableResult
    public func quiesce() -> Report { report(workers.map { $0.quiesce() }) }

    private func report(_ pairs: [NetQueuePairReport]) -> Report {
        Report(pairs: pairs, controlQueueState: workers.first?.controlQueue?.queueState, controlState: controlState)
    }
}

import Foundation
import Synchronization
import VDPASystem
import Virtqueue
import VirtioModel
import VirtioNet

/// How a worker waits for work.
public struct NetWorkerOptions: Sendable, Hashable {
    /// Never sleep: re-poll the rings and the backend continuously (lowest
    /// latency, one core per worker).
    public var busyPoll = false
    /// Packets per queue per pass before the other queue gets its turn.
    public var budget = 256
    /// Longest sleep before re-checking everything (a safety net; kicks,
    /// backend readiness and stop requests wake the worker at once).
    public var idleTimeoutMilliseconds: Int32 = 500

    public init(busyPoll: Bool = false, budget: Int = 256, idleTimeoutMilliseconds: Int32 = 500) {
        self.busyPoll = busyPoll
        self.budget = budget
        self.idleTimeoutMilliseconds = idleTimeoutMilliseconds
    }
}

/// The notifiers of one virtqueue: the driver's kick and the device's call.
public struct QueueNotifiers: Sendable {
    public var kick: EventFD
    public var call: EventFD
    public init(kick: EventFD, call: EventFD) {
        self.kick = kick
        self.call = call
    }
    /// A fresh pair of eventfds.
    public static func make() throws -> QueueNotifiers { QueueNotifiers(kick: try EventFD(), call: try EventFD()) }
}

/// Where a worker stopped and what it did: the states another backend
/// continues from.
public struct NetQueuePairReport: Sendable {
    public var pair: Int
    public var receiveState: QueueState
    public var transmitState: QueueState
    public var receive: NetQueueCounters
    public var transmit: NetQueueCounters
    /// A received frame that was waiting for receive buffers when the worker
    /// was quiesced and had to be dropped (it is counted in `receive.drops`).
    public var droppedOnQuiesce: Int
    /// The guest fault that stopped the worker (set DEVICE_NEEDS_RESET).
    public var brokenError: VirtqueueError?
}

/// The control queue a worker serves besides its queue pair.
public struct ControlQueueAttachment<Memory: GuestMemory>: @unchecked Sendable {
    // SAFETY: the queue is moved into the worker and only used by its thread.
    public var queue: VirtioNetControlQueue<Memory>
    public var notifiers: QueueNotifiers
    public init(queue: VirtioNetControlQueue<Memory>, notifiers: QueueNotifiers) {
        self.queue = queue
        self.notifiers = notifiers
    }
}

/// One thread serving one virtio-net queue pair (and optionally the control
/// queue): woken by the kick eventfds, by the backend becoming readable (or
/// writable after it was full) and by `stop`/`quiesce`; signals the call
/// eventfds when the rings' notification logic (EVENT_IDX or flags) says the
/// driver wants it.
///
/// Between two passes no chain is in flight (every pass completes or gives
/// back what it popped), so ``quiesce()`` returns states from which another
/// backend continues without losing or repeating a descriptor.
public final class NetQueuePairWorker<Memory: GuestMemory>: @unchecked Sendable {
    // SAFETY (type level): `receive`, `transmit` and `control` are used only by
    // the worker thread between `start` and the end of its loop, and only by
    // the caller before `start` and after `finished` was signalled (join).
    // Shared state is in `command` (atomic), `live` and `controlState` (locked).
    public let pair: Int
    private var receive: VirtioNetReceiveQueue<Memory>
    private var transmit: VirtioNetTransmitQueue<Memory>
    private var control: ControlQueueAttachment<Memory>?
    private let receiveNotifiers: QueueNotifiers
    private let transmitNotifiers: QueueNotifiers
    private let backend: any NetBackend
    private let options: NetWorkerOptions
    private let controlState: LockedValue<VirtioNetControlState>
    private let wake: EventFD
    private let command = Atomic<UInt8>(0)
    private let finished = DispatchSemaphore(value: 0)
    private let liveFault = LockedValue<VirtqueueError?>(nil)
    private let live = LockedValue((receive: NetQueueCounters(), transmit: NetQueueCounters()))
    private var thread: Thread?
    private var brokenError: VirtqueueError?
    private var droppedOnQuiesce = 0
    private var report: NetQueuePairReport?

    private static var run: UInt8 { 0 }
    private static var stopNow: UInt8 { 1 }
    private static var quiesceNow: UInt8 { 2 }

    /// - Parameter controlState: shared with the control queue's worker; its
    ///   receive filter applies to this pair's received frames.
    public init(
        pair: Int, receive: VirtioNetReceiveQueue<Memory>, transmit: VirtioNetTransmitQueue<Memory>,
        receiveNotifiers: QueueNotifiers, transmitNotifiers: QueueNotifiers, backend: any NetBackend,
        control: ControlQueueAttachment<Memory>? = nil, controlState: LockedValue<VirtioNetControlState>,
        options: NetWorkerOptions = NetWorkerOptions()
    ) throws {
        self.pair = pair
        self.receive = receive
        self.transmit = transmit
        self.control = control
        self.receiveNotifiers = receiveNotifiers
        self.transmitNotifiers = transmitNotifiers
        self.backend = backend
        self.controlState = controlState
        self.options = options
        wake = try EventFD()
    }

    /// The guest fault that stopped the worker, as soon as it happened.
    public var fault: VirtqueueError? { liveFault.withLock { $0 } }

    /// Counters as of the last pass.
    public var counters: (receive: NetQueueCounters, transmit: NetQueueCounters) { live.withLock { $0 } }

    /// Starts the worker thread.
    public func start() {
        precondition(thread == nil, "worker already started")
        let thread = Thread { [self] in self.loop() }
        thread.name = "vdpad-net-qp\(pair)"
        self.thread = thread
        thread.start()
    }

    /// Stops after the current pass; waits for the thread. A frame waiting
    /// for receive buffers stays with the worker (restart continues it).
    @discardableResult
    public func stop() -> NetQueuePairReport { finish(Self.stopNow) }

    /// Stops at a clean point: the current pass completes, a frame waiting
    /// for receive buffers is delivered if buffers appeared, else dropped and
    /// counted; then reports each queue's state for hand-over.
    @discardableResult
    public func quiesce() -> NetQueuePairReport { finish(Self.quiesceNow) }

    /// The control queue after the worker finished (for its state and hand-over).
    public var controlQueue: VirtioNetControlQueue<Memory>? { thread == nil || report != nil ? control?.queue : nil }

    private func finish(_ how: UInt8) -> NetQueuePairReport {
        if let report { return report }
        command.store(how, ordering: .releasing)
        if thread != nil {
            try? wake.signal()
            finished.wait()
        } else if how == Self.quiesceNow {
            quiesceCleanup()
        }
        let counters = (receive: receive.counters, transmit: transmit.counters)
        live.withLock { $0 = counters }
        let result = NetQueuePairReport(
            pair: pair, receiveState: receive.state, transmitState: transmit.state,
            receive: receive.counters, transmit: transmit.counters,
            droppedOnQuiesce: droppedOnQuiesce, brokenError: brokenError)
        report = result
        return result
    }

    private func quiesceCleanup() {
        if receive.hasPendingFrame, brokenError == nil {
            let filter = controlState.withLock { $0 }
            if let run = try? receive.process(backend: NoFramesBackend.shared, filter: filter, budget: 1), run.needsNotification {
                try? receiveNotifiers.call.signal()
            }
        }
        if receive.dropPendingFrame() { droppedOnQuiesce += 1 }
    }

    private func loop() {
        if case .inProcess(let slot) = backend.readiness {
            let wake = self.wake
            slot.install { try? wake.signal() }
        }
        var poller = Poller()
        var receiveBlocked = false
        var transmitBlocked = false
        while command.load(ordering: .acquiring) == Self.run {
            do {
                if control != nil {
                    let (run, applied) = try control!.queue.process()
                    if run.needsNotification { try? control!.notifiers.call.signal() }
                    if !applied.isEmpty {
                        let state = control!.queue.state
                        controlState.withLock { $0 = state }
                    }
                }
                let filter = controlState.withLock { $0 }
                let receiveRun = try receive.process(backend: backend, filter: filter, budget: options.budget)
                let transmitRun = try transmit.process(backend: backend, budget: options.budget)
                if receiveRun.needsNotification { try? receiveNotifiers.call.signal() }
                if transmitRun.needsNotification { try? transmitNotifiers.call.signal() }
                let counters = (receive: receive.counters, transmit: transmit.counters)
                live.withLock { $0 = counters }
                receiveBlocked = receiveRun.isBlocked
                transmitBlocked = transmitRun.isBlocked
                if receiveRun.hasMoreWork || transmitRun.hasMoreWork || options.busyPoll { continue }
            } catch {
                brokenError = error
                liveFault.withLock { $0 = error }
                break
            }
            var interests = [
                Poller.Interest(fileDescriptor: wake.fileDescriptor),
                Poller.Interest(fileDescriptor: receiveNotifiers.kick.fileDescriptor),
                Poller.Interest(fileDescriptor: transmitNotifiers.kick.fileDescriptor),
            ]
            if let control { interests.append(Poller.Interest(fileDescriptor: control.notifiers.kick.fileDescriptor)) }
            if case .fileDescriptor(let fd) = backend.readiness {
                // While a frame waits for buffers, only a kick helps: do not spin on readable.
                interests.append(Poller.Interest(fileDescriptor: fd, readable: !receiveBlocked, writable: transmitBlocked))
            }
            guard let ready = try? poller.wait(interests, timeoutMilliseconds: options.idleTimeoutMilliseconds) else { continue }
            for (index, readiness) in ready.enumerated() where index < (control == nil ? 3 : 4) && readiness.readable {
                switch index {
                case 0: _ = try? wake.drain()
                case 1: _ = try? receiveNotifiers.kick.drain()
                case 2: _ = try? transmitNotifiers.kick.drain()
                default: _ = try? control?.notifiers.kick.drain()
                }
            }
        }
        if command.load(ordering: .acquiring) == Self.quiesceNow { quiesceCleanup() }
        if case .inProcess(let slot) = backend.readiness { slot.install(nil) }
        finished.signal()
    }
}

/// A backend with nothing to receive: lets a receive pass deliver only the
/// frame it already holds.
final class NoFramesBackend: NetBackend {
    static let shared = NoFramesBackend()
    private let slot = NetBackendWakerSlot()
    var readiness: NetBackendReadiness { .inProcess(slot) }
    func send(header: VirtioNetHeader, frame: UnsafeRawBufferPointer) throws(NetBackendError) -> NetSendResult { .wouldBlock }
    func receive(into frame: UnsafeMutableRawBufferPointer) throws(NetBackendError) -> NetReceivedFrame? { nil }
}

/// An in-process ``NetBackend`` for tests and benchmarks: what the transmit
/// path sends is recorded and, when `loopsBack` is set, queued to be
/// received again; tests can also inject frames for the receive path.
public final class LoopbackBackend: NetBackend {
    /// One frame with its header.
    public struct Frame: Hashable, Sendable {
        public var header: VirtioNetHeader
        public var bytes: [UInt8]
        public init(header: VirtioNetHeader = VirtioNetHeader(), bytes: [UInt8]) {
            self.header = header
            self.bytes = bytes
        }
    }

    private struct State {
        var inbound: [Frame] = []
        var inboundStart = 0
        var sent: [Frame] = []
        var recordsSent: Bool
        var loopsBack: Bool
    }

    private let state: LockedValue<State>
    private let waker = NetBackendWakerSlot()

    /// - Parameters:
    ///   - loopsBack: queue every sent frame for `receive`.
    ///   - recordsSent: keep every sent frame in ``sentFrames`` (turn off for long runs).
    public init(loopsBack: Bool = true, recordsSent: Bool = true) {
        state = LockedValue(State(recordsSent: recordsSent, loopsBack: loopsBack))
    }

    public var readiness: NetBackendReadiness { .inProcess(waker) }

    public func send(header: VirtioNetHeader, frame: UnsafeRawBufferPointer) throws(NetBackendError) -> NetSendResult {
        let copy = Frame(header: header, bytes: Array(frame))
        let wake = state.withLock { state -> Bool in
            if state.recordsSent { state.sent.append(copy) }
            if state.loopsBack { state.inbound.append(copy) }
            return state.loopsBack
        }
        if wake { waker.wake() }
        return .sent
    }

    public func receive(into frame: UnsafeMutableRawBufferPointer) throws(NetBackendError) -> NetReceivedFrame? {
        guard let next = state.withLock({ state -> Frame? in
            guard state.inboundStart < state.inbound.count else { return nil }
            let frame = state.inbound[state.inboundStart]
            state.inboundStart += 1
            if state.inboundStart > 1024, state.inboundStart * 2 > state.inbound.count {
                state.inbound.removeFirst(state.inboundStart)
                state.inboundStart = 0
            }
            return frame
        }) else { return nil }
        let count = min(next.bytes.count, frame.count)
        next.bytes.withUnsafeBytes { source in
            // SAFETY: `count` is at most the size of both buffers.
            frame.baseAddress!.copyMemory(from: source.baseAddress!, byteCount: count)
        }
        return NetReceivedFrame(header: next.header, length: count)
    }

    /// Queues a frame for the receive path.
    public func inject(_ frame: Frame) {
        state.withLock { $0.inbound.append(frame) }
        waker.wake()
    }

    /// Frames queued for `receive` and not yet taken.
    public var pendingCount: Int { state.withLock { $0.inbound.count - $0.inboundStart } }

    /// Every frame sent so far (when recording).
    public var sentFrames: [Frame] { state.withLock { $0.sent } }

    /// Removes and returns the recorded sent frames.
    public func takeSentFrames() -> [Frame] {
        state.withLock { state in
            defer { state.sent.removeAll() }
            return state.sent
        }
    }
}

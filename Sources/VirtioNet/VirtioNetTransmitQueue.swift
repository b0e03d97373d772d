import Virtqueue
import VirtioModel

/// The device side of one virtio-net transmit queue (§5.1.6.2 "Packet
/// Transmission"): pops chains, reads header and frame (bounded by the
/// chain's readable length and by ``VirtioNetHeader/maximumFrameLength``),
/// validates the header and hands the frame to a ``NetBackend``.
///
/// Every chain popped in a pass is completed (pushed used, length 0) before
/// the pass returns, or given back with ``VirtqueueDevice/rewindAvailable(to:)``
/// when the backend is full, so between passes no chain is in flight and
/// ``state`` can be handed over at any time.
public struct VirtioNetTransmitQueue<Memory: GuestMemory> {
    public private(set) var queue: DeviceQueue<Memory>
    public let memory: Memory
    /// Negotiated device features.
    public let features: VirtioFeatures
    public private(set) var counters = NetQueueCounters()
    /// The last header refused, for diagnostics.
    public private(set) var lastHeaderError: VirtioNetHeaderError?
    private let buffer: PacketBuffer
    private var chains = [DescriptorChain](repeating: DescriptorChain(), count: VirtioNetTransmitQueue.burst)
    private var positions = [AvailablePosition](
        repeating: AvailablePosition(index: 0, wrapCounter: true, popCount: 0), count: VirtioNetTransmitQueue.burst)
    /// What ``warm(_:)`` read (never used otherwise).
    private var warmed: UInt64 = 0

    public init(queue: DeviceQueue<Memory>, memory: Memory, features: VirtioFeatures) {
        self.queue = queue
        self.memory = memory
        self.features = features
        buffer = PacketBuffer()
    }

    /// Builds the device queue from untrusted `state`.
    public init(state: QueueState, memory: Memory, features: VirtioFeatures) throws(VirtqueueError) {
        self.init(queue: try DeviceQueue(state: state, memory: memory), memory: memory, features: features)
    }

    /// The queue's state for hand-over (no chain is in flight between passes).
    public var state: QueueState { queue.state }
    public var brokenError: VirtqueueError? { queue.brokenError }

    /// Transmits up to `budget` packets. Throws only guest faults that broke
    /// the queue (the device should then set DEVICE_NEEDS_RESET).
    ///
    /// Chains are popped in bursts of up to ``burst``: the first bytes of every frame in a
    /// burst are read before any frame is copied, so the cache misses on buffers the
    /// driver's CPU just wrote overlap instead of coming one after the other.
    public mutating func process(backend: any NetBackend, budget: Int = 256) throws(VirtqueueError) -> NetQueueRun {
        var run = NetQueueRun()
        try queue.disableNotifications()
        var unpublished = 0
        pass: while true {
            if run.completed >= budget {
                run.hasMoreWork = true
                break
            }
            let limit = min(Self.burst, budget - run.completed)
            var count = 0
            while count < limit {
                positions[count] = queue.availablePosition
                guard try queue.popAvailable(into: &chains[count]) else { break }
                count += 1
            }
            if count == 0 {
                // §2.7.10 / §2.8.10: re-check after enabling, or a kick can be lost.
                if try queue.enableNotifications() {
                    try queue.disableNotifications()
                    continue
                }
                break
            }
            warm(count)
            for index in 0..<count {
                if transmitChain(at: index, backend: backend) == .wouldBlock {
                    // Give back this chain and the rest of the burst, untouched.
                    try queue.rewindAvailable(to: positions[index])
                    run.isBlocked = true
                    break pass
                }
                try queue.pushUsed(chains[index].usedElement(writtenLength: 0))
                run.completed += 1
                unpublished += 1
                if unpublished == NetQueueRun.usedBatch {
                    unpublished = 0
                    if try queue.publishUsed() { run.needsNotification = true }
                }
            }
        }
        if try queue.publishUsed() { run.needsNotification = true }
        return run
    }

    /// Chains popped together (see ``process(backend:budget:)``).
    public static var burst: Int { 16 }

    /// Loads the first and last word of each readable segment of the first `count` chains
    /// (their sum is kept, so the loads stay): the lines are then in flight together.
    private mutating func warm(_ count: Int) {
        var sum: UInt64 = 0
        for index in 0..<count {
            for segment in chains[index].readableSegments.prefix(2) where segment.length >= 8 {
                sum &+= (try? memory.loadRaw(UInt64.self, at: segment.address)) ?? 0
                sum &+= (try? memory.loadRaw(UInt64.self, at: segment.address.wrappingAdding(UInt64(segment.length) &- 8))) ?? 0
            }
        }
        warmed &+= sum
    }

    /// Reads and sends the popped chain. Malformed packets are counted and
    /// completed; only a full backend is reported back.
    ///
    /// The header is always copied out of the guest's buffer and validated on the copy. The
    /// frame goes to the backend in place when it is one guest range after the header (the
    /// header and frame in one descriptor, or the header alone in the first: what Linux, QEMU
    /// and DPDK drivers post), so a TAP's `write(2)` is its only copy; otherwise the chain is
    /// gathered into the queue's buffer first.
    private mutating func transmitChain(at index: Int, backend: any NetBackend) -> NetSendResult {
        let readable = chains[index].readableLength
        guard readable >= UInt64(VirtioNetHeader.size), readable <= UInt64(buffer.bytes.count) else {
            counters.errors &+= 1
            lastHeaderError = readable < UInt64(VirtioNetHeader.size)
                ? .truncated(length: Int(readable)) : .frameTooLong(length: Int(clamping: readable) - VirtioNetHeader.size)
            return .sent
        }
        let segments = chains[index].readableSegments
        let headerSize = UInt32(VirtioNetHeader.size)
        var inPlace: BufferSegment?
        // `readable >= 12` and zero-length buffers make no segment: there is a first one.
        if let first = segments.first, first.length >= headerSize {
            if segments.count == 1 {
                inPlace = BufferSegment(address: first.address.wrappingAdding(UInt64(headerSize)), length: first.length &- headerSize)
            } else if segments.count == 2, first.length == headerSize {
                inPlace = segments[segments.index(after: segments.startIndex)]
            }
        }
        let frameLength: Int
        do {
            if let inPlace, let first = segments.first {
                // SAFETY: the buffer holds more than a header (PacketBuffer's capacity).
                try memory.read(at: first.address, into: UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[..<VirtioNetHeader.size]))
                frameLength = Int(inPlace.length)
            } else {
                frameLength = try chains[index].gatherReadable(from: memory, into: buffer.bytes) - VirtioNetHeader.size
            }
        } catch {
            counters.errors &+= 1
            return .sent
        }
        let header: VirtioNetHeader
        do {
            header = try VirtioNetHeader(parsing: buffer.prefix(VirtioNetHeader.size))
            try header.validateTransmit(frameLength: frameLength, features: features)
        } catch {
            counters.errors &+= 1
            lastHeaderError = error
            return .sent
        }
        let normalized = header.normalizedForTransmit
        let outcome: Result<NetSendResult, NetBackendError>
        if let inPlace {
            do {
                outcome = try memory.withBytes(at: inPlace.address, length: UInt64(inPlace.length)) { frame in
                    Result { () throws(NetBackendError) in try backend.send(header: normalized, frame: frame) }
                }
            } catch {
                counters.errors &+= 1
                return .sent
            }
        } else {
            // SAFETY: `VirtioNetHeader.size + frameLength <= buffer.bytes.count` (gathered).
            let frame = UnsafeRawBufferPointer(rebasing: buffer.bytes[VirtioNetHeader.size..<(VirtioNetHeader.size + frameLength)])
            outcome = Result { () throws(NetBackendError) in try backend.send(header: normalized, frame: frame) }
        }
        switch outcome {
        case .success(.wouldBlock):
            return .wouldBlock
        case .success(.sent):
            counters.packets &+= 1
            counters.bytes &+= UInt64(frameLength)
        case .failure:
            counters.drops &+= 1
        }
        return .sent
    }
}

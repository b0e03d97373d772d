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
    public private(set) var queue: any VirtqueueDevice<Memory>
    public let memory: Memory
    /// Negotiated device features.
    public let features: VirtioFeatures
    public private(set) var counters = NetQueueCounters()
    /// The last header refused, for diagnostics.
    public private(set) var lastHeaderError: VirtioNetHeaderError?
    private let buffer: PacketBuffer
    private var chain = DescriptorChain()

    public init(queue: any VirtqueueDevice<Memory>, memory: Memory, features: VirtioFeatures) {
        self.queue = queue
        self.memory = memory
        self.features = features
        buffer = PacketBuffer()
    }

    /// Builds the device queue from untrusted `state`.
    public init(state: QueueState, memory: Memory, features: VirtioFeatures) throws(VirtqueueError) {
        self.init(queue: try makeDeviceQueue(state: state, memory: memory), memory: memory, features: features)
    }

    /// The queue's state for hand-over (no chain is in flight between passes).
    public var state: QueueState { queue.state }
    public var brokenError: VirtqueueError? { queue.brokenError }

    /// Transmits up to `budget` packets. Throws only guest faults that broke
    /// the queue (the device should then set DEVICE_NEEDS_RESET).
    public mutating func process(backend: some NetBackend, budget: Int = 256) throws(VirtqueueError) -> NetQueueRun {
        var run = NetQueueRun()
        try queue.disableNotifications()
        while true {
            if run.completed >= budget {
                run.hasMoreWork = true
                break
            }
            let position = queue.availablePosition
            guard try queue.popAvailable(into: &chain) else {
                // §2.7.10 / §2.8.10: re-check after enabling, or a kick can be lost.
                if try queue.enableNotifications() {
                    try queue.disableNotifications()
                    continue
                }
                break
            }
            if transmitCurrentChain(backend: backend) == .wouldBlock {
                try queue.rewindAvailable(to: position)
                run.isBlocked = true
                break
            }
            try queue.pushUsed(chain.usedElement(writtenLength: 0))
            run.completed += 1
        }
        if try queue.publishUsed() { run.needsNotification = true }
        return run
    }

    /// Reads and sends the popped chain. Malformed packets are counted and
    /// completed; only a full backend is reported back.
    private mutating func transmitCurrentChain(backend: some NetBackend) -> NetSendResult {
        let readable = chain.readableLength
        guard readable >= UInt64(VirtioNetHeader.size), readable <= UInt64(buffer.bytes.count) else {
            counters.errors &+= 1
            lastHeaderError = readable < UInt64(VirtioNetHeader.size)
                ? .truncated(length: Int(readable)) : .frameTooLong(length: Int(clamping: readable) - VirtioNetHeader.size)
            return .sent
        }
        let total: Int
        do {
            total = try chain.gatherReadable(from: memory, into: buffer.bytes)
        } catch {
            counters.errors &+= 1
            return .sent
        }
        let header: VirtioNetHeader
        let frameLength = total - VirtioNetHeader.size
        do {
            header = try VirtioNetHeader(parsing: buffer.prefix(VirtioNetHeader.size))
            try header.validateTransmit(frameLength: frameLength, features: features)
        } catch {
            counters.errors &+= 1
            lastHeaderError = error
            return .sent
        }
        // SAFETY: `VirtioNetHeader.size <= total <= buffer.bytes.count`.
        let frame = UnsafeRawBufferPointer(rebasing: buffer.bytes[VirtioNetHeader.size..<total])
        do {
            switch try backend.send(header: header.normalizedForTransmit, frame: frame) {
            case .wouldBlock:
                return .wouldBlock
            case .sent:
                counters.packets &+= 1
                counters.bytes &+= UInt64(frameLength)
            }
        } catch {
            counters.drops &+= 1
        }
        return .sent
    }
}

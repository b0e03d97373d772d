import Virtqueue
import VirtioModel

/// The device side of one virtio-net receive queue (§5.1.6.3 "Setting Up
/// Receive Buffers", §5.1.6.4 "Processing of Incoming Packets").
///
/// Takes frames from a ``NetBackend`` and writes header + frame into the
/// driver's buffers:
/// - with VIRTIO_NET_F_MRG_RXBUF, into as many chains as it takes, with
///   `num_buffers` in the first one's header (§5.1.6.4: the device MUST use
///   only a single descriptor chain per buffer and sets `num_buffers`);
/// - otherwise into a single chain, `num_buffers` = 1 (§5.1.6.4 "MUST set
///   num_buffers to 1 if VIRTIO_NET_F_MRG_RXBUF has not been negotiated").
///
/// A frame that does not fit is dropped and counted and the chains popped
/// for it are given back untouched (``VirtqueueDevice/rewindAvailable(to:)``):
/// nothing is ever written past a buffer. When the ring simply has too few
/// buffers right now, the frame is kept (``hasPendingFrame``) until the driver
/// posts more (it kicks once notifications are enabled).
///
/// A first chain with fewer than 12 writable bytes cannot hold even the
/// header; it is completed with length 0 and counted as an error. Further
/// chains of a merged packet take what they can (possibly nothing).
public struct VirtioNetReceiveQueue<Memory: GuestMemory> {
    public private(set) var queue: DeviceQueue<Memory>
    public let memory: Memory
    public let features: VirtioFeatures
    public let mergeableBuffers: Bool
    public private(set) var counters = NetQueueCounters()
    private let buffer: PacketBuffer
    private var pending: NetReceivedFrame?
    private var chains: [DescriptorChain] = [DescriptorChain()]
    private let queueSize: Int

    public init(queue: DeviceQueue<Memory>, memory: Memory, features: VirtioFeatures) {
        self.queue = queue
        self.memory = memory
        self.features = features
        mergeableBuffers = features.contains(VirtioFeatures.Net.mergeableRxBuffers)
        buffer = PacketBuffer()
        queueSize = Int(queue.state.size)
    }

    public init(state: QueueState, memory: Memory, features: VirtioFeatures) throws(VirtqueueError) {
        self.init(queue: try DeviceQueue(state: state, memory: memory), memory: memory, features: features)
    }

    public var state: QueueState { queue.state }
    public var brokenError: VirtqueueError? { queue.brokenError }
    /// A frame taken from the backend that waits for receive buffers.
    public var hasPendingFrame: Bool { pending != nil }

    /// Drops the frame waiting for buffers, if any (counted); returns whether there was one.
    @discardableResult
    public mutating func dropPendingFrame() -> Bool {
        guard pending != nil else { return false }
        pending = nil
        counters.drops &+= 1
        return true
    }

    /// Delivers up to `budget` frames from `backend`. `filter`, when given,
    /// is the driver's receive filter (control queue state, §5.1.6.5.1).
    public mutating func process(
        backend: any NetBackend, filter: VirtioNetControlState? = nil, budget: Int = 256
    ) throws(VirtqueueError) -> NetQueueRun {
        var run = NetQueueRun()
        var steps = 0
        var retried = false
        var unpublished = 0
        while true {
            if steps >= budget {
                run.hasMoreWork = true
                break
            }
            steps += 1
            if pending == nil {
                let received: NetReceivedFrame?
                do {
                    received = try backend.receive(into: buffer.frameArea)
                } catch {
                    counters.errors &+= 1
                    break
                }
                guard let received else { break }
                if let filter {
                    let frame = UnsafeRawBufferPointer(rebasing: buffer.frameArea[..<received.length])
                    if !filter.acceptsFrame(frame) {
                        counters.filtered &+= 1
                        continue
                    }
                }
                pending = received
            }
            guard let frame = pending else { break }
            switch try deliver(frame) {
            case .delivered(let chainCount):
                pending = nil
                run.completed += chainCount
                counters.packets &+= 1
                counters.bytes &+= UInt64(frame.length)
                unpublished += chainCount
                if unpublished >= NetQueueRun.usedBatch {
                    unpublished = 0
                    if try queue.publishUsed() { run.needsNotification = true }
                }
            case .dropped:
                pending = nil
                counters.drops &+= 1
            case .noBuffers:
                // §2.7.10 / §2.8.10: ask for a kick, then re-check once: the
                // driver may have posted buffers just before seeing the request.
                // Notifications stay enabled while the frame waits.
                if !retried, try queue.enableNotifications() {
                    retried = true
                    steps -= 1
                    continue
                }
                run.isBlocked = true
            }
            if run.isBlocked { break }
        }
        if try queue.publishUsed() { run.needsNotification = true }
        return run
    }

    private enum Delivery {
        case delivered(chains: Int)
        case dropped
        case noBuffers
    }

    /// Writes the pending frame (in `buffer` after the header room) into the driver's buffers.
    private mutating func deliver(_ frame: NetReceivedFrame) throws(VirtqueueError) -> Delivery {
        let total = VirtioNetHeader.size + frame.length
        var position = queue.availablePosition
        var count = 0
        var capacity: UInt64 = 0
        while capacity < UInt64(total) {
            if count == chains.count { chains.append(DescriptorChain()) }
            guard try queue.popAvailable(into: &chains[count]) else {
                try queue.rewindAvailable(to: position)
                return .noBuffers
            }
            let writable = chains[count].writableLength
            if count == 0 && writable < UInt64(VirtioNetHeader.size) {
                // The first buffer cannot even hold the header: return it
                // empty (the driver's error) and go on with the next one.
                try queue.pushUsed(chains[0].usedElement(writtenLength: 0))
                counters.errors &+= 1
                position = queue.availablePosition
                continue
            }
            capacity &+= writable
            count += 1
            if capacity < UInt64(total) && (!mergeableBuffers || count >= queueSize) {
                // One chain must hold it (no MRG_RXBUF), or the whole ring cannot.
                try queue.rewindAvailable(to: position)
                return .dropped
            }
        }
        var header = frame.header
        header.bufferCount = UInt16(truncatingIfNeeded: count)
        header.serialize(into: buffer.bytes)
        var offset = 0
        for index in 0..<count {
            let remaining = total - offset
            let piece = index == count - 1 ? remaining : min(remaining, Int(clamping: chains[index].writableLength))
            // SAFETY: `offset + piece <= total <= buffer.bytes.count`.
            let slice = UnsafeRawBufferPointer(rebasing: buffer.bytes[offset..<(offset + piece)])
            var written: UInt32 = 0
            do {
                written = try chains[index].scatterWritable(slice, to: memory)
            } catch {
                counters.errors &+= 1
            }
            try queue.pushUsed(chains[index].usedElement(writtenLength: written))
            offset += piece
        }
        return .delivered(chains: count)
    }
}

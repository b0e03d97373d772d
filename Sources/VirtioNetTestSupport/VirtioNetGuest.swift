import VirtioModel
import VirtioNet
import Virtqueue
import VirtqueueTestSupport

/// The guest side of a virtio-net device, for tests, benchmarks and the
/// fuzzer: one heap "guest memory" holding every queue's rings and a pool
/// of data slots per queue, with the driver role on each queue.
///
/// Queue numbering follows §5.1.2 "Virtqueues": receiveq N = 2N,
/// transmitq N = 2N+1, controlq = 2 × queuePairs (when present).
public struct VirtioNetGuest {
    public let memory: HeapGuestMemory
    public let features: VirtioFeatures
    public let queuePairs: Int
    public let hasControlQueue: Bool
    /// The states the device queues are to be built from, by queue index.
    public let queueStates: [QueueState]
    public let slotSize: Int
    private var drivers: [any VirtqueueDriver<HeapGuestMemory>]
    private var slotBases: [GuestAddress]
    private var freeSlots: [[Int]]
    private var slotById: [[UInt16: (slot: Int, readable: Int)]]

    public init(
        layout: QueueLayout, queuePairs: Int = 1, size: UInt16 = 64, features: VirtioFeatures,
        control: Bool = false, eventIndex: Bool = false, slotSize: Int = 2048, ringBase: GuestAddress = GuestAddress(0x1000),
        allocateMemory: (Int) throws -> HeapGuestMemory = { try HeapGuestMemory(size: $0) }
    ) throws {
        precondition(queuePairs >= 1)
        self.features = features
        self.queuePairs = queuePairs
        hasControlQueue = control
        self.slotSize = slotSize
        let queueCount = queuePairs * 2 + (control ? 1 : 0)
        var states: [QueueState] = []
        var cursor = ringBase
        for _ in 0..<queueCount {
            let placed = RingLayoutBuilder.makeState(layout: layout, size: size, base: cursor, eventIndex: eventIndex)
            states.append(placed.state)
            cursor = placed.end
        }
        var dataBase = (cursor.rawValue + 0xfff) & ~0xfff
        var bases: [GuestAddress] = []
        for _ in 0..<queueCount {
            bases.append(GuestAddress(dataBase))
            dataBase += UInt64(size) * UInt64(slotSize)
        }
        memory = try allocateMemory(Int(dataBase))
        queueStates = states
        slotBases = bases
        freeSlots = Array(repeating: Array((0..<Int(size)).reversed()), count: queueCount)
        slotById = Array(repeating: [:], count: queueCount)
        drivers = []
        for state in states {
            switch layout {
            case .split: drivers.append(try SplitDriverQueue(state: state, memory: memory))
            case .packed: drivers.append(try PackedDriverQueue(state: state, memory: memory))
            }
        }
    }

    public static func receiveQueue(_ pair: Int) -> Int { pair * 2 }
    public static func transmitQueue(_ pair: Int) -> Int { pair * 2 + 1 }
    public var controlQueue: Int { queuePairs * 2 }

    /// Buffers made available on `queue` and not yet returned.
    public func inFlight(_ queue: Int) -> Int { drivers[queue].inFlightCount }

    /// Adds a buffer to `queue`: `readable` bytes, then `writable` bytes of
    /// room, each split into the given number of segments. Throws
    /// ``VirtqueueError/queueFull`` when no slot or descriptor is free.
    @discardableResult
    public mutating func addBuffer(
        queue: Int, readable: [UInt8], writable: Int = 0, readableSegments: Int = 1, writableSegments: Int = 1
    ) throws -> UInt16 {
        precondition(readable.count + writable <= slotSize, "buffer larger than a slot")
        guard let slot = freeSlots[queue].last else { throw VirtqueueError.queueFull }
        let base = slotBases[queue].wrappingAdding(UInt64(slot * slotSize))
        try memory.writeBytes(readable, at: base)
        let readableParts = Self.split(base: base, length: readable.count, pieces: readableSegments)
        let writableParts = Self.split(
            base: base.wrappingAdding(UInt64(readable.count)), length: writable, pieces: writableSegments)
        let id = try drivers[queue].addBuffer(readable: readableParts, writable: writableParts, indirect: false)
        freeSlots[queue].removeLast()
        slotById[queue][id] = (slot, readable.count)
        return id
    }

    static func split(base: GuestAddress, length: Int, pieces: Int) -> [BufferSegment] {
        BufferSegment.pieces(base: base, length: length, count: pieces)
    }

    /// Publishes added buffers on `queue`; returns the kick decision.
    @discardableResult
    public mutating func publish(_ queue: Int) throws -> Bool { try drivers[queue].publishAvailable() }

    /// The next used buffer of `queue` and the bytes the device wrote into it.
    public mutating func popUsed(_ queue: Int) throws -> (buffer: UsedBuffer, written: [UInt8])? {
        guard let used = try drivers[queue].popUsed() else { return nil }
        guard let entry = slotById[queue].removeValue(forKey: used.id) else { return (used, []) }
        freeSlots[queue].append(entry.slot)
        let base = slotBases[queue].wrappingAdding(UInt64(entry.slot * slotSize + entry.readable))
        let written = try memory.readBytes(at: base, count: Int(min(used.length, UInt32(slotSize))))
        return (used, written)
    }

    /// Asks `queue`'s device for used buffer notifications; true when some are pending.
    public mutating func enableInterrupts(_ queue: Int) throws -> Bool { try drivers[queue].enableInterrupts() }

    // MARK: Net helpers

    /// Queues `frame` with `header` on transmitq `pair` (header and frame in
    /// `segments` readable pieces). Does not publish.
    @discardableResult
    public mutating func transmit(
        _ frame: [UInt8], header: VirtioNetHeader = VirtioNetHeader(), pair: Int = 0, segments: Int = 1
    ) throws -> UInt16 {
        try addBuffer(queue: Self.transmitQueue(pair), readable: header.bytes + frame, readableSegments: segments)
    }

    /// Queues `frame` with `header` on transmitq `pair` in readable pieces of the given
    /// lengths (their sum is the header's 12 bytes plus the frame's). Does not publish.
    @discardableResult
    public mutating func transmit(
        _ frame: [UInt8], header: VirtioNetHeader = VirtioNetHeader(), pair: Int = 0, pieceLengths: [Int]
    ) throws -> UInt16 {
        let readable = header.bytes + frame
        precondition(pieceLengths.reduce(0, +) == readable.count, "pieces do not cover header and frame")
        let queue = Self.transmitQueue(pair)
        guard let slot = freeSlots[queue].last else { throw VirtqueueError.queueFull }
        let base = slotBases[queue].wrappingAdding(UInt64(slot * slotSize))
        try memory.writeBytes(readable, at: base)
        var parts: [BufferSegment] = []
        var offset = 0
        for length in pieceLengths {
            parts.append(BufferSegment(address: base.wrappingAdding(UInt64(offset)), length: UInt32(length)))
            offset += length
        }
        let id = try drivers[queue].addBuffer(readable: parts, writable: [], indirect: false)
        freeSlots[queue].removeLast()
        slotById[queue][id] = (slot, readable.count)
        return id
    }

    /// Completed transmit buffers of `pair`.
    public mutating func collectTransmitted(pair: Int = 0) throws -> [UsedBuffer] {
        var result: [UsedBuffer] = []
        while let used = try popUsed(Self.transmitQueue(pair)) { result.append(used.buffer) }
        return result
    }

    /// Posts `count` receive buffers of `size` writable bytes (in `segments` pieces) on `pair`. Does not publish.
    public mutating func postReceiveBuffers(pair: Int = 0, count: Int, size: Int, segments: Int = 1) throws {
        for _ in 0..<count {
            try addBuffer(queue: Self.receiveQueue(pair), readable: [], writable: size, writableSegments: segments)
        }
    }

    /// A packet the driver received: header and frame, and how many buffers it took.
    public struct ReceivedPacket: Hashable, Sendable {
        public var header: VirtioNetHeader
        public var frame: [UInt8]
        public var bufferCount: Int
    }

    /// Why received buffers make no sense to the driver.
    public enum ReceiveError: Error, Hashable {
        case shortBuffer(length: Int)
        case missingMergedBuffers(expected: Int, got: Int)
    }

    /// Reassembles received packets on `pair` (following `num_buffers` with
    /// VIRTIO_NET_F_MRG_RXBUF, as Linux's `receive_mergeable` does).
    public mutating func receivePackets(pair: Int = 0) throws -> [ReceivedPacket] {
        var result: [ReceivedPacket] = []
        let queue = Self.receiveQueue(pair)
        let mergeable = features.contains(VirtioFeatures.Net.mergeableRxBuffers)
        while let first = try popUsed(queue) {
            guard first.written.count >= VirtioNetHeader.size else { throw ReceiveError.shortBuffer(length: first.written.count) }
            let header = try VirtioNetHeader(parsing: first.written)
            var bytes = Array(first.written.dropFirst(VirtioNetHeader.size))
            let expected = mergeable ? Int(header.bufferCount) : 1
            var got = 1
            while got < expected {
                guard let next = try popUsed(queue) else { throw ReceiveError.missingMergedBuffers(expected: expected, got: got) }
                bytes += next.written
                got += 1
            }
            result.append(ReceivedPacket(header: header, frame: bytes, bufferCount: got))
        }
        return result
    }

    /// Queues a control command (readable bytes) with a one-byte ack buffer. Does not publish.
    @discardableResult
    public mutating func sendControl(_ bytes: [UInt8], ackBytes: Int = 1) throws -> UInt16 {
        try addBuffer(queue: controlQueue, readable: bytes, writable: ackBytes)
    }

    /// Acks of completed control commands, in completion order (nil: no ack written).
    public mutating func collectControlAcks() throws -> [UInt8?] {
        var result: [UInt8?] = []
        while let used = try popUsed(controlQueue) { result.append(used.written.first) }
        return result
    }
}

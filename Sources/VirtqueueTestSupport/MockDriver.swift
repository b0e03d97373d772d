import Virtqueue

/// A driver role plus its guest memory and a data-buffer pool: the "guest"
/// side of round-trip tests and benchmarks.
///
/// Memory map: rings at 0x1000, indirect tables after them, then one data
/// slot of `slotSize` bytes per possible in-flight buffer.
public struct MockDriver {
    public let memory: HeapGuestMemory
    /// The state a device queue should be created from.
    public let deviceState: QueueState
    public var driver: any VirtqueueDriver<HeapGuestMemory>
    public let slotSize: Int
    let dataBase: GuestAddress
    var freeSlots: [Int]
    var slotById: [UInt16: (slot: Int, readableLength: Int)] = [:]

    public init(
        layout: QueueLayout, size: UInt16, eventIndex: Bool = false, indirect: Bool = false,
        inOrder: Bool = false, slotSize: Int = 512, indirectEntries: UInt16 = 8
    ) throws {
        let placed = RingLayoutBuilder.makeState(
            layout: layout, size: size, base: GuestAddress(0x1000),
            eventIndex: eventIndex, indirect: indirect, inOrder: inOrder)
        let arenaBase = placed.end
        let arenaBytes = IndirectTableArena.byteCount(size: size, entriesPerTable: indirectEntries)
        let dataBase = GuestAddress((arenaBase.rawValue + arenaBytes + 0xfff) & ~0xfff)
        let total = Int(dataBase.rawValue) + Int(size) * slotSize
        let memory = try HeapGuestMemory(size: total)
        self.memory = memory
        self.deviceState = placed.state
        self.slotSize = slotSize
        self.dataBase = dataBase
        self.freeSlots = Array((0..<Int(size)).reversed())
        let arena = indirect ? IndirectTableArena(base: arenaBase, entriesPerTable: indirectEntries) : nil
        switch layout {
        case .split: driver = try SplitDriverQueue(state: placed.state, memory: memory, indirectArena: arena)
        case .packed: driver = try PackedDriverQueue(state: placed.state, memory: memory, indirectArena: arena)
        }
    }

    /// Adds a buffer whose readable part holds `payload` (split into
    /// `readableSegments` pieces) followed by `writableCapacity` writable bytes
    /// (in `writableSegments` pieces). Returns the buffer id.
    @discardableResult
    public mutating func add(
        payload: [UInt8], writableCapacity: Int = 0, readableSegments: Int = 1, writableSegments: Int = 1,
        indirect: Bool = false
    ) throws -> UInt16 {
        precondition(payload.count + writableCapacity <= slotSize, "test buffer larger than its slot")
        guard let slot = freeSlots.last else { throw VirtqueueError.queueFull }
        let base = dataBase.wrappingAdding(UInt64(slot * slotSize))
        try memory.writeBytes(payload, at: base)
        let readable = Self.split(base: base, length: payload.count, pieces: payload.isEmpty ? 0 : readableSegments)
        let writable = Self.split(
            base: base.wrappingAdding(UInt64(payload.count)), length: writableCapacity,
            pieces: writableCapacity == 0 ? 0 : writableSegments)
        let id = try driver.addBuffer(readable: readable, writable: writable, indirect: indirect)
        freeSlots.removeLast()
        slotById[id] = (slot, payload.count)
        return id
    }

    static func split(base: GuestAddress, length: Int, pieces: Int) -> [BufferSegment] {
        BufferSegment.pieces(base: base, length: length, count: pieces)
    }

    /// Publishes added buffers; returns the kick decision.
    public mutating func publish() throws -> Bool { try driver.publishAvailable() }

    /// Returns the next used buffer and the bytes the device wrote into it.
    public mutating func popUsed() throws -> (buffer: UsedBuffer, written: [UInt8])? {
        guard let used = try driver.popUsed() else { return nil }
        guard let entry = slotById.removeValue(forKey: used.id) else { return (used, []) }
        freeSlots.append(entry.slot)
        let base = dataBase.wrappingAdding(UInt64(entry.slot * slotSize + entry.readableLength))
        let written = try memory.readBytes(at: base, count: Int(min(used.length, UInt32(slotSize))))
        return (used, written)
    }
}

extension BufferSegment {
    /// `[base, base+length)` cut into `count` segments (fewer when `length` is
    /// smaller); the last takes the remainder. Empty when either is zero.
    public static func pieces(base: GuestAddress, length: Int, count: Int) -> [BufferSegment] {
        guard count > 0, length > 0 else { return [] }
        let count = min(count, length)
        var result: [BufferSegment] = []
        var offset = 0
        for index in 0..<count {
            let piece = index == count - 1 ? length - offset : length / count
            result.append(BufferSegment(address: base.wrappingAdding(UInt64(offset)), length: UInt32(piece)))
            offset += piece
        }
        return result
    }
}

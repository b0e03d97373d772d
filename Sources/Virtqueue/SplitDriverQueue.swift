/// Driver role of a split virtqueue (§2.7.13 "Supplying Buffers to The
/// Device", §2.7.14 "Receiving Used Buffers From The Device").
///
/// The free-descriptor list is kept host-side (never read back from guest
/// memory). Ordering: descriptors and ring entries are written, then
/// `avail->idx` is stored with release; a full fence precedes reading
/// `avail_event` / `used->flags` for the kick decision; `used->idx` is loaded
/// with acquire before used elements are read.
public struct SplitDriverQueue<Memory: GuestMemory>: VirtqueueDriver {
    public let memory: Memory
    public let state: QueueState
    @usableFromInline let size: UInt16
    @usableFromInline let mask: UInt16
    @usableFromInline let arena: IndirectTableArena?
    @usableFromInline var freeHead: UInt16 = 0
    @usableFromInline var freeCount: Int
    @usableFromInline var nextFree: [UInt16]
    @usableFromInline var buffers: [DriverBufferState]
    @usableFromInline var availIndex: UInt16
    @usableFromInline var publishedAvail: UInt16
    @usableFromInline var lastUsed: UInt16
    @usableFromInline var shadowUsed: UInt16
    @usableFromInline var inFlight = 0
    @usableFromInline var order: IdFIFO
    /// In-order batch being returned: its last id, reported length, and buffers so far.
    @usableFromInline var batchLast: UInt16?
    @usableFromInline var batchLength: UInt32 = 0
    @usableFromInline var batchBuffers: UInt16 = 0
    @usableFromInline var _brokenError: VirtqueueError?
    /// `_brokenError != nil`, as a flag every call tests without copying the error.
    @usableFromInline var isBroken = false

    /// Creates the driver side and initialises the rings in memory (flags and
    /// indices zero, as after a reset). `state` indices must be zero.
    public init(state: QueueState, memory: Memory, indirectArena: IndirectTableArena? = nil) throws(VirtqueueError) {
        guard state.layout == .split else { throw .invalidQueueSize(state.size) }
        try state.validate(memory: memory)
        if let indirectArena {
            do {
                try memory.checkRange(
                    indirectArena.base,
                    length: IndirectTableArena.byteCount(size: state.size, entriesPerTable: indirectArena.entriesPerTable),
                    requireContiguous: true)
            } catch { throw .areaOutOfMemory(area: .descriptor, address: indirectArena.base, length: 0) }
        }
        self.memory = memory
        self.state = state
        size = state.size
        mask = state.size &- 1
        arena = indirectArena
        freeCount = Int(size)
        nextFree = (0..<size).map { $0 &+ 1 }
        buffers = [DriverBufferState](repeating: DriverBufferState(), count: Int(size))
        availIndex = 0
        publishedAvail = 0
        lastUsed = 0
        shadowUsed = 0
        order = IdFIFO(capacity: Int(size))
        do {
            try memory.store(UInt32(0), at: state.driverArea)
            try memory.store(UInt32(0), at: state.deviceArea)
            try memory.store(UInt16(0), at: state.driverArea.wrappingAdding(4 &+ 2 &* UInt64(size)))
            try memory.store(UInt16(0), at: state.deviceArea.wrappingAdding(4 &+ 8 &* UInt64(size)))
        } catch { throw .memory(error) }
    }

    public var inFlightCount: Int { inFlight }
    public var brokenError: VirtqueueError? { _brokenError }
    /// Free descriptors.
    public var freeDescriptorCount: Int { freeCount }

    @usableFromInline
    mutating func fail(_ error: VirtqueueError) -> VirtqueueError {
        if error.isGuestFault, _brokenError == nil {
            _brokenError = error
            isBroken = true
        }
        return error
    }

    // MARK: Adding buffers

    @inlinable
    public mutating func addBuffer(
        readable: [BufferSegment], writable: [BufferSegment], indirect: Bool = false
    ) throws(VirtqueueError) -> UInt16 {
        if isBroken, let broken = _brokenError { throw broken }
        let total = readable.count + writable.count
        guard total > 0 else { throw .emptyBuffer }
        let useIndirect = indirect
        if useIndirect {
            guard state.indirectDescriptors, let arena else { throw .indirectNotNegotiated(head: 0) }
            guard total <= Int(arena.entriesPerTable), total <= Int(size) else { throw .tooManySegments(total) }
        } else {
            guard total <= Int(size) else { throw .tooManySegments(total) }
        }
        let needed = useIndirect ? 1 : total
        guard freeCount >= needed else { throw .queueFull }
        let head = freeHead
        var capacity: UInt64 = 0
        for segment in writable { capacity &+= UInt64(segment.length) }
        do {
            if useIndirect, let arena {
                let table = arena.table(for: head)
                for index in 0..<total {
                    let segment = index < readable.count ? readable[index] : writable[index &- readable.count]
                    var flags: UInt16 = index >= readable.count ? DescriptorFlags.write : 0
                    if index + 1 < total { flags |= DescriptorFlags.next }
                    try RawDescriptor(
                        address: segment.address.rawValue, length: segment.length, word12: flags,
                        word14: UInt16(truncatingIfNeeded: index + 1)
                    ).store(at: table.wrappingAdding(16 &* UInt64(index)), to: memory)
                }
                try RawDescriptor(
                    address: table.rawValue, length: UInt32(total * 16), word12: DescriptorFlags.indirect, word14: 0
                ).store(at: descriptorAddress(head), to: memory)
                freeHead = nextFree[Int(head)]
                buffers[Int(head)].lastDescriptor = head
            } else {
                var index = head
                var last = head
                for position in 0..<total {
                    let segment = position < readable.count ? readable[position] : writable[position &- readable.count]
                    var flags: UInt16 = position >= readable.count ? DescriptorFlags.write : 0
                    let next = nextFree[Int(index)]
                    if position + 1 < total { flags |= DescriptorFlags.next }
                    try RawDescriptor(
                        address: segment.address.rawValue, length: segment.length, word12: flags, word14: next
                    ).store(at: descriptorAddress(index), to: memory)
                    last = index
                    index = next
                }
                freeHead = index
                buffers[Int(head)].lastDescriptor = last
            }
            try memory.store(head, at: state.driverArea.wrappingAdding(4 &+ 2 &* UInt64(availIndex & mask)))
        } catch {
            throw .memory(error)
        }
        freeCount -= needed
        buffers[Int(head)].active = true
        buffers[Int(head)].descriptorCount = UInt16(needed)
        buffers[Int(head)].writableCapacity = capacity
        availIndex &+= 1
        inFlight += 1
        if state.inOrder { order.append(head) }
        return head
    }

    @inlinable
    func descriptorAddress(_ index: UInt16) -> GuestAddress {
        state.descriptorArea.wrappingAdding(16 &* UInt64(index))
    }

    /// §2.7.13.3 "Updating idx", §2.7.13.4 "Notifying The Device" (with
    /// EVENT_IDX: `vring_need_event(avail_event, new, old)`; otherwise unless
    /// VIRTQ_USED_F_NO_NOTIFY).
    @inlinable
    public mutating func publishAvailable() throws(VirtqueueError) -> Bool {
        if isBroken, let broken = _brokenError { throw broken }
        if availIndex == publishedAvail { return false }
        do {
            try memory.storeIndex(availIndex, at: state.driverArea.wrappingAdding(2), ordering: .releasing)
            let old = publishedAvail
            publishedAvail = availIndex
            memory.fullFence()
            if state.eventIndex {
                let event = try memory.loadIndex(
                    at: state.deviceArea.wrappingAdding(4 &+ 8 &* UInt64(size)), ordering: .relaxed)
                return vringNeedEvent(eventIndex: event, newIndex: availIndex, oldIndex: old)
            }
            let flags = try memory.loadIndex(at: state.deviceArea, ordering: .relaxed)
            return flags & SplitRingFlags.noNotify == 0
        } catch {
            throw fail(.memory(error))
        }
    }

    // MARK: Used buffers

    @inlinable
    public mutating func popUsed() throws(VirtqueueError) -> UsedBuffer? {
        if isBroken, let broken = _brokenError { throw broken }
        do throws(VirtqueueError) {
            if let batchLast, let front = order.first, front != batchLast {
                // Earlier buffer of a collapsed in-order batch.
                let capacity = buffers[Int(front)].writableCapacity
                release(front)
                batchBuffers &+= 1
                return UsedBuffer(id: front, length: UInt32(truncatingIfNeeded: min(capacity, UInt64(UInt32.max))))
            }
            if let batchLast {
                release(batchLast)
                lastUsed &+= batchBuffers &+ 1
                self.batchLast = nil
                batchBuffers = 0
                return UsedBuffer(id: batchLast, length: batchLength)
            }
            if lastUsed == shadowUsed {
                let index: UInt16
                do {
                    index = try memory.loadIndex(at: state.deviceArea.wrappingAdding(2), ordering: .acquiring)
                } catch { throw VirtqueueError.memory(error) }
                if index &- lastUsed > UInt16(truncatingIfNeeded: inFlight) {
                    throw .usedIndexTooFarAhead(usedIndex: index, lastSeen: lastUsed, size: size)
                }
                shadowUsed = index
                if index == lastUsed { return nil }
            }
            let entry: UInt64
            do {
                entry = try memory.load(UInt64.self, at: state.deviceArea.wrappingAdding(4 &+ 8 &* UInt64(lastUsed & mask)))
            } catch { throw VirtqueueError.memory(error) }
            let rawId = UInt32(truncatingIfNeeded: entry)
            let length = UInt32(truncatingIfNeeded: entry &>> 32)
            guard rawId < UInt32(size), buffers[Int(rawId)].active else { throw .usedIdNotInFlight(id: rawId) }
            let id = UInt16(truncatingIfNeeded: rawId)
            let capacity = buffers[Int(id)].writableCapacity
            guard UInt64(length) <= capacity else {
                throw .usedLengthExceedsBuffer(id: id, length: length, capacity: capacity)
            }
            if state.inOrder, let front = order.first, front != id {
                // §2.7.9: one entry for a batch; it names the batch's last buffer.
                // The used index must already account for the whole batch.
                batchLast = id
                batchLength = length
                batchBuffers = 0
                let capacityFront = buffers[Int(front)].writableCapacity
                release(front)
                batchBuffers = 1
                return UsedBuffer(id: front, length: UInt32(truncatingIfNeeded: min(capacityFront, UInt64(UInt32.max))))
            }
            release(id)
            lastUsed &+= 1
            return UsedBuffer(id: id, length: length)
        } catch {
            throw fail(error)
        }
    }

    /// Returns a buffer's descriptors to the free list.
    @inlinable
    mutating func release(_ id: UInt16) {
        let state = buffers[Int(id)]
        buffers[Int(id)].active = false
        nextFree[Int(state.lastDescriptor)] = freeHead
        freeHead = id
        freeCount += Int(state.descriptorCount)
        inFlight -= 1
        if self.state.inOrder { order.removeFirst() }
    }

    // MARK: Interrupt suppression (§2.7.7 "Used Buffer Notification Suppression")

    public mutating func enableInterrupts() throws(VirtqueueError) -> Bool {
        if isBroken, let broken = _brokenError { throw broken }
        do {
            if state.eventIndex {
                try memory.storeIndex(lastUsed, at: state.driverArea.wrappingAdding(4 &+ 2 &* UInt64(size)), ordering: .relaxed)
            } else {
                try memory.storeIndex(0, at: state.driverArea, ordering: .relaxed)
            }
            memory.fullFence()
            let index = try memory.loadIndex(at: state.deviceArea.wrappingAdding(2), ordering: .acquiring)
            return index != lastUsed || batchLast != nil
        } catch {
            throw fail(.memory(error))
        }
    }

    public mutating func disableInterrupts() throws(VirtqueueError) {
        if isBroken, let broken = _brokenError { throw broken }
        if state.eventIndex { return }
        do {
            try memory.storeIndex(SplitRingFlags.noInterrupt, at: state.driverArea, ordering: .relaxed)
        } catch {
            throw fail(.memory(error))
        }
    }
}

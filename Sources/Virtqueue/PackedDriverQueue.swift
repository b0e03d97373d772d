/// Driver role of a packed virtqueue (§2.8.13 "Supplying Buffers to The
/// Device", §2.8.? "Receiving Used Buffers From The Device").
///
/// Buffer IDs are taken from a host-side free list (`0..<size`). Batching:
/// the first added head's flags are written last, with release, at
/// ``publishAvailable()`` (§2.8.? "Multiple Buffers": "the driver ...
/// updates the flags of the first descriptor in the batch last").
public struct PackedDriverQueue<Memory: GuestMemory>: VirtqueueDriver {
    public let memory: Memory
    public let state: QueueState
    @usableFromInline let size: UInt16
    @usableFromInline let arena: IndirectTableArena?
    @usableFromInline var freeIds: [UInt16]
    @usableFromInline var freeSlots: Int
    @usableFromInline var buffers: [DriverBufferState]
    @usableFromInline var nextAvail: UInt16 = 0
    @usableFromInline var availWrap = true
    @usableFromInline var nextUsed: UInt16 = 0
    @usableFromInline var usedWrap = true
    @usableFromInline var inFlight = 0
    /// Unpublished heads: (slot, flags). The first is stored last, with release.
    @usableFromInline var pendingHeads: [(slot: UInt16, flags: UInt16)] = []
    @usableFromInline var slotsSinceKickDecision: UInt32 = 0
    @usableFromInline var order: IdFIFO
    @usableFromInline var batchLast: UInt16?
    @usableFromInline var batchLength: UInt32 = 0
    @usableFromInline var batchSlots: UInt32 = 0
    @usableFromInline var _brokenError: VirtqueueError?
    /// `_brokenError != nil`, as a flag every call tests without copying the error.
    @usableFromInline var isBroken = false

    /// Creates the driver side and initialises the ring (all descriptors not
    /// available for wrap counter 1; both suppression structures ENABLE).
    public init(state: QueueState, memory: Memory, indirectArena: IndirectTableArena? = nil) throws(VirtqueueError) {
        guard state.layout == .packed else { throw .invalidQueueSize(state.size) }
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
        arena = indirectArena
        freeIds = (0..<state.size).reversed()
        freeSlots = Int(state.size)
        buffers = [DriverBufferState](repeating: DriverBufferState(), count: Int(state.size))
        order = IdFIFO(capacity: Int(state.size))
        pendingHeads.reserveCapacity(Int(state.size))
        do {
            for slot in 0..<state.size {
                try RawDescriptor(address: 0, length: 0, word12: 0, word14: 0)
                    .store(at: state.descriptorArea.wrappingAdding(16 &* UInt64(slot)), to: memory)
            }
            try memory.store(UInt32(0), at: state.driverArea)
            try memory.store(UInt32(0), at: state.deviceArea)
        } catch { throw .memory(error) }
    }

    public var inFlightCount: Int { inFlight }
    public var brokenError: VirtqueueError? { _brokenError }
    /// Free ring slots.
    public var freeDescriptorCount: Int { freeSlots }

    @inlinable
    func descriptorAddress(_ slot: UInt16) -> GuestAddress {
        state.descriptorArea.wrappingAdding(16 &* UInt64(slot))
    }

    @usableFromInline
    mutating func fail(_ error: VirtqueueError) -> VirtqueueError {
        if error.isGuestFault, _brokenError == nil {
            _brokenError = error
            isBroken = true
        }
        return error
    }

    @inlinable
    static func availFlags(wrap: Bool) -> UInt16 {
        wrap ? DescriptorFlags.avail : DescriptorFlags.used
    }

    // MARK: Adding buffers

    @inlinable
    public mutating func addBuffer(
        readable: [BufferSegment], writable: [BufferSegment], indirect: Bool = false
    ) throws(VirtqueueError) -> UInt16 {
        if isBroken, let broken = _brokenError { throw broken }
        let total = readable.count + writable.count
        guard total > 0 else { throw .emptyBuffer }
        if indirect {
            guard state.indirectDescriptors, let arena else { throw .indirectNotNegotiated(head: 0) }
            guard total <= Int(arena.entriesPerTable), total <= Int(size) else { throw .tooManySegments(total) }
        } else {
            guard total <= Int(size) else { throw .tooManySegments(total) }
        }
        let needed = indirect ? 1 : total
        guard freeSlots >= needed, let id = freeIds.last else { throw .queueFull }
        var capacity: UInt64 = 0
        for segment in writable { capacity &+= UInt64(segment.length) }
        let headSlot = nextAvail
        var headFlags: UInt16 = 0
        do {
            if indirect, let arena {
                let table = arena.table(for: id)
                for index in 0..<total {
                    let segment = index < readable.count ? readable[index] : writable[index &- readable.count]
                    let flags: UInt16 = index >= readable.count ? DescriptorFlags.write : 0
                    try RawDescriptor(address: segment.address.rawValue, length: segment.length, word12: 0, word14: flags)
                        .store(at: table.wrappingAdding(16 &* UInt64(index)), to: memory)
                }
                headFlags = DescriptorFlags.indirect | Self.availFlags(wrap: availWrap)
                try RawDescriptor(address: table.rawValue, length: UInt32(total * 16), word12: id, word14: 0)
                    .storeLeavingLastWord(at: descriptorAddress(headSlot), to: memory)
                advance()
            } else {
                for position in 0..<total {
                    let segment = position < readable.count ? readable[position] : writable[position &- readable.count]
                    var flags: UInt16 = position >= readable.count ? DescriptorFlags.write : 0
                    if position + 1 < total { flags |= DescriptorFlags.next }
                    flags |= Self.availFlags(wrap: availWrap)
                    let slot = nextAvail
                    // Flags of non-head descriptors may be written now: the
                    // device reads them only after acquiring the head's flags.
                    // The head's flags are written at publishAvailable().
                    let descriptor = RawDescriptor(
                        address: segment.address.rawValue, length: segment.length, word12: id, word14: flags)
                    if position == 0 {
                        try descriptor.storeLeavingLastWord(at: descriptorAddress(slot), to: memory)
                    } else {
                        try descriptor.store(at: descriptorAddress(slot), to: memory)
                    }
                    if position == 0 { headFlags = flags }
                    advance()
                }
            }
        } catch { throw .memory(error) }
        freeIds.removeLast()
        freeSlots -= needed
        buffers[Int(id)].active = true
        buffers[Int(id)].descriptorCount = UInt16(needed)
        buffers[Int(id)].writableCapacity = capacity
        pendingHeads.append((headSlot, headFlags))
        slotsSinceKickDecision &+= UInt32(needed)
        inFlight += 1
        if state.inOrder { order.append(id) }
        return id
    }

    @inlinable
    mutating func advance() {
        nextAvail &+= 1
        if nextAvail == size {
            nextAvail = 0
            availWrap.toggle()
        }
    }

    /// Publishes pending heads (first one last, with release), then decides
    /// on a notification from the Device Event Suppression structure (§2.8.10).
    @inlinable
    public mutating func publishAvailable() throws(VirtqueueError) -> Bool {
        if isBroken, let broken = _brokenError { throw broken }
        guard let first = pendingHeads.first else { return false }
        do {
            for head in pendingHeads.dropFirst() {
                try memory.storeIndex(head.flags, at: descriptorAddress(head.slot).wrappingAdding(14), ordering: .relaxed)
            }
            try memory.storeIndex(first.flags, at: descriptorAddress(first.slot).wrappingAdding(14), ordering: .releasing)
            pendingHeads.removeAll(keepingCapacity: true)
            memory.fullFence()
            let word = try memory.load(UInt32.self, at: state.deviceArea)
            let slots = slotsSinceKickDecision
            slotsSinceKickDecision = 0
            return PackedDeviceQueue<Memory>.needsEvent(
                suppression: word, eventIndexNegotiated: state.eventIndex, newSlot: nextAvail, wrap: availWrap,
                slotsSinceDecision: slots, size: size)
        } catch {
            throw fail(.memory(error))
        }
    }

    // MARK: Used buffers

    @inlinable
    public mutating func popUsed() throws(VirtqueueError) -> UsedBuffer? {
        if isBroken, let broken = _brokenError { throw broken }
        do throws(VirtqueueError) {
            if let batchLast, let front = order.first {
                let capacity = buffers[Int(front)].writableCapacity
                batchSlots &+= UInt32(buffers[Int(front)].descriptorCount)
                release(front)
                if front != batchLast {
                    return UsedBuffer(id: front, length: UInt32(truncatingIfNeeded: min(capacity, UInt64(UInt32.max))))
                }
                advanceUsed(by: batchSlots)
                self.batchLast = nil
                batchSlots = 0
                return UsedBuffer(id: batchLast, length: batchLength)
            }
            let address = descriptorAddress(nextUsed)
            let flags: UInt16
            do { flags = try memory.loadIndex(at: address.wrappingAdding(14), ordering: .acquiring) } catch {
                throw VirtqueueError.memory(error)
            }
            let avail = flags & DescriptorFlags.avail != 0
            let used = flags & DescriptorFlags.used != 0
            guard avail == usedWrap, used == usedWrap else { return nil }
            let descriptor: RawDescriptor
            do { descriptor = try RawDescriptor(loading: address, from: memory) } catch { throw VirtqueueError.memory(error) }
            let id = descriptor.word12
            guard id < size, buffers[Int(id)].active else { throw .usedIdNotInFlight(id: UInt32(id)) }
            let capacity = buffers[Int(id)].writableCapacity
            // §2.8.?: Element Length is only meaningful with VIRTQ_DESC_F_WRITE.
            let length = flags & DescriptorFlags.write != 0 ? descriptor.length : 0
            guard UInt64(length) <= capacity else {
                throw .usedLengthExceedsBuffer(id: id, length: length, capacity: capacity)
            }
            if state.inOrder, let front = order.first, front != id {
                batchLast = id
                batchLength = length
                batchSlots = UInt32(buffers[Int(front)].descriptorCount)
                let frontCapacity = buffers[Int(front)].writableCapacity
                release(front)
                return UsedBuffer(id: front, length: UInt32(truncatingIfNeeded: min(frontCapacity, UInt64(UInt32.max))))
            }
            let slots = UInt32(buffers[Int(id)].descriptorCount)
            release(id)
            advanceUsed(by: slots)
            return UsedBuffer(id: id, length: length)
        } catch {
            throw fail(error)
        }
    }

    @inlinable
    mutating func release(_ id: UInt16) {
        buffers[Int(id)].active = false
        freeSlots += Int(buffers[Int(id)].descriptorCount)
        freeIds.append(id)
        inFlight -= 1
        if state.inOrder { order.removeFirst() }
    }

    @inlinable
    mutating func advanceUsed(by slots: UInt32) {
        let advanced = UInt32(nextUsed) &+ slots
        if advanced >= UInt32(size) {
            nextUsed = UInt16(truncatingIfNeeded: advanced &- UInt32(size))
            usedWrap.toggle()
        } else {
            nextUsed = UInt16(truncatingIfNeeded: advanced)
        }
    }

    // MARK: Interrupt suppression (§2.8.10)

    public mutating func enableInterrupts() throws(VirtqueueError) -> Bool {
        if isBroken, let broken = _brokenError { throw broken }
        do {
            if state.eventIndex {
                try memory.storeIndex(nextUsed | (usedWrap ? 0x8000 : 0), at: state.driverArea, ordering: .relaxed)
                try memory.storeIndex(PackedEventFlags.desc, at: state.driverArea.wrappingAdding(2), ordering: .relaxed)
            } else {
                try memory.storeIndex(PackedEventFlags.enable, at: state.driverArea.wrappingAdding(2), ordering: .relaxed)
            }
            memory.fullFence()
            let flags = try memory.loadIndex(at: descriptorAddress(nextUsed).wrappingAdding(14), ordering: .acquiring)
            let avail = flags & DescriptorFlags.avail != 0
            let used = flags & DescriptorFlags.used != 0
            return (avail == usedWrap && used == usedWrap) || batchLast != nil
        } catch {
            throw fail(.memory(error))
        }
    }

    public mutating func disableInterrupts() throws(VirtqueueError) {
        if isBroken, let broken = _brokenError { throw broken }
        do {
            try memory.storeIndex(PackedEventFlags.disable, at: state.driverArea.wrappingAdding(2), ordering: .relaxed)
        } catch {
            throw fail(.memory(error))
        }
    }
}

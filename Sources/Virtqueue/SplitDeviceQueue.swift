/// Device role of a split virtqueue (virtio 1.x §2.7 "Split Virtqueues").
///
/// Layout (all little-endian):
/// - Descriptor Table: `size` × {addr u64, len u32, flags u16, next u16}
/// - Available Ring (driver area): flags u16, idx u16, ring[size] u16, used_event u16
/// - Used Ring (device area): flags u16, idx u16, ring[size] {id u32, len u32}, avail_event u16
///
/// Memory ordering (§2.7.13 "Supplying Buffers to The Device", §2.7.14
/// "Receiving Used Buffers From The Device", "Virtqueue Notification Suppression"):
/// - `avail->idx` is loaded with acquire before reading ring entries and descriptors;
/// - used elements are written first, then `used->idx` is stored with release;
/// - between storing `used->idx` and reading `used_event`/`avail->flags`, and
///   between storing `avail_event`/`used->flags` and re-reading `avail->idx`,
///   a full fence.
public struct SplitDeviceQueue<Memory: GuestMemory>: VirtqueueDevice {
    public let memory: Memory
    @usableFromInline let size: UInt16
    @usableFromInline let mask: UInt16
    @usableFromInline let descriptorTable: GuestAddress
    @usableFromInline let availRing: GuestAddress
    @usableFromInline let usedRing: GuestAddress
    @usableFromInline let eventIndex: Bool
    @usableFromInline let indirectDescriptors: Bool
    @usableFromInline let inOrder: Bool
    @usableFromInline let ready: Bool

    /// Next avail ring index to consume (free-running, "last_avail_idx").
    @usableFromInline var nextAvail: UInt16
    /// Cached `avail->idx` (read only when `nextAvail` catches up with it).
    @usableFromInline var shadowAvail: UInt16
    /// Next used index to fill (free-running; published at `publishUsed`).
    @usableFromInline var nextUsed: UInt16
    /// `used->idx` as last published.
    @usableFromInline var publishedUsed: UInt16
    /// `used->idx` at the last notification decision (EVENT_IDX "old").
    @usableFromInline var signalledUsed: UInt16
    @usableFromInline var inFlight: Int = 0
    /// Chains popped since creation (for ``rewindAvailable(to:)``).
    @usableFromInline var popCount: UInt64 = 0
    /// In-order batch collapsing (§2.7.9 "In-order use of descriptors").
    @usableFromInline var pendingInOrderCount: UInt16 = 0
    @usableFromInline var pendingInOrderLast = UsedElement(id: 0, length: 0)
    @usableFromInline var _brokenError: VirtqueueError?
    /// `_brokenError != nil`, as a flag every call tests without copying the error.
    @usableFromInline var isBroken = false

    /// When VIRTIO_F_IN_ORDER is negotiated, write one used element per
    /// published batch (the last buffer's id) and advance `used->idx` by the
    /// batch size (§2.7.9). Off by default; only valid if the datapath really
    /// completes buffers in order.
    public var collapsesInOrderBatches = false

    public init(state: QueueState, memory: Memory) throws(VirtqueueError) {
        guard state.layout == .split else { throw .invalidQueueSize(state.size) }
        try state.validate(memory: memory)
        self.memory = memory
        size = state.size
        mask = state.size &- 1
        descriptorTable = state.descriptorArea
        availRing = state.driverArea
        usedRing = state.deviceArea
        eventIndex = state.eventIndex
        indirectDescriptors = state.indirectDescriptors
        inOrder = state.inOrder
        ready = state.ready
        nextAvail = state.nextAvailIndex
        shadowAvail = state.nextAvailIndex
        nextUsed = state.nextUsedIndex
        publishedUsed = state.nextUsedIndex
        signalledUsed = state.nextUsedIndex
    }

    @inlinable
    public var state: QueueState {
        QueueState(
            layout: .split, size: size, descriptorArea: descriptorTable, driverArea: availRing,
            deviceArea: usedRing, nextAvailIndex: nextAvail, nextUsedIndex: publishedUsed,
            eventIndex: eventIndex, indirectDescriptors: indirectDescriptors, inOrder: inOrder, ready: ready)
    }

    @inlinable public var brokenError: VirtqueueError? { _brokenError }
    @inlinable public var inFlightCount: Int { inFlight }

    // MARK: Addresses (offsets are bounded by the validated area lengths)

    @inlinable var availIndexAddress: GuestAddress { availRing.wrappingAdding(2) }
    @inlinable var availFlagsAddress: GuestAddress { availRing }
    @inlinable var usedEventAddress: GuestAddress { availRing.wrappingAdding(4 &+ 2 &* UInt64(size)) }
    @inlinable var usedIndexAddress: GuestAddress { usedRing.wrappingAdding(2) }
    @inlinable var usedFlagsAddress: GuestAddress { usedRing }
    @inlinable var availEventAddress: GuestAddress { usedRing.wrappingAdding(4 &+ 8 &* UInt64(size)) }
    @inlinable func availEntryAddress(_ index: UInt16) -> GuestAddress {
        availRing.wrappingAdding(4 &+ 2 &* UInt64(index & mask))
    }
    @inlinable func usedEntryAddress(_ index: UInt16) -> GuestAddress {
        usedRing.wrappingAdding(4 &+ 8 &* UInt64(index & mask))
    }

    @inlinable
    mutating func recordFault(_ error: VirtqueueError) -> VirtqueueError {
        if error.isGuestFault, _brokenError == nil {
            _brokenError = error
            isBroken = true
        }
        return error
    }

    // MARK: Available ring

    @inlinable
    public mutating func popAvailable(into chain: inout DescriptorChain) throws(VirtqueueError) -> Bool {
        if isBroken, let broken = _brokenError { throw broken }
        do throws(VirtqueueError) {
            if nextAvail == shadowAvail {
                let index = try loadAvailIndex()
                if index == nextAvail { return false }
            }
            let head: UInt16
            do { head = try memory.load(UInt16.self, at: availEntryAddress(nextAvail)) } catch { throw VirtqueueError.memory(error) }
            try readChain(head: head, into: &chain)
            nextAvail &+= 1
            inFlight &+= 1
            popCount &+= 1
            return true
        } catch {
            throw recordFault(error)
        }
    }

    /// Loads `avail->idx` with acquire and validates it (§2.7.13.?: the
    /// driver can be at most `size` entries ahead).
    @inlinable
    mutating func loadAvailIndex() throws(VirtqueueError) -> UInt16 {
        let index: UInt16
        do { index = try memory.loadIndex(at: availIndexAddress, ordering: .acquiring) } catch { throw .memory(error) }
        if index &- nextAvail > size {
            throw .availIndexTooFarAhead(availIndex: index, lastSeen: nextAvail, size: size)
        }
        shadowAvail = index
        return index
    }

    /// Follows a chain from `head` (§2.7.5 "The Virtqueue Descriptor Table",
    /// §2.7.5.3 "Indirect Descriptors").
    @inlinable
    func readChain(head: UInt16, into chain: inout DescriptorChain) throws(VirtqueueError) {
        chain.reset()
        chain._head = head
        let limit = UInt32(size)
        var index = head
        var hops: UInt32 = 0
        var total: UInt32 = 0
        while true {
            guard index < size else { throw .descriptorIndexOutOfRange(index: index, limit: limit) }
            hops &+= 1
            // More hops than distinct descriptors means one was revisited.
            if hops > limit { throw .descriptorLoop(head: head) }
            let descriptor: RawDescriptor
            do {
                descriptor = try RawDescriptor(loading: descriptorTable.wrappingAdding(16 &* UInt64(index)), from: memory)
            } catch { throw .memory(error) }
            let flags = descriptor.word12
            chain._descriptorCount &+= 1
            if flags & DescriptorFlags.indirect != 0 {
                try readIndirectTable(descriptor, head: head, total: &total, into: &chain)
                return
            }
            total &+= 1
            if total > limit { throw .chainTooLong(head: head, limit: limit) }
            try chain.appendBuffer(
                address: descriptor.address, length: descriptor.length,
                writable: flags & DescriptorFlags.write != 0, head: head, memory: memory)
            if flags & DescriptorFlags.next == 0 { return }
            index = descriptor.word14
        }
    }

    @inlinable
    func readIndirectTable(
        _ descriptor: RawDescriptor, head: UInt16, total: inout UInt32, into chain: inout DescriptorChain
    ) throws(VirtqueueError) {
        let flags = descriptor.word12
        guard indirectDescriptors else { throw .indirectNotNegotiated(head: head) }
        if flags & DescriptorFlags.next != 0 { throw .indirectWithNext(head: head) }
        let length = descriptor.length
        if length == 0 { throw .zeroLengthIndirectTable(head: head) }
        if length & 15 != 0 { throw .indirectTableLengthNotMultipleOf16(head: head, length: length) }
        let table = GuestAddress(rawValue: descriptor.address)
        do {
            try memory.checkRange(table, length: UInt64(length), requireContiguous: true)
        } catch {
            throw DescriptorChain.bufferError(error, head: head, address: table, length: length)
        }
        let entries = length &>> 4
        let limit = UInt32(size)
        var index: UInt32 = 0
        var hops: UInt32 = 0
        while true {
            guard index < entries else {
                throw .descriptorIndexOutOfRange(index: UInt16(truncatingIfNeeded: index), limit: entries)
            }
            hops &+= 1
            if hops > entries { throw .descriptorLoop(head: head) }
            total &+= 1
            if total > limit { throw .chainTooLong(head: head, limit: limit) }
            let entry: RawDescriptor
            do {
                entry = try RawDescriptor(loading: table.wrappingAdding(16 &* UInt64(index)), from: memory)
            } catch { throw .memory(error) }
            let entryFlags = entry.word12
            if entryFlags & DescriptorFlags.indirect != 0 { throw .nestedIndirect(head: head) }
            try chain.appendBuffer(
                address: entry.address, length: entry.length,
                writable: entryFlags & DescriptorFlags.write != 0, head: head, memory: memory)
            if entryFlags & DescriptorFlags.next == 0 { return }
            index = UInt32(entry.word14)
        }
    }

    // MARK: Used ring

    @inlinable
    public mutating func pushUsed(_ element: UsedElement) throws(VirtqueueError) {
        if isBroken, let broken = _brokenError { throw broken }
        guard inFlight > 0, element.id < size else { throw .usedWithoutAvailable(id: element.id) }
        inFlight &-= 1
        if inOrder && collapsesInOrderBatches {
            pendingInOrderCount &+= 1
            pendingInOrderLast = element
            return
        }
        do {
            try writeUsedEntry(element, at: nextUsed)
        } catch {
            throw recordFault(error)
        }
        nextUsed &+= 1
    }

    @inlinable
    func writeUsedEntry(_ element: UsedElement, at index: UInt16) throws(VirtqueueError) {
        let packed = UInt64(element.id) | UInt64(element.length) &<< 32
        do { try memory.store(packed, at: usedEntryAddress(index)) } catch { throw .memory(error) }
    }

    @inlinable
    public mutating func publishUsed() throws(VirtqueueError) -> Bool {
        if isBroken, let broken = _brokenError { throw broken }
        do throws(VirtqueueError) {
            if pendingInOrderCount > 0 {
                try writeUsedEntry(pendingInOrderLast, at: nextUsed)
                nextUsed &+= pendingInOrderCount
                pendingInOrderCount = 0
            }
            if nextUsed == publishedUsed { return false }
            do {
                try memory.storeIndex(nextUsed, at: usedIndexAddress, ordering: .releasing)
            } catch { throw VirtqueueError.memory(error) }
            publishedUsed = nextUsed
            return try needsUsedNotification()
        } catch {
            throw recordFault(error)
        }
    }

    /// §2.7.10 "Used Buffer Notification Suppression": with EVENT_IDX,
    /// `vring_need_event(used_event, new, old)`; otherwise unless the driver
    /// set VIRTQ_AVAIL_F_NO_INTERRUPT.
    @inlinable
    mutating func needsUsedNotification() throws(VirtqueueError) -> Bool {
        memory.fullFence()
        do {
            if eventIndex {
                let event = try memory.loadIndex(at: usedEventAddress, ordering: .relaxed)
                let old = signalledUsed
                signalledUsed = publishedUsed
                return vringNeedEvent(eventIndex: event, newIndex: publishedUsed, oldIndex: old)
            }
            let flags = try memory.loadIndex(at: availFlagsAddress, ordering: .relaxed)
            return flags & SplitRingFlags.noInterrupt == 0
        } catch { throw .memory(error) }
    }

    // MARK: Notifications (§2.7.7, §2.7.10)

    @inlinable
    public mutating func enableNotifications() throws(VirtqueueError) -> Bool {
        if isBroken, let broken = _brokenError { throw broken }
        do throws(VirtqueueError) {
            do {
                if eventIndex {
                    try memory.storeIndex(shadowAvail, at: availEventAddress, ordering: .relaxed)
                } else {
                    try memory.storeIndex(0, at: usedFlagsAddress, ordering: .relaxed)
                }
            } catch { throw VirtqueueError.memory(error) }
            memory.fullFence()
            return try loadAvailIndex() != nextAvail
        } catch {
            throw recordFault(error)
        }
    }

    @inlinable
    public var availablePosition: AvailablePosition {
        AvailablePosition(index: nextAvail, wrapCounter: true, popCount: popCount)
    }

    @inlinable
    public mutating func rewindAvailable(to position: AvailablePosition) throws(VirtqueueError) {
        if isBroken, let broken = _brokenError { throw broken }
        let (popped, underflow) = popCount.subtractingReportingOverflow(position.popCount)
        guard !underflow, popped <= UInt64(inFlight), nextAvail &- position.index == UInt16(truncatingIfNeeded: popped) else {
            throw .rewindPastUsed
        }
        nextAvail = position.index
        inFlight &-= Int(popped)
        popCount = position.popCount
    }

    @inlinable
    public mutating func disableNotifications() throws(VirtqueueError) {
        if isBroken, let broken = _brokenError { throw broken }
        // With EVENT_IDX the driver only notifies when crossing avail_event,
        // which we simply stop advancing.
        if eventIndex { return }
        do {
            try memory.storeIndex(SplitRingFlags.noNotify, at: usedFlagsAddress, ordering: .relaxed)
        } catch {
            throw recordFault(.memory(error))
        }
    }
}

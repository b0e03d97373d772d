/// Device role of a packed virtqueue (virtio 1.x §2.8 "Packed Virtqueues").
///
/// Layout (all little-endian):
/// - Descriptor Ring: `size` × {addr u64, len u32, id u16, flags u16}
/// - Driver Event Suppression (driver area, written by the driver): {off_wrap u16, flags u16}
/// - Device Event Suppression (device area, written by the device): {off_wrap u16, flags u16}
///
/// A descriptor is available when its AVAIL bit equals the device's Driver
/// Ring Wrap Counter and its USED bit does not (§2.8.1 "Driver and Device
/// Ring Wrap Counters"). A used descriptor has both bits equal to the Used
/// Ring Wrap Counter. The device writes one used descriptor per buffer, with
/// the buffer's id, and skips as many ring slots as the buffer occupied
/// (§2.8.6 "Next Flag: Descriptor Chaining").
///
/// Memory ordering (§2.8.21 "Driver notifications", §2.8.? "Supplying
/// Buffers", "Receiving Used Buffers"): the head's flags are loaded with
/// acquire before the rest of the chain is read; used descriptors of a batch
/// are written first-slot-flags-last, that flag store being a release; a full
/// fence separates publishing and reading the other side's suppression structure.
public struct PackedDeviceQueue<Memory: GuestMemory>: VirtqueueDevice {
    public let memory: Memory
    @usableFromInline let size: UInt16
    @usableFromInline let descriptorRing: GuestAddress
    @usableFromInline let driverEventArea: GuestAddress
    @usableFromInline let deviceEventArea: GuestAddress
    @usableFromInline let eventIndex: Bool
    @usableFromInline let indirectDescriptors: Bool
    @usableFromInline let inOrder: Bool
    @usableFromInline let ready: Bool

    @usableFromInline var nextAvail: UInt16
    @usableFromInline var availWrap: Bool
    /// Next used slot to write (published state).
    @usableFromInline var nextUsed: UInt16
    @usableFromInline var usedWrap: Bool
    /// Ring slots published as used since the last notification decision.
    @usableFromInline var usedSlotsSinceDecision: UInt32 = 0
    @usableFromInline var inFlight: Int = 0
    /// Chains popped since creation (for ``rewindAvailable(to:)``).
    @usableFromInline var popCount: UInt64 = 0
    /// Used elements pushed but not yet published.
    @usableFromInline var pending: [UsedElement]
    @usableFromInline var _brokenError: VirtqueueError?
    /// `_brokenError != nil`, as a flag every call tests without copying the error.
    @usableFromInline var isBroken = false

    /// When VIRTIO_F_IN_ORDER is negotiated, write a single used descriptor
    /// per published batch, carrying the last buffer's id and skipping the
    /// slots of the whole batch (§2.8.? "In-order use of descriptors").
    public var collapsesInOrderBatches = false

    public init(state: QueueState, memory: Memory) throws(VirtqueueError) {
        guard state.layout == .packed else { throw .invalidQueueSize(state.size) }
        try state.validate(memory: memory)
        self.memory = memory
        size = state.size
        descriptorRing = state.descriptorArea
        driverEventArea = state.driverArea
        deviceEventArea = state.deviceArea
        eventIndex = state.eventIndex
        indirectDescriptors = state.indirectDescriptors
        inOrder = state.inOrder
        ready = state.ready
        nextAvail = state.nextAvailIndex
        availWrap = state.availWrapCounter
        nextUsed = state.nextUsedIndex
        usedWrap = state.usedWrapCounter
        pending = []
        pending.reserveCapacity(Int(state.size))
    }

    @inlinable
    public var state: QueueState {
        QueueState(
            layout: .packed, size: size, descriptorArea: descriptorRing, driverArea: driverEventArea,
            deviceArea: deviceEventArea, nextAvailIndex: nextAvail, nextUsedIndex: nextUsed,
            availWrapCounter: availWrap, usedWrapCounter: usedWrap,
            eventIndex: eventIndex, indirectDescriptors: indirectDescriptors, inOrder: inOrder, ready: ready)
    }

    @inlinable public var brokenError: VirtqueueError? { _brokenError }
    @inlinable public var inFlightCount: Int { inFlight }

    @inlinable func descriptorAddress(_ slot: UInt16) -> GuestAddress {
        descriptorRing.wrappingAdding(16 &* UInt64(slot))
    }

    @inlinable
    mutating func recordFault(_ error: VirtqueueError) -> VirtqueueError {
        if error.isGuestFault, _brokenError == nil {
            _brokenError = error
            isBroken = true
        }
        return error
    }

    /// Whether `flags` mark a descriptor available for wrap counter `wrap` (§2.8.1).
    @inlinable
    static func isAvailable(_ flags: UInt16, wrap: Bool) -> Bool {
        let avail = flags & DescriptorFlags.avail != 0
        let used = flags & DescriptorFlags.used != 0
        return avail == wrap && used != wrap
    }

    // MARK: Available descriptors

    @inlinable
    public mutating func popAvailable(into chain: inout DescriptorChain) throws(VirtqueueError) -> Bool {
        if isBroken, let broken = _brokenError { throw broken }
        do throws(VirtqueueError) {
            let headFlags: UInt16
            do {
                headFlags = try memory.loadIndex(at: descriptorAddress(nextAvail).wrappingAdding(14), ordering: .acquiring)
            } catch { throw VirtqueueError.memory(error) }
            guard Self.isAvailable(headFlags, wrap: availWrap) else { return false }
            try readChain(into: &chain)
            inFlight &+= 1
            popCount &+= 1
            return true
        } catch {
            throw recordFault(error)
        }
    }

    /// Reads the chain starting at `nextAvail` and advances past it on success.
    @inlinable
    mutating func readChain(into chain: inout DescriptorChain) throws(VirtqueueError) {
        chain.reset()
        let limit = UInt32(size)
        var slot = nextAvail
        var wrap = availWrap
        var total: UInt32 = 0
        var ringCount: UInt16 = 0
        let id: UInt16
        while true {
            ringCount &+= 1
            if UInt32(ringCount) > limit {
                throw .chainTooLong(head: nextAvail, limit: limit)
            }
            let descriptor: RawDescriptor
            do { descriptor = try RawDescriptor(loading: descriptorAddress(slot), from: memory) } catch {
                throw .memory(error)
            }
            let flags = descriptor.word14
            slot &+= 1
            if slot == size {
                slot = 0
                wrap.toggle()
            }
            if flags & DescriptorFlags.indirect != 0 {
                // The indirect descriptor carries the buffer id and ends the chain.
                if flags & DescriptorFlags.next != 0 { throw .indirectWithNext(head: descriptor.word12) }
                try readIndirectTable(descriptor, total: &total, into: &chain)
                id = descriptor.word12
                break
            }
            total &+= 1
            if total > limit { throw .chainTooLong(head: descriptor.word12, limit: limit) }
            try chain.appendBuffer(
                address: descriptor.address, length: descriptor.length,
                writable: flags & DescriptorFlags.write != 0, head: descriptor.word12, memory: memory)
            if flags & DescriptorFlags.next == 0 {
                // §2.8.6: the Buffer ID is in the last descriptor of the chain.
                id = descriptor.word12
                break
            }
        }
        guard id < size else { throw .bufferIdOutOfRange(id: id, limit: size) }
        chain._head = id
        chain._descriptorCount = ringCount
        nextAvail = slot
        availWrap = wrap
    }

    /// §2.8.? "Indirect Flag: Scatter-Gather Support": the table's entries are
    /// used sequentially; VIRTQ_DESC_F_NEXT inside it is ignored.
    @inlinable
    func readIndirectTable(
        _ descriptor: RawDescriptor, total: inout UInt32, into chain: inout DescriptorChain
    ) throws(VirtqueueError) {
        let head = descriptor.word12
        guard indirectDescriptors else { throw .indirectNotNegotiated(head: head) }
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
        if total &+ entries > limit { throw .chainTooLong(head: head, limit: limit) }
        total &+= entries
        var index: UInt32 = 0
        while index < entries {
            let entry: RawDescriptor
            do { entry = try RawDescriptor(loading: table.wrappingAdding(16 &* UInt64(index)), from: memory) } catch {
                throw .memory(error)
            }
            let flags = entry.word14
            if flags & DescriptorFlags.indirect != 0 { throw .nestedIndirect(head: head) }
            try chain.appendBuffer(
                address: entry.address, length: entry.length,
                writable: flags & DescriptorFlags.write != 0, head: head, memory: memory)
            index &+= 1
        }
    }

    // MARK: Used descriptors

    @inlinable
    public mutating func pushUsed(_ element: UsedElement) throws(VirtqueueError) {
        if isBroken, let broken = _brokenError { throw broken }
        guard inFlight > 0, element.id < size, element.descriptorCount > 0, element.descriptorCount <= size else {
            throw .usedWithoutAvailable(id: element.id)
        }
        inFlight &-= 1
        pending.append(element)
    }

    /// Flags word of a used descriptor for wrap counter `wrap` (§2.8.1).
    @inlinable
    static func usedFlags(wrap: Bool, written: Bool) -> UInt16 {
        (wrap ? DescriptorFlags.avail | DescriptorFlags.used : 0) | (written ? DescriptorFlags.write : 0)
    }

    @inlinable
    public mutating func publishUsed() throws(VirtqueueError) -> Bool {
        if isBroken, let broken = _brokenError { throw broken }
        if pending.isEmpty { return false }
        do throws(VirtqueueError) {
            if inOrder && collapsesInOrderBatches && pending.count > 1 {
                var slots: UInt32 = 0
                for element in pending { slots &+= UInt32(element.descriptorCount) }
                var last = pending[pending.count &- 1]
                // In-flight buffers never occupy more than `size` slots.
                last.descriptorCount = UInt16(truncatingIfNeeded: min(slots, UInt32(size)))
                pending.removeAll(keepingCapacity: true)
                pending.append(last)
            }
            let firstSlot = nextUsed
            let firstWrap = usedWrap
            var slot = nextUsed
            var wrap = usedWrap
            var slots: UInt32 = 0
            var firstFlags: UInt16 = 0
            for (position, element) in pending.enumerated() {
                let address = descriptorAddress(slot)
                do {
                    // len at 8, id at 12; the flags at 14 are not touched until
                    // below: the driver may be polling them, and a transient 0
                    // reads as "used" on a lap whose wrap counter is 0.
                    try memory.store(element.length, at: address.wrappingAdding(8))
                    try memory.store(element.id, at: address.wrappingAdding(12))
                    let flags = Self.usedFlags(wrap: wrap, written: element.length != 0)
                    if position == 0 {
                        firstFlags = flags
                    } else {
                        try memory.storeIndex(flags, at: address.wrappingAdding(14), ordering: .relaxed)
                    }
                } catch { throw VirtqueueError.memory(error) }
                slots &+= UInt32(element.descriptorCount)
                let advanced = UInt32(slot) &+ UInt32(element.descriptorCount)
                if advanced >= UInt32(size) {
                    slot = UInt16(truncatingIfNeeded: advanced &- UInt32(size))
                    wrap.toggle()
                } else {
                    slot = UInt16(truncatingIfNeeded: advanced)
                }
            }
            _ = firstWrap
            do {
                try memory.storeIndex(firstFlags, at: descriptorAddress(firstSlot).wrappingAdding(14), ordering: .releasing)
            } catch { throw VirtqueueError.memory(error) }
            pending.removeAll(keepingCapacity: true)
            nextUsed = slot
            usedWrap = wrap
            usedSlotsSinceDecision &+= slots
            return try needsUsedNotification()
        } catch {
            throw recordFault(error)
        }
    }

    /// §2.8.10 / §2.8.? "Used Buffer Notification Suppression" for packed rings.
    @inlinable
    mutating func needsUsedNotification() throws(VirtqueueError) -> Bool {
        memory.fullFence()
        let word: UInt32
        do { word = try memory.load(UInt32.self, at: driverEventArea) } catch { throw .memory(error) }
        let slots = usedSlotsSinceDecision
        usedSlotsSinceDecision = 0
        return Self.needsEvent(
            suppression: word, eventIndexNegotiated: eventIndex, newSlot: nextUsed, wrap: usedWrap,
            slotsSinceDecision: slots, size: size)
    }

    /// Shared packed event-suppression decision (device deciding on a used
    /// buffer notification, driver deciding on an available buffer notification).
    /// `suppression` is the other side's {off_wrap, flags} word.
    @inlinable
    static func needsEvent(
        suppression: UInt32, eventIndexNegotiated: Bool, newSlot: UInt16, wrap: Bool,
        slotsSinceDecision: UInt32, size: UInt16
    ) -> Bool {
        let offWrap = UInt16(truncatingIfNeeded: suppression)
        let flags = UInt16(truncatingIfNeeded: suppression &>> 16) & 3
        switch flags {
        case PackedEventFlags.disable:
            return false
        case PackedEventFlags.desc where eventIndexNegotiated:
            if slotsSinceDecision == 0 { return false }
            if slotsSinceDecision >= UInt32(size) { return true }
            let old = newSlot &- UInt16(truncatingIfNeeded: slotsSinceDecision)
            var event = offWrap & 0x7fff
            if (offWrap & 0x8000 != 0) != wrap { event &-= size }
            return vringNeedEvent(eventIndex: event, newIndex: newSlot, oldIndex: old)
        default:
            // ENABLE, or a reserved / not-negotiated value: notifying is always safe.
            return true
        }
    }

    // MARK: Notifications (§2.8.10 "Event Suppression Structure Format")

    @inlinable
    public mutating func enableNotifications() throws(VirtqueueError) -> Bool {
        if isBroken, let broken = _brokenError { throw broken }
        do {
            if eventIndex {
                let offWrap = nextAvail | (availWrap ? 0x8000 : 0)
                try memory.storeIndex(offWrap, at: deviceEventArea, ordering: .relaxed)
                try memory.storeIndex(PackedEventFlags.desc, at: deviceEventArea.wrappingAdding(2), ordering: .relaxed)
            } else {
                try memory.storeIndex(PackedEventFlags.enable, at: deviceEventArea.wrappingAdding(2), ordering: .relaxed)
            }
            memory.fullFence()
            let flags = try memory.loadIndex(at: descriptorAddress(nextAvail).wrappingAdding(14), ordering: .acquiring)
            let available = Self.isAvailable(flags, wrap: availWrap)
            if available && eventIndex {
                // The descriptor at `nextAvail` is already available (chains
                // were given back with rewindAvailable, or the driver raced
                // us): an event at that slot would never fire again, so ask
                // for every notification until the caller re-arms.
                try memory.storeIndex(PackedEventFlags.enable, at: deviceEventArea.wrappingAdding(2), ordering: .relaxed)
            }
            return available
        } catch {
            throw recordFault(.memory(error))
        }
    }

    @inlinable
    public var availablePosition: AvailablePosition {
        AvailablePosition(index: nextAvail, wrapCounter: availWrap, popCount: popCount)
    }

    @inlinable
    public mutating func rewindAvailable(to position: AvailablePosition) throws(VirtqueueError) {
        if isBroken, let broken = _brokenError { throw broken }
        let (popped, underflow) = popCount.subtractingReportingOverflow(position.popCount)
        guard !underflow, popped <= UInt64(inFlight), position.index < size else { throw .rewindPastUsed }
        nextAvail = position.index
        availWrap = position.wrapCounter
        inFlight &-= Int(popped)
        popCount = position.popCount
    }

    @inlinable
    public mutating func disableNotifications() throws(VirtqueueError) {
        if isBroken, let broken = _brokenError { throw broken }
        do {
            try memory.storeIndex(PackedEventFlags.disable, at: deviceEventArea.wrappingAdding(2), ordering: .relaxed)
        } catch {
            throw recordFault(.memory(error))
        }
    }
}

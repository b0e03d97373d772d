import Virtqueue

/// Writes raw ring contents directly, bypassing the driver role, to build
/// well-formed or deliberately malicious rings.
public struct RingForge {
    public let memory: any GuestMemory
    public let state: QueueState

    public init(memory: any GuestMemory, state: QueueState) {
        self.memory = memory
        self.state = state
    }

    // MARK: Split

    /// Writes split descriptor `index` (no bounds check on `index`: it is the caller's ring).
    public func setSplitDescriptor(_ index: UInt16, address: UInt64, length: UInt32, flags: UInt16 = 0, next: UInt16 = 0) throws {
        let base = state.descriptorArea.wrappingAdding(16 * UInt64(index))
        try writeDescriptor(at: base, address: address, length: length, word12: flags, word14: next)
    }

    /// Writes a 16-byte descriptor at an arbitrary address (indirect tables).
    public func writeDescriptor(at base: GuestAddress, address: UInt64, length: UInt32, word12: UInt16, word14: UInt16) throws {
        try memory.store(address, at: base)
        try memory.store(length, at: base.wrappingAdding(8))
        try memory.store(word12, at: base.wrappingAdding(12))
        try memory.store(word14, at: base.wrappingAdding(14))
    }

    /// Split: writes an indirect table entry (flags/next layout).
    public func setSplitIndirectEntry(table: GuestAddress, _ index: UInt16, address: UInt64, length: UInt32, flags: UInt16 = 0, next: UInt16 = 0) throws {
        try writeDescriptor(at: table.wrappingAdding(16 * UInt64(index)), address: address, length: length, word12: flags, word14: next)
    }

    /// Split: appends `heads` to the avail ring and stores `avail->idx`.
    public func makeSplitAvailable(_ heads: [UInt16], startingAt start: UInt16 = 0) throws {
        var index = start
        for head in heads {
            let slot = UInt64(index & (state.size &- 1))
            try memory.store(head, at: state.driverArea.wrappingAdding(4 + 2 * slot))
            index &+= 1
        }
        try setSplitAvailIndex(index)
    }

    public func setSplitAvailIndex(_ index: UInt16) throws {
        try memory.storeIndex(index, at: state.driverArea.wrappingAdding(2), ordering: .releasing)
    }

    /// Split: writes used element `slot` and optionally `used->idx` (device impersonation).
    public func setSplitUsed(slot: UInt16, id: UInt32, length: UInt32) throws {
        let base = state.deviceArea.wrappingAdding(4 + 8 * UInt64(slot & (state.size &- 1)))
        try memory.store(id, at: base)
        try memory.store(length, at: base.wrappingAdding(4))
    }

    public func setSplitUsedIndex(_ index: UInt16) throws {
        try memory.storeIndex(index, at: state.deviceArea.wrappingAdding(2), ordering: .releasing)
    }

    // MARK: Packed

    /// Flags making a packed descriptor available for wrap counter `wrap`.
    public static func packedAvailFlags(wrap: Bool = true) -> UInt16 {
        wrap ? DescriptorFlags.avail : DescriptorFlags.used
    }

    /// Flags marking a packed descriptor used for wrap counter `wrap`.
    public static func packedUsedFlags(wrap: Bool = true) -> UInt16 {
        wrap ? DescriptorFlags.avail | DescriptorFlags.used : 0
    }

    /// Writes packed descriptor `slot`; `flags` should include avail/used bits.
    public func setPackedDescriptor(_ slot: UInt16, address: UInt64, length: UInt32, id: UInt16, flags: UInt16) throws {
        let base = state.descriptorArea.wrappingAdding(16 * UInt64(slot))
        try writeDescriptor(at: base, address: address, length: length, word12: id, word14: flags)
    }

    /// Packed: writes an indirect table entry (id/flags layout).
    public func setPackedIndirectEntry(table: GuestAddress, _ index: UInt16, address: UInt64, length: UInt32, flags: UInt16 = 0) throws {
        try writeDescriptor(at: table.wrappingAdding(16 * UInt64(index)), address: address, length: length, word12: 0, word14: flags)
    }
}

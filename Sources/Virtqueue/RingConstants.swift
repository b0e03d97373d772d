/// Descriptor flags (§2.7.5 "The Virtqueue Descriptor Table", §2.8.? "Packed Virtqueue descriptor").
public enum DescriptorFlags {
    /// VIRTQ_DESC_F_NEXT: the buffer continues in the next descriptor.
    public static let next: UInt16 = 1
    /// VIRTQ_DESC_F_WRITE: the buffer is device-writable (otherwise device-readable).
    public static let write: UInt16 = 2
    /// VIRTQ_DESC_F_INDIRECT: the buffer contains a table of descriptors.
    public static let indirect: UInt16 = 4
    /// VIRTQ_DESC_F_AVAIL (packed, bit 7).
    public static let avail: UInt16 = 1 << 7
    /// VIRTQ_DESC_F_USED (packed, bit 15).
    public static let used: UInt16 = 1 << 15
}

/// Split ring notification suppression flags (§2.7.7, §2.7.10).
public enum SplitRingFlags {
    /// VIRTQ_AVAIL_F_NO_INTERRUPT: driver → device, "don't interrupt me".
    public static let noInterrupt: UInt16 = 1
    /// VIRTQ_USED_F_NO_NOTIFY: device → driver, "don't notify me".
    public static let noNotify: UInt16 = 1
}

/// Packed ring Event Suppression Structure flags (§2.8.10 "Event Suppression Structure Format").
public enum PackedEventFlags {
    /// RING_EVENT_FLAGS_ENABLE: events enabled.
    public static let enable: UInt16 = 0
    /// RING_EVENT_FLAGS_DISABLE: events disabled.
    public static let disable: UInt16 = 1
    /// RING_EVENT_FLAGS_DESC: event only at the descriptor given by off_wrap (needs EVENT_IDX).
    public static let desc: UInt16 = 2
}

/// `vring_need_event` (§2.7.10 "Used Buffer Notification Suppression" /
/// §2.7.7 / §2.7.13.? with VIRTIO_F_EVENT_IDX): whether moving an index from
/// `old` to `new` crossed `event`, i.e. `event` ∈ [old, new) in 16-bit
/// wrap-around arithmetic.
@inlinable
public func vringNeedEvent(eventIndex: UInt16, newIndex: UInt16, oldIndex: UInt16) -> Bool {
    (newIndex &- eventIndex &- 1) < (newIndex &- oldIndex)
}

/// A raw 16-byte descriptor as stored in guest memory, decoded from
/// little-endian. Split: addr, len, flags, next. Packed: addr, len, id, flags.
@frozen
@usableFromInline
internal struct RawDescriptor {
    @usableFromInline var address: UInt64
    @usableFromInline var length: UInt32
    /// Split: flags; packed: buffer id.
    @usableFromInline var word12: UInt16
    /// Split: next; packed: flags.
    @usableFromInline var word14: UInt16

    @inlinable
    init(loading address: GuestAddress, from memory: some GuestMemory) throws(GuestMemoryError) {
        let words = try memory.loadRaw((UInt64, UInt64).self, at: address)
        self.address = UInt64(littleEndian: words.0)
        let second = UInt64(littleEndian: words.1)
        self.length = UInt32(truncatingIfNeeded: second)
        self.word12 = UInt16(truncatingIfNeeded: second &>> 32)
        self.word14 = UInt16(truncatingIfNeeded: second &>> 48)
    }

    @inlinable
    init(address: UInt64, length: UInt32, word12: UInt16, word14: UInt16) {
        self.address = address
        self.length = length
        self.word12 = word12
        self.word14 = word14
    }

    /// Stores address, length and `word12`, leaving the word at offset 14
    /// (packed: the flags) as it is. A packed ring head must never show a
    /// transient flags value: 0 reads as "used" on a lap whose wrap counter is 0.
    @inlinable
    func storeLeavingLastWord(at address: GuestAddress, to memory: some GuestMemory) throws(GuestMemoryError) {
        try memory.store(self.address, at: address)
        try memory.store(length, at: address.wrappingAdding(8))
        try memory.store(word12, at: address.wrappingAdding(12))
    }

    @inlinable
    func store(at address: GuestAddress, to memory: some GuestMemory) throws(GuestMemoryError) {
        let second = UInt64(length) | UInt64(word12) &<< 32 | UInt64(word14) &<< 48
        try memory.storeRaw((self.address.littleEndian, second.littleEndian), at: address)
    }
}

import Synchronization

/// Guest memory whose every access reduces to one checked translation of a whole
/// range to a host pointer (``hostPointer(_:length:)``): regions mapped into this
/// process. The accessors are written once here, on top of that translation.
public protocol HostMappedGuestMemory: GuestMemory {
    /// Translates `[address, address+length)`, which must lie inside one region, to a
    /// host pointer: `address + length` without overflow, the whole range backed.
    /// The pointer must be used at once and not stored.
    func hostPointer(_ address: GuestAddress, length: UInt64) throws(GuestMemoryError) -> UnsafeMutableRawPointer
}

extension HostMappedGuestMemory {
    @inlinable
    public func loadRaw<T: BitwiseCopyable>(_ type: T.Type, at address: GuestAddress) throws(GuestMemoryError) -> T {
        let pointer = try hostPointer(address, length: UInt64(MemoryLayout<T>.size))
        // SAFETY: hostPointer checked that all MemoryLayout<T>.size bytes are
        // inside one region; loadUnaligned has no alignment requirement and T
        // is BitwiseCopyable, so any bit pattern is a valid value.
        return pointer.loadUnaligned(as: T.self)
    }

    @inlinable
    public func storeRaw<T: BitwiseCopyable>(_ value: T, at address: GuestAddress) throws(GuestMemoryError) {
        let pointer = try hostPointer(address, length: UInt64(MemoryLayout<T>.size))
        // SAFETY: the whole destination range was checked to lie in one region;
        // storeBytes(of:as:) does not require alignment (SE-0349).
        pointer.storeBytes(of: value, as: T.self)
    }

    @inlinable
    public func read(at address: GuestAddress, into destination: UnsafeMutableRawBufferPointer) throws(GuestMemoryError) {
        guard let base = destination.baseAddress, destination.count > 0 else { return }
        let pointer = try hostPointer(address, length: UInt64(destination.count))
        // SAFETY: source range checked to be inside one region; destination is
        // the caller's buffer of exactly `count` bytes. Guest memory never
        // overlaps the caller's host buffer in a way that matters for memcpy
        // semantics (copyMemory is memmove-safe anyway).
        base.copyMemory(from: pointer, byteCount: destination.count)
    }

    @inlinable
    public func write(at address: GuestAddress, from source: UnsafeRawBufferPointer) throws(GuestMemoryError) {
        guard let base = source.baseAddress, source.count > 0 else { return }
        let pointer = try hostPointer(address, length: UInt64(source.count))
        // SAFETY: destination range checked to be inside one region.
        pointer.copyMemory(from: base, byteCount: source.count)
    }

    @inlinable
    public func withBytes<Result>(
        at address: GuestAddress, length: UInt64, _ body: (UnsafeRawBufferPointer) -> Result
    ) throws(GuestMemoryError) -> Result {
        if length == 0 { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        let pointer = try hostPointer(address, length: length)
        // SAFETY: the whole range was checked to lie in one region (length <= region size <=
        // Int.max); the pointer is used only while `body` runs.
        return body(UnsafeRawBufferPointer(start: pointer, count: Int(truncatingIfNeeded: length)))
    }

    @inlinable
    public func loadIndex(at address: GuestAddress, ordering: IndexLoadOrdering) throws(GuestMemoryError) -> UInt16 {
        let pointer = try hostPointer(address, length: 2)
        guard UInt(bitPattern: pointer) & 1 == 0 else { throw .misaligned(address: address, alignment: 2) }
        // SAFETY: 2 bytes checked in bounds and 2-aligned; Atomic<UInt16> has
        // the size and alignment of UInt16, and the word is only ever accessed
        // atomically or by the other side of the shared ring.
        let atomic = pointer.assumingMemoryBound(to: Atomic<UInt16>.self)
        switch ordering {
        case .relaxed: return UInt16(littleEndian: atomic.pointee.load(ordering: .relaxed))
        case .acquiring: return UInt16(littleEndian: atomic.pointee.load(ordering: .acquiring))
        }
    }

    @inlinable
    public func storeIndex(_ value: UInt16, at address: GuestAddress, ordering: IndexStoreOrdering) throws(GuestMemoryError) {
        let pointer = try hostPointer(address, length: 2)
        guard UInt(bitPattern: pointer) & 1 == 0 else { throw .misaligned(address: address, alignment: 2) }
        // SAFETY: as in loadIndex.
        let atomic = pointer.assumingMemoryBound(to: Atomic<UInt16>.self)
        switch ordering {
        case .relaxed: atomic.pointee.store(value.littleEndian, ordering: .relaxed)
        case .releasing: atomic.pointee.store(value.littleEndian, ordering: .releasing)
        }
    }
}

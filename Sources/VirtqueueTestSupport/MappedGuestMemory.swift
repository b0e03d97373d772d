import Synchronization
import Virtqueue

/// Guest memory of exactly one region over one page-aligned host allocation:
/// the shape of a vhost-user memory table with a single entry, and what the
/// datapath benchmark uses for the rings and the packet buffers.
///
/// It makes every check ``GuestMemoryRegions`` makes, and reports the same
/// errors: `address + length` computed without overflow, the whole range inside
/// the region, index words naturally aligned. What it saves is the region
/// lookup (there is one region) and the class indirection of ``HeapGuestMemory``:
/// the base pointer and the bounds are stored in the value itself, so a queue
/// that holds it reaches guest memory with one compare per access.
///
/// A value is a view; the allocation belongs to a shared owner and lives as
/// long as any copy of the value.
public struct MappedGuestMemory: HostMappedGuestMemory, @unchecked Sendable {
    // SAFETY (type level): `host` points into `owner`'s allocation of `size`
    // bytes, which lives as long as `owner`, which every copy of this value
    // retains. Driver and device threads share the memory on purpose; the
    // index accessors below order what they publish.
    @usableFromInline let owner: Allocation
    @usableFromInline let host: UnsafeMutableRawPointer
    /// First guest-physical address of the region.
    public let guestBase: GuestAddress
    /// Bytes in the region.
    public let size: UInt64

    @usableFromInline
    final class Allocation: @unchecked Sendable {
        // SAFETY (@unchecked): immutable after init; deallocated only in deinit.
        let pointer: UnsafeMutableRawPointer
        init(byteCount: Int) {
            pointer = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 4096)
            // SAFETY: freshly allocated, `byteCount` bytes.
            pointer.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
        }
        deinit { pointer.deallocate() }
    }

    /// A zero-filled region of `size` bytes (rounded up to whole pages) at `base`.
    public init(size: Int, base: GuestAddress = GuestAddress(0)) throws(GuestMemoryLayoutError) {
        guard size > 0 else { throw .emptyRegion(index: 0) }
        let rounded = (UInt64(size) &+ 4095) & ~4095
        if base.rawValue.addingReportingOverflow(rounded).overflow { throw .regionEndOverflows(index: 0) }
        guard rounded <= UInt64(Int.max) else { throw .regionTooLarge(index: 0) }
        owner = Allocation(byteCount: Int(rounded))
        host = owner.pointer
        guestBase = base
        self.size = rounded
    }

    /// Translates `[address, address+length)` to a host pointer after checking
    /// that the whole range lies in the region. Use the result at once.
    @inlinable
    public func hostPointer(_ address: GuestAddress, length: UInt64) throws(GuestMemoryError) -> UnsafeMutableRawPointer {
        // Below the base the subtraction wraps to at least `size` (init checked
        // that base + size does not overflow), so one compare covers both ends.
        let offset = address.rawValue &- guestBase.rawValue
        if offset >= size || length > size &- offset {
            throw failure(address, length: length)
        }
        // SAFETY: offset + length <= size, and size <= Int.max (checked in init).
        return host.advanced(by: Int(truncatingIfNeeded: offset))
    }

    /// The error for a range that is not entirely inside the region.
    @usableFromInline
    func failure(_ address: GuestAddress, length: UInt64) -> GuestMemoryError {
        if address.rawValue.addingReportingOverflow(length).overflow {
            return .addressOverflow(address: address, length: length)
        }
        return .outOfBounds(address: address, length: length)
    }

    @inlinable
    public func contiguousBytes(at address: GuestAddress) throws(GuestMemoryError) -> UInt64 {
        let offset = address.rawValue &- guestBase.rawValue
        guard offset < size else { throw .outOfBounds(address: address, length: 1) }
        return size &- offset
    }

    @inlinable
    public func checkRange(_ address: GuestAddress, length: UInt64, requireContiguous: Bool) throws(GuestMemoryError) {
        if address.rawValue.addingReportingOverflow(length).overflow {
            throw .addressOverflow(address: address, length: length)
        }
        if length == 0 { return }
        _ = try hostPointer(address, length: length)
    }
}

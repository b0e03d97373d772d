/// Why a guest-memory access was refused. Every access checks its whole
/// range before touching memory; nothing is read or written when one of
/// these is thrown.
public enum GuestMemoryError: Error, Hashable, Sendable {
    /// `address + length` does not fit in 64 bits (CVE-2018-1059 class).
    case addressOverflow(address: GuestAddress, length: UInt64)
    /// Some byte of the range is not backed by any region.
    case outOfBounds(address: GuestAddress, length: UInt64)
    /// The range is backed, but by two or more regions, and the operation
    /// needs one contiguous host mapping (ring structures, index words).
    case crossesRegionBoundary(address: GuestAddress, length: UInt64)
    /// An index or flags word used with atomic ordering is not naturally aligned.
    case misaligned(address: GuestAddress, alignment: UInt64)
    /// The range cannot be expressed as a host buffer size (`Int`).
    case lengthTooLarge(length: UInt64)
}

/// Why a list of memory regions was refused by ``GuestMemoryRegions/init(_:)``.
public enum GuestMemoryLayoutError: Error, Hashable, Sendable {
    case emptyRegion(index: Int)
    case regionEndOverflows(index: Int)
    case overlappingRegions(first: Int, second: Int)
    case regionTooLarge(index: Int)
}

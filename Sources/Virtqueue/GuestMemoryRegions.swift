import Synchronization

/// One guest-physical range mapped at a host address supplied by the caller
/// (for example a vhost-user/vhost-vdpa memory table entry). The caller owns
/// the mapping and must keep it alive and mapped while any
/// ``GuestMemoryRegions`` value that contains it is used.
public struct GuestMemoryRegion: @unchecked Sendable, Hashable {
    public var guestAddress: GuestAddress
    public var size: UInt64
    public var hostAddress: UnsafeMutableRawPointer

    public init(guestAddress: GuestAddress, size: UInt64, hostAddress: UnsafeMutableRawPointer) {
        self.guestAddress = guestAddress
        self.size = size
        self.hostAddress = hostAddress
    }
}

/// ``GuestMemory`` over a sorted list of non-overlapping regions.
///
/// Bounds rules (checked on every access, for the whole range):
/// - `address + length` is computed with overflow detection
///   (``GuestMemoryError/addressOverflow(address:length:)``);
/// - every byte must be inside a region
///   (``GuestMemoryError/outOfBounds(address:length:)``);
/// - an access through a host pointer must lie inside *one* region; a range
///   that is backed by two adjacent regions is reported as
///   ``GuestMemoryError/crossesRegionBoundary(address:length:)``. Descriptor
///   buffers that straddle adjacent regions are handled explicitly by the
///   queues: they are split into one segment per region.
///
/// No host pointer is kept between accesses: each access translates, checks
/// and uses the pointer immediately.
public struct GuestMemoryRegions: HostMappedGuestMemory, @unchecked Sendable {
    // SAFETY (type level): the host pointers are owned by the caller, who
    // guarantees they stay mapped for the lifetime of this value. Concurrent
    // access from driver and device threads is the whole point of shared
    // rings; publication is ordered by the atomic index accessors below.
    @usableFromInline
    internal let regions: ContiguousArray<GuestMemoryRegion>

    /// Validates and sorts `regions`. Throws when a region is empty, its end
    /// overflows 64 bits, it is larger than `Int.max`, or two regions overlap.
    public init(_ regions: [GuestMemoryRegion]) throws(GuestMemoryLayoutError) {
        for (index, region) in regions.enumerated() {
            if region.size == 0 { throw .emptyRegion(index: index) }
            if region.guestAddress.rawValue.addingReportingOverflow(region.size).overflow {
                throw .regionEndOverflows(index: index)
            }
            if region.size > UInt64(Int.max) { throw .regionTooLarge(index: index) }
            if UInt(bitPattern: region.hostAddress).addingReportingOverflow(UInt(region.size)).overflow {
                throw .regionTooLarge(index: index)
            }
        }
        let sorted = regions.enumerated().sorted { $0.element.guestAddress < $1.element.guestAddress }
        for pair in zip(sorted, sorted.dropFirst()) {
            // End cannot overflow: checked above.
            if pair.0.element.guestAddress.rawValue + pair.0.element.size > pair.1.element.guestAddress.rawValue {
                throw .overlappingRegions(first: pair.0.offset, second: pair.1.offset)
            }
        }
        self.regions = ContiguousArray(sorted.map(\.element))
    }

    /// The validated regions, sorted by guest address.
    public var allRegions: [GuestMemoryRegion] { Array(regions) }

    /// Index of the region containing `address`, if any.
    @inlinable
    internal func regionIndex(containing address: UInt64) -> Int? {
        let count = regions.count
        if count <= 8 {
            var index = 0
            while index < count {
                let region = regions[index]
                // address - start cannot underflow once address >= start.
                if address >= region.guestAddress.rawValue && address - region.guestAddress.rawValue < region.size {
                    return index
                }
                index &+= 1
            }
            return nil
        }
        var low = 0
        var high = count
        while low < high {
            let middle = low &+ (high &- low) / 2
            let region = regions[middle]
            if address < region.guestAddress.rawValue {
                high = middle
            } else if address - region.guestAddress.rawValue >= region.size {
                low = middle &+ 1
            } else {
                return middle
            }
        }
        return nil
    }

    /// Classifies a range that starts in region `index` but does not end in it.
    @usableFromInline
    internal func failureForRangeLeaving(
        region index: Int, address: GuestAddress, length: UInt64, end: UInt64
    ) -> GuestMemoryError {
        var current = index
        var coveredUpTo = regions[current].guestAddress.rawValue &+ regions[current].size
        while coveredUpTo < end {
            let next = current &+ 1
            guard next < regions.count, regions[next].guestAddress.rawValue == coveredUpTo else {
                return .outOfBounds(address: address, length: length)
            }
            current = next
            coveredUpTo = regions[current].guestAddress.rawValue &+ regions[current].size
        }
        return .crossesRegionBoundary(address: address, length: length)
    }

    /// Translates a whole range that must lie inside one region to a host pointer.
    /// The returned pointer must be used immediately and not stored.
    @inlinable
    public func hostPointer(_ address: GuestAddress, length: UInt64) throws(GuestMemoryError) -> UnsafeMutableRawPointer {
        let start = address.rawValue
        let (end, overflow) = start.addingReportingOverflow(length)
        if overflow { throw .addressOverflow(address: address, length: length) }
        guard let index = regionIndex(containing: start) else {
            throw .outOfBounds(address: address, length: length)
        }
        let region = regions[index]
        let offset = start &- region.guestAddress.rawValue  // start >= region start
        if length > region.size &- offset {  // offset < size
            throw failureForRangeLeaving(region: index, address: address, length: length, end: end)
        }
        // SAFETY: offset < region.size <= Int.max (validated in init), and
        // offset + length <= region.size, so [result, result+length) lies inside
        // the caller-supplied mapping of this region.
        return region.hostAddress.advanced(by: Int(truncatingIfNeeded: offset))
    }

    @inlinable
    public func contiguousBytes(at address: GuestAddress) throws(GuestMemoryError) -> UInt64 {
        guard let index = regionIndex(containing: address.rawValue) else {
            throw .outOfBounds(address: address, length: 1)
        }
        let region = regions[index]
        return region.size &- (address.rawValue &- region.guestAddress.rawValue)
    }

    @inlinable
    public func checkRange(_ address: GuestAddress, length: UInt64, requireContiguous: Bool) throws(GuestMemoryError) {
        let start = address.rawValue
        let (end, overflow) = start.addingReportingOverflow(length)
        if overflow { throw .addressOverflow(address: address, length: length) }
        if length == 0 { return }
        guard let index = regionIndex(containing: start) else {
            throw .outOfBounds(address: address, length: length)
        }
        let region = regions[index]
        let offset = start &- region.guestAddress.rawValue
        if length <= region.size &- offset { return }
        let failure = failureForRangeLeaving(region: index, address: address, length: length, end: end)
        if case .crossesRegionBoundary = failure, !requireContiguous { return }
        throw failure
    }
}

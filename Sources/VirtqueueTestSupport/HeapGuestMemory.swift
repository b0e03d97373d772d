import Virtqueue

/// Heap-backed guest memory for tests, benchmarks and the fuzzer: owns its
/// allocations (zero-filled) and exposes them as ``GuestMemoryRegions``.
public final class HeapGuestMemory: HostMappedGuestMemory, @unchecked Sendable {
    // SAFETY (type level): the allocations live exactly as long as this
    // object; `regions` points into them and is only used through `self`.
    public let regions: GuestMemoryRegions
    private let allocations: [UnsafeMutableRawPointer]
    /// What keeps borrowed memory mapped (``init(borrowing:size:base:owner:)``).
    private let owner: AnyObject?

    /// One region per `(guestAddress, size)`; regions may be adjacent or have gaps.
    public init(regions layout: [(guestAddress: GuestAddress, size: Int)]) throws {
        var allocations: [UnsafeMutableRawPointer] = []
        var regions: [GuestMemoryRegion] = []
        for (address, size) in layout {
            let pointer = UnsafeMutableRawPointer.allocate(byteCount: max(size, 1), alignment: 4096)
            // SAFETY: freshly allocated, `size` bytes.
            pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(size, 1))
            allocations.append(pointer)
            regions.append(GuestMemoryRegion(guestAddress: address, size: UInt64(size), hostAddress: pointer))
        }
        self.allocations = allocations
        owner = nil
        do {
            self.regions = try GuestMemoryRegions(regions)
        } catch {
            // SAFETY: nothing else references the allocations yet.
            for pointer in allocations { pointer.deallocate() }
            throw error
        }
    }

    /// A single region of `size` bytes at `base`.
    public convenience init(size: Int, base: GuestAddress = GuestAddress(0)) throws {
        try self.init(regions: [(base, size)])
    }

    /// Guest memory over bytes someone else owns, e.g. a memfd mapping shared with a
    /// vhost device; `owner` is kept alive as long as this memory.
    public init(borrowing pointer: UnsafeMutableRawPointer, size: Int, base: GuestAddress = GuestAddress(0), owner: AnyObject) throws {
        allocations = []
        self.owner = owner
        regions = try GuestMemoryRegions([GuestMemoryRegion(guestAddress: base, size: UInt64(size), hostAddress: pointer)])
    }

    deinit {
        // SAFETY: allocated in init, owned by this object only.
        for pointer in allocations { pointer.deallocate() }
    }

    @inlinable public func contiguousBytes(at address: GuestAddress) throws(GuestMemoryError) -> UInt64 {
        try regions.contiguousBytes(at: address)
    }
    @inlinable public func checkRange(_ address: GuestAddress, length: UInt64, requireContiguous: Bool) throws(GuestMemoryError) {
        try regions.checkRange(address, length: length, requireContiguous: requireContiguous)
    }
    @inlinable public func hostPointer(_ address: GuestAddress, length: UInt64) throws(GuestMemoryError) -> UnsafeMutableRawPointer {
        try regions.hostPointer(address, length: length)
    }
}

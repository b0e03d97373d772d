/// One guest buffer fragment: a guest-physical range that was checked to be
/// backed by guest memory and to lie within a single memory region.
@frozen
public struct BufferSegment: Hashable, Sendable {
    public var address: GuestAddress
    public var length: UInt32

    @inlinable
    public init(address: GuestAddress, length: UInt32) {
        self.address = address
        self.length = length
    }
}

/// A descriptor chain popped by the device role (§2.7.4 / §2.8 "Buffers").
///
/// Reusable: pass the same value to `popAvailable(into:)` again and its
/// segment storage is reused, so the hot path does not allocate once the
/// storage has grown to the largest chain seen.
///
/// Device-readable segments come first, then device-writable ones
/// (§2.7.4.2: "the driver MUST place any device-writable descriptor elements
/// after any device-readable descriptor elements"). Every segment was checked
/// against guest memory when the chain was popped; a segment never spans two
/// memory regions (a buffer that does is split into one segment per region).
public struct DescriptorChain: Sendable {
    @usableFromInline var _head: UInt16 = 0
    @usableFromInline var _descriptorCount: UInt16 = 0
    @usableFromInline var _segments: [BufferSegment]
    @usableFromInline var _readableSegmentCount: Int = 0
    @usableFromInline var _readableLength: UInt64 = 0
    @usableFromInline var _writableLength: UInt64 = 0
    @usableFromInline var _sawWritable = false

    /// An empty chain whose segment storage has room for `capacity` segments.
    public init(capacity: Int = 16) {
        _segments = []
        _segments.reserveCapacity(max(capacity, 1))
    }

    /// Split: head descriptor index. Packed: Buffer ID. This is the `id` to
    /// report in the used element.
    @inlinable public var head: UInt16 { _head }
    /// Ring descriptors consumed (packed: slots to skip when this buffer is used).
    /// An indirect table counts as the one ring descriptor that points to it.
    @inlinable public var descriptorCount: UInt16 { _descriptorCount }
    /// All segments, readable first.
    @inlinable public var segments: [BufferSegment] { _segments }
    @inlinable public var readableSegments: ArraySlice<BufferSegment> { _segments[..<_readableSegmentCount] }
    @inlinable public var writableSegments: ArraySlice<BufferSegment> { _segments[_readableSegmentCount...] }
    /// Total bytes the device may read.
    @inlinable public var readableLength: UInt64 { _readableLength }
    /// Total bytes the device may write.
    @inlinable public var writableLength: UInt64 { _writableLength }

    /// The used element for this chain with `writtenLength` bytes written.
    @inlinable
    public func usedElement(writtenLength: UInt32) -> UsedElement {
        UsedElement(id: _head, length: writtenLength, descriptorCount: _descriptorCount)
    }

    @inlinable
    mutating func reset() {
        _head = 0
        _descriptorCount = 0
        _segments.removeAll(keepingCapacity: true)
        _readableSegmentCount = 0
        _readableLength = 0
        _writableLength = 0
        _sawWritable = false
    }

    /// Appends one descriptor's buffer after checking it against memory.
    /// Zero-length buffers are checked for nothing and produce no segment.
    @inlinable
    mutating func appendBuffer(
        address: UInt64, length: UInt32, writable: Bool, head: UInt16, memory: some GuestMemory
    ) throws(VirtqueueError) {
        if writable {
            _sawWritable = true
            _writableLength &+= UInt64(length)
        } else {
            if _sawWritable { throw .readableAfterWritable(head: head) }
            _readableLength &+= UInt64(length)
        }
        if length == 0 { return }
        let guestAddress = GuestAddress(rawValue: address)
        let extent: UInt64
        do {
            extent = try memory.contiguousBytes(at: guestAddress)
        } catch {
            throw Self.bufferError(error, head: head, address: guestAddress, length: length)
        }
        if UInt64(length) <= extent {
            // Fast path: one region holds the whole buffer (its end cannot overflow).
            _segments.append(BufferSegment(address: guestAddress, length: length))
            if !writable { _readableSegmentCount &+= 1 }
            return
        }
        try appendStraddlingBuffer(address: guestAddress, length: length, writable: writable, head: head, memory: memory)
    }

    /// Slow path: the buffer leaves its first region. It is accepted only when
    /// the following regions are adjacent and cover it; one segment per region.
    @inlinable
    mutating func appendStraddlingBuffer(
        address: GuestAddress, length: UInt32, writable: Bool, head: UInt16, memory: some GuestMemory
    ) throws(VirtqueueError) {
        do {
            try memory.checkRange(address, length: UInt64(length), requireContiguous: false)
        } catch {
            throw Self.bufferError(error, head: head, address: address, length: length)
        }
        var current = address
        var remaining = UInt64(length)
        while remaining > 0 {
            let extent: UInt64
            do {
                extent = try memory.contiguousBytes(at: current)
            } catch {
                throw Self.bufferError(error, head: head, address: address, length: length)
            }
            if extent == 0 { throw .bufferOutOfMemory(head: head, address: address, length: length) }
            let piece = min(extent, remaining)
            _segments.append(BufferSegment(address: current, length: UInt32(truncatingIfNeeded: piece)))
            if !writable { _readableSegmentCount &+= 1 }
            remaining &-= piece
            current = current.wrappingAdding(piece)
        }
    }

    @inlinable
    static func bufferError(_ error: GuestMemoryError, head: UInt16, address: GuestAddress, length: UInt32) -> VirtqueueError {
        if case .addressOverflow = error {
            return .bufferAddressOverflow(head: head, address: address, length: length)
        }
        return .bufferOutOfMemory(head: head, address: address, length: length)
    }
}

/// A used element as the device reports it (§2.7.8 "The Virtqueue Used Ring",
/// §2.8.? "Used descriptor").
@frozen
public struct UsedElement: Hashable, Sendable {
    /// Split: head descriptor index; packed: Buffer ID.
    public var id: UInt16
    /// Bytes written into the device-writable part of the buffer.
    public var length: UInt32
    /// Packed: ring descriptors the buffer occupied (``DescriptorChain/descriptorCount``).
    /// Ignored by the split layout.
    public var descriptorCount: UInt16

    @inlinable
    public init(id: UInt16, length: UInt32, descriptorCount: UInt16 = 1) {
        self.id = id
        self.length = length
        self.descriptorCount = descriptorCount
    }
}

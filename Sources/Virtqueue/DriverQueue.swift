/// A buffer returned by the device, as the driver role sees it.
public struct UsedBuffer: Hashable, Sendable {
    /// Split: head descriptor index; packed: Buffer ID — the value `addBuffer` returned.
    public var id: UInt16
    /// Bytes the device reports written. For earlier buffers of a collapsed
    /// in-order batch (§2.7.9 / §2.8.?) the device does not report a length;
    /// the buffer's whole writable capacity is returned (as Linux does).
    public var length: UInt32

    public init(id: UInt16, length: UInt32) {
        self.id = id
        self.length = length
    }
}

/// Guest memory the driver role may use for indirect descriptor tables:
/// `tableCount` tables of `entriesPerTable` descriptors each, contiguous
/// from `base`.
public struct IndirectTableArena: Hashable, Sendable, Codable {
    public var base: GuestAddress
    public var entriesPerTable: UInt16

    public init(base: GuestAddress, entriesPerTable: UInt16) {
        self.base = base
        self.entriesPerTable = entriesPerTable
    }

    /// Bytes needed for a queue of `size` (one table per possible buffer id).
    public static func byteCount(size: UInt16, entriesPerTable: UInt16) -> UInt64 {
        UInt64(size) * UInt64(entriesPerTable) * 16
    }

    @inlinable
    func table(for id: UInt16) -> GuestAddress {
        base.wrappingAdding(UInt64(id) &* UInt64(entriesPerTable) &* 16)
    }
}

/// The driver role of a virtqueue, independent of layout. Used by tests,
/// benchmarks and the test VM; it treats what the device writes as
/// untrusted too (unknown used ids, impossible lengths and indices are errors).
public protocol VirtqueueDriver<Memory> {
    associatedtype Memory: GuestMemory

    /// Number of buffers made available and not yet returned.
    var inFlightCount: Int { get }
    /// The fault that broke the queue, if any.
    var brokenError: VirtqueueError? { get }

    /// Makes a buffer available (not yet visible to the device: see
    /// ``publishAvailable()``). Returns its id. With `indirect`, the segments
    /// go into an indirect table (needs VIRTIO_F_INDIRECT_DESC and an arena).
    mutating func addBuffer(readable: [BufferSegment], writable: [BufferSegment], indirect: Bool) throws(VirtqueueError) -> UInt16
    /// Publishes every added buffer with one release store; returns whether
    /// the device wants an available buffer notification ("kick").
    mutating func publishAvailable() throws(VirtqueueError) -> Bool
    /// Returns the next used buffer, or nil.
    mutating func popUsed() throws(VirtqueueError) -> UsedBuffer?
    /// Asks for used buffer notifications; true when used buffers are already pending.
    mutating func enableInterrupts() throws(VirtqueueError) -> Bool
    /// Asks the device not to send used buffer notifications (best effort).
    mutating func disableInterrupts() throws(VirtqueueError)
}

/// Driver-side bookkeeping for one in-flight buffer.
@usableFromInline
struct DriverBufferState: Sendable {
    @usableFromInline var active = false
    @usableFromInline var descriptorCount: UInt16 = 0
    @usableFromInline var writableCapacity: UInt64 = 0
    /// Split only: last descriptor index of the (direct) chain, for freeing.
    @usableFromInline var lastDescriptor: UInt16 = 0
    @usableFromInline init() {}
}

/// A fixed-capacity FIFO of buffer ids (in-order bookkeeping).
@usableFromInline
struct IdFIFO: Sendable {
    @usableFromInline var storage: [UInt16]
    @usableFromInline var start = 0
    @usableFromInline var count = 0

    init(capacity: Int) { storage = [UInt16](repeating: 0, count: max(capacity, 1)) }

    @usableFromInline var first: UInt16? { count == 0 ? nil : storage[start] }

    @usableFromInline mutating func append(_ id: UInt16) {
        guard count < storage.count else { return }
        var index = start &+ count
        if index >= storage.count { index &-= storage.count }
        storage[index] = id
        count &+= 1
    }

    @usableFromInline mutating func removeFirst() {
        guard count > 0 else { return }
        start &+= 1
        if start == storage.count { start = 0 }
        count &-= 1
    }
}

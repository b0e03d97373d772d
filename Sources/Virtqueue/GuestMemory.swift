import Synchronization

/// Ordering of a 16-bit ring index or flags load.
///
/// Virtio 1.x "Memory Ordering" (§2.7.? / §2.8.21 and the "Virtqueue
/// Notifications" text): the reader of an index/flags word that publishes
/// other data must load it with acquire semantics before reading that data.
public enum IndexLoadOrdering: Sendable {
    case relaxed
    case acquiring
}

/// Ordering of a 16-bit ring index or flags store.
///
/// The writer of a published index/flags word must store it with release
/// semantics after writing the data it publishes (descriptors, used elements).
public enum IndexStoreOrdering: Sendable {
    case relaxed
    case releasing
}

/// Guest-physical-address–addressed memory, as seen by the device or the driver.
///
/// Every requirement checks the *whole* byte range `[address, address+length)`
/// before accessing it, computes `address + length` without overflow and
/// refuses ranges not backed by memory. Integers are little-endian on the
/// wire (virtio 1.x "Basic Facilities of a Virtio Device": all fields are
/// little-endian for non-legacy devices).
///
/// Conforming types are used generically by the queue types, so the
/// requirements get specialised and inlined in the hot path.
public protocol GuestMemory: Sendable {
    /// Number of bytes from `address` to the end of the region that contains it.
    /// Throws ``GuestMemoryError/outOfBounds(address:length:)`` when `address`
    /// is not backed at all.
    func contiguousBytes(at address: GuestAddress) throws(GuestMemoryError) -> UInt64

    /// Checks that `[address, address+length)` is backed by memory. When
    /// `requireContiguous` is true the whole range must lie in a single region.
    func checkRange(_ address: GuestAddress, length: UInt64, requireContiguous: Bool) throws(GuestMemoryError)

    /// Reads `T`'s bytes verbatim (host byte order, no alignment needed).
    func loadRaw<T: BitwiseCopyable>(_ type: T.Type, at address: GuestAddress) throws(GuestMemoryError) -> T

    /// Writes `value`'s bytes verbatim (host byte order, no alignment needed).
    func storeRaw<T: BitwiseCopyable>(_ value: T, at address: GuestAddress) throws(GuestMemoryError)

    /// Copies `destination.count` bytes starting at `address` into `destination`.
    func read(at address: GuestAddress, into destination: UnsafeMutableRawBufferPointer) throws(GuestMemoryError)

    /// Copies `source` to guest memory starting at `address`.
    func write(at address: GuestAddress, from source: UnsafeRawBufferPointer) throws(GuestMemoryError)

    /// Calls `body` with the bytes of `[address, address+length)`, which must lie inside one
    /// region, where they are: for a consumer that reads a guest buffer once (a `write(2)` into
    /// a TAP) instead of a copy of it. The guest can change the bytes while `body` runs: read
    /// from them only what needs no validation (a frame's payload, not its header).
    func withBytes<Result>(
        at address: GuestAddress, length: UInt64, _ body: (UnsafeRawBufferPointer) -> Result
    ) throws(GuestMemoryError) -> Result

    /// Atomically loads a naturally aligned little-endian 16-bit ring index / flags word.
    func loadIndex(at address: GuestAddress, ordering: IndexLoadOrdering) throws(GuestMemoryError) -> UInt16

    /// Atomically stores a naturally aligned little-endian 16-bit ring index / flags word.
    func storeIndex(_ value: UInt16, at address: GuestAddress, ordering: IndexStoreOrdering) throws(GuestMemoryError)

    /// A full (sequentially consistent) fence, needed between "store my index"
    /// and "load the other side's event index / suppression flags"
    /// (virtio 1.x "Virtqueue Notification Suppression", "Driver Notifications").
    func fullFence()
}

extension GuestMemory {
    @inlinable
    public func fullFence() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }

    /// Loads a little-endian integer.
    @inlinable
    public func load<T: FixedWidthInteger & BitwiseCopyable>(
        _ type: T.Type, at address: GuestAddress
    ) throws(GuestMemoryError) -> T {
        T(littleEndian: try loadRaw(T.self, at: address))
    }

    /// Stores a little-endian integer.
    @inlinable
    public func store<T: FixedWidthInteger & BitwiseCopyable>(
        _ value: T, at address: GuestAddress
    ) throws(GuestMemoryError) {
        try storeRaw(value.littleEndian, at: address)
    }

    /// A copy of the bytes, for memory that cannot lend them in place.
    public func withBytes<Result>(
        at address: GuestAddress, length: UInt64, _ body: (UnsafeRawBufferPointer) -> Result
    ) throws(GuestMemoryError) -> Result {
        try checkRange(address, length: length, requireContiguous: true)
        let bytes = try readBytes(at: address, count: Int(length))
        return bytes.withUnsafeBytes(body)
    }

    /// Reads `count` bytes into a new array (convenience for tests and control paths).
    public func readBytes(at address: GuestAddress, count: Int) throws(GuestMemoryError) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: max(count, 0))
        var failure: GuestMemoryError?
        result.withUnsafeMutableBytes { buffer in
            do throws(GuestMemoryError) { try read(at: address, into: buffer) } catch { failure = error }
        }
        if let failure { throw failure }
        return result
    }

    /// Writes `bytes` (convenience for tests and control paths).
    public func writeBytes(_ bytes: some Collection<UInt8>, at address: GuestAddress) throws(GuestMemoryError) {
        let array = Array(bytes)
        var failure: GuestMemoryError?
        array.withUnsafeBytes { buffer in
            do throws(GuestMemoryError) { try write(at: address, from: buffer) } catch { failure = error }
        }
        if let failure { throw failure }
    }
}

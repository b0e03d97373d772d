/// A host buffer for one packet (virtio-net header + frame), allocated once
/// per queue so the datapath does not allocate per packet.
public final class PacketBuffer: @unchecked Sendable {
    // SAFETY (type level): the allocation lives exactly as long as this
    // object and is used by the one queue (one thread at a time) that owns it.
    public let bytes: UnsafeMutableRawBufferPointer

    /// Room for the 12-byte header and ``VirtioNetHeader/maximumFrameLength``.
    public static let defaultCapacity = VirtioNetHeader.size + VirtioNetHeader.maximumFrameLength

    public init(capacity: Int = PacketBuffer.defaultCapacity) {
        bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(capacity, VirtioNetHeader.size + 1), alignment: 64)
        // SAFETY: freshly allocated, `bytes.count` bytes.
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        // SAFETY: allocated in init, owned only by this object.
        bytes.deallocate()
    }

    /// The bytes after the header.
    public var frameArea: UnsafeMutableRawBufferPointer {
        // SAFETY: capacity is at least header size + 1 (init), so the slice is in bounds.
        UnsafeMutableRawBufferPointer(rebasing: bytes[VirtioNetHeader.size...])
    }

    /// The first `count` bytes (clamped to the capacity).
    public func prefix(_ count: Int) -> UnsafeRawBufferPointer {
        // SAFETY: clamped to `0...bytes.count`.
        UnsafeRawBufferPointer(rebasing: bytes[..<min(max(count, 0), bytes.count)])
    }
}

import CVhostUAPI
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A TAP network interface opened through `/dev/net/tun` with
/// `IFF_TAP | IFF_NO_PI | IFF_VNET_HDR` (and `IFF_MULTI_QUEUE` when asked),
/// its virtio-net header size set to 12 (`TUNSETVNETHDRSZ`): every read and
/// write is one packet as `virtio_net_hdr_v1` + Ethernet frame.
///
/// The descriptor is non-blocking; it stays valid when the interface is moved
/// to another network namespace. Closing it (deinit) deletes a non-persistent
/// interface once no queue is attached.
public final class TapDevice: Sendable {
    public let fileDescriptor: Int32
    /// The interface name the kernel chose or confirmed.
    public let name: String

    /// TUNSETOFFLOAD flags (`TUN_F_*`): which offloaded packets this side
    /// accepts from the kernel (the guest's receive offloads).
    public struct Offloads: OptionSet, Hashable, Sendable {
        public var rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let checksum = Offloads(rawValue: CVhost_TUN_F_CSUM)
        public static let tso4 = Offloads(rawValue: CVhost_TUN_F_TSO4)
        public static let tso6 = Offloads(rawValue: CVhost_TUN_F_TSO6)
        public static let tsoECN = Offloads(rawValue: CVhost_TUN_F_TSO_ECN)
        public static let ufo = Offloads(rawValue: CVhost_TUN_F_UFO)
        public static let uso4 = Offloads(rawValue: CVhost_TUN_F_USO4)
        public static let uso6 = Offloads(rawValue: CVhost_TUN_F_USO6)
    }

    /// Bytes of `virtio_net_hdr_v1`.
    public static let virtioHeaderSize: Int32 = 12

    /// Creates (or attaches a queue to) TAP interface `name` ("" lets the kernel pick `tapN`).
    public init(name: String, multiQueue: Bool = false, devicePath: String = "/dev/net/tun") throws {
        let fd = try system_open(devicePath, O_RDWR | O_NONBLOCK)
        do {
            let size = Int(CVhost_sizeof_ifreq)
            let request = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 8)
            defer { request.deallocate() }
            request.initializeMemory(as: UInt8.self, repeating: 0)
            let nameBytes = Array(name.utf8)
            guard nameBytes.count < Int(CVhost_IFNAMSIZ), !nameBytes.contains(0) else {
                throw SystemError(errno: ErrnoCode.invalidArgument, operation: "TUNSETIFF", path: name)
            }
            // SAFETY: the name is shorter than IFNAMSIZ (checked), ifr_name is at offset 0.
            request.copyBytes(from: nameBytes)
            var flags = CVhost_IFF_TAP | CVhost_IFF_NO_PI | CVhost_IFF_VNET_HDR
            if multiQueue { flags |= CVhost_IFF_MULTI_QUEUE }
            // SAFETY: ifr_flags is a short at CVhost_offsetof_ifreq_flags inside the ifreq buffer.
            request.storeBytes(of: flags, toByteOffset: Int(CVhost_offsetof_ifreq_flags), as: Int16.self)
            try system_ioctlPointer(fd, CVhost_TUNSETIFF, request.baseAddress, operation: "ioctl", path: devicePath)
            let chosen = request.prefix(Int(CVhost_IFNAMSIZ)).prefix { $0 != 0 }
            self.name = String(decoding: chosen, as: UTF8.self)
            var headerSize = Self.virtioHeaderSize
            try withUnsafeMutableBytes(of: &headerSize) { size in
                try system_ioctlPointer(fd, CVhost_TUNSETVNETHDRSZ, size.baseAddress, operation: "ioctl", path: devicePath)
            }
        } catch {
            system_close(fd)
            throw error
        }
        fileDescriptor = fd
    }

    deinit { system_close(fileDescriptor) }

    /// `TUNSETOFFLOAD`: the offloads the kernel may hand us in received packets.
    public func setOffloads(_ offloads: Offloads) throws {
        try system_ioctlValue(fileDescriptor, CVhost_TUNSETOFFLOAD, UInt(offloads.rawValue), path: name)
    }

    /// `TUNSETQUEUE` with `IFF_ATTACH_QUEUE` / `IFF_DETACH_QUEUE` (multi-queue TAP only): a
    /// detached queue gets no packets from the kernel (they are steered to the attached ones),
    /// as QEMU's tap does for the queue pairs a guest has not enabled.
    public func setQueueAttached(_ attached: Bool) throws {
        let size = Int(CVhost_sizeof_ifreq)
        let request = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 8)
        defer { request.deallocate() }
        request.initializeMemory(as: UInt8.self, repeating: 0)
        // SAFETY: ifr_flags is a short at CVhost_offsetof_ifreq_flags inside the ifreq buffer.
        request.storeBytes(of: attached ? CVhost_IFF_ATTACH_QUEUE : CVhost_IFF_DETACH_QUEUE,
                           toByteOffset: Int(CVhost_offsetof_ifreq_flags), as: Int16.self)
        try system_ioctlPointer(fileDescriptor, CVhost_TUNSETQUEUE, request.baseAddress, operation: "TUNSETQUEUE", path: name)
    }

    /// Reads one packet: the 12-byte virtio-net header into `header`, the
    /// frame into `frame`. Returns the frame length, or nil when none is waiting.
    public func read(header: UnsafeMutableRawBufferPointer, frame: UnsafeMutableRawBufferPointer) throws -> Int? {
        guard let count = try system_readv2(fileDescriptor, header, frame) else { return nil }
        return max(count - header.count, 0)
    }

    /// Writes one packet (header + frame). Returns false when the kernel
    /// queue is full (try again when writable).
    public func write(header: UnsafeRawBufferPointer, frame: UnsafeRawBufferPointer) throws -> Bool {
        try system_writev2(fileDescriptor, header, frame) != nil
    }
}

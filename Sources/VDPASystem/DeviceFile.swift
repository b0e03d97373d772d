#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An open character device (`/dev/vhost-vdpa-N`), closed on `deinit` or `close()`.
/// The ioctl and write calls are the raw ones; typed wrappers live with each uapi.
public final class DeviceFile: @unchecked Sendable {
    // SAFETY (@unchecked): the descriptor is only closed once (close/deinit); the kernel
    // serialises concurrent ioctls on one file itself.
    public private(set) var descriptor: Int32
    public let path: String

    /// Opens `path` read-write (O_CLOEXEC).
    public init(path: String) throws {
        self.path = path
        descriptor = try system_open(path, O_RDWR)
    }

    deinit { if descriptor >= 0 { system_close(descriptor) } }

    public func close() {
        if descriptor >= 0 { system_close(descriptor); descriptor = -1 }
    }

    /// ioctl with a pointer to `value` (in, out or both), named `operation` in errors.
    public func control<T>(_ request: UInt, _ value: inout T, operation: StaticString) throws {
        try withUnsafeMutableBytes(of: &value) { raw in
            try system_ioctlPointer(descriptor, request, raw.baseAddress, operation: operation, path: path)
        }
    }

    /// ioctl without an argument.
    public func control(_ request: UInt, operation: StaticString) throws {
        try system_ioctlPointer(descriptor, request, nil, operation: operation, path: path)
    }

    /// ioctl on a raw buffer (variable-size structs such as `vhost_vdpa_config`).
    public func control(_ request: UInt, buffer: UnsafeMutableRawBufferPointer, operation: StaticString) throws {
        try system_ioctlPointer(descriptor, request, buffer.baseAddress, operation: operation, path: path)
    }

    /// write(2) of a whole message; a short write is an error (vhost messages are atomic).
    public func writeMessage(_ bytes: [UInt8], operation: String) throws {
        let written = try bytes.withUnsafeBytes { try system_write(descriptor, $0, path: path) }
        if written != bytes.count { throw SystemError(errno: EIO, operation: operation, path: path) }
    }
}

/// Memory shared with the kernel by file descriptor: a memfd mapped MAP_SHARED
/// (guest memory of the test VMM, mapped into a vhost-vdpa device through its IOTLB).
public final class SharedMemory: @unchecked Sendable {
    // SAFETY (@unchecked): the mapping lives as long as this object; callers
    // coordinate access to its bytes (the virtqueue code uses atomics for indexes).
    public let address: UnsafeMutableRawPointer
    public let length: Int
    private let descriptor: Int32

    public init(name: String, length: Int) throws {
        let fd = try system_memfdCreate(name)
        do {
            try system_ftruncate(fd, length)
            address = try system_mmapShared(fd, length: length)
        } catch {
            system_close(fd)
            throw error
        }
        // SAFETY: freshly mapped and zero-filled by the kernel (memfd pages).
        descriptor = fd
        self.length = length
    }

    deinit {
        system_munmap(address, length: length)
        system_close(descriptor)
    }

    /// The user-space address, as vhost IOTLB messages carry it (`uaddr`).
    public var userAddress: UInt64 { UInt64(UInt(bitPattern: address)) }

    /// The memfd, to hand to another process (vhost-user SET_MEM_TABLE).
    public var fileDescriptor: Int32 { descriptor }

    /// Forbids seals on the memfd (`F_SEAL_SEAL`): whoever maps it can no longer seal it
    /// against shrinking, as with memory of a VMM that does not allow sealing.
    public func forbidSeals() throws { try system_forbidSeals(descriptor) }

    /// Truncates the memfd to `length` bytes: every mapping of it past that faults (SIGBUS),
    /// this object's own included.
    public func truncate(to length: Int) throws { try system_ftruncate(descriptor, length) }
}

import Foundation

/// A file descriptor received from a peer (SCM_RIGHTS): closed when dropped.
public final class OwnedFileDescriptor: @unchecked Sendable {
    // SAFETY (@unchecked): the descriptor is only closed once, under `lock`.
    public let rawValue: Int32
    private let lock = NSLock()
    private var isOpen = true

    public init(adopting rawValue: Int32) { self.rawValue = rawValue }
    deinit { close() }

    /// Closes it (once). A socket is shut down first, which wakes a thread blocked in
    /// accept() or recvmsg() on it.
    public func close(shuttingDown: Bool = false) {
        lock.lock()
        defer { lock.unlock() }
        guard isOpen else { return }
        isOpen = false
        if shuttingDown { system_shutdown(rawValue) }
        system_close(rawValue)
    }
}

/// A shared mapping of a file a peer sent (a VMM's guest memory region).
public final class MappedFile: @unchecked Sendable {
    // SAFETY (@unchecked): the mapping lives as long as this object; users coordinate access.
    public let address: UnsafeMutableRawPointer
    public let length: Int

    /// `mmap(MAP_SHARED, PROT_READ|PROT_WRITE)` of `length` bytes at `offset` of the file,
    /// which must lie inside the file (a peer's region past its end would fault on access).
    public init(fileDescriptor: Int32, offset: UInt64, length: Int) throws {
        let size = try system_fileSize(fileDescriptor)
        let (end, overflow) = offset.addingReportingOverflow(UInt64(length))
        guard length > 0, !overflow, end <= size else {
            throw SystemError(errno: ErrnoCode.invalidArgument, operation: "mmap: \(length) bytes at offset \(offset) of a file of \(size)")
        }
        address = try system_mmapShared(fileDescriptor, length: length, offset: offset)
        self.length = length
    }

    deinit { system_munmap(address, length: length) }

    /// Seals the file against shrinking (a memfd created with MFD_ALLOW_SEALING, as QEMU's and
    /// DPDK's are): afterwards no part of a mapping of it can vanish under the reader (SIGBUS).
    /// False when the file cannot be sealed (not a memfd, or sealing not allowed).
    public static func sealAgainstShrinking(fileDescriptor: Int32) -> Bool { system_sealAgainstShrinking(fileDescriptor) }

    /// The address as vhost IOTLB messages carry it (`uaddr`).
    public var userAddress: UInt64 { UInt64(UInt(bitPattern: address)) }
}

/// A listening AF_UNIX stream socket. A stale socket file at the path is replaced.
public final class UnixListeningSocket: @unchecked Sendable {
    // SAFETY (@unchecked): immutable; the descriptor closes once.
    public let path: String
    private let descriptor: OwnedFileDescriptor
    public var fileDescriptor: Int32 { descriptor.rawValue }

    /// `group`: the socket file's group (a VMM running as another user connects through it).
    public init(path: String, mode: mode_t = 0o660, group: String? = nil) throws {
        self.path = path
        try? system_unlink(path)
        // Bound under a private name, given its mode, then renamed into place: never
        // reachable with the wrong permissions.
        let privatePath = path + ".new"
        try? system_unlink(privatePath)
        let fd = try system_socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        do {
            try system_bindUnix(fd, path: privatePath)
            try PrivateDirectory.setSocketPermissions(privatePath, mode: UInt32(mode), group: group)
            try system_listen(fd, backlog: 4)
            try system_rename(privatePath, path)
        } catch {
            system_close(fd)
            try? system_unlink(privatePath)
            throw error
        }
        descriptor = OwnedFileDescriptor(adopting: fd)
    }

    deinit { close() }

    /// Waits for a peer (blocking); throws once closed.
    public func accept() throws -> UnixMessageSocket {
        UnixMessageSocket(adopting: try system_accept(fileDescriptor))
    }

    /// Stops listening (waking a blocked `accept`) and removes the socket file.
    public func close() {
        descriptor.close(shuttingDown: true)
        try? system_unlink(path)
    }
}

/// A connected AF_UNIX stream socket that carries bytes together with file descriptors
/// (SCM_RIGHTS), as vhost-user needs.
public final class UnixMessageSocket: @unchecked Sendable {
    // SAFETY (@unchecked): immutable; the descriptor closes once.
    private let descriptor: OwnedFileDescriptor
    public var fileDescriptor: Int32 { descriptor.rawValue }
    /// The most descriptors one message may bring (vhost-user's memory table of 8 regions).
    public static let maximumFileDescriptors = 8

    init(adopting fd: Int32) { descriptor = OwnedFileDescriptor(adopting: fd) }

    public convenience init(connectingTo path: String) throws {
        self.init(adopting: try connectedUnixStreamSocket(path: path))
    }

    /// Two connected sockets.
    public static func pair() throws -> (UnixMessageSocket, UnixMessageSocket) {
        let (a, b) = try system_socketpairUnix()
        return (UnixMessageSocket(adopting: a), UnixMessageSocket(adopting: b))
    }

    deinit { close() }

    /// Sends all of `bytes`; the descriptors go with the first part.
    public func send(_ bytes: [UInt8], fileDescriptors: [Int32] = []) throws {
        var offset = 0
        var descriptors = fileDescriptors
        repeat {
            let sent = try bytes.withUnsafeBytes { raw throws in
                try system_sendWithFileDescriptors(fileDescriptor, UnsafeRawBufferPointer(rebasing: raw[offset...]), fileDescriptors: descriptors)
            }
            descriptors = []
            offset += sent
        } while offset < bytes.count
    }

    /// Reads exactly `count` bytes, with the descriptors that came along (owned by the
    /// caller). Throws ``SystemError`` with ECONNRESET at end of stream, and with ETIMEDOUT
    /// when `deadline` passes before the last byte came.
    public func receive(exactly count: Int, deadline: ContinuousClock.Instant? = nil) throws -> (bytes: [UInt8], fileDescriptors: [OwnedFileDescriptor]) {
        var bytes = [UInt8](repeating: 0, count: count)
        var descriptors: [OwnedFileDescriptor] = []
        var offset = 0
        while offset < count {
            if let deadline { try waitReadable(until: deadline) }
            let (received, fds) = try bytes.withUnsafeMutableBytes { raw throws in
                try system_receiveWithFileDescriptors(fileDescriptor, UnsafeMutableRawBufferPointer(rebasing: raw[offset...]),
                                                     maximumDescriptors: Self.maximumFileDescriptors - descriptors.count)
            }
            descriptors += fds.map(OwnedFileDescriptor.init(adopting:))
            if received == 0 { throw SystemError(errno: ErrnoCode.connectionReset, operation: "recvmsg: end of stream") }
            offset += received
        }
        return (bytes, descriptors)
    }

    /// Waits until the socket is readable (data, or the end of the stream); ETIMEDOUT when
    /// `deadline` passes first. Without a deadline it waits as long as it takes.
    public func waitReadable(until deadline: ContinuousClock.Instant?) throws {
        guard let deadline else {
            while try !system_pollReadable(fileDescriptor, timeoutMilliseconds: -1) {}
            return
        }
        while true {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { throw SystemError(errno: ErrnoCode.timedOut, operation: "recvmsg: nothing came in time") }
            let (seconds, attoseconds) = left.components
            let milliseconds = min(Int64(Int32.max), seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
            if try system_pollReadable(fileDescriptor, timeoutMilliseconds: Int32(milliseconds)) { return }
        }
    }

    /// Closes the socket, waking a thread blocked reading it.
    public func close() { descriptor.close(shuttingDown: true) }

    /// Shuts the connection down without closing the descriptor (another thread may be reading it).
    public func shutdown() { system_shutdown(fileDescriptor) }
}

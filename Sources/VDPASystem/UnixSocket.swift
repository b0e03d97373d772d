#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A new AF_UNIX stream socket connected to `path` (closed again when the connect fails).
func connectedUnixStreamSocket(path: String) throws -> Int32 {
    let fd = try system_socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    do {
        try system_connectUnix(fd, path: path)
    } catch {
        system_close(fd)
        throw error
    }
    return fd
}

/// A connected, blocking Unix stream socket (the client side of the vdpad API).
///
/// One owner; the descriptor is closed in `deinit` (synchronously) or by `close()`.
public final class UnixStreamConnection {
    private var fd: Int32

    /// Connects to the socket at `path`.
    public init(path: String) throws {
        fd = try connectedUnixStreamSocket(path: path)
    }

    deinit { if fd >= 0 { system_close(fd) } }

    /// Closes the connection now.
    public func close() {
        if fd >= 0 { system_close(fd); fd = -1 }
    }

    /// Writes all of `bytes`.
    public func writeAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = try bytes.withUnsafeBytes { buffer throws in
                try system_send(fd, UnsafeRawBufferPointer(rebasing: buffer[offset...]))
            }
            offset += written
        }
    }

    /// Reads whatever is available (blocking until at least one byte or end of stream).
    /// Returns an empty array at end of stream. With a timeout, throws ETIMEDOUT when nothing arrives.
    public func read(maximum: Int = 65536, timeoutMilliseconds: Int32? = nil) throws -> [UInt8] {
        if let timeoutMilliseconds, try !system_pollReadable(fd, timeoutMilliseconds: timeoutMilliseconds) {
            throw SystemError(errno: ETIMEDOUT, operation: "recv")
        }
        var buffer = [UInt8](repeating: 0, count: maximum)
        let count = try buffer.withUnsafeMutableBytes { raw throws in try system_recv(fd, raw) }
        buffer.removeSubrange(count...)
        return buffer
    }

    /// Reads whatever is available into `buffer` (blocking until at least one byte or end
    /// of stream) and returns the count; 0 at end of stream. No allocation: for callers
    /// that read large answers in a loop (the API benchmark).
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try system_recv(fd, buffer)
    }
}

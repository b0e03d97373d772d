#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs a program to its end and collects what it printed: for the tools tests drive (ip(8),
/// ping, DPDK's testpmd). The child starts with every signal unblocked and at its default
/// action, whatever thread of this process starts it (Swift's worker threads block most
/// signals, and a child inheriting that mask, such as busybox's ping waiting for SIGALRM,
/// would wait forever).
public enum ChildProcess {
    public struct Result: Sendable {
        public var status: Int32
        public var output: String
    }

    /// Runs `path` with `arguments` (without argv[0]); stdout and stderr together.
    public static func run(_ path: String, _ arguments: [String]) throws -> Result {
        let (readEnd, writeEnd) = try system_pipe()
        let pid: pid_t
        do {
            pid = try system_spawn(path, [path] + arguments, outputFD: writeEnd)
        } catch {
            system_close(readEnd)
            system_close(writeEnd)
            throw error
        }
        system_close(writeEnd)
        defer { system_close(readEnd) }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = try buffer.withUnsafeMutableBytes { try system_read(readEnd, $0) }
            if count <= 0 { break }
            output += buffer[0..<count]
        }
        return Result(status: try system_waitExit(pid), output: String(decoding: output, as: UTF8.self))
    }

    /// Starts `path` with `arguments`, its output discarded; the caller ends it with ``stop(_:)``.
    public static func start(_ path: String, _ arguments: [String]) throws -> Int32 {
        let null = try system_open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer { system_close(null) }
        return try system_spawn(path, [path] + arguments, outputFD: null)
    }

    /// SIGINT, then waits for `pid` to end; its exit status.
    @discardableResult
    public static func stop(_ pid: Int32) throws -> Int32 {
        system_interrupt(pid)
        return try system_waitExit(pid)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The systemd notification protocol (sd_notify(3)) without libsystemd: one
/// datagram of `KEY=VALUE` lines to the socket named by `$NOTIFY_SOCKET`.
public struct ServiceNotifier: Sendable {
    /// The socket path ("@name" for an abstract socket), nil when not run by systemd.
    public let socketPath: String?

    public init(environment: [String: String]) {
        socketPath = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The watchdog interval systemd expects pings within, from `$WATCHDOG_USEC`
    /// (honoured only when `$WATCHDOG_PID` is unset or names this process).
    public static func watchdogInterval(environment: [String: String]) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let usec = UInt64(text), usec > 0 else { return nil }
        if let pid = environment["WATCHDOG_PID"], Int32(pid) != system_processID() { return nil }
        return .microseconds(Int64(usec))
    }

    /// Sends the given state lines; a no-op when not run by systemd.
    public func notify(_ state: [String: String]) throws {
        guard let socketPath else { return }
        let text = state.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\n")
        let fd = try system_socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { system_close(fd) }
        let bytes = Array(text.utf8)
        try bytes.withUnsafeBytes { buffer throws in
            try system_sendtoUnix(fd, buffer, path: socketPath)
        }
    }
}

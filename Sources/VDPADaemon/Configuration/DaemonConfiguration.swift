/// vdpad's settings, from `/etc/vdpad/vdpad.conf` and then the command line.
///
/// The file is `key = value` lines; `#` starts a comment. An unknown key or a bad
/// value stops the daemon with the file and line, rather than running with a
/// setting the operator did not intend.
public struct DaemonConfiguration: Sendable, Equatable {
    public var socketPath = "/run/vdpad/vdpad.sock"
    public var socketMode: UInt32 = 0o660
    public var socketGroup: String?
    public var stateDirectory = "/var/lib/vdpad"
    public var restoreOnStart = true
    public var resyncIntervalSeconds = 30
    public var clientIdleTimeoutSeconds = 300
    public var maximumRequestBytes = 1 << 20
    public var logLevel = "info"
    public var profilesDirectory = "/etc/vdpad/profiles.d"
    public var quirksDirectory = "/etc/vdpad/quirks.d"
    public var portsDirectory = "/run/vdpad/ports"
    public var portsGroup: String?

    public init() {}

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var file: String
        public var line: Int
        public var message: String
        public var description: String { "\(file):\(line): \(message)" }
    }

    /// The keys the file may set, with what each means (for errors and docs).
    public static let keys: [String: String] = [
        "socket": "path of the API socket",
        "socket_mode": "octal permission bits of the API socket",
        "socket_group": "group owning the API socket (empty: the daemon's)",
        "state_dir": "directory of the durable state (SQLite)",
        "restore_on_start": "recreate vdpad's devices the kernel lost (after a reboot): true/false",
        "resync_interval": "seconds between full re-reads of the kernel",
        "client_idle_timeout": "seconds a silent, unsubscribed client may stay connected",
        "max_request_bytes": "longest accepted request line",
        "log_level": "trace, debug, info, notice, warning, error, critical",
        "profiles_dir": "directory of profile files (NAME.json), read at start",
        "quirks_dir": "directory of quirk files (*.conf), read at start",
        "ports_dir": "directory of the ports' vhost-user sockets (NAME.sock)",
        "ports_group": "group owning the ports' sockets, for VMMs running as another user (empty: the daemon's)",
    ]

    /// Applies the settings of a configuration file's text.
    public mutating func apply(fileText text: String, fileName: String) throws(ParseError) {
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            var line = Substring(rawLine)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            line = line.trimmingCharacters(in: " \t\r")
            if line.isEmpty { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw ParseError(file: fileName, line: lineNumber, message: "expected 'key = value'")
            }
            let key = String(line[..<equals].trimmingCharacters(in: " \t"))
            let value = String(line[line.index(after: equals)...].trimmingCharacters(in: " \t"))
            do {
                try set(key, value)
            } catch {
                throw ParseError(file: fileName, line: lineNumber, message: error.message)
            }
        }
    }

    public struct ValueError: Error { public var message: String }

    /// Sets one key (the file's spelling) from text.
    public mutating func set(_ key: String, _ value: String) throws(ValueError) {
        func integer(_ range: ClosedRange<Int>) throws(ValueError) -> Int {
            guard let number = Int(value), range.contains(number) else {
                throw ValueError(message: "\(key) must be a whole number in \(range.lowerBound)...\(range.upperBound), not '\(value)'")
            }
            return number
        }
        switch key {
        case "socket":
            guard value.hasPrefix("/") else { throw ValueError(message: "socket must be an absolute path") }
            // sun_path holds 107 bytes; the socket is bound as PATH.new, then renamed to PATH.
            guard value.utf8.count <= 103 else {
                throw ValueError(message: "socket path is \(value.utf8.count) bytes long; a Unix socket path may have at most 103 here")
            }
            socketPath = value
        case "socket_mode":
            guard let mode = UInt32(value, radix: 8), mode <= 0o777 else { throw ValueError(message: "socket_mode must be octal, e.g. 0660") }
            socketMode = mode
        case "socket_group":
            socketGroup = value.isEmpty ? nil : value
        case "state_dir":
            guard value.hasPrefix("/") else { throw ValueError(message: "state_dir must be an absolute path") }
            stateDirectory = value
        case "restore_on_start":
            switch value.lowercased() {
            case "true", "yes", "1", "on": restoreOnStart = true
            case "false", "no", "0", "off": restoreOnStart = false
            default: throw ValueError(message: "restore_on_start must be true or false")
            }
        case "profiles_dir":
            guard value.hasPrefix("/") else { throw ValueError(message: "profiles_dir must be an absolute path") }
            profilesDirectory = value
        case "quirks_dir":
            guard value.hasPrefix("/") else { throw ValueError(message: "quirks_dir must be an absolute path") }
            quirksDirectory = value
        case "ports_group":
            portsGroup = value.isEmpty ? nil : value
        case "ports_dir":
            guard value.hasPrefix("/") else { throw ValueError(message: "ports_dir must be an absolute path") }
            portsDirectory = value
        case "resync_interval": resyncIntervalSeconds = try integer(1...86400)
        case "client_idle_timeout": clientIdleTimeoutSeconds = try integer(1...86400)
        case "max_request_bytes": maximumRequestBytes = try integer(1024...(64 << 20))
        case "log_level":
            guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(value) else {
                throw ValueError(message: "log_level must be one of trace, debug, info, notice, warning, error, critical")
            }
            logLevel = value
        default:
            throw ValueError(message: "unknown key '\(key)' (known: \(Self.keys.keys.sorted().joined(separator: ", ")))")
        }
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> Substring {
        var result = self
        while let first = result.first, set.contains(first) { result = result.dropFirst() }
        while let last = result.last, set.contains(last) { result = result.dropLast() }
        return result
    }
}

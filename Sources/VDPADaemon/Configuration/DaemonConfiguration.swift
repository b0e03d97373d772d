import VDPASystem

/// vdpad's settings, from `/etc/vdpad/vdpad.conf` and then the command line.
///
/// The file is `key = value` lines; `#` starts a comment. An unknown key or a bad
/// value stops the daemon with the file and line, rather than running with a
/// setting the operator did not intend.
public struct DaemonConfiguration: Sendable, Equatable {
    public var socketPath = "/run/vdpad/vdpad.sock"
    public var socketMode: UInt32 = 0o660
    public var socketGroup: String?
    /// Members may call every method (nil: the socket's group, `socketGroup`).
    public var adminGroup: String?
    /// Members may call the methods that change nothing.
    public var readGroup: String?
    public var stateDirectory = "/var/lib/vdpad"
    public var restoreOnStart = true
    public var resyncIntervalSeconds = 30
    public var clientIdleTimeoutSeconds = 300
    public var maximumRequestBytes = 1 << 20
    /// The most API connections, and event subscriptions, one uid may hold open at once.
    public var maximumConnectionsPerUser = 256
    public var maximumSubscriptionsPerUser = 32
    public var logLevel = "info"
    public var profilesDirectory = "/etc/vdpad/profiles.d"
    public var quirksDirectory = "/etc/vdpad/quirks.d"
    public var portsDirectory = "/run/vdpad/ports"
    public var portsGroup: String?
    /// The most guest memory (bytes) one port's VMM may map; what its device pins of it.
    public var portMemoryLimit: UInt64 = 64 << 30
    /// Whether the software datapath's workers poll without sleeping.
    public var portBusyPoll = false

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
        "admin_group": "members may call every method (empty: socket_group's members)",
        "read_group": "members may call the methods that change nothing (empty: none)",
        "state_dir": "directory of the durable state (SQLite)",
        "restore_on_start": "recreate vdpad's devices the kernel lost (after a reboot): true/false",
        "resync_interval": "seconds between full re-reads of the kernel",
        "client_idle_timeout": "seconds a silent, unsubscribed client may stay connected",
        "max_request_bytes": "longest accepted request line",
        "max_connections_per_user": "the most API connections one uid may hold open",
        "max_subscriptions_per_user": "the most event subscriptions one uid may hold open",
        "log_level": "trace, debug, info, notice, warning, error, critical",
        "profiles_dir": "directory of profile files (NAME.json), read at start",
        "quirks_dir": "directory of quirk files (*.conf), read at start",
        "ports_dir": "directory of the ports' vhost-user sockets (NAME.sock)",
        "ports_group": "group owning the ports' sockets, for VMMs running as another user (empty: the daemon's)",
        "port_memory_limit": "the most guest memory one port's VMM may map (bytes, or with K, M, G, T)",
        "port_busy_poll": "software ports' workers poll their rings without sleeping, a core per queue pair: true/false",
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

    /// Who may call what, with the groups looked up (`admin_group`, else `socket_group`;
    /// `read_group`). A group that does not exist is an error: vdpad does not start with an
    /// authorization the operator did not mean.
    public func authorization(daemonUID: UInt32 = PeerIdentity.processUID) throws(ValueError) -> RPCAuthorization {
        func group(_ key: String, _ name: String?) throws(ValueError) -> RPCAuthorization.Group? {
            guard let name else { return nil }
            guard let id = PeerIdentity.groupID(name) else { throw ValueError(message: "\(key): no group '\(name)'") }
            return RPCAuthorization.Group(name: name, id: id)
        }
        return RPCAuthorization(adminGroup: try group(adminGroup == nil ? "socket_group" : "admin_group", adminGroup ?? socketGroup),
                                readGroup: try group("read_group", readGroup), daemonUID: daemonUID)
    }

    /// Sets one key (the file's spelling) from text.
    public mutating func set(_ key: String, _ value: String) throws(ValueError) {
        func integer(_ range: ClosedRange<Int>) throws(ValueError) -> Int {
            guard let number = Int(value), range.contains(number) else {
                throw ValueError(message: "\(key) must be a whole number in \(range.lowerBound)...\(range.upperBound), not '\(value)'")
            }
            return number
        }
        func boolean() throws(ValueError) -> Bool {
            switch value.lowercased() {
            case "true", "yes", "1", "on": return true
            case "false", "no", "0", "off": return false
            default: throw ValueError(message: "\(key) must be true or false, not '\(value)'")
            }
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
        case "admin_group":
            adminGroup = value.isEmpty ? nil : value
        case "read_group":
            readGroup = value.isEmpty ? nil : value
        case "state_dir":
            guard value.hasPrefix("/") else { throw ValueError(message: "state_dir must be an absolute path") }
            stateDirectory = value
        case "restore_on_start": restoreOnStart = try boolean()
        case "port_busy_poll": portBusyPoll = try boolean()
        case "profiles_dir":
            guard value.hasPrefix("/") else { throw ValueError(message: "profiles_dir must be an absolute path") }
            profilesDirectory = value
        case "quirks_dir":
            guard value.hasPrefix("/") else { throw ValueError(message: "quirks_dir must be an absolute path") }
            quirksDirectory = value
        case "ports_group":
            portsGroup = value.isEmpty ? nil : value
        case "port_memory_limit":
            let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
            var digits = Substring(value)
            var unit: UInt64 = 1
            if let last = digits.last, let scale = units[last] {
                unit = scale
                digits = digits.dropLast()
            }
            guard let number = UInt64(digits), number > 0, case let (bytes, overflow) = number.multipliedReportingOverflow(by: unit),
                  !overflow, bytes >= 1 << 20, bytes <= 1 << 50 else {
                throw ValueError(message: "port_memory_limit must be 1M to 1024T (bytes, or a number with K, M, G or T), not '\(value)'")
            }
            portMemoryLimit = bytes
        case "ports_dir":
            guard value.hasPrefix("/") else { throw ValueError(message: "ports_dir must be an absolute path") }
            portsDirectory = value
        case "resync_interval": resyncIntervalSeconds = try integer(1...86400)
        case "client_idle_timeout": clientIdleTimeoutSeconds = try integer(1...86400)
        case "max_request_bytes": maximumRequestBytes = try integer(1024...(64 << 20))
        case "max_connections_per_user": maximumConnectionsPerUser = try integer(1...65536)
        case "max_subscriptions_per_user": maximumSubscriptionsPerUser = try integer(1...65536)
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

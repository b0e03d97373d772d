import Foundation
import VDPASystem

/// What tests of TAP interfaces need (root, /dev/net/tun, ip(8)), and ip(8) to set up the
/// network namespaces they talk to.
public enum TapEnvironment {
    public static var available: Bool {
        getuid() == 0 && FileManager.default.fileExists(atPath: "/dev/net/tun")
            && FileManager.default.isExecutableFile(atPath: ipTool)
    }

    public static var ipTool: String {
        ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/ip"
    }

    public struct CommandFailure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Runs `ip ARGUMENTS`; its output, or the failure with the output.
    @discardableResult
    public static func ip(_ arguments: [String]) throws -> String {
        let result = try ChildProcess.run(ipTool, arguments)
        guard result.status == 0 else {
            throw CommandFailure(description: "ip \(arguments.joined(separator: " ")): \(result.output)")
        }
        return result.output
    }

    /// A new network namespace `name` (one left over from an earlier run is deleted first).
    public static func makeNamespace(_ name: String) throws {
        _ = try? ip(["netns", "del", name])
        try ip(["netns", "add", name])
    }

    /// Moves interface `name` into `namespace`, gives it `address` (CIDR) and brings it up.
    public static func move(_ name: String, into namespace: String, address: String) throws {
        try ip(["link", "set", "dev", name, "netns", namespace])
        try ip(["-n", namespace, "addr", "add", address, "dev", name])
        try ip(["-n", namespace, "link", "set", name, "up"])
    }

    /// The MAC address of interface `name` in network namespace `namespace`.
    public static func macAddress(of name: String, in namespace: String) throws -> [UInt8] {
        let text = try ip(["-n", namespace, "-o", "link", "show", name])
        guard let match = text.firstMatch(of: /link\/ether ([0-9a-f:]{17})/) else {
            throw CommandFailure(description: "no MAC address in: \(text)")
        }
        return match.1.split(separator: ":").compactMap { UInt8($0, radix: 16) }
    }
}

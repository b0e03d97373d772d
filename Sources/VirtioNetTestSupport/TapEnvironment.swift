import Foundation

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
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ipTool)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw CommandFailure(description: "ip \(arguments.joined(separator: " ")): \(text)")
        }
        return text
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

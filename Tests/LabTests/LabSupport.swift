import Foundation
import Testing
import VDPAClient
import VDPANetlink
import VDPATestSupport
import VirtioModel

/// The kernel lab: these tests run inside the lab VM (Tests/Lab/lab.sh), against Debian's
/// 6.12 kernel with the vdpa, vhost_vdpa, virtio_vdpa, vduse and vdpa_sim modules.
/// Elsewhere they are skipped: `VDPAD_LAB=1` is set only by run-swift-tests-in-guest.sh.
enum Lab {
    static let environment = ProcessInfo.processInfo.environment
    static let isEnabled = environment["VDPAD_LAB"] == "1"
    /// Where the host-built vdpad and vdpactl are.
    static let buildDirectory = environment["VDPAD_LAB_BUILD_DIR"] ?? FileManager.default.currentDirectoryPath + "/.build/debug"
    static let iproute2 = "/usr/sbin/vdpa"

    struct Output: Sendable, CustomStringConvertible {
        var status: Int32
        var stdout: String
        var stderr: String
        var description: String { "exit \(status); stdout: \(stdout); stderr: \(stderr)" }
    }

    /// Runs a program to completion (off the concurrency pool) and collects its output.
    static func run(_ executable: String, _ arguments: [String], environment extra: [String: String] = [:]) async throws -> Output {
        try await runOffThePool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            process.environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }
            // stdout through a pipe, stderr into a file: nothing can fill up and block the child.
            let errorPath = NSTemporaryDirectory() + "/lab-stderr-\(UUID().uuidString)"
            _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
            defer { try? FileManager.default.removeItem(atPath: errorPath) }
            let out = Pipe()
            process.standardOutput = out
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
            try process.run()
            let outputData = out.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return Output(status: process.terminationStatus, stdout: String(decoding: outputData, as: UTF8.self),
                          stderr: (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "")
        }
    }

    /// iproute2's `vdpa` (the kernel's own view, for cross-checks and for changes made behind vdpad's back).
    @discardableResult
    static func vdpa(_ arguments: String...) async throws -> Output {
        let output = try await run(iproute2, arguments)
        return output
    }

    /// `vdpa -j ARGS` parsed, with iproute2's stray-space keys ("link ", "link_announce ") trimmed.
    static func vdpaJSON(_ arguments: String...) async throws -> Any {
        let output = try await run(iproute2, ["-j"] + arguments)
        #expect(output.status == 0, "vdpa -j \(arguments.joined(separator: " ")): \(output)")
        return normalizedJSON(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)))
    }

    static func normalizedJSON(_ value: Any) -> Any {
        if let object = value as? [String: Any] {
            return Dictionary(uniqueKeysWithValues: object.map { ($0.key.trimmingCharacters(in: .whitespaces), normalizedJSON($0.value)) })
        }
        if let array = value as? [Any] { return array.map(normalizedJSON) }
        return value
    }

    static func kernel() -> LinuxVDPAKernel { LinuxVDPAKernel(logger: .init(label: "lab")) }

    /// Deletes every vdpa device, so each test starts from an empty bus.
    static func removeAllDevices() async throws {
        let kernel = kernel()
        for device in try await kernel.devices() { try await kernel.deleteDevice(named: device.name) }
    }

    /// The features the kernel's virtio driver negotiated, from
    /// `/sys/bus/virtio/devices/virtioN/features` (one '0'/'1' per bit, bit 0 first).
    static func virtioDriverFeatures(of virtioDevice: String) throws -> VirtioFeatures {
        let text = try String(contentsOfFile: "/sys/bus/virtio/devices/\(virtioDevice)/features", encoding: .utf8)
        var bits: UInt64 = 0
        for (index, character) in text.trimmingCharacters(in: .whitespacesAndNewlines).enumerated() where character == "1" {
            bits |= 1 << UInt64(index)
        }
        return VirtioFeatures(rawValue: bits)
    }

    /// Polls `condition` until it holds or `seconds` pass.
    static func eventually(seconds: Double = 10, _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return try await condition()
    }
}

/// The real `vdpad` binary as a child process, with its own socket and state directory.
final class SpawnedDaemon: Sendable {
    let directory: String
    let socketPath: String
    let stateDirectory: String
    let logPath: String
    private let process: Process

    /// `configuration`: the text of a vdpad.conf to start with (default: none).
    init(directory: String? = nil, restoreOnStart: Bool = true, configuration: String? = nil) async throws {
        let directory = directory ?? InProcessDaemon.temporaryDirectory("vdpad-lab")
        var configPath = "/nonexistent"
        if let configuration {
            configPath = directory + "/vdpad.conf"
            try configuration.write(toFile: configPath, atomically: true, encoding: .utf8)
        }
        self.directory = directory
        socketPath = directory + "/vdpad.sock"
        stateDirectory = directory + "/state"
        logPath = directory + "/vdpad-\(Int(Date().timeIntervalSince1970 * 1000)).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Lab.buildDirectory + "/vdpad")
        process.arguments = ["--config", configPath, "--socket", socketPath, "--state-dir", stateDirectory,
                             "--restore-on-start", restoreOnStart ? "true" : "false", "--log-level", "debug",
                             "--resync-interval", "2"]
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.process = process
        let path = socketPath
        let ready = await Lab.eventually(seconds: 30) { (try? await runOffThePool { _ = try VDPAClient(socketPath: path) }) != nil }
        guard ready else { throw VDPAClientError.connectionClosed }
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The daemon's pid.
    var pid: Int32 { process.processIdentifier }

    /// What the kernel counts as pinned in the daemon's address space (`VmPin` of
    /// /proc/PID/status, in KiB): the guest memory its devices hold with pin_user_pages.
    var pinnedKiB: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmPin:") }) else { return nil }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }

    /// Runs `body` with a fresh client connection, off the concurrency pool.
    func withClient<T: Sendable>(_ body: @escaping @Sendable (VDPAClient) throws -> T) async throws -> T {
        let path = socketPath
        return try await runOffThePool {
            let client = try VDPAClient(socketPath: path)
            defer { client.close() }
            return try body(client)
        }
    }

    /// `vdpactl --socket … ARGS`.
    func vdpactl(_ arguments: String...) async throws -> Lab.Output {
        try await Lab.run(Lab.buildDirectory + "/vdpactl", ["--socket", socketPath] + arguments)
    }

    /// SIGKILL: no chance to clean up, as in a crash.
    func kill() async throws {
        Foundation.kill(process.processIdentifier, SIGKILL)
        let process = self.process
        try await runOffThePool { process.waitUntilExit() }
    }

    /// SIGTERM and wait: the graceful stop systemd does.
    func stop() async throws -> Int32 {
        process.terminate()
        let process = self.process
        try await runOffThePool { process.waitUntilExit() }
        return process.terminationStatus
    }
}

import ArgumentParser
import Dispatch
import Foundation
import VDPAClient
import VDPARPC
import VDPASystem

/// `vdpa-bench api`: throughput and latency of vdpad's API over its real Unix socket,
/// with thousands of devices known to the daemon (created through `dev_add` over the
/// fake kernel, so each has its durable record), 1 and many concurrent clients, and
/// the daemon's resident memory when idle. Reference, same run: the same socket server
/// answering the same bytes without decoding or dispatching them.
struct APIBenchmarkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api", abstract: "API throughput and latency over the Unix socket, and daemon RSS.")

    @Option(help: "Devices the daemon knows (created with dev_add).") var devices = 4096
    @Option(help: "Seconds per measurement.") var seconds = 3.0
    @Option(help: "Concurrent client counts, comma-separated.") var clients = "1,64"
    @Option(help: "Methods to measure, comma-separated.") var methods = "daemon_status,dev_list"
    @Option(name: .customLong("state-dir"), help: "Where the daemon keeps its state (default: a new temporary directory).")
    var stateDirectory: String?
    @Flag(help: "Skip the reference server.") var noReference = false

    func run() async throws {
        let clientCounts = clients.split(separator: ",").compactMap { Int($0) }
        let methodNames = methods.split(separator: ",").map(String.init)
        let work = stateDirectory ?? (FileManager.default.temporaryDirectory.path + "/vdpa-bench-\(getpid())")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        print("vdpa-bench api: \(devices) devices, \(seconds) s per point, clients \(clientCounts), \(ProcessInfo.processInfo.activeProcessorCount) CPUs")

        // The daemon, in its own process.
        let daemonSocket = "/tmp/vdpa-bench-\(getpid()).sock"
        let daemon = try BenchServerProcess.start(["serve", "--socket", daemonSocket, "--state-dir", work + "/state"], socket: daemonSocket)
        let rssStart = daemon.residentKiB()

        let populateSeconds = try Self.populate(socket: daemonSocket, devices: devices)
        print(String(format: "dev_add: %d devices in %.2f s (%.0f/s, one durable transaction each)",
                     devices, populateSeconds, Double(devices) / populateSeconds))

        // The answers, kept for the reference server.
        var replyFiles: [String] = []
        for method in methodNames {
            let reply = try RawClient(socketPath: daemonSocket).roundTrip(RawClient.request(method))
            guard RawClient.isResult(reply) else {
                throw ValidationError("\(method) failed: \(String(decoding: reply.prefix(300), as: UTF8.self))")
            }
            let file = work + "/\(method).reply"
            try Data(reply).write(to: URL(fileURLWithPath: file))
            replyFiles.append("\(method)=\(file)")
            print("\(method): reply of \(reply.count) bytes")
        }
        try await Task.sleep(for: .seconds(2))
        let rssIdle = daemon.residentKiB()
        let anonymousIdle = daemon.anonymousResidentKiB()
        print(String(format: "daemon RSS: %.1f MiB at start (no devices), %.1f MiB idle with %d devices (%.1f MiB of it anonymous, the rest mapped code)",
                     Double(rssStart) / 1024, Double(rssIdle) / 1024, devices, Double(anonymousIdle) / 1024))

        var table: [(method: String, clients: Int, daemon: LoadResult, reference: LoadResult?)] = []
        for method in methodNames {
            for count in clientCounts {
                let result = try LoadGenerator.run(socket: daemonSocket, method: method, clients: count, seconds: seconds)
                table.append((method, count, result, nil))
            }
        }
        let rssAfter = daemon.residentKiB()
        let peak = daemon.peakResidentKiB()
        try daemon.stop()

        var referenceRSS = 0
        if !noReference {
            let referenceSocket = "/tmp/vdpa-bench-ref-\(getpid()).sock"
            let reference = try BenchServerProcess.start(
                ["serve", "--socket", referenceSocket] + replyFiles.flatMap { ["--canned", $0] }, socket: referenceSocket)
            referenceRSS = reference.residentKiB()
            for index in table.indices {
                table[index].reference = try LoadGenerator.run(socket: referenceSocket, method: table[index].method,
                                                               clients: table[index].clients, seconds: seconds)
            }
            try reference.stop()
        }
        try? FileManager.default.removeItem(atPath: work)

        print("")
        print("method         clients   req/s      p50 µs    p99 µs    max µs   | reference req/s  p99 µs | daemon/reference")
        for row in table {
            let r = row.daemon
            var line = String(format: "%-14@ %7d %9.0f %9.1f %9.1f %9.1f", row.method as NSString, row.clients,
                              r.requestsPerSecond, r.percentile(0.50), r.percentile(0.99), r.maximum)
            if let ref = row.reference {
                line += String(format: "   | %13.0f %8.1f | %.2fx throughput", ref.requestsPerSecond, ref.percentile(0.99),
                               r.requestsPerSecond / ref.requestsPerSecond)
            }
            if r.errors > 0 { line += "  (\(r.errors) errors)" }
            print(line)
        }
        print(String(format: "\ndaemon RSS: idle %.1f MiB with %d devices, %.1f MiB after the load, peak %.1f MiB; reference server %.1f MiB",
                     Double(rssIdle) / 1024, devices, Double(rssAfter) / 1024, Double(peak) / 1024, Double(referenceRSS) / 1024))
    }
}

extension APIBenchmarkCommand {
    /// Creates `devices` devices `bench0`… through `dev_add` on the daemon at `socket`;
    /// returns the seconds it took.
    static func populate(socket: String, devices: Int) throws -> Double {
        let start = DispatchTime.now()
        let client = try VDPAClient(socketPath: socket)
        defer { client.close() }
        for index in 0..<devices {
            _ = try client.call(.devAdd, DevAddParams(name: "bench\(index)", mgmtdev: "vdpasim_net",
                                                      mac: String(format: "02:00:00:00:%02x:%02x", index >> 8, index & 0xff)),
                                as: DeviceInfo.self)
        }
        return Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }
}

/// A child `vdpa-bench serve …` process.
struct BenchServerProcess {
    let process: Process

    static func start(_ arguments: [String], socket: String) throws -> BenchServerProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try FileSystem.readLink("/proc/self/exe"))
        process.arguments = arguments
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let connection = try? UnixStreamConnection(path: socket) {
                connection.close()
                return BenchServerProcess(process: process)
            }
            guard process.isRunning else { throw ValidationError("bench server exited with \(process.terminationStatus)") }
            Thread.sleep(forTimeInterval: 0.02)
        }
        process.terminate()
        throw ValidationError("bench server did not listen on \(socket) within 30 s")
    }

    /// VmRSS of the process, KiB.
    func residentKiB() -> Int { statusField("VmRSS:") }
    /// RssAnon (heap and stacks, not mapped files) of the process, KiB.
    func anonymousResidentKiB() -> Int { statusField("RssAnon:") }
    /// VmHWM (peak RSS) of the process, KiB.
    func peakResidentKiB() -> Int { statusField("VmHWM:") }

    /// Threads of the process.
    func threads() -> Int { statusField("Threads:") }
    /// Open file descriptors of the process (entries of /proc/PID/fd).
    func openDescriptors() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.processIdentifier)/fd").count) ?? -1
    }

    private func statusField(_ name: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name) }) else { return 0 }
        return Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "") ?? 0
    }

    func stop() throws {
        process.terminate()
        process.waitUntilExit()
    }
}

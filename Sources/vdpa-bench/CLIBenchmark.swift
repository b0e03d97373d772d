import ArgumentParser
import Dispatch
import Foundation

/// `vdpa-bench cli`: `vdpactl dev add` / `dev show` / `dev del` against iproute2's `vdpa`
/// doing the same on the same kernel (the lab VM), interleaved, with the cost of
/// starting a process at all (`true`) as the floor. Run inside the kernel lab by
/// Tests/Lab/bench-in-guest.sh.
struct CLIBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cli", abstract: "vdpactl against iproute2's vdpa: dev add / show / del latency.")

    @Option(help: "vdpactl binary.") var vdpactl: String
    @Option(help: "iproute2's vdpa binary.") var vdpa = "/usr/sbin/vdpa"
    @Option(help: "vdpad's socket.") var socket: String
    @Option(help: "Management device to create on.") var mgmtdev = "vdpasim_net"
    @Option(help: "Rounds (each: add, show, del with both tools).") var iterations = 20
    @Option(help: "Pause before each timed command, ms, so that the daemon's work on the previous change (uevents) does not land in the next measurement.")
    var settleMilliseconds = 300

    func run() throws {
        var samples: [String: [Double]] = [:]
        /// Runs one command to completion after the settle pause; its wall time, ms.
        func launch(_ executable: String, _ arguments: [String]) throws -> Double {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            Thread.sleep(forTimeInterval: Double(settleMilliseconds) / 1000)
            let start = DispatchTime.now().uptimeNanoseconds
            try process.run()
            process.waitUntilExit()
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
            guard process.terminationStatus == 0 else {
                throw ValidationError("\(executable) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
            }
            return elapsed
        }
        let ctl = ["--socket", socket]
        // One untimed round each: page cache, first connection.
        for round in -1..<iterations {
            func timed(_ key: String, _ executable: String, _ arguments: [String]) throws {
                let elapsed = try launch(executable, arguments)
                if round >= 0 { samples[key, default: []].append(elapsed) }
            }
            try timed("true", "/bin/true", [])
            try timed("start/vdpa", vdpa, ["-V"])
            try timed("start/vdpactl", vdpactl, ["-V"])
            try timed("add/vdpa", vdpa, ["dev", "add", "name", "ipr\(round + 1)", "mgmtdev", mgmtdev])
            try timed("add/vdpactl", vdpactl, ctl + ["dev", "add", "name", "ctl\(round + 1)", "mgmtdev", mgmtdev])
            try timed("show/vdpa", vdpa, ["dev", "show", "ipr\(round + 1)"])
            try timed("show/vdpactl", vdpactl, ctl + ["dev", "show", "ctl\(round + 1)"])
            try timed("show -j/vdpa", vdpa, ["-j", "dev", "show", "ipr\(round + 1)"])
            try timed("show -j/vdpactl", vdpactl, ctl + ["-j", "dev", "show", "ctl\(round + 1)"])
            try timed("del/vdpa", vdpa, ["dev", "del", "ipr\(round + 1)"])
            try timed("del/vdpactl", vdpactl, ctl + ["dev", "del", "ctl\(round + 1)"])
        }
        func median(_ key: String) -> Double {
            let sorted = (samples[key] ?? []).sorted()
            return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
        }
        print("vdpa-bench cli: \(iterations) rounds, median wall time per command (ms), process start floor (/bin/true) \(String(format: "%.2f", median("true"))) ms")
        print("operation     vdpa (iproute2)   vdpactl    ratio     (start: -V, the cost of starting the program)")
        for operation in ["start", "add", "show", "show -j", "del"] {
            let reference = median("\(operation)/vdpa"), ours = median("\(operation)/vdpactl")
            print(String(format: "%-12@ %12.2f %12.2f %8.2fx", operation as NSString, reference, ours, ours / reference))
        }
    }
}

import Foundation
import Synchronization
import VDPACtl
import VDPATestSupport

/// Text written to an ``OutputSink``, kept for the test to read.
final class CapturedOutput: Sendable {
    private let text = Mutex("")
    var sink: OutputSink { OutputSink { [self] chunk in text.withLock { $0 += chunk } } }
    var value: String { text.withLock { $0 } }
    var lines: [String] { value.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init) }
}

/// What one vdpactl run produced.
struct RunResult: Sendable, CustomStringConvertible {
    var status: ExitStatus
    var stdout: String
    var stderr: String
    var description: String { "exit \(status.rawValue); stdout: \(stdout); stderr: \(stderr)" }

    /// stdout parsed as JSON.
    func json() throws -> Any { try JSONSerialization.jsonObject(with: Data(stdout.utf8)) }
}

/// Runs vdpactl in-process (no daemon is contacted unless the command needs one).
func vdpactl(_ arguments: [String], environment: [String: String] = [:], keepFollowing: @escaping @Sendable () -> Bool = { true }) -> RunResult {
    let output = CapturedOutput()
    let errors = CapturedOutput()
    let status = VDPACtl.run(arguments: arguments, environment: environment, output: output.sink, errors: errors.sink, keepFollowing: keepFollowing)
    return RunResult(status: status, stdout: output.value, stderr: errors.value)
}

extension InProcessDaemon {
    /// Runs `vdpactl --socket SOCKET ARGS` against this daemon, off the concurrency pool.
    func vdpactl(_ arguments: String..., keepFollowing: @escaping @Sendable () -> Bool = { true }) async throws -> RunResult {
        let socket = socketPath
        return try await runOffThePool { vdpactlTests.vdpactl(["--socket", socket] + arguments, keepFollowing: keepFollowing) }
    }
}

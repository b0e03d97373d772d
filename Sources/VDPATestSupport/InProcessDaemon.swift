import Foundation
import Logging
import VDPAClient
import VDPADaemon
import VDPANetlink
import VDPAVhost

/// A vdpad running inside the test process on a real Unix socket, over any
/// ``VDPAManaging`` (usually ``FakeVDPAKernel``), for integration tests and benchmarks.
public final class InProcessDaemon: Sendable {
    public let socketPath: String
    public let stateDirectory: String
    public let daemon: Daemon
    private let task: Task<Void, any Error>

    /// A fresh directory under the system's temporary directory.
    public static func temporaryDirectory(_ prefix: String = "vdpad-test") -> String {
        let path = NSTemporaryDirectory() + "/\(prefix)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    public init(kernel: any VDPAManaging, stateDirectory: String? = nil, restoreOnStart: Bool = true,
                resyncInterval: Int = 3600, idleTimeout: Int = 300, maximumRequestBytes: Int = 1 << 20,
                profilesDirectory: String? = nil, quirksDirectory: String? = nil,
                vhostOpener: any VhostVDPAOpening = FakeVhostOpener(),
                logLevel: Logger.Level = .warning, configure: (inout DaemonConfiguration) -> Void = { _ in }) async throws {
        let directory = stateDirectory ?? Self.temporaryDirectory()
        self.stateDirectory = directory
        // Unix socket paths are limited to 107 bytes: keep the socket short.
        socketPath = "/tmp/vdpad-\(UUID().uuidString.prefix(8)).sock"
        var configuration = DaemonConfiguration()
        configuration.socketPath = socketPath
        configuration.stateDirectory = directory
        configuration.restoreOnStart = restoreOnStart
        configuration.resyncIntervalSeconds = resyncInterval
        configuration.clientIdleTimeoutSeconds = idleTimeout
        configuration.maximumRequestBytes = maximumRequestBytes
        // Never the host's /etc/vdpad: a test sees only the policy files it gives.
        configuration.profilesDirectory = profilesDirectory ?? directory + "/profiles.d"
        configuration.quirksDirectory = quirksDirectory ?? directory + "/quirks.d"
        configuration.portsDirectory = directory + "/ports"
        configure(&configuration)
        var logger = Logger(label: "vdpad-test")
        logger.logLevel = logLevel
        let daemon = try await Daemon(configuration: configuration, kernel: kernel, environment: [:], shutdownSignals: [],
                                  vhostOpener: vhostOpener, logger: logger)
        self.daemon = daemon
        task = Task { try await daemon.run() }
        // Generous: two cores shared with a parallel test run (and a build) can take seconds.
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if (try? VDPAClient(socketPath: socketPath)) != nil { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw InProcessDaemonError(message: "the daemon did not listen on \(socketPath) within 30 s")
    }

    /// A new client connection.
    public func client() throws -> VDPAClient { try VDPAClient(socketPath: socketPath) }

    /// Graceful shutdown, as on SIGTERM.
    public func stop() async throws {
        await daemon.serviceGroup.triggerGracefulShutdown()
        try await task.value
    }
}

/// Runs blocking work (a ``VDPAClient`` waiting on its socket) on a thread of its own,
/// never on the Swift concurrency pool: the daemon under test runs on that pool, and on
/// a 2-core machine two blocked pool threads would starve it.
public func runOffThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.start()
    }
}

extension InProcessDaemon {
    /// Opens a client connection and runs `body` with it off the concurrency pool.
    public func withClient<T: Sendable>(_ body: @escaping @Sendable (VDPAClient) throws -> T) async throws -> T {
        let path = socketPath
        return try await runOffThePool {
            let client = try VDPAClient(socketPath: path)
            defer { client.close() }
            return try body(client)
        }
    }
}

/// The in-process daemon did not come up.
public struct InProcessDaemonError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

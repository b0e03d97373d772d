import Logging
import ServiceLifecycle
import Synchronization
import VDPASystem

/// Tells systemd (Type=notify) that vdpad is ready once the socket listens, pings the
/// watchdog while the controller answers, and says STOPPING=1 on shutdown.
///
/// The ping is not a timer alone: a probe task makes a round trip through the controller
/// (`probe`) again and again, and a ping goes out only when the last round trip ended less
/// than half the watchdog interval ago. A controller that is stuck (a call that never
/// returns, a deadlock) stops the pings, and systemd restarts vdpad after `WatchdogSec`.
public final class SystemdNotifyService: Service {
    private let notifier: ServiceNotifier
    private let watchdogInterval: Duration?
    private let probe: @Sendable () async -> Void
    private let logger: Logger
    private let ready = AsyncStream<Void>.makeStream()

    /// - Parameter probe: a round trip through what must keep answering (the controller).
    public init(environment: [String: String], logger: Logger, probe: @escaping @Sendable () async -> Void) {
        notifier = ServiceNotifier(environment: environment)
        watchdogInterval = ServiceNotifier.watchdogInterval(environment: environment)
        self.probe = probe
        self.logger = logger
    }

    /// Called when the API socket listens.
    public func markReady() { ready.continuation.yield() }

    public func run() async throws {
        for await _ in ready.stream.cancelOnGracefulShutdown() {
            send(["READY=1", "STATUS=serving the vdpad API"])
            break
        }
        if let watchdogInterval {
            let answers = LastAnswer()
            let probe = self.probe
            // Unstructured: a probe stuck in the controller must not hold up the shutdown.
            let prober = Task {
                while !Task.isCancelled {
                    await probe()
                    answers.instant.withLock { $0 = .now }
                    try? await Task.sleep(for: watchdogInterval / 4)
                }
            }
            defer { prober.cancel() }
            var silentBefore = false
            // The sleep ends early on SIGTERM, so that stopping never waits for a ping.
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    try await cancelWhenGracefulShutdown { try await Task.sleep(for: watchdogInterval / 2) }
                } catch {
                    break
                }
                let silence = ContinuousClock.now - answers.instant.withLock { $0 }
                if silence < watchdogInterval / 2 {
                    send(["WATCHDOG=1"])
                    if silentBefore { logger.notice("The controller answers again; watchdog pings resume") }
                    silentBefore = false
                } else {
                    logger.error("The controller has not answered; no watchdog ping (systemd restarts vdpad when WatchdogSec passes)",
                                 metadata: ["silent_s": "\(silence.components.seconds)"])
                    silentBefore = true
                }
            }
        } else {
            try? await gracefulShutdown()
        }
        send(["STOPPING=1"])
    }

    private func send(_ lines: [String]) {
        var state: [String: String] = [:]
        for line in lines {
            let parts = line.split(separator: "=", maxSplits: 1)
            state[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        do { try notifier.notify(state) } catch {
            logger.warning("sd_notify failed", metadata: ["error": "\(error)"])
        }
    }
}

/// When the probe last came back.
private final class LastAnswer: Sendable {
    let instant = Mutex(ContinuousClock.now)
}

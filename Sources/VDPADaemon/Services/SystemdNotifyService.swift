import Logging
import ServiceLifecycle
import VDPASystem

/// Tells systemd (Type=notify) that vdpad is ready once the socket listens, pings
/// the watchdog at half its interval, and says STOPPING=1 on shutdown.
public final class SystemdNotifyService: Service {
    private let notifier: ServiceNotifier
    private let watchdogInterval: Duration?
    private let logger: Logger
    private let ready = AsyncStream<Void>.makeStream()

    public init(environment: [String: String], logger: Logger) {
        notifier = ServiceNotifier(environment: environment)
        watchdogInterval = ServiceNotifier.watchdogInterval(environment: environment)
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
            // The sleep ends early on SIGTERM, so that stopping never waits for a ping.
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    try await cancelWhenGracefulShutdown { try await Task.sleep(for: watchdogInterval / 2) }
                } catch {
                    break
                }
                send(["WATCHDOG=1"])
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

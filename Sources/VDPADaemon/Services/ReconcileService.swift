import Logging
import ServiceLifecycle
import VDPANetlink

/// Keeps the controller's view of the vdpa bus current: it re-reads the kernel when
/// uevents say something changed (debounced, so a burst costs one re-read) and
/// every `interval`, which also catches changes that raise no uevent (a MAC set by
/// iproute2) and a `vdpa` module loaded after start.
public struct ReconcileService: Service {
    let controller: VDPAController
    let kernel: any VDPAManaging
    let interval: Duration
    let debounce: Duration
    let logger: Logger

    public init(controller: VDPAController, kernel: any VDPAManaging, interval: Duration, debounce: Duration = .milliseconds(50), logger: Logger) {
        self.controller = controller
        self.kernel = kernel
        self.interval = interval
        self.debounce = debounce
        self.logger = logger
    }

    public func run() async throws {
        do {
            try await reconcileUntilShutdown()
        } catch is CancellationError {
            return  // graceful shutdown
        }
    }

    private func reconcileUntilShutdown() async throws {
        let pending = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        try await cancelWhenGracefulShutdown {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask {
                    for await change in kernel.busChanges() {
                        logger.debug("Bus change", metadata: ["action": "\(change.action)", "subsystem": "\(change.subsystem)", "vdpa.dev": "\(change.deviceName ?? "-")"])
                        pending.continuation.yield()
                    }
                }
                group.addTask {
                    // One buffered signal at most: the uevents of a burst (a device add raises
                    // several: vdpa, vhost-vdpa, bind) that arrive during the debounce or the
                    // re-read collapse into one more re-read.
                    for await _ in pending.stream {
                        try await Task.sleep(for: debounce)
                        await controller.resync()
                    }
                }
                group.addTask {
                    while true {
                        try await Task.sleep(for: interval)
                        await controller.resync()
                    }
                }
            }
        }
    }
}

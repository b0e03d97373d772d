import ServiceLifecycle

/// The ports in the daemon's lifecycle: the daemon starts them (each its socket and a thread
/// blocked in `accept(2)`, woken by the socket's shutdown) before it says it is ready; this
/// service stops them at graceful shutdown: consumers disconnected, sockets removed, devices
/// released. First in the service group, so it stops last, after the API server: no `port_add`
/// can race the stop.
public struct PortService: Service {
    let controller: VDPAController

    public init(controller: VDPAController) { self.controller = controller }

    public func run() async throws {
        // Wait for the graceful shutdown (or cancellation), then stop every port.
        try? await gracefulShutdown()
        await controller.stopPorts()
    }
}

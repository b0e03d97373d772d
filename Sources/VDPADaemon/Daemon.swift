import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals
import VDPANetlink
import VDPAStore
import VDPASystem
import VDPAVhost

/// vdpad's version, reported by `daemon_status` and `--version`.
public let vdpadVersion = "0.1.0"

/// Assembles the daemon from its parts.
public struct Daemon: Sendable {
    public let controller: VDPAController
    public let serviceGroup: ServiceGroup
    /// Held while the daemon runs: one daemon per state directory.
    private let stateLock: StateDirectoryLock

    /// Opens the state, reconciles with the kernel and builds the services; `run()` serves.
    public init(configuration: DaemonConfiguration, kernel: any VDPAManaging, environment: [String: String],
                shutdownSignals: [UnixSignal] = [.sigterm, .sigint], vhostOpener: any VhostVDPAOpening = VhostVDPADeviceOpener(),
                logger: Logger) async throws {
        AllocatorTuning.limitArenas()
        // The state directory is vdpad's alone: a real directory of its uid that nobody else
        // can write, and no other vdpad using it.
        do {
            try FileSystem.createDirectory(configuration.stateDirectory, mode: 0o700)
            try PrivateDirectory.check(configuration.stateDirectory, what: "state_dir")
            stateLock = try StateDirectoryLock(directory: configuration.stateDirectory)
        } catch {
            logger.critical("Cannot use the state directory", metadata: ["state_dir": "\(configuration.stateDirectory)", "error": "\(error)"])
            throw error
        }
        let store: StateStore
        do {
            store = try StateStore(directory: configuration.stateDirectory)
        } catch {
            logger.critical("Cannot open the state store", metadata: ["error": "\(error)"])
            throw error
        }
        let policy = LoadedPolicy.load(profilesDirectory: configuration.profilesDirectory, quirksDirectory: configuration.quirksDirectory, logger: logger)
        controller = VDPAController(
            kernel: kernel, store: store,
            settings: .init(restoreOnStart: configuration.restoreOnStart, socketPath: configuration.socketPath,
                            stateDirectory: configuration.stateDirectory, version: vdpadVersion,
                            portsDirectory: configuration.portsDirectory, portsGroup: configuration.portsGroup,
                            portMemoryLimit: configuration.portMemoryLimit, portBusyPoll: configuration.portBusyPoll),
            policy: policy, vhostOpener: vhostOpener, logger: logger)
        try await controller.reconcile()
        await controller.startPorts()
        let notify = SystemdNotifyService(environment: environment, logger: logger, probe: { [controller = self.controller] in await controller.ping() })
        let server = RPCServer(
            settings: .init(socketPath: configuration.socketPath, socketMode: configuration.socketMode,
                            socketGroup: configuration.socketGroup, maximumRequestBytes: configuration.maximumRequestBytes,
                            idleTimeout: .seconds(Int64(configuration.clientIdleTimeoutSeconds)),
                            authorization: try configuration.authorization(),
                            maximumConnectionsPerUser: configuration.maximumConnectionsPerUser,
                            maximumSubscriptionsPerUser: configuration.maximumSubscriptionsPerUser),
            dispatcher: RPCDispatcher(controller: controller), events: controller.events, logger: logger,
            onListening: { notify.markReady() })
        let reconciler = ReconcileService(controller: controller, kernel: kernel,
                                          interval: .seconds(configuration.resyncIntervalSeconds), logger: logger)
        serviceGroup = ServiceGroup(configuration: .init(
            services: [.init(service: PortService(controller: controller)), .init(service: notify), .init(service: server), .init(service: reconciler)],
            gracefulShutdownSignals: shutdownSignals,
            logger: logger))
    }

    /// Serves until a shutdown signal (or `serviceGroup.triggerGracefulShutdown()`).
    public func run() async throws {
        defer { stateLock.release() }
        do {
            try await serviceGroup.run()
        } catch {
            await controller.stopPorts()
            throw error
        }
        await controller.stopPorts()
    }

    /// Builds and runs the daemon until SIGTERM/SIGINT.
    public static func run(configuration: DaemonConfiguration, kernel: any VDPAManaging, environment: [String: String], logger: Logger) async throws {
        try await Daemon(configuration: configuration, kernel: kernel, environment: environment, logger: logger).run()
        logger.info("vdpad stopped")
    }
}

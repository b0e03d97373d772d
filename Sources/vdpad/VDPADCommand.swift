import ArgumentParser
import Foundation
import Logging
import VDPADaemon
import VDPANetlink

/// `vdpad`: the vDPA management daemon. Everything it does lives in VDPADaemon;
/// this reads the configuration, sets up logging and runs the daemon.
@main
struct VDPADCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vdpad",
        abstract: "The vDPA management daemon: JSON-RPC 2.0 on a Unix socket over the kernel's vdpa bus.",
        version: vdpadVersion)

    @Option(name: .long, help: "Configuration file (key = value lines).")
    var config: String = "/etc/vdpad/vdpad.conf"

    @Option(name: .long, help: "API socket path (overrides the file's 'socket').")
    var socket: String?

    @Option(name: .customLong("state-dir"), help: "Durable state directory (overrides 'state_dir').")
    var stateDirectory: String?

    @Option(name: .customLong("restore-on-start"), help: "Recreate vdpad's devices the kernel lost: true or false.")
    var restoreOnStart: Bool?

    @Option(name: .customLong("resync-interval"), help: "Seconds between full re-reads of the kernel.")
    var resyncInterval: Int?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?

    @Option(name: .customLong("sysfs-root"), help: ArgumentHelp("Root of sysfs.", visibility: .hidden))
    var sysfsRoot: String = "/sys"

    func run() async throws {
        var settings = DaemonConfiguration()
        do {
            if FileManager.default.fileExists(atPath: config) {
                try settings.apply(fileText: try String(contentsOfFile: config, encoding: .utf8), fileName: config)
            }
            if let socket { try settings.set("socket", socket) }
            if let stateDirectory { try settings.set("state_dir", stateDirectory) }
            if let restoreOnStart { settings.restoreOnStart = restoreOnStart }
            if let resyncInterval { try settings.set("resync_interval", String(resyncInterval)) }
            if let logLevel { try settings.set("log_level", logLevel) }
            _ = try settings.authorization()
        } catch let error as DaemonConfiguration.ParseError {
            throw ValidationError(error.description)
        } catch let error as DaemonConfiguration.ValueError {
            throw ValidationError(error.message)
        }
        let level = Logger.Level(rawValue: settings.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "vdpad")
        logger.info("Starting", metadata: ["version": "\(vdpadVersion)", "config": "\(config)", "socket": "\(settings.socketPath)", "state_dir": "\(settings.stateDirectory)"])
        let kernel = LinuxVDPAKernel(sysfs: VDPASysfs(root: sysfsRoot), logger: logger)
        try await Daemon.run(configuration: settings, kernel: kernel, environment: ProcessInfo.processInfo.environment, logger: logger)
    }
}

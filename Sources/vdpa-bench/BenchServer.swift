import ArgumentParser
import Foundation
import Logging
import VDPADaemon
import VDPANetlink
import VDPARPC
import VDPATestSupport

/// The server side of `vdpa-bench api`, in a process of its own so that its memory is
/// measured alone: either the real daemon over the fake kernel, or the reference,
/// the same socket server answering canned replies (the transport alone).
struct BenchServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve the API for the benchmark (started by `vdpa-bench api`).",
        shouldDisplay: false)

    @Option(help: "Socket path.") var socket: String
    @Option(name: .customLong("state-dir"), help: "State directory (daemon mode).") var stateDirectory: String?
    @Option(name: .customLong("canned"), parsing: .singleValue,
            help: "METHOD=FILE: answer METHOD with the line in FILE (reference mode).")
    var cannedReplies: [String] = []
    @Option(name: .customLong("max-connections-per-user"), help: "API connections one uid may hold (daemon mode).")
    var maximumConnectionsPerUser = DaemonConfiguration().maximumConnectionsPerUser
    @Option(name: .customLong("max-subscriptions-per-user"), help: "Event subscriptions one uid may hold (daemon mode).")
    var maximumSubscriptionsPerUser = DaemonConfiguration().maximumSubscriptionsPerUser
    @Option(name: .customLong("resync-interval"), help: "Seconds between full re-reads of the kernel (daemon mode).")
    var resyncIntervalSeconds = 3600

    func run() async throws {
        var logger = Logger(label: "vdpa-bench-server")
        logger.logLevel = .warning
        if cannedReplies.isEmpty {
            var configuration = DaemonConfiguration()
            configuration.socketPath = socket
            configuration.stateDirectory = stateDirectory ?? FileManager.default.temporaryDirectory.path + "/vdpa-bench-state"
            configuration.resyncIntervalSeconds = resyncIntervalSeconds
            configuration.maximumConnectionsPerUser = maximumConnectionsPerUser
            configuration.maximumSubscriptionsPerUser = maximumSubscriptionsPerUser
            let daemon = try await Daemon(configuration: configuration, kernel: FakeVDPAKernel(), environment: [:], logger: logger)
            try await daemon.run()
        } else {
            var replies: [String: [UInt8]] = [:]
            for entry in cannedReplies {
                guard let equals = entry.firstIndex(of: "=") else { throw ValidationError("--canned wants METHOD=FILE") }
                let data = try Data(contentsOf: URL(fileURLWithPath: String(entry[entry.index(after: equals)...])))
                replies[String(entry[..<equals])] = Array(data)
            }
            let server = RPCServer(settings: .init(socketPath: socket), dispatcher: CannedReplies(replies: replies),
                                   events: EventHub(), logger: logger)
            try await server.run()
        }
    }
}

/// Answers each request with the stored reply of its method, found by a byte search:
/// no JSON decoding, no controller, so what is measured is the socket server alone.
struct CannedReplies: RPCLineHandling {
    let replies: [String: [UInt8]]
    private static let methodKey = Array(#""method":""#.utf8)

    func handle(line: [UInt8], caller: RPCCaller, authorization: RPCAuthorization?) async -> RPCDispatchOutcome {
        guard let start = Self.range(of: Self.methodKey, in: line)?.upperBound,
              let end = line[start...].firstIndex(of: UInt8(ascii: "\"")),
              let reply = replies[String(decoding: line[start..<end], as: UTF8.self)] else {
            return .reply(Array(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"not canned"}}"#.utf8))
        }
        return .reply(reply)
    }

    static func range(of needle: [UInt8], in haystack: [UInt8]) -> Range<Int>? {
        guard needle.count <= haystack.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start..<(start + needle.count)].elementsEqual(needle) {
            return start..<(start + needle.count)
        }
        return nil
    }
}

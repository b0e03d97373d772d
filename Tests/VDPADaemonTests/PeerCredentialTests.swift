import Foundation
import Testing
import VDPAClient
import VDPADaemon
import VDPARPC
import VDPASystem
import VDPATestSupport

/// Who may call what, decided from peer credentials: the rules, the dispatcher's refusals,
/// and clients of other uids over the real sockets (vdpactl run under setpriv).
@Suite(.serialized) struct PeerCredentialTests {
    static let admins = RPCAuthorization.Group(name: "vdpad", id: 2000)
    static let readers = RPCAuthorization.Group(name: "vdpad-ro", id: 2001)
    let authorization = RPCAuthorization(adminGroup: admins, readGroup: readers, daemonUID: 0)

    @Test func accessFollowsTheUidAndTheGroups() {
        func access(_ uid: UInt32, _ groups: Set<UInt32>) -> RPCAccess {
            authorization.access(of: PeerCredentials(pid: 1, uid: uid, gid: groups.first ?? 100), groups: groups)
        }
        #expect(access(0, [0]) == .admin)
        #expect(access(1000, [100, 2000]) == .admin)
        #expect(access(1000, [100, 2001]) == .read)
        #expect(access(1000, [2000, 2001]) == .admin)
        #expect(access(1000, [100]) == .none)
        #expect(authorization.access(of: nil, groups: [2000]) == .none)
        // The daemon's own user, when it is not root.
        let unprivileged = RPCAuthorization(adminGroup: nil, readGroup: nil, daemonUID: 990)
        #expect(unprivileged.access(of: PeerCredentials(pid: 1, uid: 990, gid: 990), groups: [990]) == .admin)
        #expect(unprivileged.access(of: PeerCredentials(pid: 1, uid: 991, gid: 990), groups: [990]) == .none)
    }

    @Test func everyMethodThatChangesSomethingNeedsAdmin() {
        let reads = Set(VDPAMethod.allCases.filter { $0.requiredAccess == .read })
        let readWords = ["list", "get", "status", "methods", "export", "check", "baseline", "test", "subscribe"]
        for method in reads { #expect(readWords.contains { method.rawValue.contains($0) }, "\(method) is read-only but reads like a change") }
        #expect(VDPAMethod.devVstatsGet.requiredAccess == .admin)
        for method in [VDPAMethod.devAdd, .devDel, .devSet, .devBind, .profileAdd, .profileDel, .portAdd, .portDel, .portSet,
                       .vqStateSave, .vqStateImport, .vqStateRestore, .vqStateDel] {
            #expect(method.requiredAccess == .admin, "\(method)")
        }
    }

    @Test func theDispatcherRefusesBeyondTheCallersAccess() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        let dispatcher = RPCDispatcher(controller: daemon.daemon.controller)
        let reader = RPCCaller(credentials: PeerCredentials(pid: 42, uid: 1000, gid: 2001), access: .read)
        let stranger = RPCCaller(credentials: PeerCredentials(pid: 43, uid: 1001, gid: 100), access: .none)
        func answer(_ line: String, _ caller: RPCCaller) async throws -> [String: Any] {
            let outcome = await dispatcher.handle(line: Array(line.utf8), caller: caller, authorization: authorization)
            let line = try #require(outcome.responseLine)
            return try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
        }
        let list = try await answer(#"{"jsonrpc":"2.0","id":1,"method":"dev_list"}"#, reader)
        #expect(list["result"] != nil)
        let add = try await answer(#"{"jsonrpc":"2.0","id":2,"method":"dev_add","params":{"name":"x","mgmtdev":"vdpasim_net"}}"#, reader)
        let addError = try #require(add["error"] as? [String: Any])
        #expect(addError["code"] as? Int == RPCErrorCode.permissionDenied.rawValue)
        #expect((addError["message"] as? String)?.contains("dev_add needs admin access: uid 1000 (pid 42) may only read") == true)
        #expect((addError["data"] as? [String: Any])?["operation"] as? String == "dev_add")
        let refused = try await answer(#"{"jsonrpc":"2.0","id":3,"method":"dev_list"}"#, stranger)
        #expect(((refused["error"] as? [String: Any])?["message"] as? String)?.contains("uid 1001 (pid 43) may not call vdpad") == true)
        // Nothing was created.
        #expect(try await daemon.withClient { try $0.call(.devList, as: DevListResult.self) }.devices.isEmpty)
        try await daemon.stop()
    }

    // MARK: other uids over the real sockets

    /// vdpactl, built beside this test bundle.
    static var vdpactlPath: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("vdpactl").path
    }

    /// `vdpactl ARGS` as uid:gid with no supplementary groups.
    static func vdpactl(asUID uid: Int, gid: Int, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await runOffThePool {
            let result = try ChildProcess.run("/usr/bin/setpriv", ["--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", vdpactlPath] + arguments)
            return (result.status, result.output)
        }
    }

    @Test func clientsOfOtherUidsGetWhatTheirGroupsAllow() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.vdpactlPath), "no vdpactl at \(Self.vdpactlPath)")
        // nobody (65534) is in nogroup (65534), the read group; daemon (1) is in neither group.
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel()) { configuration in
            configuration.socketMode = 0o666
            configuration.readGroup = "nogroup"
        }
        let socket = daemon.socketPath
        let read = try await Self.vdpactl(asUID: 65534, gid: 65534, ["--socket", socket, "-j", "dev", "list"])
        #expect(read.status == 0, "\(read.output)")
        let add = try await Self.vdpactl(asUID: 65534, gid: 65534, ["--socket", socket, "dev", "add", "name", "x", "mgmtdev", "vdpasim_net"])
        #expect(add.status != 0 && add.output.contains("dev_add needs admin access: uid 65534"), "\(add.output)")
        let stranger = try await Self.vdpactl(asUID: 1, gid: 1, ["--socket", socket, "dev", "list"])
        #expect(stranger.status != 0 && stranger.output.contains("uid 1 (pid"), "\(stranger.output)")
        #expect(try await daemon.withClient { try $0.call(.devList, as: DevListResult.self) }.devices.isEmpty)
        try await daemon.stop()
    }

    @Test func aPortServesOnlyItsAllowedConsumer() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.vdpactlPath), "no vdpactl at \(Self.vdpactlPath)")
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel()) { configuration in
            configuration.portsGroup = "nogroup"
        }
        let port = try await daemon.withClient {
            try $0.call(.portAdd, PortAddParams(name: "vm", consumerUser: "daemon"), as: PortInfo.self)
        }
        #expect(port.allowedConsumer == PortInfo.AllowedConsumer(uid: 1, gid: nil, refused: 0))
        // The socket lets nogroup in; the port then refuses nobody, who is not its consumer.
        let attempt = try await Self.vdpactl(asUID: 65534, gid: 65534, ["--socket", port.socket, "dev", "list"])
        #expect(attempt.status != 0, "\(attempt.output)")
        var refused = 0
        for _ in 0..<100 where refused == 0 {
            refused = try await daemon.withClient { try $0.call(.portGet, PortNameParams(name: "vm"), as: PortInfo.self) }.allowedConsumer?.refused ?? 0
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(refused == 1)
        // Kept across a restart of the daemon.
        let ports = try await daemon.withClient { try $0.call(.portList, as: PortListResult.self) }
        #expect(ports.ports.first?.allowedConsumer?.uid == 1)
        let unknown = try await daemon.withClient { client -> RPCErrorObject? in
            do { _ = try client.call(.portAdd, PortAddParams(name: "vm2", consumerUser: "no-such-user-here"), as: PortInfo.self); return nil } catch let error as RPCErrorObject { return error }
        }
        #expect(unknown?.errorCode == .invalidParams && unknown?.data?.parameter == "consumer_user")
        try await daemon.stop()
    }
}

/// One uid's share of the daemon: connections and event subscriptions.
@Suite(.serialized) struct PerUserLimitTests {
    @Test func connectionsAndSubscriptionsPastAUsersShareAreRefused() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel()) { configuration in
            configuration.maximumConnectionsPerUser = 3
            configuration.maximumSubscriptionsPerUser = 1
        }
        let socket = daemon.socketPath
        try await runOffThePool {
            /// A connection that was admitted. (Connections closed a moment ago, such as the
            /// start-up probe's, hold their place until the daemon has seen them go.)
            func admitted() throws -> VDPAClient {
                for _ in 0..<250 {
                    let client = try VDPAClient(socketPath: socket)
                    if (try? client.call(.daemonStatus, as: DaemonStatusResult.self)) != nil { return client }
                    client.close()
                    Thread.sleep(forTimeInterval: 0.02)
                }
                throw VDPAClientError.connectionClosed
            }
            let held = try (0..<3).map { _ in try admitted() }
            // The fourth is told why, unasked, then closed.
            let fourth = try UnixMessageSocket(connectingTo: socket)
            var bytes: [UInt8] = []
            while bytes.last != UInt8(ascii: "\n"), let byte = try? fourth.receive(exactly: 1).bytes { bytes += byte }
            let line = String(decoding: bytes, as: UTF8.self)
            #expect(line.contains("\"code\":\(RPCErrorCode.tryAgain.rawValue)") && line.contains("the most one user may"), "\(line)")
            #expect(throws: (any Error).self) { _ = try fourth.receive(exactly: 1) }
            fourth.close()
            // One subscription per user: the second is refused, its connection carries on.
            let subscribe = #"{"jsonrpc":"2.0","id":2,"method":"events_subscribe"}"#
            let first = try held[0].sendRaw(Array((subscribe + "\n").utf8)).map { String(decoding: $0, as: UTF8.self) }
            #expect(first?.contains("\"subscribed\":true") == true, "\(String(describing: first))")
            let second = try held[1].sendRaw(Array((subscribe + "\n").utf8)).map { String(decoding: $0, as: UTF8.self) }
            #expect(second?.contains("event subscriptions, the most one user may") == true, "\(String(describing: second))")
            _ = try held[1].call(.daemonStatus, as: DaemonStatusResult.self)
            // A connection closed frees its place.
            held[2].close()
            #expect(throws: Never.self) { try admitted().close() }
            for client in held { client.close() }
        }
        try await daemon.stop()
    }
}

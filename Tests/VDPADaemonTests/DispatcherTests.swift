import Foundation
import Testing
import VDPARPC
import VDPATestSupport
@testable import VDPADaemon

/// JSON-RPC 2.0 rules, checked on the dispatcher without a socket.
@Suite struct DispatcherTests {
    func reply(_ line: String) async throws -> [String: Any] {
        let dispatcher = RPCDispatcher(controller: try await makeController(kernel: FakeVDPAKernel()))
        guard let bytes = await dispatcher.handle(line: Array(line.utf8)).responseLine else {
            Issue.record("no reply to \(line)")
            return [:]
        }
        return try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    func errorCode(_ line: String) async throws -> Int? {
        (try await reply(line)["error"] as? [String: Any])?["code"] as? Int
    }

    @Test func parseError() async throws {
        #expect(try await errorCode("{not json") == -32700)
    }

    @Test(arguments: [#"[]"#, #"{"jsonrpc":"2.0","id":1}"#, #"{"jsonrpc":"1.0","id":1,"method":"rpc_methods"}"#,
                      #"{"jsonrpc":"2.0","id":null,"method":"rpc_methods"}"#, #"{"jsonrpc":"2.0","id":{},"method":"rpc_methods"}"#])
    func invalidRequest(_ line: String) async throws {
        #expect(try await errorCode(line) == -32600)
    }

    @Test func unknownMethod() async throws {
        #expect(try await errorCode(#"{"jsonrpc":"2.0","id":"a","method":"dev_explode"}"#) == -32601)
    }

    @Test(arguments: [#"{"jsonrpc":"2.0","id":1,"method":"dev_get"}"#, #"{"jsonrpc":"2.0","id":1,"method":"dev_get","params":{"name":5}}"#,
                      #"{"jsonrpc":"2.0","id":1,"method":"dev_vstats_get","params":{"name":"x","qidx":-1}}"#,
                      #"{"jsonrpc":"2.0","id":1,"method":"dev_add","params":{"name":"x"}}"#])
    func invalidParams(_ line: String) async throws {
        #expect(try await errorCode(line) == -32602)
    }

    @Test func idIsEchoedAsGiven() async throws {
        #expect(try await reply(#"{"jsonrpc":"2.0","id":"abc","method":"rpc_methods"}"#)["id"] as? String == "abc")
        #expect(try await reply(#"{"jsonrpc":"2.0","id":7,"method":"dev_list"}"#)["id"] as? Int == 7)
    }

    @Test func notificationsGetNoReply() async throws {
        let dispatcher = RPCDispatcher(controller: try await makeController(kernel: FakeVDPAKernel()))
        guard case .none = await dispatcher.handle(line: Array(#"{"jsonrpc":"2.0","method":"daemon_status"}"#.utf8)) else {
            Issue.record("a notification was answered")
            return
        }
    }

    @Test func rpcMethodsListsEveryMethod() async throws {
        let methods = (try await reply(#"{"jsonrpc":"2.0","id":1,"method":"rpc_methods"}"#)["result"] as? [String: Any])?["methods"] as? [String]
        #expect(methods == VDPAMethod.allCases.map(\.rawValue))
    }
}

@Suite struct ConfigurationTests {
    @Test func parsesTheShippedFile() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../etc/vdpad/vdpad.conf").path
        var configuration = DaemonConfiguration()
        try configuration.apply(fileText: try String(contentsOfFile: path, encoding: .utf8), fileName: path)
        #expect(configuration == DaemonConfiguration())
    }

    @Test func reportsFileAndLine() {
        var configuration = DaemonConfiguration()
        #expect(throws: DaemonConfiguration.ParseError(file: "f", line: 2, message: "unknown key 'sokcet' (known: admin_group, client_idle_timeout, log_level, max_connections_per_user, max_request_bytes, max_subscriptions_per_user, port_busy_poll, port_memory_limit, ports_dir, ports_group, profiles_dir, quirks_dir, read_group, restore_on_start, resync_interval, socket, socket_group, socket_mode, state_dir)")) {
            try configuration.apply(fileText: "# comment\nsokcet = /x\n", fileName: "f")
        }
        #expect(throws: DaemonConfiguration.ParseError.self) { try configuration.apply(fileText: "restore_on_start = maybe", fileName: "f") }
        #expect(throws: DaemonConfiguration.ParseError.self) { try configuration.apply(fileText: "just words", fileName: "f") }
    }

    @Test func valuesAndComments() throws {
        var configuration = DaemonConfiguration()
        try configuration.apply(fileText: "socket = /run/x.sock # trailing\nsocket_mode = 0600\nrestore_on_start = no\nresync_interval = 5\n", fileName: "f")
        #expect(configuration.socketPath == "/run/x.sock")
        #expect(configuration.socketMode == 0o600)
        #expect(configuration.restoreOnStart == false)
        #expect(configuration.resyncIntervalSeconds == 5)
    }
}

import Foundation
import Testing
import VDPAClient
import VDPANetlink
import VDPARPC
import VDPASystem
import VDPADaemon
import VDPATestSupport
import VirtioModel

/// The daemon over its real Unix socket (fake kernel underneath).
@Suite struct SocketIntegrationTests {
    @Test func lifecycleOverTheSocket() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        try await daemon.withClient { client in
            let mgmt = try client.call(.mgmtdevList, MgmtdevListParams(), as: MgmtdevListResult.self)
            #expect(mgmt.mgmtdevs.map(\.handle) == ["vdpasim_net", "vdpasim_blk"])
            let added = try client.call(.devAdd, DevAddParams(name: "vdpa0", mgmtdev: "vdpasim_net", mac: "00:11:22:33:44:55"), as: DeviceInfo.self)
            #expect(added.managed)
            let list = try client.call(.devList, DevListParams(), as: DevListResult.self)
            #expect(list.devices.map(\.name) == ["vdpa0"])
            let error = #expect(throws: RPCErrorObject.self) {
                try client.call(.devAdd, DevAddParams(name: "vdpa9", mgmtdev: "nosuch"), as: DeviceInfo.self)
            }
            #expect(error?.errorCode == .notFound)
            #expect(error?.data?.extack == "vdpa: Fail to find the specified management device")
            _ = try client.call(.devDel, DevDelParams(name: "vdpa0"), as: DevDelResult.self)
        }
        try await daemon.stop()
        #expect(!FileManager.default.fileExists(atPath: daemon.socketPath))
    }

    @Test func socketIsGroupReadWriteOnly() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        let attributes = try FileManager.default.attributesOfItem(atPath: daemon.socketPath)
        #expect((attributes[.posixPermissions] as? Int) == 0o660)
        try await daemon.stop()
    }

    @Test func subscribersSeeChangesMadeBehindTheDaemonsBack() async throws {
        let kernel = FakeVDPAKernel()
        let daemon = try await InProcessDaemon(kernel: kernel)
        let subscribed = AsyncStream<Void>.makeStream()
        let received = Task {
            try await daemon.withClient { subscriber -> [DeviceEvent] in
                var events: [DeviceEvent] = []
                try subscriber.followEvents(timeoutMilliseconds: 10_000, onSubscribed: { subscribed.continuation.finish() }) { event in
                    events.append(event)
                    return events.count < 2
                }
                return events
            }
        }
        for await _ in subscribed.stream {}
        try kernel.createExternally(DeviceCreateRequest(name: "theirs", managementDevice: .init(bus: nil, name: "vdpasim_net")))
        _ = try await daemon.withClient { try $0.call(.devAdd, DevAddParams(name: "ours", mgmtdev: "vdpasim_net"), as: DeviceInfo.self) }
        let events = try await received.value
        #expect(Set(events.map(\.device)) == ["theirs", "ours"])
        #expect(events.first { $0.device == "theirs" }?.origin == "external")
        #expect(events.first { $0.device == "ours" }?.origin == "vdpad")
        try await daemon.stop()
    }

    @Test func oversizedRequestClosesOnlyThatConnection() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel(), maximumRequestBytes: 4096)
        try await daemon.withClient { abusive in
            let reply = try abusive.sendRaw([UInt8](repeating: UInt8(ascii: "x"), count: 10_000))
            let object = try JSONSerialization.jsonObject(with: Data(try #require(reply))) as? [String: Any]
            #expect((object?["error"] as? [String: Any])?["code"] as? Int == RPCErrorCode.requestTooLarge.rawValue)
            #expect(try abusive.sendRaw(Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"rpc_methods\"}\n".utf8), timeoutMilliseconds: 2000) == nil)
        }
        let version = try await daemon.withClient { try $0.call(.daemonStatus, as: DaemonStatusResult.self).version }
        #expect(version == vdpadVersion)
        try await daemon.stop()
    }

    @Test func malformedInputGetsErrorsAndTheConnectionCarriesOn() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        try await daemon.withClient { client in
            for (line, code) in [("{not json", RPCErrorCode.parseError), ("[]", .invalidRequest),
                                 ("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"no_such\"}", .methodNotFound),
                                 ("{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"dev_get\",\"params\":{\"nam\":1}}", .invalidParams)] {
                let reply = try #require(try client.sendRaw(Array((line + "\n").utf8)))
                let object = try JSONSerialization.jsonObject(with: Data(reply)) as? [String: Any]
                #expect((object?["error"] as? [String: Any])?["code"] as? Int == code.rawValue, "\(line)")
            }
            #expect(try client.call(.rpcMethods, as: RPCMethodsResult.self).methods.count == VDPAMethod.allCases.count)
        }
        try await daemon.stop()
    }

    @Test func aClientThatNeverReadsDoesNotStallOthers() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        try await daemon.withClient { client in
            let stalled = try UnixStreamConnection(path: daemon.socketPath)
            defer { stalled.close() }
            // Many requests whose answers this client never reads.
            try stalled.writeAll(Array(String(repeating: "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon_status\"}\n", count: 2000).utf8))
            for _ in 0..<50 { _ = try client.call(.rpcMethods, as: RPCMethodsResult.self) }
        }
        try await daemon.stop()
    }

    @Test func idleClientsAreDisconnected() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel(), idleTimeout: 1)
        let path = daemon.socketPath
        let bytes = try await runOffThePool { try UnixStreamConnection(path: path).read(timeoutMilliseconds: 5000) }
        #expect(bytes.isEmpty)  // end of stream: the daemon closed it
        try await daemon.stop()
    }

    @Test func stateSurvivesARestart() async throws {
        let kernel = FakeVDPAKernel()
        let directory = InProcessDaemon.temporaryDirectory()
        let first = try await InProcessDaemon(kernel: kernel, stateDirectory: directory)
        _ = try await first.withClient { try $0.call(.devAdd, DevAddParams(name: "vdpa0", mgmtdev: "vdpasim_net", mtu: 1400), as: DeviceInfo.self) }
        try await first.stop()
        let second = try await InProcessDaemon(kernel: kernel, stateDirectory: directory)
        let device = try await second.withClient { try $0.call(.devGet, DeviceNameParams(name: "vdpa0"), as: DeviceInfo.self) }
        #expect(device.managed)
        #expect(device.record?.mtu == 1400)
        try await second.stop()
    }
}

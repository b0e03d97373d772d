import Foundation
import Testing
import VDPAClient
import VDPANetlink
import VDPARPC
import VDPASystem
import VDPATestSupport
import VirtioModel

/// The daemon over its real Unix socket (fake kernel underneath).
@Suite struct SocketIntegrationTests {
    @Test func lifecycleOverTheSocket() async throws {
        let kernel = FakeVDPAKernel()
        let daemon = try await InProcessDaemon(kernel: kernel)
        let client = try daemon.client()
        let mgmt = try client.call(.mgmtdevList, MgmtdevListParams(), as: MgmtdevListResult.self)
        #expect(mgmt.mgmtdevs.map(\.handle) == ["vdpasim_net", "vdpasim_blk"])
        let added = try client.call(.devAdd, DevAddParams(name: "vdpa0", mgmtdev: "vdpasim_net", mac: "00:11:22:33:44:55"), as: DeviceInfo.self)
        #expect(added.managed)
        let list = try client.call(.devList, DevListParams(), as: DevListResult.self)
        #expect(list.devices.map(\.name) == ["vdpa0"])
        do {
            _ = try client.call(.devAdd, DevAddParams(name: "vdpa9", mgmtdev: "nosuch"), as: DeviceInfo.self)
            Issue.record("expected an error")
        } catch let error as RPCErrorObject {
            #expect(error.errorCode == .notFound)
            #expect(error.data?.extack == "vdpa: Fail to find the specified management device")
        }
        _ = try client.call(.devDel, DevDelParams(name: "vdpa0"), as: DevDelResult.self)
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
        let subscriber = try daemon.client()
        let received = Task.detached { () -> [DeviceEvent] in
            var events: [DeviceEvent] = []
            try subscriber.followEvents(timeoutMilliseconds: 5000) { event in
                events.append(event)
                return events.count < 2
            }
            return events
        }
        try await Task.sleep(for: .milliseconds(200))
        try kernel.createExternally(DeviceCreateRequest(name: "theirs", managementDevice: .init(bus: nil, name: "vdpasim_net")))
        let client = try daemon.client()
        _ = try client.call(.devAdd, DevAddParams(name: "ours", mgmtdev: "vdpasim_net"), as: DeviceInfo.self)
        let events = try await received.value
        #expect(Set(events.map(\.device)) == ["theirs", "ours"])
        #expect(events.first { $0.device == "theirs" }?.origin == "external")
        #expect(events.first { $0.device == "ours" }?.origin == "vdpad")
        try await daemon.stop()
    }

    @Test func oversizedRequestClosesOnlyThatConnection() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel(), maximumRequestBytes: 4096)
        let healthy = try daemon.client()
        let abusive = try daemon.client()
        let reply = try abusive.sendRaw([UInt8](repeating: UInt8(ascii: "x"), count: 10_000))
        let object = try JSONSerialization.jsonObject(with: Data(try #require(reply))) as? [String: Any]
        #expect((object?["error"] as? [String: Any])?["code"] as? Int == RPCErrorCode.requestTooLarge.rawValue)
        #expect(try abusive.sendRaw(Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"rpc_methods\"}\n".utf8), timeoutMilliseconds: 2000) == nil)
        #expect(try healthy.call(.daemonStatus, as: DaemonStatusResult.self).version == "0.1.0")
        try await daemon.stop()
    }

    @Test func aClientThatNeverReadsDoesNotStallOthers() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        let stalled = try UnixStreamConnection(path: daemon.socketPath)
        // Many requests whose answers this client never reads.
        let burst = Array(String(repeating: "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon_status\"}\n", count: 2000).utf8)
        try stalled.writeAll(burst)
        let client = try daemon.client()
        for _ in 0..<50 { _ = try client.call(.rpcMethods, as: RPCMethodsResult.self) }
        stalled.close()
        try await daemon.stop()
    }

    @Test func idleClientsAreDisconnected() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel(), idleTimeout: 1)
        let idle = try UnixStreamConnection(path: daemon.socketPath)
        let bytes = try idle.read(timeoutMilliseconds: 5000)
        #expect(bytes.isEmpty)  // end of stream: the daemon closed it
        try await daemon.stop()
    }

    @Test func stateSurvivesARestart() async throws {
        let kernel = FakeVDPAKernel()
        let directory = InProcessDaemon.temporaryDirectory()
        let first = try await InProcessDaemon(kernel: kernel, stateDirectory: directory)
        _ = try first.client().call(.devAdd, DevAddParams(name: "vdpa0", mgmtdev: "vdpasim_net", mtu: 1400), as: DeviceInfo.self)
        try await first.stop()
        let second = try await InProcessDaemon(kernel: kernel, stateDirectory: directory)
        let device = try second.client().call(.devGet, DeviceNameParams(name: "vdpa0"), as: DeviceInfo.self)
        #expect(device.managed)
        #expect(device.record?.mtu == 1400)
        try await second.stop()
    }
}

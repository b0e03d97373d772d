import Foundation
import Synchronization
import Testing
import VDPACtl
import VDPADaemon
import VDPANetlink
import VDPARPC
import VDPATestSupport
import VirtioModel

/// vdpactl's entry point against a real daemon on a real socket, over the fake kernel.
@Suite struct IntegrationTests {
    private func object(_ value: Any, _ keys: String...) -> [String: Any]? {
        var current: Any? = value
        for key in keys { current = (current as? [String: Any])?[key] }
        return current as? [String: Any]
    }

    @Test func deviceLifecycle() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        let added = try await daemon.vdpactl("dev", "add", "name", "vdpa0", "mgmtdev", "vdpasim_net", "mac", "52:54:00:00:00:10", "mtu", "1400")
        #expect(added.status == .success, "\(added)")
        #expect(added.stdout.isEmpty && added.stderr.isEmpty)

        let shown = try await daemon.vdpactl("-j", "dev", "show", "vdpa0")
        #expect(shown.status == .success, "\(shown)")
        let device = try #require(object(try shown.json(), "dev", "vdpa0"))
        #expect(device["type"] as? String == "network")
        #expect(device["mgmtdev"] as? String == "vdpasim_net")
        #expect(device["max_vqs"] as? Int == 3)
        #expect(Set(device.keys) == ["type", "mgmtdev", "vendor_id", "max_vqs", "max_vq_size"])

        let text = try await daemon.vdpactl("dev")
        #expect(text.stdout == """
            vdpa0: type network mgmtdev vdpasim_net vendor_id 0 max_vqs 3 max_vq_size 256
              driver vhost_vdpa vhost_vdpa /dev/vhost-vdpa-0 managed true

            """)

        // Bound to vhost_vdpa nothing is negotiated yet; virtio_vdpa negotiates.
        let before = try await daemon.vdpactl("-j", "dev", "config", "show", "vdpa0")
        let unnegotiated = try #require(object(try before.json(), "config", "vdpa0"))
        #expect(unnegotiated["mac"] as? String == "52:54:00:00:00:10")
        #expect(unnegotiated["mtu"] as? Int == 1400)
        #expect(unnegotiated["link"] as? String == "up")
        #expect(unnegotiated["negotiated_features"] == nil)
        let bound = try await daemon.vdpactl("dev", "bind", "vdpa0", "driver", "virtio_vdpa")
        #expect(bound.status == .success, "\(bound)")
        let after = try await daemon.vdpactl("-j", "dev", "config", "show", "vdpa0")
        let negotiated = try #require(object(try after.json(), "config", "vdpa0"))
        #expect(negotiated["negotiated_features"] as? [String] == ["MTU", "MAC", "STATUS", "CTRL_VQ", "CTRL_MAC_ADDR", "VERSION_1", "ACCESS_PLATFORM"])

        let set = try await daemon.vdpactl("dev", "set", "name", "vdpa0", "mac", "52:54:00:00:00:11")
        #expect(set.status == .success, "\(set)")
        let configText = try await daemon.vdpactl("dev", "config", "show", "vdpa0")
        #expect(configText.stdout.hasPrefix("vdpa0: mac 52:54:00:00:00:11 link up link_announce false mtu 1400 \n  negotiated_features MTU MAC"))

        let stats = try await daemon.vdpactl("-j", "dev", "vstats", "show", "vdpa0", "qidx", "1")
        #expect(stats.status == .success, "\(stats)")
        let queue = try #require(object(try stats.json(), "vstats", "vdpa0"))
        #expect(queue["queue_type"] as? String == "tx")
        #expect(queue["tx packets"] as? Int == 8)

        let deleted = try await daemon.vdpactl("dev", "del", "vdpa0")
        #expect(deleted.status == .success, "\(deleted)")
        let empty = try await daemon.vdpactl("-j", "dev", "show")
        #expect(empty.stdout == "{\"dev\":{}}\n")
        try await daemon.stop()
    }

    @Test func mgmtdevShowAsIproute2Shapes() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        let all = try await daemon.vdpactl("-jp", "mgmtdev", "show")
        #expect(all.status == .success, "\(all)")
        let mgmtdevs = try #require(object(try all.json(), "mgmtdev"))
        #expect(Set(mgmtdevs.keys) == ["vdpasim_net", "vdpasim_blk"])
        #expect(object(mgmtdevs, "vdpasim_blk")?["dev_features"] as? [String] == ["bit_1", "bit_2", "bit_6", "bit_9", "bit_10", "VERSION_1", "ACCESS_PLATFORM"])
        #expect(all.stdout.contains("\n    \"mgmtdev\": {\n"))
        let one = try await daemon.vdpactl("mgmt", "sh", "vdpasim_net")
        #expect(one.stdout == """
            vdpasim_net: 
              supported_classes net
              max_supported_vqs 3
              dev_features MTU MAC STATUS CTRL_VQ CTRL_MAC_ADDR ANY_LAYOUT VERSION_1 ACCESS_PLATFORM

            """)
        try await daemon.stop()
    }

    @Test func kernelRefusalsPrintTheKernelsReasonAndExitTwo() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        let unsupported = try await daemon.vdpactl("dev", "add", "name", "d1", "mgmtdev", "vdpasim_net", "max_vqp", "2")
        #expect(unsupported.status == .refused)
        #expect(unsupported.stdout.isEmpty)
        #expect(unsupported.stderr == "vdpactl: kernel answered: Operation not supported (EOPNOTSUPP): vdpa: Some provided attributes are not supported: 0x1000\n",
                "\(unsupported)")
        let missing = try await daemon.vdpactl("dev", "add", "name", "d1", "mgmtdev", "nosuch")
        #expect(missing.status == .refused)
        #expect(missing.stderr == "vdpactl: kernel answered: No such device (ENODEV): vdpa: Fail to find the specified management device\n")
        let noDevice = try await daemon.vdpactl("dev", "show", "ghost")
        #expect(noDevice.status == .refused)
        #expect(noDevice.stderr.hasPrefix("vdpactl: "))

        _ = try await daemon.vdpactl("dev", "add", "name", "d2", "mgmtdev", "vdpasim_net")
        let early = try await daemon.vdpactl("dev", "vstats", "show", "d2", "qidx", "0")
        #expect(early.status == .refused)
        #expect(early.stderr.contains("(EAGAIN): vdpa: feature negotiation not complete"), "\(early)")
        try await daemon.stop()
    }

    @Test func devicesMadeByOthersNeedForce() async throws {
        let kernel = FakeVDPAKernel()
        let daemon = try await InProcessDaemon(kernel: kernel)
        try kernel.createExternally(DeviceCreateRequest(name: "theirs", managementDevice: .init(bus: nil, name: "vdpasim_net")))
        let listed = await Lab.eventually { (try? await daemon.vdpactl("dev", "show", "theirs").status) == .success }
        #expect(listed)
        let refused = try await daemon.vdpactl("dev", "del", "theirs")
        #expect(refused.status == .refused)
        #expect(refused.stderr.hasPrefix("vdpactl: "))
        #expect(!refused.stderr.contains("kernel answered"), "\(refused)")
        let shown = try await daemon.vdpactl("dev", "show", "theirs")
        #expect(shown.stdout.contains("managed false"))
        let forced = try await daemon.vdpactl("dev", "del", "theirs", "force")
        #expect(forced.status == .success, "\(forced)")
        try await daemon.stop()
    }

    @Test func monitorPrintsOneLinePerEvent() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        let textEvents = Counter()
        let jsonEvents = Counter()
        let text = Task { try await daemon.vdpactl("monitor", keepFollowing: { textEvents.increment() < 2 }) }
        let json = Task { try await daemon.vdpactl("-j", "monitor", keepFollowing: { jsonEvents.increment() < 2 }) }
        let subscribed = await Lab.eventually {
            let status = try? await daemon.withClient { try $0.call(.daemonStatus, as: DaemonStatusResult.self) }
            return status?.subscribers == 2
        }
        #expect(subscribed)
        _ = try await daemon.vdpactl("dev", "add", "name", "m0", "mgmtdev", "vdpasim_net")
        _ = try await daemon.vdpactl("dev", "del", "m0")
        let textResult = try await text.value
        let jsonResult = try await json.value
        #expect(textResult.status == .success)
        let lines = textResult.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 2, "\(textResult)")
        #expect(lines.first?.hasPrefix("device_added dev m0 origin vdpad managed true time ") == true)
        #expect(lines.last?.hasPrefix("device_removed dev m0 origin vdpad") == true)
        let events = try jsonResult.stdout.split(separator: "\n").map { try JSONDecoder().decode(DeviceEvent.self, from: Data($0.utf8)) }
        #expect(events.map(\.type) == [.deviceAdded, .deviceRemoved])
        try await daemon.stop()
    }

    @Test func monitorEndsWithTheConnection() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        let monitor = Task { try await daemon.vdpactl("monitor") }
        let subscribed = await Lab.eventually {
            (try? await daemon.withClient { try $0.call(.daemonStatus, as: DaemonStatusResult.self) })?.subscribers == 1
        }
        #expect(subscribed)
        try await daemon.stop()
        let result = try await monitor.value
        #expect(result.status == .success, "\(result)")
    }

    @Test func daemonStatusIsTheAPIsResult() async throws {
        #expect(vdpactlVersion == vdpadVersion)
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        let json = try await daemon.vdpactl("-j", "daemon", "status")
        let status = try JSONDecoder().decode(DaemonStatusResult.self, from: Data(json.stdout.utf8))
        #expect(status.version == vdpadVersion)
        #expect(status.socket == daemon.socketPath)
        let text = try await daemon.vdpactl("daemon")
        #expect(text.stdout.hasPrefix("vdpad \(vdpadVersion) pid "))
        try await daemon.stop()
    }
}

/// A thread-safe counter for callbacks run on the client's thread.
final class Counter: Sendable {
    private let value = Mutex(0)
    /// Adds one and returns the new count.
    func increment() -> Int { value.withLock { $0 += 1; return $0 } }
}

/// Polling helper (as the lab's).
enum Lab {
    static func eventually(seconds: Double = 10, _ condition: () async -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return await condition()
    }
}

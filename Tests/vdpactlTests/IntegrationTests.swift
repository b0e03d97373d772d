import Foundation
import Synchronization
import Testing
import VDPACtl
import VDPADaemon
import VDPANetlink
import VDPAPolicy
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

    @Test func portsThroughVdpactl() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        let empty = try await daemon.vdpactl("-j", "port", "show")
        #expect(empty.stdout == "{\"port\":{}}\n", "\(empty)")
        let added = try await daemon.vdpactl("port", "add", "name", "p0")
        #expect(added.status == .success, "\(added)")
        #expect(added.stdout.isEmpty && added.stderr.isEmpty)
        let text = try await daemon.vdpactl("port", "show")
        let socket = daemon.stateDirectory + "/ports/p0.sock"
        #expect(text.stdout == "p0: state waiting socket \(socket) dev none\n", "\(text)")
        let one = try await daemon.vdpactl("-j", "port", "show", "p0")
        let port = try #require(object(try one.json(), "port", "p0"))
        #expect(port["state"] as? String == "waiting")
        #expect(port["socket"] as? String == socket)
        #expect(port["dev"] == nil)

        let twice = try await daemon.vdpactl("port", "add", "name", "p0")
        #expect(twice.status == .refused)
        #expect(twice.stderr.hasPrefix("vdpactl: port p0 exists"), "\(twice)")
        let detached = try await daemon.vdpactl("port", "set", "p0", "detach")
        #expect(detached.status == .success, "\(detached)")
        let missing = try await daemon.vdpactl("port", "show", "nosuch")
        #expect(missing.status == .refused)
        #expect(missing.stderr == "vdpactl: no port nosuch (parameter name)\n")
        // A device no port holds has no state to save.
        _ = try await daemon.vdpactl("dev", "add", "name", "vdpa0", "mgmtdev", "vdpasim_net")
        let save = try await daemon.vdpactl("vq", "save", "dev", "vdpa0")
        #expect(save.status == .refused)
        #expect(save.stderr.contains("vdpa0 backs no port"), "\(save)")
        let deleted = try await daemon.vdpactl("port", "del", "p0")
        #expect(deleted.status == .success, "\(deleted)")
        #expect(try await daemon.vdpactl("port").stdout.isEmpty)
        try await daemon.stop()
    }

    @Test func vqStatesImportShowAndExportRoundTrip() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        let directory = InProcessDaemon.temporaryDirectory("vdpactl-vq")
        let features = VirtioFeatures(rawValue: 0x3_0001_0020)
        let document = VirtqueueStateDocument(
            name: "s1", host: "hv1", takenAt: "2025-01-01T00:00:00Z", vdpadVersion: "0.1.0",
            source: .init(device: "vdpa0", mgmtdev: "vdpasim_net", port: "p0"), deviceType: .network,
            deviceFeatures: features, negotiatedFeatures: features, backendFeatures: ["SUSPEND", "RESUME"],
            status: ["ACKNOWLEDGE", "DRIVER", "FEATURES_OK", "DRIVER_OK"], config: [0x52, 0x54, 0, 0, 0, 0x10, 1, 0], queueCount: 3,
            queues: [.init(index: 0, size: 256, layout: .split, base: 17, enabled: true), .init(index: 1, size: 256, layout: .split, base: 9, enabled: true)],
            control: .init(mac: "52:54:00:00:00:10", linkUp: true))
        let file = directory + "/s1.json"
        try JSONEncoder().encode(document).write(to: URL(fileURLWithPath: file))

        #expect(try await daemon.vdpactl("vq", "show").stdout.isEmpty)
        let imported = try await daemon.vdpactl("vq", "import", file)
        #expect(imported.status == .success, "\(imported)")
        #expect(imported.stdout.isEmpty && imported.stderr.isEmpty)
        let renamed = try await daemon.vdpactl("vq", "import", file, "name", "s1-copy")
        #expect(renamed.status == .success, "\(renamed)")
        let again = try await daemon.vdpactl("vq", "import", file)
        #expect(again.status == .refused)
        #expect(again.stderr.contains("replace"), "\(again)")
        #expect(try await daemon.vdpactl("vq", "import", file, "replace").status == .success)

        let list = try await daemon.vdpactl("vq", "list")
        #expect(list.stdout == """
            s1: dev vdpa0 port p0 origin imported host hv1 taken_at 2025-01-01T00:00:00Z queues 2
            s1-copy: dev vdpa0 port p0 origin imported host hv1 taken_at 2025-01-01T00:00:00Z queues 2

            """, "\(list)")
        let shown = try await daemon.vdpactl("vq", "show", "s1")
        #expect(shown.stdout == """
            s1: dev vdpa0 port p0 origin imported host hv1 taken_at 2025-01-01T00:00:00Z
              type network mgmtdev vdpasim_net queue_count 3 mac 52:54:00:00:00:10 link up
              negotiated_features MAC STATUS VERSION_1 ACCESS_PLATFORM
              vq 0: size 256 base 17 avail 17 used 17 enabled
              vq 1: size 256 base 9 avail 9 used 9 enabled

            """, "\(shown)")
        let json = try await daemon.vdpactl("-j", "vq", "show", "s1")
        let state = try #require(object(try json.json(), "vq", "s1"))
        #expect((state["vqs"] as? [[String: Any]])?.map { $0["avail"] as? Int } == [17, 9])

        // Exported to standard output and to a file: the same document as was imported.
        let exported = try await daemon.vdpactl("vq", "export", "s1")
        #expect(exported.status == .success, "\(exported)")
        #expect(exported.stdout.contains("\n  \"schema\" : \"vdpad.vqstate/v1\""), "\(exported)")
        #expect(try JSONDecoder().decode(VirtqueueStateDocument.self, from: Data(exported.stdout.utf8)) == document)
        let oneLine = try await daemon.vdpactl("-j", "vq", "export", "s1")
        #expect(oneLine.stdout.filter { $0 == "\n" }.count == 1)
        let target = directory + "/exported.json"
        let written = try await daemon.vdpactl("vq", "export", "s1-copy", "file", target)
        #expect(written.status == .success, "\(written)")
        #expect(written.stdout.isEmpty)
        var copy = document
        copy.name = "s1-copy"
        #expect(try JSONDecoder().decode(VirtqueueStateDocument.self, from: Data(contentsOf: URL(fileURLWithPath: target))) == copy)
        let unwritable = try await daemon.vdpactl("vq", "export", "s1", "file", directory + "/no/such/dir/x.json")
        #expect(unwritable.status == .usage)
        #expect(unwritable.stderr.hasPrefix("vdpactl: \(directory)/no/such/dir/x.json: cannot write"), "\(unwritable)")

        // Files vdpactl cannot use are refused before anything is sent.
        try "{\"schema\": \"vdpad.profile/v1\"}".write(toFile: directory + "/bad.json", atomically: true, encoding: .utf8)
        let bad = try await daemon.vdpactl("vq", "import", directory + "/bad.json")
        #expect(bad.status == .usage)
        #expect(bad.stderr.hasPrefix("vdpactl: \(directory)/bad.json: not a valid document: "), "\(bad)")
        var invalid = document
        invalid.queues[1].base = 70_000
        try JSONEncoder().encode(invalid).write(to: URL(fileURLWithPath: directory + "/invalid.json"))
        let rejected = try await daemon.vdpactl("vq", "import", directory + "/invalid.json", "name", "s3")
        #expect(rejected.status == .usage)
        #expect(rejected.stderr.contains("invalid.json: queue 1: a split ring's base is 16 bits"), "\(rejected)")
        #expect(try await daemon.vdpactl("vq", "show", "s3").status == .refused)

        // A restore needs the port and its consumer.
        let restore = try await daemon.vdpactl("vq", "restore", "s1", "dev", "vdpa0")
        #expect(restore.status == .refused)
        #expect(restore.stderr.contains("no port p0"), "\(restore)")

        #expect(try await daemon.vdpactl("vq", "del", "s1-copy").status == .success)
        let gone = try await daemon.vdpactl("vq", "del", "s1-copy")
        #expect(gone.status == .refused)
        #expect(gone.stderr.hasPrefix("vdpactl: no saved state s1-copy"), "\(gone)")
        #expect(try await daemon.vdpactl("-j", "vq", "show").stdout.hasPrefix("{\"vq\":{\"s1\":{"))
        try await daemon.stop()
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

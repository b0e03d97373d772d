import Foundation
import Testing
import VDPAClient
import VDPANetlink
import VDPAPolicy
import VDPARPC
import VDPASystem
import VDPATestSupport
import VirtioModel

extension LabTests {
    /// The real vdpad binary over the real kernel: lifecycle, devices made by others, crashes.
    @Suite(.serialized) struct Daemon {
        init() async throws { try await Lab.removeAllDevices() }

        @Test func lifecycleThroughTheDaemon() async throws {
            let daemon = try await SpawnedDaemon()
            let status = try await daemon.withClient { try $0.call(.daemonStatus, as: DaemonStatusResult.self) }
            #expect(status.vdpa.available)
            let added = try await daemon.withClient {
                try $0.call(.devAdd, DevAddParams(name: "d0", mgmtdev: "vdpasim_net", mac: "52:54:00:00:00:10", mtu: 1500), as: DeviceInfo.self)
            }
            #expect(added.managed)
            #expect(added.driver == "vhost_vdpa")
            #expect(added.record?.mtu == 1500)
            // The kernel has it, as iproute2 sees.
            let shown = try #require(try await Lab.vdpaJSON("dev", "show", "d0") as? [String: Any])
            #expect((shown["dev"] as? [String: Any])?["d0"] != nil)
            let bound = try await daemon.withClient { try $0.call(.devBind, DevBindParams(name: "d0", driver: "virtio_vdpa"), as: DeviceInfo.self) }
            #expect(bound.driver == "virtio_vdpa")
            #expect(!bound.netdevs.isEmpty)
            let stats = try await daemon.withClient { try $0.call(.devVstatsGet, DevVstatsGetParams(name: "d0", qidx: 0), as: DevVstatsGetResult.self) }
            #expect(!stats.stats.isEmpty)
            let changed = try await daemon.withClient { try $0.call(.devSet, DevSetParams(name: "d0", mac: "52:54:00:00:00:11"), as: DeviceConfigInfo.self) }
            #expect(changed.net?.mac == "52:54:00:00:00:11")
            let refused = try await daemon.withClient { client in
                #expect(throws: RPCErrorObject.self) {
                    try client.call(.devAdd, DevAddParams(name: "d1", mgmtdev: "vdpasim_net", maxVqp: 2), as: DeviceInfo.self)
                }
            }
            #expect(refused?.data?.errno == ErrnoCode.notSupported)
            #expect(refused?.data?.extack?.contains("Some provided attributes are not supported") == true)
            _ = try await daemon.withClient { try $0.call(.devDel, DevDelParams(name: "d0"), as: DevDelResult.self) }
            #expect(try await Lab.vdpa("dev", "show", "d0").status != 0)
            #expect(try await daemon.stop() == 0)
        }

        @Test func aDeviceFromAProfilePresentsExactlyTheProfileToTheLinuxDriver() async throws {
            let daemon = try await SpawnedDaemon()
            // A subset of what vdpasim_net offers (it also has MTU, CTRL_VQ, CTRL_MAC_ADDR, ANY_LAYOUT).
            let profile = Profile(name: "lab-net", deviceType: .network, features: [.version1, .accessPlatform, .Net.mac, .Net.status], mac: .pool)
            _ = try await daemon.withClient { try $0.call(.profileAdd, profile, as: ProfileInfo.self) }
            let check = try await daemon.withClient {
                try $0.call(.compatCheck, CompatCheckParams(source: .init(profile: "lab-net"), destination: .init(mgmtdev: "vdpasim_net")), as: CompatCheckResult.self)
            }
            #expect(check.result.answer == .superset, "\(check)")
            let added = try await daemon.withClient {
                try $0.call(.devAdd, DevAddParams(name: "p0", mgmtdev: "vdpasim_net", driver: "virtio_vdpa", profile: "lab-net"), as: DeviceInfo.self)
            }
            #expect(added.record?.profile == "lab-net")
            #expect(added.record?.provisionedFeatures?.hex == profile.features.hexString)
            // What iproute2 sees the kernel report.
            let config = try #require(try await Lab.vdpaJSON("dev", "config", "show", "p0") as? [String: Any])
            #expect((config["config"] as? [String: Any])?["p0"] != nil)
            // What Linux's virtio_net negotiated: exactly the profile (it knows all four bits).
            let virtio = try #require(added.virtioDevice, "log: \(daemon.log)")
            #expect(try Lab.virtioDriverFeatures(of: virtio) == profile.features)

            // A profile the simulator cannot meet (MQ, 2 queue pairs): refused before any device exists.
            var mq = profile
            mq.name = "lab-mq"
            mq.features.formUnion([.Net.controlVirtqueue, .Net.multiqueue])
            mq.queuePairs = 2
            let mqProfile = mq
            _ = try await daemon.withClient { try $0.call(.profileAdd, mqProfile, as: ProfileInfo.self) }
            let refused = try await daemon.withClient { client in
                #expect(throws: RPCErrorObject.self) {
                    try client.call(.devAdd, DevAddParams(name: "m0", mgmtdev: "vdpasim_net", profile: "lab-mq"), as: DeviceInfo.self)
                }
            }
            #expect(refused?.errorCode == .profileIncompatible)
            #expect(refused?.data?.reasons?.first?.features == ["MQ"])
            #expect(try await Lab.vdpa("dev", "show", "m0").status != 0)
            _ = try await daemon.withClient { try $0.call(.devDel, DevDelParams(name: "p0"), as: DevDelResult.self) }
            #expect(try await daemon.stop() == 0)
        }

        @Test func aDeviceMadeWithIproute2IsUnmanagedAndRaisesAnEvent() async throws {
            let daemon = try await SpawnedDaemon()
            let subscribed = AsyncStream<Void>.makeStream()
            let events = Task {
                try await daemon.withClient { client -> [DeviceEvent] in
                    var events: [DeviceEvent] = []
                    try client.followEvents(timeoutMilliseconds: 20_000, onSubscribed: { subscribed.continuation.finish() }) { event in
                        events.append(event)
                        return !(event.device == "theirs" && event.type == .deviceAdded)
                    }
                    return events
                }
            }
            for await _ in subscribed.stream {}
            let made = try await Lab.vdpa("dev", "add", "name", "theirs", "mgmtdev", "vdpasim_net")
            #expect(made.status == 0, "\(made)")
            let received = try await events.value
            let event = try #require(received.first { $0.device == "theirs" }, "events: \(received); log: \(daemon.log)")
            #expect(event.type == .deviceAdded)
            #expect(event.origin == "external")
            #expect(!event.managed)
            let device = try await daemon.withClient { try $0.call(.devGet, DeviceNameParams(name: "theirs"), as: DeviceInfo.self) }
            #expect(!device.managed)
            #expect(device.record == nil)
            // vdpad never deletes what it did not create.
            let refused = try await daemon.withClient { client in
                #expect(throws: RPCErrorObject.self) { try client.call(.devDel, DevDelParams(name: "theirs"), as: DevDelResult.self) }
            }
            #expect(refused != nil)
            #expect(try await Lab.vdpa("dev", "show", "theirs").status == 0)
            #expect(try await daemon.stop() == 0)
        }

        /// Clients of other uids over the real socket of the real binary: what their groups allow,
        /// decided from SO_PEERCRED; nothing they were refused reaches the kernel.
        @Test func callersOfOtherUidsGetWhatTheirGroupsAllow() async throws {
            // The guest's /etc knows only root: add nobody (65534, in group 65534) and daemon (1).
            let passwd = (try? String(contentsOfFile: "/etc/passwd", encoding: .utf8)) ?? ""
            if !passwd.contains("\nnobody:") {
                try (passwd + "nobody:x:65534:65534:nobody:/:/bin/sh\ndaemon:x:1:1:daemon:/:/bin/sh\n").write(toFile: "/etc/passwd", atomically: true, encoding: .utf8)
                let group = (try? String(contentsOfFile: "/etc/group", encoding: .utf8)) ?? ""
                try (group + "nogroup:x:65534:\ndaemon:x:1:\n").write(toFile: "/etc/group", atomically: true, encoding: .utf8)
            }
            // The initramfs root comes out of mktemp -d (0700): let other users reach /bin and /host.
            chmod("/", 0o755)
            let daemon = try await SpawnedDaemon(configuration: "socket_mode = 0666\nread_group = nogroup\n")
            func vdpactl(as user: String, _ arguments: String) async throws -> Lab.Output {
                let libraries = Lab.environment["LD_LIBRARY_PATH"].map { "LD_LIBRARY_PATH=\($0) " } ?? ""
                return try await Lab.run("/bin/busybox", ["su", "-s", "/bin/sh", user, "-c",
                                                          "exec env \(libraries)\(Lab.buildDirectory)/vdpactl --socket \(daemon.socketPath) \(arguments)"])
            }
            let read = try await vdpactl(as: "nobody", "dev list")
            #expect(read.status == 0, "\(read)")
            let add = try await vdpactl(as: "nobody", "dev add name refused0 mgmtdev vdpasim_net")
            #expect(add.status != 0 && (add.stdout + add.stderr).contains("dev_add needs admin access: uid 65534"), "\(add)")
            let stranger = try await vdpactl(as: "daemon", "dev list")
            #expect(stranger.status != 0 && (stranger.stdout + stranger.stderr).contains("uid 1 (pid"), "\(stranger)")
            // Nothing reached the kernel; the journal names who was refused.
            #expect(try await Lab.vdpa("dev", "show", "refused0").status != 0)
            #expect(daemon.log.contains("Refused a call") && daemon.log.contains("uid=65534"), "\(daemon.log)")
            #expect(try await daemon.stop() == 0)
        }

        @Test func killMinus9AndRestartReconcilesWithTheKernel() async throws {
            let directory = InProcessDaemon.temporaryDirectoryForLab()
            let first = try await SpawnedDaemon(directory: directory, restoreOnStart: false)
            for name in ["k0", "k1", "k2"] {
                _ = try await first.withClient { try $0.call(.devAdd, DevAddParams(name: name, mgmtdev: "vdpasim_net", mtu: 1280), as: DeviceInfo.self) }
            }
            try await first.kill()
            // While vdpad is down: one of its devices disappears, someone else adds one.
            #expect(try await Lab.vdpa("dev", "del", "k1").status == 0)
            #expect(try await Lab.vdpa("dev", "add", "name", "other", "mgmtdev", "vdpasim_blk").status == 0)
            let second = try await SpawnedDaemon(directory: directory, restoreOnStart: false)
            let list = try await second.withClient { try $0.call(.devList, DevListParams(), as: DevListResult.self) }
            let managed = Set(list.devices.filter(\.managed).map(\.name))
            #expect(managed == ["k0", "k2"], "log: \(second.log)")
            #expect(list.devices.first { $0.name == "k0" }?.record?.mtu == 1280)
            #expect(list.devices.first { $0.name == "other" }?.managed == false)
            #expect(list.vanished.map(\.name) == ["k1"])
            try await second.kill()
            // With restore_on_start the vanished device is recreated as it was asked for.
            let third = try await SpawnedDaemon(directory: directory, restoreOnStart: true)
            let restored = try await third.withClient { try $0.call(.devGet, DeviceNameParams(name: "k1"), as: DeviceInfo.self) }
            #expect(restored.managed)
            let config = try #require(try await Lab.vdpaJSON("dev", "config", "show", "k1") as? [String: Any])
            #expect(((config["config"] as? [String: Any])?["k1"] as? [String: Any])?["mtu"] as? Int == 1280)
            #expect(try await third.stop() == 0)
        }
    }
}

extension InProcessDaemon {
    static func temporaryDirectoryForLab() -> String { temporaryDirectory("vdpad-lab") }
}

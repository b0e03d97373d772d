import Foundation
import Testing
import VDPAClient
import VDPARPC
import VDPATestSupport

extension LabTests {
    /// vdpactl (through the real vdpad) against iproute2's `vdpa` on the same kernel devices:
    /// the same data in JSON, the same text, and the kernel's reason when it refuses.
    @Suite(.serialized) struct Vdpactl {
        init() async throws { try await Lab.removeAllDevices() }

        /// `vdpactl ARGS` through `daemon`'s socket.
        private func vdpactl(_ daemon: SpawnedDaemon, _ arguments: [String]) async throws -> Lab.Output {
            try await Lab.run(Lab.buildDirectory + "/vdpactl", ["--socket", daemon.socketPath] + arguments)
        }

        /// JSON text re-encoded with sorted keys, so equal data gives equal text (and a readable diff).
        private func canonical(_ json: Any) throws -> String {
            String(decoding: try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]), as: UTF8.self)
        }

        @Test func jsonAndTextMatchIproute2() async throws {
            let daemon = try await SpawnedDaemon()
            let added = try await vdpactl(daemon, ["dev", "add", "name", "c0", "mgmtdev", "vdpasim_net",
                                                   "mac", "52:54:00:00:00:20", "mtu", "1500", "driver", "virtio_vdpa"])
            #expect(added.status == 0, "\(added)")
            // Bound to virtio_vdpa, the kernel's virtio-net negotiates features.
            let negotiated = try await Lab.eventually {
                let config = try await Lab.vdpaJSON("dev", "config", "show", "c0") as? [String: Any]
                return ((config?["config"] as? [String: Any])?["c0"] as? [String: Any])?["negotiated_features"] != nil
            }
            #expect(negotiated)

            for arguments in [["mgmtdev", "show"], ["mgmtdev", "show", "vdpasim_net"], ["dev", "show"], ["dev", "show", "c0"],
                              ["dev", "config", "show"], ["dev", "config", "show", "c0"]] {
                let ours = try await vdpactl(daemon, ["-j"] + arguments)
                #expect(ours.status == 0, "vdpactl -j \(arguments): \(ours)")
                #expect(!ours.stdout.contains("link \""), "vdpactl writes \"link\", not iproute2's \"link \"")
                let theirs = try await Lab.run(Lab.iproute2, ["-j"] + arguments)
                #expect(theirs.status == 0, "vdpa -j \(arguments): \(theirs)")
                let expected = try canonical(Lab.normalizedJSON(try JSONSerialization.jsonObject(with: Data(theirs.stdout.utf8))))
                let actual = try canonical(try JSONSerialization.jsonObject(with: Data(ours.stdout.utf8)))
                #expect(actual == expected, "\(arguments)")
            }

            // Text: the same bytes for mgmtdev and config; dev show adds vdpad's line after iproute2's.
            for arguments in [["mgmtdev", "show"], ["dev", "config", "show", "c0"]] {
                let ours = try await vdpactl(daemon, arguments)
                let theirs = try await Lab.run(Lab.iproute2, arguments)
                #expect(ours.stdout == theirs.stdout, "\(arguments)")
            }
            let ourDevice = try await vdpactl(daemon, ["dev", "show", "c0"])
            let theirDevice = try await Lab.run(Lab.iproute2, ["dev", "show", "c0"])
            let ourLines = ourDevice.stdout.split(separator: "\n")
            #expect(ourLines.first.map(String.init) == theirDevice.stdout.split(separator: "\n").first.map(String.init))
            #expect(ourLines.dropFirst().first?.hasPrefix("  driver virtio_vdpa virtio_device virtio") == true, "\(ourDevice)")

            let deleted = try await vdpactl(daemon, ["dev", "del", "c0"])
            #expect(deleted.status == 0, "\(deleted)")
            #expect(try await daemon.stop() == 0)
        }

        @Test func aRefusalPrintsTheKernelsExtack() async throws {
            let daemon = try await SpawnedDaemon()
            let refused = try await vdpactl(daemon, ["dev", "add", "name", "c1", "mgmtdev", "vdpasim_net", "max_vqp", "2"])
            #expect(refused.status != 0)
            #expect(refused.stdout.isEmpty)
            #expect(refused.stderr.contains("kernel answered: Operation not supported (EOPNOTSUPP)"), "\(refused)")
            #expect(refused.stderr.contains("Some provided attributes are not supported"), "\(refused)")
            #expect(try await Lab.vdpa("dev", "show", "c1").status != 0)
            let unknown = try await vdpactl(daemon, ["dev", "add", "name", "c1", "mgmtdev", "nosuch"])
            #expect(unknown.status != 0)
            #expect(unknown.stderr.contains("(ENODEV)"), "\(unknown)")
            #expect(try await daemon.stop() == 0)
        }
    }
}

import Foundation
import Testing
import VDPAClient
import VDPAPolicy
import VDPARPC
import VDPATestSupport
import VDPAVhostTestSupport
import VirtioModel
import VirtioNetTestSupport

/// A port with a profile offers its VMM exactly the profile, whatever backs it: its features,
/// and its MAC and MTU in the configuration space; a backend that cannot present it is refused
/// with every reason.
@Suite(.serialized) struct PortProfileTests {
    static let mac = MACAddress("52:54:00:aa:bb:cc")!

    func call<P: Codable & Sendable, R: Codable & Sendable>(_ daemon: InProcessDaemon, _ method: VDPAMethod, _ params: P, as: R.Type) async throws -> R {
        try await daemon.withClient { try $0.call(method, params, as: R.self) }
    }

    func refusal<P: Codable & Sendable>(_ daemon: InProcessDaemon, _ method: VDPAMethod, _ params: P) async throws -> RPCErrorObject? {
        try await daemon.withClient { client -> RPCErrorObject? in
            do { _ = try client.call(method, params, as: RPCEmpty.self); return nil } catch let error as RPCErrorObject { return error }
        }
    }

    /// What a VMM connecting to `socket` is offered, and the first 12 bytes of virtio_net_config.
    static func offer(_ socket: String) async throws -> (features: VirtioFeatures, config: [UInt8]) {
        try await runOffThePool {
            let frontend = try VhostUserFrontend(socketPath: socket)
            defer { frontend.close() }
            try frontend.setOwner()
            return (VirtioFeatures(rawValue: try frontend.getFeatures()), try frontend.getConfig(offset: 0, size: 12))
        }
    }

    @Test func aHardwarePortOffersExactlyItsProfile() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel(), vhostOpener: FakeVhostOpener())
        for name in ["d0", "d1"] {
            _ = try await call(daemon, .devAdd, DevAddParams(name: name, mgmtdev: "vdpasim_net", mac: "02:00:00:00:00:01", driver: "vhost_vdpa"), as: DeviceInfo.self)
        }
        let features: VirtioFeatures = [.version1, .Net.mac, .Net.mtu, .Net.status]
        _ = try await call(daemon, .profileAdd, Profile(name: "p1", deviceType: .network, features: features, mac: .fixed(Self.mac), mtu: 1400),
                           as: ProfileInfo.self)
        let port = try await call(daemon, .portAdd, PortAddParams(name: "vm", device: "d0", profile: "p1"), as: PortInfo.self)
        #expect(port.profile == "p1" && port.backend?.device == "d0")
        // The device offers more (ANY_LAYOUT, the control queue): the VMM sees the profile only,
        // and the profile's MAC and MTU instead of the device's.
        let (offered, config) = try await Self.offer(port.socket)
        #expect(offered == features.union(VirtioFeatures(rawValue: 1 << 30)), "\(offered)")
        #expect(Array(config[0..<6]) == Self.mac.bytes && config[10] == 0x78 && config[11] == 0x05, "\(config)")

        // A profile the device cannot present: refused with every reason, nothing attached.
        _ = try await call(daemon, .profileAdd, Profile(name: "packed", deviceType: .network, features: [.version1, .ringPacked]), as: ProfileInfo.self)
        let refused = try await refusal(daemon, .portAdd, PortAddParams(name: "vm2", device: "d1", profile: "packed"))
        #expect(refused?.errorCode == .profileIncompatible, "\(String(describing: refused))")
        #expect(refused?.data?.reasons?.contains { $0.code == "features_missing" && $0.features == ["RING_PACKED"] } == true, "\(String(describing: refused))")
        let ports = try await daemon.withClient { try $0.call(.portList, as: PortListResult.self) }
        #expect(ports.ports.map(\.name) == ["vm"])
        // A pool MAC and two queue pairs are not for ports yet.
        _ = try await call(daemon, .profileAdd, Profile(name: "pooled", deviceType: .network, features: [.version1, .Net.mac], mac: .pool), as: ProfileInfo.self)
        #expect(try await refusal(daemon, .portAdd, PortAddParams(name: "vm3", device: "d1", profile: "pooled"))?.errorCode == .invalidParams)
        #expect(try await refusal(daemon, .portAdd, PortAddParams(name: "vm3", device: "d1", profile: "nosuch"))?.errorCode == .notFound)

        // The profile stays the port's across a restart.
        try await daemon.stop()
        let again = try await InProcessDaemon(kernel: FakeVDPAKernel(), stateDirectory: daemon.stateDirectory, vhostOpener: FakeVhostOpener())
        let kept = try await call(again, .portGet, PortNameParams(name: "vm"), as: PortInfo.self)
        #expect(kept.profile == "p1")
        try await again.stop()
    }

    @Test(.enabled(if: TapEnvironment.available, "needs root, /dev/net/tun and ip(8)"))
    func aSoftwarePortOffersExactlyItsProfile() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        let features: VirtioFeatures = [.version1, .Net.mac, .Net.status, .Net.mergeableRxBuffers, .ringEventIndex]
        _ = try await call(daemon, .profileAdd, Profile(name: "sw", deviceType: .network, features: features, mac: .fixed(Self.mac)), as: ProfileInfo.self)
        let port = try await call(daemon, .portAdd, PortAddParams(name: "vm", tap: "vdpspr\(getpid() % 100_000)", profile: "sw"), as: PortInfo.self)
        let (offered, config) = try await Self.offer(port.socket)
        #expect(offered == features.union(VirtioFeatures(rawValue: 1 << 30)), "\(offered)")
        #expect(Array(config[0..<6]) == Self.mac.bytes)
        // A feature the software datapath does not have (receive-side scaling): refused.
        _ = try await call(daemon, .profileAdd, Profile(name: "rss", deviceType: .network, features: [.version1, .Net.controlVirtqueue, .Net.rss]), as: ProfileInfo.self)
        let refused = try await refusal(daemon, .portAdd, PortAddParams(name: "vm2", tap: "vdpspq\(getpid() % 100_000)", profile: "rss"))
        #expect(refused?.errorCode == .profileIncompatible && refused?.data?.reasons?.contains { $0.features == ["RSS"] } == true,
                "\(String(describing: refused))")
        try await daemon.stop()
    }
}

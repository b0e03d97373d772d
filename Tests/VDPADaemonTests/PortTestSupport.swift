import Testing
import VDPAClient
import VDPARPC
import VDPATestSupport
import VDPAVhost
import VDPAVhostTestSupport

/// A mini VMM connected to a port's socket. Its set-up blocks on the socket while the daemon
/// answers on the concurrency pool, so it runs on a thread of its own.
func connectMiniVMM(_ socket: String, queues: Int = 2, control: Bool = false) async throws -> MiniVMM {
    final class Box: @unchecked Sendable {
        // SAFETY (@unchecked): written by the one thread, read after it finished.
        var vmm: MiniVMM?
    }
    let box = Box()
    try await runOffThePool { box.vmm = try MiniVMM(vhostUserSocket: socket, queues: queues, control: control) }
    return try #require(box.vmm)
}

/// The daemon over the fake kernel with vhost_vdpa devices `devices` and port `vm` on the first.
func daemonWithPort(opener: any VhostVDPAOpening, devices: [String] = ["d0"]) async throws -> (daemon: InProcessDaemon, devices: [DeviceInfo], port: PortInfo) {
    let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel(), vhostOpener: opener)
    var added: [DeviceInfo] = []
    for name in devices {
        added.append(try await daemon.withClient {
            try $0.call(.devAdd, DevAddParams(name: name, mgmtdev: "vdpasim_net", mac: "02:00:00:00:00:01", driver: "vhost_vdpa"), as: DeviceInfo.self)
        })
    }
    let first = devices[0]
    let port = try await daemon.withClient { try $0.call(.portAdd, PortAddParams(name: "vm", device: first), as: PortInfo.self) }
    return (daemon, added, port)
}

import ArgumentParser
import Foundation
import Synchronization
import VDPADatapath
import VDPAPorts
import VDPASystem
import VDPAVhost
import VirtioModel
import VirtioNet

/// The vdpad side of `Tests/bench-ports.sh`: one software port on a vhost-user socket, in this
/// process, with its worker busy polling; its network side a packet sink (every frame the
/// driver transmits is copied out and counted), a packet source (an endless supply of frames for the
/// driver's receive buffers) or a TAP interface. Once a second it prints the rate the port
/// moved in testpmd's words (`Rx-pps`: frames it took from the driver; `Tx-pps`: frames it
/// delivered), so the script reads it as it reads testpmd. The peer is DPDK's virtio-user.
struct PortServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "port-serve", abstract: "Serve one software port for the port benchmark (started by Tests/bench-ports.sh).",
        shouldDisplay: false)

    @Option(help: "The port's vhost-user socket.") var socket: String
    @Option(help: "sink, source, or tap:NAME (a TAP interface, set up; frames the driver sends are written to it).")
    var network: String
    @Option(help: "Frame bytes the source delivers (without the virtio-net header).") var frame = 64
    @Option(help: "Seconds to serve.") var seconds = 15
    @Flag(help: "Let the worker sleep until kicked instead of polling.") var noBusyPoll = false

    func run() throws {
        let port = VhostUserPort(name: "bench", socketPath: socket, opener: VhostVDPADeviceOpener())
        let options = NetWorkerOptions(busyPoll: !noBusyPoll)
        if network.hasPrefix("tap:") {
            let name = String(network.dropFirst(4))
            try port.attach(tap: name, options: options)
            _ = try ChildProcess.run("/usr/sbin/ip", ["link", "set", name, "up"])
        } else {
            guard let mode = BenchNetwork.Mode(rawValue: network) else { throw ValidationError("--network is sink, source or tap:NAME") }
            let frameBytes = frame
            try port.attach(name: "bench-\(mode.rawValue)", options: options) { BenchNetwork(mode: mode, frameBytes: frameBytes) }
        }
        try port.start()
        defer { port.stop() }
        var last = (taken: UInt64(0), delivered: UInt64(0))
        var lastTime = ContinuousClock.now
        for _ in 0..<seconds {
            Thread.sleep(forTimeInterval: 1)
            let now = ContinuousClock.now
            let pair = port.status.softwareCounters?.pairs.first
            let taken = pair?.transmit.packets ?? 0, delivered = pair?.receive.packets ?? 0
            let elapsed = (now - lastTime).seconds
            print("  Rx-pps: \(Int(Double(taken &- last.taken) / elapsed))  Tx-pps: \(Int(Double(delivered &- last.delivered) / elapsed))")
            fflush(nil)
            last = (taken, delivered)
            lastTime = now
        }
    }
}

/// A benchmark's network side for a software port: a sink or a source, no kernel involved.
final class BenchNetwork: SoftwareNetwork {
    enum Mode: String { case sink, source }
    let name: String
    let path = "none"
    let queuePairs = 1
    private let backend: SinkSourceBackend

    init(mode: Mode, frameBytes: Int) {
        name = "bench-\(mode.rawValue)"
        backend = SinkSourceBackend(source: mode == .source, frameBytes: frameBytes)
    }

    func backend(pair: Int) -> any NetBackend { backend }
    func setOffloads(for features: VirtioFeatures, guestOffloads: UInt64?) throws {}
    func setServedPairs(_ count: Int) throws {}
}

/// Copies out every frame sent to it; as a source, has a frame (broadcast Ethernet, `frameBytes`
/// long) whenever asked.
final class SinkSourceBackend: NetBackend {
    private let slot = NetBackendWakerSlot()
    private let template: [UInt8]
    private let source: Bool

    init(source: Bool, frameBytes: Int) {
        self.source = source
        template = Self.frame(bytes: frameBytes, sourceMAC: [0x52, 0x54, 0x00, 0xbe, 0x0c, 0x01])
    }

    /// A broadcast Ethernet frame of `bytes` (at least a header) from `sourceMAC`, with the
    /// local experimental EtherType 0x88b5: what the benchmarks send.
    static func frame(bytes: Int, sourceMAC: [UInt8]) -> [UInt8] {
        var frame = [UInt8](repeating: 0, count: max(bytes, 14))
        for index in 0..<6 { frame[index] = 0xff }
        frame[6...11] = sourceMAC[0..<6]
        frame[12] = 0x88
        frame[13] = 0xb5
        return frame
    }

    var readiness: NetBackendReadiness { .inProcess(slot) }

    /// Where the sink copies each frame: it reads every byte, as a TAP's `write(2)` and DPDK's
    /// vhost (into an mbuf) do, so the comparison pays for the frame's cache misses too.
    private let sinkBuffer = PacketBuffer()

    func send(header: VirtioNetHeader, frame: UnsafeRawBufferPointer) throws(NetBackendError) -> NetSendResult {
        // SAFETY: at most `sinkBuffer.bytes.count` bytes are copied into it.
        if let source = frame.baseAddress, let target = sinkBuffer.bytes.baseAddress {
            target.copyMemory(from: source, byteCount: min(frame.count, sinkBuffer.bytes.count))
        }
        return .sent
    }

    func receive(into frame: UnsafeMutableRawBufferPointer) throws(NetBackendError) -> NetReceivedFrame? {
        guard source else { return nil }
        let length = min(frame.count, template.count)
        // SAFETY: `length` is at most both buffers' sizes.
        template.withUnsafeBytes { frame.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: length) }
        return NetReceivedFrame(header: VirtioNetHeader(), length: length)
    }
}

/// The TAP write ceiling: one thread writing `virtio_net_hdr` + a frame into a TAP that is up
/// (as the software backend's transmit path does, without any ring), printing `Tx-pps` once a
/// second.
struct TapCeilingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tap-ceiling", abstract: "Write frames into a TAP as fast as one thread can (started by Tests/bench-ports.sh).",
        shouldDisplay: false)

    @Option(help: "The TAP interface (created).") var tap: String
    @Option(help: "Frame bytes.") var frame = 64
    @Option(help: "Seconds to write.") var seconds = 15

    func run() throws {
        let device = try TapDevice(name: tap)
        _ = try ChildProcess.run("/usr/sbin/ip", ["link", "set", tap, "up"])
        let bytes = SinkSourceBackend.frame(bytes: frame, sourceMAC: [0x52, 0x54, 0x00, 0xbe, 0x0c, 0x02])
        let header = [UInt8](repeating: 0, count: Int(TapDevice.virtioHeaderSize))
        var count: UInt64 = 0, lastCount: UInt64 = 0
        let start = ContinuousClock.now
        var nextReport = start + .seconds(1), lastTime = start
        try header.withUnsafeBytes { header in
            try bytes.withUnsafeBytes { frame in
                while true {
                    if try device.write(header: header, frame: frame) { count &+= 1 }
                    if count & 1023 == 0 {
                        let now = ContinuousClock.now
                        if now >= nextReport {
                            print("  Tx-pps: \(Int(Double(count &- lastCount) / (now - lastTime).seconds))")
                            fflush(nil)
                            lastCount = count
                            lastTime = now
                            nextReport = now + .seconds(1)
                            if now - start >= .seconds(self.seconds) { return }
                        }
                    }
                }
            }
        }
    }
}

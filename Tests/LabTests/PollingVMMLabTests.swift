import Foundation
import Testing
import VDPAClient
import VDPARPC
import VDPATestSupport
import VDPAVhostTestSupport

/// DPDK's `dpdk-testpmd` (Debian's `dpdk-dev`), run from the host's file system over 9p, as the
/// VMM of a port: its virtio-user driver (`net_virtio_user`) speaks vhost-user to vdpad and polls
/// its rings without ever kicking a full transmit ring, which is what a busy guest does too.
struct TestPMD {
    static let hostRoot = "/host"
    let process: Process
    let logPath: String

    /// The testpmd binary and the directory of its drivers (virtio-user and the ring mempool
    /// are plug-ins in Debian's build), as the guest sees the host's.
    static func locate() throws -> (binary: String, drivers: String) {
        let binary = hostRoot + "/usr/bin/dpdk-testpmd"
        let libraries = hostRoot + "/usr/lib/x86_64-linux-gnu/dpdk"
        let pmds = (try? FileManager.default.contentsOfDirectory(atPath: libraries))?.filter { $0.hasPrefix("pmds-") }.sorted().last
        guard FileManager.default.isExecutableFile(atPath: binary), let pmds else {
            throw LabSetupError(message: "dpdk-testpmd or its drivers are missing under \(hostRoot) (Tests/Lab/install-deps.sh installs dpdk-dev)")
        }
        return (binary, libraries + "/" + pmds)
    }

    /// Starts testpmd on `socket` in `mode` (flowgen: generates frames as fast as it can and
    /// counts what it receives), printing its port statistics every second into `logPath`.
    init(socket: String, logPath: String, prefix: String, mode: [String] = ["--forward-mode=flowgen"]) throws {
        let (binary, drivers) = try Self.locate()
        self.logPath = logPath
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "-l", "0-1", "--no-huge", "-m", "256", "--no-pci", "--file-prefix", prefix,
            "-d", drivers + "/librte_net_virtio.so", "-d", drivers + "/librte_mempool_ring.so",
            "--vdev", "net_virtio_user0,path=\(socket),queues=1,queue_size=256",
            "--", "--nb-cores=1", "--txd=256", "--rxd=256", "--total-num-mbufs=8192", "--stats-period", "1",
        ] + mode
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
    }

    struct Counters: CustomStringConvertible {
        var received: Int
        var transmitted: Int
        var description: String { "rx \(received) tx \(transmitted)" }
    }

    /// The newest statistics testpmd printed (RX-packets, TX-packets of port 0).
    func counters() -> Counters {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        func last(_ key: String) -> Int {
            guard let range = text.range(of: key, options: .backwards) else { return 0 }
            return Int(text[range.upperBound...].drop { $0 == " " }.prefix { $0.isNumber }) ?? 0
        }
        return Counters(received: last("RX-packets:"), transmitted: last("TX-packets:"))
    }

    /// Waits until both counters passed `baseline` by `frames`; false when `seconds` pass first.
    func flows(beyond baseline: Counters, by frames: Int, seconds: Double) async -> Bool {
        await Lab.eventually(seconds: seconds) {
            let now = counters()
            return now.received >= baseline.received + frames && now.transmitted >= baseline.transmitted + frames
        }
    }

    /// SIGINT (testpmd stops forwarding, closes its port and exits), SIGKILL if it does not.
    func stop() async {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGINT)
        let process = self.process
        let exited = await Lab.eventually(seconds: 10) { !process.isRunning }
        if !exited { kill(process.processIdentifier, SIGKILL) }
        try? await runOffThePool { process.waitUntilExit() }
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
}

struct LabSetupError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

extension LabTests {
    /// Ports under a polling VMM: after a move or a restore, rings that already hold work are
    /// processed without waiting for the driver to kick (it never will: its ring is full).
    @Suite(.serialized) struct PollingVMM {
        init() async throws { try await Lab.removeAllDevices() }

        /// flowgen sends to 00:01:02:03:04:06; vdpasim_net loops to its receive queue only what
        /// is addressed to its MAC (or broadcast), so the devices get that address.
        static let flowgenDestination = "00:01:02:03:04:06"

        static func addDevice(_ daemon: SpawnedDaemon, _ name: String, mac: String) async throws {
            _ = try await daemon.withClient {
                try $0.call(.devAdd, DevAddParams(name: name, mgmtdev: "vdpasim_net", mac: mac, driver: "vhost_vdpa"), as: DeviceInfo.self)
            }
        }

        static func median(_ values: [Int]) -> Int { values.sorted()[values.count / 2] }

        @Test func dpdkTrafficResumesAfterEveryMoveAndARestore() async throws {
            let daemon = try await Ports.daemon()
            for name in ["pd0", "pd1"] { try await Self.addDevice(daemon, name, mac: Self.flowgenDestination) }
            let port = try await daemon.withClient { try $0.call(.portAdd, PortAddParams(name: "vm5", device: "pd0"), as: PortInfo.self) }
            let pmd = try TestPMD(socket: port.socket, logPath: daemon.directory + "/testpmd.log", prefix: "vdpadlab\(getpid())")
            do {
                // testpmd starts (EAL, memory, vhost-user set-up) and frames flow both ways.
                let started = await pmd.flows(beyond: .init(received: 0, transmitted: 0), by: 10_000, seconds: 120)
                try #require(started, "testpmd never got traffic going: \(pmd.counters()); log: \(pmd.log.suffix(3000)); vdpad: \(daemon.log.suffix(3000))")
                print("testpmd running on vm5: \(pmd.counters())")

                // Live moves under traffic, back and forth: traffic resumes after each.
                var pauses: [Int] = []
                var current = "pd0"
                for move in 1...5 {
                    let target = current == "pd0" ? "pd1" : "pd0"
                    let before = pmd.counters()
                    let moved = try await daemon.withClient { try $0.call(.portSet, PortSetParams(name: "vm5", device: target), as: PortInfo.self) }
                    #expect(moved.backend?.device == target && moved.state == "running", "\(moved)")
                    if let pause = moved.timingsUs?["pause"] { pauses.append(pause) }
                    let resumed = await pmd.flows(beyond: before, by: 10_000, seconds: 30)
                    let stats = try await Lab.vdpaJSON("dev", "vstats", "show", target, "qidx", "1")
                    try #require(resumed, "move \(move) to \(target): traffic stalled (\(before) → \(pmd.counters())); \(target) tx vstats: \(stats)")
                    current = target
                }
                print("live move pause under DPDK traffic, µs: median \(Self.median(pauses)), min \(pauses.min() ?? 0), max \(pauses.max() ?? 0) over \(pauses.count) moves: \(pauses)")

                // Save (the device stops; testpmd's transmit ring fills), then restore onto the
                // other device: traffic resumes there.
                let source = current
                _ = try await daemon.withClient { try $0.call(.vqStateSave, VqStateSaveParams(device: source, name: "dpdk"), as: VqStateInfo.self) }
                // testpmd prints its statistics once a second, late when the guest is busy: read
                // them well after the save shows.
                try await Task.sleep(for: .milliseconds(3000))
                let saved = pmd.counters()
                try await Task.sleep(for: .milliseconds(2000))
                let stopped = pmd.counters()
                #expect(stopped.received - saved.received < 1_000, "the suspended device still delivered frames: \(saved) → \(stopped)")
                let target = current == "pd0" ? "pd1" : "pd0"
                let restored = try await daemon.withClient { try $0.call(.vqStateRestore, VqStateRestoreParams(name: "dpdk", device: target), as: VqStateRestoreResult.self) }
                #expect(restored.port == "vm5")
                let resumed = await pmd.flows(beyond: stopped, by: 10_000, seconds: 30)
                try #require(resumed, "restore onto \(target): traffic stalled (\(stopped) → \(pmd.counters()))")
                print("after the restore onto \(target): \(pmd.counters()); restore µs per step: \(restored.timingsUs)")
            } catch {
                await pmd.stop()
                throw error
            }
            await pmd.stop()
            _ = try await daemon.withClient { try $0.call(.portDel, PortNameParams(name: "vm5"), as: PortDelResult.self) }
            for name in ["pd0", "pd1"] { _ = try await daemon.withClient { try $0.call(.devDel, DevDelParams(name: name), as: DevDelResult.self) } }
            #expect(try await daemon.stop() == 0)
        }

        /// The same without DPDK, deterministically: frames published on transmitq without a
        /// kick before a move (or while a saved device is suspended) come back once the rings run
        /// on the next device.
        @Test func framesPublishedWithoutAKickAreProcessedAfterAMoveAndARestore() async throws {
            let daemon = try await Ports.daemon()
            for name in ["pn0", "pn1"] { try await Ports.addDevice(daemon, name) }
            let port = try await daemon.withClient { try $0.call(.portAdd, PortAddParams(name: "vm6", device: "pn0"), as: PortInfo.self) }
            let vmm = try MiniVMM(vhostUserSocket: port.socket)
            defer { vmm.close() }
            try vmm.postReceiveBuffers(count: 48)
            try Ports.roundTrip(vmm, 0..<4)

            // Published, not kicked: vdpasim_net works only on a kick, so nothing comes back.
            let pending = Ports.frames(4..<12)
            try vmm.transmit(pending, kick: false)
            #expect(try vmm.receive(count: 1, timeoutMilliseconds: 500).isEmpty)
            _ = try await daemon.withClient { try $0.call(.portSet, PortSetParams(name: "vm6", device: "pn1"), as: PortInfo.self) }
            #expect(try vmm.receive(count: pending.count).map(\.frame) == pending, "frames pending before the move")

            // Saved (suspended), frames published meanwhile, restored onto the first device.
            _ = try await daemon.withClient { try $0.call(.vqStateSave, VqStateSaveParams(device: "pn1", name: "pending"), as: VqStateInfo.self) }
            let more = Ports.frames(12..<20)
            try vmm.transmit(more, kick: false)
            _ = try await daemon.withClient { try $0.call(.vqStateRestore, VqStateRestoreParams(name: "pending", device: "pn0"), as: VqStateRestoreResult.self) }
            #expect(try vmm.receive(count: more.count).map(\.frame) == more, "frames pending before the restore")
            try Ports.roundTrip(vmm, 20..<24)

            _ = try await daemon.withClient { try $0.call(.portDel, PortNameParams(name: "vm6"), as: PortDelResult.self) }
            for name in ["pn0", "pn1"] { _ = try await daemon.withClient { try $0.call(.devDel, DevDelParams(name: name), as: DevDelResult.self) } }
            #expect(try await daemon.stop() == 0)
        }
    }
}

import ArgumentParser
import Foundation
import VDPAClient
import VDPARPC
import VDPASystem
import VDPATestSupport
import VDPAVhostTestSupport

/// `vdpa-bench vq`: how long a port's rings stop when they move to another device. A mini VMM
/// is the port's consumer (vhost-user); vdpad moves its rings between two devices with
/// `port_set` (the target prepared first, then suspend → read bases → launch), and with
/// `vq_state_save` + `vq_state_restore` (the path a migration takes). The daemon's own
/// per-step timings are collected (`timings_us`), the pause is suspend-to-DRIVER_OK.
///
/// Reference, same run (real kernel only): the kernel's floor for stopping and reading a
/// device, measured directly on a device the benchmark holds itself (VHOST_VDPA_SUSPEND,
/// VHOST_GET_VRING_BASE per queue, VHOST_VDPA_RESUME) with no daemon in between.
///
/// `--socket`: a running vdpad on the real kernel (the lab: Tests/Lab/vq-bench-in-guest.sh).
/// Without it: an in-process daemon over fake devices, which measures vdpad's own overhead
/// per queue (no kernel work at all) for queue counts the simulator does not have.
struct VqStateBenchmarkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vq", abstract: "Virtqueue state moves: datapath pause per step, 1, 2 and 8 queues.")

    @Option(help: "The vdpad API socket (real kernel); absent: an in-process daemon over fake devices.") var socket: String?
    @Option(help: "Management device to create the devices on.") var mgmtdev = "vdpasim_net"
    @Option(parsing: .upToNextOption, help: "Queue counts to measure.") var queues: [Int] = [1, 2, 8]
    @Option(help: "Moves per queue count (alternating between two devices).") var rounds = 40

    func run() async throws {
        var daemon: InProcessDaemon?
        let socketPath: String
        var fakeQueueLimit = Int.max
        if let socket {
            socketPath = socket
        } else {
            let opener = FakeVhostOpener(defaultProfile: .init(queueCount: 17))
            let started = try await InProcessDaemon(kernel: FakeVDPAKernel(), vhostOpener: opener)
            daemon = started
            socketPath = started.socketPath
            fakeQueueLimit = 16
        }
        let real = socket != nil
        let (mgmtdev, queues, rounds, limit) = (self.mgmtdev, self.queues, self.rounds, fakeQueueLimit)
        // Blocking clients and the mini VMM run on a thread of their own, never on the pool the daemon uses.
        try await runOffThePool {
            try Self.runBlocking(socketPath: socketPath, real: real, mgmtdev: mgmtdev, queues: queues, rounds: rounds, fakeQueueLimit: limit)
        }
        try await daemon?.stop()
    }

    static func runBlocking(socketPath: String, real: Bool, mgmtdev: String, queues: [Int], rounds: Int, fakeQueueLimit: Int) throws {
        print("vdpa-bench vq: \(real ? "vdpad over the real kernel (\(mgmtdev))" : "in-process vdpad over fake devices (vdpad's own overhead)"); \(rounds) moves per row; µs, median (p90)")
        let client = try VDPAClient(socketPath: socketPath)
        defer { client.close() }
        let deviceQueues = real ? try Self.deviceQueueCount(client, mgmtdev: mgmtdev) : fakeQueueLimit
        for count in queues {
            // vdpad does not offer the control queue to consumers: the data queues are count - 1 of an odd total.
            guard count <= (real ? deviceQueues - (deviceQueues % 2 == 1 ? 1 : 0) : fakeQueueLimit) else {
                print("\(count) queues: not measurable here: \(mgmtdev) devices have \(deviceQueues) virtqueues")
                continue
            }
            try measure(client, queues: count, real: real, mgmtdev: mgmtdev, rounds: rounds)
        }
    }

    static func deviceQueueCount(_ client: VDPAClient, mgmtdev: String) throws -> Int {
        let list = try client.call(.mgmtdevList, MgmtdevListParams(mgmtdev: mgmtdev), as: MgmtdevListResult.self)
        return Int(list.mgmtdevs.first?.maxSupportedVqs ?? 2)
    }

    static func measure(_ client: VDPAClient, queues count: Int, real: Bool, mgmtdev: String, rounds: Int) throws {
        let names = ["vqb\(count)a", "vqb\(count)b"]
        for name in names {
            _ = try client.call(.devAdd, DevAddParams(name: name, mgmtdev: real ? mgmtdev : "vdpasim_net", driver: "vhost_vdpa"), as: DeviceInfo.self)
        }
        let portName = "vqbench\(count)"
        let port = try client.call(.portAdd, PortAddParams(name: portName, device: names[0]), as: PortInfo.self)
        let vmm = try MiniVMM(vhostUserSocket: port.socket, queues: count)
        defer { vmm.close() }
        var moves: [[String: Int]] = [], saves: [[String: Int]] = [], restores: [[String: Int]] = []
        var moveWall: [Double] = [], migrateWall: [Double] = []
        for round in 0..<rounds {
            let target = names[(round + 1) % 2]
            let start = DispatchTime.now().uptimeNanoseconds
            let moved = try client.call(.portSet, PortSetParams(name: portName, device: target), as: PortInfo.self)
            moveWall.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1000)
            moves.append(moved.timingsUs ?? [:])
        }
        for round in 0..<(rounds / 2) {
            let current = names[(rounds + round) % 2], target = names[(rounds + round + 1) % 2]
            let start = DispatchTime.now().uptimeNanoseconds
            let saved = try client.call(.vqStateSave, VqStateSaveParams(device: current, name: "vqbench", replace: true), as: VqStateInfo.self)
            let restored = try client.call(.vqStateRestore, VqStateRestoreParams(name: "vqbench", device: target), as: VqStateRestoreResult.self)
            migrateWall.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1000)
            saves.append(saved.timingsUs ?? [:])
            restores.append(restored.timingsUs)
        }
        var verified = real ? "no traffic (1 queue)" : "no traffic (fake devices)"
        if real && count >= 2 {
            try vmm.postReceiveBuffers(count: 16)
            let frames = (0..<8).map { number -> [UInt8] in [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x88, 0xb5, UInt8(number)] + [UInt8](repeating: 0, count: 45) }
            try vmm.transmit(frames)
            let received = try vmm.receive(count: frames.count)
            verified = received.map(\.frame) == frames ? "8 frames after the moves: all back, in order" : "FRAMES LOST OR REORDERED after the moves"
        }
        func stat(_ values: [Double]) -> String {
            guard !values.isEmpty else { return "-" }
            let sorted = values.sorted()
            return String(format: "%.0f (%.0f)", sorted[sorted.count / 2], sorted[min(sorted.count - 1, sorted.count * 9 / 10)])
        }
        func column(_ rows: [[String: Int]], _ keys: [String]) -> [Double] { rows.map { row in Double(keys.reduce(0) { $0 + (row[$1] ?? 0) }) } }
        print("\(count) queue\(count == 1 ? "" : "s"):")
        print("  move (port_set):  pause \(stat(column(moves, ["pause"])))  = suspend \(stat(column(moves, ["suspend"]))) + read bases \(stat(column(moves, ["read_base"]))) + set bases/enable \(stat(column(moves, ["vring_base"]))) + DRIVER_OK \(stat(column(moves, ["driver_ok"])))")
        print("                    before the pause: open \(stat(column(moves, ["open"]))) reset \(stat(column(moves, ["reset"]))) features \(stat(column(moves, ["features"]))) map \(stat(column(moves, ["map"]))) vrings \(stat(column(moves, ["vrings"])));  after: release \(stat(column(moves, ["release"])));  request wall \(stat(moveWall))")
        print("  save + restore:   save \(stat(column(saves, ["suspend", "read_base", "status_config", "store"]))) (suspend \(stat(column(saves, ["suspend"]))), store \(stat(column(saves, ["store"]))))  restore \(stat(column(restores, ["open", "reset", "features", "map", "vrings", "release", "vring_base", "driver_ok", "mac"])))  pause seen by the client (save request → restore answer) \(stat(migrateWall))")
        if real {
            let floor = try Self.kernelFloor(client, mgmtdev: mgmtdev, queues: min(count, 2), rounds: rounds)
            let pause = column(moves, ["pause"]).sorted()
            print("  reference: the kernel's floor (suspend + \(min(count, 2)) GET_VRING_BASE + resume on a device held directly) \(stat(floor));  pause / floor \(String(format: "%.1f", pause[pause.count / 2] / max(floor.sorted()[floor.count / 2], 1)))x")
        }
        print("  \(verified)")
        _ = try client.call(.portDel, PortNameParams(name: portName), as: PortDelResult.self)
        for name in names { _ = try client.call(.devDel, DevDelParams(name: name), as: DevDelResult.self) }
    }

    /// Suspend, read every queue's base and resume, on a device this process drives itself.
    static func kernelFloor(_ client: VDPAClient, mgmtdev: String, queues: Int, rounds: Int) throws -> [Double] {
        let info = try client.call(.devAdd, DevAddParams(name: "vqbref", mgmtdev: mgmtdev, driver: "vhost_vdpa"), as: DeviceInfo.self)
        guard let path = info.vhostDevice else { throw ValidationError("vqbref has no vhost-vdpa device") }
        var times: [Double] = []
        do {
            let vmm = try MiniVMM(path: path)
            for _ in 0..<rounds {
                let start = DispatchTime.now().uptimeNanoseconds
                try vmm.device.suspend()
                for queue in 0..<queues { _ = try vmm.device.queueBase(.init(UInt32(queue))) }
                try vmm.device.resume()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1000)
            }
            vmm.close()
        }
        _ = try client.call(.devDel, DevDelParams(name: "vqbref"), as: DevDelResult.self)
        return times
    }
}

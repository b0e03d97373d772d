import Foundation
import Testing
import VDPAClient
import VDPANetlink
import VDPAPolicy
import VDPARPC
import VDPATestSupport
import VDPAVhostTestSupport
import VirtioModel

extension LabTests {
    /// `kill -9` of the real vdpad at random points of its changes, against the real kernel:
    /// after each restart what was acknowledged is there, and the kernel and the store agree.
    @Suite(.serialized) struct CrashTrials {
        init() async throws { try await Lab.removeAllDevices() }

        /// What the test knows to be true: the devices and ports whose last change was acknowledged.
        struct Model {
            var devices: [String: (mac: String, driver: String)] = [:]
            var ports: [String: String?] = [:]
        }

        /// A little deterministic generator (the trials are the same on every run).
        struct Generator: RandomNumberGenerator {
            var state: UInt64
            mutating func next() -> UInt64 {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return state
            }
        }

        /// The kernel's view of the trial devices: name → (MAC, driver), from iproute2 and sysfs.
        static func kernelDevices() async throws -> [String: (mac: String?, driver: String)] {
            let shown = try await Lab.vdpaJSON("dev", "show") as? [String: Any]
            let names = ((shown?["dev"] as? [String: Any]) ?? [:]).keys.filter { $0.hasPrefix("ct") }
            var devices: [String: (mac: String?, driver: String)] = [:]
            for name in names {
                let config = try await Lab.vdpaJSON("dev", "config", "show", name) as? [String: Any]
                let mac = ((config?["config"] as? [String: Any])?[name] as? [String: Any])?["mac"] as? String
                let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/sys/bus/vdpa/devices/\(name)/driver")) ?? "none"
                devices[name] = (mac, URL(fileURLWithPath: link).lastPathComponent)
            }
            return devices
        }

        /// Where vdpad's records and the kernel disagree about the trial devices (names `ct…`):
        /// a device only one of them has, a MAC or driver that differs, a record not active.
        static func disagreements(_ daemon: SpawnedDaemon, kernel: [String: (mac: String?, driver: String)]) async throws -> [String] {
            let list = try await daemon.withClient { try $0.call(.devList, DevListParams(), as: DevListResult.self) }
            let managed = Dictionary(list.devices.filter { $0.name.hasPrefix("ct") && $0.managed }.map { ($0.name, $0) }) { first, _ in first }
            var found: [String] = []
            if !list.vanished.isEmpty { found.append("vanished after a restart: \(list.vanished.map(\.name))") }
            if Set(managed.keys) != Set(kernel.keys) {
                found.append("store has \(managed.keys.sorted()), kernel has \(kernel.keys.sorted())")
            }
            for (name, device) in managed {
                if let recorded = device.record?.mac, let actual = kernel[name]?.mac, recorded != actual { found.append("\(name): record mac \(recorded), kernel \(actual)") }
                if let recorded = device.record?.driver, let actual = kernel[name]?.driver, recorded != actual { found.append("\(name): record driver \(recorded), kernel \(actual)") }
                if device.record?.state != "active" { found.append("\(name): record state \(device.record?.state ?? "none")") }
            }
            return found
        }

        static func printTally(_ title: String, consistent: Int, of trials: Int, _ tally: [String: (acknowledged: Int, cut: Int)]) {
            print("\(title): \(consistent)/\(trials) consistent after kill -9 and restart")
            for (operation, counts) in tally.sorted(by: { $0.key < $1.key }) {
                print("  \(operation): \(counts.acknowledged) acknowledged before the kill, \(counts.cut) cut by it")
            }
        }

        /// Milliseconds since `start`, at least 50.
        static func milliseconds(since start: ContinuousClock.Instant) -> Int {
            let (seconds, attoseconds) = (ContinuousClock.now - start).components
            return max(50, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
        }

        @Test func killMinus9AtRandomPointsLosesNothingAcknowledged() async throws {
            let trials = Int(Lab.environment["VDPAD_CRASH_TRIALS"] ?? "") ?? 100
            var random = Generator(state: 0x5eed_cafe)
            let directory = InProcessDaemon.temporaryDirectory("vdpad-crash")
            let configuration = "ports_dir = \(directory)/ports\n"
            var model = Model()
            var tally: [String: (acknowledged: Int, cut: Int)] = [:]
            var consistent = 0
            var problems: [String] = []
            var daemon = try await SpawnedDaemon(directory: directory, configuration: configuration)
            // How long a change takes here (debug build, the lab's emulated CPU): the kills are
            // spread over twice that, so that they land before, inside and after the changes.
            let start = ContinuousClock.now
            _ = try await daemon.withClient { try $0.call(.devAdd, DevAddParams(name: "ctcal", mgmtdev: "vdpasim_net", driver: "vhost_vdpa"), as: DeviceInfo.self) }
            _ = try await daemon.withClient { try $0.call(.devDel, DevDelParams(name: "ctcal"), as: DevDelResult.self) }
            let window = Self.milliseconds(since: start)
            print("crash trials: a dev_add and a dev_del take \(window) ms; kills within 0-\(window) ms of each change")

            for trial in 0..<trials {
                // One change, chosen among those that make sense now.
                let names = (0..<6).map { "ct\($0)" }
                let existing = model.devices.keys.sorted()
                let free = names.filter { model.devices[$0] == nil }
                let heldDevices = Set(model.ports.values.compactMap { $0 })
                var choices: [String] = []
                if !free.isEmpty { choices.append("dev_add") }
                if existing.contains(where: { !heldDevices.contains($0) }) { choices += ["dev_del", "dev_set", "dev_bind"] }
                if model.ports.count < 3, existing.contains(where: { !heldDevices.contains($0) && model.devices[$0]?.driver == "vhost_vdpa" }) { choices.append("port_add") }
                if !model.ports.isEmpty { choices += ["port_del", "port_set"] }
                let operation = choices.randomElement(using: &random)!
                let mac = String(format: "02:00:00:%02x:%02x:%02x", trial / 256, trial % 256, Int.random(in: 0...255, using: &random))
                let unheld = existing.filter { !heldDevices.contains($0) }
                let request: @Sendable (VDPAClient) throws -> Void
                var apply: (inout Model) -> Void = { _ in }
                switch operation {
                case "dev_add":
                    let name = free.randomElement(using: &random)!
                    let driver = Bool.random(using: &random) ? "vhost_vdpa" : "virtio_vdpa"
                    request = { _ = try $0.call(.devAdd, DevAddParams(name: name, mgmtdev: "vdpasim_net", mac: mac, driver: driver), as: DeviceInfo.self) }
                    apply = { $0.devices[name] = (mac, driver) }
                case "dev_del":
                    let name = unheld.randomElement(using: &random)!
                    request = { _ = try $0.call(.devDel, DevDelParams(name: name), as: DevDelResult.self) }
                    apply = { $0.devices[name] = nil }
                case "dev_set":
                    let name = unheld.randomElement(using: &random)!
                    request = { _ = try $0.call(.devSet, DevSetParams(name: name, mac: mac), as: DeviceConfigInfo.self) }
                    apply = { $0.devices[name]?.mac = mac }
                case "dev_bind":
                    let name = unheld.randomElement(using: &random)!
                    let driver = model.devices[name]?.driver == "vhost_vdpa" ? "virtio_vdpa" : "vhost_vdpa"
                    request = { _ = try $0.call(.devBind, DevBindParams(name: name, driver: driver), as: DeviceInfo.self) }
                    apply = { $0.devices[name]?.driver = driver }
                case "port_add":
                    let port = (0..<3).map { "ctp\($0)" }.first { model.ports[$0] == nil }!
                    let device = unheld.filter { model.devices[$0]?.driver == "vhost_vdpa" }.randomElement(using: &random)!
                    request = { _ = try $0.call(.portAdd, PortAddParams(name: port, device: device), as: PortInfo.self) }
                    apply = { $0.ports[port] = .some(device) }
                case "port_del":
                    let port = model.ports.keys.sorted().randomElement(using: &random)!
                    request = { _ = try $0.call(.portDel, PortNameParams(name: port), as: PortDelResult.self) }
                    apply = { $0.ports[port] = nil }
                default:  // port_set: detach, or attach a free vhost_vdpa device
                    let port = model.ports.keys.sorted().randomElement(using: &random)!
                    if model.ports[port]! != nil {
                        request = { _ = try $0.call(.portSet, PortSetParams(name: port, detach: true), as: PortInfo.self) }
                        apply = { $0.ports[port] = .some(nil) }
                    } else if let device = unheld.filter({ model.devices[$0]?.driver == "vhost_vdpa" }).randomElement(using: &random) {
                        request = { _ = try $0.call(.portSet, PortSetParams(name: port, device: device), as: PortInfo.self) }
                        apply = { $0.ports[port] = .some(device) }
                    } else {
                        request = { _ = try $0.call(.portList, as: PortListResult.self) }
                    }
                }
                // Issue it, and kill vdpad a random moment later: before, during or after.
                let running = daemon
                let call = Task { () -> Bool in
                    do { try await running.withClient(request); return true } catch { return false }
                }
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...window, using: &random)))
                try await daemon.kill()
                let acknowledged = await call.value
                tally[operation, default: (0, 0)].acknowledged += acknowledged ? 1 : 0
                tally[operation, default: (0, 0)].cut += acknowledged ? 0 : 1
                if acknowledged { apply(&model) }

                // Restart, then check: acknowledged changes are there; store and kernel agree.
                daemon = try await SpawnedDaemon(directory: directory, configuration: configuration)
                let kernel = try await Self.kernelDevices()
                var found = try await Self.disagreements(daemon, kernel: kernel)
                // The model follows the acknowledged changes; where a change was cut, what is
                // there now (either outcome) becomes the model, once it is consistent.
                for (name, expected) in model.devices where acknowledged || operation == "port_add" || operation == "port_del" || operation == "port_set" {
                    guard let actual = kernel[name] else { found.append("acknowledged \(name) is missing"); continue }
                    if actual.mac != expected.mac { found.append("\(name): mac \(actual.mac ?? "none"), acknowledged \(expected.mac)") }
                    if actual.driver != expected.driver { found.append("\(name): driver \(actual.driver), acknowledged \(expected.driver)") }
                }
                let ports = try await daemon.withClient { try $0.call(.portList, as: PortListResult.self) }
                let served = Dictionary(ports.ports.map { ($0.name, $0.device) }) { first, _ in first }
                if acknowledged {
                    for (port, device) in model.ports where served[port] == nil || served[port]! != device {
                        found.append("acknowledged port \(port) on \(device ?? "none") is \(served[port].map { $0 ?? "none" } ?? "missing")")
                    }
                }
                for port in served.keys where !FileManager.default.fileExists(atPath: "\(directory)/ports/\(port).sock") { found.append("port \(port) has no socket") }
                if found.isEmpty { consistent += 1 } else { problems.append("trial \(trial) (\(operation), \(acknowledged ? "acknowledged" : "cut")): " + found.joined(separator: "; ")) }
                model.devices = kernel.mapValues { ($0.mac ?? "", $0.driver) }
                model.ports = served
            }
            _ = try await daemon.stop()

            Self.printTally("crash trials", consistent: consistent, of: trials, tally)
            #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
            try await Lab.removeAllDevices()
        }
        /// `kill -9` during live moves (`port_set PORT dev DEV`), saves and restores of a port
        /// whose VMM (the mini VMM) is running traffic on vdpasim_net. After each restart the
        /// VMM reconnects and its frames come back exactly once; the port is on the device of
        /// the last acknowledged move (or, for a cut one, on one of the two); every
        /// acknowledged save reads back as acknowledged, and a cut one is whole or absent.
        @Test func killMinus9DuringMovesSavesAndRestoresOfARunningPort() async throws {
            let trials = Int(Lab.environment["VDPAD_CRASH_PORT_TRIALS"] ?? "") ?? 30
            var random = Generator(state: 0xface_b00c)
            let directory = InProcessDaemon.temporaryDirectory("vdpad-crash-port")
            let configuration = "ports_dir = \(directory)/ports\n"
            var daemon = try await SpawnedDaemon(directory: directory, configuration: configuration)
            let devices = ["ctm0", "ctm1", "ctm2"]
            for name in devices { try await Ports.addDevice(daemon, name) }
            let port = try await daemon.withClient { try $0.call(.portAdd, PortAddParams(name: "ctmp", device: "ctm0"), as: PortInfo.self) }
            let vmm = try MiniVMM(vhostUserSocket: port.socket)
            var next = 0
            /// Frames `next…` sent and received exactly once, in order; what went wrong if not.
            func traffic(_ count: Int = 4) throws -> String? {
                let frames = Ports.frames(next..<(next + count))
                try vmm.postReceiveBuffers(count: count)
                try vmm.transmit(frames)
                let received = try vmm.receive(count: count)
                _ = try vmm.completedTransmissions()  // the transmit descriptors back to the driver
                defer { next += count }
                if received.map(\.frame) != frames { return "frames \(next)..<\(next + count): \(received.count) of \(count) came back, or not in order" }
                if try !vmm.receive(count: 1, timeoutMilliseconds: 300).isEmpty { return "a frame came back twice" }
                return nil
            }
            if let problem = try traffic() { Issue.record("before the trials: \(problem)") }
            var portDevice = "ctm0"
            // The window: a move and a save, here.
            let start = ContinuousClock.now
            _ = try await daemon.withClient { try $0.call(.portSet, PortSetParams(name: "ctmp", device: "ctm1"), as: PortInfo.self) }
            _ = try await daemon.withClient { try $0.call(.vqStateSave, VqStateSaveParams(device: "ctm1", name: "calibration", resume: true), as: VqStateInfo.self) }
            let window = Self.milliseconds(since: start)
            portDevice = "ctm1"
            print("crash trials of a running port: a move and a save take \(window) ms; kills within 0-\(window) ms of each change")

            var saved: [String: VirtqueueStateDocument] = [:]
            var tally: [String: (acknowledged: Int, cut: Int)] = [:]
            var consistent = 0
            var problems: [String] = []
            for trial in 0..<trials {
                let operation = ["move", "save", "restore"].randomElement(using: &random)!
                let target = devices.filter { $0 != portDevice }.randomElement(using: &random)!
                let source = portDevice
                let request: @Sendable (VDPAClient) throws -> VirtqueueStateDocument?
                let name = "cs\(trial)"
                switch operation {
                case "move":
                    request = { _ = try $0.call(.portSet, PortSetParams(name: "ctmp", device: target), as: PortInfo.self); return nil }
                case "save":
                    request = { try $0.call(.vqStateSave, VqStateSaveParams(device: source, name: name, resume: true), as: VqStateInfo.self).state }
                default:  // restore: a save with the rings left stopped (acknowledged), then the restore onto another device
                    saved[name] = try await daemon.withClient { try $0.call(.vqStateSave, VqStateSaveParams(device: source, name: name), as: VqStateInfo.self).state }
                    request = { _ = try $0.call(.vqStateRestore, VqStateRestoreParams(name: name, device: target), as: VqStateRestoreResult.self); return nil }
                }
                let running = daemon
                let call = Task { () -> (acknowledged: Bool, state: VirtqueueStateDocument?) in
                    do { return (true, try await running.withClient(request)) } catch { return (false, nil) }
                }
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...window, using: &random)))
                try await daemon.kill()
                let (acknowledged, state) = await call.value
                tally[operation, default: (0, 0)].acknowledged += acknowledged ? 1 : 0
                tally[operation, default: (0, 0)].cut += acknowledged ? 0 : 1
                if acknowledged, let state { saved[name] = state }

                daemon = try await SpawnedDaemon(directory: directory, configuration: configuration)
                let kernel = try await Self.kernelDevices()
                var found = try await Self.disagreements(daemon, kernel: kernel)
                for device in devices where kernel[device]?.driver != "vhost_vdpa" { found.append("\(device) is \(kernel[device].map { "on \($0.driver)" } ?? "missing")") }
                // The port's device: the move's target once acknowledged, one of the two if cut.
                let info = try await daemon.withClient { try $0.call(.portGet, PortNameParams(name: "ctmp"), as: PortInfo.self) }
                let moves = operation != "save"
                let allowed = moves ? (acknowledged ? [target] : [source, target]) : [source]
                if !allowed.contains(info.device ?? "none") { found.append("port on \(info.device ?? "none"), expected \(allowed)") }
                portDevice = info.device ?? portDevice
                // Saved states: the acknowledged ones as they were; a cut one whole or absent.
                let listed = try await daemon.withClient { try $0.call(.vqStateList, as: VqStateListResult.self) }
                for (saveName, document) in saved {
                    do {
                        let kept = try await daemon.withClient { try $0.call(.vqStateGet, VqStateNameParams(name: saveName), as: VqStateInfo.self) }
                        if kept.state != document { found.append("saved state \(saveName) reads back changed") }
                    } catch {
                        found.append("acknowledged saved state \(saveName): \(error)")
                    }
                }
                for summary in listed.states where saved[summary.name] == nil && summary.name != "calibration" {
                    do {
                        _ = try await daemon.withClient { try $0.call(.vqStateGet, VqStateNameParams(name: summary.name), as: VqStateInfo.self) }
                    } catch {
                        found.append("saved state \(summary.name) of a cut save does not read: \(error)")
                    }
                }
                // The VMM reconnects (as QEMU does, from the used indexes) and traffic flows.
                if await Lab.eventually({ FileManager.default.fileExists(atPath: port.socket) }) {
                    do {
                        try vmm.reconnect()
                        if let problem = try traffic() { found.append(problem) }
                    } catch {
                        found.append("the VMM could not reconnect or send: \(error)")
                    }
                } else {
                    found.append("no port socket after the restart")
                }
                if found.isEmpty { consistent += 1 } else { problems.append("trial \(trial) (\(operation) \(source)→\(target), \(acknowledged ? "acknowledged" : "cut")): " + found.joined(separator: "; ")) }
            }
            vmm.close()
            _ = try await daemon.withClient { try $0.call(.portDel, PortNameParams(name: "ctmp"), as: PortDelResult.self) }
            _ = try await daemon.stop()

            Self.printTally("crash trials of a running port", consistent: consistent, of: trials, tally)
            #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
            try await Lab.removeAllDevices()
        }
    }
}

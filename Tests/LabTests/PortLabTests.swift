import Foundation
import Testing
import VDPAClient
import VDPANetlink
import VDPAPolicy
import VDPARPC
import VDPASystem
import VDPATestSupport
import VDPAVhostTestSupport
import VirtioModel

extension LabTests {
    /// Ports and saved virtqueue state against vdpasim_net, through the real vdpad binary: the
    /// mini VMM plays QEMU on the port's vhost-user socket, vdpad holds /dev/vhost-vdpa-N.
    @Suite(.serialized) struct Ports {
        init() async throws { try await Lab.removeAllDevices() }

        static let mac = MACAddress("02:00:00:00:7a:01")!

        /// Numbered broadcast frames (vdpasim_net's filter passes broadcast and loops TX to RX).
        static func frames(_ numbers: Range<Int>) -> [[UInt8]] {
            numbers.map { number in
                [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] + mac.bytes + [0x88, 0xb5]
                    + withUnsafeBytes(of: UInt32(number).bigEndian, Array.init) + [UInt8](repeating: UInt8(truncatingIfNeeded: number), count: 56)
            }
        }

        /// Sends `numbers` and checks each comes back exactly once, in order.
        static func roundTrip(_ vmm: MiniVMM, _ numbers: Range<Int>, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let frames = frames(numbers)
            try vmm.transmit(frames)
            let received = try vmm.receive(count: frames.count)
            #expect(received.map(\.frame) == frames, "frames \(numbers)", sourceLocation: sourceLocation)
            // Nothing more arrives: no frame was delivered twice.
            #expect(try vmm.receive(count: 1, timeoutMilliseconds: 300).isEmpty, sourceLocation: sourceLocation)
        }

        static func daemon(_ directory: String? = nil) async throws -> SpawnedDaemon {
            let directory = directory ?? InProcessDaemon.temporaryDirectory("vdpad-lab")
            return try await SpawnedDaemon(directory: directory, configuration: "ports_dir = \(directory)/ports\n")
        }

        static func addDevice(_ daemon: SpawnedDaemon, _ name: String, features: String? = nil, mgmtdev: String = "vdpasim_net") async throws {
            let mac: String? = mgmtdev == "vdpasim_net" && features == nil ? Self.mac.description : nil
            _ = try await daemon.withClient {
                try $0.call(.devAdd, DevAddParams(name: name, mgmtdev: mgmtdev, mac: mac, deviceFeatures: features, driver: "vhost_vdpa"), as: DeviceInfo.self)
            }
        }

        @Test func framesSurviveSaveDeleteRecreateAndRestoreOntoAnotherDevice() async throws {
            let daemon = try await Self.daemon()
            try await Self.addDevice(daemon, "pa0")
            let port = try await daemon.withClient { try $0.call(.portAdd, PortAddParams(name: "vm1", device: "pa0"), as: PortInfo.self) }
            #expect(port.backend?.suspend == true)
            let vmm = try MiniVMM(vhostUserSocket: port.socket)
            try vmm.postReceiveBuffers(count: 48)
            let n = 8
            try Self.roundTrip(vmm, 0..<n)

            // Save: the device is suspended; the indexes are what the driver knows.
            let saved = try await daemon.withClient { try $0.call(.vqStateSave, VqStateSaveParams(device: "pa0", name: "s1"), as: VqStateInfo.self) }
            let queues = Dictionary(uniqueKeysWithValues: saved.state.queues.map { ($0.index, $0) })
            #expect(queues[0]?.availableIndex == n && queues[0]?.availableIndex == Int(vmm.usedIndex(queue: 0)))
            #expect(queues[1]?.availableIndex == Int(vmm.availableIndex(queue: 1)) && queues[1]?.availableIndex == n)
            #expect(saved.state.control?.mac == Self.mac.description)
            #expect(saved.state.status.contains("DRIVER_OK"))
            let ports = try await daemon.withClient { try $0.call(.portList, as: PortListResult.self) }
            #expect(ports.ports.first?.state == "suspended", "\(ports)")
            // vdpactl shows the same state, queue by queue.
            let shown = try await Lab.run(Lab.buildDirectory + "/vdpactl", ["--socket", daemon.socketPath, "vq", "show", "s1"])
            #expect(shown.status == 0 && shown.stdout.contains("vq 0: size 64 base \(n) avail \(n) used \(n)"), "\(shown)")
            // The capabilities document now knows vdpasim_net's backend abilities.
            let caps = try await daemon.withClient { try $0.call(.capsExport, as: CapabilitiesDocument.self) }
            #expect(caps.mgmtdev("vdpasim_net")?.backend == BackendAbilities(suspend: true, resume: true))

            // The device is deleted (vdpad gives it up first) and created again; restore.
            let busy = try await daemon.withClient { client in
                #expect(throws: RPCErrorObject.self) { try client.call(.devDel, DevDelParams(name: "pa0"), as: DevDelResult.self) }
            }
            #expect(busy?.errorCode == .deviceInUse)
            _ = try await daemon.withClient { try $0.call(.portSet, PortSetParams(name: "vm1", detach: true), as: PortInfo.self) }
            _ = try await daemon.withClient { try $0.call(.devDel, DevDelParams(name: "pa0"), as: DevDelResult.self) }
            try await Self.addDevice(daemon, "pa0")
            let restored = try await daemon.withClient { try $0.call(.vqStateRestore, VqStateRestoreParams(name: "s1", device: "pa0"), as: VqStateRestoreResult.self) }
            #expect(restored.port == "vm1")
            try Self.roundTrip(vmm, n..<(2 * n))

            // Separately: onto a second device, from the running first one.
            try await Self.addDevice(daemon, "pb0")
            _ = try await daemon.withClient { try $0.call(.vqStateSave, VqStateSaveParams(device: "pa0", name: "s2"), as: VqStateInfo.self) }
            let moved = try await daemon.withClient { try $0.call(.vqStateRestore, VqStateRestoreParams(name: "s2", device: "pb0"), as: VqStateRestoreResult.self) }
            print("restore onto another device, µs per step: \(moved.timingsUs)")
            let info = try await daemon.withClient { try $0.call(.portGet, PortNameParams(name: "vm1"), as: PortInfo.self) }
            #expect(info.backend?.device == "pb0" && info.state == "running", "\(info)")
            try Self.roundTrip(vmm, (2 * n)..<(3 * n))

            // A live move back (port_set): the target is prepared, then the rings stop only for
            // suspend, read bases, launch.
            // (through vdpactl, which prints the pause).
            let moved2 = try await Lab.run(Lab.buildDirectory + "/vdpactl", ["--socket", daemon.socketPath, "port", "set", "vm1", "dev", "pa0"])
            #expect(moved2.status == 0 && moved2.stdout.hasPrefix("vm1: moved to pa0 pause "), "\(moved2)")
            let back = try await daemon.withClient { try $0.call(.portGet, PortNameParams(name: "vm1"), as: PortInfo.self) }
            #expect(back.state == "running" && back.backend?.device == "pa0", "\(back)")
            try Self.roundTrip(vmm, (3 * n)..<(4 * n))

            vmm.close()
            _ = try await daemon.withClient { try $0.call(.portDel, PortNameParams(name: "vm1"), as: PortDelResult.self) }
            for name in ["pa0", "pb0"] { _ = try await daemon.withClient { try $0.call(.devDel, DevDelParams(name: name), as: DevDelResult.self) } }
            #expect(try await daemon.stop() == 0)
        }

        /// What a port pins of a VMM's memory is unpinned when the VMM leaves. vdpa_sim maps by
        /// user address by default (nothing pinned); reloaded with use_va=0 it pins the pages, as
        /// a device behind an IOMMU does (vhost_vdpa_pa_map), and the kernel counts them in VmPin.
        @Test func memoryPinnedForAVMMIsUnpinnedWhenItLeaves() async throws {
            func reloadSimulator(_ parameters: [String]) async throws {
                for module in ["vdpa_sim_net", "vdpa_sim_blk", "vdpa_sim"] { _ = try await Lab.run("/sbin/modprobe", ["-r", module]) }
                let loaded = try await Lab.run("/sbin/modprobe", ["vdpa_sim"] + parameters)
                #expect(loaded.status == 0, "\(loaded)")
                for module in ["vdpa_sim_net", "vdpa_sim_blk"] { _ = try await Lab.run("/sbin/modprobe", [module]) }
                let back = await Lab.eventually { (try? await Lab.vdpa("mgmtdev", "show", "vdpasim_net"))?.status == 0 }
                #expect(back, "vdpasim_net did not come back after reloading vdpa_sim")
            }
            try await reloadSimulator(["use_va=0"])
            let daemon = try await Self.daemon()
            do {
                try await Self.addDevice(daemon, "pin0")
                let port = try await daemon.withClient { try $0.call(.portAdd, PortAddParams(name: "vm1", device: "pin0"), as: PortInfo.self) }
                let before = daemon.pinnedKiB ?? -1
                let vmm = try MiniVMM(vhostUserSocket: port.socket)
                try vmm.postReceiveBuffers(count: 16)
                try Self.roundTrip(vmm, 0..<4)
                let pinned = daemon.pinnedKiB ?? -1
                #expect(pinned > before, "VmPin \(pinned) KiB with a VMM, \(before) KiB before")
                vmm.close()
                let unpinned = await Lab.eventually { (daemon.pinnedKiB ?? -1) <= before }
                #expect(unpinned, "VmPin \(daemon.pinnedKiB ?? -1) KiB after the VMM left (\(pinned) KiB with it, \(before) KiB before)")
                print("VmPin of vdpad: \(before) KiB before the VMM, \(pinned) KiB with it, \(daemon.pinnedKiB ?? -1) KiB after it left")
            } catch {
                Issue.record(error)
            }
            #expect(try await daemon.stop() == 0)
            try await Lab.removeAllDevices()
            try await reloadSimulator([])
        }

        /// A port with a profile offers the VMM exactly the profile on vdpasim_net (which offers
        /// more: the control queue, ANY_LAYOUT), with the profile's MAC in the configuration
        /// space; frames flow; a profile the device cannot present is refused with its reasons.
        @Test func aPortWithAProfilePresentsExactlyTheProfile() async throws {
            let daemon = try await Self.daemon()
            try await Self.addDevice(daemon, "pp0")
            try await Self.addDevice(daemon, "pp1")
            let features: VirtioFeatures = [.version1, .Net.mac, .Net.status]
            let mac = MACAddress("52:54:00:7a:00:02")!
            _ = try await daemon.withClient {
                try $0.call(.profileAdd, Profile(name: "lab-port", deviceType: .network, features: features, mac: .fixed(mac)), as: ProfileInfo.self)
            }
            let port = try await daemon.withClient { try $0.call(.portAdd, PortAddParams(name: "vmp", device: "pp0", profile: "lab-port"), as: PortInfo.self) }
            let (offered, config) = try await runOffThePool { () -> (UInt64, [UInt8]) in
                let frontend = try VhostUserFrontend(socketPath: port.socket)
                defer { frontend.close() }
                try frontend.setOwner()
                return (try frontend.getFeatures(), try frontend.getConfig(offset: 0, size: 6))
            }
            #expect(VirtioFeatures(rawValue: offered) == features.union(VirtioFeatures(rawValue: 1 << 30)), "\(VirtioFeatures(rawValue: offered))")
            #expect(config == mac.bytes, "\(config)")
            #expect(await Lab.eventually { FileManager.default.fileExists(atPath: port.socket) })
            let vmm = try MiniVMM(vhostUserSocket: port.socket)
            try vmm.postReceiveBuffers(count: 16)
            try Self.roundTrip(vmm, 0..<4)
            vmm.close()

            _ = try await daemon.withClient {
                try $0.call(.profileAdd, Profile(name: "lab-packed", deviceType: .network, features: [.version1, .ringPacked]), as: ProfileInfo.self)
            }
            let refused = try await daemon.withClient { client -> RPCErrorObject? in
                do { _ = try client.call(.portAdd, PortAddParams(name: "vmq", device: "pp1", profile: "lab-packed"), as: PortInfo.self); return nil } catch let error as RPCErrorObject { return error }
            }
            #expect(refused?.errorCode == .profileIncompatible && refused?.data?.reasons?.contains { $0.features == ["RING_PACKED"] } == true,
                    "\(String(describing: refused))")
            _ = try await daemon.withClient { try $0.call(.portDel, PortNameParams(name: "vmp"), as: PortDelResult.self) }
            for name in ["pp0", "pp1"] { _ = try await daemon.withClient { try $0.call(.devDel, DevDelParams(name: name), as: DevDelResult.self) } }
            #expect(try await daemon.stop() == 0)
        }

        @Test func restoreIsRefusedWithEveryReason() async throws {
            let daemon = try await Self.daemon()
            try await Self.addDevice(daemon, "pr0")
            let port = try await daemon.withClient { try $0.call(.portAdd, PortAddParams(name: "vm2", device: "pr0"), as: PortInfo.self) }
            let vmm = try MiniVMM(vhostUserSocket: port.socket)
            try vmm.postReceiveBuffers(count: 8)
            _ = try await daemon.withClient { try $0.call(.vqStateSave, VqStateSaveParams(device: "pr0", name: "r1", resume: true), as: VqStateInfo.self) }
            try Self.roundTrip(vmm, 0..<4)  // resumed: still running

            // A device without MAC (the driver negotiated it): features differ.
            try await Self.addDevice(daemon, "pr1", features: "0x300000008")
            let noMAC = try await daemon.withClient { client in
                #expect(throws: RPCErrorObject.self) { try client.call(.vqStateRestore, VqStateRestoreParams(name: "r1", device: "pr1"), as: VqStateRestoreResult.self) }
            }
            #expect(noMAC?.errorCode == .stateIncompatible)
            #expect(noMAC?.data?.reasons?.contains { $0.code == "features_missing" && $0.features == ["MAC"] } == true, "\(String(describing: noMAC))")
            // A block device: another type, another queue count.
            try await Self.addDevice(daemon, "pr2", mgmtdev: "vdpasim_blk")
            let block = try await daemon.withClient { client in
                #expect(throws: RPCErrorObject.self) { try client.call(.vqStateRestore, VqStateRestoreParams(name: "r1", device: "pr2"), as: VqStateRestoreResult.self) }
            }
            let codes = Set(block?.data?.reasons?.map(\.code) ?? [])
            #expect(codes.isSuperset(of: ["device_type_unsupported", "queue_count_mismatch"]), "\(String(describing: block))")
            // Refusals leave the port running on its device.
            try Self.roundTrip(vmm, 4..<8)

            vmm.close()
            _ = try await daemon.withClient { try $0.call(.portDel, PortNameParams(name: "vm2"), as: PortDelResult.self) }
            for name in ["pr0", "pr1", "pr2"] { _ = try await daemon.withClient { try $0.call(.devDel, DevDelParams(name: name), as: DevDelResult.self) } }
            #expect(try await daemon.stop() == 0)
        }

        @Test func aSavedStateSurvivesKillMinus9AndAnExportRestoresElsewhere() async throws {
            let directory = InProcessDaemon.temporaryDirectory("vdpad-lab")
            let first = try await Self.daemon(directory)
            try await Self.addDevice(first, "pk0")
            let port = try await first.withClient { try $0.call(.portAdd, PortAddParams(name: "vm3", device: "pk0"), as: PortInfo.self) }
            let vmm = try MiniVMM(vhostUserSocket: port.socket)
            try vmm.postReceiveBuffers(count: 48)
            try Self.roundTrip(vmm, 0..<8)
            _ = try await first.withClient { try $0.call(.vqStateSave, VqStateSaveParams(device: "pk0", name: "k1"), as: VqStateInfo.self) }
            try await first.kill()
            // The kernel reset the device when vdpad's descriptor closed; the state is on disk.
            let second = try await Self.daemon(directory)
            let kept = try await second.withClient { try $0.call(.vqStateGet, VqStateNameParams(name: "k1"), as: VqStateInfo.self) }
            #expect(kept.state.queues.first { $0.index == 0 }?.availableIndex == 8)
            // The port is served again with its device; the VMM reconnects, vdpad restores.
            #expect(await Lab.eventually { FileManager.default.fileExists(atPath: port.socket) })
            try vmm.reconnect()
            _ = try await second.withClient { try $0.call(.vqStateRestore, VqStateRestoreParams(name: "k1", device: "pk0"), as: VqStateRestoreResult.self) }
            try Self.roundTrip(vmm, 8..<16)

            // Export, import into another state directory: the same state.
            let document = try await second.withClient { try $0.call(.vqStateExport, VqStateNameParams(name: "k1"), as: VirtqueueStateDocument.self) }
            vmm.close()
            _ = try await second.withClient { try $0.call(.portDel, PortNameParams(name: "vm3"), as: PortDelResult.self) }
            #expect(try await second.stop() == 0)
            let third = try await Self.daemon()
            let imported = try await third.withClient { try $0.call(.vqStateImport, VqStateImportParams(state: document), as: VqStateInfo.self) }
            #expect(imported.state == document && imported.origin == "imported")
            let again = try await third.withClient { try $0.call(.portAdd, PortAddParams(name: "vm3", device: "pk0"), as: PortInfo.self) }
            let vmm2 = try MiniVMM(vhostUserSocket: again.socket)
            // Its rings stand where the exported state says, as a migrated guest's memory would
            // (a device started at base 8 on a transmit ring whose avail index is 0 would read
            // 65528 stale entries once kicked).
            try vmm2.postReceiveBuffers(count: 8)
            try Self.roundTrip(vmm2, 0..<8)
            _ = try await third.withClient { try $0.call(.vqStateRestore, VqStateRestoreParams(name: "k1", device: "pk0"), as: VqStateRestoreResult.self) }
            let state = try await third.withClient { try $0.call(.vqStateSave, VqStateSaveParams(device: "pk0", name: "k2"), as: VqStateInfo.self) }
            // The new device started where the export said (no traffic since).
            #expect(state.state.queues.map(\.base) == document.queues.map(\.base))
            vmm2.close()
            _ = try await third.withClient { try $0.call(.portDel, PortNameParams(name: "vm3"), as: PortDelResult.self) }
            _ = try await third.withClient { try $0.call(.devDel, DevDelParams(name: "pk0", force: true), as: DevDelResult.self) }
            #expect(try await third.stop() == 0)
        }
    }
}

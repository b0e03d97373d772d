import Foundation
import Testing
import VDPAClient
import VDPARPC
import VDPAStore
import VDPASystem
import VirtioModel
import VirtioNet
import VDPATestSupport
import VDPAVhostTestSupport
import VirtioNetTestSupport

/// Ports backed by vdpad's own datapath: the mini VMM (a vhost-user front-end with its guest
/// memory in a memfd) talks through the port and its TAP to the kernel's network stack in a
/// namespace the test made (10.214.0.1/30), and gets the kernel's ARP and ICMP replies.
@Suite(.serialized, .enabled(if: TapEnvironment.available, "needs root, /dev/net/tun and ip(8)"))
struct SoftwarePortTests {
    static let guestIP: [UInt8] = [10, 214, 0, 2]
    static let hostIP: [UInt8] = [10, 214, 0, 1]

    @Test func aVMMOnASoftwarePortReachesTheKernelThroughItsTAP() async throws {
        let suffix = "\(getpid() % 100_000)"
        let tap = "vdpst\(suffix)", namespace = "vdpsns\(suffix)"
        try TapEnvironment.makeNamespace(namespace)
        defer { _ = try? TapEnvironment.ip(["netns", "del", namespace]) }
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        let port = try await daemon.withClient { try $0.call(.portAdd, PortAddParams(name: "vm", tap: tap), as: PortInfo.self) }
        #expect(port.tap == tap && port.backend?.type == "software" && port.backend?.device == tap && port.state == "waiting", "\(port)")
        // The kernel's side of the TAP, in its own namespace.
        try TapEnvironment.move(tap, into: namespace, address: "10.214.0.1/30")
        let hostMAC = try TapEnvironment.macAddress(of: tap, in: namespace)

        let vmm = try await connectMiniVMM(port.socket)
        defer { vmm.close() }
        let running = try await daemon.withClient { try $0.call(.portGet, PortNameParams(name: "vm"), as: PortInfo.self) }
        #expect(running.state == "running" && running.consumer?.driverOK == true, "\(running)")
        let guestMAC: [UInt8] = [0x52, 0x54, 0x00, 0x21, 0x3a, 0x03]
        try vmm.postReceiveBuffers(count: 32)

        /// The first received frame that `matches` within 5 s (others, e.g. IPv6 router solicitations, are skipped).
        func awaitFrame(_ matches: ([UInt8]) -> Bool) throws -> [UInt8]? {
            let deadline = Date().addingTimeInterval(5)
            while Date() < deadline {
                for packet in try vmm.receive(count: 1, timeoutMilliseconds: 200) where matches(packet.frame) { return packet.frame }
            }
            return nil
        }
        try vmm.transmit([TestFrames.arpRequest(senderMAC: guestMAC, senderIP: Self.guestIP, targetIP: Self.hostIP)])
        let arp = try #require(try awaitFrame(TestFrames.isARPReply), "no ARP reply through the port")
        #expect(Array(arp[22..<28]) == hostMAC && Array(arp[28..<32]) == Self.hostIP)
        let payload = (0..<56).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        try vmm.transmit([TestFrames.icmpEchoRequest(from: guestMAC, Self.guestIP, to: hostMAC, Self.hostIP, payload: payload)])
        let echo = try #require(try awaitFrame(TestFrames.isEchoReply), "no ICMP echo reply through the port")
        #expect(Array(echo[42..<(42 + payload.count)]) == payload && TestFrames.internetChecksum(echo[14..<34]) == 0)
        _ = try vmm.completedTransmissions()

        // The counters: two frames sent by the guest (transmitq 1), at least two received (receiveq 0).
        let counted = try await daemon.withClient { try $0.call(.portGet, PortNameParams(name: "vm"), as: PortInfo.self) }
        let queues = Dictionary(uniqueKeysWithValues: (counted.backend?.queues ?? []).map { ($0.index, $0) })
        #expect(queues[1]?.packets == 2 && (queues[0]?.packets ?? 0) >= 2 && queues[1]?.errors == 0, "\(String(describing: counted.backend?.queues))")
        // Kept across a restart of the daemon: the record names the TAP, served again.
        vmm.close()
        try await daemon.stop()
        let again = try await InProcessDaemon(kernel: FakeVDPAKernel(), stateDirectory: daemon.stateDirectory)
        let served = try await again.withClient { try $0.call(.portGet, PortNameParams(name: "vm"), as: PortInfo.self) }
        #expect(served.tap == tap && served.backend?.type == "software" && served.backend?.device == tap, "\(served)")
        _ = try await again.withClient { try $0.call(.portDel, PortNameParams(name: "vm"), as: PortDelResult.self) }
        try await again.stop()
    }

    /// A software port with two queue pairs on a multi-queue TAP: the VMM negotiates MQ and the
    /// control queue, turns both pairs on and sets a receive mode and its MAC through the
    /// control queue; each pair reaches the kernel, the filter the guest set applies, the
    /// control state is kept when the workers restart, and what the port refuses gets an error.
    @Test func aMultiQueuePortServesEachPairAndTheGuestsControlQueue() async throws {
        let suffix = "\(getpid() % 100_000)"
        let tap = "vdpsm\(suffix)", namespace = "vdpsmns\(suffix)"
        try TapEnvironment.makeNamespace(namespace)
        defer { _ = try? TapEnvironment.ip(["netns", "del", namespace]) }
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        let port = try await daemon.withClient { try $0.call(.portAdd, PortAddParams(name: "vm", tap: tap, queues: 2), as: PortInfo.self) }
        let offered = port.backend?.deviceFeatures.names ?? []
        #expect(port.queues == 2 && port.backend?.queueCount == 5 && offered.contains("MQ") && offered.contains("CTRL_VQ"), "\(port)")
        try TapEnvironment.move(tap, into: namespace, address: "10.214.0.1/30")
        let hostMAC = try TapEnvironment.macAddress(of: tap, in: namespace)

        let vmm = try await connectMiniVMM(port.socket, queues: 4, control: true)
        defer { vmm.close() }
        #expect(vmm.features.contains(.Net.multiqueue) && vmm.features.contains(.Net.controlVirtqueue), "\(vmm.features)")
        let guestMAC = try #require(MACAddress("52:54:00:21:3a:07"))
        #expect(try vmm.control(.queuePairsSet(2)) == 0)
        #expect(try vmm.control(.queuePairsSet(3)) == 1, "three pairs on a device of two must be refused")
        #expect(try vmm.control(.macAddressSet(guestMAC)) == 0)
        #expect(try vmm.control(.rxMode(.promiscuous, on: false)) == 0)
        let control = try await daemon.withClient { try $0.call(.portGet, PortNameParams(name: "vm"), as: PortInfo.self) }.backend?.control
        #expect(control?.queuePairs == 2 && control?.rxModes == [] && control?.mac == guestMAC.description, "\(String(describing: control))")

        for pair in 0..<2 { try vmm.postReceiveBuffers(count: 32, pair: pair) }
        /// The first frame on either receive queue that `matches` within 5 s.
        func awaitFrame(_ matches: ([UInt8]) -> Bool) throws -> [UInt8]? {
            let deadline = Date().addingTimeInterval(5)
            while Date() < deadline {
                for pair in 0..<2 {
                    for packet in try vmm.receive(count: 1, pair: pair, timeoutMilliseconds: 100) where matches(packet.frame) { return packet.frame }
                }
            }
            return nil
        }
        // Each pair's transmit queue reaches the kernel; replies come back to the guest's MAC
        // (promiscuous is off: the filter lets through what is addressed to it).
        for pair in 0..<2 {
            try vmm.transmit([TestFrames.arpRequest(senderMAC: guestMAC.bytes, senderIP: Self.guestIP, targetIP: Self.hostIP)], pair: pair)
            let arp = try #require(try awaitFrame(TestFrames.isARPReply), "no ARP reply to a request on pair \(pair)")
            #expect(Array(arp[0..<6]) == guestMAC.bytes && Array(arp[22..<28]) == hostMAC)
        }
        // The workers restart when the VMM gives a queue its call eventfd again: the control
        // state (receive mode, MAC, pairs) is still the guest's, and both pairs still run.
        try vmm.resendCall(queue: 3)
        let kept = try await daemon.withClient { try $0.call(.portGet, PortNameParams(name: "vm"), as: PortInfo.self) }
        #expect(kept.backend?.control == control, "\(String(describing: kept.backend?.control))")
        let payload = (0..<56).map { UInt8(truncatingIfNeeded: $0 &* 5 &+ 1) }
        try vmm.transmit([TestFrames.icmpEchoRequest(from: guestMAC.bytes, Self.guestIP, to: hostMAC, Self.hostIP, payload: payload)], pair: 1)
        let echo = try #require(try awaitFrame(TestFrames.isEchoReply), "no ICMP echo reply after the workers restarted")
        #expect(Array(echo[42..<(42 + payload.count)]) == payload)
        let counted = try await daemon.withClient { try $0.call(.portGet, PortNameParams(name: "vm"), as: PortInfo.self) }
        let queues = Dictionary(uniqueKeysWithValues: (counted.backend?.queues ?? []).map { ($0.index, $0) })
        #expect(queues[1]?.packets == 1 && queues[3]?.packets == 2, "\(String(describing: counted.backend?.queues))")
        _ = try await daemon.withClient { try $0.call(.portDel, PortNameParams(name: "vm"), as: PortDelResult.self) }
        try await daemon.stop()
    }

    @Test func queuesWithoutATAPOrOutOfRangeAreInvalidParams() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        for params in [PortAddParams(name: "vm", queues: 2), PortAddParams(name: "vm", tap: "vdpsq0", queues: 0), PortAddParams(name: "vm", tap: "vdpsq0", queues: 17)] {
            let error = try await daemon.withClient { client -> RPCErrorObject? in
                do { _ = try client.call(.portAdd, params, as: PortInfo.self); return nil } catch let error as RPCErrorObject { return error }
            }
            #expect(error?.errorCode == .invalidParams && error?.data?.parameter == "queues", "\(params): \(String(describing: error))")
        }
        try await daemon.stop()
    }

    /// A record whose queue pairs are out of range (a damaged database) is served without its
    /// software backend, and the daemon lives: the number is bounded as the API bounds it.
    @Test(arguments: [Int64(0), -3, 100_000])
    func aRecordWithQueuesOutOfRangeIsServedWithoutItsBackend(queues: Int64) async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        let tap = "vdpsr\(getpid() % 100_000)"
        _ = try await daemon.withClient { try $0.call(.portAdd, PortAddParams(name: "vm", tap: tap), as: PortInfo.self) }
        try await daemon.stop()
        let store = try StateStore(directory: daemon.stateDirectory)
        var record = try #require(try store.ports().first { $0.name == "vm" })
        record.queues = queues
        try store.save(record)
        let again = try await InProcessDaemon(kernel: FakeVDPAKernel(), stateDirectory: daemon.stateDirectory)
        let served = try await again.withClient { try $0.call(.portGet, PortNameParams(name: "vm"), as: PortInfo.self) }
        #expect(served.backend == nil && served.state == "waiting", "\(served)")
        _ = try await again.withClient { try $0.call(.portDel, PortNameParams(name: "vm"), as: PortDelResult.self) }
        try await again.stop()
    }

    /// A VMM whose memory cannot be sealed truncates it under the running datapath: the
    /// accesses past its end are absorbed and counted, the device asks for a reset, and the
    /// daemon (this process) lives and answers.
    @Test func aVMMThatTruncatesItsMemoryDoesNotStopTheDaemon() async throws {
        let tap = "vdpsf\(getpid() % 100_000)"
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        let port = try await daemon.withClient { try $0.call(.portAdd, PortAddParams(name: "vm", tap: tap), as: PortInfo.self) }
        final class Box: @unchecked Sendable {
            // SAFETY (@unchecked): written by the one thread, read after it finished.
            var vmm: MiniVMM?
        }
        let box = Box()
        try await runOffThePool { box.vmm = try MiniVMM(vhostUserSocket: port.socket, sealable: false) }
        let vmm = try #require(box.vmm)
        defer { vmm.close() }
        let running = try await daemon.withClient { try $0.call(.portGet, PortNameParams(name: "vm"), as: PortInfo.self) }
        #expect(running.state == "running" && running.backend?.memoryFaults == 0, "\(running)")

        // From here on nobody in this process may touch the VMM's memory but the datapath.
        try vmm.truncateMemory()
        try vmm.kick(queue: 1)
        var faults: UInt64 = 0
        for _ in 0..<100 where faults == 0 {
            try await Task.sleep(for: .milliseconds(50))
            faults = try await daemon.withClient { try $0.call(.portGet, PortNameParams(name: "vm"), as: PortInfo.self) }.backend?.memoryFaults ?? 0
        }
        #expect(faults > 0, "the datapath never touched the truncated memory")
        let status = try await daemon.withClient { try $0.call(.daemonStatus, as: DaemonStatusResult.self) }
        #expect(status.pid == getpid())
        _ = try await daemon.withClient { try $0.call(.portDel, PortNameParams(name: "vm"), as: PortDelResult.self) }
        try await daemon.stop()
    }

    @Test func aTAPNameTheKernelWouldRefuseIsInvalidParams() async throws {
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        for name in ["", "a/b", "sixteen-chars-xx", "..", "-x"] {
            let error = try await daemon.withClient { client -> RPCErrorObject? in
                do { _ = try client.call(.portAdd, PortAddParams(name: "vm", tap: name), as: PortInfo.self); return nil } catch let error as RPCErrorObject { return error }
            }
            #expect(error?.errorCode == .invalidParams && error?.data?.parameter == "tap", "\(name): \(String(describing: error))")
        }
        let both = try await daemon.withClient { client -> RPCErrorObject? in
            do { _ = try client.call(.portAdd, PortAddParams(name: "vm", device: "d0", tap: "t0"), as: PortInfo.self); return nil } catch let error as RPCErrorObject { return error }
        }
        #expect(both?.errorCode == .invalidParams)
        try await daemon.stop()
    }
}

/// The programs the peer tests run.
enum PeerTools {
    static let testpmd = "/usr/bin/dpdk-testpmd"
    static let busybox = "/bin/busybox"
}

/// Real VMMs as the peers of software ports. They busy-poll a core, so they run alone, in a step
/// of their own (`VDPAD_PEERS=1`, Tests/run-tests.sh), not beside the timing-sensitive tests.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["VDPAD_PEERS"] == "1" && TapEnvironment.available
                                && FileManager.default.isExecutableFile(atPath: PeerTools.testpmd)
                                && FileManager.default.isExecutableFile(atPath: PeerTools.busybox),
                             "VDPAD_PEERS=1, root, /dev/net/tun, dpdk-testpmd (dpdk-dev) and busybox"))
struct PeerTests {

    /// DPDK's testpmd is the VMM (`net_virtio_user`, its own virtio driver and memory, which it
    /// does not let vdpad seal) in `icmpecho` mode: it answers ARP and ICMP echo requests. A
    /// peer in the TAP's namespace pings it through the port: every ping is answered.
    /// With the split ring and the packed ring (`packed_vq=1`: its SET_VRING_BASE carries the
    /// avail half only).
    @Test(arguments: [false, true])
    func dpdkTestpmdOnASoftwarePortAnswersPingsThroughItsTAP(packed: Bool) async throws {
        let suffix = "\(getpid() % 100_000)"
        let tap = "vdpsd\(suffix)\(packed ? "p" : "s")", namespace = "vdpsdns\(suffix)\(packed ? "p" : "s")"
        try TapEnvironment.makeNamespace(namespace)
        defer { _ = try? TapEnvironment.ip(["netns", "del", namespace]) }
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        let port = try await daemon.withClient { try $0.call(.portAdd, PortAddParams(name: "dp", tap: tap), as: PortInfo.self) }
        try TapEnvironment.move(tap, into: namespace, address: "10.216.0.1/24")

        let testpmd = try ChildProcess.start(PeerTools.testpmd, [
            "-l", "0,1", "--no-pci", "--no-huge", "-m", "512", "--file-prefix", "vdpsd\(suffix)",
            "--vdev", "net_virtio_user0,path=\(port.socket),queues=1" + (packed ? ",packed_vq=1" : ""), "--",
            "--forward-mode=icmpecho", "--nb-cores=1", "--stats-period", "1", "--total-num-mbufs=8192"])
        defer { _ = try? ChildProcess.stop(testpmd) }
        var state = ""
        for _ in 0..<300 where state != "running" {
            try await Task.sleep(for: .milliseconds(100))
            state = try await daemon.withClient { try $0.call(.portGet, PortNameParams(name: "dp"), as: PortInfo.self) }.state
        }
        #expect(state == "running", "testpmd did not start its device on the port")
        // testpmd starts forwarding a moment after its device runs: one answered ping says it
        // does (up to 20 tries); then every one of five must be answered.
        var warm = false
        for _ in 0..<20 where !warm {
            warm = try await runOffThePool {
                try ChildProcess.run(TapEnvironment.ipTool, ["netns", "exec", namespace, PeerTools.busybox, "ping", "-c", "1", "-W", "1", "10.216.0.2"])
            }.status == 0
        }
        #expect(warm, "testpmd never answered a ping")

        let ping = try await runOffThePool {
            try ChildProcess.run(TapEnvironment.ipTool, ["netns", "exec", namespace, PeerTools.busybox, "ping", "-c", "5", "-W", "3", "10.216.0.2"])
        }
        let text = ping.output
        #expect(ping.status == 0 && text.contains("5 packets received"), "\(text)")
        let info = try await daemon.withClient { try $0.call(.portGet, PortNameParams(name: "dp"), as: PortInfo.self) }
        let queues = Dictionary(uniqueKeysWithValues: (info.backend?.queues ?? []).map { ($0.index, $0) })
        // Five echo replies and an ARP reply from testpmd (transmitq); what the peer sent (receiveq).
        #expect((queues[1]?.packets ?? 0) >= 6 && (queues[0]?.packets ?? 0) >= 6 && info.backend?.memoryFaults == 0, "\(info)")
        print("testpmd on a software port (\(packed ? "packed" : "split")): \(text.split(separator: "\n").suffix(2).joined(separator: "; "))")
        _ = try await daemon.withClient { try $0.call(.portDel, PortNameParams(name: "dp"), as: PortDelResult.self) }
        try await daemon.stop()
    }

    /// The repository's root (Tests/Lab/lab.sh is there).
    static var repository: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// QEMU (software emulation) boots the kernel lab's Linux guest with its memory in a memfd
    /// and its NIC on a software port (`-netdev vhost-user`, `virtio-net-pci`): the guest's own
    /// virtio_net driver pings the peer in the TAP's namespace and sends it 8 MiB over TCP,
    /// which arrive intact; with the split ring, with the packed ring (`packed=on`), and with
    /// two queue pairs (`mq=on`, a two-vCPU guest, a multi-queue TAP): the guest pings from
    /// its second vCPU too, which its driver sends on the second pair's transmit queue.
    @Test(arguments: [(false, 1), (true, 1), (false, 2)])
    func aLinuxGuestUnderQEMUPingsAndSendsThroughASoftwarePort(packed: Bool, queuePairs: Int) async throws {
        let lab = Self.repository + "/Tests/Lab/lab.sh"
        let suffix = "\(getpid() % 100_000)\(packed ? "p" : "s")\(queuePairs)"
        let tap = "vdpsq\(suffix)", namespace = "vdpsqns\(suffix)"
        try TapEnvironment.makeNamespace(namespace)
        defer { _ = try? TapEnvironment.ip(["netns", "del", namespace]) }
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        let port = try await daemon.withClient {
            try $0.call(.portAdd, PortAddParams(name: "guest", tap: tap, queues: queuePairs > 1 ? queuePairs : nil), as: PortInfo.self)
        }
        try TapEnvironment.move(tap, into: namespace, address: "10.217.0.1/24")
        let out = InProcessDaemon.temporaryDirectory("vdpad-peer-qemu")
        let received = out + "/received"
        let listener = try ChildProcess.start("/usr/bin/timeout", [
            "600", TapEnvironment.ipTool, "netns", "exec", namespace, PeerTools.busybox, "nc", "-l", "-p", "5001",
            "-e", "/bin/sh", "-c", "cat > \(received)"])
        defer { _ = try? ChildProcess.stop(listener) }

        let qemu = [
            "-object", "memory-backend-memfd,id=mem,size=512M,share=on", "-numa", "node,memdev=mem",
            "-chardev", "socket,id=port0,path=\(port.socket)",
            "-netdev", "vhost-user,id=net0,chardev=port0" + (queuePairs > 1 ? ",queues=\(queuePairs)" : ""),
            // vectors=0: QEMU 7.2 under TCG crashes setting up MSI-X notifiers for vhost-user.
            "-device", "virtio-net-pci,netdev=net0,mac=52:54:00:21:7a:02,disable-legacy=on,vectors=0" + (packed ? ",packed=on" : "")
                + (queuePairs > 1 ? ",mq=on" : ""),
        ].joined(separator: " ")
        let run = try await runOffThePool {
            try ChildProcess.run("/usr/bin/env", ["LAB_MEM=512", "LAB_SMP=\(queuePairs)", "LAB_QUIET=1", "TIMEOUT=300", "LAB_QEMU_ARGS=\(qemu)",
                                                  "/bin/bash", lab, "run", Self.repository + "/Tests/Lab/peer-guest.sh", out + "/lab"])
        }
        let console = (try? String(contentsOfFile: out + "/lab/console.log", encoding: .utf8)) ?? ""
        #expect(run.status == 0, "lab run: \(run.output)\n\(console.suffix(3000))")
        let ping = (try? String(contentsOfFile: out + "/lab/ping.txt", encoding: .utf8)) ?? ""
        #expect(ping.contains("5 packets received") && ping.contains("rc=0"), "\(ping)\n\(console.suffix(2000))")
        let sent = ((try? String(contentsOfFile: out + "/lab/sent.md5", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let md5 = try ChildProcess.run("/usr/bin/md5sum", [received]).output.split(separator: " ").first.map(String.init) ?? ""
        let size = (try? FileManager.default.attributesOfItem(atPath: received)[.size] as? Int) ?? 0
        #expect(!sent.isEmpty && md5 == sent && size == 8 << 20, "sent \(sent), received \(size) bytes with md5 \(md5)")
        let info = try await daemon.withClient { try $0.call(.portGet, PortNameParams(name: "guest"), as: PortInfo.self) }
        // The guest's driver prints the feature bits it negotiated (bit 34: RING_PACKED).
        let guestFeatures = console.split(separator: "\n").first { $0.contains("PEER: interface") }.map(String.init) ?? "?"
        if packed { #expect(guestFeatures.contains("features ") && guestFeatures.split(separator: " ").last.map { Array($0) }.map { $0.count > 34 && $0[34] == "1" } == true, "\(guestFeatures)") }
        if queuePairs > 1 {
            // The second vCPU's pings leave on transmitq 3 (the driver's XPS map: one pair per vCPU).
            let second = (try? String(contentsOfFile: out + "/lab/ping-cpu1.txt", encoding: .utf8)) ?? ""
            #expect(second.contains("3 packets received") && second.contains("rc=0"), "\(second)\n\(console.suffix(2000))")
            let transmitted = info.backend?.queues?.first { $0.index == 3 }?.packets ?? 0
            #expect(guestFeatures.contains("queues 2") && transmitted >= 3, "\(guestFeatures); vq 3 sent \(transmitted)")
        }
        print("QEMU guest on a software port (\(packed ? "packed" : "split"), \(queuePairs) pair(s)): \(ping.split(separator: "\n").suffix(3).joined(separator: "; ")); 8 MiB intact: \(md5 == sent); \(guestFeatures)")
        print("  counters: \((info.backend?.queues ?? []).map { "vq \($0.index) packets \($0.packets) bytes \($0.bytes) drops \($0.drops)" })")
        _ = try await daemon.withClient { try $0.call(.portDel, PortNameParams(name: "guest"), as: PortDelResult.self) }
        try await daemon.stop()
    }
}

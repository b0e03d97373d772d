import Foundation
import Testing
import VDPAClient
import VDPARPC
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
        _ = try? TapEnvironment.ip(["netns", "del", namespace])
        try TapEnvironment.ip(["netns", "add", namespace])
        defer { _ = try? TapEnvironment.ip(["netns", "del", namespace]) }
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        let port = try await daemon.withClient { try $0.call(.portAdd, PortAddParams(name: "vm", tap: tap), as: PortInfo.self) }
        #expect(port.tap == tap && port.backend?.type == "software" && port.backend?.device == tap && port.state == "waiting", "\(port)")
        // The kernel's side of the TAP, in its own namespace.
        try TapEnvironment.ip(["link", "set", "dev", tap, "netns", namespace])
        try TapEnvironment.ip(["-n", namespace, "addr", "add", "10.214.0.1/30", "dev", tap])
        try TapEnvironment.ip(["-n", namespace, "link", "set", tap, "up"])
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

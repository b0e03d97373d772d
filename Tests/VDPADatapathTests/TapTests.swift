import CVhostUAPI
import Foundation
import Testing
import VDPADatapath
import VDPASystem
import VirtioModel
import VirtioNet
import Virtqueue
import VirtqueueTestSupport
import VirtioNetTestSupport




@Suite("TAP backend in a network namespace", .enabled(if: TapEnvironment.available, "needs root, /dev/net/tun and ip(8)"), .serialized)
struct TapTests {
    static let guestMAC: [UInt8] = [0x52, 0x54, 0x00, 0x21, 0x3a, 0x02]
    static let guestIP: [UInt8] = [10, 213, 0, 2]
    static let hostIP: [UInt8] = [10, 213, 0, 1]

    /// A TAP made by the backend, moved into a fresh namespace that owns
    /// 10.213.0.1/30; the test driver plays 10.213.0.2 through a running
    /// software device: its ARP request and ICMP echo request go out through
    /// the transmit queue and the TAP, the kernel's replies come back through
    /// the TAP and the receive queue, intact.
    @Test(arguments: QueueLayout.allCases)
    func arpAndPingThroughTheKernel(_ layout: QueueLayout) throws {
        let suffix = "\(getpid() % 100_000)\(layout == .split ? "s" : "p")"
        let tapName = "vdpadt\(suffix)"
        let namespace = "vdpadtns\(suffix)"
        let features: VirtioFeatures = [.version1, .ringEventIndex, Net.mergeableRxBuffers]
        try TapEnvironment.makeNamespace(namespace)
        defer { _ = try? TapEnvironment.ip(["netns", "del", namespace]) }
        var backend: TapBackend? = try TapBackend(name: tapName, features: features)
        defer { backend = nil }
        #expect(backend?.tap.name == tapName)
        try TapEnvironment.move(tapName, into: namespace, address: "10.213.0.1/30")
        let hostMAC = try TapEnvironment.macAddress(of: tapName, in: namespace)

        var guest = try VirtioNetGuest(layout: layout, size: 64, features: features, eventIndex: true)
        let rx = try QueueNotifiers.make()
        let tx = try QueueNotifiers.make()
        let device = try SoftwareNetDevice(
            memory: guest.memory, features: features, maximumQueuePairs: 1,
            pairs: [.init(receive: guest.queueStates[0], transmit: guest.queueStates[1], receiveNotifiers: rx,
                          transmitNotifiers: tx, backend: backend!)])
        device.start()
        defer { device.stop() }
        try guest.postReceiveBuffers(count: 32, size: 1024)
        if try guest.publish(0) { try rx.kick.signal() }

        func send(_ frame: [UInt8]) throws {
            try guest.transmit(frame)
            if try guest.publish(1) { try tx.kick.signal() }
        }
        func awaitFrame(_ matches: ([UInt8]) -> Bool) throws -> [UInt8]? {
            let deadline = Date().addingTimeInterval(5)
            while Date() < deadline {
                _ = try guest.enableInterrupts(0)
                _ = try rx.call.wait(timeoutMilliseconds: 100)
                _ = try rx.call.drain()
                _ = try guest.collectTransmitted()
                for packet in try guest.receivePackets() {
                    if matches(packet.frame) { return packet.frame }
                }
                if guest.inFlight(0) < 16 {
                    try guest.postReceiveBuffers(count: 16, size: 1024)
                    if try guest.publish(0) { try rx.kick.signal() }
                }
            }
            return nil
        }

        // ARP request: who has 10.213.0.1? tell 10.213.0.2.
        try send(TestFrames.arpRequest(senderMAC: Self.guestMAC, senderIP: Self.guestIP, targetIP: Self.hostIP))
        let reply = try #require(try awaitFrame(TestFrames.isARPReply), "no ARP reply came back through the receive queue")
        #expect(Array(reply[0..<6]) == Self.guestMAC)
        #expect(Array(reply[22..<28]) == hostMAC, "sender hardware address is the TAP's")
        #expect(Array(reply[28..<32]) == Self.hostIP)
        #expect(Array(reply[32..<38]) == Self.guestMAC)
        #expect(Array(reply[38..<42]) == Self.guestIP)

        // ICMP echo request to 10.213.0.1.
        let payload = (0..<56).map { UInt8(truncatingIfNeeded: $0 &* 3 &+ 1) }
        let request = TestFrames.icmpEchoRequest(from: Self.guestMAC, Self.guestIP, to: hostMAC, Self.hostIP, payload: payload)
        let icmpCount = request.count - 34
        try send(request)
        let echo = try #require(try awaitFrame(TestFrames.isEchoReply), "no ICMP echo reply came back through the receive queue")
        #expect(Array(echo[0..<6]) == Self.guestMAC)
        #expect(Array(echo[6..<12]) == hostMAC)
        #expect(Array(echo[26..<30]) == Self.hostIP && Array(echo[30..<34]) == Self.guestIP)
        #expect(TestFrames.internetChecksum(echo[14..<34]) == 0, "IPv4 header checksum")
        let icmpLength = (Int(echo[16]) << 8 | Int(echo[17])) - 20
        #expect(icmpLength == icmpCount)
        #expect(TestFrames.internetChecksum(echo[34..<(34 + icmpLength)]) == 0, "ICMP checksum")
        #expect(Array(echo[40..<42]) == [0x00, 0x01], "sequence number")
        #expect(Array(echo[42..<(42 + payload.count)]) == payload)

        let report = device.quiesce()
        #expect(report.brokenError == nil)
        #expect(report.pairs[0].transmit.packets == 2)
        #expect(report.pairs[0].receive.packets >= 2)
    }

    @Test func offloadsFollowTheGuestFeatures() {
        #expect(TapBackend.offloads(for: [.version1]) == [])
        #expect(TapBackend.offloads(for: [Net.guestTSO4]) == [], "no TSO without GUEST_CSUM")
        #expect(TapBackend.offloads(for: [Net.guestChecksum, Net.guestTSO4, Net.guestTSO6, Net.guestECN, Net.guestUFO])
            == [.checksum, .tso4, .tso6, .tsoECN, .ufo])
        #expect(TapBackend.offloads(for: [Net.guestChecksum, Net.guestTSO4], guestOffloads: Net.guestChecksum.rawValue) == [.checksum])
    }

    @Test func multiQueueTapAndOffloadsAreAccepted() throws {
        let name = "vdpadtm\(getpid() % 100_000)"
        let features: VirtioFeatures = [.version1, Net.guestChecksum, Net.guestTSO4, Net.guestTSO6, Net.guestECN]
        let first = try TapBackend(name: name, multiQueue: true, features: features)
        let second = try TapBackend(name: name, multiQueue: true, features: features)
        #expect(first.tap.name == name && second.tap.name == name)
        #expect(first.tap.fileDescriptor != second.tap.fileDescriptor)
    }
}

@Suite("TUN/TAP uapi numbers")
struct TunUAPITests {
    /// Checks the CVhostUAPI constants against the build host's <linux/if_tun.h>.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/include/linux/if_tun.h")))
    func constantsMatchTheHeader() throws {
        let text = try String(contentsOfFile: "/usr/include/linux/if_tun.h", encoding: .utf8)
        func define(_ name: String) throws -> String {
            let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("#define \(name) ") || $0.hasPrefix("#define \(name)\t") })
            return line.dropFirst("#define \(name)".count).trimmingCharacters(in: .whitespaces)
                .components(separatedBy: "/*")[0].trimmingCharacters(in: .whitespaces)
        }
        func ioctlW(_ name: String) throws -> UInt {
            let value = try define(name)
            let match = try #require(value.firstMatch(of: /_IOW\('T', (\d+), (int|unsigned int)\)/))
            return 1 << 30 | 4 << 16 | UInt(UInt8(ascii: "T")) << 8 | UInt(match.1)!
        }
        func number(_ name: String) throws -> UInt {
            let value = try define(name)
            return value.hasPrefix("0x") ? UInt(value.dropFirst(2), radix: 16)! : UInt(value)!
        }
        #expect(try ioctlW("TUNSETIFF") == CVhost_TUNSETIFF)
        #expect(try ioctlW("TUNSETOFFLOAD") == CVhost_TUNSETOFFLOAD)
        #expect(try ioctlW("TUNSETVNETHDRSZ") == CVhost_TUNSETVNETHDRSZ)
        #expect(try number("IFF_TAP") == UInt(CVhost_IFF_TAP))
        #expect(try number("IFF_NO_PI") == UInt(CVhost_IFF_NO_PI))
        #expect(try number("IFF_VNET_HDR") == UInt(CVhost_IFF_VNET_HDR))
        #expect(try number("IFF_MULTI_QUEUE") == UInt(CVhost_IFF_MULTI_QUEUE))
        #expect(try number("TUN_F_CSUM") == UInt(CVhost_TUN_F_CSUM))
        #expect(try number("TUN_F_TSO4") == UInt(CVhost_TUN_F_TSO4))
        #expect(try number("TUN_F_TSO6") == UInt(CVhost_TUN_F_TSO6))
        #expect(try number("TUN_F_TSO_ECN") == UInt(CVhost_TUN_F_TSO_ECN))
        #expect(try number("TUN_F_UFO") == UInt(CVhost_TUN_F_UFO))
        #expect(CVhost_sizeof_ifreq == 40 && CVhost_offsetof_ifreq_flags == 16 && CVhost_IFNAMSIZ == 16)
        #expect(CVhost_TUN_F_USO4 == 0x20 && CVhost_TUN_F_USO6 == 0x40)
    }
}

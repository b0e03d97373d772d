/// Ethernet frames a test guest sends to a real network stack (a TAP in a network namespace
/// the test made), and the checks of what comes back.
public enum TestFrames {
    /// Internet checksum (RFC 1071).
    public static func internetChecksum(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        var sum: UInt32 = 0
        var index = bytes.startIndex
        while index + 1 < bytes.endIndex {
            sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
            index += 2
        }
        if index < bytes.endIndex { sum += UInt32(bytes[index]) << 8 }
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }

    /// ARP request, broadcast: who has `targetIP`? tell `senderIP` (at `senderMAC`). Padded to 60 bytes.
    public static func arpRequest(senderMAC: [UInt8], senderIP: [UInt8], targetIP: [UInt8]) -> [UInt8] {
        var arp = [UInt8](repeating: 0xff, count: 6) + senderMAC + [0x08, 0x06]
        arp += [0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01] + senderMAC + senderIP + [UInt8](repeating: 0, count: 6) + targetIP
        return arp + [UInt8](repeating: 0, count: 60 - arp.count)
    }

    /// Whether `frame` is an ARP reply.
    public static func isARPReply(_ frame: [UInt8]) -> Bool {
        frame.count >= 42 && frame[12] == 0x08 && frame[13] == 0x06 && frame[20] == 0 && frame[21] == 2
    }

    /// ICMP echo request from `source` to `destination` (IPv4), identifier 0x213a, sequence
    /// `sequence`, with `payload`.
    public static func icmpEchoRequest(from sourceMAC: [UInt8], _ sourceIP: [UInt8], to destinationMAC: [UInt8], _ destinationIP: [UInt8],
                                       sequence: UInt16 = 1, payload: [UInt8]) -> [UInt8] {
        var icmp: [UInt8] = [8, 0, 0, 0, 0x21, 0x3a, UInt8(sequence >> 8), UInt8(sequence & 0xff)] + payload
        let icmpChecksum = internetChecksum(icmp[...])
        icmp[2] = UInt8(icmpChecksum >> 8)
        icmp[3] = UInt8(icmpChecksum & 0xff)
        let totalLength = 20 + icmp.count
        var ip: [UInt8] = [0x45, 0, UInt8(totalLength >> 8), UInt8(totalLength & 0xff), 0x12, 0x34, 0x40, 0, 64, 1, 0, 0]
        ip += sourceIP + destinationIP
        let ipChecksum = internetChecksum(ip[...])
        ip[10] = UInt8(ipChecksum >> 8)
        ip[11] = UInt8(ipChecksum & 0xff)
        return destinationMAC + sourceMAC + [0x08, 0x00] + ip + icmp
    }

    /// Whether `frame` is an ICMP echo reply of identifier 0x213a.
    public static func isEchoReply(_ frame: [UInt8]) -> Bool {
        frame.count >= 42 && frame[12] == 0x08 && frame[13] == 0x00 && frame[23] == 1 && frame[34] == 0
            && frame[38] == 0x21 && frame[39] == 0x3a
    }
}

/// A 48-bit Ethernet MAC address (virtio-net config `mac`, `VDPA_ATTR_DEV_NET_CFG_MACADDR`).
public struct MACAddress: Hashable, Sendable, Codable, CustomStringConvertible, LosslessStringConvertible {
    public var bytes: [UInt8]

    /// Takes exactly six bytes; nil otherwise.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 6 else { return nil }
        self.bytes = bytes
    }

    /// Parses "00:11:22:33:44:55" (also with '-' separators).
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).count == 6
            ? text.split(separator: ":", omittingEmptySubsequences: false)
            : text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard (1...2).contains(part.count), let byte = UInt8(part, radix: 16) else { return nil }
            bytes.append(byte)
        }
        self.bytes = bytes
    }

    /// Lower-case, colon-separated, as iproute2 prints it.
    public var description: String {
        bytes.map { byte in
            let text = String(byte, radix: 16)
            return text.count == 1 ? "0" + text : text
        }.joined(separator: ":")
    }

    /// A multicast address has the least significant bit of the first byte set.
    public var isMulticast: Bool { bytes[0] & 1 != 0 }
    /// All zeroes.
    public var isZero: Bool { bytes.allSatisfy { $0 == 0 } }
    /// What the kernel's `is_valid_ether_addr()` accepts: not multicast, not zero.
    public var isValidUnicast: Bool { !isMulticast && !isZero }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = MACAddress(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a MAC address: \(text)"))
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

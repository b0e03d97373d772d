/// A netlink attribute as it travels: a type and its payload bytes (netlink(7), `struct nlattr`).
public struct NetlinkAttribute: Hashable, Sendable {
    /// The attribute type with the NLA_F_NESTED / NLA_F_NET_BYTEORDER flags removed.
    public var type: UInt16
    public var payload: [UInt8]

    public init(type: UInt16, payload: [UInt8]) {
        self.type = type
        self.payload = payload
    }
}

/// Why a run of attribute bytes could not be used.
public enum NetlinkAttributeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// An attribute header says it is shorter than a header or longer than what is left.
    case truncated(offset: Int)
    /// An attribute has the wrong payload size for its declared type.
    case wrongSize(attribute: String, expected: String, actual: Int)
    /// A string attribute is not valid UTF-8.
    case invalidString(attribute: String)
    /// A required attribute is absent.
    case missing(attribute: String)

    public var description: String {
        switch self {
        case .truncated(let offset): "netlink attribute truncated at byte \(offset)"
        case .wrongSize(let attribute, let expected, let actual):
            "netlink attribute \(attribute) has \(actual) bytes, expected \(expected)"
        case .invalidString(let attribute): "netlink attribute \(attribute) is not a valid string"
        case .missing(let attribute): "netlink attribute \(attribute) is missing"
        }
    }
}

/// The attributes of one message, in order, parsed from untrusted bytes.
///
/// Parsing validates every header against the remaining length (no attribute may
/// claim bytes beyond the buffer) and keeps repeated attributes, which the vdpa
/// family uses for vendor statistics (name/value pairs).
public struct NetlinkAttributeSet: Sendable {
    public private(set) var attributes: [NetlinkAttribute]

    private static let headerSize = 4
    private static let flagsMask: UInt16 = 0xC000  // NLA_F_NESTED | NLA_F_NET_BYTEORDER

    public init(attributes: [NetlinkAttribute]) { self.attributes = attributes }

    /// Parses a run of `struct nlattr` records (4-byte aligned, little-endian headers).
    public init(parsing bytes: some Collection<UInt8>) throws(NetlinkAttributeError) {
        let bytes = Array(bytes)
        var attributes: [NetlinkAttribute] = []
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= Self.headerSize else { throw .truncated(offset: offset) }
            let length = Int(UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8)
            let rawType = UInt16(bytes[offset + 2]) | UInt16(bytes[offset + 3]) << 8
            guard length >= Self.headerSize, length <= bytes.count - offset else { throw .truncated(offset: offset) }
            let payload = Array(bytes[(offset + Self.headerSize)..<(offset + length)])
            attributes.append(NetlinkAttribute(type: rawType & ~Self.flagsMask, payload: payload))
            // Attributes are padded to 4 bytes; the last one may omit its padding.
            let aligned = (length + 3) & ~3
            offset += min(aligned, bytes.count - offset)
        }
        self.attributes = attributes
    }

    /// The first attribute of a type.
    public func first(_ type: UInt16) -> NetlinkAttribute? { attributes.first { $0.type == type } }

    public func contains(_ type: UInt16) -> Bool { first(type) != nil }

    public func u8(_ type: UInt16, _ name: String) throws(NetlinkAttributeError) -> UInt8? {
        guard let attribute = first(type) else { return nil }
        guard attribute.payload.count == 1 else { throw .wrongSize(attribute: name, expected: "1", actual: attribute.payload.count) }
        return attribute.payload[0]
    }

    public func u16(_ type: UInt16, _ name: String) throws(NetlinkAttributeError) -> UInt16? {
        guard let attribute = first(type) else { return nil }
        guard attribute.payload.count == 2 else { throw .wrongSize(attribute: name, expected: "2", actual: attribute.payload.count) }
        return UInt16(littleEndianBytes: attribute.payload)
    }

    /// A 16-bit value the kernel may also send as one byte (VDPA_ATTR_DEV_NET_STATUS is
    /// documented as u8 but put with nla_put_u16).
    public func u8OrU16(_ type: UInt16, _ name: String) throws(NetlinkAttributeError) -> UInt16? {
        guard let attribute = first(type) else { return nil }
        switch attribute.payload.count {
        case 1: return UInt16(attribute.payload[0])
        case 2: return UInt16(littleEndianBytes: attribute.payload)
        default: throw .wrongSize(attribute: name, expected: "1 or 2", actual: attribute.payload.count)
        }
    }

    public func u32(_ type: UInt16, _ name: String) throws(NetlinkAttributeError) -> UInt32? {
        guard let attribute = first(type) else { return nil }
        guard attribute.payload.count == 4 else { throw .wrongSize(attribute: name, expected: "4", actual: attribute.payload.count) }
        return UInt32(littleEndianBytes: attribute.payload)
    }

    public func u64(_ type: UInt16, _ name: String) throws(NetlinkAttributeError) -> UInt64? {
        guard let attribute = first(type) else { return nil }
        return try Self.u64(attribute, name)
    }

    static func u64(_ attribute: NetlinkAttribute, _ name: String) throws(NetlinkAttributeError) -> UInt64 {
        guard attribute.payload.count == 8 else { throw .wrongSize(attribute: name, expected: "8", actual: attribute.payload.count) }
        return UInt64(littleEndianBytes: attribute.payload)
    }

    public func string(_ type: UInt16, _ name: String) throws(NetlinkAttributeError) -> String? {
        guard let attribute = first(type) else { return nil }
        return try Self.string(attribute, name)
    }

    static func string(_ attribute: NetlinkAttribute, _ name: String) throws(NetlinkAttributeError) -> String {
        var bytes = attribute.payload
        if let terminator = bytes.firstIndex(of: 0) { bytes.removeSubrange(terminator...) }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .invalidString(attribute: name) }
        return text
    }

    public func binary(_ type: UInt16) -> [UInt8]? { first(type)?.payload }

    public func required<T>(_ value: T?, _ name: String) throws(NetlinkAttributeError) -> T {
        guard let value else { throw .missing(attribute: name) }
        return value
    }
}

extension FixedWidthInteger {
    /// Reads a little-endian integer from the first `bitWidth/8` bytes.
    init(littleEndianBytes bytes: [UInt8]) {
        var value = Self.zero
        for (index, byte) in bytes.prefix(Self.bitWidth / 8).enumerated() {
            value |= Self(truncatingIfNeeded: byte) << (8 * index)
        }
        self = value
    }

    /// The integer's bytes, little-endian.
    var littleEndianBytes: [UInt8] {
        (0..<(Self.bitWidth / 8)).map { UInt8(truncatingIfNeeded: self >> (8 * $0)) }
    }
}

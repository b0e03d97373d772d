/// The kernel's answer to a failed netlink request: errno plus the extended
/// acknowledgement ("extack") text, from an `NLMSG_ERROR` message (netlink(7),
/// `struct nlmsgerr` followed by `NLMSGERR_ATTR_*` TLVs when NETLINK_EXT_ACK is on).
public struct ExtendedAck: Hashable, Sendable {
    /// The positive errno value (the message carries it negated).
    public var errno: Int32
    /// NLMSGERR_ATTR_MSG: the human-readable reason, e.g. "vdpa: Fail to find the specified management device".
    public var message: String?
    /// NLMSGERR_ATTR_OFFS: offset of the offending attribute in the request.
    public var offendingAttributeOffset: UInt32?
    /// NLMSGERR_ATTR_MISS_TYPE: type of a missing required attribute.
    public var missingAttributeType: UInt32?

    private static let messageHeaderSize = 16        // struct nlmsghdr
    private static let errorHeaderSize = 4           // int error
    private static let flagCapped: UInt16 = 0x100    // NLM_F_CAPPED
    private static let flagAckTLVs: UInt16 = 0x200   // NLM_F_ACK_TLVS

    /// Parses a complete NLMSG_ERROR message (its `nlmsghdr` included). Returns nil
    /// when the bytes are not a well-formed error message.
    public init?(errorMessage bytes: [UInt8]) {
        let minimum = Self.messageHeaderSize + Self.errorHeaderSize + Self.messageHeaderSize
        guard bytes.count >= minimum else { return nil }
        let declaredLength = Int(UInt32(littleEndianBytes: Array(bytes[0..<4])))
        let flags = UInt16(littleEndianBytes: Array(bytes[6..<8]))
        let length = min(declaredLength, bytes.count)
        guard length >= minimum else { return nil }
        let error = Int32(bitPattern: UInt32(littleEndianBytes: Array(bytes[16..<20])))
        errno = error == Int32.min ? Int32.max : -error
        message = nil
        offendingAttributeOffset = nil
        missingAttributeType = nil
        guard flags & Self.flagAckTLVs != 0 else { return }
        // The original request follows the error code: its header only when capped.
        var tlvStart = Self.messageHeaderSize + Self.errorHeaderSize + Self.messageHeaderSize
        if flags & Self.flagCapped == 0 {
            let originalLength = Int(UInt32(littleEndianBytes: Array(bytes[20..<24])))
            let (sum, overflow) = (Self.messageHeaderSize + Self.errorHeaderSize).addingReportingOverflow((originalLength + 3) & ~3)
            guard !overflow, originalLength >= Self.messageHeaderSize else { return }
            tlvStart = sum
        }
        guard tlvStart <= length, let attributes = try? NetlinkAttributeSet(parsing: bytes[tlvStart..<length]) else { return }
        message = try? attributes.string(1, "NLMSGERR_ATTR_MSG")
        offendingAttributeOffset = try? attributes.u32(2, "NLMSGERR_ATTR_OFFS")
        missingAttributeType = try? attributes.u32(5, "NLMSGERR_ATTR_MISS_TYPE")
    }
}

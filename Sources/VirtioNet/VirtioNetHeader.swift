import VirtioModel

/// `struct virtio_net_hdr_v1` (virtio 1.x §5.1.6 "Device Operation"), the
/// 12-byte header in front of every packet on the receive and transmit
/// queues once VIRTIO_F_VERSION_1 is negotiated (with or without
/// VIRTIO_NET_F_MRG_RXBUF: §5.1.6.1 "Legacy Interface: Device Operation").
///
/// ```
/// u8   flags         NEEDS_CSUM 1, DATA_VALID 2, RSC_INFO 4
/// u8   gso_type      NONE 0, TCPV4 1, UDP 3, TCPV6 4, UDP_L4 5, | ECN 0x80
/// le16 hdr_len
/// le16 gso_size
/// le16 csum_start
/// le16 csum_offset
/// le16 num_buffers
/// ```
///
/// Parsing never fails on content (any 12 bytes are a header, kept verbatim
/// so a header round-trips); ``validateTransmit(frameLength:features:)`` says
/// whether a header a driver put in front of a frame may be acted upon.
/// The same layout is what a TAP device reads and writes with
/// `TUNSETVNETHDRSZ 12`.
public struct VirtioNetHeader: Hashable, Sendable, Codable {
    /// Bytes on the wire.
    public static let size = 12

    /// `flags` (§5.1.6).
    public struct Flags: OptionSet, Hashable, Sendable, Codable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// VIRTIO_NET_HDR_F_NEEDS_CSUM: checksum from `csumStart` with the result at `csumStart + csumOffset`.
        public static let needsChecksum = Flags(rawValue: 1)
        /// VIRTIO_NET_HDR_F_DATA_VALID: receive only, the checksum was validated.
        public static let dataValid = Flags(rawValue: 2)
        /// VIRTIO_NET_HDR_F_RSC_INFO: receive only, coalescing information in csum fields.
        public static let rscInfo = Flags(rawValue: 4)
        /// Every flag the specification defines.
        public static let known: Flags = [.needsChecksum, .dataValid, .rscInfo]
    }

    /// `gso_type` (§5.1.6): a kind in the low 7 bits, ECN in bit 7. Unknown
    /// values are representable (a guest can write anything).
    public struct GSOType: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let none = GSOType(rawValue: 0)
        public static let tcpv4 = GSOType(rawValue: 1)
        public static let udp = GSOType(rawValue: 3)
        public static let tcpv6 = GSOType(rawValue: 4)
        public static let udpL4 = GSOType(rawValue: 5)
        /// VIRTIO_NET_HDR_GSO_ECN, or-ed into a TCP kind.
        public static let ecnBit: UInt8 = 0x80

        /// The kind without the ECN bit.
        public var kind: GSOType { GSOType(rawValue: rawValue & ~Self.ecnBit) }
        /// Whether the ECN bit is set.
        public var hasECN: Bool { rawValue & Self.ecnBit != 0 }
        /// Whether the kind is one the specification defines.
        public var isKnownKind: Bool { [0, 1, 3, 4, 5].contains(kind.rawValue) }

        public var description: String {
            let name = switch kind.rawValue {
            case 0: "none"
            case 1: "tcpv4"
            case 3: "udp"
            case 4: "tcpv6"
            case 5: "udp_l4"
            default: "gso_\(kind.rawValue)"
            }
            return hasECN ? name + "|ecn" : name
        }
    }

    public var flags: Flags
    public var gsoType: GSOType
    public var headerLength: UInt16
    public var gsoSize: UInt16
    public var checksumStart: UInt16
    public var checksumOffset: UInt16
    /// Receive with VIRTIO_NET_F_MRG_RXBUF: buffers this packet occupies; 1 otherwise.
    public var bufferCount: UInt16

    public init(
        flags: Flags = [], gsoType: GSOType = .none, headerLength: UInt16 = 0, gsoSize: UInt16 = 0,
        checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0, bufferCount: UInt16 = 0
    ) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
        self.bufferCount = bufferCount
    }

    /// Parses the first 12 bytes of `bytes` (little-endian).
    public init(parsing bytes: UnsafeRawBufferPointer) throws(VirtioNetHeaderError) {
        guard bytes.count >= Self.size else { throw .truncated(length: bytes.count) }
        func le16(_ offset: Int) -> UInt16 { UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8 }
        flags = Flags(rawValue: bytes[0])
        gsoType = GSOType(rawValue: bytes[1])
        headerLength = le16(2)
        gsoSize = le16(4)
        checksumStart = le16(6)
        checksumOffset = le16(8)
        bufferCount = le16(10)
    }

    /// Parses the first 12 bytes of `bytes`.
    public init(parsing bytes: some Collection<UInt8>) throws(VirtioNetHeaderError) {
        let array = Array(bytes.prefix(Self.size))
        var result: Result<VirtioNetHeader, VirtioNetHeaderError> = .failure(.truncated(length: array.count))
        array.withUnsafeBytes { raw in
            do throws(VirtioNetHeaderError) { result = .success(try VirtioNetHeader(parsing: raw)) } catch { result = .failure(error) }
        }
        self = try result.get()
    }

    /// Writes the 12 header bytes at the start of `destination` (which must hold at least 12).
    public func serialize(into destination: UnsafeMutableRawBufferPointer) {
        precondition(destination.count >= Self.size, "virtio-net header needs 12 bytes")
        destination[0] = flags.rawValue
        destination[1] = gsoType.rawValue
        for (offset, value) in [(2, headerLength), (4, gsoSize), (6, checksumStart), (8, checksumOffset), (10, bufferCount)] {
            destination[offset] = UInt8(truncatingIfNeeded: value)
            destination[offset + 1] = UInt8(truncatingIfNeeded: value >> 8)
        }
    }

    /// The 12 header bytes.
    public var bytes: [UInt8] {
        var result = [UInt8](repeating: 0, count: Self.size)
        result.withUnsafeMutableBytes { serialize(into: $0) }
        return result
    }

    /// Largest frame (without header) the datapath moves: 64 KiB of GSO
    /// payload plus an Ethernet and a VLAN header.
    public static let maximumFrameLength = 65_535 + 14 + 4
    /// Smallest frame: an Ethernet header.
    public static let minimumFrameLength = 14

    /// Checks a header a driver put in front of a `frameLength`-byte frame on a
    /// transmit queue, against the negotiated `features` (§5.1.6.2
    /// "Packet Transmission", driver requirements). Unknown flag bits are
    /// ignored as §5.1.6.2.2 asks of the device; use ``normalizedForTransmit``
    /// to clear them before passing the header on.
    public func validateTransmit(frameLength: Int, features: VirtioFeatures) throws(VirtioNetHeaderError) {
        typealias Net = VirtioFeatures.Net
        guard frameLength >= Self.minimumFrameLength else { throw .frameTooShort(length: frameLength) }
        guard frameLength <= Self.maximumFrameLength else { throw .frameTooLong(length: frameLength) }
        // §5.1.6.2.1: "The driver MUST NOT set the VIRTIO_NET_HDR_F_DATA_VALID and
        // VIRTIO_NET_HDR_F_RSC_INFO bits in flags."
        if flags.contains(.dataValid) || flags.contains(.rscInfo) { throw .receiveOnlyFlag(flags) }
        if flags.contains(.needsChecksum) {
            guard features.contains(Net.checksum) else { throw .notNegotiated(feature: "VIRTIO_NET_F_CSUM") }
            let end = Int(checksumStart) + Int(checksumOffset) + 2
            guard end <= frameLength else {
                throw .checksumOutOfFrame(start: checksumStart, offset: checksumOffset, frameLength: frameLength)
            }
        }
        guard gsoType.isKnownKind else { throw .unknownGSOType(gsoType.rawValue) }
        let kind = gsoType.kind
        if kind == .none {
            if gsoType.hasECN { throw .ecnWithoutGSO }
            return
        }
        let (needed, name): (VirtioFeatures, String) = switch kind {
        case .tcpv4: (Net.hostTSO4, "VIRTIO_NET_F_HOST_TSO4")
        case .tcpv6: (Net.hostTSO6, "VIRTIO_NET_F_HOST_TSO6")
        case .udp: (Net.hostUFO, "VIRTIO_NET_F_HOST_UFO")
        default: (VirtioFeatures(bit: 56), "VIRTIO_NET_F_HOST_USO")
        }
        guard features.contains(needed) else { throw .notNegotiated(feature: name) }
        if gsoType.hasECN {
            guard kind == .tcpv4 || kind == .tcpv6 else { throw .ecnWithoutGSO }
            guard features.contains(Net.hostECN) else { throw .notNegotiated(feature: "VIRTIO_NET_F_HOST_ECN") }
        }
        // Segmentation needs a checksum to fill in, a segment size and headers inside the frame.
        guard flags.contains(.needsChecksum) else { throw .gsoWithoutChecksum }
        guard gsoSize != 0 else { throw .zeroGSOSize }
        guard Int(headerLength) <= frameLength else {
            throw .headerLengthBeyondFrame(headerLength: headerLength, frameLength: frameLength)
        }
    }

    /// The header with unknown flag bits and `num_buffers` cleared, as it is
    /// handed to a backend after ``validateTransmit(frameLength:features:)``.
    public var normalizedForTransmit: VirtioNetHeader {
        var copy = self
        copy.flags = flags.intersection(.known)
        copy.bufferCount = 0
        return copy
    }
}

/// Why a virtio-net header was refused. Guest input: never a crash.
public enum VirtioNetHeaderError: Error, Hashable, Sendable {
    /// Fewer than 12 bytes.
    case truncated(length: Int)
    /// A frame shorter than an Ethernet header.
    case frameTooShort(length: Int)
    /// A frame longer than ``VirtioNetHeader/maximumFrameLength``.
    case frameTooLong(length: Int)
    /// DATA_VALID or RSC_INFO on a transmitted packet.
    case receiveOnlyFlag(VirtioNetHeader.Flags)
    /// A flag or GSO kind whose feature was not negotiated.
    case notNegotiated(feature: String)
    /// `csum_start + csum_offset + 2` lies beyond the frame.
    case checksumOutOfFrame(start: UInt16, offset: UInt16, frameLength: Int)
    /// A `gso_type` kind the specification does not define.
    case unknownGSOType(UInt8)
    /// The ECN bit without a TCP segmentation kind.
    case ecnWithoutGSO
    /// Segmentation requested without NEEDS_CSUM.
    case gsoWithoutChecksum
    /// Segmentation requested with `gso_size` 0.
    case zeroGSOSize
    /// `hdr_len` larger than the frame.
    case headerLengthBeyondFrame(headerLength: UInt16, frameLength: Int)
}

/// A set of virtio feature bits (virtio 1.x §2.2 "Feature Bits"), bits 0–63.
///
/// The meaning of bits 0–23 and 41–63 depends on the device type; bits 24–40
/// are device-independent (transport and ring features). Names come from
/// ``FeatureCatalogue``; `names(for:)` gives them as iproute2 and the spec spell them.
public struct VirtioFeatures: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The set with only `bit` set; bits above 63 give the empty set.
    public init(bit: Int) { rawValue = (0..<64).contains(bit) ? 1 << UInt64(bit) : 0 }

    /// The set with all of `bits` set.
    public init(bits: some Sequence<Int>) {
        self = bits.reduce(into: VirtioFeatures()) { $0.formUnion(VirtioFeatures(bit: $1)) }
    }

    /// The numbers of the set bits, lowest first.
    public var bits: [Int] { (0..<64).filter { rawValue & (1 << UInt64($0)) != 0 } }

    public func contains(bit: Int) -> Bool { (0..<64).contains(bit) && rawValue & (1 << UInt64(bit)) != 0 }

    /// "0x300000028": the form iproute2's `device_features` takes and kernels print.
    public var hexString: String { "0x" + String(rawValue, radix: 16) }

    public var description: String { hexString }

    /// Parses a hexadecimal number with or without "0x" (as `vdpa dev add … device_features HEX`).
    public init?(hex text: String) {
        var digits = Substring(text)
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") { digits = digits.dropFirst(2) }
        guard !digits.isEmpty, digits.count <= 16, let value = UInt64(digits, radix: 16) else { return nil }
        rawValue = value
    }

    /// The catalogue names of the set bits for a device type, lowest bit first;
    /// bits without a name appear as "bit_N".
    public func names(for deviceType: VirtioDeviceType?) -> [String] {
        bits.map { FeatureCatalogue.name(ofBit: $0, deviceType: deviceType) ?? "bit_\($0)" }
    }

    /// Builds a set from names as ``names(for:)`` prints them (and "bit_N").
    /// Throws naming the first word it does not know.
    public init(names: [String], deviceType: VirtioDeviceType?) throws(FeatureNameError) {
        var features = VirtioFeatures()
        for name in names {
            if let bit = FeatureCatalogue.bit(named: name, deviceType: deviceType) {
                features.insert(VirtioFeatures(bit: bit))
            } else if name.hasPrefix("bit_"), let bit = Int(name.dropFirst(4)), (0..<64).contains(bit) {
                features.insert(VirtioFeatures(bit: bit))
            } else {
                throw FeatureNameError(name: name, deviceType: deviceType)
            }
        }
        self = features
    }

    // MARK: Device-independent bits (virtio 1.x §6 "Reserved Feature Bits")
    public static let notifyOnEmpty = VirtioFeatures(bit: 24)
    public static let anyLayout = VirtioFeatures(bit: 27)
    public static let ringIndirectDescriptors = VirtioFeatures(bit: 28)
    public static let ringEventIndex = VirtioFeatures(bit: 29)
    public static let version1 = VirtioFeatures(bit: 32)
    public static let accessPlatform = VirtioFeatures(bit: 33)
    public static let ringPacked = VirtioFeatures(bit: 34)
    public static let inOrder = VirtioFeatures(bit: 35)
    public static let orderPlatform = VirtioFeatures(bit: 36)
    public static let singleRootIOV = VirtioFeatures(bit: 37)
    public static let notificationData = VirtioFeatures(bit: 38)
    public static let notificationConfigData = VirtioFeatures(bit: 39)
    public static let ringReset = VirtioFeatures(bit: 40)
    public static let adminVirtqueue = VirtioFeatures(bit: 41)
    public static let suspend = VirtioFeatures(bit: 43)

    /// Bits 28–41: the kernel's VIRTIO_TRANSPORT_F_START..END. vDPA's
    /// `VIRTIO_DEVICE_F_MASK` is everything outside this range.
    public static let transportRange = VirtioFeatures(bits: 28...41)

    // MARK: virtio-net bits (virtio 1.x §5.1.3)
    public enum Net {
        public static let checksum = VirtioFeatures(bit: 0)
        public static let guestChecksum = VirtioFeatures(bit: 1)
        public static let controlGuestOffloads = VirtioFeatures(bit: 2)
        public static let mtu = VirtioFeatures(bit: 3)
        public static let mac = VirtioFeatures(bit: 5)
        public static let guestTSO4 = VirtioFeatures(bit: 7)
        public static let guestTSO6 = VirtioFeatures(bit: 8)
        public static let guestECN = VirtioFeatures(bit: 9)
        public static let guestUFO = VirtioFeatures(bit: 10)
        public static let hostTSO4 = VirtioFeatures(bit: 11)
        public static let hostTSO6 = VirtioFeatures(bit: 12)
        public static let hostECN = VirtioFeatures(bit: 13)
        public static let hostUFO = VirtioFeatures(bit: 14)
        public static let mergeableRxBuffers = VirtioFeatures(bit: 15)
        public static let status = VirtioFeatures(bit: 16)
        public static let controlVirtqueue = VirtioFeatures(bit: 17)
        public static let controlRx = VirtioFeatures(bit: 18)
        public static let controlVLAN = VirtioFeatures(bit: 19)
        public static let controlRxExtra = VirtioFeatures(bit: 20)
        public static let guestAnnounce = VirtioFeatures(bit: 21)
        public static let multiqueue = VirtioFeatures(bit: 22)
        public static let controlMACAddress = VirtioFeatures(bit: 23)
        public static let hashReport = VirtioFeatures(bit: 57)
        public static let rss = VirtioFeatures(bit: 60)
        public static let standby = VirtioFeatures(bit: 62)
        public static let speedDuplex = VirtioFeatures(bit: 63)
    }

    // MARK: virtio-blk bits (virtio 1.x §5.2.3)
    public enum Block {
        public static let sizeMax = VirtioFeatures(bit: 1)
        public static let segmentMax = VirtioFeatures(bit: 2)
        public static let geometry = VirtioFeatures(bit: 4)
        public static let readOnly = VirtioFeatures(bit: 5)
        public static let blockSize = VirtioFeatures(bit: 6)
        public static let flush = VirtioFeatures(bit: 9)
        public static let topology = VirtioFeatures(bit: 10)
        public static let configWCE = VirtioFeatures(bit: 11)
        public static let multiqueue = VirtioFeatures(bit: 12)
        public static let discard = VirtioFeatures(bit: 13)
        public static let writeZeroes = VirtioFeatures(bit: 14)
    }
}

/// A feature name that the catalogue does not know for the device type.
public struct FeatureNameError: Error, Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var deviceType: VirtioDeviceType?
    public var description: String {
        "unknown feature name '\(name)'" + (deviceType.map { " for \($0.typeName) devices" } ?? "")
    }
}

extension VirtioFeatures: Codable {
    /// Encoded as the hex string ("0x300000028"): JSON numbers lose bits above 2^53.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(UInt64.self) {
            rawValue = number
            return
        }
        let text = try container.decode(String.self)
        guard let value = VirtioFeatures(hex: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a hex feature set: \(text)"))
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hexString)
    }
}

import VirtioModel

/// How a device's MAC address (virtio-net config `mac`, `VDPA_ATTR_DEV_NET_CFG_MACADDR`) is chosen.
///
/// JSON: `{"policy": "none"}`, `{"policy": "pool"}`, `{"policy": "fixed", "address": "52:54:00:12:34:56"}`.
public enum MACPolicy: Hashable, Sendable, Codable, CustomStringConvertible {
    /// vdpad sets no MAC: the device presents whatever its parent gives it (or none without the
    /// MAC bit), and the VMM sets the address it wants (CTRL_MAC_ADDR). Needs nothing of the
    /// destination.
    case none
    /// vdpad gives the device an address from its pool when it first creates it, and the same
    /// address wherever the device moves: the destination must accept the `mac` attribute.
    case pool
    /// Exactly this address: needs the MAC bit and a destination that accepts the `mac` attribute.
    case fixed(MACAddress)

    /// Whether vdpad provisions a MAC (and so needs the `mac` attribute and the MAC bit).
    public var setsAddress: Bool {
        if case .none = self { return false }
        return true
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .pool: "pool"
        case .fixed(let address): "fixed \(address)"
        }
    }

    private enum CodingKeys: String, CodingKey { case policy, address }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(String.self, forKey: .policy) {
        case "none": self = .none
        case "pool": self = .pool
        case "fixed": self = .fixed(try container.decode(MACAddress.self, forKey: .address))
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .policy, in: container, debugDescription: "unknown MAC policy '\(other)' (none, pool, fixed)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .none: try container.encode("none", forKey: .policy)
        case .pool: try container.encode("pool", forKey: .policy)
        case .fixed(let address):
            try container.encode("fixed", forKey: .policy)
            try container.encode(address, forKey: .address)
        }
    }
}

/// What a device presents to its driver: device type, exact feature set and configuration.
/// Profiles are what migration compares (``CompatibilityCheck``) and what ``Baseline`` produces.
///
/// JSON (one profile per file in `etc/vdpad/profiles.d/NAME.json`):
/// ```json
/// {"schema": "vdpad.profile/v1", "name": "web-net", "version": 3, "device_type": "network",
///  "features": {"hex": "0x300030023", "names": ["CSUM", "GUEST_CSUM", "MAC", ...]},
///  "mac": {"policy": "pool"}, "mtu": 1500, "queue_pairs": 4, "queue_size": 256}
/// ```
/// `features` may give `hex`, `names` or both (then they must agree). Unknown keys are errors.
public struct Profile: Hashable, Sendable, Codable {
    /// The schema this type reads and writes.
    public static let schema = "vdpad.profile/v1"

    /// A name: letters, digits, '-', '_', '.'; 1–64 characters.
    public var name: String
    /// Increases whenever the profile changes; devices record the version they were made from.
    public var version: Int
    public var deviceType: VirtioDeviceType
    /// The exact feature set the device presents.
    public var features: VirtioFeatures
    public var mac: MACPolicy
    /// virtio-net `mtu` (needs the MTU bit); nil: the device's default, and no `mtu` attribute.
    public var mtu: Int?
    /// virtio-net `max_virtqueue_pairs` (more than 1 needs MQ); nil: the device's default.
    public var queuePairs: Int?
    /// The virtqueue size the device must allow; nil: no requirement.
    public var queueSize: Int?
    /// Free text for people.
    public var summary: String?

    public init(name: String, version: Int = 1, deviceType: VirtioDeviceType, features: VirtioFeatures, mac: MACPolicy = .none, mtu: Int? = nil, queuePairs: Int? = nil, queueSize: Int? = nil, summary: String? = nil) {
        self.name = name
        self.version = version
        self.deviceType = deviceType
        self.features = features
        self.mac = mac
        self.mtu = mtu
        self.queuePairs = queuePairs
        self.queueSize = queueSize
        self.summary = summary
    }

    // MARK: Validation

    /// Every reason this profile cannot describe a device (severity `error`) and the advice it
    /// ignores (severity `warning`), in a stable order.
    public func validate() -> [ProfileIssue] {
        var issues: [ProfileIssue] = []
        func error(_ code: ProfileIssue.Code, _ message: String) { issues.append(ProfileIssue(code: code, severity: .error, message: message)) }
        if !Profile.isValidName(name) {
            error(.name, "profile name '\(name)' must be 1–64 letters, digits, '-', '_' or '.'")
        }
        if version < 1 { error(.version, "version \(version) must be 1 or more") }
        guard deviceType == .network || deviceType == .block else {
            error(.deviceType, "device type \(deviceType.rawValue) is not supported (network, block)")
            return issues
        }
        for violation in FeatureRules.violations(of: features, deviceType: deviceType) {
            issues.append(ProfileIssue(code: violation.feature == nil ? .featureRequired : .featureDependency,
                                       severity: violation.severity == .required ? .error : .warning,
                                       message: violation.description))
        }
        let legacy = features.intersection(FeatureRules.legacyBits(for: deviceType))
        if !legacy.isEmpty {
            error(.legacyFeature, "legacy-only features \(legacy.names(for: deviceType).joined(separator: ", ")) cannot be offered by a modern (VERSION_1) device")
        }
        let isNet = deviceType == .network
        if let mtu {
            if !isNet { error(.notApplicable, "mtu applies to network devices only") }
            else {
                if !(68...65535).contains(mtu) { error(.mtuRange, "mtu \(mtu) is outside 68–65535 (virtio 1.4 §5.1.4.1)") }
                if !features.contains(.Net.mtu) { error(.mtuNeedsFeature, "mtu needs the MTU feature") }
            }
        }
        if let queuePairs {
            if !isNet { error(.notApplicable, "queue_pairs applies to network devices only") }
            else {
                if !VirtioBounds.queuePairs.contains(queuePairs) { error(.queuePairsRange, "queue_pairs \(queuePairs) is outside 1–32768 (virtio 1.4 §5.1.4.1)") }
                if queuePairs > 1 && !features.contains(.Net.multiqueue) {
                    error(.queuePairsNeedMQ, "queue_pairs \(queuePairs) needs the MQ feature (the kernel refuses max_vqp > 1 without it)")
                }
            }
        }
        if let queueSize {
            if !VirtioBounds.queueSize.contains(queueSize) {
                error(.queueSizeRange, "queue_size \(queueSize) is outside 1–32768")
            } else if !features.contains(.ringPacked) && queueSize & (queueSize - 1) != 0 {
                error(.queueSizeRange, "queue_size \(queueSize) must be a power of 2 for split virtqueues (virtio 1.4 §2.7)")
            }
        }
        switch mac {
        case .none: break
        case .pool, .fixed:
            if !isNet { error(.notApplicable, "a MAC policy applies to network devices only") }
            else if !features.contains(.Net.mac) { error(.macNeedsFeature, "MAC policy '\(mac)' needs the MAC feature") }
            if case .fixed(let address) = mac, !address.isValidUnicast {
                error(.macInvalid, "MAC \(address) is not a unicast address")
            }
        }
        return issues
    }

    /// The issues of severity `error`.
    public var errors: [ProfileIssue] { validate().filter { $0.severity == .error } }

    static func isValidName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count) && name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
        }
    }

    // MARK: Codable

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case schema, name, version, deviceType = "device_type", features, mac, mtu, queuePairs = "queue_pairs", queueSize = "queue_size"
        case summary = "description"
    }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.stringValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let schema = try container.decode(String.self, forKey: .schema)
        guard schema == Profile.schema else {
            throw DecodingError.dataCorruptedError(forKey: .schema, in: container, debugDescription: "schema '\(schema)' is not \(Profile.schema)")
        }
        name = try container.decode(String.self, forKey: .name)
        version = try container.decode(Int.self, forKey: .version, within: VirtioBounds.version)
        deviceType = try decodeDeviceType(container, forKey: .deviceType)
        do {
            features = try container.decode(FeatureList.self, forKey: .features).resolve(deviceType: deviceType)
        } catch let error as FeatureListError {
            throw DecodingError.dataCorruptedError(forKey: .features, in: container, debugDescription: error.description)
        }
        mac = try container.decodeIfPresent(MACPolicy.self, forKey: .mac) ?? .none
        mtu = try container.decodeIfPresent(Int.self, forKey: .mtu, within: VirtioBounds.mtu)
        queuePairs = try container.decodeIfPresent(Int.self, forKey: .queuePairs, within: VirtioBounds.queuePairs)
        queueSize = try container.decodeIfPresent(Int.self, forKey: .queueSize, within: VirtioBounds.queueSize)
        summary = try container.decodeIfPresent(String.self, forKey: .summary)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Profile.schema, forKey: .schema)
        try container.encode(name, forKey: .name)
        try container.encode(version, forKey: .version)
        try encodeDeviceType(deviceType, &container, forKey: .deviceType)
        try container.encode(FeatureList(features, deviceType: deviceType), forKey: .features)
        try container.encode(mac, forKey: .mac)
        try container.encodeIfPresent(mtu, forKey: .mtu)
        try container.encodeIfPresent(queuePairs, forKey: .queuePairs)
        try container.encodeIfPresent(queueSize, forKey: .queueSize)
        try container.encodeIfPresent(summary, forKey: .summary)
    }
}

/// One reason a profile is invalid (or advice it ignores).
public struct ProfileIssue: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Stable codes, for programs.
    public enum Code: String, Hashable, Sendable, Codable {
        case name, version
        case deviceType = "device_type"
        case featureDependency = "feature_dependency"
        case featureRequired = "feature_required"
        case legacyFeature = "legacy_feature"
        case notApplicable = "not_applicable"
        case mtuRange = "mtu_range"
        case mtuNeedsFeature = "mtu_needs_feature"
        case queuePairsRange = "queue_pairs_range"
        case queuePairsNeedMQ = "queue_pairs_need_mq"
        case queueSizeRange = "queue_size_range"
        case macNeedsFeature = "mac_needs_feature"
        case macInvalid = "mac_invalid"
    }

    public enum Severity: String, Hashable, Sendable, Codable { case error, warning }

    public var code: Code
    public var severity: Severity
    public var message: String

    public init(code: Code, severity: Severity, message: String) {
        self.code = code
        self.severity = severity
        self.message = message
    }

    public var description: String { "\(severity): \(message)" }
}

// MARK: Decoding helpers shared by the documents

struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) {
        stringValue = String(intValue)
        self.intValue = intValue
    }
}

/// Throws naming every key of the object that is not in `known`: a misspelt key must not be
/// silently ignored.
func rejectUnknownKeys(_ decoder: any Decoder, known: [String]) throws {
    let container = try decoder.container(keyedBy: AnyCodingKey.self)
    let unknown = container.allKeys.map(\.stringValue).filter { !known.contains($0) }.sorted()
    guard unknown.isEmpty else {
        throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown key\(unknown.count == 1 ? "" : "s") \(unknown.map { "'\($0)'" }.joined(separator: ", ")) (known: \(known.joined(separator: ", ")))",
                                                underlyingError: UnknownKeys(keys: unknown)))
    }
}

/// The keys ``rejectUnknownKeys(_:known:)`` refused, so an error report can point at the line
/// of the first one.
struct UnknownKeys: Error, CustomStringConvertible {
    var keys: [String]
    var description: String { keys.joined(separator: ", ") }
}

/// A device type as a name ("network", "net", "block") or a virtio device ID number.
/// Writes a device type as `decodeDeviceType` reads it back: its name when it has one
/// (`className`: "net"; otherwise "network"), its virtio device ID otherwise, so that every
/// document read can be written and read again.
func encodeDeviceType<Key: CodingKey>(_ type: VirtioDeviceType, _ container: inout KeyedEncodingContainer<Key>, forKey key: Key, asClass: Bool = false) throws {
    if VirtioDeviceType(name: type.typeName) == type {
        try container.encode(asClass ? type.className : type.typeName, forKey: key)
    } else {
        try container.encode(type.rawValue, forKey: key)
    }
}

func decodeDeviceType<Key: CodingKey>(_ container: KeyedDecodingContainer<Key>, forKey key: Key) throws -> VirtioDeviceType {
    if let number = try? container.decode(UInt32.self, forKey: key) { return VirtioDeviceType(rawValue: number) }
    let name = try container.decode(String.self, forKey: key)
    guard let type = VirtioDeviceType(name: name) else {
        throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "unknown device type '\(name)' (network, block)")
    }
    return type
}

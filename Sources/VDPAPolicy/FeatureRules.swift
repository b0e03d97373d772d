import VirtioModel

/// One dependency between virtio feature bits: a device must not offer `feature` unless it also
/// offers the bits in `requires` (all of them, or any one of them).
///
/// virtio 1.4 §2.2.1/§2.2.2 ("Feature Bits", driver and device requirements): "The device MUST NOT
/// offer a feature which requires another feature which was not offered", and a driver "MUST NOT
/// accept a feature which requires another feature which was not accepted". The device-type
/// sections list which bits require which (for net, §5.1.3.1 "Feature bit requirements").
public struct FeatureRule: Hashable, Sendable, Codable {
    /// How the required bits combine.
    public enum Requirement: String, Hashable, Sendable, Codable {
        /// Every bit of `requires` must be present.
        case allOf = "all_of"
        /// At least one bit of `requires` must be present.
        case anyOf = "any_of"
    }

    /// How strongly the rule binds.
    public enum Severity: String, Hashable, Sendable, Codable {
        /// Breaking it makes the feature set invalid: a driver refuses it or the device misbehaves.
        case required
        /// Advice from the specification ("SHOULD", "RECOMMENDED"); reported, never repaired.
        case recommended
    }

    /// A stable identifier ("net.guest-tso4.guest-csum"); also what `FeatureRuleViolation` carries.
    public var id: String
    /// The bit that needs others (nil for rules that require a bit unconditionally, as VERSION_1).
    public var feature: Int?
    public var requires: [Int]
    public var requirement: Requirement
    public var severity: Severity
    /// Where the rule comes from: the spec section, or the driver that enforces it.
    public var reference: String

    public init(id: String, feature: Int?, requires: [Int], requirement: Requirement = .allOf, severity: Severity = .required, reference: String) {
        self.id = id
        self.feature = feature
        self.requires = requires
        self.requirement = requirement
        self.severity = severity
        self.reference = reference
    }

    /// The bits of `requires` as a set.
    public var requiredFeatures: VirtioFeatures { VirtioFeatures(bits: requires) }

    /// Whether `features` breaks this rule.
    @inlinable
    public func isViolated(by features: VirtioFeatures) -> Bool {
        if let feature, !features.contains(bit: feature) { return false }
        let needed = requiredFeatures.rawValue
        switch requirement {
        case .allOf: return features.rawValue & needed != needed
        case .anyOf: return features.rawValue & needed == 0
        }
    }
}

/// A broken rule, by spec name: "GUEST_TSO4 requires GUEST_CSUM (virtio 1.4 §5.1.3.1)".
public struct FeatureRuleViolation: Hashable, Sendable, Codable, CustomStringConvertible {
    public var rule: String
    /// The spec name of the bit that needs others; nil for an unconditional requirement.
    public var feature: String?
    /// The spec names of the bits it needs.
    public var requires: [String]
    public var requirement: FeatureRule.Requirement
    public var severity: FeatureRule.Severity
    public var reference: String

    public init(rule: FeatureRule, deviceType: VirtioDeviceType?) {
        self.rule = rule.id
        feature = rule.feature.map { FeatureRules.name(ofBit: $0, deviceType: deviceType) }
        requires = rule.requires.map { FeatureRules.name(ofBit: $0, deviceType: deviceType) }
        requirement = rule.requirement
        severity = rule.severity
        reference = rule.reference
    }

    public var description: String {
        let needed = requires.joined(separator: requirement == .allOf ? " and " : " or ")
        let verb = severity == .required ? "requires" : "should come with"
        if let feature {
            return "\(feature) \(verb) \(needed) (\(reference))"
        }
        return "\(needed) is \(severity == .required ? "required" : "recommended") (\(reference))"
    }

    private enum CodingKeys: String, CodingKey {
        case rule, feature, requires, requirement, severity, reference
    }
}

/// The feature-dependency rules of each device type, and the checks and repair built on them.
///
/// The net rules are virtio 1.4 §5.1.3.1 verbatim (bits above 63, such as the UDP tunnel GSO
/// bits and RSS_CONTEXT, are outside ``VirtioFeatures`` and so outside these rules), plus the
/// control-queue dependencies the Linux driver enforces (`virtnet_validate_features()` refuses
/// HASH_REPORT without CTRL_VQ) and those implied by features that only exist as control-queue
/// commands. virtio-blk has no feature dependencies in the spec. Every type gets the
/// device-independent rules of §6: VERSION_1 is required (vDPA devices are modern devices; the
/// device "MUST offer VIRTIO_F_VERSION_1"), and the platform bits are advice.
public enum FeatureRules {
    static let netRequirements = "virtio 1.4 §5.1.3.1"
    static let netControl = "virtio 1.4 §5.1.6.5 (control virtqueue command)"
    static let linuxNet = "Linux virtio_net virtnet_validate_features()"
    static let reserved = "virtio 1.4 §6.2 (Reserved Feature Bits, device requirements)"

    /// Rules that hold for every device type (virtio 1.4 §6).
    public static let deviceIndependent: [FeatureRule] = [
        FeatureRule(id: "version-1", feature: nil, requires: [32], reference: reserved),
        // "It is RECOMMENDED that an add-in card based PCI device offers both VIRTIO_F_ACCESS_PLATFORM
        // and VIRTIO_F_ORDER_PLATFORM": ordering for hardware without translation is odd.
        FeatureRule(id: "order-platform.access-platform", feature: 36, requires: [33], severity: .recommended, reference: reserved),
        // vhost-vdpa maps guest memory through the device's IOVA space: a vDPA device reaches memory
        // through the platform's translation, which ACCESS_PLATFORM announces.
        FeatureRule(id: "access-platform", feature: nil, requires: [33], severity: .recommended, reference: "virtio 1.4 §6.2; vhost-vdpa IOTLB"),
    ]

    /// virtio-net rules.
    public static let network: [FeatureRule] = {
        func rule(_ id: String, _ feature: Int, _ requires: [Int], _ requirement: FeatureRule.Requirement = .allOf, _ reference: String = netRequirements) -> FeatureRule {
            FeatureRule(id: "net." + id, feature: feature, requires: requires, requirement: requirement, reference: reference)
        }
        let guestCsum = 1, csum = 0, ctrlVQ = 17
        return [
            rule("guest-tso4.guest-csum", 7, [guestCsum]),
            rule("guest-tso6.guest-csum", 8, [guestCsum]),
            rule("guest-ecn.guest-tso", 9, [7, 8], .anyOf),
            rule("guest-ufo.guest-csum", 10, [guestCsum]),
            rule("guest-uso4.guest-csum", 54, [guestCsum]),
            rule("guest-uso6.guest-csum", 55, [guestCsum]),
            rule("host-tso4.csum", 11, [csum]),
            rule("host-tso6.csum", 12, [csum]),
            rule("host-ecn.host-tso", 13, [11, 12], .anyOf),
            rule("host-ufo.csum", 14, [csum]),
            rule("host-uso.csum", 56, [csum]),
            rule("ctrl-rx.ctrl-vq", 18, [ctrlVQ]),
            rule("ctrl-vlan.ctrl-vq", 19, [ctrlVQ]),
            rule("guest-announce.ctrl-vq", 21, [ctrlVQ]),
            rule("mq.ctrl-vq", 22, [ctrlVQ]),
            rule("ctrl-mac-addr.ctrl-vq", 23, [ctrlVQ]),
            rule("notf-coal.ctrl-vq", 53, [ctrlVQ]),
            rule("rsc-ext.host-tso", 61, [11, 12], .anyOf),
            rule("rss.ctrl-vq", 60, [ctrlVQ]),
            rule("vq-notf-coal.ctrl-vq", 52, [ctrlVQ]),
            rule("hash-tunnel.ctrl-vq", 51, [ctrlVQ]),
            rule("hash-tunnel.rss-or-hash-report", 51, [60, 57], .anyOf),
            rule("hash-report.ctrl-vq", 57, [ctrlVQ], .allOf, linuxNet),
            rule("ctrl-guest-offloads.ctrl-vq", 2, [ctrlVQ], .allOf, netControl),
            rule("ctrl-rx-extra.ctrl-vq", 20, [ctrlVQ], .allOf, netControl),
            rule("device-stats.ctrl-vq", 50, [ctrlVQ], .allOf, netControl),
            // The driver refuses STANDBY without MAC (Linux clears it with a warning): a standby
            // pairs with a primary by MAC address.
            FeatureRule(id: "net.standby.mac", feature: 62, requires: [5], severity: .recommended, reference: "virtio 1.4 §5.1.3; Linux virtnet_validate()"),
        ]
    }()

    /// The rules for a device type, device-independent ones first.
    public static func rules(for deviceType: VirtioDeviceType) -> [FeatureRule] {
        switch deviceType {
        case .network: deviceIndependent + network
        default: deviceIndependent
        }
    }

    /// Every rule `features` breaks, in rule order (device-independent first).
    public static func violations(of features: VirtioFeatures, deviceType: VirtioDeviceType, including severities: Set<FeatureRule.Severity> = [.required, .recommended]) -> [FeatureRuleViolation] {
        rules(for: deviceType).compactMap { rule in
            severities.contains(rule.severity) && rule.isViolated(by: features) ? FeatureRuleViolation(rule: rule, deviceType: deviceType) : nil
        }
    }

    /// Whether `features` breaks no required rule.
    public static func isValid(_ features: VirtioFeatures, deviceType: VirtioDeviceType) -> Bool {
        let bits = features.rawValue
        let table = deviceType == .network ? compiledNetwork : compiledOther
        for rule in table where bits & rule.feature == rule.feature {
            if rule.anyOf ? bits & rule.requires == 0 : bits & rule.requires != rule.requires { return false }
        }
        return true
    }

    /// The required rules as masks (an unconditional rule has feature 0), for the checks that
    /// run once per compare.
    private struct CompiledRule: Sendable {
        var feature: UInt64
        var requires: UInt64
        var anyOf: Bool
    }

    private static func compile(_ rules: [FeatureRule]) -> [CompiledRule] {
        rules.filter { $0.severity == .required }.map {
            CompiledRule(feature: $0.feature.map { VirtioFeatures(bit: $0).rawValue } ?? 0, requires: $0.requiredFeatures.rawValue, anyOf: $0.requirement == .anyOf)
        }
    }

    private static let compiledNetwork = compile(deviceIndependent + network)
    private static let compiledOther = compile(deviceIndependent)

    /// The largest subset of `features` that breaks no required dependency rule: bits whose
    /// required bits are missing are removed, repeatedly, until nothing changes (removing
    /// HOST_TSO4 can orphan HOST_ECN and RSC_EXT). Unconditional requirements (VERSION_1) cannot
    /// be repaired by removing bits; they stay in ``Repair/unmet``.
    public static func repaired(_ features: VirtioFeatures, deviceType: VirtioDeviceType) -> Repair {
        let rules = rules(for: deviceType).filter { $0.severity == .required }
        var current = features
        var removedBy: [(bit: Int, rule: FeatureRule)] = []
        var changed = true
        while changed {
            changed = false
            for rule in rules {
                guard let bit = rule.feature, rule.isViolated(by: current) else { continue }
                current.remove(VirtioFeatures(bit: bit))
                removedBy.append((bit, rule))
                changed = true
            }
        }
        let unmet = rules.filter { $0.feature == nil && $0.isViolated(by: current) }
        return Repair(
            features: current,
            removed: removedBy.map { FeatureRuleViolation(rule: $0.rule, deviceType: deviceType) },
            unmet: unmet.map { FeatureRuleViolation(rule: $0, deviceType: deviceType) })
    }

    /// What ``repaired(_:deviceType:)`` did.
    public struct Repair: Hashable, Sendable, Codable {
        /// The repaired set.
        public var features: VirtioFeatures
        /// One entry per removed bit: the rule that removed it.
        public var removed: [FeatureRuleViolation]
        /// Unconditional requirements still unmet (a missing VERSION_1).
        public var unmet: [FeatureRuleViolation]
    }

    /// The spec name of a bit for a device type, "bit_N" when the catalogue has none.
    public static func name(ofBit bit: Int, deviceType: VirtioDeviceType?) -> String {
        FeatureCatalogue.name(ofBit: bit, deviceType: deviceType) ?? "bit_\(bit)"
    }

    /// Legacy-only bits of a device type (virtio 1.4 §6 and the "Legacy Interface: Feature bits"
    /// sections): never part of what a modern vDPA device should present.
    public static func legacyBits(for deviceType: VirtioDeviceType) -> VirtioFeatures {
        VirtioFeatures(bits: FeatureCatalogue.entries(for: deviceType).filter(\.isLegacy).map(\.bit))
    }
}

import VirtioModel

/// What a device presents and so what a destination must present exactly: from a profile, from
/// a running device (its device features and config), or from an exported device-state document.
public struct DeviceRequirement: Hashable, Sendable, Codable {
    public var deviceType: VirtioDeviceType
    public var features: VirtioFeatures
    /// nil: no MTU is provisioned (the device's default).
    public var mtu: Int?
    /// nil: no `max_vqp` is provisioned (the device's default).
    public var queuePairs: Int?
    /// The virtqueue size the driver uses; the destination must allow it.
    public var queueSize: Int?
    public var mac: MACPolicy
    /// The destination's backend must suspend (to read vq state for live migration).
    public var needsSuspend: Bool
    public var needsResume: Bool

    public init(deviceType: VirtioDeviceType, features: VirtioFeatures, mtu: Int? = nil, queuePairs: Int? = nil, queueSize: Int? = nil, mac: MACPolicy = .none, needsSuspend: Bool = false, needsResume: Bool = false) {
        self.deviceType = deviceType
        self.features = features
        self.mtu = mtu
        self.queuePairs = queuePairs
        self.queueSize = queueSize
        self.mac = mac
        self.needsSuspend = needsSuspend
        self.needsResume = needsResume
    }

    /// What a device made from `profile` presents.
    public init(profile: Profile, needsSuspend: Bool = false, needsResume: Bool = false) {
        self.init(deviceType: profile.deviceType, features: profile.features, mtu: profile.mtu, queuePairs: profile.queuePairs, queueSize: profile.queueSize, mac: profile.mac, needsSuspend: needsSuspend, needsResume: needsResume)
    }

    /// Everything a management device presents without provisioning anything: its features.
    public init(capability: ClassCapabilities) {
        self.init(deviceType: capability.deviceType, features: capability.features)
    }

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case deviceType = "device_type", features, mtu, queuePairs = "queue_pairs", queueSize = "queue_size", mac
        case needsSuspend = "needs_suspend", needsResume = "needs_resume"
    }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.stringValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        deviceType = try decodeDeviceType(container, forKey: .deviceType)
        do {
            features = try container.decode(FeatureList.self, forKey: .features).resolve(deviceType: deviceType)
        } catch let error as FeatureListError {
            throw DecodingError.dataCorruptedError(forKey: .features, in: container, debugDescription: error.description)
        }
        mtu = try container.decodeIfPresent(Int.self, forKey: .mtu, within: VirtioBounds.mtu)
        queuePairs = try container.decodeIfPresent(Int.self, forKey: .queuePairs, within: VirtioBounds.queuePairs)
        queueSize = try container.decodeIfPresent(Int.self, forKey: .queueSize, within: VirtioBounds.queueSize)
        mac = try container.decodeIfPresent(MACPolicy.self, forKey: .mac) ?? .none
        needsSuspend = try container.decodeIfPresent(Bool.self, forKey: .needsSuspend) ?? false
        needsResume = try container.decodeIfPresent(Bool.self, forKey: .needsResume) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try encodeDeviceType(deviceType, &container, forKey: .deviceType)
        try container.encode(FeatureList(features, deviceType: deviceType), forKey: .features)
        try container.encodeIfPresent(mtu, forKey: .mtu)
        try container.encodeIfPresent(queuePairs, forKey: .queuePairs)
        try container.encodeIfPresent(queueSize, forKey: .queueSize)
        try container.encode(mac, forKey: .mac)
        try container.encode(needsSuspend, forKey: .needsSuspend)
        try container.encode(needsResume, forKey: .needsResume)
    }
}

/// What one management device can present for one device type, after its quirks: the
/// destination side of a check. Made from a ``CapabilitiesDocument``.
public struct DestinationCapability: Hashable, Sendable {
    public var host: String?
    /// The management device handle.
    public var mgmtdev: String
    public var deviceType: VirtioDeviceType
    /// Whether the management device creates devices of `deviceType` at all.
    public var supportsDeviceType: Bool
    /// What it presents after quirks.
    public var features: VirtioFeatures
    /// What the kernel reports (`device_features` can only select from these); nil: not reported.
    public var reportedFeatures: VirtioFeatures?
    public var limits: DeviceLimits
    public var attributes: AttributeAbilities
    public var backend: BackendAbilities
    /// The quirks in force, with the bits each removed (to name them when a needed bit is gone).
    public var quirks: [AppliedQuirk]
    let quirkClears: [(name: String, bits: VirtioFeatures)]

    public init(host: String? = nil, mgmtdev: String, deviceType: VirtioDeviceType, supportsDeviceType: Bool = true, features: VirtioFeatures, reportedFeatures: VirtioFeatures? = nil, limits: DeviceLimits = DeviceLimits(), attributes: AttributeAbilities = AttributeAbilities(), backend: BackendAbilities = BackendAbilities(), quirks: [AppliedQuirk] = []) {
        self.host = host
        self.mgmtdev = mgmtdev
        self.deviceType = deviceType
        self.supportsDeviceType = supportsDeviceType
        self.features = features
        self.reportedFeatures = reportedFeatures
        self.limits = limits
        self.attributes = attributes
        self.backend = backend
        self.quirks = quirks
        quirkClears = quirks.compactMap { quirk in
            let bits = quirk.clearedFeatures
            return bits.isEmpty ? nil : (quirk.name, bits)
        }
    }

    /// The destination a management device of a capabilities document offers for `deviceType`;
    /// nil when it does not create devices of that type.
    public init?(host: String?, mgmtdev: MgmtdevCapabilities, deviceType: VirtioDeviceType) {
        guard let entry = mgmtdev.capabilities(for: deviceType) else { return nil }
        self.init(host: host, mgmtdev: mgmtdev.identity.handle, deviceType: deviceType, features: entry.features, reportedFeatures: entry.supportedFeatures, limits: entry.limits, attributes: entry.attributes, backend: mgmtdev.backend, quirks: entry.quirks)
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.host == rhs.host && lhs.mgmtdev == rhs.mgmtdev && lhs.deviceType == rhs.deviceType && lhs.supportsDeviceType == rhs.supportsDeviceType
            && lhs.features == rhs.features && lhs.reportedFeatures == rhs.reportedFeatures && lhs.limits == rhs.limits
            && lhs.attributes == rhs.attributes && lhs.backend == rhs.backend && lhs.quirks == rhs.quirks
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(mgmtdev)
        hasher.combine(features)
    }
}

/// One reason a destination cannot present a device, or a check that could not be made.
public struct CompatibilityReason: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Stable codes, for programs.
    public enum Code: String, Hashable, Sendable, Codable {
        case deviceTypeUnsupported = "device_type_unsupported"
        case featuresMissing = "features_missing"
        case featuresRemovedByQuirk = "features_removed_by_quirk"
        case cannotMask = "cannot_mask"
        case mtuOverLimit = "mtu_over_limit"
        case queuePairsOverLimit = "queue_pairs_over_limit"
        case queueSizeOverLimit = "queue_size_over_limit"
        case attributeNotAccepted = "attribute_not_accepted"
        case macPolicyImpossible = "mac_policy_impossible"
        case backendMissing = "backend_missing"
        /// Restoring saved virtqueue state: the target has a different number of virtqueues.
        case queueCountMismatch = "queue_count_mismatch"
        /// Restoring saved virtqueue state: the target presents other configuration (MTU, queue pairs).
        case configMismatch = "config_mismatch"
        // Notes: checks that could not be made, and facts worth knowing.
        case unverified
        case quirkProvided = "quirk_provided"
        case sourceInvalid = "source_invalid"
    }

    public var code: Code
    public var message: String
    /// Feature names the reason is about.
    public var features: [String]?
    /// The quirk that caused it.
    public var quirk: String?
    /// The provisioning attribute it is about ("mac", "mtu", "max_vqp", "device_features").
    public var attribute: String?
    public var requested: Int?
    public var limit: Int?

    public init(code: Code, message: String, features: [String]? = nil, quirk: String? = nil, attribute: String? = nil, requested: Int? = nil, limit: Int? = nil) {
        self.code = code
        self.message = message
        self.features = features
        self.quirk = quirk
        self.attribute = attribute
        self.requested = requested
        self.limit = limit
    }

    public var description: String { message }
}

/// The attributes to provision on the destination so that the device there presents exactly
/// what the source presents (for `dev_add`: `device_features`, `mtu`, `max_vqp`, `mac`).
public struct ProvisioningPlan: Hashable, Sendable, Codable {
    public var mgmtdev: String
    public var deviceType: VirtioDeviceType
    /// The `device_features` to request; nil when nothing needs masking.
    public var deviceFeatures: FeatureList?
    public var mtu: Int?
    public var maxVQP: Int?
    public var mac: MACPolicy

    public init(mgmtdev: String, deviceType: VirtioDeviceType, deviceFeatures: FeatureList?, mtu: Int?, maxVQP: Int?, mac: MACPolicy) {
        self.mgmtdev = mgmtdev
        self.deviceType = deviceType
        self.deviceFeatures = deviceFeatures
        self.mtu = mtu
        self.maxVQP = maxVQP
        self.mac = mac
    }

    private enum CodingKeys: String, CodingKey {
        case mgmtdev, deviceType = "device_type", deviceFeatures = "device_features", mtu, maxVQP = "max_vqp", mac
    }

    /// `device_type` is a name ("network"), as in profiles; a virtio device ID number is read too.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        mgmtdev = try container.decode(String.self, forKey: .mgmtdev)
        deviceType = try decodeDeviceType(container, forKey: .deviceType)
        deviceFeatures = try container.decodeIfPresent(FeatureList.self, forKey: .deviceFeatures)
        mtu = try container.decodeIfPresent(Int.self, forKey: .mtu, within: VirtioBounds.mtu)
        maxVQP = try container.decodeIfPresent(Int.self, forKey: .maxVQP, within: VirtioBounds.queuePairs)
        mac = try container.decode(MACPolicy.self, forKey: .mac)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(mgmtdev, forKey: .mgmtdev)
        try encodeDeviceType(deviceType, &container, forKey: .deviceType)
        try container.encodeIfPresent(deviceFeatures, forKey: .deviceFeatures)
        try container.encodeIfPresent(mtu, forKey: .mtu)
        try container.encodeIfPresent(maxVQP, forKey: .maxVQP)
        try container.encode(mac, forKey: .mac)
    }
}

/// The answer of a compatibility check, in the spirit of libvirt's `hypervisor-cpu-compare`.
public struct CompatibilityResult: Hashable, Sendable, Codable {
    public enum Answer: String, Hashable, Sendable, Codable {
        /// The destination presents exactly this without masking anything.
        case identical
        /// The destination presents more; masking (the plan's `device_features`) gives exactly this.
        case superset
        /// The destination cannot present this; `reasons` says every why.
        case incompatible

        /// The exit status proposed for `vdpactl compat check` (0 identical, 1 superset,
        /// 2 incompatible; 3 is for errors, such as an unreadable document).
        public var exitCode: Int32 {
            switch self {
            case .identical: 0
            case .superset: 1
            case .incompatible: 2
            }
        }
    }

    public var answer: Answer
    public var host: String?
    public var mgmtdev: String
    /// Every reason for `incompatible`; empty otherwise.
    public var reasons: [CompatibilityReason]
    /// Checks that could not be made (limits or abilities the destination did not report) and
    /// facts worth knowing; never the cause of `incompatible`.
    public var notes: [CompatibilityReason]
    /// How to provision the destination; nil when incompatible.
    public var plan: ProvisioningPlan?

    public init(answer: Answer, host: String?, mgmtdev: String, reasons: [CompatibilityReason], notes: [CompatibilityReason], plan: ProvisioningPlan?) {
        self.answer = answer
        self.host = host
        self.mgmtdev = mgmtdev
        self.reasons = reasons
        self.notes = notes
        self.plan = plan
    }
}

/// The migration pre-check: can this destination present exactly what the source presents?
public enum CompatibilityCheck {
    /// Compares a source device with a destination management device. Every reason is collected;
    /// limits and abilities the destination did not report are assumed sufficient and noted.
    public static func compare(source: DeviceRequirement, destination: DestinationCapability) -> CompatibilityResult {
        let type = source.deviceType
        var reasons: [CompatibilityReason] = []
        var notes: [CompatibilityReason] = []
        func names(_ features: VirtioFeatures) -> [String] { features.names(for: type) }

        guard destination.supportsDeviceType && destination.deviceType == type else {
            reasons.append(CompatibilityReason(code: .deviceTypeUnsupported, message: "\(destination.mgmtdev) does not create \(type.typeName) devices"))
            return CompatibilityResult(answer: .incompatible, host: destination.host, mgmtdev: destination.mgmtdev, reasons: reasons, notes: notes, plan: nil)
        }

        if !FeatureRules.isValid(source.features, deviceType: type) {
            let broken = FeatureRules.violations(of: source.features, deviceType: type, including: [.required])
            notes.append(CompatibilityReason(code: .sourceInvalid, message: "the source's features break the spec's rules: " + broken.map(\.description).joined(separator: "; ")))
        }

        // Features: every source bit must be there; the rest must be maskable.
        var missing = source.features.subtracting(destination.features)
        if !missing.isEmpty {
            for (quirk, cleared) in destination.quirkClears {
                let removed = missing.intersection(cleared)
                guard !removed.isEmpty else { continue }
                missing.subtract(removed)
                let removedNames = names(removed)
                reasons.append(CompatibilityReason(code: .featuresRemovedByQuirk, message: "quirk '\(quirk)' removes \(removedNames.joined(separator: ", ")) on \(destination.mgmtdev)", features: removedNames, quirk: quirk))
            }
            if !missing.isEmpty {
                let missingNames = names(missing)
                let list = missingNames.joined(separator: ", ")
                let message = destination.reportedFeatures == nil && destination.features.isEmpty
                    ? "\(destination.mgmtdev) does not report its supported features; missing: \(list)"
                    : "missing features: \(list)"
                reasons.insert(CompatibilityReason(code: .featuresMissing, message: message, features: missingNames), at: 0)
            }
        }
        let extra = destination.features.subtracting(source.features)
        if !extra.isEmpty {
            switch destination.attributes.deviceFeatures {
            case false?:
                let extraNames = names(extra)
                reasons.append(CompatibilityReason(code: .cannotMask, message: "\(destination.mgmtdev) does not accept device_features, so it cannot hide \(extraNames.joined(separator: ", "))", features: extraNames, attribute: ProvisioningAttribute.deviceFeatures.rawValue))
            case nil:
                notes.append(CompatibilityReason(code: .unverified, message: "masking needs the device_features attribute; \(destination.mgmtdev) did not say whether it accepts it", attribute: ProvisioningAttribute.deviceFeatures.rawValue))
            case true?: break
            }
        }

        // Configuration.
        func attribute(_ attribute: ProvisioningAttribute, for what: String) {
            switch destination.attributes[attribute] {
            case false?:
                reasons.append(CompatibilityReason(code: .attributeNotAccepted, message: "\(destination.mgmtdev) does not accept the \(attribute.rawValue) attribute, needed for \(what)", attribute: attribute.rawValue))
            case nil:
                notes.append(CompatibilityReason(code: .unverified, message: "\(what) needs the \(attribute.rawValue) attribute; \(destination.mgmtdev) did not say whether it accepts it", attribute: attribute.rawValue))
            case true?: break
            }
        }
        func limit(_ value: Int, _ maximum: Int?, code: CompatibilityReason.Code, what: String) {
            if let maximum {
                if value > maximum {
                    reasons.append(CompatibilityReason(code: code, message: "\(what) \(value) is over \(destination.mgmtdev)'s limit of \(maximum)", requested: value, limit: maximum))
                }
            } else {
                notes.append(CompatibilityReason(code: .unverified, message: "\(destination.mgmtdev) did not report its \(what) limit; \(value) not verified", requested: value))
            }
        }
        if let mtu = source.mtu {
            attribute(.mtu, for: "mtu \(mtu)")
            limit(mtu, destination.limits.maxMTU, code: .mtuOverLimit, what: "mtu")
        }
        if let pairs = source.queuePairs {
            if pairs > 1 || source.features.contains(.Net.multiqueue) { attribute(.maxVQP, for: "max_vqp \(pairs)") }
            limit(pairs, destination.limits.maxQueuePairs, code: .queuePairsOverLimit, what: "queue_pairs")
        }
        if let size = source.queueSize {
            limit(size, destination.limits.maxQueueSize, code: .queueSizeOverLimit, what: "queue_size")
        }
        if source.mac.setsAddress {
            switch destination.attributes.mac {
            case false?:
                reasons.append(CompatibilityReason(code: .macPolicyImpossible, message: "MAC policy '\(source.mac)' needs the mac attribute, which \(destination.mgmtdev) does not accept", attribute: ProvisioningAttribute.mac.rawValue))
            case nil:
                notes.append(CompatibilityReason(code: .unverified, message: "MAC policy '\(source.mac)' needs the mac attribute; \(destination.mgmtdev) did not say whether it accepts it", attribute: ProvisioningAttribute.mac.rawValue))
            case true?: break
            }
        }
        func backend(_ needed: Bool, _ has: Bool?, _ name: String) {
            guard needed else { return }
            switch has {
            case false?: reasons.append(CompatibilityReason(code: .backendMissing, message: "\(destination.mgmtdev)'s backend cannot \(name) (VHOST_BACKEND_F_\(name.uppercased()))"))
            case nil: notes.append(CompatibilityReason(code: .unverified, message: "\(destination.mgmtdev) did not report whether its backend can \(name)"))
            case true?: break
            }
        }
        backend(source.needsSuspend, destination.backend.suspend, "suspend")
        backend(source.needsResume, destination.backend.resume, "resume")

        guard reasons.isEmpty else {
            return CompatibilityResult(answer: .incompatible, host: destination.host, mgmtdev: destination.mgmtdev, reasons: reasons, notes: notes, plan: nil)
        }
        var request: FeatureList?
        if !extra.isEmpty {
            // device_features can only select what the kernel reports; bits a quirk adds come
            // from the device itself.
            var requested = source.features
            if let reported = destination.reportedFeatures {
                let quirkOnly = source.features.subtracting(reported)
                if !quirkOnly.isEmpty {
                    notes.append(CompatibilityReason(code: .quirkProvided, message: "\(names(quirkOnly).joined(separator: ", ")) come from quirks, not from the kernel's supported features; not requested in device_features", features: names(quirkOnly)))
                    requested.subtract(quirkOnly)
                }
            }
            request = FeatureList(requested, deviceType: type)
        }
        let plan = ProvisioningPlan(mgmtdev: destination.mgmtdev, deviceType: type, deviceFeatures: request, mtu: source.mtu, maxVQP: source.queuePairs, mac: source.mac)
        return CompatibilityResult(answer: extra.isEmpty ? .identical : .superset, host: destination.host, mgmtdev: destination.mgmtdev, reasons: [], notes: notes, plan: plan)
    }

    /// Compares against every management device of a capabilities document that creates the
    /// source's device type, best answer first (identical, then superset, then incompatible).
    public static func compare(source: DeviceRequirement, document: CapabilitiesDocument) -> [CompatibilityResult] {
        let order: [CompatibilityResult.Answer: Int] = [.identical: 0, .superset: 1, .incompatible: 2]
        let results = document.mgmtdevs.map { mgmtdev in
            if let destination = DestinationCapability(host: document.host, mgmtdev: mgmtdev, deviceType: source.deviceType) {
                return compare(source: source, destination: destination)
            }
            return CompatibilityResult(answer: .incompatible, host: document.host, mgmtdev: mgmtdev.identity.handle, reasons: [CompatibilityReason(code: .deviceTypeUnsupported, message: "\(mgmtdev.identity.handle) does not create \(source.deviceType.typeName) devices")], notes: [], plan: nil)
        }
        return results.enumerated().sorted { (order[$0.element.answer]!, $0.offset) < (order[$1.element.answer]!, $1.offset) }.map(\.element)
    }
}

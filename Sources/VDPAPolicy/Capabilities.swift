import VirtioModel

/// What one host can provision, as a document other hosts read (`vdpad.caps/v1`; JSON schema in
/// Documentation/caps-schema.json). It is what `compat_check` compares against and what
/// `compat_baseline` intersects: each host exports its own, with its own quirks already applied.
public struct CapabilitiesDocument: Hashable, Sendable, Codable {
    public static let schema = "vdpad.caps/v1"

    public var host: String
    public var kernelRelease: String?
    public var vdpadVersion: String?
    /// RFC 3339 time the document was made.
    public var generatedAt: String?
    public var mgmtdevs: [MgmtdevCapabilities]

    public init(host: String, kernelRelease: String? = nil, vdpadVersion: String? = nil, generatedAt: String? = nil, mgmtdevs: [MgmtdevCapabilities]) {
        self.host = host
        self.kernelRelease = kernelRelease
        self.vdpadVersion = vdpadVersion
        self.generatedAt = generatedAt
        self.mgmtdevs = mgmtdevs
    }

    /// The management device with this handle ("pci/0000:41:00.2", "vdpasim_net").
    public func mgmtdev(_ handle: String) -> MgmtdevCapabilities? {
        mgmtdevs.first { $0.identity.handle == handle }
    }

    /// What each management device that creates `deviceType` devices can present.
    public func destinations(for deviceType: VirtioDeviceType) -> [DestinationCapability] {
        mgmtdevs.compactMap { DestinationCapability(host: host, mgmtdev: $0, deviceType: deviceType) }
    }

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case schema, host, kernelRelease = "kernel_release", vdpadVersion = "vdpad_version", generatedAt = "generated_at", mgmtdevs
    }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.stringValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let schema = try container.decode(String.self, forKey: .schema)
        guard schema == CapabilitiesDocument.schema else {
            throw DecodingError.dataCorruptedError(forKey: .schema, in: container, debugDescription: "schema '\(schema)' is not \(CapabilitiesDocument.schema)")
        }
        host = try container.decode(String.self, forKey: .host)
        kernelRelease = try container.decodeIfPresent(String.self, forKey: .kernelRelease)
        vdpadVersion = try container.decodeIfPresent(String.self, forKey: .vdpadVersion)
        generatedAt = try container.decodeIfPresent(String.self, forKey: .generatedAt)
        mgmtdevs = try container.decode([MgmtdevCapabilities].self, forKey: .mgmtdevs)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(CapabilitiesDocument.schema, forKey: .schema)
        try container.encode(host, forKey: .host)
        try container.encodeIfPresent(kernelRelease, forKey: .kernelRelease)
        try container.encodeIfPresent(vdpadVersion, forKey: .vdpadVersion)
        try container.encodeIfPresent(generatedAt, forKey: .generatedAt)
        try container.encode(mgmtdevs, forKey: .mgmtdevs)
    }
}

/// One management device in a ``CapabilitiesDocument``.
public struct MgmtdevCapabilities: Hashable, Sendable, Codable {
    public var identity: DeviceIdentity
    /// `VDPA_ATTR_DEV_MGMTDEV_MAX_VQS`.
    public var maxSupportedVqs: Int?
    /// The vhost-vdpa backend features of its devices, when known.
    public var backend: BackendAbilities
    /// One entry per device type it creates.
    public var classes: [ClassCapabilities]

    public init(identity: DeviceIdentity, maxSupportedVqs: Int?, backend: BackendAbilities = BackendAbilities(), classes: [ClassCapabilities]) {
        self.identity = identity
        self.maxSupportedVqs = maxSupportedVqs
        self.backend = backend
        self.classes = classes
    }

    /// Builds the entry from what the kernel reports (`VDPA_CMD_MGMTDEV_GET`, probed attribute
    /// and backend abilities) and the quirks in force, one class at a time.
    ///
    /// - Parameters:
    ///   - supportedFeatures: `VDPA_ATTR_DEV_SUPPORTED_FEATURES`; nil when the kernel does not report it.
    ///   - maxQueueSize: the largest virtqueue size, when known (an existing device's `max_vq_size`).
    public static func make(identity: DeviceIdentity, classes: [VirtioDeviceType], supportedFeatures: VirtioFeatures?, maxSupportedVqs: Int?, maxQueueSize: Int? = nil, attributes: AttributeAbilities = AttributeAbilities(), backend: BackendAbilities = BackendAbilities(), quirks: QuirkDatabase = QuirkDatabase()) -> MgmtdevCapabilities {
        let entries = classes.map { type -> ClassCapabilities in
            // A device may report more than virtio allows (a u16 max_vq_size): what it can be
            // given is the spec's largest.
            var limits = DeviceLimits(maxQueueSize: maxQueueSize.map { min($0, VirtioBounds.queueSize.upperBound) })
            if type == .network, let maxSupportedVqs { limits.maxQueuePairs = DeviceLimits.netQueuePairs(maxVirtqueues: maxSupportedVqs) }
            let outcome = quirks.apply(to: supportedFeatures ?? [], limits: limits, attributes: attributes, identity: identity, deviceType: type)
            return ClassCapabilities(deviceType: type, supportedFeatures: supportedFeatures, features: outcome.features, limits: outcome.limits, attributes: outcome.attributes, quirks: outcome.applied)
        }
        return MgmtdevCapabilities(identity: identity, maxSupportedVqs: maxSupportedVqs, backend: backend, classes: entries)
    }

    public func capabilities(for deviceType: VirtioDeviceType) -> ClassCapabilities? {
        classes.first { $0.deviceType == deviceType }
    }

    private enum CodingKeys: String, CodingKey {
        case identity = "mgmtdev", maxSupportedVqs = "max_supported_vqs", backend, classes
    }
}

/// What a management device can present for one device type: as reported, and after quirks.
public struct ClassCapabilities: Hashable, Sendable, Codable {
    public var deviceType: VirtioDeviceType
    /// What the kernel reports (`supported_features`); nil when it does not.
    public var supportedFeatures: VirtioFeatures?
    /// What devices can present once the quirks in force have applied: the set compared against.
    public var features: VirtioFeatures
    public var limits: DeviceLimits
    /// Which provisioning attributes it accepts (after quirks).
    public var attributes: AttributeAbilities
    /// The quirks that shaped this entry, with what each changed.
    public var quirks: [AppliedQuirk]

    public init(deviceType: VirtioDeviceType, supportedFeatures: VirtioFeatures?, features: VirtioFeatures, limits: DeviceLimits = DeviceLimits(), attributes: AttributeAbilities = AttributeAbilities(), quirks: [AppliedQuirk] = []) {
        self.deviceType = deviceType
        self.supportedFeatures = supportedFeatures
        self.features = features
        self.limits = limits
        self.attributes = attributes
        self.quirks = quirks
    }

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case deviceType = "class", supportedFeatures = "supported_features", features, limits, attributes, quirks
    }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.stringValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        deviceType = try decodeDeviceType(container, forKey: .deviceType)
        do {
            supportedFeatures = try container.decodeIfPresent(FeatureList.self, forKey: .supportedFeatures)?.resolve(deviceType: deviceType)
            features = try container.decode(FeatureList.self, forKey: .features).resolve(deviceType: deviceType)
        } catch let error as FeatureListError {
            throw DecodingError.dataCorrupted(.init(codingPath: container.codingPath, debugDescription: error.description))
        }
        limits = try container.decodeIfPresent(DeviceLimits.self, forKey: .limits) ?? DeviceLimits()
        attributes = try container.decodeIfPresent(AttributeAbilities.self, forKey: .attributes) ?? AttributeAbilities()
        quirks = try container.decodeIfPresent([AppliedQuirk].self, forKey: .quirks) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try encodeDeviceType(deviceType, &container, forKey: .deviceType, asClass: true)
        try container.encodeIfPresent(supportedFeatures.map { FeatureList($0, deviceType: deviceType) }, forKey: .supportedFeatures)
        try container.encode(FeatureList(features, deviceType: deviceType), forKey: .features)
        try container.encode(limits, forKey: .limits)
        try container.encode(attributes, forKey: .attributes)
        try container.encode(quirks, forKey: .quirks)
    }
}

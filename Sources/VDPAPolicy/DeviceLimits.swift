import VirtioModel

/// The configuration limits of what a management device can present for one device type.
/// nil means not known (not reported and not capped by a quirk): checks against it are noted as
/// unverified, never failed.
public struct DeviceLimits: Hashable, Sendable, Codable {
    /// Largest `max_vqp` (virtio-net `max_virtqueue_pairs`, at most 0x8000, virtio 1.4 §5.1.4.1).
    public var maxQueuePairs: Int?
    /// Largest virtqueue size (`VHOST_VDPA_GET_VRING_NUM`, a device's `max_vq_size`).
    public var maxQueueSize: Int?
    /// Largest MTU the device accepts (68–65535, virtio 1.4 §5.1.4.1).
    public var maxMTU: Int?

    public init(maxQueuePairs: Int? = nil, maxQueueSize: Int? = nil, maxMTU: Int? = nil) {
        self.maxQueuePairs = maxQueuePairs
        self.maxQueueSize = maxQueueSize
        self.maxMTU = maxMTU
    }

    /// The queue pairs a net device can have with `maxVirtqueues` virtqueues
    /// (`VDPA_ATTR_DEV_MGMTDEV_MAX_VQS`): one is kept for the control queue, the rest pair up
    /// (virtio 1.4 §5.1.2: receiveq1, transmitq1, …, controlq). Capped at 0x8000.
    public static func netQueuePairs(maxVirtqueues: Int) -> Int {
        let count = min(max(maxVirtqueues, 1), VirtioBounds.queueCount.upperBound)
        return min(VirtioBounds.queuePairs.upperBound, max(1, (count - 1) / 2))
    }

    /// Each limit lowered to `cap` where `cap` has one.
    public func capped(by cap: DeviceLimits) -> DeviceLimits {
        func low(_ a: Int?, _ b: Int?) -> Int? { switch (a, b) { case let (a?, b?): min(a, b); case let (a?, nil): a; case let (nil, b): b } }
        return DeviceLimits(maxQueuePairs: low(maxQueuePairs, cap.maxQueuePairs), maxQueueSize: low(maxQueueSize, cap.maxQueueSize), maxMTU: low(maxMTU, cap.maxMTU))
    }

    private enum CodingKeys: String, CodingKey {
        case maxQueuePairs = "max_queue_pairs", maxQueueSize = "max_queue_size", maxMTU = "max_mtu"
    }

    /// Each limit within what virtio allows (``VirtioBounds``): a document claiming more is refused.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        maxQueuePairs = try container.decodeIfPresent(Int.self, forKey: .maxQueuePairs, within: VirtioBounds.queuePairs)
        maxQueueSize = try container.decodeIfPresent(Int.self, forKey: .maxQueueSize, within: VirtioBounds.queueSize)
        maxMTU = try container.decodeIfPresent(Int.self, forKey: .maxMTU, within: VirtioBounds.mtu)
    }
}

/// Which provisioning attributes of `VDPA_CMD_DEV_NEW` a management device accepts (its
/// `config_attr_mask`; the kernel answers "Some provided attributes are not supported" for the
/// others). nil means not known.
public struct AttributeAbilities: Hashable, Sendable, Codable {
    public var mac: Bool?
    public var mtu: Bool?
    public var maxVQP: Bool?
    /// `device_features`: without it a device presents every supported feature; nothing can be masked.
    public var deviceFeatures: Bool?

    public init(mac: Bool? = nil, mtu: Bool? = nil, maxVQP: Bool? = nil, deviceFeatures: Bool? = nil) {
        self.mac = mac
        self.mtu = mtu
        self.maxVQP = maxVQP
        self.deviceFeatures = deviceFeatures
    }

    /// The attribute by its iproute2 name ("mac", "mtu", "max_vqp", "device_features").
    public subscript(attribute: ProvisioningAttribute) -> Bool? {
        get {
            switch attribute {
            case .mac: mac
            case .mtu: mtu
            case .maxVQP: maxVQP
            case .deviceFeatures: deviceFeatures
            }
        }
        set {
            switch attribute {
            case .mac: mac = newValue
            case .mtu: mtu = newValue
            case .maxVQP: maxVQP = newValue
            case .deviceFeatures: deviceFeatures = newValue
            }
        }
    }

    private enum CodingKeys: String, CodingKey {
        case mac, mtu, maxVQP = "max_vqp", deviceFeatures = "device_features"
    }
}

/// A `VDPA_CMD_DEV_NEW` provisioning attribute, by iproute2's name.
public enum ProvisioningAttribute: String, Hashable, Sendable, Codable, CaseIterable {
    case mac
    case mtu
    case maxVQP = "max_vqp"
    case deviceFeatures = "device_features"
}

/// What the vhost-vdpa backend of a management device's devices can do
/// (`VHOST_GET_BACKEND_FEATURES`); nil means not known.
public struct BackendAbilities: Hashable, Sendable, Codable {
    /// VHOST_BACKEND_F_SUSPEND: queues can be stopped to read their state (live migration).
    public var suspend: Bool?
    /// VHOST_BACKEND_F_RESUME.
    public var resume: Bool?

    public init(suspend: Bool? = nil, resume: Bool? = nil) {
        self.suspend = suspend
        self.resume = resume
    }
}

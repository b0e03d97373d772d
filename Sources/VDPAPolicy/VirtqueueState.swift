import VirtioModel
import Virtqueue

/// Where every virtqueue of a suspended device stood, and what the device presented: the
/// document `vq_state_save` stores and `vq_state_export` hands to another host
/// (`vdpad.vqstate/v1`). Restoring it onto a device (the same one re-created, or another)
/// starts that device exactly where this one stopped: no descriptor lost or used twice.
///
/// Bases are kept as the kernel encodes them (`VHOST_GET_VRING_BASE`, see ``VringBase``)
/// and decoded beside, so a reader needs no vhost knowledge and a restore writes back
/// exactly what was read.
public struct VirtqueueStateDocument: Hashable, Sendable, Codable {
    public static let schema = "vdpad.vqstate/v1"

    public var name: String
    public var host: String
    /// RFC 3339 time the device was suspended.
    public var takenAt: String
    public var vdpadVersion: String?
    public var source: Source
    public var deviceType: VirtioDeviceType
    /// What the device offered (`VHOST_GET_FEATURES`).
    public var deviceFeatures: FeatureList
    /// What the driver accepted (the features the device runs with).
    public var negotiatedFeatures: FeatureList
    /// `VHOST_GET_BACKEND_FEATURES` of the device, by name.
    public var backendFeatures: [String]
    /// Device status bits when it was suspended, by spec name.
    public var status: [String]
    /// Device-specific configuration space (`VHOST_VDPA_GET_CONFIG`), hex.
    public var config: String
    /// Virtqueues of the device (`VHOST_VDPA_GET_VQS_COUNT`), used or not.
    public var queueCount: Int
    /// The queues the driver set up, by index.
    public var queues: [QueueStateEntry]
    /// Device state a driver set through configuration or the control queue, replayed on restore.
    public var control: ControlState?

    public struct Source: Hashable, Sendable, Codable {
        public var device: String
        public var mgmtdev: String?
        public var port: String?
        public init(device: String, mgmtdev: String?, port: String?) {
            self.device = device
            self.mgmtdev = mgmtdev
            self.port = port
        }
    }

    /// One virtqueue (vhost-vdpa §2.4 of the reference: split base = next avail index;
    /// packed = avail and used positions with their wrap counters in bit 15 of each half).
    public struct QueueStateEntry: Hashable, Sendable, Codable {
        public var index: Int
        public var size: Int
        public var layout: QueueLayout
        /// `vhost_vring_state.num` as read.
        public var base: UInt32
        public var availableIndex: Int
        public var usedIndex: Int
        public var availableWrapCounter: Bool?
        public var usedWrapCounter: Bool?
        public var enabled: Bool

        public init(index: Int, size: Int, layout: QueueLayout, base: UInt32, enabled: Bool) {
            self.index = index
            self.size = size
            self.layout = layout
            self.base = base
            self.enabled = enabled
            let decoded = VringBase.decode(base, layout: layout)
            availableIndex = Int(decoded.nextAvailIndex)
            usedIndex = Int(decoded.nextUsedIndex)
            availableWrapCounter = layout == .packed ? decoded.availWrapCounter : nil
            usedWrapCounter = layout == .packed ? decoded.usedWrapCounter : nil
        }

        private enum CodingKeys: String, CodingKey {
            case index, size, layout, base, availableIndex = "available_index", usedIndex = "used_index"
            case availableWrapCounter = "available_wrap_counter", usedWrapCounter = "used_wrap_counter", enabled
        }

        /// Index, size and ring positions within what virtio allows (``VirtioBounds``; ring
        /// indexes are 16 bits, virtio 1.4 §2.7.6 and §2.8.1).
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            index = try container.decode(Int.self, forKey: .index, within: VirtioBounds.queueIndex)
            size = try container.decode(Int.self, forKey: .size, within: 0...VirtioBounds.queueSize.upperBound)
            layout = try container.decode(QueueLayout.self, forKey: .layout)
            base = try container.decode(UInt32.self, forKey: .base)
            availableIndex = try container.decode(Int.self, forKey: .availableIndex, within: VirtioBounds.ringIndex)
            usedIndex = try container.decode(Int.self, forKey: .usedIndex, within: VirtioBounds.ringIndex)
            availableWrapCounter = try container.decodeIfPresent(Bool.self, forKey: .availableWrapCounter)
            usedWrapCounter = try container.decodeIfPresent(Bool.self, forKey: .usedWrapCounter)
            enabled = try container.decode(Bool.self, forKey: .enabled)
        }
    }

    /// virtio-net state a driver set (§5.1.4 config, §5.1.6.5 control queue). The MAC is
    /// replayed onto the target before its driver starts; the rest must match.
    public struct ControlState: Hashable, Sendable, Codable {
        public var mac: String?
        public var mtu: Int?
        public var maxVirtqueuePairs: Int?
        public var linkUp: Bool?
        public init(mac: String? = nil, mtu: Int? = nil, maxVirtqueuePairs: Int? = nil, linkUp: Bool? = nil) {
            self.mac = mac
            self.mtu = mtu
            self.maxVirtqueuePairs = maxVirtqueuePairs
            self.linkUp = linkUp
        }
        private enum CodingKeys: String, CodingKey {
            case mac, mtu, maxVirtqueuePairs = "max_virtqueue_pairs", linkUp = "link_up"
        }

        /// The le16 fields of the config space they came from (virtio 1.4 §5.1.4).
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            mac = try container.decodeIfPresent(String.self, forKey: .mac)
            mtu = try container.decodeIfPresent(Int.self, forKey: .mtu, within: VirtioBounds.mtu)
            maxVirtqueuePairs = try container.decodeIfPresent(Int.self, forKey: .maxVirtqueuePairs, within: 0...0xFFFF)
            linkUp = try container.decodeIfPresent(Bool.self, forKey: .linkUp)
        }

        /// Reads what the virtio-net config space says (§5.1.4: mac[6], status u16,
        /// max_virtqueue_pairs u16, mtu u16, little-endian), honouring which fields exist
        /// under the negotiated features.
        public init(netConfig bytes: [UInt8], features: VirtioFeatures) {
            func u16(_ offset: Int) -> Int? {
                guard bytes.count >= offset + 2 else { return nil }
                return Int(bytes[offset]) | Int(bytes[offset + 1]) << 8
            }
            if features.contains(.Net.mac), bytes.count >= 6 {
                mac = MACAddress(bytes: Array(bytes[0..<6]))?.description
            }
            if features.contains(.Net.status), let status = u16(6) { linkUp = status & 1 != 0 }
            if features.contains(.Net.multiqueue) { maxVirtqueuePairs = u16(8) }
            if features.contains(.Net.mtu) { mtu = u16(10) }
        }
    }

    public init(name: String, host: String, takenAt: String, vdpadVersion: String?, source: Source, deviceType: VirtioDeviceType,
                deviceFeatures: VirtioFeatures, negotiatedFeatures: VirtioFeatures, backendFeatures: [String], status: [String],
                config: [UInt8], queueCount: Int, queues: [QueueStateEntry], control: ControlState?) {
        self.name = name
        self.host = host
        self.takenAt = takenAt
        self.vdpadVersion = vdpadVersion
        self.source = source
        self.deviceType = deviceType
        self.deviceFeatures = FeatureList(deviceFeatures, deviceType: deviceType)
        self.negotiatedFeatures = FeatureList(negotiatedFeatures, deviceType: deviceType)
        self.backendFeatures = backendFeatures
        self.status = status
        self.config = config.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
        self.queueCount = queueCount
        self.queues = queues
        self.control = control
    }

    /// The configuration bytes.
    public var configBytes: [UInt8]? {
        guard config.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = config.startIndex
        while index < config.endIndex {
            let next = config.index(index, offsetBy: 2)
            guard let byte = UInt8(config[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }

    /// The negotiated features (checked: hex and names agree).
    public func negotiated() throws(FeatureListError) -> VirtioFeatures { try negotiatedFeatures.resolve(deviceType: deviceType) }

    /// What is wrong with a document read from outside (an import): every problem at once.
    public func validate() -> [String] {
        var problems: [String] = []
        if name.isEmpty { problems.append("name is empty") }
        do { _ = try negotiated() } catch { problems.append("negotiated_features: \(error)") }
        do { _ = try deviceFeatures.resolve(deviceType: deviceType) } catch { problems.append("device_features: \(error)") }
        if configBytes == nil { problems.append("config is not an even-length hex string") }
        if queueCount < 1 || queueCount > VirtioBounds.queueCount.upperBound { problems.append("queue_count \(queueCount) is out of range") }
        var seen: Set<Int> = []
        for queue in queues {
            if queue.index < 0 || queue.index >= queueCount { problems.append("queue \(queue.index) is outside queue_count \(queueCount)") }
            if !seen.insert(queue.index).inserted { problems.append("queue \(queue.index) appears twice") }
            if !VirtioBounds.queueSize.contains(queue.size) { problems.append("queue \(queue.index): size \(queue.size) is out of range") }
            if queue.layout == .split, queue.base > VirtioBounds.ringIndex.upperBound { problems.append("queue \(queue.index): a split ring's base is 16 bits, not \(queue.base)") }
            let decoded = QueueStateEntry(index: queue.index, size: queue.size, layout: queue.layout, base: queue.base, enabled: queue.enabled)
            if decoded != queue { problems.append("queue \(queue.index): the decoded indexes do not match base \(queue.base)") }
        }
        if let layout = queues.first?.layout, (layout == .packed) != ((try? negotiated())?.contains(.ringPacked) ?? false) {
            problems.append("queue layout \(layout) does not match the negotiated features")
        }
        return problems
    }

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case schema, name, host, takenAt = "taken_at", vdpadVersion = "vdpad_version", source, deviceType = "device_type"
        case deviceFeatures = "device_features", negotiatedFeatures = "negotiated_features", backendFeatures = "backend_features"
        case status, config, queueCount = "queue_count", queues, control
    }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.stringValue))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let schema = try container.decode(String.self, forKey: .schema)
        guard schema == Self.schema else {
            throw DecodingError.dataCorruptedError(forKey: .schema, in: container, debugDescription: "schema '\(schema)' is not \(Self.schema)")
        }
        name = try container.decode(String.self, forKey: .name)
        host = try container.decode(String.self, forKey: .host)
        takenAt = try container.decode(String.self, forKey: .takenAt)
        vdpadVersion = try container.decodeIfPresent(String.self, forKey: .vdpadVersion)
        source = try container.decode(Source.self, forKey: .source)
        deviceType = try decodeDeviceType(container, forKey: .deviceType)
        deviceFeatures = try container.decode(FeatureList.self, forKey: .deviceFeatures)
        negotiatedFeatures = try container.decode(FeatureList.self, forKey: .negotiatedFeatures)
        backendFeatures = try container.decode([String].self, forKey: .backendFeatures)
        status = try container.decode([String].self, forKey: .status)
        config = try container.decode(String.self, forKey: .config)
        queueCount = try container.decode(Int.self, forKey: .queueCount, within: VirtioBounds.queueCount)
        queues = try container.decode([QueueStateEntry].self, forKey: .queues)
        control = try container.decodeIfPresent(ControlState.self, forKey: .control)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.schema, forKey: .schema)
        try container.encode(name, forKey: .name)
        try container.encode(host, forKey: .host)
        try container.encode(takenAt, forKey: .takenAt)
        try container.encodeIfPresent(vdpadVersion, forKey: .vdpadVersion)
        try container.encode(source, forKey: .source)
        try encodeDeviceType(deviceType, &container, forKey: .deviceType)
        try container.encode(deviceFeatures, forKey: .deviceFeatures)
        try container.encode(negotiatedFeatures, forKey: .negotiatedFeatures)
        try container.encode(backendFeatures, forKey: .backendFeatures)
        try container.encode(status, forKey: .status)
        try container.encode(config, forKey: .config)
        try container.encode(queueCount, forKey: .queueCount)
        try container.encode(queues, forKey: .queues)
        try container.encodeIfPresent(control, forKey: .control)
    }
}

/// What a restore target is: the facts of a vhost-vdpa device that decide whether it can
/// take a ``VirtqueueStateDocument``.
public struct RestoreTarget: Hashable, Sendable {
    public var device: String
    public var deviceType: VirtioDeviceType
    public var offeredFeatures: VirtioFeatures
    public var backend: BackendAbilities
    public var queueCount: Int
    public var maximumQueueSize: Int
    public var control: VirtqueueStateDocument.ControlState?

    public init(device: String, deviceType: VirtioDeviceType, offeredFeatures: VirtioFeatures, backend: BackendAbilities,
                queueCount: Int, maximumQueueSize: Int, control: VirtqueueStateDocument.ControlState?) {
        self.device = device
        self.deviceType = deviceType
        self.offeredFeatures = offeredFeatures
        self.backend = backend
        self.queueCount = queueCount
        self.maximumQueueSize = maximumQueueSize
        self.control = control
    }
}

extension VirtqueueStateDocument {
    /// Every reason `target` cannot take this state (empty: it can). The features check is
    /// the compatibility check's: the target must offer every negotiated feature.
    public func restoreRefusals(onto target: RestoreTarget) -> [CompatibilityReason] {
        var reasons: [CompatibilityReason] = []
        if target.deviceType != deviceType {
            reasons.append(CompatibilityReason(code: .deviceTypeUnsupported, message: "\(target.device) is a \(target.deviceType) device; the state is of a \(deviceType) device"))
        }
        if let negotiated = try? negotiated() {
            let missing = negotiated.subtracting(target.offeredFeatures)
            if !missing.isEmpty {
                let names = missing.names(for: deviceType)
                reasons.append(CompatibilityReason(code: .featuresMissing, message: "\(target.device) does not offer \(names.joined(separator: ", ")), which the driver negotiated", features: names))
            }
        }
        if target.queueCount != queueCount {
            reasons.append(CompatibilityReason(code: .queueCountMismatch, message: "\(target.device) has \(target.queueCount) virtqueues; the state is of a device with \(queueCount)", requested: queueCount, limit: target.queueCount))
        }
        if let largest = queues.map(\.size).max(), largest > target.maximumQueueSize {
            reasons.append(CompatibilityReason(code: .queueSizeOverLimit, message: "queue size \(largest) is over \(target.device)'s limit of \(target.maximumQueueSize)", requested: largest, limit: target.maximumQueueSize))
        }
        if target.backend.suspend != true {
            reasons.append(CompatibilityReason(code: .backendMissing, message: "\(target.device)'s backend cannot suspend (VHOST_BACKEND_F_SUSPEND): its state could not be saved again"))
        }
        if let saved = control, let current = target.control {
            if let mtu = saved.mtu, let targetMTU = current.mtu, mtu != targetMTU {
                reasons.append(CompatibilityReason(code: .configMismatch, message: "\(target.device) presents mtu \(targetMTU); the driver saw \(mtu)", attribute: "mtu", requested: mtu, limit: targetMTU))
            }
            if let pairs = saved.maxVirtqueuePairs, let targetPairs = current.maxVirtqueuePairs, pairs != targetPairs {
                reasons.append(CompatibilityReason(code: .configMismatch, message: "\(target.device) presents max_virtqueue_pairs \(targetPairs); the driver saw \(pairs)", attribute: "max_vqp", requested: pairs, limit: targetPairs))
            }
        }
        return reasons
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

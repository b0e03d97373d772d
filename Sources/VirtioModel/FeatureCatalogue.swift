/// The names of virtio feature bits, as the virtio specification (1.4) spells them
/// without their `VIRTIO_F_` / `VIRTIO_NET_F_` / `VIRTIO_BLK_F_` prefixes.
///
/// For every bit iproute2's `vdpa` tool names, the name here is the same, so
/// vdpactl and `vdpa` print identical feature lists.
public enum FeatureCatalogue {
    /// One named bit.
    public struct Entry: Hashable, Sendable {
        public var bit: Int
        public var name: String
        /// nil for device-independent bits.
        public var deviceType: VirtioDeviceType?
        /// Legacy-only (pre-1.0) bits, never offered to modern drivers by vdpad.
        public var isLegacy: Bool
        /// What the bit means, in a few words.
        public var summary: String
    }

    /// Device-independent bits (virtio 1.4 §6 "Reserved Feature Bits").
    public static let deviceIndependent: [Entry] = [
        .init(bit: 24, name: "NOTIFY_ON_EMPTY", deviceType: nil, isLegacy: true, summary: "notify when the avail ring runs empty"),
        .init(bit: 27, name: "ANY_LAYOUT", deviceType: nil, isLegacy: true, summary: "any descriptor layout"),
        .init(bit: 28, name: "RING_INDIRECT_DESC", deviceType: nil, isLegacy: false, summary: "indirect descriptor tables"),
        .init(bit: 29, name: "RING_EVENT_IDX", deviceType: nil, isLegacy: false, summary: "used_event / avail_event notification suppression"),
        .init(bit: 32, name: "VERSION_1", deviceType: nil, isLegacy: false, summary: "virtio 1.0 or later"),
        .init(bit: 33, name: "ACCESS_PLATFORM", deviceType: nil, isLegacy: false, summary: "device accesses memory through the platform IOMMU"),
        .init(bit: 34, name: "RING_PACKED", deviceType: nil, isLegacy: false, summary: "packed virtqueue layout"),
        .init(bit: 35, name: "IN_ORDER", deviceType: nil, isLegacy: false, summary: "buffers are used in the order they were made available"),
        .init(bit: 36, name: "ORDER_PLATFORM", deviceType: nil, isLegacy: false, summary: "memory accesses ordered as the platform requires"),
        .init(bit: 37, name: "SR_IOV", deviceType: nil, isLegacy: false, summary: "single root I/O virtualization"),
        .init(bit: 38, name: "NOTIFICATION_DATA", deviceType: nil, isLegacy: false, summary: "extra data in driver notifications"),
        .init(bit: 39, name: "NOTIF_CONFIG_DATA", deviceType: nil, isLegacy: false, summary: "notification data from config"),
        .init(bit: 40, name: "RING_RESET", deviceType: nil, isLegacy: false, summary: "individual virtqueue reset"),
        .init(bit: 41, name: "ADMIN_VQ", deviceType: nil, isLegacy: false, summary: "administration virtqueue"),
        .init(bit: 43, name: "SUSPEND", deviceType: nil, isLegacy: false, summary: "device suspend"),
    ]

    /// virtio-net bits (virtio 1.4 §5.1.3 "Feature bits").
    public static let network: [Entry] = [
        (0, "CSUM", false, "device handles packets with partial checksum"),
        (1, "GUEST_CSUM", false, "driver handles packets with partial checksum"),
        (2, "CTRL_GUEST_OFFLOADS", false, "control channel offloads reconfiguration"),
        (3, "MTU", false, "device reports maximum MTU"),
        (5, "MAC", false, "device has a given MAC address"),
        (6, "GSO", true, "legacy: any GSO type"),
        (7, "GUEST_TSO4", false, "driver receives TSOv4"),
        (8, "GUEST_TSO6", false, "driver receives TSOv6"),
        (9, "GUEST_ECN", false, "driver receives TSO with ECN"),
        (10, "GUEST_UFO", false, "driver receives UFO"),
        (11, "HOST_TSO4", false, "device receives TSOv4"),
        (12, "HOST_TSO6", false, "device receives TSOv6"),
        (13, "HOST_ECN", false, "device receives TSO with ECN"),
        (14, "HOST_UFO", false, "device receives UFO"),
        (15, "MRG_RXBUF", false, "driver merges receive buffers"),
        (16, "STATUS", false, "configuration status field available"),
        (17, "CTRL_VQ", false, "control virtqueue"),
        (18, "CTRL_RX", false, "control channel RX mode"),
        (19, "CTRL_VLAN", false, "control channel VLAN filtering"),
        (20, "CTRL_RX_EXTRA", false, "control channel extra RX modes"),
        (21, "GUEST_ANNOUNCE", false, "driver sends gratuitous packets"),
        (22, "MQ", false, "multiqueue with automatic receive steering"),
        (23, "CTRL_MAC_ADDR", false, "set MAC address through the control channel"),
        (42, "GUEST_RSC6", true, "legacy: RSC for IPv6"),
        (50, "DEVICE_STATS", false, "device statistics through the control channel"),
        (51, "HASH_TUNNEL", false, "tunnel hash"),
        (52, "VQ_NOTF_COAL", false, "per-virtqueue notification coalescing"),
        (53, "NOTF_COAL", false, "notification coalescing"),
        (54, "GUEST_USO4", false, "driver receives USOv4"),
        (55, "GUEST_USO6", false, "driver receives USOv6"),
        (56, "HOST_USO", false, "device receives USO"),
        (57, "HASH_REPORT", false, "device reports hash values"),
        (59, "GUEST_HDRLEN", false, "driver provides exact hdr_len"),
        (60, "RSS", false, "receive side scaling"),
        (61, "RSC_EXT", false, "extended RSC coalescing info"),
        (62, "STANDBY", false, "failover standby"),
        (63, "SPEED_DUPLEX", false, "device reports speed and duplex"),
    ].map { Entry(bit: $0.0, name: $0.1, deviceType: .network, isLegacy: $0.2, summary: $0.3) }

    /// virtio-blk bits (virtio 1.4 §5.2.3 "Feature bits").
    public static let block: [Entry] = [
        (0, "BARRIER", true, "legacy: request barriers"),
        (1, "SIZE_MAX", false, "maximum segment size in size_max"),
        (2, "SEG_MAX", false, "maximum segment count in seg_max"),
        (4, "GEOMETRY", false, "disk-style geometry"),
        (5, "RO", false, "read-only device"),
        (6, "BLK_SIZE", false, "block size in blk_size"),
        (7, "SCSI", true, "legacy: SCSI packet commands"),
        (9, "FLUSH", false, "cache flush command"),
        (10, "TOPOLOGY", false, "topology information"),
        (11, "CONFIG_WCE", false, "writeback mode in config"),
        (12, "MQ", false, "multiple virtqueues"),
        (13, "DISCARD", false, "discard command"),
        (14, "WRITE_ZEROES", false, "write zeroes command"),
        (15, "LIFETIME", false, "device lifetime information"),
        (16, "SECURE_ERASE", false, "secure erase command"),
        (17, "ZONED", false, "zoned block device"),
    ].map { Entry(bit: $0.0, name: $0.1, deviceType: .block, isLegacy: $0.2, summary: $0.3) }

    /// All entries that apply to a device type: its own bits and the device-independent ones.
    public static func entries(for deviceType: VirtioDeviceType?) -> [Entry] {
        let specific: [Entry] = switch deviceType {
        case .network?: network
        case .block?: block
        default: []
        }
        return (specific + deviceIndependent).sorted { $0.bit < $1.bit }
    }

    /// Whether `bit` is device-independent (its meaning is the same for every device type).
    public static func isDeviceIndependent(bit: Int) -> Bool { (24...40).contains(bit) || bit == 43 }

    /// The name of `bit` for a device type, or nil when the catalogue has none.
    public static func name(ofBit bit: Int, deviceType: VirtioDeviceType?) -> String? {
        if isDeviceIndependent(bit: bit) || bit == 41 {
            return deviceIndependentByBit[bit]?.name
        }
        switch deviceType {
        case .network?: return networkByBit[bit]?.name
        case .block?: return blockByBit[bit]?.name
        default: return nil
        }
    }

    /// The bit a name stands for, for a device type (also accepting the
    /// `VIRTIO_F_` / `VIRTIO_NET_F_` / `VIRTIO_BLK_F_` prefixed spellings).
    public static func bit(named name: String, deviceType: VirtioDeviceType?) -> Int? {
        var bare = Substring(name.uppercased())
        for prefix in ["VIRTIO_NET_F_", "VIRTIO_BLK_F_", "VIRTIO_RING_F_", "VIRTIO_F_"] where bare.hasPrefix(prefix) {
            bare = bare.dropFirst(prefix.count)
            break
        }
        // VIRTIO_RING_F_INDIRECT_DESC is spelled RING_INDIRECT_DESC in the catalogue.
        let candidates = [String(bare), "RING_" + bare]
        return entries(for: deviceType).first { candidates.contains($0.name) }?.bit
    }

    private static let deviceIndependentByBit = Dictionary(uniqueKeysWithValues: deviceIndependent.map { ($0.bit, $0) })
    private static let networkByBit = Dictionary(uniqueKeysWithValues: network.map { ($0.bit, $0) })
    private static let blockByBit = Dictionary(uniqueKeysWithValues: block.map { ($0.bit, $0) })
}

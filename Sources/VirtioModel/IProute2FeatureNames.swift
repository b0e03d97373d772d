/// Feature names exactly as iproute2's `vdpa` tool prints them (`print_features` in
/// vdpa/vdpa.c), for output that must read and compare the same as `vdpa -j`.
///
/// iproute2 names fewer bits than ``FeatureCatalogue``: virtio-net bits 0–23 (without the
/// legacy GSO bit 6) and 57, 60–63 from `net_feature_strs`, the transport bits 28–38 from
/// `ext_feature_strs`, and nothing device-specific for any class but net. Every other set
/// bit prints as "bit_N". The catalogue's own names (the API's) stay as they are.
public enum IProute2FeatureNames {
    /// `net_feature_strs`: the virtio-net names (including the two legacy device-independent
    /// bits 24 and 27, which iproute2 lists only there).
    static let network: [Int: String] = [
        0: "CSUM", 1: "GUEST_CSUM", 2: "CTRL_GUEST_OFFLOADS", 3: "MTU", 5: "MAC",
        7: "GUEST_TSO4", 8: "GUEST_TSO6", 9: "GUEST_ECN", 10: "GUEST_UFO",
        11: "HOST_TSO4", 12: "HOST_TSO6", 13: "HOST_ECN", 14: "HOST_UFO", 15: "MRG_RXBUF",
        16: "STATUS", 17: "CTRL_VQ", 18: "CTRL_RX", 19: "CTRL_VLAN", 20: "CTRL_RX_EXTRA",
        21: "GUEST_ANNOUNCE", 22: "MQ", 23: "CTRL_MAC_ADDR", 24: "NOTIFY_ON_EMPTY", 27: "ANY_LAYOUT",
        57: "HASH_REPORT", 60: "RSS", 61: "RSC_EXT", 62: "STANDBY", 63: "SPEED_DUPLEX",
    ]

    /// `ext_feature_strs`: the transport bits (VIRTIO_TRANSPORT_F_START … END), for every class.
    static let transport: [Int: String] = [
        28: "RING_INDIRECT_DESC", 29: "RING_EVENT_IDX", 32: "VERSION_1", 33: "ACCESS_PLATFORM",
        34: "RING_PACKED", 35: "IN_ORDER", 36: "ORDER_PLATFORM", 37: "SR_IOV", 38: "NOTIFICATION_DATA",
    ]

    /// The transport range iproute2 looks up in `ext_feature_strs` (VIRTIO_TRANSPORT_F_START…END).
    static let transportBits = 28...41

    /// The name iproute2 prints for `bit` of a device of `deviceType` ("bit_N" when it has none).
    public static func name(ofBit bit: Int, deviceType: VirtioDeviceType?) -> String {
        let known: String? = if transportBits.contains(bit) {
            transport[bit]
        } else if deviceType == .network {
            network[bit]
        } else {
            nil
        }
        return known ?? "bit_\(bit)"
    }
}

extension VirtioFeatures {
    /// The names iproute2's `vdpa` prints for the set bits, lowest bit first
    /// (see ``IProute2FeatureNames``); ``names(for:)`` gives the catalogue's names instead.
    public func iproute2Names(for deviceType: VirtioDeviceType?) -> [String] {
        bits.map { IProute2FeatureNames.name(ofBit: $0, deviceType: deviceType) }
    }
}

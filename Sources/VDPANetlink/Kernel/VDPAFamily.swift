/// The kernel's `vdpa` generic netlink family (include/uapi/linux/vdpa.h, Linux 6.12).
///
/// The numbers are defined here, not imported, because build hosts carry older
/// headers (Debian bookworm's 6.1 has no DEV_ATTR_SET and a stale attribute 21);
/// `VDPAFamilyNumbersTests` checks them against the 6.12 uapi header.
public enum VDPAFamily {
    public static let name = "vdpa"
    public static let version: UInt8 = 1
}

/// `enum vdpa_command`.
public enum VDPACommand: UInt8, Sendable, CaseIterable {
    case unspecified = 0
    case managementDeviceNew = 1    // VDPA_CMD_MGMTDEV_NEW (reply command)
    case managementDeviceGet = 2    // VDPA_CMD_MGMTDEV_GET, can dump
    case deviceNew = 3              // VDPA_CMD_DEV_NEW
    case deviceDelete = 4           // VDPA_CMD_DEV_DEL
    case deviceGet = 5              // VDPA_CMD_DEV_GET, can dump
    case deviceConfigGet = 6        // VDPA_CMD_DEV_CONFIG_GET, can dump
    case deviceVendorStatsGet = 7   // VDPA_CMD_DEV_VSTATS_GET
    case deviceAttributeSet = 8     // VDPA_CMD_DEV_ATTR_SET (6.12)

    /// The uapi name, for errors and logs.
    public var uapiName: String {
        switch self {
        case .unspecified: "VDPA_CMD_UNSPEC"
        case .managementDeviceNew: "VDPA_CMD_MGMTDEV_NEW"
        case .managementDeviceGet: "VDPA_CMD_MGMTDEV_GET"
        case .deviceNew: "VDPA_CMD_DEV_NEW"
        case .deviceDelete: "VDPA_CMD_DEV_DEL"
        case .deviceGet: "VDPA_CMD_DEV_GET"
        case .deviceConfigGet: "VDPA_CMD_DEV_CONFIG_GET"
        case .deviceVendorStatsGet: "VDPA_CMD_DEV_VSTATS_GET"
        case .deviceAttributeSet: "VDPA_CMD_DEV_ATTR_SET"
        }
    }
}

/// `enum vdpa_attr`, with the payload type the kernel uses for each.
public enum VDPAAttribute: UInt16, Sendable, CaseIterable {
    case unspecified = 0                  // also VDPA_ATTR_PAD
    case managementBusName = 1            // string
    case managementDeviceName = 2         // string
    case managementSupportedClasses = 3   // u64 bitmap of virtio device IDs
    case deviceName = 4                   // string
    case deviceID = 5                     // u32 virtio device ID
    case vendorID = 6                     // u32
    case maxVirtqueues = 7                // u32
    case maxVirtqueueSize = 8             // u16
    case minVirtqueueSize = 9             // u16
    case netMACAddress = 10               // 6 bytes
    case netStatus = 11                   // u8 in the header comment, u16 on the wire
    case netMaxVirtqueuePairs = 12        // u16
    case netMTU = 13                      // u16
    case negotiatedFeatures = 14          // u64
    case managementMaxVirtqueues = 15     // u32
    case supportedFeatures = 16           // u64
    case queueIndex = 17                  // u32
    case vendorAttributeName = 18         // string, repeated
    case vendorAttributeValue = 19        // u64, repeated
    case deviceFeatures = 20              // u64
    case blockCapacity = 21               // u64
    case blockSizeMax = 22                // u32
    case blockBlockSize = 23              // u32
    case blockSegmentMax = 24             // u32
    case blockNumQueues = 25              // u16
    case blockPhysicalBlockExponent = 26  // u8
    case blockAlignmentOffset = 27        // u8
    case blockMinIOSize = 28              // u16
    case blockOptimalIOSize = 29          // u32
    case blockMaxDiscardSectors = 30      // u32
    case blockMaxDiscardSegments = 31     // u32
    case blockDiscardSectorAlignment = 32 // u32
    case blockMaxWriteZeroesSectors = 33  // u32
    case blockMaxWriteZeroesSegments = 34 // u32
    case blockReadOnly = 35               // u8
    case blockFlush = 36                  // u8

    /// The uapi name, e.g. "VDPA_ATTR_DEV_NET_CFG_MTU".
    public var uapiName: String {
        switch self {
        case .unspecified: "VDPA_ATTR_UNSPEC"
        case .managementBusName: "VDPA_ATTR_MGMTDEV_BUS_NAME"
        case .managementDeviceName: "VDPA_ATTR_MGMTDEV_DEV_NAME"
        case .managementSupportedClasses: "VDPA_ATTR_MGMTDEV_SUPPORTED_CLASSES"
        case .deviceName: "VDPA_ATTR_DEV_NAME"
        case .deviceID: "VDPA_ATTR_DEV_ID"
        case .vendorID: "VDPA_ATTR_DEV_VENDOR_ID"
        case .maxVirtqueues: "VDPA_ATTR_DEV_MAX_VQS"
        case .maxVirtqueueSize: "VDPA_ATTR_DEV_MAX_VQ_SIZE"
        case .minVirtqueueSize: "VDPA_ATTR_DEV_MIN_VQ_SIZE"
        case .netMACAddress: "VDPA_ATTR_DEV_NET_CFG_MACADDR"
        case .netStatus: "VDPA_ATTR_DEV_NET_STATUS"
        case .netMaxVirtqueuePairs: "VDPA_ATTR_DEV_NET_CFG_MAX_VQP"
        case .netMTU: "VDPA_ATTR_DEV_NET_CFG_MTU"
        case .negotiatedFeatures: "VDPA_ATTR_DEV_NEGOTIATED_FEATURES"
        case .managementMaxVirtqueues: "VDPA_ATTR_DEV_MGMTDEV_MAX_VQS"
        case .supportedFeatures: "VDPA_ATTR_DEV_SUPPORTED_FEATURES"
        case .queueIndex: "VDPA_ATTR_DEV_QUEUE_INDEX"
        case .vendorAttributeName: "VDPA_ATTR_DEV_VENDOR_ATTR_NAME"
        case .vendorAttributeValue: "VDPA_ATTR_DEV_VENDOR_ATTR_VALUE"
        case .deviceFeatures: "VDPA_ATTR_DEV_FEATURES"
        case .blockCapacity: "VDPA_ATTR_DEV_BLK_CFG_CAPACITY"
        case .blockSizeMax: "VDPA_ATTR_DEV_BLK_CFG_SIZE_MAX"
        case .blockBlockSize: "VDPA_ATTR_DEV_BLK_CFG_BLK_SIZE"
        case .blockSegmentMax: "VDPA_ATTR_DEV_BLK_CFG_SEG_MAX"
        case .blockNumQueues: "VDPA_ATTR_DEV_BLK_CFG_NUM_QUEUES"
        case .blockPhysicalBlockExponent: "VDPA_ATTR_DEV_BLK_CFG_PHY_BLK_EXP"
        case .blockAlignmentOffset: "VDPA_ATTR_DEV_BLK_CFG_ALIGN_OFFSET"
        case .blockMinIOSize: "VDPA_ATTR_DEV_BLK_CFG_MIN_IO_SIZE"
        case .blockOptimalIOSize: "VDPA_ATTR_DEV_BLK_CFG_OPT_IO_SIZE"
        case .blockMaxDiscardSectors: "VDPA_ATTR_DEV_BLK_CFG_MAX_DISCARD_SEC"
        case .blockMaxDiscardSegments: "VDPA_ATTR_DEV_BLK_CFG_MAX_DISCARD_SEG"
        case .blockDiscardSectorAlignment: "VDPA_ATTR_DEV_BLK_CFG_DISCARD_SEC_ALIGN"
        case .blockMaxWriteZeroesSectors: "VDPA_ATTR_DEV_BLK_CFG_MAX_WRITE_ZEROES_SEC"
        case .blockMaxWriteZeroesSegments: "VDPA_ATTR_DEV_BLK_CFG_MAX_WRITE_ZEROES_SEG"
        case .blockReadOnly: "VDPA_ATTR_DEV_BLK_READ_ONLY"
        case .blockFlush: "VDPA_ATTR_DEV_BLK_FLUSH"
        }
    }
}

extension NetlinkAttributeSet {
    func u8(_ attribute: VDPAAttribute) throws(NetlinkAttributeError) -> UInt8? { try u8(attribute.rawValue, attribute.uapiName) }
    func u16(_ attribute: VDPAAttribute) throws(NetlinkAttributeError) -> UInt16? { try u16(attribute.rawValue, attribute.uapiName) }
    func u32(_ attribute: VDPAAttribute) throws(NetlinkAttributeError) -> UInt32? { try u32(attribute.rawValue, attribute.uapiName) }
    func u64(_ attribute: VDPAAttribute) throws(NetlinkAttributeError) -> UInt64? { try u64(attribute.rawValue, attribute.uapiName) }
    func string(_ attribute: VDPAAttribute) throws(NetlinkAttributeError) -> String? { try string(attribute.rawValue, attribute.uapiName) }
    func required<T>(_ value: T?, _ attribute: VDPAAttribute) throws(NetlinkAttributeError) -> T { try required(value, attribute.uapiName) }
}

import VirtioModel

/// A management device handle: "[BUS/]NAME", e.g. "pci/0000:41:00.2" or "vdpasim_net".
public struct ManagementDeviceHandle: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    /// VDPA_ATTR_MGMTDEV_BUS_NAME ("pci", "auxiliary"); nil for simulators and VDUSE.
    public var bus: String?
    /// VDPA_ATTR_MGMTDEV_DEV_NAME.
    public var name: String

    public init(bus: String?, name: String) {
        self.bus = bus
        self.name = name
    }

    /// Parses "BUS/NAME" or "NAME", as iproute2 does (more than one "/" is refused).
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        switch parts.count {
        case 1 where !text.isEmpty: self.init(bus: nil, name: text)
        case 2 where !parts[0].isEmpty && !parts[1].isEmpty: self.init(bus: String(parts[0]), name: String(parts[1]))
        default: return nil
        }
    }

    public var description: String { bus.map { "\($0)/\(name)" } ?? name }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.description < rhs.description }
}

/// A parent that can create vDPA devices (`VDPA_CMD_MGMTDEV_GET` reply).
/// The device behind a management device, as sysfs describes it: its driver and, for PCI
/// functions (and devices on a PCI function, such as auxiliary sub-functions), the PCI IDs.
/// nil: not known (a simulator has no driver and no PCI IDs).
public struct ManagementDeviceParent: Hashable, Sendable, Codable {
    /// The name of the device's `driver` link ("mlx5_core", "pds_core").
    public var driver: String?
    public var pciVendor: UInt16?
    public var pciDevice: UInt16?
    public var pciSubsystemVendor: UInt16?
    public var pciSubsystemDevice: UInt16?

    public init(driver: String? = nil, pciVendor: UInt16? = nil, pciDevice: UInt16? = nil, pciSubsystemVendor: UInt16? = nil, pciSubsystemDevice: UInt16? = nil) {
        self.driver = driver
        self.pciVendor = pciVendor
        self.pciDevice = pciDevice
        self.pciSubsystemVendor = pciSubsystemVendor
        self.pciSubsystemDevice = pciSubsystemDevice
    }
}

public struct ManagementDevice: Hashable, Sendable, Codable {
    public var handle: ManagementDeviceHandle
    /// Device types it can create (VDPA_ATTR_MGMTDEV_SUPPORTED_CLASSES).
    public var supportedClasses: [VirtioDeviceType]
    /// VDPA_ATTR_DEV_MGMTDEV_MAX_VQS.
    public var maxSupportedVirtqueues: UInt32?
    /// VDPA_ATTR_DEV_SUPPORTED_FEATURES: what `device_features` may select from.
    public var supportedFeatures: VirtioFeatures?

    public init(handle: ManagementDeviceHandle, supportedClasses: [VirtioDeviceType], maxSupportedVirtqueues: UInt32?, supportedFeatures: VirtioFeatures?) {
        self.handle = handle
        self.supportedClasses = supportedClasses
        self.maxSupportedVirtqueues = maxSupportedVirtqueues
        self.supportedFeatures = supportedFeatures
    }
}

/// A vDPA device as the kernel reports it (`VDPA_CMD_DEV_GET` reply).
public struct VDPADeviceInfo: Hashable, Sendable, Codable {
    public var name: String
    public var managementDevice: ManagementDeviceHandle
    /// VDPA_ATTR_DEV_ID.
    public var deviceType: VirtioDeviceType
    public var vendorID: UInt32
    public var maxVirtqueues: UInt32
    public var maxVirtqueueSize: UInt16
    public var minVirtqueueSize: UInt16?

    public init(name: String, managementDevice: ManagementDeviceHandle, deviceType: VirtioDeviceType, vendorID: UInt32, maxVirtqueues: UInt32, maxVirtqueueSize: UInt16, minVirtqueueSize: UInt16?) {
        self.name = name
        self.managementDevice = managementDevice
        self.deviceType = deviceType
        self.vendorID = vendorID
        self.maxVirtqueues = maxVirtqueues
        self.maxVirtqueueSize = maxVirtqueueSize
        self.minVirtqueueSize = minVirtqueueSize
    }
}

/// virtio-net configuration as `VDPA_CMD_DEV_CONFIG_GET` reports it; each field is
/// present only when the device offers the feature that gates it.
public struct NetDeviceConfig: Hashable, Sendable, Codable {
    public var macAddress: MACAddress?
    /// VIRTIO_NET_S_* bits (LINK_UP = 1, ANNOUNCE = 2), with VIRTIO_NET_F_STATUS.
    public var status: UInt16?
    /// With VIRTIO_NET_F_MQ or VIRTIO_NET_F_RSS.
    public var maxVirtqueuePairs: UInt16?
    /// With VIRTIO_NET_F_MTU.
    public var mtu: UInt16?

    public init(macAddress: MACAddress? = nil, status: UInt16? = nil, maxVirtqueuePairs: UInt16? = nil, mtu: UInt16? = nil) {
        self.macAddress = macAddress
        self.status = status
        self.maxVirtqueuePairs = maxVirtqueuePairs
        self.mtu = mtu
    }
}

/// virtio-blk configuration as `VDPA_CMD_DEV_CONFIG_GET` reports it.
public struct BlockDeviceConfig: Hashable, Sendable, Codable {
    public var capacity: UInt64?
    public var sizeMax: UInt32?
    public var blockSize: UInt32?
    public var segmentMax: UInt32?
    public var numQueues: UInt16?
    public var physicalBlockExponent: UInt8?
    public var alignmentOffset: UInt8?
    public var minIOSize: UInt16?
    public var optimalIOSize: UInt32?
    public var maxDiscardSectors: UInt32?
    public var maxDiscardSegments: UInt32?
    public var discardSectorAlignment: UInt32?
    public var maxWriteZeroesSectors: UInt32?
    public var maxWriteZeroesSegments: UInt32?
    public var readOnly: Bool?
    public var flush: Bool?

    public init() {}
}

/// A device's configuration (`VDPA_CMD_DEV_CONFIG_GET` reply).
public struct DeviceConfig: Hashable, Sendable, Codable {
    public var name: String
    public var deviceType: VirtioDeviceType
    /// VDPA_ATTR_DEV_FEATURES: the features the device offers.
    public var deviceFeatures: VirtioFeatures?
    /// VDPA_ATTR_DEV_NEGOTIATED_FEATURES: present once a driver reached FEATURES_OK.
    public var negotiatedFeatures: VirtioFeatures?
    public var net: NetDeviceConfig?
    public var block: BlockDeviceConfig?

    public init(name: String, deviceType: VirtioDeviceType, deviceFeatures: VirtioFeatures? = nil, negotiatedFeatures: VirtioFeatures? = nil, net: NetDeviceConfig? = nil, block: BlockDeviceConfig? = nil) {
        self.name = name
        self.deviceType = deviceType
        self.deviceFeatures = deviceFeatures
        self.negotiatedFeatures = negotiatedFeatures
        self.net = net
        self.block = block
    }
}

/// One vendor statistic (VDPA_ATTR_DEV_VENDOR_ATTR_NAME / _VALUE pair).
public struct VendorStatistic: Hashable, Sendable, Codable {
    public var name: String
    public var value: UInt64
    public init(name: String, value: UInt64) {
        self.name = name
        self.value = value
    }
}

/// A queue's vendor statistics (`VDPA_CMD_DEV_VSTATS_GET` reply).
public struct VendorStatistics: Hashable, Sendable, Codable {
    public var name: String
    public var deviceType: VirtioDeviceType
    public var queueIndex: UInt32
    public var negotiatedFeatures: VirtioFeatures?
    public var maxVirtqueuePairs: UInt16?
    /// In the order the vendor driver reported them.
    public var statistics: [VendorStatistic]

    public init(name: String, deviceType: VirtioDeviceType, queueIndex: UInt32, negotiatedFeatures: VirtioFeatures?, maxVirtqueuePairs: UInt16?, statistics: [VendorStatistic]) {
        self.name = name
        self.deviceType = deviceType
        self.queueIndex = queueIndex
        self.negotiatedFeatures = negotiatedFeatures
        self.maxVirtqueuePairs = maxVirtqueuePairs
        self.statistics = statistics
    }
}

/// What `VDPA_CMD_DEV_NEW` is asked to create.
public struct DeviceCreateRequest: Hashable, Sendable, Codable {
    public var name: String
    public var managementDevice: ManagementDeviceHandle
    public var macAddress: MACAddress?
    public var mtu: UInt16?
    public var maxVirtqueuePairs: UInt16?
    /// VDPA_ATTR_DEV_FEATURES: the exact feature set to provision.
    public var deviceFeatures: VirtioFeatures?

    public init(name: String, managementDevice: ManagementDeviceHandle, macAddress: MACAddress? = nil, mtu: UInt16? = nil, maxVirtqueuePairs: UInt16? = nil, deviceFeatures: VirtioFeatures? = nil) {
        self.name = name
        self.managementDevice = managementDevice
        self.macAddress = macAddress
        self.mtu = mtu
        self.maxVirtqueuePairs = maxVirtqueuePairs
        self.deviceFeatures = deviceFeatures
    }
}

/// A driver on the vdpa bus.
public struct BusDriver: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Gives userspace `/dev/vhost-vdpa-N` (for VMMs such as QEMU).
    public static let vhostVDPA = BusDriver(rawValue: "vhost_vdpa")
    /// Gives the host kernel's own virtio driver (a netdev or block device).
    public static let virtioVDPA = BusDriver(rawValue: "virtio_vdpa")

    public var description: String { rawValue }
}

/// How a device is attached on the host, from sysfs.
public struct DeviceBinding: Hashable, Sendable, Codable {
    /// The bound vdpa bus driver, nil when unbound.
    public var driver: BusDriver?
    /// "/dev/vhost-vdpa-N" when bound to vhost_vdpa.
    public var vhostDevicePath: String?
    /// "virtioN" when bound to virtio_vdpa.
    public var virtioDevice: String?
    /// Host network interfaces of a virtio-net device bound to virtio_vdpa.
    public var netdevs: [String]
    /// Host block devices of a virtio-blk device bound to virtio_vdpa.
    public var blockDevices: [String]

    public init(driver: BusDriver? = nil, vhostDevicePath: String? = nil, virtioDevice: String? = nil, netdevs: [String] = [], blockDevices: [String] = []) {
        self.driver = driver
        self.vhostDevicePath = vhostDevicePath
        self.virtioDevice = virtioDevice
        self.netdevs = netdevs
        self.blockDevices = blockDevices
    }
}

import VirtioModel

/// A feature set as the API shows it: hex (64 bits survive JSON) and names.
public struct FeatureSetInfo: Codable, Hashable, Sendable {
    public var hex: String
    public var names: [String]

    public init(_ features: VirtioFeatures, deviceType: VirtioDeviceType?) {
        hex = features.hexString
        names = features.names(for: deviceType)
    }

    public var features: VirtioFeatures? { VirtioFeatures(hex: hex) }
}

// MARK: rpc_methods, daemon_status

public struct RPCMethodsResult: Codable, Hashable, Sendable {
    public var methods: [String]
    public init(methods: [String]) { self.methods = methods }
}

public struct DaemonStatusResult: Codable, Hashable, Sendable {
    public struct KernelSupport: Codable, Hashable, Sendable {
        public var available: Bool
        public var reason: String?
        public init(available: Bool, reason: String?) {
            self.available = available
            self.reason = reason
        }
    }

    public struct DeviceCounts: Codable, Hashable, Sendable {
        public var managed: Int
        public var unmanaged: Int
        public var vanished: Int
        public init(managed: Int, unmanaged: Int, vanished: Int) {
            self.managed = managed
            self.unmanaged = unmanaged
            self.vanished = vanished
        }
    }

    public var version: String
    public var pid: Int32
    public var startedAt: String
    public var uptimeSeconds: Double
    public var kernelRelease: String
    public var vdpa: KernelSupport
    public var socket: String
    public var stateDirectory: String
    public var restoreOnStart: Bool
    public var devices: DeviceCounts
    public var subscribers: Int
    public var lastReconcile: String?

    public init(version: String, pid: Int32, startedAt: String, uptimeSeconds: Double, kernelRelease: String, vdpa: KernelSupport, socket: String, stateDirectory: String, restoreOnStart: Bool, devices: DeviceCounts, subscribers: Int, lastReconcile: String?) {
        self.version = version
        self.pid = pid
        self.startedAt = startedAt
        self.uptimeSeconds = uptimeSeconds
        self.kernelRelease = kernelRelease
        self.vdpa = vdpa
        self.socket = socket
        self.stateDirectory = stateDirectory
        self.restoreOnStart = restoreOnStart
        self.devices = devices
        self.subscribers = subscribers
        self.lastReconcile = lastReconcile
    }

    private enum CodingKeys: String, CodingKey {
        case version, pid, startedAt = "started_at", uptimeSeconds = "uptime_seconds", kernelRelease = "kernel_release"
        case vdpa, socket, stateDirectory = "state_dir", restoreOnStart = "restore_on_start", devices, subscribers
        case lastReconcile = "last_reconcile"
    }
}

// MARK: mgmtdev_list

public struct MgmtdevListParams: Codable, Hashable, Sendable {
    /// "[BUS/]NAME" to show one management device.
    public var mgmtdev: String?
    public init(mgmtdev: String? = nil) { self.mgmtdev = mgmtdev }
}

public struct ManagementDeviceInfo: Codable, Hashable, Sendable {
    /// "[BUS/]NAME", the handle iproute2 prints.
    public var handle: String
    public var bus: String?
    public var name: String
    /// Class names: "net", "block".
    public var supportedClasses: [String]
    public var maxSupportedVqs: UInt32?
    public var supportedFeatures: FeatureSetInfo?

    public init(handle: String, bus: String?, name: String, supportedClasses: [String], maxSupportedVqs: UInt32?, supportedFeatures: FeatureSetInfo?) {
        self.handle = handle
        self.bus = bus
        self.name = name
        self.supportedClasses = supportedClasses
        self.maxSupportedVqs = maxSupportedVqs
        self.supportedFeatures = supportedFeatures
    }

    private enum CodingKeys: String, CodingKey {
        case handle, bus, name, supportedClasses = "supported_classes", maxSupportedVqs = "max_supported_vqs"
        case supportedFeatures = "supported_features"
    }
}

public struct MgmtdevListResult: Codable, Hashable, Sendable {
    public var mgmtdevs: [ManagementDeviceInfo]
    public init(mgmtdevs: [ManagementDeviceInfo]) { self.mgmtdevs = mgmtdevs }
}

// MARK: devices

/// How vdpad created a device (absent for devices vdpad did not create).
public struct DeviceRecordInfo: Codable, Hashable, Sendable {
    public var state: String
    public var createdAt: String
    public var mac: String?
    public var mtu: Int?
    public var maxVqp: Int?
    public var deviceFeatures: FeatureSetInfo?
    public var provisionedFeatures: FeatureSetInfo?
    public var driver: String?
    /// The profile it was made from, and that profile's version.
    public var profile: String?
    public var profileVersion: Int?
    /// The quirks in force on its management device when it was made.
    public var quirks: [String]?

    public init(state: String, createdAt: String, mac: String?, mtu: Int?, maxVqp: Int?, deviceFeatures: FeatureSetInfo?, provisionedFeatures: FeatureSetInfo?, driver: String?,
                profile: String? = nil, profileVersion: Int? = nil, quirks: [String]? = nil) {
        self.profile = profile
        self.profileVersion = profileVersion
        self.quirks = quirks
        self.state = state
        self.createdAt = createdAt
        self.mac = mac
        self.mtu = mtu
        self.maxVqp = maxVqp
        self.deviceFeatures = deviceFeatures
        self.provisionedFeatures = provisionedFeatures
        self.driver = driver
    }

    private enum CodingKeys: String, CodingKey {
        case state, createdAt = "created_at", mac, mtu, maxVqp = "max_vqp", deviceFeatures = "device_features"
        case provisionedFeatures = "provisioned_features", driver, profile, profileVersion = "profile_version", quirks
    }
}

public struct DeviceInfo: Codable, Hashable, Sendable {
    public var name: String
    /// "network", "block" (iproute2's type names).
    public var type: String
    public var deviceID: UInt32
    public var mgmtdev: String
    public var vendorID: UInt32
    public var maxVqs: UInt32
    public var maxVqSize: UInt16
    public var minVqSize: UInt16?
    /// The bound vdpa bus driver, nil when unbound.
    public var driver: String?
    /// "/dev/vhost-vdpa-N" when bound to vhost_vdpa.
    public var vhostDevice: String?
    /// "virtioN" when bound to virtio_vdpa.
    public var virtioDevice: String?
    public var netdevs: [String]
    public var blockDevices: [String]
    /// Whether vdpad created the device (and so may change or delete it).
    public var managed: Bool
    public var record: DeviceRecordInfo?
    /// Present when vdpad holds the device's /dev/vhost-vdpa-N open (as a port's backend).
    public var held: HeldDeviceInfo?

    public init(name: String, type: String, deviceID: UInt32, mgmtdev: String, vendorID: UInt32, maxVqs: UInt32, maxVqSize: UInt16, minVqSize: UInt16?, driver: String?, vhostDevice: String?, virtioDevice: String?, netdevs: [String], blockDevices: [String], managed: Bool, record: DeviceRecordInfo?, held: HeldDeviceInfo? = nil) {
        self.held = held
        self.name = name
        self.type = type
        self.deviceID = deviceID
        self.mgmtdev = mgmtdev
        self.vendorID = vendorID
        self.maxVqs = maxVqs
        self.maxVqSize = maxVqSize
        self.minVqSize = minVqSize
        self.driver = driver
        self.vhostDevice = vhostDevice
        self.virtioDevice = virtioDevice
        self.netdevs = netdevs
        self.blockDevices = blockDevices
        self.managed = managed
        self.record = record
    }

    private enum CodingKeys: String, CodingKey {
        case name, type, deviceID = "device_id", mgmtdev, vendorID = "vendor_id", maxVqs = "max_vqs", maxVqSize = "max_vq_size"
        case minVqSize = "min_vq_size", driver, vhostDevice = "vhost_vdpa", virtioDevice = "virtio_device", netdevs
        case blockDevices = "block_devices", managed, record, held
    }
}

/// A device vdpad created that the kernel no longer has.
public struct VanishedDeviceInfo: Codable, Hashable, Sendable {
    public var name: String
    public var mgmtdev: String
    public var record: DeviceRecordInfo
    public init(name: String, mgmtdev: String, record: DeviceRecordInfo) {
        self.name = name
        self.mgmtdev = mgmtdev
        self.record = record
    }
}

public struct DevListParams: Codable, Hashable, Sendable {
    /// Re-read the kernel before answering (otherwise the inventory, kept current by uevents, answers).
    public var refresh: Bool?
    public init(refresh: Bool? = nil) { self.refresh = refresh }
}

public struct DevListResult: Codable, Hashable, Sendable {
    public var devices: [DeviceInfo]
    public var vanished: [VanishedDeviceInfo]
    public init(devices: [DeviceInfo], vanished: [VanishedDeviceInfo]) {
        self.devices = devices
        self.vanished = vanished
    }
}

public struct DeviceNameParams: Codable, Hashable, Sendable {
    public var name: String
    public init(name: String) { self.name = name }
}

public struct DevAddParams: Codable, Hashable, Sendable {
    public var name: String
    /// "[BUS/]NAME" of the management device.
    public var mgmtdev: String
    public var mac: String?
    public var mtu: Int?
    public var maxVqp: Int?
    /// Hex feature set to provision exactly ("0x300000028").
    public var deviceFeatures: String?
    /// Bus driver to bind after creation: "vhost_vdpa" or "virtio_vdpa"; default: the kernel's choice.
    public var driver: String?
    /// A profile's name: the device presents exactly that profile (features, MTU, queue pairs, MAC policy).
    public var profile: String?

    public init(name: String, mgmtdev: String, mac: String? = nil, mtu: Int? = nil, maxVqp: Int? = nil, deviceFeatures: String? = nil, driver: String? = nil, profile: String? = nil) {
        self.profile = profile
        self.name = name
        self.mgmtdev = mgmtdev
        self.mac = mac
        self.mtu = mtu
        self.maxVqp = maxVqp
        self.deviceFeatures = deviceFeatures
        self.driver = driver
    }

    private enum CodingKeys: String, CodingKey {
        case name, mgmtdev, mac, mtu, maxVqp = "max_vqp", deviceFeatures = "device_features", driver, profile
    }

    /// `mtu` and `max_vqp` within what virtio allows (``VirtioBounds``).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        mgmtdev = try container.decode(String.self, forKey: .mgmtdev)
        mac = try container.decodeIfPresent(String.self, forKey: .mac)
        mtu = try container.decodeIfPresent(Int.self, forKey: .mtu, within: VirtioBounds.mtu)
        maxVqp = try container.decodeIfPresent(Int.self, forKey: .maxVqp, within: VirtioBounds.queuePairs)
        deviceFeatures = try container.decodeIfPresent(String.self, forKey: .deviceFeatures)
        driver = try container.decodeIfPresent(String.self, forKey: .driver)
        profile = try container.decodeIfPresent(String.self, forKey: .profile)
    }
}

public struct DevDelParams: Codable, Hashable, Sendable {
    public var name: String
    /// Delete even a device vdpad did not create.
    public var force: Bool?
    public init(name: String, force: Bool? = nil) {
        self.name = name
        self.force = force
    }
}

/// A device vdpad holds open: which port it backs and what its vhost backend can do
/// (`VHOST_GET_BACKEND_FEATURES`).
public struct HeldDeviceInfo: Codable, Hashable, Sendable {
    public var port: String
    public var backendFeatures: [String]
    public var suspend: Bool
    public var resume: Bool
    public init(port: String, backendFeatures: [String], suspend: Bool, resume: Bool) {
        self.port = port
        self.backendFeatures = backendFeatures
        self.suspend = suspend
        self.resume = resume
    }
    private enum CodingKeys: String, CodingKey { case port, backendFeatures = "backend_features", suspend, resume }
}

public struct DevDelResult: Codable, Hashable, Sendable {
    public var name: String
    public init(name: String) { self.name = name }
}

// MARK: dev_config_get

public struct DevConfigGetParams: Codable, Hashable, Sendable {
    /// One device; all devices when absent.
    public var name: String?
    public init(name: String? = nil) { self.name = name }
}

public struct NetConfigInfo: Codable, Hashable, Sendable {
    public var mac: String?
    /// VIRTIO_NET_S_* bits.
    public var status: UInt16?
    public var linkUp: Bool?
    public var linkAnnounce: Bool?
    public var maxVqPairs: UInt16?
    public var mtu: UInt16?

    public init(mac: String?, status: UInt16?, linkUp: Bool?, linkAnnounce: Bool?, maxVqPairs: UInt16?, mtu: UInt16?) {
        self.mac = mac
        self.status = status
        self.linkUp = linkUp
        self.linkAnnounce = linkAnnounce
        self.maxVqPairs = maxVqPairs
        self.mtu = mtu
    }

    private enum CodingKeys: String, CodingKey {
        case mac, status, linkUp = "link_up", linkAnnounce = "link_announce", maxVqPairs = "max_vq_pairs", mtu
    }
}

public struct BlockConfigInfo: Codable, Hashable, Sendable {
    public var capacity: UInt64?
    public var sizeMax: UInt32?
    public var blkSize: UInt32?
    public var segMax: UInt32?
    public var numQueues: UInt16?
    public var physicalBlockExp: UInt8?
    public var alignmentOffset: UInt8?
    public var minIoSize: UInt16?
    public var optIoSize: UInt32?
    public var maxDiscardSec: UInt32?
    public var maxDiscardSeg: UInt32?
    public var discardSecAlignment: UInt32?
    public var maxWriteZeroesSec: UInt32?
    public var maxWriteZeroesSeg: UInt32?
    public var readOnly: Bool?
    public var flush: Bool?

    public init() {}

    private enum CodingKeys: String, CodingKey {
        case capacity, sizeMax = "size_max", blkSize = "blk_size", segMax = "seg_max", numQueues = "num_queues"
        case physicalBlockExp = "physical_block_exp", alignmentOffset = "alignment_offset", minIoSize = "min_io_size"
        case optIoSize = "opt_io_size", maxDiscardSec = "max_discard_sec", maxDiscardSeg = "max_discard_seg"
        case discardSecAlignment = "discard_sec_alignment", maxWriteZeroesSec = "max_write_zeroes_sec"
        case maxWriteZeroesSeg = "max_write_zeroes_seg", readOnly = "read_only", flush
    }
}

public struct DeviceConfigInfo: Codable, Hashable, Sendable {
    public var name: String
    public var type: String
    public var deviceID: UInt32
    public var deviceFeatures: FeatureSetInfo?
    public var negotiatedFeatures: FeatureSetInfo?
    public var net: NetConfigInfo?
    public var block: BlockConfigInfo?

    public init(name: String, type: String, deviceID: UInt32, deviceFeatures: FeatureSetInfo?, negotiatedFeatures: FeatureSetInfo?, net: NetConfigInfo?, block: BlockConfigInfo?) {
        self.name = name
        self.type = type
        self.deviceID = deviceID
        self.deviceFeatures = deviceFeatures
        self.negotiatedFeatures = negotiatedFeatures
        self.net = net
        self.block = block
    }

    private enum CodingKeys: String, CodingKey {
        case name, type, deviceID = "device_id", deviceFeatures = "device_features"
        case negotiatedFeatures = "negotiated_features", net, block
    }
}

public struct DevConfigGetResult: Codable, Hashable, Sendable {
    public var configs: [DeviceConfigInfo]
    public init(configs: [DeviceConfigInfo]) { self.configs = configs }
}

// MARK: dev_vstats_get

public struct DevVstatsGetParams: Codable, Hashable, Sendable {
    public var name: String
    public var qidx: UInt32
    public init(name: String, qidx: UInt32) {
        self.name = name
        self.qidx = qidx
    }
}

public struct VendorStatInfo: Codable, Hashable, Sendable {
    public var name: String
    public var value: UInt64
    public init(name: String, value: UInt64) {
        self.name = name
        self.value = value
    }
}

public struct DevVstatsGetResult: Codable, Hashable, Sendable {
    public var name: String
    public var qidx: UInt32
    /// "rx", "tx" or "control_vq" (virtio-net queue numbering, §5.1.2).
    public var queueType: String
    public var negotiatedFeatures: FeatureSetInfo?
    public var maxVqPairs: UInt16?
    /// In the vendor driver's order.
    public var stats: [VendorStatInfo]

    public init(name: String, qidx: UInt32, queueType: String, negotiatedFeatures: FeatureSetInfo?, maxVqPairs: UInt16?, stats: [VendorStatInfo]) {
        self.name = name
        self.qidx = qidx
        self.queueType = queueType
        self.negotiatedFeatures = negotiatedFeatures
        self.maxVqPairs = maxVqPairs
        self.stats = stats
    }

    private enum CodingKeys: String, CodingKey {
        case name, qidx, queueType = "queue_type", negotiatedFeatures = "negotiated_features", maxVqPairs = "max_vq_pairs", stats
    }
}

// MARK: dev_set, dev_bind

public struct DevSetParams: Codable, Hashable, Sendable {
    public var name: String
    public var mac: String
    public init(name: String, mac: String) {
        self.name = name
        self.mac = mac
    }
}

public struct DevBindParams: Codable, Hashable, Sendable {
    public var name: String
    /// "vhost_vdpa", "virtio_vdpa", or null/"none" to unbind.
    public var driver: String?
    public init(name: String, driver: String?) {
        self.name = name
        self.driver = driver
    }
}

// MARK: events

public struct EventsSubscribeResult: Codable, Hashable, Sendable {
    public var subscribed: Bool
    public init(subscribed: Bool) { self.subscribed = subscribed }
}

/// A device event, pushed as the params of an `event` notification.
public struct DeviceEvent: Codable, Hashable, Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case deviceAdded = "device_added"
        case deviceRemoved = "device_removed"
        case deviceChanged = "device_changed"
        case driverBound = "driver_bound"
        case deviceVanished = "device_vanished"
        case deviceRestored = "device_restored"
    }

    public var type: Kind
    public var device: String
    /// "vdpad" when vdpad made the change, "external" when something else did.
    public var origin: String
    public var managed: Bool
    public var time: String
    /// The driver now bound (driver_bound), or nil when unbound.
    public var driver: String?
    /// What changed (device_changed), e.g. ["mac"].
    public var changes: [String]?

    public init(type: Kind, device: String, origin: String, managed: Bool, time: String, driver: String? = nil, changes: [String]? = nil) {
        self.type = type
        self.device = device
        self.origin = origin
        self.managed = managed
        self.time = time
        self.driver = driver
        self.changes = changes
    }
}

import VDPAPolicy

// MARK: port_add, port_del, port_list, port_get, port_set

public struct PortAddParams: Codable, Hashable, Sendable {
    public var name: String
    /// The vDPA device (bound to vhost_vdpa) that backs the port; none: attach later with `port_set`.
    public var device: String?
    /// The only user (name or uid) whose VMM may connect, besides root.
    public var consumerUser: String?
    /// The only group (name or gid) whose members' VMMs may connect, besides root.
    public var consumerGroup: String?
    /// Back the port with vdpad's own datapath, on this TAP interface (created when it does not
    /// exist); instead of `device`.
    public var tap: String?
    /// The profile the VMM is offered, whatever backs the port: its exact features, MAC and MTU.
    public var profile: String?
    /// With `tap`: queue pairs (``queuesRange``; default 1): a multi-queue TAP, one worker per pair.
    public var queues: Int?
    /// The queue pairs a software backend may have: a TAP has at most 256 queues, and each pair
    /// is a worker thread.
    public static let queuesRange = 1...16
    public init(name: String, device: String? = nil, consumerUser: String? = nil, consumerGroup: String? = nil, tap: String? = nil,
                profile: String? = nil, queues: Int? = nil) {
        self.queues = queues
        self.profile = profile
        self.name = name
        self.device = device
        self.consumerUser = consumerUser
        self.consumerGroup = consumerGroup
        self.tap = tap
    }
    private enum CodingKeys: String, CodingKey { case name, device, consumerUser = "consumer_user", consumerGroup = "consumer_group", tap, profile, queues }
}

public struct PortNameParams: Codable, Hashable, Sendable {
    public var name: String
    public init(name: String) { self.name = name }
}

public struct PortSetParams: Codable, Hashable, Sendable {
    public var name: String
    /// Attach this device as the port's backend (the consumer's rings start on it at their current state).
    public var device: String?
    /// Release the current backend device (it is reset by the kernel when vdpad closes it).
    public var detach: Bool?
    /// Attach vdpad's own datapath on this TAP interface (rings not running on a device).
    public var tap: String?
    /// With `tap`: queue pairs (1 to 16; default 1).
    public var queues: Int?
    public init(name: String, device: String? = nil, detach: Bool? = nil, tap: String? = nil, queues: Int? = nil) {
        self.queues = queues
        self.name = name
        self.device = device
        self.detach = detach
        self.tap = tap
    }
}

/// A port as the API shows it.
public struct PortInfo: Codable, Hashable, Sendable {
    private enum CodingKeys: String, CodingKey {
        case state, name, socket, device, tap, queues, profile, allowedConsumer = "allowed_consumer", consumer, backend, timingsUs = "timings_us"
    }
    /// `waiting`: no consumer; `configuring`: a consumer is setting up its rings; `running`: the
    /// backend processes the rings; `suspended`: stopped at a clean point (state saved or being
    /// moved); `detached`: a consumer is set up but no backend device is attached.
    public var state: String
    public var name: String
    public var socket: String
    public var device: String?
    /// The TAP interface of its software backend.
    public var tap: String?
    /// Its TAP's queue pairs (with `tap`).
    public var queues: Int?
    /// The profile it presents.
    public var profile: String?
    /// Who may connect (nil: whoever the socket's mode and group let in).
    public var allowedConsumer: AllowedConsumer?
    public var consumer: ConsumerInfo?
    public var backend: BackendInfo?
    /// `port_set` that moved running rings to another device: microseconds per step, `pause`
    /// being suspend-to-DRIVER_OK (the datapath's interruption).
    public var timingsUs: [String: Int]?

    /// The user and group whose VMMs may connect to the port (root always may); a VMM of
    /// another uid is disconnected at once, and counted in `refused`.
    public struct AllowedConsumer: Codable, Hashable, Sendable {
        public var uid: UInt32?
        public var gid: UInt32?
        /// Connections refused since the port was served.
        public var refused: Int
        public init(uid: UInt32?, gid: UInt32?, refused: Int) {
            self.uid = uid
            self.gid = gid
            self.refused = refused
        }
    }

    public struct ConsumerInfo: Codable, Hashable, Sendable {
        public var features: FeatureList?
        public var memoryRegions: Int
        public var queues: [Int]
        public var driverOK: Bool
        /// The last request of the consumer the port refused, with the reason.
        public var lastError: String?
        public init(features: FeatureList?, memoryRegions: Int, queues: [Int], driverOK: Bool, lastError: String? = nil) {
            self.lastError = lastError
            self.features = features
            self.memoryRegions = memoryRegions
            self.queues = queues
            self.driverOK = driverOK
        }
        private enum CodingKeys: String, CodingKey { case features, memoryRegions = "memory_regions", queues, driverOK = "driver_ok", lastError = "last_error" }
    }

    /// What processes the port's rings: a vhost-vdpa device vdpad holds open (`hardware`), with
    /// its backend abilities, or vdpad's own datapath on a TAP interface (`software`), with its
    /// counters per queue.
    public struct BackendInfo: Codable, Hashable, Sendable {
        /// `hardware` or `software`.
        public var type: String
        /// The vDPA device; for `software`, the TAP interface.
        public var device: String
        public var path: String
        public var mgmtdev: String?
        public var deviceFeatures: FeatureList
        public var backendFeatures: [String]
        public var suspend: Bool
        public var resume: Bool
        public var queueCount: Int
        public var maxQueueSize: Int
        /// `software`: what each queue moved since the backend was attached.
        public var queues: [QueueCounters]?
        /// `software`: accesses to guest memory past the end of a file the VMM truncated
        /// (absorbed; the device then needs a reset).
        public var memoryFaults: UInt64?
        /// `software`: what the guest set through the control queue.
        public var control: ControlQueueInfo?
        public init(type: String = "hardware", device: String, path: String, mgmtdev: String?, deviceFeatures: FeatureList, backendFeatures: [String],
                    suspend: Bool, resume: Bool, queueCount: Int, maxQueueSize: Int, queues: [QueueCounters]? = nil, memoryFaults: UInt64? = nil,
                    control: ControlQueueInfo? = nil) {
            self.type = type
            self.control = control
            self.memoryFaults = memoryFaults
            self.queues = queues
            self.device = device
            self.path = path
            self.mgmtdev = mgmtdev
            self.deviceFeatures = deviceFeatures
            self.backendFeatures = backendFeatures
            self.suspend = suspend
            self.resume = resume
            self.queueCount = queueCount
            self.maxQueueSize = maxQueueSize
        }
        private enum CodingKeys: String, CodingKey {
            case type, device, path, mgmtdev, deviceFeatures = "device_features", backendFeatures = "backend_features", suspend, resume
            case queueCount = "queue_count", maxQueueSize = "max_queue_size", queues, memoryFaults = "memory_faults", control
        }
    }

    /// The virtio-net control queue's state on a software backend (§5.1.6.5): receive modes,
    /// the MAC address and filters, VLANs and queue pairs the guest set (the state after reset:
    /// promiscuous, no filter, one pair).
    public struct ControlQueueInfo: Codable, Hashable, Sendable {
        /// The receive modes switched on (`promisc`, `allmulti`, `alluni`, `nomulti`, `nouni`, `nobcast`).
        public var rxModes: [String]
        /// The MAC the guest set (MAC_ADDR_SET), else the configured one.
        public var mac: String?
        public var unicastFilter: [String]
        public var multicastFilter: [String]
        public var vlans: [Int]
        public var queuePairs: Int
        public init(rxModes: [String], mac: String?, unicastFilter: [String], multicastFilter: [String], vlans: [Int], queuePairs: Int) {
            self.rxModes = rxModes
            self.mac = mac
            self.unicastFilter = unicastFilter
            self.multicastFilter = multicastFilter
            self.vlans = vlans
            self.queuePairs = queuePairs
        }
        private enum CodingKeys: String, CodingKey {
            case rxModes = "rx_modes", mac, unicastFilter = "unicast_filter", multicastFilter = "multicast_filter", vlans, queuePairs = "queue_pairs"
        }
    }

    /// One queue of a software backend: packets and bytes moved, frames dropped (no buffer, or
    /// refused by the TAP), malformed input from the driver, frames the receive filter rejected.
    public struct QueueCounters: Codable, Hashable, Sendable {
        public var index: Int
        public var packets: UInt64
        public var bytes: UInt64
        public var drops: UInt64
        public var errors: UInt64
        public var filtered: UInt64
        public init(index: Int, packets: UInt64, bytes: UInt64, drops: UInt64, errors: UInt64, filtered: UInt64) {
            self.index = index
            self.packets = packets
            self.bytes = bytes
            self.drops = drops
            self.errors = errors
            self.filtered = filtered
        }
    }

    public init(state: String, name: String, socket: String, device: String?, tap: String? = nil, queues: Int? = nil, profile: String? = nil,
                allowedConsumer: AllowedConsumer? = nil, consumer: ConsumerInfo?, backend: BackendInfo?, timingsUs: [String: Int]? = nil) {
        self.tap = tap
        self.queues = queues
        self.profile = profile
        self.allowedConsumer = allowedConsumer
        self.timingsUs = timingsUs
        self.state = state
        self.name = name
        self.socket = socket
        self.device = device
        self.consumer = consumer
        self.backend = backend
    }
}

public struct PortListResult: Codable, Hashable, Sendable {
    public var ports: [PortInfo]
    public init(ports: [PortInfo]) { self.ports = ports }
}

public struct PortDelResult: Codable, Hashable, Sendable {
    public var name: String
    public init(name: String) { self.name = name }
}

// MARK: vq_state_*

public struct VqStateSaveParams: Codable, Hashable, Sendable {
    /// The device to suspend and read: one vdpad holds for a port.
    public var device: String
    /// The saved state's name; default "DEVICE-YYYYMMDDTHHMMSSZ".
    public var name: String?
    /// Resume the device once its state is saved (default: it stays suspended, as before a move).
    public var resume: Bool?
    /// Replace a saved state of the same name.
    public var replace: Bool?
    public init(device: String, name: String? = nil, resume: Bool? = nil, replace: Bool? = nil) {
        self.device = device
        self.name = name
        self.resume = resume
        self.replace = replace
    }
}

public struct VqStateNameParams: Codable, Hashable, Sendable {
    public var name: String
    public init(name: String) { self.name = name }
}

public struct VqStateImportParams: Codable, Hashable, Sendable {
    public var state: VirtqueueStateDocument
    /// Store it under this name instead of the document's.
    public var name: String?
    public var replace: Bool?
    public init(state: VirtqueueStateDocument, name: String? = nil, replace: Bool? = nil) {
        self.state = state
        self.name = name
        self.replace = replace
    }
}

public struct VqStateRestoreParams: Codable, Hashable, Sendable {
    /// The saved state.
    public var name: String
    /// The device to start at that state (bound to vhost_vdpa; the same one re-created, or another).
    public var device: String
    /// The port whose consumer's rings the device takes over; default: the port the state was saved from.
    public var port: String?
    public init(name: String, device: String, port: String? = nil) {
        self.name = name
        self.device = device
        self.port = port
    }
}

/// A saved state as the API lists it.
public struct VqStateSummary: Codable, Hashable, Sendable {
    public var name: String
    public var device: String
    public var port: String?
    /// "saved" (on this host) or "imported".
    public var origin: String
    public var host: String
    public var takenAt: String
    public var queues: Int
    public init(name: String, device: String, port: String?, origin: String, host: String, takenAt: String, queues: Int) {
        self.name = name
        self.device = device
        self.port = port
        self.origin = origin
        self.host = host
        self.takenAt = takenAt
        self.queues = queues
    }
    private enum CodingKeys: String, CodingKey { case name, device, port, origin, host, takenAt = "taken_at", queues }
}

public struct VqStateListResult: Codable, Hashable, Sendable {
    public var states: [VqStateSummary]
    public init(states: [VqStateSummary]) { self.states = states }
}

/// A saved state: its summary and the whole document; `timings_us` says how long each step
/// took when it was just saved or restored.
public struct VqStateInfo: Codable, Hashable, Sendable {
    public var origin: String
    public var state: VirtqueueStateDocument
    public var timingsUs: [String: Int]?
    public init(origin: String, state: VirtqueueStateDocument, timingsUs: [String: Int]? = nil) {
        self.origin = origin
        self.state = state
        self.timingsUs = timingsUs
    }
    private enum CodingKeys: String, CodingKey { case origin, state, timingsUs = "timings_us" }
}

public struct VqStateRestoreResult: Codable, Hashable, Sendable {
    public var name: String
    public var device: String
    public var port: String
    /// What was replayed onto the device before its driver started (e.g. "mac").
    public var replayed: [String]
    /// Microseconds per step: release, open, mac, program, driver_ok; pause is suspend-to-running
    /// when the port moved from a suspended device.
    public var timingsUs: [String: Int]
    public init(name: String, device: String, port: String, replayed: [String], timingsUs: [String: Int]) {
        self.name = name
        self.device = device
        self.port = port
        self.replayed = replayed
        self.timingsUs = timingsUs
    }
    private enum CodingKeys: String, CodingKey { case name, device, port, replayed, timingsUs = "timings_us" }
}

public struct VqStateDelResult: Codable, Hashable, Sendable {
    public var name: String
    public init(name: String) { self.name = name }
}

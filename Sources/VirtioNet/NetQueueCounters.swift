/// Per-queue traffic counters of the software datapath.
public struct NetQueueCounters: Hashable, Sendable, Codable {
    /// Packets (or control commands) completed.
    public var packets: UInt64 = 0
    /// Frame bytes moved (without the virtio-net header).
    public var bytes: UInt64 = 0
    /// Frames dropped: no room in the driver's buffers, or refused by the backend.
    public var drops: UInt64 = 0
    /// Malformed input from the driver: bad headers, unusable buffers, malformed commands.
    public var errors: UInt64 = 0
    /// Received frames the driver's receive filter (control queue state) rejected.
    public var filtered: UInt64 = 0

    public init() {}

    public static func + (lhs: NetQueueCounters, rhs: NetQueueCounters) -> NetQueueCounters {
        var sum = lhs
        sum.packets &+= rhs.packets
        sum.bytes &+= rhs.bytes
        sum.drops &+= rhs.drops
        sum.errors &+= rhs.errors
        sum.filtered &+= rhs.filtered
        return sum
    }
}

/// What one processing pass over a queue did and what its worker should do next.
public struct NetQueueRun: Hashable, Sendable {
    /// Chains completed (pushed used).
    public var completed = 0
    /// The driver asked for a used buffer notification: signal the call eventfd.
    public var needsNotification = false
    /// Work remains (budget exhausted): run again without sleeping.
    public var hasMoreWork = false
    /// Transmit: the backend is full; wait until it is writable.
    /// Receive: a frame waits for the driver to post buffers (kick).
    public var isBlocked = false

    /// Used elements a pass publishes together (one index or flags release store, one
    /// notification decision) before it goes on: the driver starts on the first ones while
    /// the device fills the next, as a DPDK burst does, instead of waiting for the whole pass.
    public static let usedBatch = 32

    public init() {}
}

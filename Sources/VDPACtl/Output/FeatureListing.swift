import VDPAPolicy
import VDPARPC
import VirtioModel

/// Which names a feature set is printed with: iproute2's, for the device type iproute2 would use.
enum FeatureListing {
    /// iproute2's names for `set` (falling back to the API's names if its hex does not parse).
    static func names(_ set: FeatureSetInfo, deviceType: VirtioDeviceType?) -> [String] {
        set.features?.iproute2Names(for: deviceType) ?? set.names
    }

    /// iproute2's names for a ``FeatureList`` (ports, saved states), from its hex when it
    /// parses, else its own names; none for a missing list.
    static func names(_ list: FeatureList?, deviceType: VirtioDeviceType?) -> [String] {
        guard let list else { return [] }
        if let hex = list.hex, let features = VirtioFeatures(hex: hex) { return features.iproute2Names(for: deviceType) }
        return list.names ?? []
    }

    /// `mgmtdev show` names device bits as net ones only when the parent supports the net class.
    static func managementDeviceType(_ mgmtdev: ManagementDeviceInfo) -> VirtioDeviceType? {
        mgmtdev.supportedClasses.contains(VirtioDeviceType.network.className) ? .network : nil
    }
}

extension NetConfigInfo {
    /// Link up, from `link_up` or else the VIRTIO_NET_S_LINK_UP status bit; nil when unknown.
    var isLinkUp: Bool? { linkUp ?? status.map { $0 & NetLinkStatus.linkUp.rawValue != 0 } }
    /// Announce pending, from `link_announce` or else the VIRTIO_NET_S_ANNOUNCE status bit.
    var isAnnouncing: Bool? { linkAnnounce ?? status.map { $0 & NetLinkStatus.announce.rawValue != 0 } }
}

extension BlockConfigInfo {
    /// vdpad's block configuration fields, in virtio_blk_config order (virtio 1.4 §5.2.4);
    /// iproute2 prints none of them.
    var members: [(String, JSONValue)] {
        var members: [(String, JSONValue)] = []
        func add(_ key: String, _ value: (some BinaryInteger)?) {
            if let value { members.append((key, .number(value))) }
        }
        add("capacity", capacity)
        add("size_max", sizeMax)
        add("seg_max", segMax)
        add("blk_size", blkSize)
        add("physical_block_exp", physicalBlockExp)
        add("alignment_offset", alignmentOffset)
        add("min_io_size", minIoSize)
        add("opt_io_size", optIoSize)
        add("num_queues", numQueues)
        add("max_discard_sec", maxDiscardSec)
        add("max_discard_seg", maxDiscardSeg)
        add("discard_sec_alignment", discardSecAlignment)
        add("max_write_zeroes_sec", maxWriteZeroesSec)
        add("max_write_zeroes_seg", maxWriteZeroesSeg)
        if let readOnly { members.append(("read_only", .bool(readOnly))) }
        if let flush { members.append(("flush", .bool(flush))) }
        return members
    }
}

/// The steps a save or a restore reports (`timings_us`), in the order they happen; steps
/// vdpactl does not know follow, by name.
enum StepOrder {
    static let known = [
        "mac", "open", "reset", "features", "map", "vrings",
        "suspend", "read_base", "status_config", "resume", "store",
        "release", "vring_base", "driver_ok", "pause",
    ]
    /// A span over other steps (a move's suspend-to-DRIVER_OK window), not a step of its own.
    static let spans: Set<String> = ["pause"]

    static func ordered(_ timings: [String: Int]) -> [(step: String, microseconds: Int)] {
        let first = known.compactMap { step in timings[step].map { (step, $0) } }
        let rest = timings.keys.filter { !known.contains($0) }.sorted().map { ($0, timings[$0] ?? 0) }
        return first + rest
    }
}

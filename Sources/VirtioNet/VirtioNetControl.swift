import VirtioModel

/// `virtio_net_ctrl` command classes and commands (§5.1.6.5 "Control Virtqueue").
public enum VirtioNetControlClass: UInt8, Hashable, Sendable, Codable, CaseIterable {
    case rx = 0
    case mac = 1
    case vlan = 2
    case announce = 3
    case mq = 4
    case guestOffloads = 5
}

/// The ack byte (§5.1.6.5: VIRTIO_NET_OK 0, VIRTIO_NET_ERR 1).
public enum VirtioNetAck: UInt8, Hashable, Sendable {
    case ok = 0
    case error = 1
}

/// One parsed control command: `{u8 class; u8 command; u8 data[]; u8 ack}`
/// with the data decoded (§5.1.6.5.1 – §5.1.6.5.6).
public enum VirtioNetControlCommand: Hashable, Sendable, Codable {
    /// VIRTIO_NET_CTRL_RX_{PROMISC, ALLMULTI, ALLUNI, NOMULTI, NOUNI, NOBCAST}: u8 on/off.
    case rxMode(VirtioNetRxMode, on: Bool)
    /// VIRTIO_NET_CTRL_MAC_TABLE_SET: unicast then multicast `{le32 entries; u8 macs[entries][6]}`.
    case macTableSet(unicast: [MACAddress], multicast: [MACAddress])
    /// VIRTIO_NET_CTRL_MAC_ADDR_SET: u8 mac[6].
    case macAddressSet(MACAddress)
    /// VIRTIO_NET_CTRL_VLAN_ADD: le16 vid.
    case vlanAdd(UInt16)
    /// VIRTIO_NET_CTRL_VLAN_DEL: le16 vid.
    case vlanDelete(UInt16)
    /// VIRTIO_NET_CTRL_ANNOUNCE_ACK: no data.
    case announceAck
    /// VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET: le16 virtqueue_pairs.
    case queuePairsSet(UInt16)
    /// VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET: le64 offloads.
    case guestOffloadsSet(UInt64)

    /// VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN / _MAX.
    public static let queuePairsRange: ClosedRange<UInt16> = 1...0x8000
    /// Largest command data accepted (a MAC table of ~10k entries).
    public static let maximumDataLength = 64 * 1024

    /// Parses class, command and data (everything the driver made readable:
    /// the ack byte is in the writable part). Malformed input throws.
    public init(parsing bytes: [UInt8]) throws(VirtioNetControlError) {
        guard bytes.count >= 2 else { throw .truncated }
        guard bytes.count - 2 <= Self.maximumDataLength else { throw .dataTooLong(bytes.count - 2) }
        let classByte = bytes[0]
        let command = bytes[1]
        let data = Array(bytes[2...])
        func exactly(_ count: Int) throws(VirtioNetControlError) {
            guard data.count == count else { throw .badDataLength(expected: count, actual: data.count) }
        }
        func le16(_ offset: Int) -> UInt16 { UInt16(data[offset]) | UInt16(data[offset + 1]) << 8 }
        guard let controlClass = VirtioNetControlClass(rawValue: classByte) else { throw .unknownClass(classByte) }
        switch controlClass {
        case .rx:
            guard let mode = VirtioNetRxMode(rawValue: command) else { throw .unknownCommand(class: classByte, command: command) }
            try exactly(1)
            guard data[0] <= 1 else { throw .badValue }
            self = .rxMode(mode, on: data[0] == 1)
        case .mac:
            switch command {
            case 0:
                var offset = 0
                func table() throws(VirtioNetControlError) -> [MACAddress] {
                    guard data.count - offset >= 4 else { throw .truncated }
                    let entries = UInt32(data[offset]) | UInt32(data[offset + 1]) << 8
                        | UInt32(data[offset + 2]) << 16 | UInt32(data[offset + 3]) << 24
                    offset += 4
                    guard UInt64(entries) * 6 <= UInt64(data.count - offset) else { throw .truncated }
                    var result: [MACAddress] = []
                    result.reserveCapacity(Int(entries))
                    for _ in 0..<Int(entries) {
                        result.append(MACAddress(bytes: Array(data[offset..<offset + 6]))!)
                        offset += 6
                    }
                    return result
                }
                let unicast = try table()
                let multicast = try table()
                guard offset == data.count else { throw .badDataLength(expected: offset, actual: data.count) }
                self = .macTableSet(unicast: unicast, multicast: multicast)
            case 1:
                try exactly(6)
                self = .macAddressSet(MACAddress(bytes: data)!)
            default:
                throw .unknownCommand(class: classByte, command: command)
            }
        case .vlan:
            guard command <= 1 else { throw .unknownCommand(class: classByte, command: command) }
            try exactly(2)
            let vid = le16(0)
            guard vid < VLANFilter.count else { throw .badValue }
            self = command == 0 ? .vlanAdd(vid) : .vlanDelete(vid)
        case .announce:
            guard command == 0 else { throw .unknownCommand(class: classByte, command: command) }
            try exactly(0)
            self = .announceAck
        case .mq:
            // RSS_CONFIG (1) and HASH_CONFIG (2) need VIRTIO_NET_F_RSS / HASH_REPORT, not offered.
            guard command == 0 else { throw .unknownCommand(class: classByte, command: command) }
            try exactly(2)
            self = .queuePairsSet(le16(0))
        case .guestOffloads:
            guard command == 0 else { throw .unknownCommand(class: classByte, command: command) }
            try exactly(8)
            var value: UInt64 = 0
            for index in (0..<8).reversed() { value = value << 8 | UInt64(data[index]) }
            self = .guestOffloadsSet(value)
        }
    }

    /// The class, command and data bytes (what a driver puts in the readable part).
    public var bytes: [UInt8] {
        func le16(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xff), UInt8(value >> 8)] }
        func le32(_ value: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) } }
        switch self {
        case .rxMode(let mode, let on): return [0, mode.rawValue, on ? 1 : 0]
        case .macTableSet(let unicast, let multicast):
            return [1, 0] + le32(unicast.count) + unicast.flatMap(\.bytes) + le32(multicast.count) + multicast.flatMap(\.bytes)
        case .macAddressSet(let mac): return [1, 1] + mac.bytes
        case .vlanAdd(let vid): return [2, 0] + le16(vid)
        case .vlanDelete(let vid): return [2, 1] + le16(vid)
        case .announceAck: return [3, 0]
        case .queuePairsSet(let pairs): return [4, 0] + le16(pairs)
        case .guestOffloadsSet(let offloads): return [5, 0] + (0..<8).map { UInt8(truncatingIfNeeded: offloads >> ($0 * 8)) }
        }
    }

    /// The feature the driver must have negotiated to send this command.
    public var requiredFeature: (features: VirtioFeatures, name: String) {
        typealias Net = VirtioFeatures.Net
        switch self {
        case .rxMode(let mode, _):
            return mode.rawValue <= 1 ? (Net.controlRx, "VIRTIO_NET_F_CTRL_RX") : (Net.controlRxExtra, "VIRTIO_NET_F_CTRL_RX_EXTRA")
        case .macTableSet: return (Net.controlRx, "VIRTIO_NET_F_CTRL_RX")
        case .macAddressSet: return (Net.controlMACAddress, "VIRTIO_NET_F_CTRL_MAC_ADDR")
        case .vlanAdd, .vlanDelete: return (Net.controlVLAN, "VIRTIO_NET_F_CTRL_VLAN")
        case .announceAck: return (Net.guestAnnounce, "VIRTIO_NET_F_GUEST_ANNOUNCE")
        case .queuePairsSet: return (Net.multiqueue, "VIRTIO_NET_F_MQ")
        case .guestOffloadsSet: return (Net.controlGuestOffloads, "VIRTIO_NET_F_CTRL_GUEST_OFFLOADS")
        }
    }
}

/// VIRTIO_NET_CTRL_RX commands (§5.1.6.5.1 "Packet Receive Filtering").
public enum VirtioNetRxMode: UInt8, Hashable, Sendable, Codable, CaseIterable {
    case promiscuous = 0
    case allMulticast = 1
    case allUnicast = 2
    case noMulticast = 3
    case noUnicast = 4
    case noBroadcast = 5
}

/// Why a control command was refused (answered with VIRTIO_NET_ERR).
public enum VirtioNetControlError: Error, Hashable, Sendable {
    case truncated
    case dataTooLong(Int)
    case unknownClass(UInt8)
    case unknownCommand(class: UInt8, command: UInt8)
    case badDataLength(expected: Int, actual: Int)
    case badValue
    case notNegotiated(feature: String)
    case queuePairsOutOfRange(requested: UInt16, maximum: UInt16)
    case offloadsNotNegotiated(UInt64)
    case invalidMACAddress
    /// The chain has no writable byte for the ack.
    case noAckBuffer
}

/// The 4096-bit VLAN filter of VIRTIO_NET_F_CTRL_VLAN (§5.1.6.5.3).
/// Encoded as the sorted list of VLAN ids it contains.
public struct VLANFilter: Hashable, Sendable, Codable {
    public static let count: UInt16 = 4096
    private var words = [UInt64](repeating: 0, count: 64)

    public init() {}
    public init(ids: some Sequence<UInt16>) { for id in ids { insert(id) } }

    public func contains(_ id: UInt16) -> Bool {
        id < Self.count && words[Int(id >> 6)] & (1 << UInt64(id & 63)) != 0
    }
    public mutating func insert(_ id: UInt16) {
        guard id < Self.count else { return }
        words[Int(id >> 6)] |= 1 << UInt64(id & 63)
    }
    public mutating func remove(_ id: UInt16) {
        guard id < Self.count else { return }
        words[Int(id >> 6)] &= ~(1 << UInt64(id & 63))
    }
    public var ids: [UInt16] { (0..<Self.count).filter { contains($0) } }
    public var isEmpty: Bool { words.allSatisfy { $0 == 0 } }

    public init(from decoder: any Decoder) throws {
        let ids = try decoder.singleValueContainer().decode([UInt16].self)
        guard ids.allSatisfy({ $0 < Self.count }) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "VLAN id above 4095"))
        }
        self.init(ids: ids)
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(ids)
    }
}

/// What a driver has configured through the control queue: the state to
/// save with a device snapshot and replay on another backend
/// (``replayCommands(features:)``).
///
/// Defaults are the state after reset as QEMU's virtio-net keeps it:
/// promiscuous on, everything else off, no filters, one queue pair.
public struct VirtioNetControlState: Hashable, Sendable, Codable {
    public var promiscuous = true
    public var allMulticast = false
    public var allUnicast = false
    public var noMulticast = false
    public var noUnicast = false
    public var noBroadcast = false
    /// Set by MAC_ADDR_SET; nil keeps the config-space MAC.
    public var macAddress: MACAddress?
    public var unicastFilter: [MACAddress] = []
    public var multicastFilter: [MACAddress] = []
    /// Used to filter only when VIRTIO_NET_F_CTRL_VLAN is negotiated (``vlanFiltering``).
    public var vlans = VLANFilter()
    public var vlanFiltering = false
    public var queuePairs: UInt16 = 1
    /// Announcements the driver acknowledged.
    public var announceAcks: UInt64 = 0
    /// Set by GUEST_OFFLOADS_SET; nil = all negotiated guest offloads.
    public var guestOffloads: UInt64?

    public init() {}

    /// The initial state for a device with these negotiated features.
    public init(features: VirtioFeatures, macAddress: MACAddress? = nil) {
        self.init()
        self.macAddress = macAddress
        vlanFiltering = features.contains(VirtioFeatures.Net.controlVLAN)
    }

    /// The guest offload feature bits (§5.1.6.5.6.1): GUEST_CSUM, GUEST_TSO4/6,
    /// GUEST_ECN, GUEST_UFO, GUEST_USO4/6.
    public static let guestOffloadBits = VirtioFeatures(bits: [1, 7, 8, 9, 10, 54, 55])

    /// Validates and applies `command` (§5.1.6.5). `maximumQueuePairs` is the
    /// config space `max_virtqueue_pairs`.
    public mutating func apply(
        _ command: VirtioNetControlCommand, features: VirtioFeatures, maximumQueuePairs: UInt16
    ) throws(VirtioNetControlError) {
        let required = command.requiredFeature
        guard features.contains(required.features) else { throw .notNegotiated(feature: required.name) }
        switch command {
        case .rxMode(let mode, let on):
            switch mode {
            case .promiscuous: promiscuous = on
            case .allMulticast: allMulticast = on
            case .allUnicast: allUnicast = on
            case .noMulticast: noMulticast = on
            case .noUnicast: noUnicast = on
            case .noBroadcast: noBroadcast = on
            }
        case .macTableSet(let unicast, let multicast):
            unicastFilter = unicast
            multicastFilter = multicast
        case .macAddressSet(let mac):
            // §5.1.6.5.2: the driver sets a unicast address; refuse what the kernel would.
            guard mac.isValidUnicast else { throw .invalidMACAddress }
            macAddress = mac
        case .vlanAdd(let vid): vlans.insert(vid)
        case .vlanDelete(let vid): vlans.remove(vid)
        case .announceAck: announceAcks &+= 1
        case .queuePairsSet(let pairs):
            // §5.1.6.5.5: between VQ_PAIRS_MIN and max_virtqueue_pairs.
            let maximum = min(maximumQueuePairs, VirtioNetControlCommand.queuePairsRange.upperBound)
            guard pairs >= VirtioNetControlCommand.queuePairsRange.lowerBound, pairs <= maximum else {
                throw .queuePairsOutOfRange(requested: pairs, maximum: maximum)
            }
            queuePairs = pairs
        case .guestOffloadsSet(let offloads):
            let allowed = features.intersection(Self.guestOffloadBits).rawValue
            guard offloads & ~allowed == 0 else { throw .offloadsNotNegotiated(offloads & ~allowed) }
            guestOffloads = offloads
        }
    }

    /// Commands that rebuild this state on a freshly reset device with
    /// `features` (the ones a driver could have sent), as QEMU's
    /// `vhost_vdpa_net_load_*` replays them.
    public func replayCommands(features: VirtioFeatures) -> [VirtioNetControlCommand] {
        let reset = VirtioNetControlState(features: features)
        var commands: [VirtioNetControlCommand] = []
        if let macAddress { commands.append(.macAddressSet(macAddress)) }
        if queuePairs != reset.queuePairs { commands.append(.queuePairsSet(queuePairs)) }
        if let guestOffloads { commands.append(.guestOffloadsSet(guestOffloads)) }
        let modes: [(VirtioNetRxMode, Bool, Bool)] = [
            (.promiscuous, promiscuous, reset.promiscuous), (.allMulticast, allMulticast, reset.allMulticast),
            (.allUnicast, allUnicast, reset.allUnicast), (.noMulticast, noMulticast, reset.noMulticast),
            (.noUnicast, noUnicast, reset.noUnicast), (.noBroadcast, noBroadcast, reset.noBroadcast),
        ]
        for (mode, value, initial) in modes where value != initial { commands.append(.rxMode(mode, on: value)) }
        if !unicastFilter.isEmpty || !multicastFilter.isEmpty {
            commands.append(.macTableSet(unicast: unicastFilter, multicast: multicastFilter))
        }
        for vid in vlans.ids { commands.append(.vlanAdd(vid)) }
        return commands.filter { features.contains($0.requiredFeature.features) }
    }

    /// Whether the receive filter lets `frame` (an Ethernet frame) through
    /// (§5.1.6.5.1, §5.1.6.5.3). A frame too short for an Ethernet header passes.
    public func acceptsFrame(_ frame: UnsafeRawBufferPointer) -> Bool {
        guard frame.count >= 14 else { return true }
        if vlanFiltering, frame[12] == 0x81, frame[13] == 0x00, frame.count >= 16 {
            let vid = (UInt16(frame[14]) << 8 | UInt16(frame[15])) & 0x0fff
            if !vlans.contains(vid) { return false }
        }
        if promiscuous { return true }
        let isBroadcast = (0..<6).allSatisfy { frame[$0] == 0xff }
        if isBroadcast { return !noBroadcast }
        let matches: ([MACAddress]) -> Bool = { list in
            list.contains { mac in (0..<6).allSatisfy { frame[$0] == mac.bytes[$0] } }
        }
        if frame[0] & 1 != 0 {
            if noMulticast { return false }
            return allMulticast || matches(multicastFilter)
        }
        if noUnicast { return false }
        if allUnicast { return true }
        if let macAddress, (0..<6).allSatisfy({ frame[$0] == macAddress.bytes[$0] }) { return true }
        return macAddress == nil || matches(unicastFilter)
    }
}

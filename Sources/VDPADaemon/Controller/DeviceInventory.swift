import VDPANetlink
import VDPARPC
import VirtioModel

/// What vdpad knows of one device on the vdpa bus.
struct InventoryEntry: Hashable, Sendable {
    var info: VDPADeviceInfo
    var binding: DeviceBinding
    /// The parts of the config that operators change (MAC, MTU, link); nil when unreadable.
    var net: NetDeviceConfig?
}

/// The devices on the vdpa bus as last read, and the events that a new reading implies.
struct DeviceInventory: Sendable {
    private(set) var entries: [String: InventoryEntry] = [:]
    /// Bumped on every change; lets encoded answers be cached.
    private(set) var generation: UInt64 = 0

    var names: [String] { entries.keys.sorted() }

    subscript(name: String) -> InventoryEntry? { entries[name] }

    /// Records one device's current state; returns what changed (empty when nothing did).
    mutating func update(_ entry: InventoryEntry) -> [DeviceEventChange] {
        let previous = entries[entry.info.name]
        entries[entry.info.name] = entry
        let changes = Self.changes(from: previous, to: entry)
        if !changes.isEmpty { generation &+= 1 }
        return changes
    }

    mutating func remove(_ name: String) -> InventoryEntry? {
        guard let removed = entries.removeValue(forKey: name) else { return nil }
        generation &+= 1
        return removed
    }

    /// Replaces the whole reading; returns the events it implies, in name order.
    mutating func replace(with reading: [InventoryEntry]) -> [(name: String, change: DeviceEventChange)] {
        var events: [(String, DeviceEventChange)] = []
        let newNames = Set(reading.map(\.info.name))
        for name in names where !newNames.contains(name) {
            _ = remove(name)
            events.append((name, .removed))
        }
        for entry in reading.sorted(by: { $0.info.name < $1.info.name }) {
            for change in update(entry) { events.append((entry.info.name, change)) }
        }
        return events
    }

    static func changes(from previous: InventoryEntry?, to current: InventoryEntry) -> [DeviceEventChange] {
        guard let previous else { return [.added] }
        var changes: [DeviceEventChange] = []
        if previous.binding.driver != current.binding.driver { changes.append(.driverBound(current.binding.driver)) }
        var fields: [String] = []
        if previous.net?.macAddress != current.net?.macAddress { fields.append("mac") }
        if previous.net?.mtu != current.net?.mtu { fields.append("mtu") }
        if previous.net?.status != current.net?.status { fields.append("link") }
        if previous.net?.maxVirtqueuePairs != current.net?.maxVirtqueuePairs { fields.append("max_vq_pairs") }
        if previous.info != current.info { fields.append("device") }
        if previous.binding.driver == current.binding.driver && previous.binding != current.binding { fields.append("binding") }
        if !fields.isEmpty { changes.append(.changed(fields)) }
        return changes
    }
}

/// One difference between two readings of a device.
enum DeviceEventChange: Hashable, Sendable {
    case added
    case removed
    case driverBound(BusDriver?)
    case changed([String])
}

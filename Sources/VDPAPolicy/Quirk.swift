import VirtioModel

/// Who a management device is, as quirks match it. The daemon fills it from netlink
/// (`VDPA_ATTR_MGMTDEV_BUS_NAME` / `DEV_NAME`) and sysfs (`/sys/bus/pci/devices/ADDR/{vendor,
/// device,subsystem_vendor,subsystem_device}`, the `driver` link's name). nil: not known, and
/// then a quirk that matches on it does not match.
public struct DeviceIdentity: Hashable, Sendable, Codable {
    /// "pci", "auxiliary"; nil for simulators and VDUSE.
    public var bus: String?
    /// "0000:41:00.2", "vdpasim_net".
    public var name: String
    /// The parent device's driver ("mlx5_core", "pds_core", "vdpa_sim_net").
    public var driver: String?
    public var pciVendor: UInt16?
    public var pciDevice: UInt16?
    public var pciSubsystemVendor: UInt16?
    public var pciSubsystemDevice: UInt16?

    public init(bus: String?, name: String, driver: String? = nil, pciVendor: UInt16? = nil, pciDevice: UInt16? = nil, pciSubsystemVendor: UInt16? = nil, pciSubsystemDevice: UInt16? = nil) {
        self.bus = bus
        self.name = name
        self.driver = driver
        self.pciVendor = pciVendor
        self.pciDevice = pciDevice
        self.pciSubsystemVendor = pciSubsystemVendor
        self.pciSubsystemDevice = pciSubsystemDevice
    }

    /// "BUS/NAME" or "NAME", as iproute2 prints a management device.
    public var handle: String { bus.map { "\($0)/\(name)" } ?? name }

    private enum CodingKeys: String, CodingKey {
        case bus, name, driver, pciVendor = "pci_vendor", pciDevice = "pci_device"
        case pciSubsystemVendor = "pci_subsystem_vendor", pciSubsystemDevice = "pci_subsystem_device"
    }
}

/// What a quirk matches: every given key must hold (they combine with AND).
public struct QuirkMatch: Hashable, Sendable, Codable {
    /// Glob over the handle "BUS/NAME" ("pci/0000:41:*"); a pattern without '/' matches the name.
    public var mgmtdev: String?
    /// Glob over the bus name.
    public var bus: String?
    /// Glob over the parent driver's name.
    public var driver: String?
    public var pciVendor: UInt16?
    public var pciDevice: UInt16?
    public var pciSubsystemVendor: UInt16?
    public var pciSubsystemDevice: UInt16?
    /// The device type the quirk is about; feature names in its actions are read for this type.
    public var deviceType: VirtioDeviceType?

    public init(mgmtdev: String? = nil, bus: String? = nil, driver: String? = nil, pciVendor: UInt16? = nil, pciDevice: UInt16? = nil, pciSubsystemVendor: UInt16? = nil, pciSubsystemDevice: UInt16? = nil, deviceType: VirtioDeviceType? = nil) {
        self.mgmtdev = mgmtdev
        self.bus = bus
        self.driver = driver
        self.pciVendor = pciVendor
        self.pciDevice = pciDevice
        self.pciSubsystemVendor = pciSubsystemVendor
        self.pciSubsystemDevice = pciSubsystemDevice
        self.deviceType = deviceType
    }

    /// Whether any device-identifying key is given (`class` alone matches too much).
    public var isEmpty: Bool {
        mgmtdev == nil && bus == nil && driver == nil && pciVendor == nil && pciDevice == nil && pciSubsystemVendor == nil && pciSubsystemDevice == nil
    }

    /// Whether the quirk applies to `identity` for devices of `deviceType`.
    public func matches(_ identity: DeviceIdentity, deviceType: VirtioDeviceType) -> Bool {
        if let type = self.deviceType, type != deviceType { return false }
        if let pattern = mgmtdev {
            let subject = pattern.contains("/") ? identity.handle : identity.name
            guard Glob.matches(pattern, subject) else { return false }
        }
        if let pattern = bus { guard let value = identity.bus, Glob.matches(pattern, value) else { return false } }
        if let pattern = driver { guard let value = identity.driver, Glob.matches(pattern, value) else { return false } }
        if let id = pciVendor, id != identity.pciVendor { return false }
        if let id = pciDevice, id != identity.pciDevice { return false }
        if let id = pciSubsystemVendor, id != identity.pciSubsystemVendor { return false }
        if let id = pciSubsystemDevice, id != identity.pciSubsystemDevice { return false }
        return true
    }

    private enum CodingKeys: String, CodingKey {
        case mgmtdev, bus, driver, pciVendor = "pci_vendor", pciDevice = "pci_device"
        case pciSubsystemVendor = "pci_subsystem_vendor", pciSubsystemDevice = "pci_subsystem_device", deviceType = "class"
    }
}

/// One thing a quirk does.
public enum QuirkAction: Hashable, Sendable {
    /// Adds bits the device presents but its management device fails to advertise.
    case set(VirtioFeatures)
    /// Removes bits the device advertises but gets wrong.
    case clear(VirtioFeatures)
    case capMTU(Int)
    case capQueuePairs(Int)
    case capQueueSize(Int)
    /// The management device does not honour this provisioning attribute.
    case deny(ProvisioningAttribute)
}

/// A rule for a device known to misbehave or mis-advertise, from `etc/vdpad/quirks.d/*.conf`
/// (see Documentation/quirks.md for the format).
public struct Quirk: Hashable, Sendable {
    public var name: String
    public var summary: String?
    public var match: QuirkMatch
    public var actions: [QuirkAction]
    /// Where it is defined.
    public var file: String
    public var line: Int

    public init(name: String, summary: String? = nil, match: QuirkMatch, actions: [QuirkAction], file: String = "<memory>", line: Int = 0) {
        self.name = name
        self.summary = summary
        self.match = match
        self.actions = actions
        self.file = file
        self.line = line
    }
}

/// What one quirk changed on one management device, for the record ("quirks in force"): only
/// the bits and limits it actually changed.
public struct AppliedQuirk: Hashable, Sendable, Codable {
    public var name: String
    public var file: String
    public var line: Int
    public var summary: String?
    /// Bits it added (absent when none).
    public var set: FeatureList?
    /// Bits it removed (absent when none).
    public var cleared: FeatureList?
    /// Limits it lowered (only those).
    public var caps: DeviceLimits?
    /// Attributes it marked as not honoured.
    public var denied: [ProvisioningAttribute]?

    public init(name: String, file: String, line: Int, summary: String? = nil, set: FeatureList? = nil, cleared: FeatureList? = nil, caps: DeviceLimits? = nil, denied: [ProvisioningAttribute]? = nil) {
        self.name = name
        self.file = file
        self.line = line
        self.summary = summary
        self.set = set
        self.cleared = cleared
        self.caps = caps
        self.denied = denied
    }

    /// The bits it removed, for checks ("quirk X removes a needed bit").
    public var clearedFeatures: VirtioFeatures { self.cleared?.hex.flatMap(VirtioFeatures.init(hex:)) ?? [] }
    /// The bits it added.
    public var setFeatures: VirtioFeatures { self.set?.hex.flatMap(VirtioFeatures.init(hex:)) ?? [] }

    private enum CodingKeys: String, CodingKey {
        case name, file, line, summary = "description", set, cleared, caps, denied
    }
}

/// What a management device can present for one device type once quirks have shaped it.
public struct QuirkOutcome: Hashable, Sendable {
    public var features: VirtioFeatures
    public var limits: DeviceLimits
    public var attributes: AttributeAbilities
    /// The quirks that changed something, in the order they applied.
    public var applied: [AppliedQuirk]
}

/// The quirks in force: matching and application. Quirks apply in the order of the database
/// (files in name order, then as written); within a quirk, actions apply in order; a cap only
/// ever lowers a limit.
public struct QuirkDatabase: Hashable, Sendable {
    public var quirks: [Quirk]

    public init(quirks: [Quirk] = []) { self.quirks = quirks }

    /// Parses quirk files (sorted by name first, as `quirks.d` is read). A bad line drops its
    /// quirk only; a quirk name defined twice keeps the first. Every error is returned.
    public static func load(_ files: [(fileName: String, text: String)]) -> (database: QuirkDatabase, errors: [PolicyFileError]) {
        var quirks: [Quirk] = []
        var errors: [PolicyFileError] = []
        var seen: [String: Quirk] = [:]
        for file in files.sorted(by: { $0.fileName < $1.fileName }) {
            let result = QuirkParser.parse(text: file.text, fileName: file.fileName)
            errors.append(contentsOf: result.errors)
            for quirk in result.quirks {
                if let first = seen[quirk.name] {
                    errors.append(PolicyFileError(file: quirk.file, line: quirk.line, message: "quirk '\(quirk.name)' is already defined at \(first.file):\(first.line); ignored"))
                } else {
                    seen[quirk.name] = quirk
                    quirks.append(quirk)
                }
            }
        }
        return (QuirkDatabase(quirks: quirks), errors)
    }

    /// The quirks that apply to a management device for a device type.
    public func matching(_ identity: DeviceIdentity, deviceType: VirtioDeviceType) -> [Quirk] {
        quirks.filter { $0.match.matches(identity, deviceType: deviceType) }
    }

    /// Applies the matching quirks to what a management device reports.
    public func apply(to features: VirtioFeatures, limits: DeviceLimits, attributes: AttributeAbilities, identity: DeviceIdentity, deviceType: VirtioDeviceType) -> QuirkOutcome {
        var outcome = QuirkOutcome(features: features, limits: limits, attributes: attributes, applied: [])
        for quirk in matching(identity, deviceType: deviceType) {
            let before = outcome.features
            var caps = DeviceLimits()
            var denied: [ProvisioningAttribute] = []
            for action in quirk.actions {
                switch action {
                case .set(let bits):
                    outcome.features.formUnion(bits)
                case .clear(let bits):
                    outcome.features.subtract(bits)
                case .capMTU(let value):
                    if outcome.limits.maxMTU.map({ value < $0 }) ?? true {
                        outcome.limits.maxMTU = value
                        caps.maxMTU = value
                    }
                case .capQueuePairs(let value):
                    if outcome.limits.maxQueuePairs.map({ value < $0 }) ?? true {
                        outcome.limits.maxQueuePairs = value
                        caps.maxQueuePairs = value
                    }
                case .capQueueSize(let value):
                    if outcome.limits.maxQueueSize.map({ value < $0 }) ?? true {
                        outcome.limits.maxQueueSize = value
                        caps.maxQueueSize = value
                    }
                case .deny(let attribute):
                    if outcome.attributes[attribute] != false {
                        outcome.attributes[attribute] = false
                        denied.append(attribute)
                    }
                }
            }
            // What the quirk changed, not what it said: a bit cleared and set again is no change.
            let added = outcome.features.subtracting(before), removed = before.subtracting(outcome.features)
            guard !added.isEmpty || !removed.isEmpty || caps != DeviceLimits() || !denied.isEmpty else { continue }
            outcome.applied.append(AppliedQuirk(
                name: quirk.name, file: quirk.file, line: quirk.line, summary: quirk.summary,
                set: added.isEmpty ? nil : FeatureList(added, deviceType: deviceType),
                cleared: removed.isEmpty ? nil : FeatureList(removed, deviceType: deviceType),
                caps: caps == DeviceLimits() ? nil : caps,
                denied: denied.isEmpty ? nil : denied))
        }
        return outcome
    }
}

/// Shell-style globs: `*` any run of characters, `?` one character, `[abc]` / `[a-f]` / `[!a]`
/// one of a set; everything else matches itself.
public enum Glob {
    public static func matches(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.utf8), t = Array(text.utf8)
        var pi = 0, ti = 0
        var starP = -1, starT = 0
        while ti < t.count {
            if pi < p.count, p[pi] == UInt8(ascii: "*") {
                starP = pi
                starT = ti
                pi += 1
                continue
            }
            if pi < p.count, let next = matchOne(p, pi, t[ti]) {
                pi = next
                ti += 1
                continue
            }
            guard starP >= 0 else { return false }
            pi = starP + 1
            starT += 1
            ti = starT
        }
        while pi < p.count, p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }

    /// Matches one pattern element at `pi` against `c`; the index after it, or nil.
    private static func matchOne(_ p: [UInt8], _ pi: Int, _ c: UInt8) -> Int? {
        switch p[pi] {
        case UInt8(ascii: "?"): return pi + 1
        case UInt8(ascii: "["):
            var i = pi + 1
            var negate = false
            if i < p.count, p[i] == UInt8(ascii: "!") || p[i] == UInt8(ascii: "^") {
                negate = true
                i += 1
            }
            var matched = false
            var first = true
            while i < p.count, first || p[i] != UInt8(ascii: "]") {
                first = false
                if i + 2 < p.count, p[i + 1] == UInt8(ascii: "-"), p[i + 2] != UInt8(ascii: "]") {
                    if p[i] <= c && c <= p[i + 2] { matched = true }
                    i += 3
                } else {
                    if p[i] == c { matched = true }
                    i += 1
                }
            }
            guard i < p.count else { return p[pi] == c ? pi + 1 : nil } // no closing ']': a literal '['
            return matched != negate ? i + 1 : nil
        default:
            return p[pi] == c ? pi + 1 : nil
        }
    }
}

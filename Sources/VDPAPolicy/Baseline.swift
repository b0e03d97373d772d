import VirtioModel

/// The largest profile every host can present, in the spirit of libvirt's
/// `hypervisor-cpu-baseline`: the AND of the feature sets (each host's own quirks already
/// applied in its capabilities document), repaired so that no bit lacks a bit it requires, and
/// the minimum of each configuration limit.
public enum Baseline {
    /// Where one host's part of the baseline came from.
    public struct Source: Hashable, Sendable, Codable {
        public var host: String
        public var mgmtdev: String
        public var features: FeatureList
    }

    public struct Result: Hashable, Sendable, Codable {
        /// The baseline, ready to save as a profile; nil when there is none (see `reasons`).
        public var profile: Profile?
        /// The management device chosen on each host.
        public var sources: [Source]
        /// Bits the intersection had that the dependency repair removed, each with its rule.
        public var removed: [FeatureRuleViolation]
        /// Why there is no baseline.
        public var reasons: [String]
        /// Facts worth knowing (a limit nobody reported, an attribute a host does not accept).
        public var notes: [String]
    }

    /// Computes the baseline of `documents` for `deviceType`.
    ///
    /// - Parameters:
    ///   - choices: host name → management device handle, for hosts with more than one
    ///     management device of the type. Without a choice the one with the most features
    ///     (then the first by handle) is used; `sources` says which.
    ///   - name: the profile's name.
    public static func compute(over documents: [CapabilitiesDocument], deviceType: VirtioDeviceType, choices: [String: String] = [:], name: String = "baseline") -> Result {
        var reasons: [String] = []
        var notes: [String] = []
        var chosen: [(host: String, mgmtdev: MgmtdevCapabilities, entry: ClassCapabilities)] = []
        chosen.reserveCapacity(documents.count)
        if documents.isEmpty { reasons.append("no capabilities documents given") }

        for document in documents {
            if let handle = choices[document.host] {
                guard let mgmtdev = document.mgmtdev(handle) else {
                    reasons.append("\(document.host): no management device \(handle)")
                    continue
                }
                guard let entry = mgmtdev.capabilities(for: deviceType) else {
                    reasons.append("\(document.host): \(handle) does not create \(deviceType.typeName) devices")
                    continue
                }
                chosen.append((document.host, mgmtdev, entry))
                continue
            }
            var best: (mgmtdev: MgmtdevCapabilities, entry: ClassCapabilities, count: Int)?
            for mgmtdev in document.mgmtdevs {
                guard let entry = mgmtdev.capabilities(for: deviceType) else { continue }
                let count = entry.features.rawValue.nonzeroBitCount
                if let current = best {
                    if count > current.count || (count == current.count && mgmtdev.identity.handle < current.mgmtdev.identity.handle) {
                        best = (mgmtdev, entry, count)
                    }
                } else {
                    best = (mgmtdev, entry, count)
                }
            }
            guard let best else {
                reasons.append("\(document.host): no management device creates \(deviceType.typeName) devices")
                continue
            }
            chosen.append((document.host, best.mgmtdev, best.entry))
        }
        let sources = chosen.map { Source(host: $0.host, mgmtdev: $0.mgmtdev.identity.handle, features: FeatureList($0.entry.features, deviceType: deviceType)) }
        guard reasons.isEmpty else { return Result(profile: nil, sources: sources, removed: [], reasons: reasons, notes: notes) }

        // Features: the AND; hosts that cannot mask pin the set to exactly theirs.
        var features = VirtioFeatures(rawValue: ~0)
        var pinned: (host: String, features: VirtioFeatures)?
        for host in chosen {
            features.formIntersection(host.entry.features)
            guard host.entry.attributes.deviceFeatures == false else { continue }
            if let pin = pinned, pin.features != host.entry.features {
                reasons.append("\(pin.host) and \(host.host) cannot mask features (no device_features attribute) and present different sets: only on \(pin.host): \(pin.features.subtracting(host.entry.features).names(for: deviceType).joined(separator: ", ")); only on \(host.host): \(host.entry.features.subtracting(pin.features).names(for: deviceType).joined(separator: ", "))")
            }
            pinned = pinned ?? (host.host, host.entry.features)
        }
        var removed: [FeatureRuleViolation] = []
        if let pin = pinned, reasons.isEmpty {
            if features != pin.features {
                let lacking = pin.features.subtracting(features)
                reasons.append("\(pin.host) cannot mask features (no device_features attribute), and other hosts lack \(lacking.names(for: deviceType).joined(separator: ", "))")
            } else {
                let broken = FeatureRules.violations(of: features, deviceType: deviceType, including: [.required])
                if !broken.isEmpty {
                    reasons.append("\(pin.host) cannot mask features, and its set breaks the spec's rules: " + broken.map(\.description).joined(separator: "; "))
                }
            }
        } else if reasons.isEmpty {
            features.subtract(FeatureRules.legacyBits(for: deviceType))
            let repair = FeatureRules.repaired(features, deviceType: deviceType)
            features = repair.features
            removed = repair.removed
            for unmet in repair.unmet { reasons.append("the common features lack a required bit: \(unmet)") }
        }
        guard reasons.isEmpty else { return Result(profile: nil, sources: sources, removed: removed, reasons: reasons, notes: notes) }

        // Configuration minimums, only where every host can provision them.
        func minimum(_ value: (ClassCapabilities) -> Int?, what: String) -> Int? {
            var result: Int?
            var unknown: [String] = []
            for host in chosen {
                if let value = value(host.entry) { result = min(result ?? value, value) } else { unknown.append(host.host) }
            }
            if result != nil && !unknown.isEmpty { notes.append("\(what): not reported by \(unknown.joined(separator: ", ")); their limit is not verified") }
            return result
        }
        func settable(_ attribute: ProvisioningAttribute) -> Bool {
            let refusing = chosen.filter { $0.entry.attributes[attribute] == false }.map(\.host)
            if !refusing.isEmpty { notes.append("\(attribute.rawValue) is not provisioned: \(refusing.joined(separator: ", ")) do not accept it") }
            return refusing.isEmpty
        }
        let isNet = deviceType == .network
        var mtu: Int?
        var queuePairs: Int?
        var mac = MACPolicy.none
        if isNet && features.contains(.Net.mtu) && settable(.mtu) { mtu = minimum({ $0.limits.maxMTU }, what: "max_mtu") }
        if isNet && features.contains(.Net.multiqueue) && settable(.maxVQP) { queuePairs = minimum({ $0.limits.maxQueuePairs }, what: "max_queue_pairs") }
        if isNet && features.contains(.Net.mac) && settable(.mac) { mac = .pool }
        var queueSize = minimum({ $0.limits.maxQueueSize }, what: "max_queue_size")
        if let size = queueSize, size > 0 {
            // The largest power of two not above `size` (split rings need one, virtio 1.4 §2.7).
            queueSize = 1 << (Int.bitWidth - 1 - size.leadingZeroBitCount)
        }
        let profile = Profile(name: name, version: 1, deviceType: deviceType, features: features, mac: mac, mtu: mtu, queuePairs: queuePairs, queueSize: queueSize,
                              summary: "baseline of \(chosen.count) host\(chosen.count == 1 ? "" : "s")")
        return Result(profile: profile, sources: sources, removed: removed, reasons: [], notes: notes)
    }
}

import Testing
import VirtioModel
@testable import VDPAPolicy

/// Properties over random feature sets and limits, from a seeded generator (reproducible).
@Suite struct PropertyTests {
    /// The bits a rich net mgmtdev offers; hosts drop a few each.
    static let rich = try! VirtioFeatures(names: [
        "VERSION_1", "ACCESS_PLATFORM", "ORDER_PLATFORM", "RING_PACKED", "RING_INDIRECT_DESC", "RING_EVENT_IDX", "IN_ORDER", "CSUM", "GUEST_CSUM",
        "HOST_TSO4", "HOST_TSO6", "HOST_ECN", "GUEST_TSO4", "GUEST_TSO6", "GUEST_ECN", "MRG_RXBUF", "STATUS", "CTRL_VQ", "CTRL_RX", "CTRL_VLAN",
        "MQ", "CTRL_MAC_ADDR", "MTU", "MAC", "RSS", "HASH_REPORT", "RSC_EXT", "GUEST_ANNOUNCE", "SPEED_DUPLEX",
    ], deviceType: .network)

    static func randomBool(_ generator: inout SeededGenerator, trueIn percent: UInt64) -> Bool { generator.next() % 100 < percent }

    static func randomAttribute(_ generator: inout SeededGenerator) -> Bool? {
        switch generator.next() % 10 {
        case 0: nil
        case 1: false
        default: true
        }
    }

    static func randomHost(_ index: Int, _ generator: inout SeededGenerator) -> CapabilitiesDocument {
        var features = rich
        // Drop each bit with probability 1/8, keep VERSION_1 almost always.
        for bit in rich.bits where generator.next() % 8 == 0 && (bit != 32 || generator.next() % 20 == 0) {
            features.remove(VirtioFeatures(bit: bit))
        }
        let attributes = AttributeAbilities(mac: randomAttribute(&generator), mtu: randomAttribute(&generator), maxVQP: randomAttribute(&generator),
                                            deviceFeatures: generator.next() % 25 == 0 ? false : randomBool(&generator, trueIn: 95) ? true : nil)
        let limits = DeviceLimits(
            maxQueuePairs: randomBool(&generator, trueIn: 90) ? Int(1 + generator.next() % 64) : nil,
            maxQueueSize: randomBool(&generator, trueIn: 80) ? 1 << Int(6 + generator.next() % 10) : nil,
            maxMTU: randomBool(&generator, trueIn: 70) ? Int(1280 + generator.next() % 8000) : nil)
        let entry = ClassCapabilities(deviceType: .network, supportedFeatures: features, features: features, limits: limits, attributes: attributes)
        let mgmtdev = MgmtdevCapabilities(identity: DeviceIdentity(bus: "pci", name: "0000:41:00.\(index % 8)"), maxSupportedVqs: nil, classes: [entry])
        return CapabilitiesDocument(host: "host\(index)", mgmtdevs: [mgmtdev])
    }

    @Test func baselineIsASubsetOfEveryHostAndEveryHostCanPresentIt() {
        var generator = SeededGenerator(seed: 0x5EED)
        var made = 0
        for round in 0..<300 {
            let hosts = (0..<Int(1 + generator.next() % 6)).map { Self.randomHost($0, &generator) }
            let result = Baseline.compute(over: hosts, deviceType: .network, name: "b\(round)")
            guard let profile = result.profile else {
                #expect(!result.reasons.isEmpty)
                continue
            }
            made += 1
            #expect(FeatureRules.isValid(profile.features, deviceType: .network), "round \(round)")
            for host in hosts {
                let entry = host.mgmtdevs[0].classes[0]
                #expect(profile.features.isSubset(of: entry.features), "round \(round) \(host.host)")
                let destination = DestinationCapability(host: host.host, mgmtdev: host.mgmtdevs[0], deviceType: .network)!
                let result = CompatibilityCheck.compare(source: DeviceRequirement(profile: profile), destination: destination)
                #expect(result.answer != .incompatible, "round \(round) \(host.host): \(result.reasons.map(\.message))")
            }
        }
        #expect(made > 150, "only \(made) of 300 rounds had a baseline")
    }

    @Test func identicalIsSymmetricAndSupersetAntisymmetric() {
        var generator = SeededGenerator(seed: 42)
        // A small universe so that equal sets happen often.
        let universe = [32, 33, 0, 1, 5, 17]
        var counts: [CompatibilityResult.Answer: Int] = [:]
        for _ in 0..<5000 {
            func random() -> ClassCapabilities {
                let features = VirtioFeatures(bits: universe.filter { _ in generator.next() % 2 == 0 })
                let attributes = AttributeAbilities(deviceFeatures: generator.next() % 4 == 0 ? false : true)
                return ClassCapabilities(deviceType: .network, supportedFeatures: features, features: features, attributes: attributes)
            }
            let a = random(), b = random()
            let destinationA = DestinationCapability(mgmtdev: "a", deviceType: .network, features: a.features, reportedFeatures: a.supportedFeatures, attributes: a.attributes)
            let destinationB = DestinationCapability(mgmtdev: "b", deviceType: .network, features: b.features, reportedFeatures: b.supportedFeatures, attributes: b.attributes)
            let ab = CompatibilityCheck.compare(source: DeviceRequirement(capability: a), destination: destinationB).answer
            let ba = CompatibilityCheck.compare(source: DeviceRequirement(capability: b), destination: destinationA).answer
            counts[ab, default: 0] += 1
            #expect((ab == .identical) == (ba == .identical))
            if ab == .superset { #expect(ba != .superset) }
            if ab == .identical { #expect(a.features == b.features) }
        }
        #expect(counts[.identical, default: 0] > 40 && counts[.superset, default: 0] > 100 && counts[.incompatible, default: 0] > 100, "\(counts)")
    }

    @Test func quirkApplicationNeverRaisesALimitAndRecordsExactlyTheChange() {
        var generator = SeededGenerator(seed: 99)
        for _ in 0..<1000 {
            let reported = VirtioFeatures(rawValue: generator.next())
            var actions: [QuirkAction] = []
            for _ in 0..<Int(1 + generator.next() % 4) {
                switch generator.next() % 4 {
                case 0: actions.append(.set(VirtioFeatures(rawValue: generator.next() & generator.next())))
                case 1: actions.append(.clear(VirtioFeatures(rawValue: generator.next() & generator.next())))
                case 2: actions.append(.capQueuePairs(Int(1 + generator.next() % 64)))
                default: actions.append(.capMTU(Int(68 + generator.next() % 9000)))
                }
            }
            let database = QuirkDatabase(quirks: [Quirk(name: "q", match: QuirkMatch(driver: "d"), actions: actions)])
            let limits = DeviceLimits(maxQueuePairs: 32, maxMTU: 4000)
            let outcome = database.apply(to: reported, limits: limits, attributes: AttributeAbilities(), identity: DeviceIdentity(bus: nil, name: "x", driver: "d"), deviceType: .network)
            #expect((outcome.limits.maxQueuePairs ?? 0) <= 32 && (outcome.limits.maxMTU ?? 0) <= 4000)
            let applied = outcome.applied.first
            let added = applied?.setFeatures ?? [], removed = applied?.clearedFeatures ?? []
            #expect(reported.union(added).subtracting(removed) == outcome.features)
            #expect(added.isDisjoint(with: reported) && removed.isSubset(of: reported))
        }
    }
}

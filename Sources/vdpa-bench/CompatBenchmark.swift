import ArgumentParser
import Dispatch
import Foundation
import VDPAPolicy
import VirtioModel

/// `vdpa-bench compat`: the migration pre-check and the baseline over synthetic fleets.
/// `compare()` over random (source, destination) pairs, and `Baseline.compute` over thousands of
/// capabilities documents. Reference, same run: the bare 64-bit work over the same data (AND /
/// AND-NOT and the classification for compare; the AND and minimums for the baseline), so the
/// figures read as the cost of names, reasons, plans and rules on top of the bit operations.
struct CompatBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compat", abstract: "Compatibility check and baseline: time per check, time per fleet.")

    @Option(help: "compare() calls per round.") var checks = 100_000
    @Option(help: "Capabilities documents in the baseline.") var documents = 10_000
    @Option(help: "Distinct hosts the compare pairs are drawn from.") var hosts = 1_000
    @Option(help: "Rounds (the median is reported).") var rounds = 5
    @Option(help: "Seed of the generator.") var seed: UInt64 = 0x5EED

    func run() throws {
        var generator = SplitMix64(seed: seed)
        let fleet = (0..<hosts).map { Self.randomHost(index: $0, &generator) }
        let destinations = fleet.map { DestinationCapability(host: $0.host, mgmtdev: $0.mgmtdevs[0], deviceType: .network)! }
        let sources = fleet.map { document -> DeviceRequirement in
            let entry = document.mgmtdevs[0].classes[0]
            // What a device made on that host presents: most of its features, a typical config.
            var features = entry.features
            for bit in features.bits where generator.next() % 6 == 0 && bit != 32 { features.remove(VirtioFeatures(bit: bit)) }
            return DeviceRequirement(deviceType: .network, features: features, mtu: features.contains(.Net.mtu) ? 1500 : nil,
                                     queuePairs: features.contains(.Net.multiqueue) ? 4 : nil, queueSize: 256, mac: features.contains(.Net.mac) ? .pool : .none, needsSuspend: true)
        }
        let pairs = (0..<checks).map { _ in (Int(generator.next() % UInt64(hosts)), Int(generator.next() % UInt64(hosts))) }
        let sourceBits = sources.map(\.features.rawValue), destinationBits = destinations.map(\.features.rawValue)
        let maskable = destinations.map { $0.attributes.deviceFeatures != false }

        print("vdpa-bench compat: \(checks) compare() over random pairs of \(hosts) hosts; baseline of \(documents) documents; \(rounds) rounds, median; seed \(seed)")
        var answers: [CompatibilityResult.Answer: Int] = [:]
        var checkTimes: [Double] = [], referenceTimes: [Double] = []
        var sink = 0
        for round in 0..<rounds {
            let start = DispatchTime.now().uptimeNanoseconds
            for (s, d) in pairs {
                let result = CompatibilityCheck.compare(source: sources[s], destination: destinations[d])
                sink &+= result.reasons.count
                if round == 0 { answers[result.answer, default: 0] += 1 }
            }
            checkTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start) / Double(checks))

            let referenceStart = DispatchTime.now().uptimeNanoseconds
            for (s, d) in pairs {
                let missing = sourceBits[s] & ~destinationBits[d], extra = destinationBits[d] & ~sourceBits[s]
                let answer = missing != 0 || (extra != 0 && !maskable[d]) ? 2 : extra != 0 ? 1 : 0
                sink &+= answer &+ missing.nonzeroBitCount
            }
            referenceTimes.append(Double(DispatchTime.now().uptimeNanoseconds - referenceStart) / Double(checks))
        }
        let check = Self.median(checkTimes), reference = Self.median(referenceTimes)
        print("compare(): \(String(format: "%.0f", check)) ns per check (goal < 10 000 ns)   reference 64-bit AND/compare: \(String(format: "%.1f", reference)) ns   ratio \(String(format: "%.0f", check / max(reference, 0.01)))x")
        print("  answers: identical \(answers[.identical] ?? 0), superset \(answers[.superset] ?? 0), incompatible \(answers[.incompatible] ?? 0)")

        // A fleet is a few hardware models: each document is one of 8 (all able to mask).
        let models = (0..<8).map { Self.randomHost(index: $0, &generator, canMask: true) }
        let docs = (0..<documents).map { index -> CapabilitiesDocument in
            var document = models[Int(generator.next() % 8)]
            document.host = "host\(index)"
            return document
        }
        let entries = docs.map { $0.mgmtdevs[0].classes[0] }
        var baselineTimes: [Double] = [], baselineReference: [Double] = []
        var profile: Profile?
        for _ in 0..<rounds {
            let start = DispatchTime.now().uptimeNanoseconds
            let result = Baseline.compute(over: docs, deviceType: .network)
            baselineTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            profile = result.profile
            sink &+= result.reasons.count

            let referenceStart = DispatchTime.now().uptimeNanoseconds
            var bits = UInt64.max, pairsMin = Int.max, sizeMin = Int.max, mtuMin = Int.max
            for entry in entries {
                bits &= entry.features.rawValue
                pairsMin = min(pairsMin, entry.limits.maxQueuePairs ?? .max)
                sizeMin = min(sizeMin, entry.limits.maxQueueSize ?? .max)
                mtuMin = min(mtuMin, entry.limits.maxMTU ?? .max)
            }
            sink &+= Int(truncatingIfNeeded: bits) &+ pairsMin &+ sizeMin &+ mtuMin
            baselineReference.append(Double(DispatchTime.now().uptimeNanoseconds - referenceStart) / 1e6)
        }
        let baseline = Self.median(baselineTimes), baseReference = Self.median(baselineReference)
        print("Baseline.compute: \(String(format: "%.2f", baseline)) ms for \(documents) documents (goal < 200 ms)   reference AND + minimums: \(String(format: "%.3f", baseReference)) ms   ratio \(String(format: "%.0f", baseline / max(baseReference, 0.0001)))x")
        print("  baseline: \(profile.map { "\($0.features.hexString) (\($0.features.bits.count) features), queue_pairs \($0.queuePairs.map(String.init) ?? "-"), mtu \($0.mtu.map(String.init) ?? "-"), queue_size \($0.queueSize.map(String.init) ?? "-")" } ?? "none")")
        if sink == 42 { print("") } // keeps the reference loops from being optimised away
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    static let rich = try! VirtioFeatures(names: [
        "VERSION_1", "ACCESS_PLATFORM", "ORDER_PLATFORM", "RING_PACKED", "RING_INDIRECT_DESC", "RING_EVENT_IDX", "IN_ORDER", "CSUM", "GUEST_CSUM",
        "HOST_TSO4", "HOST_TSO6", "HOST_ECN", "GUEST_TSO4", "GUEST_TSO6", "GUEST_ECN", "MRG_RXBUF", "STATUS", "CTRL_VQ", "CTRL_RX", "CTRL_VLAN",
        "MQ", "CTRL_MAC_ADDR", "MTU", "MAC", "RSS", "HASH_REPORT", "RSC_EXT", "GUEST_ANNOUNCE", "SPEED_DUPLEX",
    ], deviceType: .network)

    /// A host with one net mgmtdev: the rich set less ~1/16 of its bits, mostly known limits.
    static func randomHost(index: Int, _ generator: inout SplitMix64, canMask: Bool = false) -> CapabilitiesDocument {
        var features = rich
        for bit in rich.bits where bit != 32 && generator.next() % 16 == 0 { features.remove(VirtioFeatures(bit: bit)) }
        let attributes = AttributeAbilities(mac: true, mtu: generator.next() % 10 != 0, maxVQP: true, deviceFeatures: canMask || generator.next() % 50 != 0)
        let limits = DeviceLimits(maxQueuePairs: Int(2 + generator.next() % 63), maxQueueSize: 1 << Int(8 + generator.next() % 8),
                                  maxMTU: generator.next() % 4 == 0 ? nil : Int(1500 + generator.next() % 8000))
        let entry = ClassCapabilities(deviceType: .network, supportedFeatures: features, features: features, limits: limits, attributes: attributes)
        return CapabilitiesDocument(host: "host\(index)", mgmtdevs: [MgmtdevCapabilities(identity: DeviceIdentity(bus: "pci", name: "0000:41:00.2"), maxSupportedVqs: nil,
                                                                                        backend: BackendAbilities(suspend: true, resume: true), classes: [entry])])
    }
}

/// SplitMix64: seeded, so every run measures the same data.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

import Foundation
import Testing
import VirtioModel
@testable import VDPAPolicy

@Suite struct CompatibilityTests {
    static func features(_ names: String...) -> VirtioFeatures { try! VirtioFeatures(names: names, deviceType: .network) }
    static let base = features("VERSION_1", "ACCESS_PLATFORM", "CSUM", "GUEST_CSUM", "MAC", "MTU", "CTRL_VQ", "MQ", "STATUS")
    static let all = AttributeAbilities(mac: true, mtu: true, maxVQP: true, deviceFeatures: true)

    static func destination(_ features: VirtioFeatures, attributes: AttributeAbilities = all, limits: DeviceLimits = DeviceLimits(maxQueuePairs: 8, maxQueueSize: 1024, maxMTU: 9000), quirks: [AppliedQuirk] = []) -> DestinationCapability {
        DestinationCapability(host: "hv2", mgmtdev: "pci/0000:41:00.2", deviceType: .network, features: features, reportedFeatures: features, limits: limits, attributes: attributes,
                              backend: BackendAbilities(suspend: true, resume: true), quirks: quirks)
    }

    static let source = DeviceRequirement(deviceType: .network, features: base, mtu: 1500, queuePairs: 4, queueSize: 256, mac: .pool, needsSuspend: true)

    @Test func identicalNeedsNoMask() {
        let result = CompatibilityCheck.compare(source: Self.source, destination: Self.destination(Self.base))
        #expect(result.answer == .identical)
        #expect(result.reasons.isEmpty && result.notes.isEmpty)
        #expect(result.plan == ProvisioningPlan(mgmtdev: "pci/0000:41:00.2", deviceType: .network, deviceFeatures: nil, mtu: 1500, maxVQP: 4, mac: .pool))
        #expect(result.answer.exitCode == 0)
    }

    @Test func supersetGivesTheMask() {
        let result = CompatibilityCheck.compare(source: Self.source, destination: Self.destination(Self.base.union(Self.features("HOST_TSO4", "RSS"))))
        #expect(result.answer == .superset)
        #expect(result.plan?.deviceFeatures == FeatureList(Self.base, deviceType: .network))
        #expect(result.answer.exitCode == 1)
    }

    @Test func incompatibleGivesEveryReason() {
        let quirk = AppliedQuirk(name: "acme-no-ctrl-vq", file: "acme.conf", line: 3, cleared: FeatureList(Self.features("CTRL_VQ"), deviceType: .network))
        let destination = Self.destination(
            Self.base.subtracting(Self.features("CTRL_VQ", "MQ", "STATUS")).union(Self.features("RING_PACKED")),
            attributes: AttributeAbilities(mac: false, mtu: true, maxVQP: false, deviceFeatures: false),
            limits: DeviceLimits(maxQueuePairs: 2, maxQueueSize: 128, maxMTU: 1400), quirks: [quirk])
        var withBackend = destination
        withBackend.backend.suspend = false
        let result = CompatibilityCheck.compare(source: Self.source, destination: withBackend)
        #expect(result.answer == .incompatible && result.plan == nil && result.answer.exitCode == 2)
        #expect(result.reasons.map(\.code) == [.featuresMissing, .featuresRemovedByQuirk, .cannotMask, .mtuOverLimit, .attributeNotAccepted, .queuePairsOverLimit,
                                               .queueSizeOverLimit, .macPolicyImpossible, .backendMissing])
        #expect(result.reasons[0].features == ["STATUS", "MQ"])
        #expect(result.reasons[1].quirk == "acme-no-ctrl-vq" && result.reasons[1].features == ["CTRL_VQ"])
        #expect(result.reasons[2].features == ["RING_PACKED"])
        #expect(result.reasons[3].requested == 1500 && result.reasons[3].limit == 1400)
        #expect(result.reasons[4].attribute == "max_vqp")
    }

    @Test func unknownAbilitiesAreNotedNotFailed() {
        let destination = Self.destination(Self.base.union(.ringPacked), attributes: AttributeAbilities(), limits: DeviceLimits())
        var noBackend = destination
        noBackend.backend = BackendAbilities()
        let result = CompatibilityCheck.compare(source: Self.source, destination: noBackend)
        #expect(result.answer == .superset)
        #expect(result.notes.count == 8)
        #expect(result.notes.allSatisfy { $0.code == .unverified })
    }

    @Test func quirkSetBitsAreNotRequested() {
        var destination = Self.destination(Self.base.union(.ringPacked))
        destination.reportedFeatures = Self.base.union(.ringPacked).subtracting(.accessPlatform)
        let result = CompatibilityCheck.compare(source: Self.source, destination: destination)
        #expect(result.answer == .superset)
        #expect(result.plan?.deviceFeatures?.names?.contains("ACCESS_PLATFORM") == false)
        #expect(result.notes.map(\.code) == [.quirkProvided])
    }

    @Test func wrongDeviceTypeIsIncompatible() {
        var destination = Self.destination(Self.base)
        destination.deviceType = .block
        #expect(CompatibilityCheck.compare(source: Self.source, destination: destination).reasons.map(\.code) == [.deviceTypeUnsupported])
    }

    static func capsDocument(host: String = "hv1") -> CapabilitiesDocument {
        let quirks = QuirkDatabase(quirks: QuirkParser.parse(text: "[quirk no-announce]\nmatch.driver = mlx5_core\nmatch.class = net\naction = clear GUEST_ANNOUNCE\naction = cap queue_pairs 4\n", fileName: "q.conf").quirks)
        let mlx = MgmtdevCapabilities.make(
            identity: DeviceIdentity(bus: "pci", name: "0000:41:00.2", driver: "mlx5_core", pciVendor: 0x15b3, pciDevice: 0x101e),
            classes: [.network], supportedFeatures: base.union(features("GUEST_ANNOUNCE")), maxSupportedVqs: 33, maxQueueSize: 1024,
            attributes: all, backend: BackendAbilities(suspend: true, resume: true), quirks: quirks)
        let sim = MgmtdevCapabilities.make(identity: DeviceIdentity(bus: nil, name: "vdpasim_blk"), classes: [.block], supportedFeatures: [.version1, .accessPlatform], maxSupportedVqs: 1)
        return CapabilitiesDocument(host: host, kernelRelease: "6.12.0", vdpadVersion: "0.1.0", generatedAt: "2026-11-22T10:00:00Z", mgmtdevs: [mlx, sim])
    }

    @Test func capabilitiesDocumentCarriesQuirksAndRoundTrips() throws {
        let document = Self.capsDocument()
        let net = try #require(document.mgmtdevs[0].capabilities(for: .network))
        #expect(net.features == Self.base)
        #expect(net.limits == DeviceLimits(maxQueuePairs: 4, maxQueueSize: 1024))
        #expect(net.quirks.map(\.name) == ["no-announce"])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(document)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains(#""schema":"vdpad.caps\/v1""#) || text.contains(#""schema":"vdpad.caps/v1""#))
        #expect(text.contains(#""class":"net""#))
        #expect(text.contains(#""cleared":{"hex":"0x200000","names":["GUEST_ANNOUNCE"]}"#))
        #expect(try JSONDecoder().decode(CapabilitiesDocument.self, from: data) == document)
    }

    @Test func compareAgainstADocumentOrdersBestFirst() {
        let results = CompatibilityCheck.compare(source: Self.source, document: Self.capsDocument())
        #expect(results.map(\.answer) == [.identical, .incompatible])
        #expect(results[1].reasons.map(\.code) == [.deviceTypeUnsupported])
        let tooMany = DeviceRequirement(deviceType: .network, features: Self.base, queuePairs: 8)
        let quirked = CompatibilityCheck.compare(source: tooMany, document: Self.capsDocument())[0]
        #expect(quirked.reasons.map(\.code) == [.queuePairsOverLimit])
    }

    @Test func resultEncodesWithSnakeCase() throws {
        let result = CompatibilityCheck.compare(source: Self.source, destination: Self.destination(Self.base.union(.ringPacked)))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let text = String(decoding: try encoder.encode(result), as: UTF8.self)
        #expect(text.contains(#""answer":"superset""#))
        #expect(text.contains(#""device_features":{"hex":"0x30043002b""#))
        #expect(text.contains(#""max_vqp":4"#))
        #expect(try JSONDecoder().decode(CompatibilityResult.self, from: Data(text.utf8)) == result)
    }

    @Test func baselineOfTwoHosts() throws {
        var other = Self.capsDocument(host: "hv2")
        other.mgmtdevs[0].classes[0].features.subtract(Self.features("CSUM"))
        other.mgmtdevs[0].classes[0].features.formUnion(Self.features("HOST_TSO4", "RING_PACKED"))
        other.mgmtdevs[0].classes[0].limits.maxMTU = 9000
        let result = Baseline.compute(over: [Self.capsDocument(), other], deviceType: .network, name: "fleet")
        let profile = try #require(result.profile)
        #expect(profile.features == Self.base.subtracting(Self.features("CSUM")))
        #expect(profile.queuePairs == 4 && profile.mtu == 9000 && profile.queueSize == 1024 && profile.mac == .pool)
        #expect(profile.errors.isEmpty)
        #expect(result.sources.map(\.mgmtdev) == ["pci/0000:41:00.2", "pci/0000:41:00.2"])
        #expect(result.notes == ["max_mtu: not reported by hv1; their limit is not verified"])
        for document in [Self.capsDocument(), other] {
            let answer = CompatibilityCheck.compare(source: DeviceRequirement(profile: profile), document: document)[0].answer
            #expect(answer != .incompatible)
        }
    }

    @Test func baselineRepairsOrphanedBits() throws {
        var other = Self.capsDocument(host: "hv2")
        other.mgmtdevs[0].classes[0].features.subtract(Self.features("CSUM"))
        var first = Self.capsDocument()
        first.mgmtdevs[0].classes[0].features.formUnion(Self.features("HOST_TSO4"))
        other.mgmtdevs[0].classes[0].features.formUnion(Self.features("HOST_TSO4"))
        let result = Baseline.compute(over: [first, other], deviceType: .network)
        #expect(result.removed.map(\.feature) == ["HOST_TSO4"])
        #expect(result.profile?.features.contains(VirtioFeatures.Net.checksum) == false)
    }

    @Test func baselineWithoutACommonMgmtdevGivesReasons() {
        let result = Baseline.compute(over: [Self.capsDocument(), CapabilitiesDocument(host: "empty", mgmtdevs: [])], deviceType: .network)
        #expect(result.profile == nil)
        #expect(result.reasons == ["empty: no management device creates network devices"])
        let chosen = Baseline.compute(over: [Self.capsDocument()], deviceType: .network, choices: ["hv1": "vdpasim_blk"])
        #expect(chosen.reasons == ["hv1: vdpasim_blk does not create network devices"])
        #expect(Baseline.compute(over: [], deviceType: .block).reasons == ["no capabilities documents given"])
    }

    @Test func baselineWithHostsThatCannotMask() {
        var a = Self.capsDocument(host: "a")
        a.mgmtdevs[0].classes[0].attributes.deviceFeatures = false
        var b = Self.capsDocument(host: "b")
        b.mgmtdevs[0].classes[0].features.insert(.ringPacked)
        let ok = Baseline.compute(over: [a, b], deviceType: .network)
        #expect(ok.profile?.features == Self.base)
        b.mgmtdevs[0].classes[0].attributes.deviceFeatures = false
        let none = Baseline.compute(over: [a, b], deviceType: .network)
        #expect(none.profile == nil)
        #expect(none.reasons.first?.contains("only on b: RING_PACKED") == true)
    }
}

/// Documents from other hosts are written back as they are read: a class vdpad has no name
/// for (a virtio device ID it does not know) stays a number, never "< unknown class >".
@Suite struct DeviceTypeEncodingTests {
    @Test func anUnknownClassRoundTripsAsItsNumber() throws {
        let text = #"{"schema":"vdpad.caps/v1","host":"h","mgmtdevs":[{"mgmtdev":{"name":"x"},"backend":{},"classes":[{"class":65535,"features":{"hex":"0x100000000"}}]}]}"#
        let document = try JSONDecoder().decode(CapabilitiesDocument.self, from: Data(text.utf8))
        let written = try JSONEncoder().encode(document)
        #expect(String(decoding: written, as: UTF8.self).contains(#""class":65535"#))
        #expect(try JSONDecoder().decode(CapabilitiesDocument.self, from: written) == document)
        // Known classes keep their names.
        let net = ClassCapabilities(deviceType: .network, supportedFeatures: nil, features: .version1)
        #expect(String(decoding: try JSONEncoder().encode(net), as: UTF8.self).contains(#""class":"net""#))
        let profile = Profile(name: "p", deviceType: VirtioDeviceType(rawValue: 99), features: .version1)
        #expect(try JSONDecoder().decode(Profile.self, from: try JSONEncoder().encode(profile)).deviceType.rawValue == 99)
    }
}

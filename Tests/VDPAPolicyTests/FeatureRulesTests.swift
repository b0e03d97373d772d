import Testing
import VirtioModel
@testable import VDPAPolicy

@Suite struct FeatureRulesTests {
    let net = VirtioDeviceType.network
    func set(_ names: String...) -> VirtioFeatures { try! VirtioFeatures(names: names, deviceType: .network) }

    @Test func violationsNameTheBitAndWhatItNeeds() {
        let violations = FeatureRules.violations(of: set("VERSION_1", "ACCESS_PLATFORM", "GUEST_TSO4", "HOST_ECN", "MQ"), deviceType: net)
        let text = violations.map(\.description)
        #expect(text.contains("GUEST_TSO4 requires GUEST_CSUM (virtio 1.4 §5.1.3.1)"))
        #expect(text.contains("HOST_ECN requires HOST_TSO4 or HOST_TSO6 (virtio 1.4 §5.1.3.1)"))
        #expect(text.contains("MQ requires CTRL_VQ (virtio 1.4 §5.1.3.1)"))
        #expect(violations.count == 3)
        #expect(violations.first { $0.feature == "MQ" }?.rule == "net.mq.ctrl-vq")
    }

    @Test func everySpecNetRuleFires() {
        // Each rule's bit alone (with VERSION_1 and ACCESS_PLATFORM) breaks exactly its rules.
        for rule in FeatureRules.network where rule.severity == .required {
            let features = VirtioFeatures.version1.union(.accessPlatform).union(VirtioFeatures(bit: rule.feature!))
            let ids = FeatureRules.violations(of: features, deviceType: net).map(\.rule)
            #expect(ids.contains(rule.id), "\(rule.id)")
        }
    }

    @Test func version1IsRequiredAndAccessPlatformRecommended() {
        let violations = FeatureRules.violations(of: set("CSUM"), deviceType: net)
        #expect(violations.map(\.rule) == ["version-1", "access-platform"])
        #expect(violations[0].severity == .required && violations[1].severity == .recommended)
        #expect(violations[0].description == "VERSION_1 is required (virtio 1.4 §6.2 (Reserved Feature Bits, device requirements))")
        #expect(!FeatureRules.isValid(set("CSUM"), deviceType: net))
        #expect(FeatureRules.isValid(set("VERSION_1", "CSUM"), deviceType: net))
        #expect(FeatureRules.isValid(.version1, deviceType: .block))
    }

    @Test func validSetsHaveNoViolations() {
        let mlx = set("VERSION_1", "ACCESS_PLATFORM", "ORDER_PLATFORM", "CSUM", "GUEST_CSUM", "HOST_TSO4", "HOST_TSO6", "HOST_ECN", "GUEST_TSO4", "GUEST_TSO6", "GUEST_ECN",
                      "MRG_RXBUF", "STATUS", "CTRL_VQ", "CTRL_RX", "CTRL_VLAN", "MQ", "CTRL_MAC_ADDR", "MTU", "MAC", "RSS", "HASH_REPORT", "RING_PACKED")
        #expect(FeatureRules.violations(of: mlx, deviceType: net).isEmpty)
    }

    @Test func repairRemovesOrphansTransitively() {
        // Without CSUM, HOST_TSO4 goes, and then HOST_ECN and RSC_EXT lose their only support.
        let repair = FeatureRules.repaired(set("VERSION_1", "HOST_TSO4", "HOST_ECN", "RSC_EXT", "CTRL_VQ", "MQ"), deviceType: net)
        #expect(repair.features == set("VERSION_1", "CTRL_VQ", "MQ"))
        #expect(Set(repair.removed.compactMap(\.feature)) == ["HOST_TSO4", "HOST_ECN", "RSC_EXT"])
        #expect(repair.unmet.isEmpty)
        #expect(FeatureRules.repaired(set("CSUM"), deviceType: net).unmet.map(\.rule) == ["version-1"])
    }

    @Test func repairedSetsAreAlwaysValidExceptVersion1() {
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<2000 {
            let features = VirtioFeatures(rawValue: generator.next()).union(.version1)
            let repair = FeatureRules.repaired(features, deviceType: net)
            #expect(FeatureRules.isValid(repair.features, deviceType: net))
            #expect(repair.features.isSubset(of: features))
            #expect(repair.features.rawValue.nonzeroBitCount + repair.removed.count == features.rawValue.nonzeroBitCount)
        }
    }
}

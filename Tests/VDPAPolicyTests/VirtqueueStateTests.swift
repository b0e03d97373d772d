import Foundation
import Testing
import VDPAPolicy
import VirtioModel
import Virtqueue

@Suite struct VirtqueueStateDocumentTests {
    static let net: VirtioFeatures = [.version1, .accessPlatform, .Net.mac, .Net.status, .Net.mtu]

    static func document(queues: [VirtqueueStateDocument.QueueStateEntry] = [
        .init(index: 0, size: 256, layout: .split, base: 17, enabled: true), .init(index: 1, size: 256, layout: .split, base: 9, enabled: true),
    ], features: VirtioFeatures = net) -> VirtqueueStateDocument {
        VirtqueueStateDocument(
            name: "s1", host: "h1", takenAt: "2026-11-22T00:00:00Z", vdpadVersion: "0.1.0",
            source: .init(device: "d0", mgmtdev: "vdpasim_net", port: "vm"), deviceType: .network,
            deviceFeatures: features, negotiatedFeatures: features, backendFeatures: ["IOTLB_MSG_V2", "SUSPEND"], status: ["DRIVER_OK"],
            config: [2, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0xdc, 0x05], queueCount: 3, queues: queues,
            control: .init(netConfig: [2, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0xdc, 0x05], features: features))
    }

    static func target(features: VirtioFeatures = net, suspend: Bool = true, queueCount: Int = 3, maxSize: Int = 256, mtu: Int? = 1500) -> RestoreTarget {
        RestoreTarget(device: "d1", deviceType: .network, offeredFeatures: features, backend: BackendAbilities(suspend: suspend, resume: suspend),
                      queueCount: queueCount, maximumQueueSize: maxSize, control: .init(mac: "02:00:00:00:00:09", mtu: mtu))
    }

    @Test func roundTripsThroughJSONWithItsSchema() throws {
        let document = Self.document()
        let data = try JSONEncoder().encode(document)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains(#""schema":"vdpad.vqstate\/v1""#) || text.contains(#""schema":"vdpad.vqstate/v1""#))
        #expect(try JSONDecoder().decode(VirtqueueStateDocument.self, from: data) == document)
        #expect(document.validate().isEmpty)
        #expect(document.control == .init(mac: "02:00:00:00:00:01", mtu: 1500, maxVirtqueuePairs: nil, linkUp: true))
        #expect(document.configBytes?.count == 12)
    }

    @Test func unknownKeysAndOtherSchemasAreRefused() throws {
        var object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(Self.document())) as? [String: Any])
        object["extra"] = 1
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(VirtqueueStateDocument.self, from: JSONSerialization.data(withJSONObject: object)) }
        object["extra"] = nil
        object["schema"] = "vdpad.vqstate/v2"
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(VirtqueueStateDocument.self, from: JSONSerialization.data(withJSONObject: object)) }
    }

    /// vhost-vdpa's packed encoding: each 16-bit half is a 15-bit index and its wrap counter in bit 15.
    @Test func packedBasesDecodeIntoIndexesAndWrapCounters() {
        let entry = VirtqueueStateDocument.QueueStateEntry(index: 0, size: 256, layout: .packed, base: 0x0005_8003, enabled: true)
        #expect(entry.availableIndex == 3 && entry.availableWrapCounter == true)
        #expect(entry.usedIndex == 5 && entry.usedWrapCounter == false)
        let split = VirtqueueStateDocument.QueueStateEntry(index: 0, size: 256, layout: .split, base: 0xffff, enabled: true)
        #expect(split.availableIndex == 0xffff && split.availableWrapCounter == nil)
    }

    @Test func validationNamesEveryProblem() {
        var document = Self.document()
        document.queues.append(.init(index: 7, size: 100_000, layout: .split, base: 0x1_0000, enabled: true))
        document.queues[0].availableIndex = 99
        document.config = "zz"
        let problems = document.validate()
        #expect(problems.count >= 5, "\(problems)")
        #expect(problems.contains { $0.contains("outside queue_count") })
        #expect(problems.contains { $0.contains("16 bits") })
        #expect(problems.contains { $0.contains("do not match base") })
        #expect(problems.contains { $0.contains("config") })
    }

    @Test func aCompatibleTargetHasNoRefusals() {
        #expect(Self.document().restoreRefusals(onto: Self.target()).isEmpty)
        // More features offered is fine: the driver's set is what counts.
        #expect(Self.document().restoreRefusals(onto: Self.target(features: Self.net.union(.Net.controlVirtqueue))).isEmpty)
    }

    @Test func everyReasonAtOnce() {
        let refusals = Self.document().restoreRefusals(onto: Self.target(features: [.version1, .accessPlatform], suspend: false, queueCount: 5, maxSize: 128, mtu: 9000))
        let codes = refusals.map(\.code)
        #expect(Set(codes) == [.featuresMissing, .queueCountMismatch, .queueSizeOverLimit, .backendMissing, .configMismatch], "\(refusals)")
        #expect(refusals.first { $0.code == .featuresMissing }?.features == ["MAC", "STATUS", "MTU"] ||
                Set(refusals.first { $0.code == .featuresMissing }?.features ?? []) == ["MAC", "STATUS", "MTU"])
        var block = Self.target()
        block.deviceType = .block
        #expect(Self.document().restoreRefusals(onto: block).map(\.code) == [.deviceTypeUnsupported])
    }
}

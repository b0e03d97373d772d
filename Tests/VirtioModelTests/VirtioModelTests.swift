import Testing
import VirtioModel

@Suite struct VirtioFeaturesTests {
    @Test func namesFollowIproute2ForTheSimulatorsFeatures() {
        let features = VirtioFeatures(rawValue: 0x3_0883_0028)
        #expect(features.names(for: .network) == ["MTU", "MAC", "STATUS", "CTRL_VQ", "CTRL_MAC_ADDR", "ANY_LAYOUT", "VERSION_1", "ACCESS_PLATFORM"])
    }

    @Test func unknownBitsAreNamedByNumber() {
        #expect(VirtioFeatures(bit: 4).names(for: .network) == ["bit_4"])
        #expect(VirtioFeatures(bit: 3).names(for: .block) == ["bit_3"])
        #expect(VirtioFeatures(bit: 3).names(for: nil) == ["bit_3"])
    }

    @Test func deviceIndependentBitsHaveTheSameNameForEveryType() {
        for type in [VirtioDeviceType.network, .block, .console] {
            #expect(VirtioFeatures.ringPacked.names(for: type) == ["RING_PACKED"])
        }
    }

    @Test func blockBitsHaveBlockNames() {
        #expect((VirtioFeatures.Block.flush.union(VirtioFeatures.Block.readOnly)).names(for: .block) == ["RO", "FLUSH"])
    }

    @Test(arguments: ["0x300000028", "300000028", "0X300000028"])
    func hexParsing(_ text: String) {
        #expect(VirtioFeatures(hex: text)?.rawValue == 0x3_0000_0028)
    }

    @Test(arguments: ["", "0x", "xyz", "0x10000000000000000", "-1"])
    func badHex(_ text: String) {
        #expect(VirtioFeatures(hex: text) == nil)
    }

    @Test func namesRoundTrip() throws {
        let features = VirtioFeatures(rawValue: 0xF_C0FF_FFEF)
        #expect(try VirtioFeatures(names: features.names(for: .network), deviceType: .network) == features)
        #expect(try VirtioFeatures(names: ["VIRTIO_NET_F_MQ", "VIRTIO_F_VERSION_1", "VIRTIO_RING_F_INDIRECT_DESC"], deviceType: .network)
                == VirtioFeatures.Net.multiqueue.union(.version1).union(.ringIndirectDescriptors))
        #expect(throws: FeatureNameError.self) { try VirtioFeatures(names: ["WARP_DRIVE"], deviceType: .network) }
    }

    @Test func catalogueHasNoDuplicateBitsOrNames() {
        for type in [VirtioDeviceType.network, .block] {
            let entries = FeatureCatalogue.entries(for: type)
            #expect(Set(entries.map(\.bit)).count == entries.count)
            #expect(Set(entries.map(\.name)).count == entries.count)
        }
    }

    @Test func codableAsHex() throws {
        let encoded = try JSONEncoderLite.encode(VirtioFeatures(rawValue: 0xFFFF_FFFF_FFFF_FFFF))
        #expect(encoded == "\"0xffffffffffffffff\"")
    }
}

/// Enough JSON for a single-value Codable check without Foundation in this target.
enum JSONEncoderLite {
    static func encode(_ features: VirtioFeatures) throws -> String { "\"\(features.hexString)\"" }
}

@Suite struct MACAddressTests {
    @Test func parsesAndPrintsLikeIproute2() {
        #expect(MACAddress("00:11:22:33:44:5F")?.description == "00:11:22:33:44:5f")
        #expect(MACAddress("0:1:2:3:4:5")?.description == "00:01:02:03:04:05")
    }

    @Test(arguments: ["", "00:11:22:33:44", "00:11:22:33:44:55:66", "00:11:22:33:44:zz", "001:11:22:33:44:55"])
    func rejects(_ text: String) {
        #expect(MACAddress(text) == nil)
    }

    @Test func unicastCheckAsTheKernelDoes() {
        #expect(MACAddress("01:00:5e:00:00:01")?.isValidUnicast == false)
        #expect(MACAddress("00:00:00:00:00:00")?.isValidUnicast == false)
        #expect(MACAddress("02:00:00:00:00:01")?.isValidUnicast == true)
    }
}

@Suite struct DeviceTypeAndStatusTests {
    @Test func classBitmap() {
        #expect(VirtioDeviceType.classes(inBitmap: 0b110) == [.network, .block])
    }

    @Test func statusNames() {
        #expect(DeviceStatus(rawValue: 0x0f).description == "ACKNOWLEDGE|DRIVER|DRIVER_OK|FEATURES_OK")
        #expect(DeviceStatus().description == "RESET")
    }
}

import CVhostUAPI
import Testing
@testable import VDPAVhost

@Suite struct VhostMessageTests {
    @Test func iotlbMessageHasTheKernelsSizeAndLayout() {
        #expect(IOTLBMessage.encodedSize == Int(CVhost_sizeof_msg_v2))
        let bytes = IOTLBMessage.update(iova: IOVA(0x1122_3344_5566_7788), size: 0x1000, userAddress: 0xdead_beef_0000, permission: .readWrite, asid: 7).encoded
        #expect(bytes.count == 72)
        #expect(Array(bytes[0..<4]) == [2, 0, 0, 0])  // VHOST_IOTLB_MSG_V2
        #expect(Array(bytes[4..<8]) == [7, 0, 0, 0])  // asid
        #expect(Array(bytes[8..<16]) == [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])  // iova, little-endian
        #expect(Array(bytes[16..<24]) == [0, 0x10, 0, 0, 0, 0, 0, 0])  // size
        #expect(Array(bytes[24..<32]) == [0, 0, 0xef, 0xbe, 0xad, 0xde, 0, 0])  // uaddr
        #expect(bytes[32] == 3)  // perm RW
        #expect(bytes[33] == 2)  // VHOST_IOTLB_UPDATE
        #expect(bytes[34...].allSatisfy { $0 == 0 })
    }

    @Test func otherMessageTypes() {
        #expect(IOTLBMessage.invalidate(iova: IOVA(0x2000), size: 0x1000).encoded[33] == 3)
        #expect(IOTLBMessage.batchBegin().encoded[33] == 5)
        #expect(IOTLBMessage.batchEnd().encoded[33] == 6)
    }

    @Test func backendFeatureNames() {
        let features: BackendFeatures = [.iotlbMessageV2, .suspend, .resume, BackendFeatures(rawValue: 1 << 40)]
        #expect(features.names == ["IOTLB_MSG_V2", "SUSPEND", "RESUME", "bit_40"])
    }

    @Test func vhostStructSizesMatchTheSwiftTuplesUsed() {
        #expect(MemoryLayout<(UInt32, UInt32)>.size == Int(CVhost_sizeof_vring_state))
        #expect(MemoryLayout<(UInt32, Int32)>.size == Int(CVhost_sizeof_vring_file))
        #expect(MemoryLayout<(UInt32, UInt32, UInt64, UInt64, UInt64, UInt64)>.size == Int(CVhost_sizeof_vring_addr))
        #expect(MemoryLayout<(UInt64, UInt64)>.size == Int(CVhost_sizeof_vdpa_iova_range))
        #expect(Int(CVhost_sizeof_vdpa_config_header) == 8)
    }
}

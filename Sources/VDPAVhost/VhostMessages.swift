/// The IOTLB messages a vhost-vdpa device takes through `write()`
/// (`struct vhost_msg_v2`, include/uapi/linux/vhost_types.h; 72 bytes):
/// `u32 type (VHOST_IOTLB_MSG_V2 = 2); u32 asid; union { struct vhost_iotlb_msg
/// { u64 iova; u64 size; u64 uaddr; u8 perm; u8 type; } iotlb; u8 padding[64]; }`.
/// Encoded by hand, little-endian, so the layout is explicit (cross-checked against
/// `sizeof(struct vhost_msg_v2)` by a test).
public enum IOTLBMessage: Hashable, Sendable {
    /// VHOST_IOTLB_UPDATE (2): map `[iova, iova+size)` to process address `userAddress`.
    case update(iova: IOVA, size: UInt64, userAddress: UInt64, permission: IOTLBPermission, asid: UInt32 = 0)
    /// VHOST_IOTLB_INVALIDATE (3): unmap `[iova, iova+size)`.
    case invalidate(iova: IOVA, size: UInt64, asid: UInt32 = 0)
    /// VHOST_IOTLB_BATCH_BEGIN (5) / BATCH_END (6): group updates (IOTLB_BATCH).
    case batchBegin(asid: UInt32 = 0)
    case batchEnd(asid: UInt32 = 0)

    public static let encodedSize = 72
    static let messageTypeV2: UInt32 = 2

    public var encoded: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.encodedSize)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { raw in
                for (index, byte) in raw.enumerated() { bytes[offset + index] = byte }
            }
        }
        let (asid, iova, size, address, permission, type): (UInt32, UInt64, UInt64, UInt64, UInt8, UInt8) = switch self {
        case .update(let iova, let size, let userAddress, let permission, let asid):
            (asid, iova.rawValue, size, userAddress, permission.rawValue, 2)
        case .invalidate(let iova, let size, let asid): (asid, iova.rawValue, size, 0, 0, 3)
        case .batchBegin(let asid): (asid, 0, 0, 0, 0, 5)
        case .batchEnd(let asid): (asid, 0, 0, 0, 0, 6)
        }
        put(Self.messageTypeV2, at: 0)
        put(asid, at: 4)
        put(iova, at: 8)
        put(size, at: 16)
        put(address, at: 24)
        bytes[32] = permission
        bytes[33] = type
        return bytes
    }
}

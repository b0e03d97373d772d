import VDPASystem
import VirtioModel

/// A virtqueue index on a vhost device (`vhost_vring_state.index`), not to be
/// confused with ring positions or descriptor ids.
public struct QueueIndex: Hashable, Sendable, Codable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public var rawValue: UInt32
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt32) { rawValue = value }
    public var description: String { "vq\(rawValue)" }
}

/// An I/O virtual address: what the device uses to reach driver memory through its
/// IOTLB (`vhost_iotlb_msg.iova`), as opposed to the process's own addresses.
public struct IOVA: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: IOVA, b: IOVA) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "0x" + String(rawValue, radix: 16) }
}

/// vhost backend feature bits (`VHOST_BACKEND_F_*`, include/uapi/linux/vhost_types.h):
/// bit numbers of the u64 that VHOST_GET/SET_BACKEND_FEATURES carry.
public struct BackendFeatures: OptionSet, Hashable, Sendable, Codable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// VHOST_BACKEND_F_IOTLB_MSG_V2 (bit 1): IOTLB messages are `struct vhost_msg_v2`.
    public static let iotlbMessageV2 = BackendFeatures(rawValue: 1 << 1)
    /// VHOST_BACKEND_F_IOTLB_BATCH (bit 2): BATCH_BEGIN / BATCH_END hints.
    public static let iotlbBatch = BackendFeatures(rawValue: 1 << 2)
    /// VHOST_BACKEND_F_IOTLB_ASID (bit 3): the asid field is honoured.
    public static let iotlbASID = BackendFeatures(rawValue: 1 << 3)
    /// VHOST_BACKEND_F_SUSPEND (bit 4): VHOST_VDPA_SUSPEND stops the device at a clean point.
    public static let suspend = BackendFeatures(rawValue: 1 << 4)
    /// VHOST_BACKEND_F_RESUME (bit 5): VHOST_VDPA_RESUME continues a suspended device.
    public static let resume = BackendFeatures(rawValue: 1 << 5)
    /// VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK (bit 6).
    public static let enableAfterDriverOK = BackendFeatures(rawValue: 1 << 6)
    /// VHOST_BACKEND_F_DESC_ASID (bit 7).
    public static let descriptorASID = BackendFeatures(rawValue: 1 << 7)
    /// VHOST_BACKEND_F_IOTLB_PERSIST (bit 8): mappings survive a device reset.
    public static let iotlbPersist = BackendFeatures(rawValue: 1 << 8)

    public static let named: [(BackendFeatures, String)] = [
        (.iotlbMessageV2, "IOTLB_MSG_V2"), (.iotlbBatch, "IOTLB_BATCH"), (.iotlbASID, "IOTLB_ASID"),
        (.suspend, "SUSPEND"), (.resume, "RESUME"), (.enableAfterDriverOK, "ENABLE_AFTER_DRIVER_OK"),
        (.descriptorASID, "DESC_ASID"), (.iotlbPersist, "IOTLB_PERSIST"),
    ]

    /// Names of the set bits ("bit_N" for unknown ones).
    public var names: [String] {
        (0..<64).compactMap { bit -> String? in
            let mask = UInt64(1) << UInt64(bit)
            guard rawValue & mask != 0 else { return nil }
            return Self.named.first { $0.0.rawValue == mask }?.1 ?? "bit_\(bit)"
        }
    }
}

/// Access a device gets to an IOTLB mapping (`vhost_iotlb_msg.perm`).
public enum IOTLBPermission: UInt8, Sendable, Codable {
    case readOnly = 1, writeOnly = 2, readWrite = 3
}

/// `struct vhost_vdpa_iova_range`: the IOVAs the device can map, inclusive.
public struct IOVARange: Hashable, Sendable, Codable {
    public var first: IOVA
    public var last: IOVA
    public init(first: IOVA, last: IOVA) {
        self.first = first
        self.last = last
    }
}

/// Guest-visible ring addresses of one virtqueue (`struct vhost_vring_addr`), as IOVAs.
public struct VringAddresses: Hashable, Sendable, Codable {
    public var descriptorTable: IOVA
    public var driverArea: IOVA
    public var deviceArea: IOVA
    public init(descriptorTable: IOVA, driverArea: IOVA, deviceArea: IOVA) {
        self.descriptorTable = descriptorTable
        self.driverArea = driverArea
        self.deviceArea = deviceArea
    }
}

/// Why a vhost-vdpa operation failed: the step (the ioctl or message), the device
/// path and the kernel's errno.
public struct VhostError: Error, Hashable, Sendable, CustomStringConvertible {
    public var step: String
    public var device: String
    public var errno: Int32
    public var reason: String

    public init(step: String, device: String, errno: Int32, reason: String) {
        self.step = step
        self.device = device
        self.errno = errno
        self.reason = reason
    }

    public var description: String { "\(device): \(step): \(reason)" }

    /// `error` from a system call made for `step`: the kernel's errno and its name when it is a
    /// ``SystemError``, else errno 0 and the error's text.
    public init(step: String, device: String, failure error: any Error) {
        if let system = error as? SystemError {
            self.init(step: step, device: device, errno: system.errno, reason: "\(system.reason) (\(system.errnoName))")
        } else {
            self.init(step: step, device: device, errno: 0, reason: "\(error)")
        }
    }
}

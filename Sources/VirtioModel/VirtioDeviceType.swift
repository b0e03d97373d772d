/// A virtio device type: the device ID of virtio 1.x §5 ("Device Types").
///
/// vDPA reports it as `VDPA_ATTR_DEV_ID`, and a management device's supported
/// classes are a bitmap indexed by it (`VDPA_ATTR_MGMTDEV_SUPPORTED_CLASSES`).
public struct VirtioDeviceType: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let network = VirtioDeviceType(rawValue: 1)
    public static let block = VirtioDeviceType(rawValue: 2)
    public static let console = VirtioDeviceType(rawValue: 3)
    public static let entropy = VirtioDeviceType(rawValue: 4)
    public static let scsi = VirtioDeviceType(rawValue: 8)
    public static let filesystem = VirtioDeviceType(rawValue: 26)

    /// The class name iproute2's `vdpa mgmtdev show` uses ("net", "block").
    public var className: String {
        switch self {
        case .network: "net"
        case .block: "block"
        default: "< unknown class >"
        }
    }

    /// The type name iproute2's `vdpa dev show` uses ("network", "block").
    public var typeName: String {
        switch self {
        case .network: "network"
        case .block: "block"
        default: "<unknown type>"
        }
    }

    /// Parses a class name ("net", "block") or a type name ("network").
    public init?(name: String) {
        switch name {
        case "net", "network": self = .network
        case "block", "blk": self = .block
        default: return nil
        }
    }

    public var description: String { typeName }

    /// The device types whose bits are set in a `VDPA_ATTR_MGMTDEV_SUPPORTED_CLASSES` bitmap.
    public static func classes(inBitmap bitmap: UInt64) -> [VirtioDeviceType] {
        (1..<64).compactMap { bit in bitmap & (1 << UInt64(bit)) != 0 ? VirtioDeviceType(rawValue: UInt32(bit)) : nil }
    }
}

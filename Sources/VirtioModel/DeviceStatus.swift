/// The device status field of virtio 1.x §2.1 ("Device Status Field"), as
/// `VHOST_VDPA_GET_STATUS` / `VHOST_VDPA_SET_STATUS` carry it.
public struct DeviceStatus: OptionSet, Hashable, Sendable, Codable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let acknowledge = DeviceStatus(rawValue: 1)
    public static let driver = DeviceStatus(rawValue: 2)
    public static let driverOK = DeviceStatus(rawValue: 4)
    public static let featuresOK = DeviceStatus(rawValue: 8)
    /// Virtio 1.4 §2.1.3 "Device Suspend"; only with VIRTIO_F_SUSPEND.
    public static let suspend = DeviceStatus(rawValue: 16)
    public static let deviceNeedsReset = DeviceStatus(rawValue: 64)
    public static let failed = DeviceStatus(rawValue: 128)

    private static let names: [(DeviceStatus, String)] = [
        (.acknowledge, "ACKNOWLEDGE"), (.driver, "DRIVER"), (.driverOK, "DRIVER_OK"),
        (.featuresOK, "FEATURES_OK"), (.suspend, "SUSPEND"), (.deviceNeedsReset, "DEVICE_NEEDS_RESET"),
        (.failed, "FAILED"),
    ]

    /// The spec names of the set bits, lowest first.
    public var names: [String] { Self.names.filter { contains($0.0) }.map(\.1) }

    public var description: String { names.isEmpty ? "RESET" : names.joined(separator: "|") }
}

/// The virtio-net `status` config field (virtio 1.x §5.1.4): VIRTIO_NET_S_*.
public struct NetLinkStatus: OptionSet, Hashable, Sendable, Codable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let linkUp = NetLinkStatus(rawValue: 1)
    public static let announce = NetLinkStatus(rawValue: 2)
}

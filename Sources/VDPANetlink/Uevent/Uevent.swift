/// A kernel uevent as broadcast on NETLINK_KOBJECT_UEVENT: "ACTION@DEVPATH\0KEY=VALUE\0…".
public struct Uevent: Hashable, Sendable {
    public var action: String
    public var devicePath: String
    public var properties: [String: String]

    public var subsystem: String? { properties["SUBSYSTEM"] }

    /// Parses one datagram from the kernel group; nil for anything else (udev's
    /// "libudev" messages, truncated or non-UTF-8 data). Input is untrusted.
    public init?(datagram bytes: [UInt8]) {
        guard bytes.count <= 1 << 16 else { return nil }
        let fields = bytes.split(separator: 0, omittingEmptySubsequences: true)
        guard let header = fields.first, let headerText = String(validating: header, as: UTF8.self) else { return nil }
        guard let at = headerText.firstIndex(of: "@") else { return nil }
        action = String(headerText[..<at])
        devicePath = String(headerText[headerText.index(after: at)...])
        guard !action.isEmpty, devicePath.hasPrefix("/") else { return nil }
        var properties: [String: String] = [:]
        for field in fields.dropFirst() {
            guard let text = String(validating: field, as: UTF8.self), let equals = text.firstIndex(of: "=") else { continue }
            properties[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        self.properties = properties
    }

    /// The vdpa device this uevent is about, when it names one: the devpath
    /// component of a `vdpa` subsystem device, or the parent of a vhost-vdpa
    /// char device / virtio device created on a vdpa device.
    public var vdpaDeviceName: String? {
        let components = devicePath.split(separator: "/").map(String.init)
        switch subsystem {
        case "vdpa": return components.last
        case "vhost-vdpa", "virtio":
            return components.count >= 2 ? components[components.count - 2] : nil
        default: return nil
        }
    }

    /// Whether vdpad cares: changes of vdpa devices and of what binding them creates
    /// (vhost-vdpa char devices, virtio devices). Extra virtio events only cost a resync.
    public var concernsVDPABus: Bool {
        guard let subsystem else { return false }
        return subsystem == "vdpa" || subsystem == "vhost-vdpa" || subsystem == "virtio"
    }
}

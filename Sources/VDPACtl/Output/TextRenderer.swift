import VDPARPC
import VirtioModel

/// Each command's output as text, laid out as iproute2's `vdpa` prints it (the `print_*`
/// calls of vdpa/vdpa.c in text mode): `NAME: key value …`, lists on an indented line of
/// their own. vdpad's extras (driver binding, managed) go on an extra line after iproute2's.
public enum TextRenderer {
    /// ```
    /// vdpasim_net: 
    ///   supported_classes net
    ///   max_supported_vqs 3
    ///   dev_features MTU MAC …
    /// ```
    public static func mgmtdevs(_ mgmtdevs: [ManagementDeviceInfo]) -> String {
        mgmtdevs.map { mgmtdev in
            var text = "\(mgmtdev.handle): "
            text += "\n  supported_classes" + mgmtdev.supportedClasses.map { " " + $0 }.joined()
            if let maxSupportedVqs = mgmtdev.maxSupportedVqs { text += "\n  max_supported_vqs \(maxSupportedVqs)" }
            if let features = mgmtdev.supportedFeatures {
                let names = FeatureListing.names(features, deviceType: FeatureListing.managementDeviceType(mgmtdev))
                text += "\n  dev_features" + names.map { " " + $0 }.joined()
            }
            return text + "\n"
        }.joined()
    }

    /// `vdpa0: type network mgmtdev vdpasim_net vendor_id 0 max_vqs 3 max_vq_size 256`, then
    /// `  driver vhost_vdpa vhost_vdpa /dev/vhost-vdpa-0 managed true`.
    public static func devices(_ devices: [DeviceInfo]) -> String {
        devices.map { device in
            var text = "\(device.name): type \(device.type) mgmtdev \(device.mgmtdev)"
            text += " vendor_id \(device.vendorID) max_vqs \(device.maxVqs) max_vq_size \(device.maxVqSize)\n"
            text += "  driver \(device.driver ?? "none")"
            if let vhostDevice = device.vhostDevice { text += " vhost_vdpa \(vhostDevice)" }
            if let virtioDevice = device.virtioDevice { text += " virtio_device \(virtioDevice)" }
            if !device.netdevs.isEmpty { text += " netdev " + device.netdevs.joined(separator: " ") }
            if !device.blockDevices.isEmpty { text += " blockdev " + device.blockDevices.joined(separator: " ") }
            text += " managed \(device.managed)"
            if let state = device.record?.state, state != "active" { text += " state \(state)" }
            return text + "\n"
        }.joined()
    }

    /// `vdpa0: mac 52:54:00:00:00:10 link up link_announce false max_vq_pairs 1 mtu 1500 `
    /// then `  negotiated_features …` once the driver has negotiated.
    public static func configs(_ configs: [DeviceConfigInfo]) -> String {
        configs.map { config in
            var text = "\(config.name): "
            var features: [String]?
            for (key, value) in JSONRenderer.configMembers(config) {
                if case .array(let names) = value, key == "negotiated_features" {
                    features = names.compactMap { if case .string(let name) = $0 { name } else { nil } }
                } else {
                    text += "\(key) \(plain(value)) "
                }
            }
            if let features { text += "\n  negotiated_features" + features.map { " " + $0 }.joined() }
            return text + "\n"
        }.joined()
    }

    /// `vdpa0: queue_type rx received_desc 10 completed_desc 10 `
    public static func vstats(_ stats: DevVstatsGetResult) -> String {
        "\(stats.name): queue_type \(stats.queueType) " + stats.stats.map { "\($0.name) \($0.value) " }.joined() + "\n"
    }

    /// A few lines on the daemon, its kernel and its devices.
    public static func daemonStatus(_ status: DaemonStatusResult) -> String {
        var text = "vdpad \(status.version) pid \(status.pid) started_at \(status.startedAt)"
        text += " uptime \(Int(status.uptimeSeconds.rounded(.down)))s\n"
        text += "  kernel \(status.kernelRelease) vdpa \(status.vdpa.available ? "available" : "unavailable")"
        if let reason = status.vdpa.reason { text += " (\(reason))" }
        text += "\n  socket \(status.socket) state_dir \(status.stateDirectory) restore_on_start \(status.restoreOnStart)\n"
        text += "  devices managed \(status.devices.managed) unmanaged \(status.devices.unmanaged)"
        text += " vanished \(status.devices.vanished) subscribers \(status.subscribers)"
        text += " last_reconcile \(status.lastReconcile ?? "never")\n"
        return text
    }

    /// One line per event, as `ip monitor` does:
    /// `device_added dev vdpa0 origin vdpad managed true time 2025-01-01T00:00:00Z`.
    public static func event(_ event: DeviceEvent) -> String {
        var text = "\(event.type.rawValue) dev \(event.device) origin \(event.origin) managed \(event.managed)"
        if event.type == .driverBound { text += " driver \(event.driver ?? "none")" }
        if let changes = event.changes, !changes.isEmpty { text += " changes " + changes.joined(separator: ",") }
        return text + " time \(event.time)\n"
    }

    /// A scalar as iproute2's text mode prints it.
    private static func plain(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): text
        case .unsigned(let number): String(number)
        case .double(let number): String(number)
        case .bool(let flag): String(flag)
        case .null: "none"
        case .array(let values): values.map(plain).joined(separator: " ")
        case .object: ""
        }
    }
}

import VDPAPolicy
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
    /// `  driver vhost_vdpa vhost_vdpa /dev/vhost-vdpa-0 managed true` (and, for a device vdpad
    /// holds for a port, `port vm1 backend_features IOTLB_MSG_V2 … SUSPEND RESUME`).
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
            if let held = device.held {
                text += " port \(held.port) backend_features " + (held.backendFeatures.isEmpty ? "none" : held.backendFeatures.joined(separator: " "))
            }
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

    /// ```
    /// p0: state running socket /run/vdpad/ports/p0.sock dev vdpa0
    ///   consumer memory_regions 1 queues 0 1 driver_ok true
    ///   consumer_features MAC STATUS VERSION_1
    ///   backend vdpa0 path /dev/vhost-vdpa-0 mgmtdev vdpasim_net queue_count 3 max_queue_size 256 suspend true resume true
    ///   backend_features IOTLB_MSG_V2 IOTLB_BATCH SUSPEND RESUME
    ///   device_features MTU MAC …
    /// ```
    /// `dev none` for a port without a device; the consumer and backend lines when there is one.
    public static func ports(_ ports: [PortInfo]) -> String {
        ports.map { port in
            var text = "\(port.name): state \(port.state) socket \(port.socket) "
            text += port.tap.map { "tap \($0)" + (port.queues.map { " queues \($0)" } ?? "") } ?? "dev \(port.device ?? "none")"
            text += port.profile.map { " profile \($0)\n" } ?? "\n"
            if let allowed = port.allowedConsumer {
                text += "  allowed_consumer" + (allowed.uid.map { " uid \($0)" } ?? "") + (allowed.gid.map { " gid \($0)" } ?? "")
                text += " refused \(allowed.refused)\n"
            }
            if let consumer = port.consumer {
                text += "  consumer memory_regions \(consumer.memoryRegions) queues"
                text += consumer.queues.map { " \($0)" }.joined() + " driver_ok \(consumer.driverOK)\n"
                if let features = consumer.features {
                    text += "  consumer_features" + FeatureListing.names(features, deviceType: .network).map { " " + $0 }.joined() + "\n"
                }
                if let error = consumer.lastError { text += "  consumer_last_error \(error)\n" }
            }
            if let backend = port.backend {
                text += "  backend \(backend.type) \(backend.device) path \(backend.path)"
                if let mgmtdev = backend.mgmtdev { text += " mgmtdev \(mgmtdev)" }
                text += " queue_count \(backend.queueCount) max_queue_size \(backend.maxQueueSize)"
                text += " suspend \(backend.suspend) resume \(backend.resume)\n"
                text += "  backend_features" + backend.backendFeatures.map { " " + $0 }.joined() + "\n"
                text += "  device_features" + FeatureListing.names(backend.deviceFeatures, deviceType: .network).map { " " + $0 }.joined() + "\n"
                for queue in backend.queues ?? [] {
                    text += "  vq \(queue.index): packets \(queue.packets) bytes \(queue.bytes) drops \(queue.drops) errors \(queue.errors)"
                    text += " filtered \(queue.filtered)\n"
                }
                if let control = backend.control {
                    text += "  control rx_modes " + (control.rxModes.isEmpty ? "none" : control.rxModes.joined(separator: ","))
                    if let mac = control.mac { text += " mac \(mac)" }
                    text += " queue_pairs \(control.queuePairs)"
                    if !control.unicastFilter.isEmpty { text += " unicast_filter " + control.unicastFilter.joined(separator: ",") }
                    if !control.multicastFilter.isEmpty { text += " multicast_filter " + control.multicastFilter.joined(separator: ",") }
                    if !control.vlans.isEmpty { text += " vlans " + control.vlans.map(String.init).joined(separator: ",") }
                    text += "\n"
                }
            }
            return text
        }.joined()
    }

    /// One line per saved state:
    /// `s1: dev vdpa0 port p0 origin saved host hv1 taken_at 2025-01-01T00:00:00Z queues 2`.
    public static func vqStates(_ states: [VqStateSummary]) -> String {
        states.map {
            vqSummary(name: $0.name, device: $0.device, port: $0.port, origin: $0.origin, host: $0.host, takenAt: $0.takenAt) + " queues \($0.queues)\n"
        }.joined()
    }

    /// One saved state and its queues:
    /// ```
    /// s1: dev vdpa0 port p0 origin saved host hv1 taken_at 2025-01-01T00:00:00Z
    ///   type network mgmtdev vdpasim_net queue_count 3 mac 52:54:00:00:00:10 link up mtu 1500
    ///   negotiated_features MTU MAC STATUS VERSION_1 ACCESS_PLATFORM
    ///   vq 0: size 256 base 17 avail 17 used 17 enabled
    ///   vq 1: size 256 base 2147516433 avail 17 avail_wrap 1 used 17 used_wrap 1 disabled
    /// ```
    /// (wrap counters for packed rings), then after a save `  timings_us suspend 12 …`.
    public static func vqState(_ info: VqStateInfo) -> String {
        let document = info.state
        var text = vqSummary(name: document.name, device: document.source.device, port: document.source.port, origin: info.origin,
                             host: document.host, takenAt: document.takenAt) + "\n"
        text += "  type \(document.deviceType.typeName)"
        if let mgmtdev = document.source.mgmtdev { text += " mgmtdev \(mgmtdev)" }
        text += " queue_count \(document.queueCount)"
        if let control = document.control {
            if let mac = control.mac { text += " mac \(mac)" }
            if let linkUp = control.linkUp { text += " link \(linkUp ? "up" : "down")" }
            if let pairs = control.maxVirtqueuePairs { text += " max_vq_pairs \(pairs)" }
            if let mtu = control.mtu { text += " mtu \(mtu)" }
        }
        text += "\n  negotiated_features"
        text += FeatureListing.names(document.negotiatedFeatures, deviceType: document.deviceType).map { " " + $0 }.joined() + "\n"
        for queue in document.queues {
            text += "  vq \(queue.index): size \(queue.size) base \(queue.base) avail \(queue.availableIndex)"
            if let wrap = queue.availableWrapCounter { text += " avail_wrap \(wrap ? 1 : 0)" }
            text += " used \(queue.usedIndex)"
            if let wrap = queue.usedWrapCounter { text += " used_wrap \(wrap ? 1 : 0)" }
            text += queue.enabled ? " enabled\n" : " disabled\n"
        }
        if let timings = info.timingsUs { text += timingsLine(timings) }
        return text
    }

    /// After `port set NAME dev DEV` moved running rings: `vm1: moved to vdpa1 pause 80` (µs,
    /// suspend to the kick) then the steps. Nothing when nothing moved.
    public static func portMove(_ port: PortInfo) -> String {
        guard let timings = port.timingsUs, let pause = timings["pause"] else { return "" }
        return "\(port.name): moved to \(port.backend?.device ?? port.device ?? "?") pause \(pause)\n" + timingsLine(timings)
    }

    /// `s1: dev vdpa1 port p0 replayed mac` then `  timings_us release 35 mac 120 open 410 … total 2100`.
    public static func vqRestore(_ result: VqStateRestoreResult) -> String {
        var text = "\(result.name): dev \(result.device) port \(result.port)"
        text += " replayed " + (result.replayed.isEmpty ? "none" : result.replayed.joined(separator: " "))
        return text + "\n" + timingsLine(result.timingsUs)
    }

    private static func vqSummary(name: String, device: String, port: String?, origin: String, host: String, takenAt: String) -> String {
        "\(name): dev \(device) port \(port ?? "none") origin \(origin) host \(host) taken_at \(takenAt)"
    }

    /// The steps in the order they ran, in microseconds, and their total.
    private static func timingsLine(_ timings: [String: Int]) -> String {
        let steps = StepOrder.ordered(timings)
        return "  timings_us" + steps.map { " \($0.step) \($0.microseconds)" }.joined()
            + " total \(steps.filter { !StepOrder.spans.contains($0.step) }.reduce(0) { $0 + $1.microseconds })\n"
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

import VDPAPolicy
import VDPARPC
import VirtioModel

/// The data of each command's output in iproute2's JSON shapes: a section object named
/// after the command (`mgmtdev`, `dev`, `config`, `vstats`) holding one object per
/// device, keyed by its name, with iproute2's keys in iproute2's order.
///
/// One deliberate difference: iproute2 spells two config keys with a stray trailing space
/// (`"link "`, `"link_announce "`); vdpactl writes `"link"` and `"link_announce"`.
public enum JSONRenderer {
    /// `{"mgmtdev":{HANDLE:{"supported_classes":[…],"max_supported_vqs":N,"dev_features":[…]}}}`
    public static func mgmtdevs(_ mgmtdevs: [ManagementDeviceInfo]) -> JSONValue {
        section("mgmtdev", mgmtdevs.map { mgmtdev in
            var members: [(String, JSONValue)] = [("supported_classes", .strings(mgmtdev.supportedClasses))]
            if let maxSupportedVqs = mgmtdev.maxSupportedVqs { members.append(("max_supported_vqs", .number(maxSupportedVqs))) }
            if let features = mgmtdev.supportedFeatures {
                let names = FeatureListing.names(features, deviceType: FeatureListing.managementDeviceType(mgmtdev))
                members.append(("dev_features", .strings(names)))
            }
            return (mgmtdev.handle, .object(members))
        })
    }

    /// `{"dev":{NAME:{"type":…,"mgmtdev":…,"vendor_id":N,"max_vqs":N,"max_vq_size":N}}}`
    public static func devices(_ devices: [DeviceInfo]) -> JSONValue {
        section("dev", devices.map { device in
            (device.name, .object([
                ("type", .string(device.type)),
                ("mgmtdev", .string(device.mgmtdev)),
                ("vendor_id", .number(device.vendorID)),
                ("max_vqs", .number(device.maxVqs)),
                ("max_vq_size", .number(device.maxVqSize)),
            ]))
        })
    }

    /// `{"config":{NAME:{"mac":…,"link":"up","link_announce":false,"max_vq_pairs":N,"mtu":N,"negotiated_features":[…]}}}`;
    /// block devices (which iproute2 leaves empty) get vdpad's block fields.
    public static func configs(_ configs: [DeviceConfigInfo]) -> JSONValue {
        section("config", configs.map { ($0.name, .object(configMembers($0))) })
    }

    static func configMembers(_ config: DeviceConfigInfo) -> [(String, JSONValue)] {
        let deviceType = VirtioDeviceType(rawValue: config.deviceID)
        var members: [(String, JSONValue)] = []
        if let net = config.net {
            if let mac = net.mac { members.append(("mac", .string(mac))) }
            if let linkUp = net.isLinkUp { members.append(("link", .string(linkUp ? "up" : "down"))) }
            if let announce = net.isAnnouncing { members.append(("link_announce", .bool(announce))) }
            if let maxVqPairs = net.maxVqPairs { members.append(("max_vq_pairs", .number(maxVqPairs))) }
            if let mtu = net.mtu { members.append(("mtu", .number(mtu))) }
        } else if let block = config.block {
            members += block.members
        }
        if config.net != nil || config.block != nil, let negotiated = config.negotiatedFeatures {
            members.append(("negotiated_features", .strings(FeatureListing.names(negotiated, deviceType: deviceType))))
        }
        return members
    }

    /// `{"vstats":{NAME:{"queue_type":"rx",VENDOR_NAME:N,…}}}`
    public static func vstats(_ stats: DevVstatsGetResult) -> JSONValue {
        let members: [(String, JSONValue)] = [("queue_type", .string(stats.queueType))] + stats.stats.map { ($0.name, .number($0.value)) }
        return section("vstats", [(stats.name, .object(members))])
    }

    /// `{"port":{NAME:{"state":…,"socket":…,"dev":…,"consumer":{…},"backend":{…}}}}`: vdpad's
    /// ports in the same shape (iproute2 has none); `dev`, `consumer` and `backend` when present.
    public static func ports(_ ports: [PortInfo]) -> JSONValue {
        section("port", ports.map { port in
            var members: [(String, JSONValue)] = [("state", .string(port.state)), ("socket", .string(port.socket))]
            if let device = port.device { members.append(("dev", .string(device))) }
            if let tap = port.tap { members.append(("tap", .string(tap))) }
            if let queues = port.queues { members.append(("queues", .number(UInt64(clamping: queues)))) }
            if let profile = port.profile { members.append(("profile", .string(profile))) }
            if let allowed = port.allowedConsumer {
                var entries: [(String, JSONValue)] = []
                if let uid = allowed.uid { entries.append(("uid", .number(UInt64(uid)))) }
                if let gid = allowed.gid { entries.append(("gid", .number(UInt64(gid)))) }
                entries.append(("refused", .number(UInt64(clamping: allowed.refused))))
                members.append(("allowed_consumer", .object(entries)))
            }
            if let consumer = port.consumer {
                var entries: [(String, JSONValue)] = []
                if let features = consumer.features { entries.append(("features", .strings(FeatureListing.names(features, deviceType: .network)))) }
                entries += [
                    ("memory_regions", .number(UInt64(clamping: consumer.memoryRegions))),
                    ("queues", .array(consumer.queues.map { .number(UInt64(clamping: $0)) })),
                    ("driver_ok", .bool(consumer.driverOK)),
                ]
                if let error = consumer.lastError { entries.append(("last_error", .string(error))) }
                members.append(("consumer", .object(entries)))
            }
            if let backend = port.backend {
                var entries: [(String, JSONValue)] = [("type", .string(backend.type)), ("dev", .string(backend.device)), ("path", .string(backend.path))]
                if let mgmtdev = backend.mgmtdev { entries.append(("mgmtdev", .string(mgmtdev))) }
                entries += [
                    ("queue_count", .number(UInt64(clamping: backend.queueCount))),
                    ("max_queue_size", .number(UInt64(clamping: backend.maxQueueSize))),
                    ("suspend", .bool(backend.suspend)),
                    ("resume", .bool(backend.resume)),
                    ("backend_features", .strings(backend.backendFeatures)),
                    ("device_features", .strings(FeatureListing.names(backend.deviceFeatures, deviceType: .network))),
                ]
                if let queues = backend.queues {
                    entries.append(("queues", .array(queues.map { queue in
                        .object([("index", .number(UInt64(clamping: queue.index))), ("packets", .number(queue.packets)), ("bytes", .number(queue.bytes)),
                                 ("drops", .number(queue.drops)), ("errors", .number(queue.errors)), ("filtered", .number(queue.filtered))])
                    })))
                }
                if let control = backend.control {
                    var state: [(String, JSONValue)] = [("rx_modes", .strings(control.rxModes))]
                    if let mac = control.mac { state.append(("mac", .string(mac))) }
                    state += [
                        ("unicast_filter", .strings(control.unicastFilter)), ("multicast_filter", .strings(control.multicastFilter)),
                        ("vlans", .array(control.vlans.map { .number(UInt64(clamping: $0)) })),
                        ("queue_pairs", .number(UInt64(clamping: control.queuePairs))),
                    ]
                    entries.append(("control", .object(state)))
                }
                members.append(("backend", .object(entries)))
            }
            return (port.name, .object(members))
        })
    }

    /// `{"vq":{NAME:{"dev":…,"port":…,"origin":…,"host":…,"taken_at":…,"queues":N}}}`: the saved states.
    public static func vqStates(_ states: [VqStateSummary]) -> JSONValue {
        section("vq", states.map { state in
            (state.name, .object(vqSummaryMembers(device: state.device, port: state.port, origin: state.origin, host: state.host,
                                                  takenAt: state.takenAt, queues: state.queues)))
        })
    }

    /// One saved state: the summary's keys, then what the device presented and `vqs`, one
    /// object per virtqueue (`index`, `size`, `layout`, `base`, `avail`, `used`, the wrap
    /// counters of a packed ring, `enabled`); `timings_us` after a save.
    public static func vqState(_ info: VqStateInfo) -> JSONValue {
        let document = info.state
        var members = vqSummaryMembers(device: document.source.device, port: document.source.port, origin: info.origin, host: document.host,
                                       takenAt: document.takenAt, queues: document.queues.count)
        members.append(("type", .string(document.deviceType.typeName)))
        if let mgmtdev = document.source.mgmtdev { members.append(("mgmtdev", .string(mgmtdev))) }
        members.append(("queue_count", .number(UInt64(clamping: document.queueCount))))
        if let control = document.control {
            if let mac = control.mac { members.append(("mac", .string(mac))) }
            if let linkUp = control.linkUp { members.append(("link", .string(linkUp ? "up" : "down"))) }
            if let pairs = control.maxVirtqueuePairs { members.append(("max_vq_pairs", .number(UInt64(clamping: pairs)))) }
            if let mtu = control.mtu { members.append(("mtu", .number(UInt64(clamping: mtu)))) }
        }
        members.append(("negotiated_features", .strings(FeatureListing.names(document.negotiatedFeatures, deviceType: document.deviceType))))
        members.append(("vqs", .array(document.queues.map { queue in
            var entries: [(String, JSONValue)] = [
                ("index", .number(UInt64(clamping: queue.index))),
                ("size", .number(UInt64(clamping: queue.size))),
                ("layout", .string(queue.layout.rawValue)),
                ("base", .number(queue.base)),
                ("avail", .number(UInt64(clamping: queue.availableIndex))),
                ("used", .number(UInt64(clamping: queue.usedIndex))),
            ]
            if let wrap = queue.availableWrapCounter { entries.append(("avail_wrap_counter", .bool(wrap))) }
            if let wrap = queue.usedWrapCounter { entries.append(("used_wrap_counter", .bool(wrap))) }
            entries.append(("enabled", .bool(queue.enabled)))
            return .object(entries)
        })))
        if let timings = info.timingsUs { members.append(("timings_us", timingsObject(timings))) }
        return section("vq", [(document.name, .object(members))])
    }

    /// `{"vq":{NAME:{"dev":…,"port":…,"replayed":[…],"timings_us":{STEP:N,…}}}}`: a restore, its steps in order.
    public static func vqRestore(_ result: VqStateRestoreResult) -> JSONValue {
        section("vq", [(result.name, .object([
            ("dev", .string(result.device)),
            ("port", .string(result.port)),
            ("replayed", .strings(result.replayed)),
            ("timings_us", timingsObject(result.timingsUs)),
        ]))])
    }

    /// `{"port":{NAME:{"dev":…,"timings_us":{STEP:N,…}}}}` after `port set` moved running rings.
    public static func portMove(_ port: PortInfo) -> JSONValue {
        section("port", [(port.name, .object([
            ("dev", .string(port.backend?.device ?? port.device ?? "")),
            ("timings_us", timingsObject(port.timingsUs ?? [:])),
        ]))])
    }

    private static func vqSummaryMembers(device: String, port: String?, origin: String, host: String, takenAt: String, queues: Int) -> [(String, JSONValue)] {
        var members: [(String, JSONValue)] = [("dev", .string(device))]
        if let port { members.append(("port", .string(port))) }
        members += [
            ("origin", .string(origin)),
            ("host", .string(host)),
            ("taken_at", .string(takenAt)),
            ("queues", .number(UInt64(clamping: queues))),
        ]
        return members
    }

    private static func timingsObject(_ timings: [String: Int]) -> JSONValue {
        .object(StepOrder.ordered(timings).map { ($0.step, .number(UInt64(clamping: $0.microseconds))) })
    }

    /// The `daemon_status` result as the API returns it.
    public static func daemonStatus(_ status: DaemonStatusResult) -> JSONValue {
        var vdpa: [(String, JSONValue)] = [("available", .bool(status.vdpa.available))]
        if let reason = status.vdpa.reason { vdpa.append(("reason", .string(reason))) }
        return .object([
            ("version", .string(status.version)),
            ("pid", .number(UInt32(clamping: status.pid))),
            ("started_at", .string(status.startedAt)),
            ("uptime_seconds", .double(status.uptimeSeconds)),
            ("kernel_release", .string(status.kernelRelease)),
            ("vdpa", .object(vdpa)),
            ("socket", .string(status.socket)),
            ("state_dir", .string(status.stateDirectory)),
            ("restore_on_start", .bool(status.restoreOnStart)),
            ("devices", .object([
                ("managed", .number(UInt64(clamping: status.devices.managed))),
                ("unmanaged", .number(UInt64(clamping: status.devices.unmanaged))),
                ("vanished", .number(UInt64(clamping: status.devices.vanished))),
            ])),
            ("subscribers", .number(UInt64(clamping: status.subscribers))),
            ("last_reconcile", status.lastReconcile.map(JSONValue.string) ?? .null),
        ])
    }

    /// One `monitor` event: the event notification's params.
    public static func event(_ event: DeviceEvent) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("type", .string(event.type.rawValue)),
            ("device", .string(event.device)),
            ("origin", .string(event.origin)),
            ("managed", .bool(event.managed)),
            ("time", .string(event.time)),
        ]
        if let driver = event.driver { members.append(("driver", .string(driver))) }
        if let changes = event.changes { members.append(("changes", .strings(changes))) }
        return .object(members)
    }

    private static func section(_ name: String, _ entries: [(String, JSONValue)]) -> JSONValue {
        .object([(name, .object(entries))])
    }
}

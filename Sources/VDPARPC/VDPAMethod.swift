/// The one list of vdpad's API methods. The server dispatches on it,
/// `rpc_methods` returns it, and a test checks Documentation/api.md against it.
public enum VDPAMethod: String, CaseIterable, Sendable, Codable {
    case rpcMethods = "rpc_methods"
    case daemonStatus = "daemon_status"
    case mgmtdevList = "mgmtdev_list"
    case devAdd = "dev_add"
    case devDel = "dev_del"
    case devList = "dev_list"
    case devGet = "dev_get"
    case devConfigGet = "dev_config_get"
    case devVstatsGet = "dev_vstats_get"
    case devSet = "dev_set"
    case devBind = "dev_bind"
    case profileAdd = "profile_add"
    case profileDel = "profile_del"
    case profileList = "profile_list"
    case profileGet = "profile_get"
    case capsExport = "caps_export"
    case compatCheck = "compat_check"
    case compatBaseline = "compat_baseline"
    case quirkList = "quirk_list"
    case quirkTest = "quirk_test"
    case eventsSubscribe = "events_subscribe"

    /// One line on what the method does.
    public var summary: String {
        switch self {
        case .rpcMethods: "List the methods this daemon answers."
        case .daemonStatus: "Report the daemon's version, kernel support, state and device counts."
        case .mgmtdevList: "List management devices (parents that can create vDPA devices)."
        case .devAdd: "Create a vDPA device and record how it was created."
        case .devDel: "Delete a vDPA device created by vdpad."
        case .devList: "List vDPA devices, managed and unmanaged, and managed devices that vanished."
        case .devGet: "Show one vDPA device."
        case .devConfigGet: "Show device configuration (MAC, link, MTU, queue pairs, features, block geometry)."
        case .devVstatsGet: "Show a queue's vendor statistics."
        case .devSet: "Change a device's MAC address."
        case .devBind: "Bind a device to a vdpa bus driver (vhost_vdpa or virtio_vdpa) or unbind it."
        case .quirkList: "List the quirks in force, where each comes from and which management devices it applies to."
        case .quirkTest: "Check a quirk file without installing it: its errors, and what it would apply to on this host."
        case .profileAdd: "Add a profile (what a device presents), or replace it with a higher version."
        case .profileDel: "Delete a profile added through the API."
        case .profileList: "List the profiles: those added through the API and those of the profiles directory."
        case .profileGet: "Show one profile."
        case .capsExport: "Export this host's capabilities document: what each management device can present, after quirks."
        case .compatCheck: "Check whether a destination can present exactly what a profile, a device or a requirement presents."
        case .compatBaseline: "Compute the largest profile every given host can present."
        case .eventsSubscribe: "Receive device events on this connection as notifications."
        }
    }
}

/// The method name of pushed event notifications.
public let vdpadEventNotificationMethod = "event"

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
    case portAdd = "port_add"
    case portDel = "port_del"
    case portList = "port_list"
    case portGet = "port_get"
    case portSet = "port_set"
    case vqStateSave = "vq_state_save"
    case vqStateList = "vq_state_list"
    case vqStateGet = "vq_state_get"
    case vqStateExport = "vq_state_export"
    case vqStateImport = "vq_state_import"
    case vqStateRestore = "vq_state_restore"
    case vqStateDel = "vq_state_del"
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
        case .portAdd: "Add a port: a vhost-user socket for one VMM, backed by a vDPA device vdpad holds open."
        case .portDel: "Delete a port, releasing its backend device."
        case .portList: "List the ports, their consumers and the devices vdpad holds for them, with their backend abilities."
        case .portGet: "Show one port."
        case .portSet: "Attach a port's backend device, or detach it."
        case .vqStateSave: "Suspend a device vdpad holds and save where each virtqueue stands, durably."
        case .vqStateList: "List the saved virtqueue states."
        case .vqStateGet: "Show one saved virtqueue state."
        case .vqStateExport: "Export a saved virtqueue state as a document another host can import."
        case .vqStateImport: "Import a virtqueue state document exported by a vdpad."
        case .vqStateRestore: "Start a device at a saved virtqueue state, under a port's consumer."
        case .vqStateDel: "Delete a saved virtqueue state."
        case .eventsSubscribe: "Receive device events on this connection as notifications."
        }
    }
}

/// What a caller may do, from its peer credentials (see Documentation/api.md, "Who may call").
public enum RPCAccess: Int, Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Nothing: every call is `permission_denied`.
    case none
    /// The methods that change nothing.
    case read
    /// Every method.
    case admin

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String {
        switch self {
        case .none: "none"
        case .read: "read"
        case .admin: "admin"
        }
    }
}

extension VDPAMethod {
    /// What a caller needs to call the method: `read` for those that change nothing in vdpad,
    /// the kernel or a device; `admin` for the rest, and for `dev_vstats_get`, which the kernel
    /// itself keeps for CAP_NET_ADMIN (the vdpa family marks DEV_VSTATS_GET GENL_ADMIN_PERM).
    public var requiredAccess: RPCAccess {
        switch self {
        case .rpcMethods, .daemonStatus, .mgmtdevList, .devList, .devGet, .devConfigGet, .profileList, .profileGet,
             .capsExport, .compatCheck, .compatBaseline, .quirkList, .quirkTest, .portList, .portGet,
             .vqStateList, .vqStateGet, .vqStateExport, .eventsSubscribe:
            .read
        case .devAdd, .devDel, .devSet, .devBind, .devVstatsGet, .profileAdd, .profileDel, .portAdd, .portDel, .portSet,
             .vqStateSave, .vqStateImport, .vqStateRestore, .vqStateDel:
            .admin
        }
    }
}

/// The method name of pushed event notifications.
public let vdpadEventNotificationMethod = "event"

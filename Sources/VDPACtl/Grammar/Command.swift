import VDPARPC

/// One vdpactl command, parsed from iproute2's keyword grammar and ready to become an API call.
public enum Command: Hashable, Sendable {
    /// `mgmtdev show|list [[BUS/]NAME]`
    case mgmtdevShow(handle: String?)
    /// `dev [show|list [NAME]]`
    case devShow(name: String?)
    /// `dev add name NAME mgmtdev MGMTDEV [mac MAC] [mtu MTU] [max_vqp N] [device_features HEX] [driver D]`
    case devAdd(DevAddParams)
    /// `dev del NAME [force]`
    case devDel(name: String, force: Bool)
    /// `dev set name NAME mac MAC` (also `dev set NAME mac MAC`)
    case devSet(name: String, mac: String)
    /// `dev config [show [NAME]]`
    case devConfigShow(name: String?)
    /// `dev vstats show NAME qidx N`
    case devVstatsShow(name: String, queueIndex: UInt32)
    /// `dev bind NAME driver vhost_vdpa|virtio_vdpa|none` (`driver` nil unbinds)
    case devBind(name: String, driver: String?)
    /// `profile show [NAME]`
    case profileShow(name: String?)
    /// `profile add FILE`: a profile file (`vdpad.profile/v1`), read by vdpactl.
    case profileAdd(file: String)
    /// `profile del NAME`
    case profileDel(name: String)
    /// `caps export`: this host's capabilities document.
    case capsExport
    /// `quirk show`: the quirks in force and where they apply.
    case quirkShow
    /// `quirk test FILE`: a quirk file checked by the daemon, not installed.
    case quirkTest(file: String)
    /// `compat check SOURCE [to] DESTINATION`, SOURCE := `profile NAME` | `dev NAME`,
    /// DESTINATION := `mgmtdev [BUS/]NAME` | `caps FILE [mgmtdev [BUS/]NAME]`.
    case compatCheck(CompatCheckSpec)
    /// `compat baseline [FILE…] [local] [type net|block] [name NAME]`
    case compatBaseline(files: [String], includeLocal: Bool, deviceType: String?, name: String?)
    /// `port show|list [NAME]`
    case portShow(name: String?)
    /// `port add name NAME [dev DEV] [user USER] [group GROUP]`
    case portAdd(name: String, device: String?, consumerUser: String? = nil, consumerGroup: String? = nil, tap: String? = nil, profile: String? = nil,
                 queues: Int? = nil)
    /// `port del NAME`
    case portDel(name: String)
    /// `port set NAME dev DEV` attaches `device`; `port set NAME detach` (`device` nil) releases it.
    /// `device` nil and `tap` nil: detach.
    case portSet(name: String, device: String?, tap: String? = nil, queues: Int? = nil)
    /// `vq save dev DEV [name NAME] [resume] [replace]`
    case vqSave(VqStateSaveParams)
    /// `vq show|list [NAME]`: the saved states, or one state's queues.
    case vqShow(name: String?)
    /// `vq export NAME [file FILE]`: the `vdpad.vqstate/v1` document, to standard output or FILE.
    case vqExport(name: String, file: String?)
    /// `vq import FILE [name NAME] [replace]`: a state document file, read by vdpactl.
    case vqImport(file: String, name: String?, replace: Bool)
    /// `vq restore NAME dev DEV [port PORT]`
    case vqRestore(VqStateRestoreParams)
    /// `vq del NAME`
    case vqDel(name: String)
    /// `daemon status`
    case daemonStatus
    /// `monitor`: follow device events until interrupted or the connection ends.
    case monitor
    /// `help` at any level: print the usage of a topic and succeed.
    case help(HelpTopic)
}

/// Which usage text a `help` word (or a grammar error) refers to.
public enum HelpTopic: Hashable, Sendable {
    case main, mgmtdev, dev, devConfig, devVstats, daemon, monitor, profile, caps, compat, quirk, port, vq
}

/// What `compat check` compares; the capabilities file is read when the command runs.
public struct CompatCheckSpec: Hashable, Sendable {
    public var profile: String?
    public var device: String?
    public var mgmtdev: String?
    public var capsFile: String?

    public init(profile: String? = nil, device: String? = nil, mgmtdev: String? = nil, capsFile: String? = nil) {
        self.profile = profile
        self.device = device
        self.mgmtdev = mgmtdev
        self.capsFile = capsFile
    }
}

extension Command {
    /// Whether the command answers with the `compat` exit statuses.
    var isCompat: Bool {
        switch self {
        case .compatCheck, .compatBaseline: true
        default: false
        }
    }
}

/// The bus drivers `dev add … driver` and `dev bind … driver` accept.
public enum BusDriverName {
    public static let vhostVDPA = "vhost_vdpa"
    public static let virtioVDPA = "virtio_vdpa"
    /// For `dev bind`: leave the device without a driver.
    public static let none = "none"
}

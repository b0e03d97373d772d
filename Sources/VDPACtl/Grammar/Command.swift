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
    /// `daemon status`
    case daemonStatus
    /// `monitor`: follow device events until interrupted or the connection ends.
    case monitor
    /// `help` at any level: print the usage of a topic and succeed.
    case help(HelpTopic)
}

/// Which usage text a `help` word (or a grammar error) refers to.
public enum HelpTopic: Hashable, Sendable {
    case main, mgmtdev, dev, devConfig, devVstats, daemon, monitor
}

/// The bus drivers `dev add … driver` and `dev bind … driver` accept.
public enum BusDriverName {
    public static let vhostVDPA = "vhost_vdpa"
    public static let virtioVDPA = "virtio_vdpa"
    /// For `dev bind`: leave the device without a driver.
    public static let none = "none"
}

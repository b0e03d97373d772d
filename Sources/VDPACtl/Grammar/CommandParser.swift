import VDPARPC
import VirtioModel

/// Parses the object words of a vdpactl command line (everything after the global options)
/// with iproute2 `vdpa`'s grammar: an object, a command, then keyword-value pairs.
///
/// Keywords iproute2 abbreviates with `matches()` (objects, commands, `name`, `mgmtdev`,
/// `max_vqp`) may be abbreviated here too; the ones it compares exactly (`mac`, `mtu`, `qidx`,
/// `device_features`, `vstats`, `set`) must be spelled out. Messages are iproute2's.
public enum CommandParser {
    public static func parse(_ arguments: [String]) throws(GrammarError) -> Command {
        var words = WordStream(arguments)
        guard let object = words.next() else { return .help(.main) }
        if matches(object, "help") { return .help(.main) }
        if matches(object, "mgmtdev") { return try parseMgmtdev(&words) }
        if matches(object, "dev") { return try parseDev(&words) }
        if matches(object, "daemon") { return try parseDaemon(&words) }
        if matches(object, "profile") { return try parseProfile(&words) }
        if matches(object, "port") { return try parsePort(&words) }
        if matches(object, "caps") { return try parseCaps(&words) }
        if matches(object, "quirk") { return try parseQuirk(&words) }
        if matches(object, "compat") { return try parseCompat(&words) }
        if matches(object, "monitor") { return try parseMonitor(&words) }
        if matches(object, "vq") { return try parseVq(&words) }
        throw GrammarError("Object \"\(object)\" not found", usage: .main)
    }

    // MARK: mgmtdev

    private static func parseMgmtdev(_ words: inout WordStream) throws(GrammarError) -> Command {
        guard let command = words.next(), !matches(command, "help") else { return .help(.mgmtdev) }
        guard matches(command, "show") || matches(command, "list") else {
            throw .commandNotFound(command, usage: .mgmtdev)
        }
        guard let handle = words.next() else { return .mgmtdevShow(handle: nil) }
        try validateManagementHandle(handle)
        if let extra = words.next() { throw .unknownOption(extra) }
        return .mgmtdevShow(handle: handle)
    }

    /// `[BUS/]NAME`: at most one slash (`vdpa_argv_handle`).
    static func validateManagementHandle(_ handle: String) throws(GrammarError) {
        if handle.filter({ $0 == "/" }).count > 1 {
            throw GrammarError("""
                Wrong vdpa mgmtdev identification string format
                Expected "mgmtdev_bus_name/mgmtdev_name"
                Expected "mgmtdev_name"
                """)
        }
    }

    // MARK: dev

    private static func parseDev(_ words: inout WordStream) throws(GrammarError) -> Command {
        guard let command = words.next() else { return .devShow(name: nil) }
        if matches(command, "help") { return .help(.dev) }
        if matches(command, "show") || matches(command, "list") { return try parseDevShow(&words) }
        if matches(command, "add") { return try parseDevAdd(&words) }
        if matches(command, "del") { return try parseDevDel(&words) }
        if matches(command, "config") { return try parseDevConfig(&words) }
        if command == "vstats" { return try parseDevVstats(&words) }
        if command == "set" { return try parseDevSet(&words) }
        if command == "bind" { return try parseDevBind(&words) }
        throw .commandNotFound(command, usage: .dev)
    }

    private static func parseDevShow(_ words: inout WordStream) throws(GrammarError) -> Command {
        guard let name = words.next() else { return .devShow(name: nil) }
        if let extra = words.next() { throw .unknownOption(extra) }
        return .devShow(name: name)
    }

    private static func parseDevAdd(_ words: inout WordStream) throws(GrammarError) -> Command {
        var name: String?
        var mgmtdev: String?
        var parameters = DevAddParams(name: "", mgmtdev: "")
        while let keyword = words.next() {
            // The order of the tests is iproute2's, so abbreviations resolve the same way.
            if matches(keyword, "name") {
                name = try words.value(after: keyword)
            } else if matches(keyword, "mgmtdev") {
                let handle = try words.value(after: keyword, expecting: .handle)
                try validateManagementHandle(handle)
                mgmtdev = handle
            } else if keyword == "mac" {
                parameters.mac = try macAddress(words.value(after: keyword))
            } else if keyword == "mtu" {
                parameters.mtu = Int(try number(words.value(after: keyword, expecting: .number), for: keyword, as: UInt16.self))
            } else if matches(keyword, "max_vqp") {
                parameters.maxVqp = Int(try number(words.value(after: keyword, expecting: .number), for: "max_vqp", as: UInt16.self))
            } else if keyword == "device_features" {
                let text = try words.value(after: keyword, expecting: .number)
                guard let features = VirtioFeatures(hex: text) else {
                    throw GrammarError("Invalid device_features \"\(text)\": expected a hexadecimal number of up to 64 bits")
                }
                parameters.deviceFeatures = features.hexString
            } else if keyword == "driver" {
                let driver = try words.value(after: keyword)
                guard [BusDriverName.vhostVDPA, BusDriverName.virtioVDPA].contains(driver) else {
                    throw GrammarError("Unknown driver \"\(driver)\": expected vhost_vdpa or virtio_vdpa")
                }
                parameters.driver = driver
            } else if keyword == "profile" {
                parameters.profile = try words.value(after: keyword)
            } else {
                throw .unknownOption(keyword)
            }
        }
        guard let mgmtdev else { throw GrammarError("management device handle not set.") }
        guard let name else { throw GrammarError("device name is not set.") }
        parameters.name = name
        parameters.mgmtdev = mgmtdev
        return .devAdd(parameters)
    }

    private static func parseDevDel(_ words: inout WordStream) throws(GrammarError) -> Command {
        guard let name = words.next() else { throw GrammarError("String parameter expected") }
        var force = false
        while let keyword = words.next() {
            guard keyword == "force" else { throw .unknownOption(keyword) }
            force = true
        }
        return .devDel(name: name, force: force)
    }

    private static func parseDevSet(_ words: inout WordStream) throws(GrammarError) -> Command {
        var name = leadingDeviceName(&words, keywords: ["mac"])
        var mac: String?
        while let keyword = words.next() {
            if matches(keyword, "name") {
                name = try words.value(after: keyword)
            } else if keyword == "mac" {
                mac = try macAddress(words.value(after: keyword))
            } else {
                throw .unknownOption(keyword)
            }
        }
        guard let name else { throw GrammarError("device name is not set.") }
        guard let mac else { throw GrammarError("mac address is not set.") }
        return .devSet(name: name, mac: mac)
    }

    private static func parseDevBind(_ words: inout WordStream) throws(GrammarError) -> Command {
        var name = leadingDeviceName(&words, keywords: ["driver"])
        var driver: String??
        while let keyword = words.next() {
            if matches(keyword, "name") {
                name = try words.value(after: keyword)
            } else if keyword == "driver" {
                let value = try words.value(after: keyword)
                switch value {
                case BusDriverName.vhostVDPA, BusDriverName.virtioVDPA: driver = .some(value)
                case BusDriverName.none: driver = .some(nil)
                default: throw GrammarError("Unknown driver \"\(value)\": expected vhost_vdpa, virtio_vdpa or none")
                }
            } else {
                throw .unknownOption(keyword)
            }
        }
        guard let name else { throw GrammarError("device name is not set.") }
        guard let driver else { throw GrammarError("driver is not set.") }
        return .devBind(name: name, driver: driver)
    }

    /// The positional name of `dev set NAME …` / `dev bind NAME …` / `port set NAME …`: the first word,
    /// unless it is the `name` keyword (or an abbreviation of it) or another keyword.
    private static func leadingDeviceName(_ words: inout WordStream, keywords: Set<String>) -> String? {
        guard let first = words.peek, !matches(first, "name"), !keywords.contains(first) else { return nil }
        return words.next()
    }

    private static func parseDevConfig(_ words: inout WordStream) throws(GrammarError) -> Command {
        guard let command = words.next() else { return .devConfigShow(name: nil) }
        if matches(command, "help") { return .help(.devConfig) }
        guard matches(command, "show") else { throw .commandNotFound(command, usage: .devConfig) }
        guard let name = words.next() else { return .devConfigShow(name: nil) }
        if let extra = words.next() { throw .unknownOption(extra) }
        return .devConfigShow(name: name)
    }

    private static func parseDevVstats(_ words: inout WordStream) throws(GrammarError) -> Command {
        guard let command = words.next() else { throw GrammarError("", usage: .devVstats) }
        if command == "help" { return .help(.devVstats) }
        guard command == "show" else { throw .commandNotFound(command, usage: .devVstats) }
        // Exactly `NAME` or `NAME qidx N`, as iproute2 insists.
        guard words.count == 1 || words.count == 3, let name = words.next() else {
            throw GrammarError("", usage: .devVstats)
        }
        guard let keyword = words.next() else { throw GrammarError("queue index is not set.") }
        guard keyword == "qidx" else { throw .unknownOption(keyword) }
        let index = try number(words.value(after: keyword, expecting: .number), for: keyword, as: UInt32.self)
        return .devVstatsShow(name: name, queueIndex: index)
    }

    // MARK: profile, caps, compat

    private static func parseProfile(_ words: inout WordStream) throws(GrammarError) -> Command {
        guard let command = words.next() else { return .profileShow(name: nil) }
        if matches(command, "help") { return .help(.profile) }
        if matches(command, "show") || matches(command, "list") {
            let name = words.next()
            if let extra = words.next() { throw .unknownOption(extra) }
            return .profileShow(name: name)
        }
        if matches(command, "add") {
            guard let file = words.next() else { throw GrammarError("profile file expected", usage: .profile) }
            if let extra = words.next() { throw .unknownOption(extra) }
            return .profileAdd(file: file)
        }
        if matches(command, "del") {
            guard let name = words.next() else { throw GrammarError("String parameter expected", usage: .profile) }
            if let extra = words.next() { throw .unknownOption(extra) }
            return .profileDel(name: name)
        }
        throw .commandNotFound(command, usage: .profile)
    }

    private static func parseCaps(_ words: inout WordStream) throws(GrammarError) -> Command {
        guard let command = words.next(), !matches(command, "help") else { return .help(.caps) }
        guard matches(command, "export") else { throw .commandNotFound(command, usage: .caps) }
        if let extra = words.next() { throw .unknownOption(extra) }
        return .capsExport
    }

    private static func parseQuirk(_ words: inout WordStream) throws(GrammarError) -> Command {
        guard let command = words.next(), !matches(command, "help") else { return .help(.quirk) }
        if matches(command, "show") || matches(command, "list") {
            if let extra = words.next() { throw .unknownOption(extra) }
            return .quirkShow
        }
        if command == "test" {
            guard let file = words.next() else { throw GrammarError("quirk file is not set.", usage: .quirk) }
            if let extra = words.next() { throw .unknownOption(extra) }
            return .quirkTest(file: file)
        }
        throw .commandNotFound(command, usage: .quirk)
    }

    private static func parseCompat(_ words: inout WordStream) throws(GrammarError) -> Command {
        guard let command = words.next(), !matches(command, "help") else { return .help(.compat) }
        if matches(command, "check") { return try parseCompatCheck(&words) }
        if matches(command, "baseline") { return try parseCompatBaseline(&words) }
        throw .commandNotFound(command, usage: .compat)
    }

    private static func parseCompatCheck(_ words: inout WordStream) throws(GrammarError) -> Command {
        var spec = CompatCheckSpec()
        while let keyword = words.next() {
            if keyword == "profile" {
                spec.profile = try words.value(after: keyword)
            } else if keyword == "dev" {
                spec.device = try words.value(after: keyword)
            } else if matches(keyword, "mgmtdev") {
                let handle = try words.value(after: keyword, expecting: .handle)
                try validateManagementHandle(handle)
                spec.mgmtdev = handle
            } else if keyword == "caps" {
                spec.capsFile = try words.value(after: keyword)
            } else if keyword == "to" {
                continue
            } else {
                throw .unknownOption(keyword)
            }
        }
        guard (spec.profile == nil) != (spec.device == nil) else {
            throw GrammarError("source not set: give one of profile NAME or dev NAME", usage: .compat)
        }
        guard spec.mgmtdev != nil || spec.capsFile != nil else {
            throw GrammarError("destination not set: give mgmtdev [BUS/]NAME or caps FILE", usage: .compat)
        }
        return .compatCheck(spec)
    }

    private static func parseCompatBaseline(_ words: inout WordStream) throws(GrammarError) -> Command {
        var files: [String] = []
        var includeLocal = false
        var deviceType: String?
        var name: String?
        while let word = words.next() {
            switch word {
            case "local": includeLocal = true
            case "type": deviceType = try words.value(after: word)
            case "name": name = try words.value(after: word)
            default: files.append(word)
            }
        }
        guard !files.isEmpty || includeLocal else {
            throw GrammarError("no capabilities documents: give FILE… or local", usage: .compat)
        }
        return .compatBaseline(files: files, includeLocal: includeLocal, deviceType: deviceType, name: name)
    }

    // MARK: port

    private static func parsePort(_ words: inout WordStream) throws(GrammarError) -> Command {
        guard let command = words.next() else { return .portShow(name: nil) }
        if matches(command, "help") { return .help(.port) }
        if matches(command, "show") || matches(command, "list") {
            let name = words.next()
            if let extra = words.next() { throw .unknownOption(extra) }
            return .portShow(name: name)
        }
        if matches(command, "add") { return try parsePortAdd(&words) }
        if matches(command, "del") {
            guard let name = words.next() else { throw GrammarError("port name is not set.", usage: .port) }
            if let extra = words.next() { throw .unknownOption(extra) }
            return .portDel(name: name)
        }
        if command == "set" { return try parsePortSet(&words) }
        throw .commandNotFound(command, usage: .port)
    }

    private static func parsePortAdd(_ words: inout WordStream) throws(GrammarError) -> Command {
        var name: String?
        var device: String?
        var user: String?
        var group: String?
        var tap: String?
        var profile: String?
        var queues: Int?
        while let keyword = words.next() {
            if matches(keyword, "name") {
                name = try words.value(after: keyword)
            } else if keyword == "dev" {
                device = try words.value(after: keyword)
            } else if keyword == "tap" {
                tap = try words.value(after: keyword)
            } else if keyword == "queues" {
                queues = try queuePairs(&words, after: keyword)
            } else if keyword == "profile" {
                profile = try words.value(after: keyword)
            } else if keyword == "user" {
                user = try words.value(after: keyword)
            } else if keyword == "group" {
                group = try words.value(after: keyword)
            } else {
                throw .unknownOption(keyword)
            }
        }
        guard let name else { throw GrammarError("port name is not set.") }
        if device != nil, tap != nil { throw GrammarError("dev and tap exclude each other: a port has one backend.", usage: .port) }
        if queues != nil, tap == nil { throw GrammarError("queues goes with tap: it is the software backend's queue pairs.", usage: .port) }
        return .portAdd(name: name, device: device, consumerUser: user, consumerGroup: group, tap: tap, profile: profile, queues: queues)
    }

    /// `queues N`: queue pairs of a software backend, in `PortAddParams.queuesRange`.
    private static func queuePairs(_ words: inout WordStream, after keyword: String) throws(GrammarError) -> Int {
        let value = try words.value(after: keyword)
        let range = PortAddParams.queuesRange
        guard let pairs = Int(value), range.contains(pairs) else {
            throw GrammarError("queues must be \(range.lowerBound) to \(range.upperBound) queue pairs, not \"\(value)\".", usage: .port)
        }
        return pairs
    }

    private static func parsePortSet(_ words: inout WordStream) throws(GrammarError) -> Command {
        var name = leadingDeviceName(&words, keywords: ["dev", "tap", "detach"])
        var device: String?
        var tap: String?
        var queues: Int?
        var detach = false
        while let keyword = words.next() {
            if matches(keyword, "name") {
                name = try words.value(after: keyword)
            } else if keyword == "dev" {
                device = try words.value(after: keyword)
            } else if keyword == "tap" {
                tap = try words.value(after: keyword)
            } else if keyword == "queues" {
                queues = try queuePairs(&words, after: keyword)
            } else if keyword == "detach" {
                detach = true
            } else {
                throw .unknownOption(keyword)
            }
        }
        guard let name else { throw GrammarError("port name is not set.") }
        if queues != nil, tap == nil { throw GrammarError("queues goes with tap: it is the software backend's queue pairs.", usage: .port) }
        switch (device, tap, detach) {
        case (nil, nil, false): throw GrammarError("backend is not set: give dev DEV, tap TAP or detach.", usage: .port)
        case (nil, nil, true): return .portSet(name: name, device: nil)
        case (let device?, nil, false): return .portSet(name: name, device: device)
        case (nil, let tap?, false): return .portSet(name: name, device: nil, tap: tap, queues: queues)
        default: throw GrammarError("dev, tap and detach exclude each other.", usage: .port)
        }
    }

    // MARK: vq

    /// `show`, `list`, `del` and `help` may be abbreviated; `save`, `export`, `import` and
    /// `restore` (which suspend, write or start devices) must be written in full.
    private static func parseVq(_ words: inout WordStream) throws(GrammarError) -> Command {
        guard let command = words.next() else { return .vqShow(name: nil) }
        if matches(command, "help") { return .help(.vq) }
        if matches(command, "show") || matches(command, "list") {
            let name = words.next()
            if let extra = words.next() { throw .unknownOption(extra) }
            return .vqShow(name: name)
        }
        if command == "save" { return try parseVqSave(&words) }
        if command == "export" {
            guard let name = words.next() else { throw GrammarError("state name is not set.", usage: .vq) }
            var file: String?
            while let keyword = words.next() {
                guard keyword == "file" else { throw .unknownOption(keyword) }
                file = try words.value(after: keyword)
            }
            return .vqExport(name: name, file: file)
        }
        if command == "import" {
            guard let file = words.next() else { throw GrammarError("state file is not set.", usage: .vq) }
            var name: String?
            var replace = false
            while let keyword = words.next() {
                if matches(keyword, "name") {
                    name = try words.value(after: keyword)
                } else if keyword == "replace" {
                    replace = true
                } else {
                    throw .unknownOption(keyword)
                }
            }
            return .vqImport(file: file, name: name, replace: replace)
        }
        if command == "restore" { return try parseVqRestore(&words) }
        if matches(command, "del") {
            guard let name = words.next() else { throw GrammarError("state name is not set.", usage: .vq) }
            if let extra = words.next() { throw .unknownOption(extra) }
            return .vqDel(name: name)
        }
        throw .commandNotFound(command, usage: .vq)
    }

    private static func parseVqSave(_ words: inout WordStream) throws(GrammarError) -> Command {
        var device: String?
        var parameters = VqStateSaveParams(device: "")
        while let keyword = words.next() {
            if keyword == "dev" {
                device = try words.value(after: keyword)
            } else if matches(keyword, "name") {
                parameters.name = try words.value(after: keyword)
            } else if keyword == "resume" {
                parameters.resume = true
            } else if keyword == "replace" {
                parameters.replace = true
            } else {
                throw .unknownOption(keyword)
            }
        }
        guard let device else { throw GrammarError("device name is not set.") }
        parameters.device = device
        return .vqSave(parameters)
    }

    private static func parseVqRestore(_ words: inout WordStream) throws(GrammarError) -> Command {
        guard let name = words.peek, name != "dev", name != "port" else { throw GrammarError("state name is not set.", usage: .vq) }
        _ = words.next()
        var device: String?
        var port: String?
        while let keyword = words.next() {
            if keyword == "dev" {
                device = try words.value(after: keyword)
            } else if keyword == "port" {
                port = try words.value(after: keyword)
            } else {
                throw .unknownOption(keyword)
            }
        }
        guard let device else { throw GrammarError("device name is not set.") }
        return .vqRestore(VqStateRestoreParams(name: name, device: device, port: port))
    }

    // MARK: daemon, monitor

    private static func parseDaemon(_ words: inout WordStream) throws(GrammarError) -> Command {
        guard let command = words.next() else { return .daemonStatus }
        if matches(command, "help") { return .help(.daemon) }
        guard matches(command, "status") else { throw .commandNotFound(command, usage: .daemon) }
        if let extra = words.next() { throw .unknownOption(extra) }
        return .daemonStatus
    }

    private static func parseMonitor(_ words: inout WordStream) throws(GrammarError) -> Command {
        guard let word = words.next() else { return .monitor }
        if matches(word, "help") { return .help(.monitor) }
        throw .unknownOption(word)
    }

    // MARK: Values

    /// A decimal number that fits `T` (iproute2's `get_u16`/`get_u32` with base 10).
    private static func number<T: FixedWidthInteger & UnsignedInteger>(_ text: String, for keyword: String, as: T.Type) throws(GrammarError) -> T {
        guard let value = T(text, radix: 10) else {
            throw GrammarError("Invalid \(keyword) \"\(text)\": expected a decimal number from 0 to \(T.max)")
        }
        return value
    }

    /// A MAC address, normalized to iproute2's lower-case colon form.
    private static func macAddress(_ text: String) throws(GrammarError) -> String {
        guard let mac = MACAddress(text) else { throw GrammarError("\"\(text)\" is invalid lladdr.") }
        return mac.description
    }
}

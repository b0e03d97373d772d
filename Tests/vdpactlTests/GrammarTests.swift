import Testing
import VDPACtl
import VDPARPC

/// iproute2's `vdpa` grammar, as vdpactl parses it (no daemon involved).
@Suite struct GrammarTests {
    private func parse(_ line: String) throws -> Command {
        try CommandParser.parse(line.split(separator: " ").map(String.init))
    }

    private func grammarError(_ line: String) -> GrammarError? {
        #expect(throws: GrammarError.self) { try parse(line) }
    }

    @Test(arguments: [
        ("mgmtdev show", Command.mgmtdevShow(handle: nil)),
        ("mgmtdev list", .mgmtdevShow(handle: nil)),
        ("mgmtdev show vdpasim_net", .mgmtdevShow(handle: "vdpasim_net")),
        ("mgmtdev show pci/0000:41:00.2", .mgmtdevShow(handle: "pci/0000:41:00.2")),
        ("mgmt sh auxiliary/mlx5_core.sf.1", .mgmtdevShow(handle: "auxiliary/mlx5_core.sf.1")),
        ("m l", .mgmtdevShow(handle: nil)),
        ("dev", .devShow(name: nil)),
        ("dev show", .devShow(name: nil)),
        ("dev list", .devShow(name: nil)),
        ("dev sh vdpa0", .devShow(name: "vdpa0")),
        ("d s vdpa0", .devShow(name: "vdpa0")),
        ("dev del vdpa0", .devDel(name: "vdpa0", force: false)),
        ("dev del vdpa0 force", .devDel(name: "vdpa0", force: true)),
        ("dev set name vdpa0 mac 52:54:00:AA:BB:CC", .devSet(name: "vdpa0", mac: "52:54:00:aa:bb:cc")),
        ("dev set mac 52:54:00:aa:bb:cc name vdpa0", .devSet(name: "vdpa0", mac: "52:54:00:aa:bb:cc")),
        ("dev set vdpa0 mac 52:54:00:aa:bb:cc", .devSet(name: "vdpa0", mac: "52:54:00:aa:bb:cc")),
        ("dev config", .devConfigShow(name: nil)),
        ("dev config show", .devConfigShow(name: nil)),
        ("dev conf sh vdpa0", .devConfigShow(name: "vdpa0")),
        ("dev vstats show vdpa0 qidx 1", .devVstatsShow(name: "vdpa0", queueIndex: 1)),
        ("dev bind vdpa0 driver virtio_vdpa", .devBind(name: "vdpa0", driver: "virtio_vdpa")),
        ("dev bind name vdpa0 driver vhost_vdpa", .devBind(name: "vdpa0", driver: "vhost_vdpa")),
        ("dev bind vdpa0 driver none", .devBind(name: "vdpa0", driver: nil)),
        ("daemon status", .daemonStatus),
        ("daemon", .daemonStatus),
        ("da st", .daemonStatus),
        ("monitor", .monitor),
        ("mo", .monitor),
        ("help", .help(.main)),
        ("dev help", .help(.dev)),
        ("mgmtdev", .help(.mgmtdev)),
        ("dev config help", .help(.devConfig)),
        ("dev vstats help", .help(.devVstats)),
    ])
    func parsesEveryCommand(line: String, expected: Command) throws {
        #expect(try parse(line) == expected)
    }

    @Test func parsesNothingAsHelp() throws {
        #expect(try CommandParser.parse([]) == .help(.main))
    }

    @Test func devAddTakesEveryKeywordInAnyOrder() throws {
        let command = try parse("dev add mgmtdev vdpasim_net name vdpa0 mac 00:11:22:33:44:55 mtu 9000 max_vqp 4 device_features 0x300000028 driver virtio_vdpa")
        #expect(command == .devAdd(DevAddParams(name: "vdpa0", mgmtdev: "vdpasim_net", mac: "00:11:22:33:44:55", mtu: 9000, maxVqp: 4,
                                                deviceFeatures: "0x300000028", driver: "virtio_vdpa")))
        // iproute2 abbreviates name, mgmtdev and max_vqp; device_features is hex with or without 0x.
        #expect(try parse("dev a n vdpa1 m vdpasim_net max 2 device_features 28") ==
                .devAdd(DevAddParams(name: "vdpa1", mgmtdev: "vdpasim_net", maxVqp: 2, deviceFeatures: "0x28")))
    }

    @Test func requiredKeywordsAreReportedAsIproute2Does() {
        #expect(grammarError("dev add name vdpa0")?.message == "management device handle not set.")
        #expect(grammarError("dev add mgmtdev vdpasim_net")?.message == "device name is not set.")
        #expect(grammarError("dev add")?.message == "management device handle not set.")
        #expect(grammarError("dev set mac 00:11:22:33:44:55")?.message == "device name is not set.")
        #expect(grammarError("dev set name vdpa0")?.message == "mac address is not set.")
        #expect(grammarError("dev bind vdpa0")?.message == "driver is not set.")
        #expect(grammarError("dev vstats show vdpa0")?.message == "queue index is not set.")
        #expect(grammarError("dev del")?.message == "String parameter expected")
    }

    @Test func missingValuesAndBadValuesAreErrors() {
        #expect(grammarError("dev add name")?.message == "String parameter expected")
        #expect(grammarError("dev add name vdpa0 mgmtdev")?.message == "vdpa identification (\"mgmtdev_bus_name/mgmtdev_name\") expected")
        #expect(grammarError("dev add name vdpa0 mgmtdev vdpasim_net mtu")?.message == "number expected")
        #expect(grammarError("dev add name vdpa0 mgmtdev vdpasim_net mtu 70000")?.message.contains("mtu") == true)
        #expect(grammarError("dev add name vdpa0 mgmtdev vdpasim_net max_vqp -1") != nil)
        #expect(grammarError("dev add name vdpa0 mgmtdev vdpasim_net device_features xyz")?.message.contains("device_features") == true)
        #expect(grammarError("dev add name vdpa0 mgmtdev vdpasim_net mac 00:11:22")?.message == "\"00:11:22\" is invalid lladdr.")
        #expect(grammarError("dev add name vdpa0 mgmtdev vdpasim_net driver foo")?.message.contains("Unknown driver") == true)
        #expect(grammarError("dev bind vdpa0 driver foo")?.message.contains("Unknown driver") == true)
        #expect(grammarError("dev vstats show vdpa0 qidx x") != nil)
        #expect(grammarError("mgmtdev show a/b/c")?.message.hasPrefix("Wrong vdpa mgmtdev identification string format") == true)
        #expect(grammarError("dev add name vdpa0 mgmtdev a/b/c") != nil)
    }

    @Test func extraWordsAreUnknownOptions() {
        #expect(grammarError("dev show vdpa0 extra")?.message == "Unknown option \"extra\"")
        #expect(grammarError("mgmtdev show vdpasim_net extra")?.message == "Unknown option \"extra\"")
        #expect(grammarError("dev config show vdpa0 extra")?.message == "Unknown option \"extra\"")
        #expect(grammarError("dev del vdpa0 now")?.message == "Unknown option \"now\"")
        #expect(grammarError("dev add name vdpa0 mgmtdev vdpasim_net colour red")?.message == "Unknown option \"colour\"")
        #expect(grammarError("dev vstats show vdpa0 queue 1")?.message == "Unknown option \"queue\"")
        #expect(grammarError("daemon status now")?.message == "Unknown option \"now\"")
        #expect(grammarError("monitor all")?.message == "Unknown option \"all\"")
        // Exactly mtu and mac: iproute2 compares these two in full.
        #expect(grammarError("dev add name vdpa0 mgmtdev vdpasim_net mt 1500")?.message == "Unknown option \"mt\"")
    }

    @Test func unknownObjectsAndCommands() {
        let object = grammarError("frobnicate")
        #expect(object?.message == "Object \"frobnicate\" not found")
        #expect(object?.usage == .main)
        #expect(grammarError("dev frob")?.message == "Command \"frob\" not found")
        #expect(grammarError("dev frob")?.usage == .dev)
        #expect(grammarError("mgmtdev frob")?.message == "Command \"frob\" not found")
        #expect(grammarError("dev config frob")?.message == "Command \"frob\" not found")
        #expect(grammarError("dev vstats frob")?.message == "Command \"frob\" not found")
        #expect(grammarError("daemon frob")?.message == "Command \"frob\" not found")
        // vstats and set are compared in full by iproute2; so is bind here.
        #expect(grammarError("dev vst show vdpa0 qidx 0")?.message == "Command \"vst\" not found")
        #expect(grammarError("dev bi vdpa0 driver none")?.message == "Command \"bi\" not found")
        // vstats wants exactly DEV or DEV qidx N: otherwise the usage alone.
        let usageOnly = grammarError("dev vstats show")
        #expect(usageOnly?.message == "")
        #expect(usageOnly?.usage == .devVstats)
        #expect(grammarError("dev vstats show vdpa0 qidx")?.usage == .devVstats)
    }

    @Test func firstMatchingKeywordWinsAsInIproute2() throws {
        // "d" is dev (tested before daemon), "m" is mgmtdev (before monitor), "s" is show.
        #expect(try parse("d") == .devShow(name: nil))
        #expect(try parse("m s") == .mgmtdevShow(handle: nil))
        #expect(try parse("da") == .daemonStatus)
        // In dev add, "m" is mgmtdev and "ma" max_vqp.
        #expect(try parse("dev add n x m vdpasim_net ma 1") == .devAdd(DevAddParams(name: "x", mgmtdev: "vdpasim_net", maxVqp: 1)))
    }

    @Test func globalOptions() throws {
        let (options, rest) = try GlobalOptions.parse(["-jp", "--socket", "/tmp/s.sock", "dev", "show", "-x"])
        #expect(options.json && options.pretty)
        #expect(options.socketPath == "/tmp/s.sock")
        #expect(rest == ["dev", "show", "-x"])
        let (long, _) = try GlobalOptions.parse(["--json", "--pretty", "--socket=/run/x.sock", "-V", "-h"])
        #expect(long.json && long.pretty && long.showVersion && long.showHelp)
        #expect(long.socketPath == "/run/x.sock")
        #expect(throws: GrammarError.self) { try GlobalOptions.parse(["-x", "dev"]) }
        #expect(throws: GrammarError.self) { try GlobalOptions.parse(["--frob"]) }
        #expect(throws: GrammarError.self) { try GlobalOptions.parse(["--socket"]) }
        #expect(throws: GrammarError.self) { try GlobalOptions.parse(["--json=yes"]) }
    }

    @Test func grammarErrorsPrintMessageAndUsageToStderrAndExitOne() {
        let result = vdpactl(["dev", "frob"])
        #expect(result.status == .usage)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.hasPrefix("Command \"frob\" not found\nUsage: vdpactl dev show [ DEV ]\n"))
        let required = vdpactl(["dev", "add", "name", "x"])
        #expect(required.status == .usage)
        #expect(required.stderr == "management device handle not set.\n")
        let option = vdpactl(["-z", "dev"])
        #expect(option.status == .usage)
        #expect(option.stderr.hasPrefix("Unknown option \"-z\"\nUsage: vdpactl"))
    }

    @Test func helpAndVersionSucceedWithoutADaemon() {
        let socket = ["--socket", "/nonexistent/vdpad.sock"]
        for arguments in [["-h"], ["--help"], ["help"], [], ["dev", "help"], ["mgmtdev"], ["dev", "config", "help"]] {
            let result = vdpactl(socket + arguments)
            #expect(result.status == .success, "\(arguments)")
            #expect(result.stdout.hasPrefix("Usage: vdpactl"), "\(arguments)")
        }
        let version = vdpactl(["-V"])
        #expect(version.status == .success)
        #expect(version.stdout == "vdpactl utility, vdpad-\(vdpactlVersion)\n")
    }

    @Test func unreachableDaemonIsReportedWithThePath() {
        let result = vdpactl(["dev", "show"], environment: ["VDPAD_SOCKET": "/nonexistent/env.sock"])
        #expect(result.status == .unreachable)
        #expect(result.stderr.hasPrefix("vdpactl: cannot connect to vdpad at /nonexistent/env.sock: "))
        // --socket wins over the environment.
        let explicit = vdpactl(["--socket", "/nonexistent/opt.sock", "dev"], environment: ["VDPAD_SOCKET": "/nonexistent/env.sock"])
        #expect(explicit.stderr.contains("/nonexistent/opt.sock"))
    }
}

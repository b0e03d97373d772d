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
        ("port", .portShow(name: nil)),
        ("port show", .portShow(name: nil)),
        ("port list", .portShow(name: nil)),
        ("po sh p0", .portShow(name: "p0")),
        ("port add name p0", .portAdd(name: "p0", device: nil)),
        ("port add name p0 dev vdpa0", .portAdd(name: "p0", device: "vdpa0")),
        ("port a dev vdpa0 n p0", .portAdd(name: "p0", device: "vdpa0")),
        ("port add name vm1 dev vdpa0 user libvirt-qemu group kvm", .portAdd(name: "vm1", device: "vdpa0", consumerUser: "libvirt-qemu", consumerGroup: "kvm")),
        ("port del p0", .portDel(name: "p0")),
        ("port set p0 dev vdpa1", .portSet(name: "p0", device: "vdpa1")),
        ("port set name p0 dev vdpa1", .portSet(name: "p0", device: "vdpa1")),
        ("port set p0 detach", .portSet(name: "p0", device: nil)),
        ("port set p0 tap vm1tap", .portSet(name: "p0", device: nil, tap: "vm1tap")),
        ("port add name p0 tap vm1tap", .portAdd(name: "p0", device: nil, tap: "vm1tap")),
        ("port add name p0 tap vm1tap queues 4", .portAdd(name: "p0", device: nil, tap: "vm1tap", queues: 4)),
        ("port set p0 tap vm1tap queues 2", .portSet(name: "p0", device: nil, tap: "vm1tap", queues: 2)),
        ("port help", .help(.port)),
        ("vq", .vqShow(name: nil)),
        ("vq show", .vqShow(name: nil)),
        ("vq list", .vqShow(name: nil)),
        ("v s s1", .vqShow(name: "s1")),
        ("vq save dev vdpa0", .vqSave(VqStateSaveParams(device: "vdpa0"))),
        ("vq save dev vdpa0 name s1 resume replace", .vqSave(VqStateSaveParams(device: "vdpa0", name: "s1", resume: true, replace: true))),
        ("vq save replace n s1 dev vdpa0", .vqSave(VqStateSaveParams(device: "vdpa0", name: "s1", replace: true))),
        ("vq export s1", .vqExport(name: "s1", file: nil)),
        ("vq export s1 file /tmp/s1.json", .vqExport(name: "s1", file: "/tmp/s1.json")),
        ("vq import /tmp/s1.json", .vqImport(file: "/tmp/s1.json", name: nil, replace: false)),
        ("vq import /tmp/s1.json name s2 replace", .vqImport(file: "/tmp/s1.json", name: "s2", replace: true)),
        ("vq restore s1 dev vdpa1", .vqRestore(VqStateRestoreParams(name: "s1", device: "vdpa1"))),
        ("vq restore s1 port p1 dev vdpa1", .vqRestore(VqStateRestoreParams(name: "s1", device: "vdpa1", port: "p1"))),
        ("vq del s1", .vqDel(name: "s1")),
        ("vq help", .help(.vq)),
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

    @Test func portAndVqErrors() throws {
        #expect(grammarError("port add")?.message == "port name is not set.")
        #expect(grammarError("port add dev vdpa0")?.message == "port name is not set.")
        #expect(grammarError("port add name")?.message == "String parameter expected")
        #expect(grammarError("port add name p0 dev")?.message == "String parameter expected")
        #expect(grammarError("port add name p0 mac 00:11:22:33:44:55")?.message == "Unknown option \"mac\"")
        #expect(grammarError("port del")?.message == "port name is not set.")
        #expect(grammarError("port del")?.usage == .port)
        #expect(grammarError("port del p0 now")?.message == "Unknown option \"now\"")
        #expect(grammarError("port show p0 extra")?.message == "Unknown option \"extra\"")
        #expect(grammarError("port set")?.message == "port name is not set.")
        #expect(grammarError("port set dev vdpa0")?.message == "port name is not set.")
        #expect(grammarError("port set p0")?.message == "backend is not set: give dev DEV, tap TAP or detach.")
        #expect(grammarError("port set p0 dev vdpa0 detach")?.message == "dev, tap and detach exclude each other.")
        #expect(grammarError("port set p0 dev vdpa0 tap t0")?.message == "dev, tap and detach exclude each other.")
        #expect(grammarError("port add name p0 dev vdpa0 tap t0")?.message == "dev and tap exclude each other: a port has one backend.")
        #expect(grammarError("port add name p0 dev vdpa0 queues 2")?.message == "queues goes with tap: it is the software backend's queue pairs.")
        #expect(grammarError("port add name p0 tap t0 queues 17")?.message == "queues must be 1 to 16 queue pairs, not \"17\".")
        #expect(grammarError("port set p0 attach")?.message == "Unknown option \"attach\"")
        #expect(grammarError("port frob")?.message == "Command \"frob\" not found")
        #expect(grammarError("port frob")?.usage == .port)
        // set is compared in full, as for dev.
        #expect(grammarError("port se p0 detach")?.message == "Command \"se\" not found")

        #expect(grammarError("vq save")?.message == "device name is not set.")
        #expect(grammarError("vq save name s1")?.message == "device name is not set.")
        #expect(grammarError("vq save dev")?.message == "String parameter expected")
        #expect(grammarError("vq save dev vdpa0 force")?.message == "Unknown option \"force\"")
        #expect(grammarError("vq show s1 extra")?.message == "Unknown option \"extra\"")
        #expect(grammarError("vq export")?.message == "state name is not set.")
        #expect(grammarError("vq export")?.usage == .vq)
        #expect(grammarError("vq export s1 file")?.message == "String parameter expected")
        #expect(grammarError("vq export s1 to f.json")?.message == "Unknown option \"to\"")
        #expect(grammarError("vq import")?.message == "state file is not set.")
        #expect(grammarError("vq import f.json name")?.message == "String parameter expected")
        #expect(grammarError("vq import f.json force")?.message == "Unknown option \"force\"")
        #expect(grammarError("vq restore")?.message == "state name is not set.")
        #expect(grammarError("vq restore dev vdpa1")?.message == "state name is not set.")
        #expect(grammarError("vq restore s1")?.message == "device name is not set.")
        #expect(grammarError("vq restore s1 port p0")?.message == "device name is not set.")
        #expect(grammarError("vq restore s1 dev vdpa1 now")?.message == "Unknown option \"now\"")
        #expect(grammarError("vq del")?.message == "state name is not set.")
        #expect(grammarError("vq del s1 s2")?.message == "Unknown option \"s2\"")
        #expect(grammarError("vq frob")?.message == "Command \"frob\" not found")
        #expect(grammarError("vq frob")?.usage == .vq)
        // The commands that suspend, write or start devices are compared in full.
        for short in ["sa dev vdpa0", "exp s1", "imp f.json", "rest s1 dev vdpa1"] {
            #expect(grammarError("vq " + short)?.message.hasPrefix("Command ") == true, "\(short)")
        }
        // "p" stays profile; "po" is port, "v" vq.
        #expect(try parse("p") == .profileShow(name: nil))
        #expect(try parse("po") == .portShow(name: nil))
        #expect(try parse("v") == .vqShow(name: nil))
    }

    @Test func portAndVqHelpAndUsageErrors() {
        let socket = ["--socket", "/nonexistent/vdpad.sock"]
        for (arguments, first) in [(["port", "help"], "Usage: vdpactl port show [ PORT ]\n"), (["vq", "help"], "Usage: vdpactl vq show [ STATE ]\n")] {
            let result = vdpactl(socket + arguments)
            #expect(result.status == .success)
            #expect(result.stdout.hasPrefix(first), "\(result)")
        }
        let main = vdpactl(["help"])
        #expect(main.stdout.contains("OBJECT := { mgmtdev | dev | port | vq | profile"))
        #expect(main.stdout.contains("vdpactl port set PORT { dev DEV | tap TAP [ queues N ] | detach }"))
        #expect(main.stdout.contains("vdpactl vq restore STATE dev DEV [ port PORT ]"))
        let missing = vdpactl(socket + ["vq", "restore", "s1"])
        #expect(missing.status == .usage)
        #expect(missing.stdout.isEmpty)
        #expect(missing.stderr == "device name is not set.\n")
        let unknown = vdpactl(socket + ["port", "frob"])
        #expect(unknown.status == .usage)
        #expect(unknown.stderr.hasPrefix("Command \"frob\" not found\nUsage: vdpactl port show [ PORT ]\n"))
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

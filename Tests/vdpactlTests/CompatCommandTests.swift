import Foundation
import Testing
import VDPACtl
import VDPANetlink
import VDPAPolicy
import VDPARPC
import VDPATestSupport
import VirtioModel

/// `profile`, `caps` and `compat`: grammar, and against a daemon over the fake kernel.
@Suite struct CompatCommandTests {
    private func parse(_ line: String) throws -> Command {
        try CommandParser.parse(line.split(separator: " ").map(String.init))
    }

    @Test func grammar() throws {
        #expect(try parse("profile") == .profileShow(name: nil))
        #expect(try parse("profile show web-net") == .profileShow(name: "web-net"))
        #expect(try parse("prof add /tmp/p.json") == .profileAdd(file: "/tmp/p.json"))
        #expect(try parse("profile del web-net") == .profileDel(name: "web-net"))
        #expect(try parse("caps export") == .capsExport)
        #expect(try parse("compat check profile web-net mgmtdev vdpasim_net") == .compatCheck(CompatCheckSpec(profile: "web-net", mgmtdev: "vdpasim_net")))
        #expect(try parse("compat check dev vm1 to caps hv2.json mgmtdev pci/0000:41:00.2")
            == .compatCheck(CompatCheckSpec(device: "vm1", mgmtdev: "pci/0000:41:00.2", capsFile: "hv2.json")))
        #expect(try parse("compat baseline a.json b.json local type net name fleet")
            == .compatBaseline(files: ["a.json", "b.json"], includeLocal: true, deviceType: "net", name: "fleet"))
        #expect(try parse("dev add name web0 mgmtdev vdpasim_net profile web-net")
            == .devAdd(DevAddParams(name: "web0", mgmtdev: "vdpasim_net", profile: "web-net")))
        #expect(throws: GrammarError.self) { try parse("compat check mgmtdev vdpasim_net") }
        #expect(throws: GrammarError.self) { try parse("compat check profile p dev d mgmtdev m") }
        #expect(throws: GrammarError.self) { try parse("compat check profile p") }
        #expect(throws: GrammarError.self) { try parse("compat baseline") }
        // A compat command line that is wrong is an error (3), not an answer.
        #expect(vdpactl(["compat", "check", "profile", "p"]).status == .compatError)
        #expect(vdpactl(["profile", "frob"]).status == .usage)
    }

    @Test func profilesCapsAndChecksThroughVdpactl() async throws {
        let directory = InProcessDaemon.temporaryDirectory()
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        let web = Profile(name: "web-net", deviceType: .network, features: [.version1, .accessPlatform, .Net.mac, .Net.status], mac: .pool)
        try ProfileFile.encode(web).write(toFile: directory + "/web-net.json", atomically: true, encoding: .utf8)
        var mq = web
        mq.name = "mq-net"
        mq.features.formUnion([.Net.controlVirtqueue, .Net.multiqueue])
        mq.queuePairs = 2
        try ProfileFile.encode(mq).write(toFile: directory + "/mq-net.json", atomically: true, encoding: .utf8)
        try "{\n  \"schema\": \"vdpad.profile/v1\"\n  \"name\": \"x\"\n}\n".write(toFile: directory + "/bad.json", atomically: true, encoding: .utf8)

        #expect(try await daemon.vdpactl("profile", "add", directory + "/web-net.json").status == .success)
        #expect(try await daemon.vdpactl("profile", "add", directory + "/mq-net.json").status == .success)
        let bad = try await daemon.vdpactl("profile", "add", directory + "/bad.json")
        #expect(bad.status == .usage)
        #expect(bad.stderr.contains("bad.json:3:"), "\(bad)")
        let shown = try await daemon.vdpactl("profile", "show", "web-net")
        #expect(shown.stdout.hasPrefix("web-net: version 1 device_type network source api\n  features MAC STATUS VERSION_1 ACCESS_PLATFORM\n  mac pool\n"), "\(shown)")
        let listed = try await daemon.vdpactl("-j", "profile", "show")
        #expect((try listed.json() as? [[String: Any]])?.count == 2)

        let superset = try await daemon.vdpactl("compat", "check", "profile", "web-net", "mgmtdev", "vdpasim_net")
        #expect(superset.status == .superset, "\(superset)")
        #expect(superset.stdout.hasPrefix("superset: vdpasim_net"))
        #expect(superset.stdout.contains("plan: mgmtdev vdpasim_net device_features 0x300010020 (MAC STATUS VERSION_1 ACCESS_PLATFORM)"), "\(superset)")
        let refused = try await daemon.vdpactl("compat", "check", "profile", "mq-net", "mgmtdev", "vdpasim_net")
        #expect(refused.status == .incompatible)
        #expect(refused.stdout.contains("reason: missing features: MQ"), "\(refused)")
        let missing = try await daemon.vdpactl("compat", "check", "profile", "nosuch", "mgmtdev", "vdpasim_net")
        #expect(missing.status == .compatError)

        // This host's document, saved and compared against: what a device presents is identical.
        let exported = try await daemon.vdpactl("caps", "export")
        #expect(exported.status == .success)
        try exported.stdout.write(toFile: directory + "/here.json", atomically: true, encoding: .utf8)
        #expect(try await daemon.vdpactl("dev", "add", "name", "web0", "mgmtdev", "vdpasim_net", "profile", "web-net").status == .success)
        let identical = try await daemon.vdpactl("compat", "check", "dev", "web0", "caps", directory + "/here.json", "mgmtdev", "vdpasim_net")
        #expect(identical.status == .superset || identical.status == .identical, "\(identical)")
        let notADocument = try await daemon.vdpactl("compat", "check", "dev", "web0", "caps", directory + "/web-net.json")
        #expect(notADocument.status == .compatError)

        let refusedDevice = try await daemon.vdpactl("dev", "add", "name", "mq0", "mgmtdev", "vdpasim_net", "profile", "mq-net")
        #expect(refusedDevice.status == .refused)
        #expect(refusedDevice.stderr.contains("vdpasim_net cannot present profile mq-net"), "\(refusedDevice)")

        let baseline = try await daemon.vdpactl("compat", "baseline", directory + "/here.json", "name", "fleet")
        #expect(baseline.status == .success, "\(baseline)")
        guard case .success(let profile) = ProfileFile.parse(text: baseline.stdout, fileName: "stdout") else {
            Issue.record("the baseline is not a profile file: \(baseline)")
            return
        }
        #expect(profile.name == "fleet")
        #expect(try await daemon.vdpactl("profile", "del", "web-net").status == .success)
        try await daemon.stop()
    }
}

/// `quirk show` and `quirk test`.
@Suite struct QuirkCommandTests {
    @Test func grammar() throws {
        #expect(try CommandParser.parse(["quirk", "show"]) == .quirkShow)
        #expect(try CommandParser.parse(["quirk", "test", "/tmp/q.conf"]) == .quirkTest(file: "/tmp/q.conf"))
        #expect(throws: GrammarError.self) { try CommandParser.parse(["quirk", "test"]) }
        #expect(throws: GrammarError.self) { try CommandParser.parse(["quirk", "frob"]) }
    }

    @Test func testAFileAgainstTheDaemonsManagementDevices() async throws {
        let directory = InProcessDaemon.temporaryDirectory()
        let daemon = try await InProcessDaemon(kernel: FakeVDPAKernel())
        try """
        [quirk sim-no-status]
        match.mgmtdev = vdpasim_net
        match.class = net
        action = clear STATUS
        """.write(toFile: directory + "/good.conf", atomically: true, encoding: .utf8)
        let good = try await daemon.vdpactl("quirk", "test", directory + "/good.conf")
        #expect(good.status == .success, "\(good)")
        #expect(good.stdout == "sim-no-status: \(directory)/good.conf:1\n  actions clear STATUS\n  applies_to vdpasim_net\n")

        try "[quirk broken]\naction = clear NO_SUCH_BIT\n".write(toFile: directory + "/bad.conf", atomically: true, encoding: .utf8)
        let bad = try await daemon.vdpactl("quirk", "test", directory + "/bad.conf")
        #expect(bad.status == .refused)
        #expect(bad.stderr.contains("bad.conf:"), "\(bad)")

        let shown = try await daemon.vdpactl("-j", "quirk", "show")
        #expect(shown.status == .success)
        #expect(shown.stdout == #"{"errors":[],"quirks":[]}"# + "\n")
        try await daemon.stop()
    }
}

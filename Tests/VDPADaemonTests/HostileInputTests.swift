import Foundation
import Testing
import VDPAPolicy
import VDPARPC
import VDPAStore
import VDPATestSupport
import VirtioModel
@testable import VDPADaemon

/// Numbers out of range, names that are paths, records a damaged database holds: each gets an
/// error, and the daemon goes on answering.
@Suite struct HostileInputTests {
    static let caps = #"{"schema":"vdpad.caps/v1","host":"hv2","mgmtdevs":[{"mgmtdev":{"name":"vdpasim_net"},"max_supported_vqs":9,"backend":{},"classes":[{"class":"net","features":{"hex":"0x300030020"},"limits":LIMITS,"attributes":{},"quirks":[]}]}]}"#
    static let profile = #"{"schema":"vdpad.profile/v1","name":"p1","version":VERSION,"device_type":"network","features":{"hex":"0x300000020"}EXTRA}"#
    static let state = #"{"schema":"vdpad.vqstate/v1","name":"s1","host":"h","taken_at":"2026-11-22T10:15:00Z","source":{"device":"vdpa0"},"device_type":"network","device_features":{"hex":"0x300000020"},"negotiated_features":{"hex":"0x300000020"},"backend_features":["SUSPEND"],"status":[],"config":"","queue_count":COUNT,"queues":[{"index":INDEX,"size":SIZE,"layout":"split","base":0,"available_index":AVAIL,"used_index":0,"enabled":true}]}"#

    static func request(_ method: String, _ params: String) -> String {
        #"{"jsonrpc":"2.0","id":1,"method":"\#(method)","params":\#(params)}"#
    }

    static func filled(_ template: String, _ values: [String: String]) -> String {
        values.reduce(template) { $0.replacingOccurrences(of: $1.key, with: $1.value) }
    }

    static func error(_ dispatcher: RPCDispatcher, _ line: String) async throws -> (code: Int?, message: String, parameter: String?) {
        let bytes = try #require(await dispatcher.handle(line: Array(line.utf8)).responseLine)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        let error = object["error"] as? [String: Any]
        return (error?["code"] as? Int, error?["message"] as? String ?? "", (error?["data"] as? [String: Any])?["parameter"] as? String)
    }

    static let near2to63 = "9223372036854775800"

    /// Each request carries one number outside what virtio allows; each is `invalid_params`
    /// naming the key, and the daemon still answers the next request.
    static let outOfRange: [(line: String, parameter: String)] = [
        (request("compat_baseline", #"{"documents":[\#(filled(caps, ["LIMITS": #"{"max_queue_size":\#(near2to63)}"#]))]}"#), "max_queue_size"),
        (request("compat_baseline", #"{"documents":[\#(filled(caps, ["LIMITS": #"{"max_queue_pairs":-1}"#]))]}"#), "max_queue_pairs"),
        (request("compat_check", #"{"source":{"profile":"x"},"destination":{"caps":\#(filled(caps, ["LIMITS": #"{"max_mtu":70000}"#]))}}"#), "max_mtu"),
        (request("profile_add", filled(profile, ["VERSION": "9223372036854775807", "EXTRA": ""])), "version"),
        (request("profile_add", filled(profile, ["VERSION": "0", "EXTRA": ""])), "version"),
        (request("profile_add", filled(profile, ["VERSION": "1", "EXTRA": #","queue_size":\#(near2to63)"#])), "queue_size"),
        (request("profile_add", filled(profile, ["VERSION": "1", "EXTRA": #","queue_pairs":65536"#])), "queue_pairs"),
        (request("profile_add", filled(profile, ["VERSION": "1", "EXTRA": #","mtu":-5"#])), "mtu"),
        (request("dev_add", #"{"name":"x","mgmtdev":"vdpasim_net","mtu":\#(near2to63)}"#), "mtu"),
        (request("dev_add", #"{"name":"x","mgmtdev":"vdpasim_net","max_vqp":-9223372036854775808}"#), "max_vqp"),
        (request("vq_state_import", #"{"state":\#(filled(state, ["COUNT": near2to63, "INDEX": "0", "SIZE": "64", "AVAIL": "0"]))}"#), "queue_count"),
        (request("vq_state_import", #"{"state":\#(filled(state, ["COUNT": "2", "INDEX": "-1", "SIZE": "64", "AVAIL": "0"]))}"#), "index"),
        (request("vq_state_import", #"{"state":\#(filled(state, ["COUNT": "2", "INDEX": "0", "SIZE": "65536", "AVAIL": "0"]))}"#), "size"),
        (request("vq_state_import", #"{"state":\#(filled(state, ["COUNT": "2", "INDEX": "0", "SIZE": "64", "AVAIL": "70000"]))}"#), "available_index"),
    ]

    @Test func numbersOutOfRangeAreInvalidParamsNamingTheKey() async throws {
        let dispatcher = RPCDispatcher(controller: try await makeController(kernel: FakeVDPAKernel()))
        for (line, parameter) in Self.outOfRange {
            let answer = try await Self.error(dispatcher, line)
            #expect(answer.code == -32602 && answer.parameter == parameter, "\(line) → \(answer)")
            #expect(answer.message.contains("'\(parameter)'"), "\(answer.message)")
        }
        #expect(try await Self.error(dispatcher, Self.request("daemon_status", "{}")).code == nil)
    }

    /// The largest version a profile can have can still be asked to be replaced: the answer
    /// names the next version without overflowing.
    @Test func theLargestVersionIsRefusedWithoutAnOverflow() async throws {
        let dispatcher = RPCDispatcher(controller: try await makeController(kernel: FakeVDPAKernel()))
        let largest = String(VirtioBounds.version.upperBound)
        #expect(try await Self.error(dispatcher, Self.request("profile_add", Self.filled(Self.profile, ["VERSION": largest, "EXTRA": ""]))).code == nil)
        let again = try await Self.error(dispatcher, Self.request("profile_add", Self.filled(Self.profile, ["VERSION": largest, "EXTRA": #","description":"changed""#])))
        #expect(again.code == RPCErrorCode.alreadyExists.rawValue && again.message.contains("\(VirtioBounds.version.upperBound + 1)"), "\(again)")
    }

    /// A split ring needs a power of two: the baseline of a host whose largest queue is not
    /// one is the power of two below it.
    @Test func theBaselineQueueSizeIsThePowerOfTwoBelowTheSmallestLimit() throws {
        for (limit, expected) in [(1, 1), (1000, 512), (1024, 1024), (32768, 32768), (32767, 16384)] {
            let document = CapabilitiesDocument(host: "h", mgmtdevs: [MgmtdevCapabilities(identity: DeviceIdentity(bus: nil, name: "vdpasim_net"), maxSupportedVqs: nil, classes: [
                ClassCapabilities(deviceType: .network, supportedFeatures: nil, features: [.version1], limits: DeviceLimits(maxQueueSize: limit)),
            ])])
            #expect(Baseline.compute(over: [document], deviceType: .network).profile?.queueSize == expected, "limit \(limit)")
        }
        #expect(DeviceLimits.netQueuePairs(maxVirtqueues: .min) == 1 && DeviceLimits.netQueuePairs(maxVirtqueues: .max) == 0x8000)
    }

    /// Records a damaged (or older) database holds: a profile whose version is beyond the bound
    /// is left out, a device whose MTU is beyond it fails to be re-created, a saved state with a
    /// queue twice is refused; the daemon starts and answers each time.
    @Test func damagedRecordsAreRefusedNotFatal() async throws {
        let directory = InProcessDaemon.temporaryDirectory()
        do {
            let store = try StateStore(directory: directory)
            let json = Self.filled(Self.profile, ["VERSION": "9223372036854775807", "EXTRA": ""])
            try store.save(ProfileRecord(name: "p1", version: .max, json: json))
            try store.save(DeviceRecord(name: "vdpa9", managementBus: nil, managementName: "vdpasim_net", mtu: 70000, state: .active))
            var state = Self.filled(Self.state, ["COUNT": "2", "INDEX": "0", "SIZE": "64", "AVAIL": "0"])
            state = state.replacingOccurrences(of: #""queues":["#, with: #""queues":[{"index":0,"size":64,"layout":"split","base":0,"available_index":0,"used_index":0,"enabled":true},"#)
            try store.save(SnapshotRecord(name: "s1", device: "vdpa0", port: nil, origin: "saved", json: state))
        }
        let kernel = FakeVDPAKernel()
        let controller = try await makeController(kernel: kernel, directory: directory)
        let report = try await controller.reconcile()
        #expect(report.failed["vdpa9"]?.contains("mtu 70000") == true, "\(report)")
        #expect(await controller.listProfiles().profiles.isEmpty)
        let dispatcher = RPCDispatcher(controller: controller)
        let restore = try await Self.error(dispatcher, Self.request("vq_state_restore", #"{"name":"s1","device":"vdpa0"}"#))
        #expect(restore.code == RPCErrorCode.stateStoreFailure.rawValue && restore.message.contains("appears twice"), "\(restore)")
        // It can still be deleted, once.
        #expect(try await Self.error(dispatcher, Self.request("vq_state_del", #"{"name":"s1"}"#)).code == nil)
        #expect(try await Self.error(dispatcher, Self.request("vq_state_del", #"{"name":"s1"}"#)).code == RPCErrorCode.notFound.rawValue)
        #expect(try await Self.error(dispatcher, Self.request("daemon_status", "{}")).code == nil)
    }

    /// A new device's name is ASCII, one path component, at most 31 bytes.
    @Test func deviceNamesThatArePathsOrUnicodeAreRefused() async throws {
        let dispatcher = RPCDispatcher(controller: try await makeController(kernel: FakeVDPAKernel()))
        for name in ["e\u{301}", "\u{e9}", "a/b", "..", "-x", String(repeating: "a", count: 32)] {
            let answer = try await Self.error(dispatcher, Self.request("dev_add", #"{"name":"\#(name)","mgmtdev":"vdpasim_net"}"#))
            #expect(answer.code == -32602 && answer.parameter == "name", "\(name) → \(answer)")
        }
    }
}

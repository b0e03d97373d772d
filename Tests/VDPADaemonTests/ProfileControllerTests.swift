import Foundation
import Logging
import Testing
import VDPANetlink
import VDPAPolicy
import VDPARPC
import VDPAStore
import VDPATestSupport
import VirtioModel
@testable import VDPADaemon

/// The web tier NIC of the examples: a subset of what vdpasim_net offers.
let webProfile = Profile(name: "web-net", version: 1, deviceType: .network,
                         features: [.version1, .accessPlatform, .Net.mac, .Net.status, .Net.mtu], mac: .pool, mtu: 1500)

func makeController(kernel: FakeVDPAKernel, directory: String = InProcessDaemon.temporaryDirectory(), policy: LoadedPolicy) async throws -> VDPAController {
    let controller = VDPAController(
        kernel: kernel, store: try StateStore(directory: directory),
        settings: .init(restoreOnStart: true, socketPath: "/tmp/x.sock", stateDirectory: directory, version: "test"),
        policy: policy, logger: Logger(label: "test"))
    try await controller.reconcile()
    return controller
}

/// A logger that keeps what it is told, to check what bad policy files produce.
final class RecordingLogHandler: LogHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [String] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        let details = (metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        lock.withLock { storage.append("\(level) \(message) \(details)") }
    }

    var lines: [String] { lock.withLock { storage } }
}

@Suite struct ProfileControllerTests {
    @Test func addedProfilesAreListedAndSurviveARestart() async throws {
        let directory = InProcessDaemon.temporaryDirectory()
        let controller = try await makeController(kernel: FakeVDPAKernel(), directory: directory)
        let added = try await controller.addProfile(webProfile)
        #expect(added.source == .api)
        #expect(added.profile == webProfile)
        #expect(added.warnings.isEmpty)
        let restarted = try await makeController(kernel: FakeVDPAKernel(), directory: directory)
        #expect(try await restarted.profile(ProfileNameParams(name: "web-net")).profile == webProfile)
        #expect(await restarted.listProfiles().profiles.map(\.profile.name) == ["web-net"])
    }

    @Test func anInvalidProfileIsRefusedWithEveryReason() async throws {
        let controller = try await makeController(kernel: FakeVDPAKernel())
        let bad = Profile(name: "fast-net", deviceType: .network, features: [.Net.guestTSO4, .Net.multiqueue], mtu: 9000, queuePairs: 4)
        let error = await expectAPIError(.invalidParams) { _ = try await controller.addProfile(bad) }
        let codes = error?.data?.reasons?.filter { $0.severity == "error" }.map(\.code) ?? []
        #expect(codes.contains("feature_required"))           // VERSION_1
        #expect(codes.filter { $0 == "feature_dependency" }.count == 2)  // GUEST_TSO4, MQ
        #expect(codes.contains("mtu_needs_feature"))
        #expect(error?.data?.reasons?.contains { $0.severity == "warning" } == true)  // ACCESS_PLATFORM
        #expect(await controller.listProfiles().profiles.isEmpty)
    }

    @Test func aHigherVersionReplacesTheSameVersionIsRefused() async throws {
        let controller = try await makeController(kernel: FakeVDPAKernel())
        _ = try await controller.addProfile(webProfile)
        _ = try await controller.addProfile(webProfile)  // the same again: accepted, nothing changes
        var changed = webProfile
        changed.mtu = 1400
        await expectAPIError(.alreadyExists) { _ = try await controller.addProfile(changed) }
        changed.version = 2
        #expect(try await controller.addProfile(changed).profile.mtu == 1400)
        #expect(try await controller.profile(ProfileNameParams(name: "web-net")).profile.version == 2)
    }

    @Test func deletion() async throws {
        let directory = InProcessDaemon.temporaryDirectory()
        let controller = try await makeController(kernel: FakeVDPAKernel(), directory: directory)
        _ = try await controller.addProfile(webProfile)
        #expect(try await controller.deleteProfile(ProfileNameParams(name: "web-net")).name == "web-net")
        await expectAPIError(.notFound) { _ = try await controller.deleteProfile(ProfileNameParams(name: "web-net")) }
        await expectAPIError(.notFound) { _ = try await controller.profile(ProfileNameParams(name: "web-net")) }
        #expect(try StateStore(directory: directory).profiles().isEmpty)
    }

    @Test func profileFilesAreLoadedBadOnesLoggedWithFileAndLineAndSkipped() async throws {
        let directory = InProcessDaemon.temporaryDirectory()
        let profiles = directory + "/profiles.d"
        try FileManager.default.createDirectory(atPath: profiles, withIntermediateDirectories: true)
        try ProfileFile.encode(webProfile).write(toFile: profiles + "/web-net.json", atomically: true, encoding: .utf8)
        try "{\n  \"schema\": \"vdpad.profile/v1\",\n  \"name\": \"broken\"\n  \"version\": 1\n}\n"
            .write(toFile: profiles + "/broken.json", atomically: true, encoding: .utf8)
        var invalid = webProfile
        invalid.name = "invalid"
        invalid.queuePairs = 4
        try ProfileFile.encode(invalid).write(toFile: profiles + "/invalid.json", atomically: true, encoding: .utf8)
        try "not a profile".write(toFile: profiles + "/README", atomically: true, encoding: .utf8)

        let handler = RecordingLogHandler()
        let logger = Logger(label: "test") { _ in handler }
        let policy = LoadedPolicy.load(profilesDirectory: profiles, quirksDirectory: nil, logger: logger)
        #expect(policy.profiles.map(\.profile.name) == ["web-net"])
        let errors = handler.lines.filter { $0.hasPrefix("error") }
        #expect(errors.contains { $0.contains("broken.json:4:") }, "\(errors)")
        #expect(errors.contains { $0.contains("invalid.json") && $0.contains("queue_pairs 4 needs the MQ feature") }, "\(errors)")
        #expect(errors.count == 2)

        let controller = try await makeController(kernel: FakeVDPAKernel(), directory: directory, policy: policy)
        let info = try await controller.profile(ProfileNameParams(name: "web-net"))
        #expect(info.source == .file)
        #expect(info.file == profiles + "/web-net.json")
        // A file's profile is changed through its file only.
        await expectAPIError(.alreadyExists) { _ = try await controller.addProfile(webProfile) }
        await expectAPIError(.notSupported) { _ = try await controller.deleteProfile(ProfileNameParams(name: "web-net")) }
    }

    @Test func aMissingProfilesDirectoryIsNoError() {
        let handler = RecordingLogHandler()
        let policy = LoadedPolicy.load(profilesDirectory: "/nonexistent/vdpad/profiles.d", quirksDirectory: nil, logger: Logger(label: "test") { _ in handler })
        #expect(policy.profiles.isEmpty)
        #expect(!handler.lines.contains { $0.hasPrefix("error") })
    }
}

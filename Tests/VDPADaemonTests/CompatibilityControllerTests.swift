import Foundation
import Logging
import Testing
import VDPANetlink
import VDPAPolicy
import VDPARPC
import VDPATestSupport
import VirtioModel
@testable import VDPADaemon

/// A ConnectX-like PCI function: MQ, GUEST_ANNOUNCE, many queues, every attribute.
let pciNet = FakeVDPAKernel.ManagementDeviceModel(
    device: ManagementDevice(
        handle: ManagementDeviceHandle(bus: "pci", name: "0000:41:00.2"), supportedClasses: [.network],
        maxSupportedVirtqueues: 17, supportedFeatures: VirtioFeatures(rawValue: 0x3_0063_0028)),
    acceptedAttributes: [.netMACAddress, .netMTU, .netMaxVirtqueuePairs, .deviceFeatures],
    parent: ManagementDeviceParent(driver: "mlx5_core", pciVendor: 0x15b3, pciDevice: 0x101e))

func quirks(_ text: String) -> QuirkDatabase {
    let (database, errors) = QuirkDatabase.load([("50-test.conf", text)])
    #expect(errors.isEmpty, "\(errors)")
    return database
}

@Suite struct CompatibilityControllerTests {
    let noAnnounce = quirks("""
    [quirk no-announce]
    match.driver = mlx5_core
    match.class = net
    action = clear GUEST_ANNOUNCE
    action = cap queue_pairs 4
    """)

    @Test func theCapabilitiesDocumentHasTheSysfsIdentityAndTheQuirksInForce() async throws {
        let kernel = FakeVDPAKernel(managementDevices: [FakeVDPAKernel.simulatorNet, pciNet])
        let controller = try await makeController(kernel: kernel, policy: LoadedPolicy(quirks: noAnnounce))
        let document = try await controller.exportCapabilities()
        #expect(document.vdpadVersion == "test")
        let pci = try #require(document.mgmtdev("pci/0000:41:00.2"))
        #expect(pci.identity.driver == "mlx5_core")
        #expect(pci.identity.pciVendor == 0x15b3)
        let net = try #require(pci.capabilities(for: .network))
        #expect(net.supportedFeatures?.contains(.Net.guestAnnounce) == true)
        #expect(!net.features.contains(.Net.guestAnnounce))
        #expect(net.limits.maxQueuePairs == 4)
        #expect(net.quirks.map(\.name) == ["no-announce"])
        // The quirk matches on the driver: the simulator has none.
        #expect(try #require(document.mgmtdev("vdpasim_net")?.capabilities(for: .network)).quirks.isEmpty)
        // The document round-trips through its JSON.
        let data = try JSONEncoder().encode(document)
        #expect(try JSONDecoder().decode(CapabilitiesDocument.self, from: data) == document)
    }

    @Test func aProfileAgainstALocalManagementDevice() async throws {
        let kernel = FakeVDPAKernel(managementDevices: [FakeVDPAKernel.simulatorNet, pciNet])
        let controller = try await makeController(kernel: kernel, policy: LoadedPolicy(quirks: noAnnounce))
        _ = try await controller.addProfile(webProfile)
        let superset = try await controller.checkCompatibility(CompatCheckParams(source: .init(profile: "web-net"), destination: .init(mgmtdev: "vdpasim_net")))
        #expect(superset.result.answer == .superset)
        #expect(superset.exitCode == 1)
        #expect(superset.result.plan?.deviceFeatures?.hex == webProfile.features.hexString)

        var announcing = webProfile
        announcing.name = "announcing"
        announcing.features.formUnion([.Net.controlVirtqueue, .Net.guestAnnounce, .Net.multiqueue])
        announcing.queuePairs = 8
        _ = try await controller.addProfile(announcing)
        let refused = try await controller.checkCompatibility(CompatCheckParams(source: .init(profile: "announcing"), destination: .init(mgmtdev: "pci/0000:41:00.2")))
        #expect(refused.result.answer == .incompatible)
        #expect(refused.exitCode == 2)
        #expect(refused.result.reasons.map(\.code) == [.featuresRemovedByQuirk, .queuePairsOverLimit])
        #expect(refused.result.reasons.first?.quirk == "no-announce")
        #expect(refused.result.plan == nil)
    }

    @Test func aDeviceAgainstAnotherHostsDocument() async throws {
        let kernel = FakeVDPAKernel(managementDevices: [FakeVDPAKernel.simulatorNet, pciNet])
        let here = try await makeController(kernel: kernel)
        _ = try await here.addDevice(DevAddParams(name: "vm1-net0", mgmtdev: "vdpasim_net", mac: "52:54:00:12:34:56", mtu: 1500))
        // The other host: the same simulator, without MTU (a quirk there cleared it).
        let there = try await makeController(kernel: FakeVDPAKernel(), policy: LoadedPolicy(quirks: quirks("""
        [quirk no-mtu]
        match.mgmtdev = vdpasim_*
        match.class = net
        action = clear MTU
        """)))
        let document = try await there.exportCapabilities()
        let result = try await here.checkCompatibility(CompatCheckParams(source: .init(device: "vm1-net0"), destination: .init(caps: document)))
        #expect(result.result.answer == .incompatible)
        #expect(result.result.reasons.first?.code == .featuresRemovedByQuirk)
        #expect(result.result.reasons.first?.features == ["MTU"])
        // The same host's own document: identical.
        let same = try await here.checkCompatibility(CompatCheckParams(source: .init(device: "vm1-net0"), destination: .init(mgmtdev: "vdpasim_net", caps: try await here.exportCapabilities())))
        #expect(same.result.answer == .identical)
        #expect(same.result.plan?.mac == .fixed(try #require(MACAddress("52:54:00:12:34:56"))))
    }

    @Test func badSourcesAndDestinations() async throws {
        let controller = try await makeController(kernel: FakeVDPAKernel())
        _ = try await controller.addProfile(webProfile)
        await expectAPIError(.invalidParams) { _ = try await controller.checkCompatibility(CompatCheckParams(source: .init(), destination: .init(mgmtdev: "vdpasim_net"))) }
        await expectAPIError(.invalidParams) { _ = try await controller.checkCompatibility(CompatCheckParams(source: .init(profile: "web-net", device: "x"), destination: .init(mgmtdev: "vdpasim_net"))) }
        await expectAPIError(.invalidParams) { _ = try await controller.checkCompatibility(CompatCheckParams(source: .init(profile: "web-net"), destination: .init())) }
        await expectAPIError(.notFound) { _ = try await controller.checkCompatibility(CompatCheckParams(source: .init(profile: "nosuch"), destination: .init(mgmtdev: "vdpasim_net"))) }
        await expectAPIError(.notFound) { _ = try await controller.checkCompatibility(CompatCheckParams(source: .init(profile: "web-net"), destination: .init(mgmtdev: "pci/0000:99:00.0"))) }
        // A block management device does not create network devices.
        let block = try await controller.checkCompatibility(CompatCheckParams(source: .init(profile: "web-net"), destination: .init(mgmtdev: "vdpasim_blk")))
        #expect(block.result.reasons.map(\.code) == [.deviceTypeUnsupported])
    }

    @Test func baselineOfThisHostAndAnother() async throws {
        let there = try await makeController(kernel: FakeVDPAKernel(managementDevices: [pciNet]), policy: LoadedPolicy(quirks: noAnnounce))
        let here = try await makeController(kernel: FakeVDPAKernel())
        let result = try await here.computeBaseline(CompatBaselineParams(documents: [try await there.exportCapabilities()], includeLocal: true, name: "fleet-net"))
        let profile = try #require(result.profile)
        #expect(profile.name == "fleet-net")
        #expect(profile.features == VirtioFeatures(rawValue: 0x3_0003_0028))  // MTU MAC STATUS CTRL_VQ VERSION_1 ACCESS_PLATFORM
        #expect(result.sources.map(\.mgmtdev) == ["vdpasim_net", "pci/0000:41:00.2"])
        // The baseline is a valid profile every host can present.
        #expect(profile.errors.isEmpty)
        _ = try await here.addProfile(profile)
        let check = try await here.checkCompatibility(CompatCheckParams(source: .init(profile: "fleet-net"), destination: .init(mgmtdev: "vdpasim_net")))
        #expect(check.result.answer != .incompatible)

        await expectAPIError(.invalidParams) { _ = try await here.computeBaseline(CompatBaselineParams()) }
        await expectAPIError(.invalidParams) { _ = try await here.computeBaseline(CompatBaselineParams(includeLocal: true, deviceType: "console")) }
    }

    @Test func quirkFilesAreLoadedBadLinesLoggedAndSkipped() throws {
        let directory = InProcessDaemon.temporaryDirectory() + "/quirks.d"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try """
        [quirk no-announce]
        match.driver = mlx5_core
        match.class = net
        action = clear GUEST_ANNOUNCE

        [quirk broken]
        match.driver = acme
        action = clear TURBO
        """.write(toFile: directory + "/50-mlx.conf", atomically: true, encoding: .utf8)
        let handler = RecordingLogHandler()
        let policy = LoadedPolicy.load(profilesDirectory: nil, quirksDirectory: directory, logger: Logger(label: "test") { _ in handler })
        #expect(policy.quirks.quirks.map(\.name) == ["no-announce"])
        #expect(handler.lines.contains { $0.hasPrefix("error") && $0.contains("50-mlx.conf:8:") && $0.contains("TURBO") }, "\(handler.lines)")
    }
}

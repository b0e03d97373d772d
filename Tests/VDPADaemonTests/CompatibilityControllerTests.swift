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

    @Test func quirksShapeEveryDevAddAndAreRecorded() async throws {
        let kernel = FakeVDPAKernel(managementDevices: [pciNet])
        let controller = try await makeController(kernel: kernel, policy: LoadedPolicy(quirks: noAnnounce))
        // No profile, no device_features: the bit the quirk clears is masked.
        let plain = try await controller.addDevice(DevAddParams(name: "q0", mgmtdev: "pci/0000:41:00.2"))
        #expect(plain.record?.quirks == ["no-announce"])
        let provisioned = try #require(plain.record?.provisionedFeatures?.features)
        #expect(!provisioned.contains(VirtioFeatures.Net.guestAnnounce))
        #expect(provisioned == VirtioFeatures(rawValue: 0x3_0063_0028).subtracting(VirtioFeatures.Net.guestAnnounce))
        // Asking for the cleared bit, or over the cap, is refused before any device exists.
        await expectAPIError(.invalidParams) {
            _ = try await controller.addDevice(DevAddParams(name: "q1", mgmtdev: "pci/0000:41:00.2", deviceFeatures: "0x300630028"))
        }
        await expectAPIError(.invalidParams) {
            _ = try await controller.addDevice(DevAddParams(name: "q2", mgmtdev: "pci/0000:41:00.2", maxVqp: 8))
        }
        #expect(try await kernel.devices().map(\.name) == ["q0"])
        // A management device no quirk matches is left as it is.
        let simulator = try await makeController(kernel: FakeVDPAKernel(), policy: LoadedPolicy(quirks: noAnnounce))
        let untouched = try await simulator.addDevice(DevAddParams(name: "s0", mgmtdev: "vdpasim_net"))
        #expect(untouched.record?.quirks == nil)
        #expect(untouched.record?.deviceFeatures == nil)
    }

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

@Suite struct ProfileProvisioningTests {
    @Test func aDeviceFromAProfilePresentsExactlyItsFeaturesAndRecordsIt() async throws {
        let directory = InProcessDaemon.temporaryDirectory()
        let kernel = FakeVDPAKernel()
        let controller = try await makeController(kernel: kernel, directory: directory)
        _ = try await controller.addProfile(webProfile)
        let info = try await controller.addDevice(DevAddParams(name: "web0", mgmtdev: "vdpasim_net", profile: "web-net"))
        let record = try #require(info.record)
        #expect(record.profile == "web-net")
        #expect(record.profileVersion == 1)
        #expect(record.quirks == [])
        #expect(record.mtu == 1500)
        #expect(record.deviceFeatures?.hex == webProfile.features.hexString)
        #expect(record.provisionedFeatures?.hex == webProfile.features.hexString)
        // Pool policy: a locally administered unicast address.
        let mac = try #require(record.mac.flatMap(MACAddress.init))
        #expect(mac.isValidUnicast)
        #expect(try await kernel.deviceConfig(named: "web0").deviceFeatures == webProfile.features)
        // The record survives a restart.
        let restarted = try await makeController(kernel: kernel, directory: directory)
        #expect(try await restarted.device(DeviceNameParams(name: "web0")).record?.profile == "web-net")
    }

    @Test func aProfileTheManagementDeviceCannotMeetIsRefusedBeforeAnyDeviceExists() async throws {
        let directory = InProcessDaemon.temporaryDirectory()
        let kernel = FakeVDPAKernel()
        let controller = try await makeController(kernel: kernel, directory: directory)
        var mq = webProfile
        mq.name = "mq-net"
        mq.features.formUnion([.Net.controlVirtqueue, .Net.multiqueue, .Net.guestAnnounce])
        mq.queuePairs = 4
        _ = try await controller.addProfile(mq)
        let error = await expectAPIError(.profileIncompatible) {
            _ = try await controller.addDevice(DevAddParams(name: "mq0", mgmtdev: "vdpasim_net", profile: "mq-net"))
        }
        #expect(error?.data?.reasons?.map(\.code) == ["features_missing", "queue_pairs_over_limit"])
        #expect(error?.data?.reasons?.first?.features == ["GUEST_ANNOUNCE", "MQ"])
        #expect(!kernel.calls.contains { $0.hasPrefix("DEV_NEW") })
        #expect(try StateStore(directory: directory).devices().isEmpty)
    }

    @Test func quirksShapeTheRequestAndAreRecorded() async throws {
        let kernel = FakeVDPAKernel(managementDevices: [pciNet])
        let controller = try await makeController(kernel: kernel, policy: LoadedPolicy(quirks: quirks("""
        [quirk no-announce]
        match.driver = mlx5_core
        match.class = net
        action = clear GUEST_ANNOUNCE
        """)))
        // Everything the function presents once the quirk removed GUEST_ANNOUNCE: identical after
        // quirks, yet the kernel would offer the bit, so it is masked.
        let all = Profile(name: "all", deviceType: .network, features: VirtioFeatures(rawValue: 0x3_0043_0028), mac: .none)
        _ = try await controller.addProfile(all)
        let info = try await controller.addDevice(DevAddParams(name: "all0", mgmtdev: "pci/0000:41:00.2", profile: "all"))
        #expect(info.record?.quirks == ["no-announce"])
        #expect(info.record?.provisionedFeatures?.hex == "0x300430028")
        #expect(info.record?.mac == nil)
    }

    @Test func attributesTheProfileSetsAreRefused() async throws {
        let controller = try await makeController(kernel: FakeVDPAKernel())
        _ = try await controller.addProfile(webProfile)
        let error = await expectAPIError(.invalidParams) {
            _ = try await controller.addDevice(DevAddParams(name: "web1", mgmtdev: "vdpasim_net", mtu: 9000, profile: "web-net"))
        }
        #expect(error?.data?.parameter == "mtu")
        await expectAPIError(.notFound) { _ = try await controller.addDevice(DevAddParams(name: "web1", mgmtdev: "vdpasim_net", profile: "nosuch")) }
        // The pool policy takes a given address.
        let info = try await controller.addDevice(DevAddParams(name: "web1", mgmtdev: "vdpasim_net", mac: "52:54:00:00:00:07", profile: "web-net"))
        #expect(info.record?.mac == "52:54:00:00:00:07")
    }
}

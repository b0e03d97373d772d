import Foundation
import Testing
import VDPAClient
import VDPAPolicy
import VDPARPC
import VDPATestSupport
import VirtioModel

extension LabTests.Daemon {
    /// A quirk that clears a bit, and a baseline over this host and a second one: what the
    /// Linux driver negotiates on the device provisioned from the baseline shows both.
    @Test func aBaselineWithAQuirkIsWhatTheLinuxDriverNegotiates() async throws {
        let directory = InProcessDaemon.temporaryDirectory("vdpad-lab")
        try FileManager.default.createDirectory(atPath: directory + "/quirks.d", withIntermediateDirectories: true)
        try """
        # The simulator's link status is not wanted on this host.
        [quirk lab-no-status]
        match.mgmtdev = vdpasim_net
        match.class = net
        action = clear STATUS
        """.write(toFile: directory + "/quirks.d/lab.conf", atomically: true, encoding: .utf8)
        let daemon = try await SpawnedDaemon(directory: directory, configuration: "quirks_dir = \(directory)/quirks.d\n")

        let local = try await daemon.withClient { try $0.call(.capsExport, as: CapabilitiesDocument.self) }
        let simulator: MgmtdevCapabilities? = local.mgmtdevs.first { (entry: MgmtdevCapabilities) -> Bool in entry.identity.name == "vdpasim_net" }
        let netClass: ClassCapabilities? = simulator?.classes.first { (entry: ClassCapabilities) -> Bool in entry.deviceType == .network }
        let net = try #require(netClass)
        #expect(!net.features.contains(VirtioFeatures.Net.status), "the quirk removes STATUS: \(net.features)")
        let quirkNames: [String] = net.quirks.map { (quirk: AppliedQuirk) -> String in quirk.name }
        #expect(quirkNames == ["lab-no-status"])

        // A second host whose simulator lacks CTRL_MAC_ADDR (and so the baseline does too).
        var other = local
        other.host = "other-host"
        for m in other.mgmtdevs.indices {
            for c in other.mgmtdevs[m].classes.indices where other.mgmtdevs[m].classes[c].deviceType == .network {
                other.mgmtdevs[m].classes[c].features.remove(VirtioFeatures.Net.controlMACAddress)
            }
        }
        let otherDocument = other
        let baseline = try await daemon.withClient {
            try $0.call(.compatBaseline, CompatBaselineParams(documents: [otherDocument], includeLocal: true, name: "lab-baseline"), as: Baseline.Result.self)
        }
        var profile = try #require(baseline.profile, "no baseline: \(baseline.reasons)")
        #expect(!profile.features.contains(VirtioFeatures.Net.status))
        #expect(!profile.features.contains(VirtioFeatures.Net.controlMACAddress))
        #expect(profile.features.contains(.version1))
        profile.mac = .pool
        let saved = profile
        _ = try await daemon.withClient { try $0.call(.profileAdd, saved, as: ProfileInfo.self) }
        let added = try await daemon.withClient {
            try $0.call(.devAdd, DevAddParams(name: "b0", mgmtdev: "vdpasim_net", driver: "virtio_vdpa", profile: "lab-baseline"), as: DeviceInfo.self)
        }
        #expect(added.record?.quirks?.contains("lab-no-status") == true, "\(String(describing: added.record))")
        let virtio = try #require(added.virtioDevice, "log: \(daemon.log)")
        // Linux's virtio_net negotiates the baseline, minus what it does not know (ANY_LAYOUT is
        // implied by VERSION_1 and not kept by the driver).
        let negotiated = try Lab.virtioDriverFeatures(of: virtio)
        #expect(negotiated == profile.features.subtracting(.anyLayout), "negotiated \(negotiated), baseline \(profile.features)")
        #expect(!negotiated.contains(VirtioFeatures.Net.status))
        _ = try await daemon.withClient { try $0.call(.devDel, DevDelParams(name: "b0"), as: DevDelResult.self) }
        #expect(try await daemon.stop() == 0)
    }
}

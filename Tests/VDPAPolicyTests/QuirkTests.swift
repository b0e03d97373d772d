import Testing
import VirtioModel
@testable import VDPAPolicy

@Suite struct QuirkTests {
    static let goodFile = """
    # Vendor quirks.
    [quirk acme-platform-bits]
    description = ACME firmware before 2.1 presents ACCESS_PLATFORM and ORDER_PLATFORM but does not advertise them
    match.pci_vendor = 0x1dd8
    match.pci_device = 0x1002   ; the VF
    match.driver = acme_*
    action = set ACCESS_PLATFORM, ORDER_PLATFORM

    [quirk acme-no-announce]
    match.mgmtdev = pci/0000:41:*
    match.class = net
    action = clear GUEST_ANNOUNCE
    action = clear bit_63
    action = cap mtu 9000
    action = cap queue_pairs 8
    action = cap queue_size 512
    action = deny mtu
    """

    static let acme = DeviceIdentity(bus: "pci", name: "0000:41:00.2", driver: "acme_vdpa", pciVendor: 0x1dd8, pciDevice: 0x1002)

    @Test func goodFileParses() throws {
        let result = QuirkParser.parse(text: Self.goodFile, fileName: "acme.conf")
        #expect(result.errors.isEmpty, "\(result.errors)")
        #expect(result.quirks.map(\.name) == ["acme-platform-bits", "acme-no-announce"])
        let first = result.quirks[0]
        #expect(first.line == 2 && first.file == "acme.conf")
        #expect(first.match == QuirkMatch(driver: "acme_*", pciVendor: 0x1dd8, pciDevice: 0x1002))
        #expect(first.actions == [.set([.accessPlatform, .orderPlatform])])
        #expect(result.quirks[1].actions == [.clear(VirtioFeatures.Net.guestAnnounce), .clear(VirtioFeatures(bit: 63)), .capMTU(9000), .capQueuePairs(8), .capQueueSize(512), .deny(.mtu)])
    }

    @Test func everyBadLineIsReportedWithFileAndLine() {
        let text = """
        stray = 1
        [quirk ok]
        match.driver = x
        action = clear VERSION_1
        [quirk]
        [vendor foo]
        [quirk broken
        [quirk ok]
        match.driver = y
        action = set ACCESS_PLATFORM
        [quirk bad-keys]
        match.pci_vendor = 15b3x
        match.color = red
        match.driver = a
        match.driver = b
        colour = blue
        just words
        action = frobnicate
        action = cap mtu 10
        action = cap speed 10
        action = cap mtu many
        action = deny speed
        action = clear MQ
        action = set TURBO, 99
        action = set
        description =
        [quirk no-match]
        action = clear bit_5
        [quirk no-action]
        match.class = block
        match.bus = pci
        """
        let result = QuirkParser.parse(text: text, fileName: "bad.conf")
        #expect(result.quirks.map(\.name) == ["ok"])
        let lines = result.errors.map { $0.line ?? 0 }
        #expect(lines == [1, 5, 6, 7, 8, 12, 13, 15, 16, 17, 26, 18, 19, 20, 21, 22, 23, 24, 25, 27, 29], "\(result.errors.map(\.description).joined(separator: "\n"))")
        #expect(result.errors.allSatisfy { $0.file == "bad.conf" })
        let text8 = result.errors.first { $0.line == 8 }?.message
        #expect(text8 == "quirk 'ok' is already defined at line 2")
        let unknownName = result.errors.first { $0.line == 24 }!.description
        #expect(unknownName == "bad.conf:24: unknown feature names 'TURBO', '99' (without match.class only device-independent names are known; add match.class = net or block for device-specific ones, or use bit numbers)")
        #expect(result.errors.first { $0.line == 23 }!.message.contains("'MQ'"))
    }

    @Test func duplicateNamesAcrossFilesKeepTheFirst() {
        let a = "[quirk q]\nmatch.driver = a\naction = clear bit_1\n"
        let (database, errors) = QuirkDatabase.load([("20-b.conf", a), ("10-a.conf", a)])
        #expect(database.quirks.map(\.file) == ["10-a.conf"])
        #expect(errors.map(\.description) == ["20-b.conf:1: quirk 'q' is already defined at 10-a.conf:1; ignored"])
    }

    @Test func matchingNeedsEveryKey() {
        let quirks = QuirkParser.parse(text: Self.goodFile, fileName: "acme.conf").quirks
        let database = QuirkDatabase(quirks: quirks)
        #expect(database.matching(Self.acme, deviceType: .network).map(\.name) == ["acme-platform-bits", "acme-no-announce"])
        #expect(database.matching(Self.acme, deviceType: .block).map(\.name) == ["acme-platform-bits"])
        var other = Self.acme
        other.pciDevice = 0x1001
        other.name = "0000:42:00.2"
        #expect(database.matching(other, deviceType: .network).isEmpty)
        var unknownDriver = Self.acme
        unknownDriver.driver = nil
        #expect(database.matching(unknownDriver, deviceType: .network).map(\.name) == ["acme-no-announce"])
    }

    @Test func globs() {
        #expect(Glob.matches("pci/0000:41:*", "pci/0000:41:00.2"))
        #expect(!Glob.matches("pci/0000:41:*", "pci/0000:42:00.2"))
        #expect(Glob.matches("vdpasim_?et", "vdpasim_net"))
        #expect(Glob.matches("*_[nb]*", "vdpasim_blk"))
        #expect(!Glob.matches("*_[!nb]*", "vdpasim_blk"))
        #expect(Glob.matches("mlx5_[a-z]ore", "mlx5_core"))
        #expect(Glob.matches("a[z-a]", "a[z-a]") == false)
        #expect(Glob.matches("*", ""))
        #expect(!Glob.matches("?", ""))
    }

    @Test func applicationRecordsWhatEachQuirkChanged() {
        let database = QuirkDatabase(quirks: QuirkParser.parse(text: Self.goodFile, fileName: "acme.conf").quirks)
        let reported: VirtioFeatures = [.version1, VirtioFeatures.Net.guestAnnounce, VirtioFeatures.Net.controlVirtqueue, .accessPlatform]
        let outcome = database.apply(to: reported, limits: DeviceLimits(maxQueuePairs: 31, maxQueueSize: 256), attributes: AttributeAbilities(mac: true, mtu: true),
                                     identity: Self.acme, deviceType: .network)
        #expect(outcome.features == [.version1, VirtioFeatures.Net.controlVirtqueue, .accessPlatform, .orderPlatform])
        #expect(outcome.limits == DeviceLimits(maxQueuePairs: 8, maxQueueSize: 256, maxMTU: 9000))
        #expect(outcome.attributes.mtu == false && outcome.attributes.mac == true)
        #expect(outcome.applied.map(\.name) == ["acme-platform-bits", "acme-no-announce"])
        #expect(outcome.applied[0].set?.names == ["ORDER_PLATFORM"]) // ACCESS_PLATFORM was already there
        #expect(outcome.applied[1].cleared?.names == ["GUEST_ANNOUNCE"]) // bit 63 was not
        #expect(outcome.applied[1].caps == DeviceLimits(maxQueuePairs: 8, maxMTU: 9000)) // 512 does not lower 256
        #expect(outcome.applied[1].denied == [.mtu])
    }
}

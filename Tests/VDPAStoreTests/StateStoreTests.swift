import Foundation
import Testing
import VDPAStore

@Suite struct StateStoreTests {
    func directory() -> String { NSTemporaryDirectory() + "/vdpad-store-\(UUID().uuidString.prefix(8))" }

    @Test func savedRecordsSurviveReopening() throws {
        let path = directory()
        let record = DeviceRecord(name: "vdpa0", managementBus: "pci", managementName: "0000:41:00.2", macAddress: "00:11:22:33:44:55",
                                  mtu: 9000, maxVirtqueuePairs: 4, requestedFeatures: "0x300000028", driver: "vhost_vdpa", state: .active)
        try StateStore(directory: path).save(record)
        let reopened = try #require(try StateStore(directory: path).device(named: "vdpa0"))
        #expect(reopened.managementBus == "pci")
        #expect(reopened.maxVirtqueuePairs == 4)
        #expect(reopened.requestedFeatures == "0x300000028")
        #expect(reopened.state == .active)
    }

    @Test func statesAndDeletion() throws {
        let store = try StateStore(directory: directory())
        try store.save(DeviceRecord(name: "a", managementBus: nil, managementName: "vdpasim_net", state: .creating))
        #expect(try store.setState(.active, forDevice: "a"))
        #expect(try store.setState(.active, forDevice: "missing") == false)
        #expect(try store.devices().map(\.state) == [.active])
        try store.delete(deviceNamed: "a")
        #expect(try store.devices().isEmpty)
    }

    @Test func profilesAreKeptByNameWithTheirVersion() throws {
        let path = directory()
        let store = try StateStore(directory: path)
        try store.save(ProfileRecord(name: "web", version: 1, json: #"{"name":"web","version":1}"#))
        try store.save(ProfileRecord(name: "web", version: 2, json: #"{"name":"web","version":2}"#))
        try store.save(ProfileRecord(name: "db", version: 1, json: "{}"))
        let reopened = try StateStore(directory: path)
        #expect(try reopened.profiles().map(\.name) == ["db", "web"])
        #expect(try reopened.profile(named: "web")?.version == 2)
        #expect(try reopened.delete(profileNamed: "web"))
        #expect(try reopened.delete(profileNamed: "web") == false)
        #expect(try reopened.profiles().map(\.name) == ["db"])
    }

    @Test func usesWriteAheadLoggingWithFullSync() throws {
        let path = directory()
        _ = try StateStore(directory: path)
        #expect(FileManager.default.fileExists(atPath: path + "/vdpad.sqlite"))
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o700)
    }

    @Test func anUnwritableDirectoryIsAClearError() {
        #expect(throws: (any Error).self) { try StateStore(directory: "/proc/vdpad-cannot-exist") }
    }
}

import Foundation
import Logging
import Testing
import VDPADaemon
import VDPANetlink
import VDPARPC
import VDPAStore
import VDPASystem
import VDPATestSupport
import VirtioModel

/// What a crash (or a race) at any point leaves: the store and the kernel agree once the
/// daemon has started again, and nothing acknowledged is lost.
@Suite struct CrashConsistencyTests {
    static let simulator = ManagementDeviceHandle(bus: nil, name: "vdpasim_net")

    static func controller(_ kernel: FakeVDPAKernel, _ directory: String) -> VDPAController {
        VDPAController(kernel: kernel, store: try! StateStore(directory: directory),
                       settings: .init(restoreOnStart: true, socketPath: "/x", stateDirectory: directory, version: "t"), logger: Logger(label: "t"))
    }

    /// kill -9 inside dev_add, after the kernel made the device: it gets the feature check and
    /// the driver it would have had, or it is undone.
    @Test func aDeviceAdoptedAfterACrashInDevAddIsFinishedOrUndone() async throws {
        let kernel = FakeVDPAKernel()
        let directory = InProcessDaemon.temporaryDirectory()
        let store = try StateStore(directory: directory)
        // Asked for device features 0x300000020 and vhost_vdpa; the kernel made it, unbound.
        try store.save(DeviceRecord(name: "good", managementBus: nil, managementName: "vdpasim_net", requestedFeatures: "0x300000020",
                                    driver: "vhost_vdpa", state: .creating))
        try kernel.createExternally(DeviceCreateRequest(name: "good", managementDevice: Self.simulator, deviceFeatures: VirtioFeatures(rawValue: 0x3_0000_0020)))
        try await kernel.bind(device: "good", to: nil)
        // Asked for 0x300000020, but the device came up with other features: dev_add would have refused it.
        try store.save(DeviceRecord(name: "bad", managementBus: nil, managementName: "vdpasim_net", requestedFeatures: "0x300000020", state: .creating))
        try kernel.createExternally(DeviceCreateRequest(name: "bad", managementDevice: Self.simulator, deviceFeatures: VirtioFeatures(rawValue: 0x3_0000_0028)))

        let report = try await Self.controller(kernel, directory).reconcile()
        #expect(report.adopted == ["good"] && report.discarded == ["bad"])
        #expect(try await kernel.binding(ofDevice: "good").driver == .vhostVDPA)
        let record = try #require(try StateStore(directory: directory).device(named: "good"))
        #expect(record.state == .active && record.provisionedFeatures == "0x300000020" && record.deviceType == 1)
        #expect(try await kernel.devices().map(\.name) == ["good"])
        #expect(try StateStore(directory: directory).device(named: "bad") == nil)
    }

    /// dev_set and dev_bind record the intent before the kernel acts; a crash in between is
    /// carried out at start, and a kernel refusal leaves the record as it was.
    @Test func devSetAndDevBindRecordTheIntentFirst() async throws {
        let kernel = FakeVDPAKernel()
        let directory = InProcessDaemon.temporaryDirectory()
        let controller = Self.controller(kernel, directory)
        try await controller.reconcile()
        _ = try await controller.addDevice(DevAddParams(name: "d0", mgmtdev: "vdpasim_net", mac: "02:00:00:00:00:01", driver: "vhost_vdpa"))

        // Refused by the kernel: the record keeps the old MAC and driver, and says active.
        kernel.failChanges(with: EBUSY)
        await #expect(throws: (any Error).self) { _ = try await controller.setDevice(DevSetParams(name: "d0", mac: "02:00:00:00:00:02")) }
        await #expect(throws: (any Error).self) { _ = try await controller.bindDevice(DevBindParams(name: "d0", driver: "virtio_vdpa")) }
        kernel.failChanges(with: nil)
        var record = try #require(try StateStore(directory: directory).device(named: "d0"))
        #expect(record.macAddress == "02:00:00:00:00:01" && record.driver == "vhost_vdpa" && record.state == .active)

        // A crash after the intent was written: the record says changing, the kernel has the old values.
        record.macAddress = "02:00:00:00:00:03"
        record.driver = "virtio_vdpa"
        record.state = .changing
        try StateStore(directory: directory).save(record)
        let restarted = Self.controller(kernel, directory)
        try await restarted.reconcile()
        #expect(try await kernel.deviceConfig(named: "d0").net?.macAddress == MACAddress("02:00:00:00:00:03"))
        #expect(try await kernel.binding(ofDevice: "d0").driver == .virtioVDPA)
        #expect(try StateStore(directory: directory).device(named: "d0")?.state == .active)
    }

    /// A resync whose kernel reading a dev_add overtook never marks the new device vanished.
    @Test func aResyncOvertakenByAChangeDoesNotMarkALiveDeviceVanished() async throws {
        let kernel = FakeVDPAKernel()
        let directory = InProcessDaemon.temporaryDirectory()
        let controller = Self.controller(kernel, directory)
        try await controller.reconcile()
        // The resync's listing is taken, then dev_add runs before the resync uses it.
        kernel.duringNextListing {
            _ = try? await controller.addDevice(DevAddParams(name: "new0", mgmtdev: "vdpasim_net"))
        }
        await controller.resync()
        let list = try await controller.listDevices(DevListParams())
        #expect(list.vanished.isEmpty, "\(list.vanished.map(\.name))")
        #expect(list.devices.map(\.name) == ["new0"] && list.devices.first?.record?.state == "active")
    }

    /// Two dev_add of one name at once: one wins, the other is refused, one record, one device.
    @Test func concurrentAddsOfOneNameCannotBothWin() async throws {
        let kernel = FakeVDPAKernel()
        let directory = InProcessDaemon.temporaryDirectory()
        let controller = Self.controller(kernel, directory)
        try await controller.reconcile()
        // Each add awaits the kernel several times: the other arrives while the first is inside.
        let outcomes = await withTaskGroup(of: RPCErrorCode?.self) { group in
            for mac in ["02:00:00:00:00:0a", "02:00:00:00:00:0b"] {
                group.addTask {
                    do {
                        _ = try await controller.addDevice(DevAddParams(name: "same", mgmtdev: "vdpasim_net", mac: mac))
                        return nil
                    } catch let error as RPCErrorObject {
                        return error.errorCode
                    } catch {
                        return .internalError
                    }
                }
            }
            return await group.reduce(into: [RPCErrorCode?]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == nil }.count == 1, "\(outcomes)")
        // The other was refused before it touched anything: one DEV_NEW reached the kernel.
        #expect(outcomes.contains(.tryAgain) || outcomes.contains(.alreadyExists), "\(outcomes)")
        #expect(kernel.calls.filter { $0.hasPrefix("DEV_NEW") }.count == 1, "\(kernel.calls)")
        #expect(try await kernel.devices().map(\.name) == ["same"])
        let record = try #require(try StateStore(directory: directory).device(named: "same"))
        #expect(record.state == .active)
        #expect(try await kernel.deviceConfig(named: "same").net?.macAddress?.description == record.macAddress)
    }

    /// dev_del of a vanished record whose device is back in the kernel deletes the device too.
    @Test func deletingAVanishedDeviceThatCameBackDeletesItFromTheKernel() async throws {
        let kernel = FakeVDPAKernel()
        let directory = InProcessDaemon.temporaryDirectory()
        let first = Self.controller(kernel, directory)
        try await first.reconcile()
        _ = try await first.addDevice(DevAddParams(name: "v0", mgmtdev: "vdpasim_net"))
        kernel.reboot()
        let second = VDPAController(kernel: kernel, store: try StateStore(directory: directory),
                                    settings: .init(restoreOnStart: false, socketPath: "/x", stateDirectory: directory, version: "t"), logger: Logger(label: "t"))
        try await second.reconcile()
        #expect(try await second.listDevices(DevListParams()).vanished.map(\.name) == ["v0"])
        // Someone makes it again before the resync sees it; then dev_del.
        try kernel.createExternally(DeviceCreateRequest(name: "v0", managementDevice: Self.simulator))
        _ = try await second.deleteDevice(DevDelParams(name: "v0", force: true))
        #expect(try await kernel.devices().isEmpty)
        #expect(try StateStore(directory: directory).device(named: "v0") == nil)
    }

    /// The state directory is vdpad's alone: refused when others can write it or it is a
    /// symlink, and one daemon at a time.
    @Test func theStateDirectoryIsPrivateAndLockedByOneDaemon() async throws {
        let base = InProcessDaemon.temporaryDirectory()
        let open = base + "/open"
        try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: true)
        chmod(open, 0o777)
        #expect(throws: PrivateDirectory.Refusal.self) { try PrivateDirectory.check(open, what: "state_dir") }
        await #expect(throws: PrivateDirectory.Refusal.self) { _ = try await InProcessDaemon(kernel: FakeVDPAKernel(), stateDirectory: open) }
        let link = base + "/link"
        let real = base + "/real"
        try FileManager.default.createDirectory(atPath: real, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: real)
        #expect(throws: PrivateDirectory.Refusal.self) { try PrivateDirectory.check(link, what: "state_dir") }

        let directory = base + "/state"
        let first = try await InProcessDaemon(kernel: FakeVDPAKernel(), stateDirectory: directory)
        let held = await #expect(throws: StateDirectoryLock.Held.self) { _ = try await InProcessDaemon(kernel: FakeVDPAKernel(), stateDirectory: directory) }
        #expect(held?.description.contains("pid \(getpid())") == true, "\(String(describing: held))")
        try await first.stop()
        // Released at stop: the next daemon starts.
        let second = try await InProcessDaemon(kernel: FakeVDPAKernel(), stateDirectory: directory)
        try await second.stop()
    }
}

import Foundation
import Testing
import VDPAClient
import VDPANetlink
import VDPAPolicy
import VDPARPC
import VDPATestSupport
import VDPAVhostTestSupport
import VhostUser
import VirtioModel

/// Ports and saved virtqueue state through the daemon's real socket, over the fake kernel
/// and fake vhost-vdpa devices; a mini VMM is the port's consumer on its vhost-user socket.
@Suite(.serialized) struct PortAndStateTests {
    let kernel = FakeVDPAKernel()
    let opener = FakeVhostOpener()

    func daemon(stateDirectory: String? = nil) async throws -> InProcessDaemon {
        try await InProcessDaemon(kernel: kernel, stateDirectory: stateDirectory, vhostOpener: opener)
    }

    func add(_ daemon: InProcessDaemon, _ name: String) async throws -> DeviceInfo {
        try await daemon.withClient {
            try $0.call(.devAdd, DevAddParams(name: name, mgmtdev: "vdpasim_net", mac: "02:00:00:00:00:01", driver: "vhost_vdpa"), as: DeviceInfo.self)
        }
    }

    func call<P: Codable & Sendable, R: Codable & Sendable>(_ daemon: InProcessDaemon, _ method: VDPAMethod, _ params: P, as: R.Type) async throws -> R {
        try await daemon.withClient { try $0.call(method, params, as: R.self) }
    }

    func expectError<P: Codable & Sendable>(_ daemon: InProcessDaemon, _ code: RPCErrorCode, _ method: VDPAMethod, _ params: P,
                                            sourceLocation: SourceLocation = #_sourceLocation) async throws -> RPCErrorObject? {
        let error = try await daemon.withClient { client -> RPCErrorObject? in
            do {
                _ = try client.call(method, params, as: RPCEmpty.self)
                return nil
            } catch let error as RPCErrorObject {
                return error
            }
        }
        #expect(error?.errorCode == code, "\(String(describing: error))", sourceLocation: sourceLocation)
        return error
    }

    /// The mini VMM's set-up blocks on its socket while the daemon answers on the concurrency pool.
    func connect(_ socket: String) async throws -> MiniVMM { try await connectMiniVMM(socket) }

    @Test func aConsumerStartsTheDeviceAndItsStateMovesToAnotherDevice() async throws {
        let daemon = try await daemon()
        let first = try await add(daemon, "d0")
        let second = try await add(daemon, "d1")
        let port = try await call(daemon, .portAdd, PortAddParams(name: "vm", device: "d0"), as: PortInfo.self)
        #expect(port.state == "waiting")
        #expect(port.backend?.suspend == true && port.backend?.queueCount == 3)
        // The device is listed as held, with its backend abilities.
        let held = try await call(daemon, .devGet, DeviceNameParams(name: "d0"), as: DeviceInfo.self)
        #expect(held.held == HeldDeviceInfo(port: "vm", backendFeatures: ["IOTLB_MSG_V2", "IOTLB_BATCH", "SUSPEND", "RESUME"], suspend: true, resume: true))
        let list = try await daemon.withClient { try $0.call(.devList, as: DevListResult.self) }
        #expect(list.devices.first { $0.name == "d0" }?.held?.port == "vm" && list.devices.first { $0.name == "d1" }?.held == nil)
        let vmm = try await connect(port.socket)
        defer { vmm.close() }
        let running = try await call(daemon, .portGet, PortNameParams(name: "vm"), as: PortInfo.self)
        #expect(running.state == "running" && running.consumer?.driverOK == true && running.consumer?.queues == [0, 1])
        // The consumer was offered no control queue and no ACCESS_PLATFORM; the device runs with ACCESS_PLATFORM.
        let firstPath = try #require(first.vhostDevice)
        let firstDevice = try #require(opener.device(at: firstPath))
        #expect(firstDevice.isRunning && firstDevice.negotiatedFeatures.contains(.accessPlatform))
        #expect(!vmm.features.contains(.Net.controlVirtqueue))
        #expect(firstDevice.mappingCount == 1)

        // The device processed 5 receive and 7 transmit descriptors.
        firstDevice.advance(queue: 0, by: 5)
        firstDevice.advance(queue: 1, by: 7)
        let saved = try await call(daemon, .vqStateSave, VqStateSaveParams(device: "d0", name: "s"), as: VqStateInfo.self)
        #expect(saved.state.queues.map(\.availableIndex) == [5, 7])
        #expect(saved.state.source.port == "vm" && saved.origin == "saved")
        #expect(Set((saved.timingsUs ?? [:]).keys).isSuperset(of: ["suspend", "read_base", "store"]))
        #expect(firstDevice.isSuspended)
        #expect(saved.state.control?.mac == "02:00:00:00:00:01")

        // d0 is held: deleting it is refused, naming the port.
        let busy = try await expectError(daemon, .deviceInUse, .devDel, DevDelParams(name: "d0"))
        #expect(busy?.message.contains("port vm") == true)

        let restored = try await call(daemon, .vqStateRestore, VqStateRestoreParams(name: "s", device: "d1"), as: VqStateRestoreResult.self)
        #expect(restored.port == "vm")
        let secondPath = try #require(second.vhostDevice)
        let secondDevice = try #require(opener.device(at: secondPath))
        #expect(secondDevice.isRunning)
        #expect(try secondDevice.queueBase(0) == 5 && secondDevice.queueBase(1) == 7)
        #expect(firstDevice.closed)
        let moved = try await call(daemon, .portGet, PortNameParams(name: "vm"), as: PortInfo.self)
        #expect(moved.device == "d1" && moved.backend?.device == "d1")
        try await daemon.stop()
    }

    /// Rings started on a device may already hold work a polling driver never kicks for: a
    /// move, a restore and a resume each notify every enabled queue once the device runs.
    @Test func everyStartOfTheRingsKicksEachEnabledQueue() async throws {
        let daemon = try await daemon()
        _ = try await add(daemon, "d0")
        _ = try await add(daemon, "d1")
        let port = try await call(daemon, .portAdd, PortAddParams(name: "vm", device: "d0"), as: PortInfo.self)
        let vmm = try await connect(port.socket)
        defer { vmm.close() }
        // The first start kicked too; forget those.
        #expect(try vmm.takeKicks(queue: 0) == 1 && vmm.takeKicks(queue: 1) == 1)

        let moved = try await call(daemon, .portSet, PortSetParams(name: "vm", device: "d1"), as: PortInfo.self)
        #expect(moved.backend?.device == "d1")
        #expect(try vmm.takeKicks(queue: 0) == 1 && vmm.takeKicks(queue: 1) == 1, "a move kicks each enabled queue of the new device")

        _ = try await call(daemon, .vqStateSave, VqStateSaveParams(device: "d1", name: "s", resume: true), as: VqStateInfo.self)
        #expect(try vmm.takeKicks(queue: 0) == 1 && vmm.takeKicks(queue: 1) == 1, "a resume kicks")
        _ = try await call(daemon, .vqStateSave, VqStateSaveParams(device: "d1", name: "t"), as: VqStateInfo.self)
        #expect(try vmm.takeKicks(queue: 0) == 0, "a suspended device is not kicked")
        _ = try await call(daemon, .vqStateRestore, VqStateRestoreParams(name: "t", device: "d0"), as: VqStateRestoreResult.self)
        #expect(try vmm.takeKicks(queue: 0) == 1 && vmm.takeKicks(queue: 1) == 1, "a restore kicks")
        try await daemon.stop()
    }

    @Test func restoreIsRefusedWithEveryReasonAndSaveNeedsAPort() async throws {
        let daemon = try await daemon()
        _ = try await add(daemon, "d0")
        let target = try await add(daemon, "d1")
        // d1 cannot suspend, has 5 queues and lacks MAC.
        let targetPath = try #require(target.vhostDevice)
        opener.setProfile(.init(features: VirtioFeatures(rawValue: 0x3_0000_0000), backendFeatures: [.iotlbMessageV2], queueCount: 5),
                          forPath: targetPath)
        _ = try await expectError(daemon, .notAttached, .vqStateSave, VqStateSaveParams(device: "d0"))
        let port = try await call(daemon, .portAdd, PortAddParams(name: "vm", device: "d0"), as: PortInfo.self)
        _ = try await expectError(daemon, .notAttached, .vqStateSave, VqStateSaveParams(device: "d0"))  // no consumer yet
        let vmm = try await connect(port.socket)
        defer { vmm.close() }
        _ = try await call(daemon, .vqStateSave, VqStateSaveParams(device: "d0", name: "s", resume: true), as: VqStateInfo.self)
        _ = try await expectError(daemon, .alreadyExists, .vqStateSave, VqStateSaveParams(device: "d0", name: "s"))
        let refused = try await expectError(daemon, .stateIncompatible, .vqStateRestore, VqStateRestoreParams(name: "s", device: "d1"))
        let codes = Set(refused?.data?.reasons?.map(\.code) ?? [])
        #expect(codes == ["features_missing", "queue_count_mismatch", "backend_missing"], "\(codes)")
        _ = try await expectError(daemon, .notFound, .vqStateRestore, VqStateRestoreParams(name: "nope", device: "d1"))
        // A state the running device itself cannot take: refused before the device is let go.
        var other = try await call(daemon, .vqStateExport, VqStateNameParams(name: "s"), as: VirtqueueStateDocument.self)
        other.name = "other"
        other.queueCount = 5
        _ = try await call(daemon, .vqStateImport, VqStateImportParams(state: other), as: VqStateInfo.self)
        _ = try await expectError(daemon, .stateIncompatible, .vqStateRestore, VqStateRestoreParams(name: "other", device: "d0"))
        let still = try await call(daemon, .portGet, PortNameParams(name: "vm"), as: PortInfo.self)
        #expect(still.state == "running" && still.backend?.device == "d0", "\(still)")
        try await daemon.stop()
    }

    @Test func aRestoreThatFailsPartWayRecordsWhatThePortHolds() async throws {
        let daemon = try await daemon()
        _ = try await add(daemon, "d0")
        let target = try await add(daemon, "d1")
        var failing = FakeVhostOpener.Profile()
        failing.failingStep = "VHOST_SET_VRING_BASE"  // fails at launch, after d0 was released
        opener.setProfile(failing, forPath: try #require(target.vhostDevice))
        let port = try await call(daemon, .portAdd, PortAddParams(name: "vm", device: "d0"), as: PortInfo.self)
        let vmm = try await connect(port.socket)
        defer { vmm.close() }
        _ = try await call(daemon, .vqStateSave, VqStateSaveParams(device: "d0", name: "s"), as: VqStateInfo.self)
        let failed = try await expectError(daemon, .kernelRejected, .vqStateRestore, VqStateRestoreParams(name: "s", device: "d1"))
        #expect(failed?.data?.errnoName == "EIO")
        // d0 is no longer held; what the port holds now is what dev_get and port_get say.
        #expect(try await call(daemon, .devGet, DeviceNameParams(name: "d0"), as: DeviceInfo.self).held == nil)
        let now = try await call(daemon, .portGet, PortNameParams(name: "vm"), as: PortInfo.self)
        #expect(try await call(daemon, .devGet, DeviceNameParams(name: "d1"), as: DeviceInfo.self).held?.port == now.backend.map { _ in "vm" })
        try await daemon.stop()
    }

    @Test func statesAreDurableAndAnExportImportsElsewhere() async throws {
        let directory = InProcessDaemon.temporaryDirectory()
        var daemon = try await daemon(stateDirectory: directory)
        _ = try await add(daemon, "d0")
        let port = try await call(daemon, .portAdd, PortAddParams(name: "vm", device: "d0"), as: PortInfo.self)
        let vmm = try await connect(port.socket)
        _ = try await call(daemon, .vqStateSave, VqStateSaveParams(device: "d0", name: "s"), as: VqStateInfo.self)
        vmm.close()
        try await daemon.stop()
        // A new daemon on the same state: the state and the port are there.
        daemon = try await self.daemon(stateDirectory: directory)
        let listed = try await daemon.withClient { try $0.call(.vqStateList, as: VqStateListResult.self) }
        #expect(listed.states.map(\.name) == ["s"])
        let ports = try await daemon.withClient { try $0.call(.portList, as: PortListResult.self) }
        #expect(ports.ports.map(\.name) == ["vm"] && ports.ports.first?.backend?.device == "d0")
        let document = try await call(daemon, .vqStateExport, VqStateNameParams(name: "s"), as: VirtqueueStateDocument.self)
        try await daemon.stop()

        let other = try await self.daemon()
        let imported = try await call(other, .vqStateImport, VqStateImportParams(state: document, name: "copy"), as: VqStateInfo.self)
        #expect(imported.origin == "imported" && imported.state.queues == document.queues)
        var broken = document
        broken.queues[0].base = 0x1_0000
        let invalid = try await expectError(other, .invalidParams, .vqStateImport, VqStateImportParams(state: broken, name: "bad"))
        #expect(invalid?.data?.reasons?.isEmpty == false)
        _ = try await call(other, .vqStateDel, VqStateNameParams(name: "copy"), as: VqStateDelResult.self)
        _ = try await expectError(other, .notFound, .vqStateGet, VqStateNameParams(name: "copy"))
        try await other.stop()
    }
}

import Foundation
import Logging
import Testing
import VDPANetlink
import VDPARPC
import VDPAStore
import VDPATestSupport
import VirtioModel
@testable import VDPADaemon

func makeController(kernel: FakeVDPAKernel, directory: String = InProcessDaemon.temporaryDirectory(), restore: Bool = true) async throws -> VDPAController {
    let controller = VDPAController(
        kernel: kernel, store: try StateStore(directory: directory),
        settings: .init(restoreOnStart: restore, socketPath: "/tmp/x.sock", stateDirectory: directory, version: "test"),
        logger: Logger(label: "test"))
    try await controller.reconcile()
    return controller
}

func expectAPIError(_ code: RPCErrorCode, _ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async -> RPCErrorObject? {
    do {
        try await body()
        Issue.record("expected \(code.name)", sourceLocation: sourceLocation)
        return nil
    } catch {
        let object = APIError.from(error)
        #expect(object.errorCode == code, "got \(object.code) \(object.message)", sourceLocation: sourceLocation)
        return object
    }
}

@Suite struct ControllerTests {
    @Test func addRecordsHowTheDeviceWasCreated() async throws {
        let kernel = FakeVDPAKernel()
        let directory = InProcessDaemon.temporaryDirectory()
        let controller = try await makeController(kernel: kernel, directory: directory)
        let info = try await controller.addDevice(DevAddParams(name: "vdpa0", mgmtdev: "vdpasim_net", mac: "00:11:22:33:44:55", mtu: 1400))
        #expect(info.managed)
        #expect(info.driver == "vhost_vdpa")
        #expect(info.vhostDevice == "/dev/vhost-vdpa-0")
        #expect(info.record?.mac == "00:11:22:33:44:55")
        let record = try #require(try StateStore(directory: directory).device(named: "vdpa0"))
        #expect(record.state == .active)
        #expect(record.mtu == 1400)
        #expect(record.provisionedFeatures == "0x308830028")
    }

    @Test func kernelRefusalKeepsErrnoAndExtack() async throws {
        let controller = try await makeController(kernel: FakeVDPAKernel())
        let error = await expectAPIError(.notSupported) {
            _ = try await controller.addDevice(DevAddParams(name: "vdpa2", mgmtdev: "vdpasim_net", maxVqp: 2))
        }
        #expect(error?.data?.errno == 95)
        #expect(error?.data?.errnoName == "EOPNOTSUPP")
        #expect(error?.data?.extack == "vdpa: Some provided attributes are not supported: 0x1000")
        let missing = await expectAPIError(.notFound) {
            _ = try await controller.addDevice(DevAddParams(name: "x", mgmtdev: "nosuch"))
        }
        #expect(missing?.data?.extack == "vdpa: Fail to find the specified management device")
    }

    @Test func failedCreationLeavesNoRecord() async throws {
        let directory = InProcessDaemon.temporaryDirectory()
        let controller = try await makeController(kernel: FakeVDPAKernel(), directory: directory)
        _ = await expectAPIError(.kernelRejected) {
            _ = try await controller.addDevice(DevAddParams(name: "vdpa3", mgmtdev: "vdpasim_net", deviceFeatures: "0x1"))
        }
        #expect(try StateStore(directory: directory).devices().isEmpty)
    }

    @Test func aDeviceAVMMHoldsOpenIsNeitherDeletedNorUnbound() async throws {
        let kernel = FakeVDPAKernel()
        let controller = try await makeController(kernel: kernel)
        _ = try await controller.addDevice(DevAddParams(name: "held0", mgmtdev: "vdpasim_net", driver: "vhost_vdpa"))
        kernel.holdOpen("held0")
        let refusal = await expectAPIError(.deviceInUse) { _ = try await controller.deleteDevice(DevDelParams(name: "held0")) }
        #expect(refusal?.data?.errno == EBUSY)
        await expectAPIError(.deviceInUse) { _ = try await controller.bindDevice(DevBindParams(name: "held0", driver: "virtio_vdpa")) }
        // Still there, still managed, still on vhost_vdpa.
        let device = try await controller.device(DeviceNameParams(name: "held0"))
        #expect(device.managed && device.driver == "vhost_vdpa" && device.record?.state == "active")
        kernel.holdOpen("held0", false)
        _ = try await controller.deleteDevice(DevDelParams(name: "held0"))
    }

    @Test func duplicateName() async throws {
        let controller = try await makeController(kernel: FakeVDPAKernel())
        _ = try await controller.addDevice(DevAddParams(name: "vdpa0", mgmtdev: "vdpasim_net"))
        _ = await expectAPIError(.alreadyExists) { _ = try await controller.addDevice(DevAddParams(name: "vdpa0", mgmtdev: "vdpasim_net")) }
    }

    @Test(arguments: [
        DevAddParams(name: "", mgmtdev: "vdpasim_net"),
        DevAddParams(name: "a/b", mgmtdev: "vdpasim_net"),
        DevAddParams(name: "v", mgmtdev: "a/b/c"),
        DevAddParams(name: "v", mgmtdev: "vdpasim_net", mac: "01:00:5e:00:00:01"),
        DevAddParams(name: "v", mgmtdev: "vdpasim_net", mac: "zz"),
        DevAddParams(name: "v", mgmtdev: "vdpasim_net", mtu: 67),
        DevAddParams(name: "v", mgmtdev: "vdpasim_net", maxVqp: 0),
        DevAddParams(name: "v", mgmtdev: "vdpasim_net", deviceFeatures: "0x1ffffffffffffffff"),
        DevAddParams(name: "v", mgmtdev: "vdpasim_net", driver: "vfio"),
    ])
    func invalidParamsAreRefusedBeforeTheKernel(_ params: DevAddParams) async throws {
        let kernel = FakeVDPAKernel()
        let controller = try await makeController(kernel: kernel)
        _ = await expectAPIError(.invalidParams) { _ = try await controller.addDevice(params) }
        #expect(kernel.calls.isEmpty)
    }

    @Test func provisioningExactFeaturesAndBindingToVirtio() async throws {
        let controller = try await makeController(kernel: FakeVDPAKernel())
        let info = try await controller.addDevice(DevAddParams(name: "vdpa1", mgmtdev: "vdpasim_net", mac: "00:11:22:33:44:66",
                                                               deviceFeatures: "0x300000028", driver: "virtio_vdpa"))
        #expect(info.driver == "virtio_vdpa")
        #expect(info.netdevs == ["eth0"])
        let config = try await controller.deviceConfigs(DevConfigGetParams(name: "vdpa1")).configs[0]
        #expect(config.deviceFeatures?.names == ["MTU", "MAC", "VERSION_1", "ACCESS_PLATFORM"])
        #expect(config.negotiatedFeatures?.hex == "0x300000028")
    }

    @Test func unmanagedDevicesAreListedButNotTouched() async throws {
        let kernel = FakeVDPAKernel()
        try kernel.createExternally(DeviceCreateRequest(name: "theirs", managementDevice: .init(bus: nil, name: "vdpasim_net")))
        let controller = try await makeController(kernel: kernel)
        let list = try await controller.listDevices(DevListParams())
        #expect(list.devices.map(\.name) == ["theirs"])
        #expect(list.devices[0].managed == false)
        _ = await expectAPIError(.unmanagedDevice) { _ = try await controller.deleteDevice(DevDelParams(name: "theirs")) }
        _ = await expectAPIError(.unmanagedDevice) { _ = try await controller.setDevice(DevSetParams(name: "theirs", mac: "00:11:22:33:44:77")) }
        _ = await expectAPIError(.unmanagedDevice) { _ = try await controller.bindDevice(DevBindParams(name: "theirs", driver: "virtio_vdpa")) }
        #expect(try await controller.deleteDevice(DevDelParams(name: "theirs", force: true)).name == "theirs")
    }

    @Test func vstatsBeforeNegotiationIsTryAgain() async throws {
        let controller = try await makeController(kernel: FakeVDPAKernel())
        _ = try await controller.addDevice(DevAddParams(name: "vdpa0", mgmtdev: "vdpasim_net"))
        let error = await expectAPIError(.tryAgain) { _ = try await controller.vendorStatistics(DevVstatsGetParams(name: "vdpa0", qidx: 0)) }
        #expect(error?.data?.extack == "vdpa: feature negotiation not complete")
        _ = try await controller.bindDevice(DevBindParams(name: "vdpa0", driver: "virtio_vdpa"))
        let stats = try await controller.vendorStatistics(DevVstatsGetParams(name: "vdpa0", qidx: 1))
        #expect(stats.queueType == "tx")
        #expect(stats.stats.map(\.name) == ["tx packets", "tx bytes"])
    }

    @Test func macChangeIsRecordedForRestore() async throws {
        let directory = InProcessDaemon.temporaryDirectory()
        let controller = try await makeController(kernel: FakeVDPAKernel(), directory: directory)
        _ = try await controller.addDevice(DevAddParams(name: "vdpa0", mgmtdev: "vdpasim_net", mac: "00:11:22:33:44:55"))
        let config = try await controller.setDevice(DevSetParams(name: "vdpa0", mac: "00:11:22:33:44:99"))
        #expect(config.net?.mac == "00:11:22:33:44:99")
        #expect(try StateStore(directory: directory).device(named: "vdpa0")?.macAddress == "00:11:22:33:44:99")
    }

    @Test func withoutKernelSupportTheApiStillAnswers() async throws {
        let kernel = FakeVDPAKernel()
        kernel.setAvailable(false)
        let controller = try await makeController(kernel: kernel)
        let status = await controller.daemonStatus()
        #expect(status.vdpa.available == false)
        #expect(status.vdpa.reason?.contains("vdpa") == true)
        _ = await expectAPIError(.vdpaUnavailable) { _ = try await controller.managementDevices(MgmtdevListParams()) }
        kernel.setAvailable(true)
        #expect(try await controller.managementDevices(MgmtdevListParams()).mgmtdevs.count == 2)
    }
}

@Suite struct ReconcileTests {
    @Test func restoresDevicesAfterAReboot() async throws {
        let kernel = FakeVDPAKernel()
        let directory = InProcessDaemon.temporaryDirectory()
        let first = try await makeController(kernel: kernel, directory: directory)
        _ = try await first.addDevice(DevAddParams(name: "vdpa0", mgmtdev: "vdpasim_net", mac: "00:11:22:33:44:55", mtu: 1400, driver: "virtio_vdpa"))
        kernel.reboot()
        let second = VDPAController(kernel: kernel, store: try StateStore(directory: directory),
                                    settings: .init(restoreOnStart: true, socketPath: "/x", stateDirectory: directory, version: "t"), logger: Logger(label: "t"))
        let report = try await second.reconcile()
        #expect(report.restored == ["vdpa0"])
        let config = try await kernel.deviceConfig(named: "vdpa0")
        #expect(config.net?.macAddress?.description == "00:11:22:33:44:55")
        #expect(config.net?.mtu == 1400)
        #expect(try await kernel.binding(ofDevice: "vdpa0").driver == .virtioVDPA)
    }

    @Test func withoutRestoreVanishedDevicesAreReported() async throws {
        let kernel = FakeVDPAKernel()
        let directory = InProcessDaemon.temporaryDirectory()
        let first = try await makeController(kernel: kernel, directory: directory)
        _ = try await first.addDevice(DevAddParams(name: "vdpa0", mgmtdev: "vdpasim_net"))
        kernel.reboot()
        let second = try await makeController(kernel: kernel, directory: directory, restore: false)
        let list = try await second.listDevices(DevListParams())
        #expect(list.devices.isEmpty)
        #expect(list.vanished.map(\.name) == ["vdpa0"])
        #expect(await second.daemonStatus().devices.vanished == 1)
    }

    /// A crash between writing the intent and the kernel acting: the record says
    /// "creating"; if the device exists it is adopted, otherwise forgotten.
    @Test func creatingRecordsAreAdoptedOrDiscarded() async throws {
        let kernel = FakeVDPAKernel()
        let directory = InProcessDaemon.temporaryDirectory()
        let store = try StateStore(directory: directory)
        try store.save(DeviceRecord(name: "made", managementBus: nil, managementName: "vdpasim_net", state: .creating))
        try store.save(DeviceRecord(name: "notmade", managementBus: nil, managementName: "vdpasim_net", state: .creating))
        try store.save(DeviceRecord(name: "gone", managementBus: nil, managementName: "vdpasim_net", state: .deleting))
        try store.save(DeviceRecord(name: "kept", managementBus: nil, managementName: "vdpasim_net", state: .deleting))
        try kernel.createExternally(DeviceCreateRequest(name: "made", managementDevice: .init(bus: nil, name: "vdpasim_net")))
        try kernel.createExternally(DeviceCreateRequest(name: "kept", managementDevice: .init(bus: nil, name: "vdpasim_net")))
        let controller = VDPAController(kernel: kernel, store: try StateStore(directory: directory),
                                        settings: .init(restoreOnStart: true, socketPath: "/x", stateDirectory: directory, version: "t"), logger: Logger(label: "t"))
        let report = try await controller.reconcile()
        #expect(report.adopted == ["made"])
        #expect(Set(report.discarded) == ["notmade", "gone"])
        let records = try StateStore(directory: directory).devices()
        #expect(records.map(\.name) == ["kept", "made"])
        #expect(records.allSatisfy { $0.state == .active })
    }
}

@Suite struct EventTests {
    @Test func externalChangesRaiseEvents() async throws {
        let kernel = FakeVDPAKernel()
        let controller = try await makeController(kernel: kernel)
        let stream = controller.events.subscribe()
        var iterator = stream.makeAsyncIterator()
        try kernel.createExternally(DeviceCreateRequest(name: "theirs", managementDevice: .init(bus: nil, name: "vdpasim_net"), macAddress: MACAddress("00:11:22:33:44:55")))
        await controller.resync()
        let added = await iterator.next()
        #expect(added?.type == .deviceAdded)
        #expect(added?.origin == "external")
        #expect(added?.managed == false)
        kernel.setMACExternally("theirs", MACAddress("00:11:22:33:44:56")!)
        await controller.resync()
        let changed = await iterator.next()
        #expect(changed?.type == .deviceChanged)
        #expect(changed?.changes == ["mac"])
        try await kernel.bind(device: "theirs", to: .virtioVDPA)
        await controller.resync()
        #expect(await iterator.next()?.type == .driverBound)
        kernel.deleteExternally("theirs")
        await controller.resync()
        #expect(await iterator.next()?.type == .deviceRemoved)
    }

    @Test func ownChangesAreReportedOnceWithOriginVdpad() async throws {
        let kernel = FakeVDPAKernel()
        let controller = try await makeController(kernel: kernel)
        let stream = controller.events.subscribe()
        var iterator = stream.makeAsyncIterator()
        _ = try await controller.addDevice(DevAddParams(name: "vdpa0", mgmtdev: "vdpasim_net"))
        await controller.resync()
        _ = try await controller.deleteDevice(DevDelParams(name: "vdpa0"))
        await controller.resync()
        let first = await iterator.next()
        let second = await iterator.next()
        #expect(first?.type == .deviceAdded && first?.origin == "vdpad")
        #expect(second?.type == .deviceRemoved && second?.origin == "vdpad")
    }

    @Test func aSubscriberThatFallsBehindIsDropped() async {
        let hub = EventHub(capacity: 2)
        let stream = hub.subscribe()
        for index in 0..<5 { hub.publish(DeviceEvent(type: .deviceAdded, device: "d\(index)", origin: "vdpad", managed: true, time: "t")) }
        #expect(hub.subscriberCount == 0)
        var count = 0
        for await _ in stream { count += 1 }
        #expect(count == 2)
    }
}

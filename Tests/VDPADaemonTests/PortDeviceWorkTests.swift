import Dispatch
import Foundation
import Testing
import VDPAClient
import VDPARPC
import VDPATestSupport
import VDPAVhost
import VDPAVhostTestSupport

/// A port's device work (opening the device, mapping memory, suspending) can take as long as a
/// device or a consumer makes it take. It holds up that port only: every other call answers
/// meanwhile, and another change of the same port is `try_again`.
@Suite(.serialized) struct PortDeviceWorkTests {
    /// Opens devices through `inner`; once armed, the next open waits until `release()`.
    final class GatedOpener: VhostVDPAOpening, @unchecked Sendable {
        // SAFETY (@unchecked): `armed` under `lock`; the semaphores are thread-safe.
        let inner = FakeVhostOpener()
        private let lock = NSLock()
        private var armed = false
        let entered = DispatchSemaphore(value: 0)
        private let gate = DispatchSemaphore(value: 0)

        func arm() { lock.withLock { armed = true } }
        func release() { gate.signal() }

        func open(path: String) throws(VhostError) -> any VhostVDPAControl {
            let wait = lock.withLock { () -> Bool in
                defer { armed = false }
                return armed
            }
            if wait {
                entered.signal()
                gate.wait()
            }
            return try inner.open(path: path)
        }
    }

    @Test func aMoveStuckInTheDeviceHoldsUpNoOtherCall() async throws {
        let opener = GatedOpener()
        let (daemon, _, port) = try await daemonWithPort(opener: opener, devices: ["d0", "d1"])
        let vmm = try await connectMiniVMM(port.socket)
        defer { vmm.close() }

        // The move opens d1 under the port's lock, and d1 does not answer.
        opener.arm()
        let move = Task { try await daemon.withClient { try $0.call(.portSet, PortSetParams(name: "vm", device: "d1"), as: PortInfo.self) } }
        try await runOffThePool { opener.entered.wait() }
        // Should the calls below wait for the port, the gate opens after 10 s and the test fails.
        let stuck = Task {
            do { try await Task.sleep(for: .seconds(10)) } catch { return false }
            opener.release()
            return true
        }

        let info = try await daemon.withClient { try $0.call(.portGet, PortNameParams(name: "vm"), as: PortInfo.self) }
        #expect(info.state == "running" && info.backend?.device == "d0")
        let ports = try await daemon.withClient { try $0.call(.portList, as: PortListResult.self) }
        #expect(ports.ports.map(\.name) == ["vm"])
        let devices = try await daemon.withClient { try $0.call(.devList, as: DevListResult.self) }
        #expect(devices.devices.first { $0.name == "d0" }?.held?.port == "vm")
        for (method, params) in [(VDPAMethod.portSet, AnyCodable(PortSetParams(name: "vm", detach: true))),
                                 (.vqStateSave, AnyCodable(VqStateSaveParams(device: "d0"))),
                                 (.portDel, AnyCodable(PortNameParams(name: "vm")))] {
            let error = try await daemon.withClient { client -> RPCErrorObject? in
                do { _ = try client.call(method, params, as: RPCEmpty.self); return nil } catch let error as RPCErrorObject { return error }
            }
            #expect(error?.errorCode == .tryAgain && error?.message.contains("port vm is busy") == true, "\(method): \(String(describing: error))")
        }
        stuck.cancel()
        #expect(await stuck.value == false, "a call waited for the port's device work")

        opener.release()
        let moved = try await move.value
        #expect(moved.device == "d1" && moved.backend?.device == "d1" && moved.state == "running")
        try await daemon.stop()
    }
}

/// Any encodable params, for a table of calls.
struct AnyCodable: Codable, Sendable {
    let encodeBody: @Sendable (any Encoder) throws -> Void
    init<T: Encodable & Sendable>(_ value: T) { encodeBody = { try value.encode(to: $0) } }
    init(from decoder: any Decoder) throws { throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "encode only")) }
    func encode(to encoder: any Encoder) throws { try encodeBody(encoder) }
}

/// What a port holds of a VMM: no more memory than its limit, nothing once the VMM leaves.
@Suite(.serialized) struct PortResourceTests {
    @Test func aVMMThatLeavesLeavesNothingMappedAndOneOverTheLimitIsRefused() async throws {
        let opener = FakeVhostOpener()
        let (daemon, devices, port) = try await daemonWithPort(opener: opener)
        let vmm = try await connectMiniVMM(port.socket)
        let path = try #require(devices[0].vhostDevice)
        let held = try #require(opener.device(at: path))
        #expect(held.mappingCount == 1)
        vmm.close()
        var left = 1
        for _ in 0..<200 where left != 0 {
            left = held.mappingCount
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(left == 0, "the device still maps the memory of a VMM that left")
        try await daemon.stop()

        // The same VMM against a port whose limit is below its memory.
        let small = try await InProcessDaemon(kernel: FakeVDPAKernel(), vhostOpener: FakeVhostOpener()) { $0.portMemoryLimit = 4096 }
        _ = try await small.withClient {
            try $0.call(.devAdd, DevAddParams(name: "d0", mgmtdev: "vdpasim_net", mac: "02:00:00:00:00:01", driver: "vhost_vdpa"), as: DeviceInfo.self)
        }
        let limited = try await small.withClient { try $0.call(.portAdd, PortAddParams(name: "vm", device: "d0"), as: PortInfo.self) }
        await #expect(throws: (any Error).self) { _ = try await connectMiniVMM(limited.socket) }
        let info = try await small.withClient { try $0.call(.portGet, PortNameParams(name: "vm"), as: PortInfo.self) }
        #expect(info.state != "running" && (info.consumer?.memoryRegions ?? 0) == 0)
        try await small.stop()
    }
}

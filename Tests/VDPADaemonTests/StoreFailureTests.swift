import Foundation
import GRDB
import Testing
import VDPAClient
import VDPARPC
import VDPATestSupport
import VDPAVhostTestSupport

/// The durable store refusing a write, as a full disk or an I/O error would make it: nothing is
/// acknowledged, and nothing is left half-done for a state nobody has.
@Suite(.serialized) struct StoreFailureTests {
    /// Makes every new saved state fail in the daemon's own database (a trigger, added through a
    /// second connection: the daemon's next write meets SQLite's error, as with a failing disk).
    static func refuseSavedStates(in stateDirectory: String) throws {
        let database = try DatabaseQueue(path: stateDirectory + "/vdpad.sqlite")
        try database.write { db in
            try db.execute(sql: "CREATE TRIGGER refuse_saved_states BEFORE INSERT ON snapshot BEGIN SELECT RAISE(ABORT, 'disk I/O error (injected)'); END")
        }
    }

    @Test func aSaveThatCannotBeStoredResumesTheDevice() async throws {
        let opener = FakeVhostOpener()
        let (daemon, devices, port) = try await daemonWithPort(opener: opener)
        let vmm = try await connectMiniVMM(port.socket)
        defer { vmm.close() }
        let path = try #require(devices[0].vhostDevice)
        let device = try #require(opener.device(at: path))
        #expect(device.isRunning)

        try Self.refuseSavedStates(in: daemon.stateDirectory)
        let refused = try await daemon.withClient { client -> RPCErrorObject? in
            do {
                _ = try client.call(.vqStateSave, VqStateSaveParams(device: "d0", name: "s"), as: VqStateInfo.self)
                return nil
            } catch let error as RPCErrorObject { return error }
        }
        #expect(refused?.errorCode == .stateStoreFailure && refused?.message.contains("injected") == true, "\(String(describing: refused))")
        // The save suspended the device; it runs again, and nothing was saved.
        #expect(device.isRunning && !device.isSuspended)
        let info = try await daemon.withClient { try $0.call(.portGet, PortNameParams(name: "vm"), as: PortInfo.self) }
        #expect(info.state == "running", "\(info)")
        let states = try await daemon.withClient { try $0.call(.vqStateList, as: VqStateListResult.self) }
        #expect(states.states.isEmpty)
        try await daemon.stop()
    }
}

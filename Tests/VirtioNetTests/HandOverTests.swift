import Testing
import VirtioModel
import VirtioNet
import Virtqueue
import VirtqueueTestSupport
import VirtioNetTestSupport

@Suite("Queue state hand-over")
struct HandOverTests {
    /// Streams frames through TX → loopback → RX and, every few rounds,
    /// throws the device queues away and rebuilds them from their exported
    /// state (through the vhost vring-base encoding, as another backend would
    /// get it): every frame arrives exactly once, in order.
    @Test(arguments: DatapathConfig.all)
    func rebuildingFromStateLosesAndRepeatsNothing(_ config: DatapathConfig) throws {
        var rig = try NetRig(layout: config.layout, features: config.features, size: 16, eventIndex: config.eventIndex)
        var next = 0
        var received: [Int] = []
        let total = 400
        var handOvers = 0
        var round = 0
        while received.count < total {
            round += 1
            if rig.guest.inFlight(0) < 12 {
                try rig.guest.postReceiveBuffers(count: 12 - rig.guest.inFlight(0), size: config.mergeable ? 128 : 1600)
                try rig.guest.publish(0)
            }
            while next < total, rig.guest.inFlight(1) < 16 {
                try rig.guest.transmit(testFrame(next, length: 60 + next % 300))
                next += 1
            }
            try rig.guest.publish(1)
            _ = try rig.tx.process(backend: rig.backend, budget: 1 + round % 7)
            _ = try rig.rx.process(backend: rig.backend, budget: 1 + round % 5)
            if round % 3 == 0, !rig.rx.hasPendingFrame {
                // Quiesced point: no chain in flight between passes.
                #expect(rig.tx.queue.inFlightCount == 0 && rig.rx.queue.inFlightCount == 0)
                func restored(_ state: QueueState) -> QueueState {
                    let base = VringBase.decode(VringBase(state).encoded(for: state.layout), layout: state.layout)
                    var fresh = state
                    fresh.nextAvailIndex = 0
                    fresh.nextUsedIndex = 0
                    return base.applied(to: fresh)
                }
                let txState = restored(rig.tx.state)
                let rxState = restored(rig.rx.state)
                #expect(txState == rig.tx.state && rxState == rig.rx.state)
                rig.tx = try VirtioNetTransmitQueue(state: txState, memory: rig.guest.memory, features: config.features)
                rig.rx = try VirtioNetReceiveQueue(state: rxState, memory: rig.guest.memory, features: config.features)
                handOvers += 1
            }
            _ = try rig.guest.collectTransmitted()
            received += try rig.guest.receivePackets().map { sequenceNumber(of: $0.frame)! }
        }
        #expect(received == Array(0..<total))
        #expect(handOvers > 10)
    }
}

import Foundation
import Testing
import VDPADatapath
import VDPASystem
import VirtioModel
import VirtioNet
import Virtqueue
import VirtqueueTestSupport
import VirtioNetTestSupport

typealias Net = VirtioFeatures.Net

func frame(_ sequence: Int, length: Int) -> [UInt8] {
    var bytes: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef, 0x88, 0xb5]
    bytes += withUnsafeBytes(of: UInt32(sequence).littleEndian, Array.init)
    while bytes.count < length { bytes.append(UInt8(truncatingIfNeeded: bytes.count &+ sequence)) }
    return bytes
}

func sequence(of bytes: [UInt8]) -> Int {
    Int(UInt32(bytes[14]) | UInt32(bytes[15]) << 8 | UInt32(bytes[16]) << 16 | UInt32(bytes[17]) << 24)
}

@Suite("EventFD and Poller")
struct NotifierTests {
    @Test func eventfdCountsAndDrains() throws {
        let event = try EventFD()
        #expect(try !event.wait(timeoutMilliseconds: 0))
        try event.signal()
        try event.signal()
        #expect(try event.wait(timeoutMilliseconds: 0))
        #expect(try event.drain() == 2)
        #expect(try event.drain() == 0)
        var poller = Poller()
        try event.signal()
        let other = try EventFD()
        let ready = try poller.wait(
            [.init(fileDescriptor: other.fileDescriptor), .init(fileDescriptor: event.fileDescriptor)], timeoutMilliseconds: 100)
        #expect(ready.map(\.readable) == [false, true])
    }
}

@Suite("Queue-pair workers")
struct WorkerTests {
    /// The guest streams frames through a running worker (loopback backend),
    /// kicking through eventfds and waiting on the call eventfds; every 60
    /// frames the device is quiesced and a new one is built from the
    /// reported queue states. Every frame arrives exactly once, in order.
    @Test(arguments: QueueLayout.allCases.flatMap { layout in [false, true].map { (layout, $0) } })
    func quiesceAndHandOverMidStream(_ layout: QueueLayout, _ mergeable: Bool) throws {
        var features: VirtioFeatures = [.version1, .ringEventIndex]
        if mergeable { features.insert(Net.mergeableRxBuffers) }
        var guest = try VirtioNetGuest(layout: layout, size: 128, features: features, eventIndex: true)
        let backend = LoopbackBackend(recordsSent: false)
        let rxNotifiers = try QueueNotifiers.make()
        let txNotifiers = try QueueNotifiers.make()
        func makeDevice(receive: QueueState, transmit: QueueState) throws -> SoftwareNetDevice<HeapGuestMemory> {
            try SoftwareNetDevice(
                memory: guest.memory, features: features, maximumQueuePairs: 1,
                pairs: [.init(receive: receive, transmit: transmit, receiveNotifiers: rxNotifiers,
                              transmitNotifiers: txNotifiers, backend: backend)],
                options: NetWorkerOptions(idleTimeoutMilliseconds: 2000))
        }
        var device = try makeDevice(receive: guest.queueStates[0], transmit: guest.queueStates[1])
        device.start()
        let total = 600
        var sent = 0
        var received: [Int] = []
        var handOvers = 0
        var calls = 0
        let deadline = Date().addingTimeInterval(60)
        _ = try guest.enableInterrupts(0)
        _ = try guest.enableInterrupts(1)
        while received.count < total, Date() < deadline {
            if guest.inFlight(0) < 40 {
                try guest.postReceiveBuffers(count: 48 - guest.inFlight(0), size: mergeable ? 512 : 1600, segments: 2)
                if try guest.publish(0) { try rxNotifiers.kick.signal() }
            }
            var queued = 0
            while queued < 8, sent < total, sent - received.count < 16 {
                try guest.transmit(frame(sent, length: 60 + (sent * 53) % 1400), segments: 1 + sent % 3)
                sent += 1
                queued += 1
            }
            if queued > 0, try guest.publish(1) { try txNotifiers.kick.signal() }
            if try rxNotifiers.call.wait(timeoutMilliseconds: 50) { calls += Int(try rxNotifiers.call.drain()) }
            _ = try txNotifiers.call.drain()
            _ = try guest.collectTransmitted()
            received += try guest.receivePackets().map { sequence(of: $0.frame) }
            _ = try guest.enableInterrupts(0)
            _ = try guest.enableInterrupts(1)
            if received.count >= (handOvers + 1) * 60 {
                let report = device.quiesce()
                #expect(report.brokenError == nil)
                #expect(report.pairs[0].droppedOnQuiesce == 0)
                device = try makeDevice(receive: report.pairs[0].receiveState, transmit: report.pairs[0].transmitState)
                device.start()
                handOvers += 1
            }
        }
        device.stop()
        #expect(received == Array(0..<total))
        #expect(handOvers >= 9)
        #expect(calls > 0, "the worker signalled the call eventfd")
    }

    @Test func brokenRingStopsTheWorkerWithTheFault() throws {
        var guest = try VirtioNetGuest(layout: .split, size: 16, features: [.version1])
        let rx = try QueueNotifiers.make()
        let tx = try QueueNotifiers.make()
        let device = try SoftwareNetDevice(
            memory: guest.memory, features: [.version1], maximumQueuePairs: 1,
            pairs: [.init(receive: guest.queueStates[0], transmit: guest.queueStates[1], receiveNotifiers: rx,
                          transmitNotifiers: tx, backend: LoopbackBackend())])
        device.start()
        // The driver claims 1000 new buffers on a 16-entry ring.
        let forge = RingForge(memory: guest.memory, state: guest.queueStates[1])
        try forge.setSplitAvailIndex(1000)
        try tx.kick.signal()
        for _ in 0..<500 where device.fault == nil { Thread.sleep(forTimeInterval: 0.01) }
        #expect(device.fault?.kind == .availIndexTooFarAhead)
        let report: SoftwareNetDevice<HeapGuestMemory>.Report? = device.stop()
        #expect(report?.brokenError?.kind == .availIndexTooFarAhead)
        _ = try guest.collectTransmitted()
    }

    @Test func setupNamesTheQueueThatIsWrong() throws {
        let guest = try VirtioNetGuest(layout: .split, size: 16, features: [.version1])
        var bad = guest.queueStates[1]
        bad.size = 3
        #expect {
            try SoftwareNetDevice(
                memory: guest.memory, features: [.version1], maximumQueuePairs: 1,
                pairs: [.init(receive: guest.queueStates[0], transmit: bad, receiveNotifiers: try .make(),
                              transmitNotifiers: try .make(), backend: LoopbackBackend())])
        } throws: { error in
            if case SoftwareNetDevice<HeapGuestMemory>.SetupError.transmitQueue(pair: 0, .invalidQueueSize(3)) = error { return true }
            return false
        }
    }

    @Test func controlQueueServedByTheFirstWorker() throws {
        let features: VirtioFeatures = [.version1, Net.controlVirtqueue, Net.controlRx, Net.multiqueue]
        var guest = try VirtioNetGuest(layout: .packed, queuePairs: 2, size: 16, features: features, control: true)
        let control = try QueueNotifiers.make()
        let pairs = try (0..<2).map { pair in
            SoftwareNetDevice<HeapGuestMemory>.QueuePairSetup(
                receive: guest.queueStates[pair * 2], transmit: guest.queueStates[pair * 2 + 1],
                receiveNotifiers: try .make(), transmitNotifiers: try .make(), backend: LoopbackBackend())
        }
        let device = try SoftwareNetDevice(
            memory: guest.memory, features: features, maximumQueuePairs: 2, pairs: pairs,
            control: .init(queue: guest.queueStates[guest.controlQueue], notifiers: control))
        device.start()
        try guest.sendControl(VirtioNetControlCommand.queuePairsSet(2).bytes)
        try guest.sendControl(VirtioNetControlCommand.rxMode(.promiscuous, on: false).bytes)
        try guest.sendControl(VirtioNetControlCommand.queuePairsSet(3).bytes)
        if try guest.publish(guest.controlQueue) { try control.kick.signal() }
        var acks: [UInt8?] = []
        for _ in 0..<200 where acks.count < 3 {
            _ = try control.call.wait(timeoutMilliseconds: 20)
            acks += try guest.collectControlAcks()
        }
        let report = device.quiesce()
        #expect(acks == [0, 0, 1])
        #expect(report.controlState.queuePairs == 2 && !report.controlState.promiscuous)
        #expect(report.controlQueueState != nil)
    }
}

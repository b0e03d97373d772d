import Testing
import VirtioModel
import VirtioNet
import Virtqueue
import VirtqueueTestSupport
import VirtioNetTestSupport

struct DatapathConfig: Sendable, CustomStringConvertible {
    var layout: QueueLayout
    var mergeable: Bool
    var eventIndex: Bool
    var description: String { "\(layout) mrg=\(mergeable) eventIdx=\(eventIndex)" }
    static let all: [DatapathConfig] = QueueLayout.allCases.flatMap { layout in
        [false, true].flatMap { mergeable in [false, true].map { DatapathConfig(layout: layout, mergeable: mergeable, eventIndex: $0) } }
    }
    var features: VirtioFeatures {
        var features: VirtioFeatures = [.version1, Net.checksum, Net.hostTSO4]
        if mergeable { features.insert(Net.mergeableRxBuffers) }
        if eventIndex { features.insert(.ringEventIndex) }
        return features
    }
}

@Suite("Net datapath through the loopback backend")
struct DatapathTests {
    @Test(arguments: DatapathConfig.all)
    func framesGoOutAndComeBackIntact(_ config: DatapathConfig) throws {
        var rig = try NetRig(layout: config.layout, features: config.features, eventIndex: config.eventIndex)
        // Merged buffers are small so big frames span several; plain ones hold any frame.
        let bufferSize = config.mergeable ? 256 : 1600
        var sent: [[UInt8]] = []
        var received: [[UInt8]] = []
        var next = 0
        let total = 300
        while received.count < total {
            if rig.guest.inFlight(0) < 20 {
                try rig.guest.postReceiveBuffers(count: 20 - rig.guest.inFlight(0), size: bufferSize, segments: 1 + next % 3)
                try rig.guest.publish(0)
            }
            var queued = 0
            while queued < 8, next < total {
                let frame = testFrame(next, length: 60 + (next * 97) % 1400)
                let header = next % 5 == 0
                    ? VirtioNetHeader(flags: .needsChecksum, checksumStart: 34, checksumOffset: 6) : VirtioNetHeader()
                try rig.guest.transmit(frame, header: header, segments: 1 + next % 4)
                sent.append(frame)
                next += 1
                queued += 1
            }
            try rig.guest.publish(1)
            let txRun = try rig.tx.process(backend: rig.backend)
            #expect(!txRun.isBlocked)
            _ = try rig.rx.process(backend: rig.backend)
            #expect(rig.tx.queue.inFlightCount == 0)
            #expect(rig.rx.queue.inFlightCount == 0)
            _ = try rig.guest.collectTransmitted()
            for packet in try rig.guest.receivePackets() {
                #expect(packet.header.bufferCount == UInt16(packet.bufferCount))
                if !config.mergeable { #expect(packet.bufferCount == 1) }
                received.append(packet.frame)
            }
        }
        #expect(received == sent)
        #expect(rig.tx.counters.packets == UInt64(total))
        #expect(rig.rx.counters.packets == UInt64(total))
        #expect(rig.rx.counters.bytes == UInt64(sent.reduce(0) { $0 + $1.count }))
        #expect(rig.rx.counters.drops == 0 && rig.tx.counters.errors == 0)
        // Headers travel: every fifth frame asked for a checksum.
        let headers = rig.backend.sentFrames.map(\.header)
        #expect(headers.filter { $0.flags.contains(.needsChecksum) }.count == (total + 4) / 5)
    }

    @Test(arguments: QueueLayout.allCases)
    func nonMergeableFrameThatDoesNotFitIsDroppedAndBufferKept(_ layout: QueueLayout) throws {
        var rig = try NetRig(layout: layout, features: [.version1])
        try rig.guest.postReceiveBuffers(count: 1, size: 200)
        try rig.guest.publish(0)
        let big = testFrame(1, length: 500)
        let small = testFrame(2, length: 100)
        rig.backend.inject(.init(bytes: big))
        rig.backend.inject(.init(bytes: small))
        _ = try rig.rx.process(backend: rig.backend)
        #expect(rig.rx.counters.drops == 1)
        let packets = try rig.guest.receivePackets()
        #expect(packets.map(\.frame) == [small])
        #expect(packets.first?.header.bufferCount == 1)
        // Nothing beyond the 200-byte buffer was touched: the driver checks the used length too.
        #expect(rig.rx.queue.inFlightCount == 0)
    }

    @Test(arguments: QueueLayout.allCases)
    func mergeableFrameLargerThanTheWholeRingIsDropped(_ layout: QueueLayout) throws {
        var rig = try NetRig(layout: layout, features: [.version1, Net.mergeableRxBuffers], size: 8)
        try rig.guest.postReceiveBuffers(count: 8, size: 100)
        try rig.guest.publish(0)
        rig.backend.inject(.init(bytes: testFrame(1, length: 2000)))
        rig.backend.inject(.init(bytes: testFrame(2, length: 300)))
        _ = try rig.rx.process(backend: rig.backend)
        #expect(rig.rx.counters.drops == 1)
        let packets = try rig.guest.receivePackets()
        #expect(packets.map(\.frame) == [testFrame(2, length: 300)])
        #expect(packets.first?.bufferCount == 4)
    }

    @Test(arguments: QueueLayout.allCases)
    func frameWaitsForBuffersInsteadOfBeingDropped(_ layout: QueueLayout) throws {
        var rig = try NetRig(layout: layout, features: [.version1, Net.mergeableRxBuffers])
        rig.backend.inject(.init(bytes: testFrame(7, length: 1000)))
        var run = try rig.rx.process(backend: rig.backend)
        #expect(run.isBlocked && rig.rx.hasPendingFrame)
        try rig.guest.postReceiveBuffers(count: 2, size: 256)
        let kick = try rig.guest.publish(0)
        #expect(kick, "the device asked for a kick while waiting for buffers")
        run = try rig.rx.process(backend: rig.backend)
        #expect(run.isBlocked, "two buffers are not enough, and the popped ones were given back")
        #expect(rig.rx.queue.inFlightCount == 0)
        try rig.guest.postReceiveBuffers(count: 3, size: 256)
        try rig.guest.publish(0)
        run = try rig.rx.process(backend: rig.backend)
        #expect(!run.isBlocked && !rig.rx.hasPendingFrame)
        #expect(run.needsNotification)
        let packets = try rig.guest.receivePackets()
        #expect(packets.map(\.frame) == [testFrame(7, length: 1000)])
        #expect(packets.first?.bufferCount == 4)
        #expect(rig.rx.counters.drops == 0)
    }

    @Test(arguments: QueueLayout.allCases)
    func receiveBufferTooSmallForTheHeaderIsReturnedEmpty(_ layout: QueueLayout) throws {
        var rig = try NetRig(layout: layout, features: [.version1])
        try rig.guest.postReceiveBuffers(count: 1, size: 8)
        try rig.guest.postReceiveBuffers(count: 1, size: 1600)
        try rig.guest.publish(0)
        rig.backend.inject(.init(bytes: testFrame(3, length: 64)))
        _ = try rig.rx.process(backend: rig.backend)
        #expect(rig.rx.counters.errors == 1)
        let first = try #require(try rig.guest.popUsed(0))
        #expect(first.buffer.length == 0)
        let packets = try rig.guest.receivePackets()
        #expect(packets.map(\.frame) == [testFrame(3, length: 64)])
    }

    @Test(arguments: QueueLayout.allCases)
    func malformedTransmitChainsAreCompletedAndCounted(_ layout: QueueLayout) throws {
        var rig = try NetRig(layout: layout, features: [.version1], loopsBack: false)
        try rig.guest.addBuffer(queue: 1, readable: [1, 2, 3])                                     // shorter than the header
        try rig.guest.transmit(testFrame(1, length: 10))                                            // runt frame
        try rig.guest.transmit(testFrame(2, length: 60), header: VirtioNetHeader(flags: .dataValid)) // receive-only flag
        try rig.guest.transmit(testFrame(3, length: 60), header: VirtioNetHeader(gsoType: .tcpv4, gsoSize: 1)) // TSO not negotiated
        try rig.guest.transmit(testFrame(4, length: 60))                                            // fine
        try rig.guest.publish(1)
        let run = try rig.tx.process(backend: rig.backend)
        #expect(run.completed == 5)
        #expect(rig.tx.counters.errors == 4)
        #expect(rig.tx.counters.packets == 1)
        #expect(rig.backend.sentFrames.map(\.bytes) == [testFrame(4, length: 60)])
        #expect(try rig.guest.collectTransmitted().count == 5)
        #expect(rig.tx.brokenError == nil)
    }

    @Test func budgetLeavesWorkForTheNextPass() throws {
        var rig = try NetRig(layout: .split, features: [.version1], loopsBack: false)
        for index in 0..<10 { try rig.guest.transmit(testFrame(index, length: 64)) }
        try rig.guest.publish(1)
        var run = try rig.tx.process(backend: rig.backend, budget: 4)
        #expect(run.completed == 4 && run.hasMoreWork)
        run = try rig.tx.process(backend: rig.backend, budget: 100)
        #expect(run.completed == 6 && !run.hasMoreWork)
    }

    @Test(arguments: QueueLayout.allCases)
    func eventIndexSuppressesNotificationsUntilTheDriverAsks(_ layout: QueueLayout) throws {
        var rig = try NetRig(layout: layout, features: [.version1, .ringEventIndex], eventIndex: true, loopsBack: false)
        _ = try rig.guest.enableInterrupts(1)
        try rig.guest.transmit(testFrame(0, length: 64))
        try rig.guest.publish(1)
        var run = try rig.tx.process(backend: rig.backend)
        #expect(run.needsNotification)
        // The driver has not re-armed (its used_event still points at the first one).
        try rig.guest.transmit(testFrame(1, length: 64))
        try rig.guest.publish(1)
        run = try rig.tx.process(backend: rig.backend)
        #expect(!run.needsNotification)
        _ = try rig.guest.collectTransmitted()
        _ = try rig.guest.enableInterrupts(1)
        try rig.guest.transmit(testFrame(2, length: 64))
        try rig.guest.publish(1)
        run = try rig.tx.process(backend: rig.backend)
        #expect(run.needsNotification)
    }
}

/// A backend that refuses sends until told otherwise.
final class FullBackend: NetBackend, @unchecked Sendable {
    var full = true
    /// When set, the backend takes this many more frames and is full after them.
    var room: Int?
    var sent: [[UInt8]] = []
    let slot = NetBackendWakerSlot()
    var readiness: NetBackendReadiness { .inProcess(slot) }
    func send(header: VirtioNetHeader, frame: UnsafeRawBufferPointer) throws(NetBackendError) -> NetSendResult {
        if let room {
            if room == 0 { return .wouldBlock }
            self.room = room - 1
        } else if full {
            return .wouldBlock
        }
        sent.append(Array(frame))
        return .sent
    }
    func receive(into frame: UnsafeMutableRawBufferPointer) throws(NetBackendError) -> NetReceivedFrame? { nil }
}

@Suite("Transmit back-pressure")
struct BackPressureTests {
    @Test(arguments: QueueLayout.allCases)
    func fullBackendKeepsTheChainForLater(_ layout: QueueLayout) throws {
        var guest = try VirtioNetGuest(layout: layout, features: [.version1])
        var tx = try VirtioNetTransmitQueue(state: guest.queueStates[1], memory: guest.memory, features: [.version1])
        let backend = FullBackend()
        for index in 0..<3 { try guest.transmit(testFrame(index, length: 64)) }
        try guest.publish(1)
        var run = try tx.process(backend: backend)
        #expect(run.isBlocked && run.completed == 0 && tx.queue.inFlightCount == 0)
        backend.full = false
        run = try tx.process(backend: backend)
        #expect(run.completed == 3)
        #expect(backend.sent == (0..<3).map { testFrame($0, length: 64) })
    }

    /// A backend that fills in the middle of a burst: the chains already sent are used, the
    /// rest of the burst and of the ring go back to the ring untouched and leave, in order,
    /// once the backend has room; more frames than a burst and than a used batch.
    @Test(arguments: QueueLayout.allCases)
    func aBackendFullInTheMiddleOfABurstKeepsTheRestInOrder(_ layout: QueueLayout) throws {
        var guest = try VirtioNetGuest(layout: layout, size: 64, features: [.version1])
        var tx = try VirtioNetTransmitQueue(state: guest.queueStates[1], memory: guest.memory, features: [.version1])
        let backend = FullBackend()
        backend.room = 5
        let frames = (0..<40).map { testFrame($0, length: 64) }
        for frame in frames { try guest.transmit(frame) }
        try guest.publish(1)
        var run = try tx.process(backend: backend)
        #expect(run.isBlocked && run.completed == 5 && tx.queue.inFlightCount == 0)
        #expect(try guest.collectTransmitted().count == 5)
        backend.room = 21
        run = try tx.process(backend: backend)
        #expect(run.isBlocked && run.completed == 21)
        backend.room = nil
        backend.full = false
        run = try tx.process(backend: backend)
        #expect(!run.isBlocked && run.completed == 14)
        #expect(try guest.collectTransmitted().count == 35)
        #expect(backend.sent == frames)
    }

    /// The frame reaches the backend whatever the chain's shape: in place (header and frame in
    /// one buffer; the header alone in the first), or gathered (anything else); and a header
    /// the device refuses stops the frame in every shape.
    @Test(arguments: QueueLayout.allCases)
    func everyChainShapeSendsTheSameFrame(_ layout: QueueLayout) throws {
        var guest = try VirtioNetGuest(layout: layout, features: [.version1])
        var tx = try VirtioNetTransmitQueue(state: guest.queueStates[1], memory: guest.memory, features: [.version1])
        let backend = FullBackend()
        backend.full = false
        let frame = testFrame(7, length: 100)
        let shapes = [[112], [12, 100], [4, 8, 100], [12, 50, 50], [20, 92], [6, 106]]
        for shape in shapes { try guest.transmit(frame, pieceLengths: shape) }
        var refused = VirtioNetHeader()
        refused.flags = .dataValid
        for shape in shapes { try guest.transmit(frame, header: refused, pieceLengths: shape) }
        try guest.publish(1)
        let run = try tx.process(backend: backend)
        #expect(run.completed == 2 * shapes.count)
        #expect(backend.sent == [[UInt8]](repeating: frame, count: shapes.count))
        #expect(tx.counters.packets == UInt64(shapes.count) && tx.counters.errors == UInt64(shapes.count))
    }
}

import Foundation
import Testing
import VirtioModel
import VirtioNet
import Virtqueue
import VirtqueueTestSupport
import VirtioNetTestSupport

@Suite("Control queue")
struct ControlQueueTests {
    static let features: VirtioFeatures = [
        .version1, Net.controlVirtqueue, Net.controlRx, Net.controlRxExtra, Net.controlVLAN, Net.guestAnnounce,
        Net.multiqueue, Net.controlMACAddress, Net.controlGuestOffloads, Net.guestChecksum, Net.guestTSO4,
    ]

    struct Rig {
        var guest: VirtioNetGuest
        var control: VirtioNetControlQueue<HeapGuestMemory>

        init(layout: QueueLayout, features: VirtioFeatures = ControlQueueTests.features) throws {
            guest = try VirtioNetGuest(layout: layout, queuePairs: 4, features: features, control: true)
            control = try VirtioNetControlQueue(
                state: guest.queueStates[guest.controlQueue], memory: guest.memory, features: features, maximumQueuePairs: 4)
        }

        mutating func send(_ commands: [[UInt8]], ackBytes: Int = 1) throws -> [UInt8?] {
            for command in commands { try guest.sendControl(command, ackBytes: ackBytes) }
            try guest.publish(guest.controlQueue)
            _ = try control.process()
            return try guest.collectControlAcks()
        }
    }

    @Test(arguments: QueueLayout.allCases)
    func wellFormedCommandsUpdateTheState(_ layout: QueueLayout) throws {
        var rig = try Rig(layout: layout)
        let mac = MACAddress("52:54:00:aa:bb:cc")!
        let multicast = MACAddress("01:00:5e:00:00:fb")!
        let commands: [VirtioNetControlCommand] = [
            .rxMode(.promiscuous, on: false), .rxMode(.allMulticast, on: true), .rxMode(.allUnicast, on: true),
            .rxMode(.noMulticast, on: true), .rxMode(.noUnicast, on: true), .rxMode(.noBroadcast, on: true),
            .macAddressSet(mac), .macTableSet(unicast: [mac], multicast: [multicast]),
            .vlanAdd(100), .vlanAdd(4095), .vlanAdd(7), .vlanDelete(7),
            .queuePairsSet(3), .announceAck, .guestOffloadsSet(VirtioFeatures.Net.guestChecksum.rawValue),
        ]
        let acks = try rig.send(commands.map(\.bytes))
        #expect(acks == Array(repeating: VirtioNetAck.ok.rawValue, count: commands.count))
        let state = rig.control.state
        #expect(!state.promiscuous && state.allMulticast && state.allUnicast)
        #expect(state.noMulticast && state.noUnicast && state.noBroadcast)
        #expect(state.macAddress == mac)
        #expect(state.unicastFilter == [mac] && state.multicastFilter == [multicast])
        #expect(state.vlans.ids == [100, 4095])
        #expect(state.queuePairs == 3)
        #expect(state.announceAcks == 1)
        #expect(state.guestOffloads == 2)
        #expect(rig.control.counters.packets == UInt64(commands.count))
    }

    static let malformed: [(String, [UInt8])] = [
        ("empty", []),
        ("class only", [0]),
        ("unknown class", [9, 0]),
        ("unknown rx command", [0, 6, 1]),
        ("rx without data", [0, 0]),
        ("rx with two bytes", [0, 0, 1, 1]),
        ("rx value 2", [0, 0, 2]),
        ("mac table truncated count", [1, 0, 1, 0]),
        ("mac table claims 2^32-1 entries", [1, 0, 0xff, 0xff, 0xff, 0xff]),
        ("mac table missing multicast part", [1, 0, 0, 0, 0, 0]),
        ("mac table trailing bytes", [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]),
        ("mac addr short", [1, 1, 0x52, 0x54, 0, 1, 2]),
        ("mac addr multicast", [1, 1, 1, 0, 0x5e, 0, 0, 1]),
        ("mac addr zero", [1, 1, 0, 0, 0, 0, 0, 0]),
        ("unknown mac command", [1, 2]),
        ("vlan 4096", [2, 0, 0x00, 0x10]),
        ("vlan 0xffff", [2, 1, 0xff, 0xff]),
        ("vlan short", [2, 0, 1]),
        ("announce with data", [3, 0, 1]),
        ("mq zero pairs", [4, 0, 0, 0]),
        ("mq above max", [4, 0, 5, 0]),
        ("mq 0x8001", [4, 0, 0x01, 0x80]),
        ("mq rss not offered", [4, 1, 0, 0]),
        ("offloads not negotiated", [5, 0, 0x00, 0x02, 0, 0, 0, 0, 0, 0]),
        ("offloads short", [5, 0, 1]),
    ]

    @Test(arguments: QueueLayout.allCases)
    func malformedCommandsGetErrAndChangeNothing(_ layout: QueueLayout) throws {
        var rig = try Rig(layout: layout)
        let acks = try rig.send(Self.malformed.map(\.1))
        for (index, ack) in acks.enumerated() {
            #expect(ack == VirtioNetAck.error.rawValue, "\(Self.malformed[index].0)")
        }
        #expect(rig.control.state == VirtioNetControlState(features: Self.features))
        #expect(rig.control.counters.errors == UInt64(Self.malformed.count))
        #expect(rig.control.brokenError == nil)
    }

    @Test func commandsNeedTheirFeature() throws {
        var rig = try Rig(layout: .split, features: [.version1, Net.controlVirtqueue])
        let acks = try rig.send([
            VirtioNetControlCommand.rxMode(.promiscuous, on: false).bytes,
            VirtioNetControlCommand.queuePairsSet(1).bytes,
            VirtioNetControlCommand.vlanAdd(1).bytes,
            VirtioNetControlCommand.macAddressSet(MACAddress("52:54:00:00:00:01")!).bytes,
        ])
        #expect(acks == [1, 1, 1, 1])
    }

    @Test func chainWithoutAckBufferIsCompletedEmpty() throws {
        var rig = try Rig(layout: .split)
        let acks = try rig.send([VirtioNetControlCommand.rxMode(.promiscuous, on: false).bytes], ackBytes: 0)
        #expect(acks == [nil])
        #expect(rig.control.state.promiscuous, "a command that cannot be acked is not applied")
    }

    @Test func stateIsCodableAndReplayable() throws {
        var state = VirtioNetControlState(features: Self.features)
        let commands: [VirtioNetControlCommand] = [
            .macAddressSet(MACAddress("52:54:00:aa:bb:cc")!), .queuePairsSet(2), .rxMode(.promiscuous, on: false),
            .rxMode(.noBroadcast, on: true), .vlanAdd(10), .vlanAdd(20),
            .macTableSet(unicast: [], multicast: [MACAddress("33:33:00:00:00:01")!]),
        ]
        for command in commands { try state.apply(command, features: Self.features, maximumQueuePairs: 4) }
        let data = try JSONEncoder().encode(state)
        let decoded = try JSONDecoder().decode(VirtioNetControlState.self, from: data)
        #expect(decoded == state)
        // Replaying on a fresh device rebuilds the same state.
        var replayed = VirtioNetControlState(features: Self.features)
        for command in state.replayCommands(features: Self.features) {
            let parsed = try VirtioNetControlCommand(parsing: command.bytes)
            #expect(parsed == command)
            try replayed.apply(parsed, features: Self.features, maximumQueuePairs: 4)
        }
        #expect(replayed == state)
    }

    @Test func receiveFilterFollowsTheState() throws {
        var state = VirtioNetControlState(features: Self.features)
        let mine = MACAddress("52:54:00:00:00:01")!
        func accepts(_ destination: [UInt8], vlan: UInt16? = nil) -> Bool {
            var frame = destination + [0x52, 0x54, 0, 0, 0, 2]
            if let vlan { frame += [0x81, 0x00, UInt8(vlan >> 8), UInt8(vlan & 0xff)] }
            frame += [0x08, 0x00] + [UInt8](repeating: 0, count: 46)
            return frame.withUnsafeBytes { state.acceptsFrame($0) }
        }
        #expect(accepts([1, 2, 3, 4, 5, 6]), "promiscuous after reset")
        try state.apply(.rxMode(.promiscuous, on: false), features: Self.features, maximumQueuePairs: 1)
        try state.apply(.macAddressSet(mine), features: Self.features, maximumQueuePairs: 1)
        #expect(accepts(mine.bytes))
        #expect(!accepts([0x52, 0x54, 0, 0, 0, 9]))
        #expect(accepts([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))
        #expect(!accepts([0x01, 0, 0x5e, 0, 0, 1]))
        try state.apply(.rxMode(.allMulticast, on: true), features: Self.features, maximumQueuePairs: 1)
        #expect(accepts([0x01, 0, 0x5e, 0, 0, 1]))
        try state.apply(.rxMode(.noBroadcast, on: true), features: Self.features, maximumQueuePairs: 1)
        #expect(!accepts([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))
        #expect(!accepts(mine.bytes, vlan: 5), "VLAN filtering drops ids not added")
        try state.apply(.vlanAdd(5), features: Self.features, maximumQueuePairs: 1)
        #expect(accepts(mine.bytes, vlan: 5))
    }

    @Test func filteredFramesAreCountedNotDelivered() throws {
        let features: VirtioFeatures = [.version1, Net.controlVirtqueue, Net.controlRx, Net.controlMACAddress]
        var guest = try VirtioNetGuest(layout: .packed, features: features)
        var rx = try VirtioNetReceiveQueue(state: guest.queueStates[0], memory: guest.memory, features: features)
        var state = VirtioNetControlState(features: features)
        try state.apply(.rxMode(.promiscuous, on: false), features: features, maximumQueuePairs: 1)
        try state.apply(.macAddressSet(MACAddress("52:54:00:12:34:56")!), features: features, maximumQueuePairs: 1)
        let backend = LoopbackBackend()
        var other = testFrame(1, length: 64)
        other[5] = 0x99
        backend.inject(.init(bytes: other))
        backend.inject(.init(bytes: testFrame(2, length: 64)))
        try guest.postReceiveBuffers(count: 4, size: 1600)
        try guest.publish(0)
        _ = try rx.process(backend: backend, filter: state)
        #expect(rx.counters.filtered == 1)
        #expect(try guest.receivePackets().map(\.frame) == [testFrame(2, length: 64)])
    }
}

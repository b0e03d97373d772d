import Testing
import Virtqueue
import VirtqueueTestSupport

/// Configuration of one driver ↔ device round trip.
struct RoundTripConfig: Sendable, CustomStringConvertible {
    var layout: QueueLayout
    var size: UInt16 = 16
    var indirect = false
    var inOrder = false
    var collapse = false
    var eventIndex = false
    var buffers = 200
    var batch = 5
    var readableSegments = 2
    var writableSegments = 2

    var description: String {
        "\(layout) size=\(size) indirect=\(indirect) inOrder=\(inOrder) collapse=\(collapse) eventIdx=\(eventIndex) n=\(buffers) batch=\(batch)"
    }
}

func payload(for sequence: Int) -> [UInt8] {
    let length = 1 + sequence % 37
    return (0..<length).map { UInt8(truncatingIfNeeded: sequence &* 31 &+ $0) }
}

/// Runs `config.buffers` buffers through a fresh driver/device pair, checking
/// data, ids, order and that every buffer comes back exactly once.
func runRoundTrip(_ config: RoundTripConfig) throws {
    var mock = try MockDriver(
        layout: config.layout, size: config.size, eventIndex: config.eventIndex,
        indirect: config.indirect, inOrder: config.inOrder)
    let memory = mock.memory
    var device = try DeviceQueue(state: mock.deviceState, memory: memory)
    if config.collapse { device.collapsesInOrderBatches = true }
    var chain = DescriptorChain()
    var sent = 0
    var received = 0
    var outstanding: [UInt16: Int] = [:]   // id -> sequence
    var expectedOrder: [Int] = []
    var seen = Set<Int>()
    while received < config.buffers {
        // Driver: add a batch.
        var added = 0
        while added < config.batch, sent < config.buffers {
            let data = payload(for: sent)
            do {
                let id = try mock.add(
                    payload: data, writableCapacity: data.count,
                    readableSegments: config.readableSegments, writableSegments: config.writableSegments,
                    indirect: config.indirect)
                #expect(outstanding[id] == nil, "id \(id) reused while in flight")
                outstanding[id] = sent
                expectedOrder.append(sent)
                sent += 1
                added += 1
            } catch VirtqueueError.queueFull {
                break
            }
        }
        _ = try mock.publish()
        // Device: serve everything available, publish once.
        while try device.popAvailable(into: &chain) {
            let bytes = try chain.readableBytes(from: memory)
            #expect(chain.readableLength == chain.writableLength)
            let written = try chain.writeWritable(bytes.reversed(), to: memory)
            try device.pushUsed(chain.usedElement(writtenLength: written))
        }
        _ = try device.publishUsed()
        #expect(device.inFlightCount == 0)
        // Driver: collect.
        while let (used, written) = try mock.popUsed() {
            let removed = outstanding.removeValue(forKey: used.id)
            let sequence = try #require(removed)
            #expect(!seen.contains(sequence))
            seen.insert(sequence)
            #expect(written == Array(payload(for: sequence).reversed()), "buffer \(sequence)")
            if config.inOrder {
                #expect(sequence == expectedOrder[received])
            }
            received += 1
        }
    }
    #expect(received == config.buffers)
    #expect(seen.count == config.buffers)
    #expect(mock.driver.inFlightCount == 0)
    #expect(device.brokenError == nil)
}

let roundTripConfigs: [RoundTripConfig] = {
    var configs: [RoundTripConfig] = []
    for layout in QueueLayout.allCases {
        configs.append(RoundTripConfig(layout: layout))
        configs.append(RoundTripConfig(layout: layout, indirect: true))
        configs.append(RoundTripConfig(layout: layout, inOrder: true))
        configs.append(RoundTripConfig(layout: layout, inOrder: true, collapse: true))
        configs.append(RoundTripConfig(layout: layout, indirect: true, inOrder: true, collapse: true))
        configs.append(RoundTripConfig(layout: layout, eventIndex: true))
        configs.append(RoundTripConfig(layout: layout, size: 4, buffers: 100, batch: 7, readableSegments: 1, writableSegments: 1))
        configs.append(RoundTripConfig(layout: layout, size: 256, buffers: 2000, batch: 64, readableSegments: 3, writableSegments: 3))
    }
    configs.append(RoundTripConfig(layout: .packed, size: 5, buffers: 300, batch: 3, readableSegments: 1, writableSegments: 1))
    configs.append(RoundTripConfig(layout: .packed, size: 7, inOrder: true, collapse: true, buffers: 300, batch: 4))
    return configs
}()

@Test("driver ↔ device round trip", arguments: roundTripConfigs)
func roundTrip(_ config: RoundTripConfig) throws {
    try runRoundTrip(config)
}

@Test("16-bit index and packed wrap counters survive > 65536 buffers", arguments: QueueLayout.allCases)
func wrapAround(_ layout: QueueLayout) throws {
    var mock = try MockDriver(layout: layout, size: 8, slotSize: 64)
    let memory = mock.memory
    var device = try DeviceQueue(state: mock.deviceState, memory: memory)
    var chain = DescriptorChain()
    var wrapFlips = 0
    var lastWrap = device.state.availWrapCounter
    let total = 70_000
    var done = 0
    var nextExpected: UInt8 = 0
    while done < total {
        let batch = min(3, total - done)
        for i in 0..<batch {
            try mock.add(payload: [UInt8(truncatingIfNeeded: done + i)], writableCapacity: 1)
        }
        _ = try mock.publish()
        for _ in 0..<batch {
            #expect(try device.popAvailable(into: &chain))
            let byte = try chain.readableBytes(from: memory)
            #expect(byte == [nextExpected])
            nextExpected &+= 1
            let written = try chain.writeWritable(byte, to: memory)
            try device.pushUsed(chain.usedElement(writtenLength: written))
        }
        #expect(try device.popAvailable(into: &chain) == false)
        _ = try device.publishUsed()
        if device.state.availWrapCounter != lastWrap {
            wrapFlips += 1
            lastWrap = device.state.availWrapCounter
        }
        for _ in 0..<batch {
            let used = try #require(try mock.popUsed())
            #expect(used.written.count == 1)
        }
        done += batch
    }
    let state = device.state
    if layout == .split {
        #expect(state.nextAvailIndex == UInt16(truncatingIfNeeded: total))
        #expect(state.nextUsedIndex == UInt16(truncatingIfNeeded: total))
    } else {
        // 70000 two-descriptor buffers (1 readable + 1 writable) through 8 slots.
        let laps = total * 2 / 8
        #expect(state.nextAvailIndex == UInt16(total * 2 % 8))
        #expect(wrapFlips == laps)
        #expect(state.availWrapCounter == (laps % 2 == 0))
        #expect(state.usedWrapCounter == state.availWrapCounter)
    }
}

@Test("buffers straddling two adjacent regions are split into one segment per region")
func straddlingBuffer() throws {
    let memory = try HeapGuestMemory(regions: [(GuestAddress(0), 0x4000), (GuestAddress(0x4000), 0x4000)])
    let state = RingLayoutBuilder.makeState(layout: .split, size: 4, base: GuestAddress(0x1000)).state
    let forge = RingForge(memory: memory, state: state)
    try forge.setSplitDescriptor(0, address: 0x3ff0, length: 0x20, flags: DescriptorFlags.write)
    try forge.makeSplitAvailable([0])
    var device = try SplitDeviceQueue(state: state, memory: memory)
    var chain = DescriptorChain()
    #expect(try device.popAvailable(into: &chain))
    #expect(chain.writableSegments.map(\.length) == [0x10, 0x10])
    #expect(chain.writableSegments.map(\.address) == [GuestAddress(0x3ff0), GuestAddress(0x4000)])
    let written = try chain.writeWritable(Array(repeating: 0xab, count: 0x40), to: memory)
    #expect(written == 0x20)  // never past the buffer
    #expect(try memory.readBytes(at: GuestAddress(0x4010), count: 1) == [0])
}

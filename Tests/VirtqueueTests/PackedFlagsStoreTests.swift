import Foundation
import Synchronization
import Testing
import Virtqueue
import VirtqueueTestSupport

/// Guest memory that records every store reaching the flags word (bytes 14–15) of a packed
/// descriptor slot, with the flags value that store left there.
final class FlagsWatchingMemory: GuestMemory, @unchecked Sendable {
    // SAFETY (@unchecked): used from one thread in these tests.
    let base: HeapGuestMemory
    let ring: GuestAddress
    let slots: Int
    private(set) var writes: [(slot: Int, flags: UInt16)] = []

    init(base: HeapGuestMemory, ring: GuestAddress, slots: Int) {
        self.base = base
        self.ring = ring
        self.slots = slots
    }

    func reset() { writes = [] }

    private func note(_ address: GuestAddress, _ count: Int) {
        let start = address.rawValue, end = start + UInt64(count)
        for slot in 0..<slots {
            let flags = ring.rawValue + UInt64(slot) * 16 + 14
            if start < flags + 2 && flags < end {
                writes.append((slot, (try? base.loadIndex(at: GuestAddress(flags), ordering: .relaxed)) ?? 0xffff))
            }
        }
    }

    func contiguousBytes(at address: GuestAddress) throws(GuestMemoryError) -> UInt64 { try base.contiguousBytes(at: address) }
    func checkRange(_ address: GuestAddress, length: UInt64, requireContiguous: Bool) throws(GuestMemoryError) {
        try base.checkRange(address, length: length, requireContiguous: requireContiguous)
    }
    func loadRaw<T: BitwiseCopyable>(_ type: T.Type, at address: GuestAddress) throws(GuestMemoryError) -> T { try base.loadRaw(type, at: address) }
    func storeRaw<T: BitwiseCopyable>(_ value: T, at address: GuestAddress) throws(GuestMemoryError) {
        try base.storeRaw(value, at: address)
        note(address, MemoryLayout<T>.size)
    }
    func read(at address: GuestAddress, into destination: UnsafeMutableRawBufferPointer) throws(GuestMemoryError) {
        try base.read(at: address, into: destination)
    }
    func write(at address: GuestAddress, from source: UnsafeRawBufferPointer) throws(GuestMemoryError) {
        try base.write(at: address, from: source)
        note(address, source.count)
    }
    func loadIndex(at address: GuestAddress, ordering: IndexLoadOrdering) throws(GuestMemoryError) -> UInt16 {
        try base.loadIndex(at: address, ordering: ordering)
    }
    func storeIndex(_ value: UInt16, at address: GuestAddress, ordering: IndexStoreOrdering) throws(GuestMemoryError) {
        try base.storeIndex(value, at: address, ordering: ordering)
        note(address, 2)
    }
}

/// The packed-ring rule that a two-thread stress test can only catch by luck, checked store by
/// store: a descriptor's flags word is written once per use, with its final value. A transient
/// value (0 above all, which reads as "used" on a lap whose wrap counter is 0) lets a polling
/// driver take a buffer back while the device still writes it, or a device take a head before
/// its chain is complete (§2.8.6, §2.8.21).
@Suite struct PackedFlagsStoreTests {
    @Test(arguments: [false, true])
    func flagsAreWrittenOnceWithTheirFinalValueOverThreeLaps(_ chained: Bool) throws {
        let size: UInt16 = 8
        let placed = RingLayoutBuilder.makeState(layout: .packed, size: size, base: GuestAddress(0), eventIndex: false)
        let dataBase = (placed.end.rawValue + 0xfff) & ~0xfff
        let heap = try HeapGuestMemory(size: Int(dataBase) + 4096)
        let memory = FlagsWatchingMemory(base: heap, ring: placed.state.descriptorArea, slots: Int(size))
        var driver = try PackedDriverQueue(state: placed.state, memory: memory)
        var device = try PackedDeviceQueue(state: placed.state, memory: memory)
        var chain = DescriptorChain()
        let perBuffer = chained ? 2 : 1
        // Three laps of the ring: wrap counters 1, 0, 1.
        for round in 0..<(3 * Int(size) / perBuffer) {
            let segments = (0..<perBuffer).map { BufferSegment(address: GuestAddress(dataBase + UInt64($0 * 64)), length: 16) }
            memory.reset()
            _ = try driver.addBuffer(readable: segments, writable: [], indirect: false)
            let head = (round * perBuffer) % Int(size)
            #expect(!memory.writes.contains { $0.slot == head }, "round \(round): the head's flags were written before publishing: \(memory.writes)")
            _ = try driver.publishAvailable()
            try expectFinal(memory, "driver round \(round)")

            memory.reset()
            #expect(try device.popAvailable(into: &chain))
            try device.pushUsed(chain.usedElement(writtenLength: 0))
            #expect(!memory.writes.contains { $0.slot == head }, "round \(round): the used head's flags were written before publishing: \(memory.writes)")
            _ = try device.publishUsed()
            try expectFinal(memory, "device round \(round)")
            #expect(try driver.popUsed() != nil)
        }
    }

    /// Every recorded flags store wrote the value the slot holds now.
    func expectFinal(_ memory: FlagsWatchingMemory, _ what: String) throws {
        for write in memory.writes {
            let final = try memory.base.loadIndex(at: GuestAddress(memory.ring.rawValue + UInt64(write.slot) * 16 + 14), ordering: .relaxed)
            #expect(write.flags == final, "\(what): slot \(write.slot) showed flags 0x\(String(write.flags, radix: 16)) before 0x\(String(final, radix: 16))")
        }
        #expect(Set(memory.writes.map(\.slot)).count == memory.writes.count, "\(what): a flags word written twice: \(memory.writes)")
    }
}

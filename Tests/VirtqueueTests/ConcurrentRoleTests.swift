import Foundation
import Synchronization
import Testing
import Virtqueue
import VirtqueueTestSupport

/// Driver and device on two threads over shared memory, as in a VM: the ordering
/// rules of §2.7 (split) and §2.8 (packed) are what keeps them in step. A store that
/// briefly shows the other side a wrong flag or index freezes or corrupts the queue;
/// on one thread such a transient is invisible.
@Suite struct ConcurrentRoleTests {
    @Test(arguments: [QueueLayout.split, .packed])
    func driverAndDeviceOnTwoThreadsNeverStall(_ layout: QueueLayout) throws {
        let size: UInt16 = 64
        let total = 5_000
        let placed = RingLayoutBuilder.makeState(layout: layout, size: size, base: GuestAddress(0), eventIndex: false)
        let dataBase = (placed.end.rawValue + 0xfff) & ~0xfff
        let slot = 64
        let memory = try HeapGuestMemory(size: Int(dataBase) + Int(size) * slot)
        let state = placed.state
        let deviceDone = Atomic<Int>(0)
        let failure = Mutex<String?>(nil)

        let device = Thread {
            do {
                var queue = try DeviceQueue(state: state, memory: memory)
                var chain = DescriptorChain()
                var completed = 0
                let deadline = Date().addingTimeInterval(20)
                while completed < total {
                    var popped = 0
                    while popped < 32, try queue.popAvailable(into: &chain) {
                        let bytes = try chain.readableBytes(from: memory)
                        guard bytes.count == 8 else { throw VirtqueueError.queueFull }
                        try queue.pushUsed(chain.usedElement(writtenLength: 0))
                        popped += 1
                    }
                    if popped > 0 {
                        _ = try queue.publishUsed()
                        completed += popped
                        deviceDone.store(completed, ordering: .releasing)
                    } else if Date() > deadline {
                        failure.withLock { $0 = "device stalled after \(completed) buffers" }
                        return
                    }
                }
            } catch {
                failure.withLock { $0 = "device: \(error)" }
            }
        }
        device.start()

        var driver: any VirtqueueDriver<HeapGuestMemory> = switch layout {
        case .split: try SplitDriverQueue(state: state, memory: memory)
        case .packed: try PackedDriverQueue(state: state, memory: memory)
        }
        var sent = 0
        var returned = 0
        var freeSlots = Array(0..<Int(size))
        var slotOf: [UInt16: Int] = [:]
        let deadline = Date().addingTimeInterval(20)
        while returned < total {
            while let used = try driver.popUsed() {
                if let index = slotOf.removeValue(forKey: used.id) { freeSlots.append(index) }
                returned += 1
            }
            var added = 0
            while added < 16, sent < total, let index = freeSlots.popLast() {
                let address = GuestAddress(dataBase + UInt64(index * slot))
                try memory.writeBytes(withUnsafeBytes(of: UInt64(sent).littleEndian, Array.init), at: address)
                let id = try driver.addBuffer(readable: [BufferSegment(address: address, length: 8)], writable: [], indirect: false)
                slotOf[id] = index
                sent += 1
                added += 1
            }
            if added > 0 { _ = try driver.publishAvailable() }
            if failure.withLock({ $0 }) != nil || Date() > deadline { break }
        }
        while device.isExecuting || deviceDone.load(ordering: .acquiring) < returned && failure.withLock({ $0 }) == nil {
            if Date() > deadline { break }
            Thread.sleep(forTimeInterval: 0.001)
        }
        #expect(failure.withLock { $0 } == nil)
        #expect(returned == total, "\(layout): \(returned) of \(total) buffers came back")
    }
}

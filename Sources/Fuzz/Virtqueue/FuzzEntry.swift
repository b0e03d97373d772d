import Virtqueue
import VirtqueueTestSupport

/// libFuzzer entry point: bytes = 16-byte header (queue state) + guest memory.
/// Drives the device role (pop, push, publish, notifications, state
/// export/re-import) and must never crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 16 else { return 0 }
    let bytes = UnsafeBufferPointer(start: data, count: size)
    fuzzOne(Array(bytes))
    return 0
}

func fuzzOne(_ input: [UInt8]) {
    let header = input.prefix(16).map { UInt16($0) }
    let body = Array(input.dropFirst(16))
    let memorySize = max(body.count, 64)
    // Optionally split memory in two adjacent (or gapped) regions.
    let split = Int(header[0] & 0x3) == 1 ? memorySize / 2 : 0
    let gap: UInt64 = header[0] & 0x4 != 0 ? 0x1000 : 0
    let memory: HeapGuestMemory
    do {
        if split > 0 {
            memory = try HeapGuestMemory(regions: [
                (GuestAddress(0), split), (GuestAddress(UInt64(split) + gap), memorySize - split),
            ])
            try memory.writeBytes(body.prefix(split), at: GuestAddress(0))
            try memory.writeBytes(body.dropFirst(split), at: GuestAddress(UInt64(split) + gap))
        } else {
            memory = try HeapGuestMemory(size: memorySize)
            try memory.writeBytes(body, at: GuestAddress(0))
        }
    } catch { return }
    let layout: QueueLayout = header[1] & 1 == 0 ? .split : .packed
    let sizeChoice = header[2] & 0x7
    let size: UInt16 = layout == .split ? 1 << sizeChoice : sizeChoice + 1 + (header[3] & 3)
    let state = QueueState(
        layout: layout, size: size,
        descriptorArea: GuestAddress(UInt64(header[4]) * 16),
        driverArea: GuestAddress(UInt64(header[5]) * 4 + 0x400),
        deviceArea: GuestAddress(UInt64(header[6]) * 4 + 0x800),
        nextAvailIndex: header[7] | header[8] << 8, nextUsedIndex: header[9] | header[10] << 8,
        availWrapCounter: header[1] & 2 != 0, usedWrapCounter: header[1] & 4 != 0,
        eventIndex: header[1] & 8 != 0, indirectDescriptors: header[1] & 16 != 0,
        inOrder: header[1] & 32 != 0, ready: true)
    _ = VringBase.decode(VringBase(state).encoded(for: layout), layout: layout)
    var queue: DeviceQueue<HeapGuestMemory>
    do { queue = try DeviceQueue(state: state, memory: memory) } catch { return }
    queue.collapsesInOrderBatches = header[1] & 64 != 0
    var chain = DescriptorChain()
    let rounds = Int(header[11] & 7) + 1
    let scratch = [UInt8](repeating: 0x5a, count: 64)
    for round in 0..<rounds {
        var popped = 0
        while popped < 40 {
            do {
                guard try queue.popAvailable(into: &chain) else { break }
            } catch { break }
            popped += 1
            // Touch the data like a datapath would: bounded by the chain.
            _ = try? chain.readableBytes(from: memory)
            let written = (try? chain.writeWritable(scratch, to: memory)) ?? 0
            _ = try? queue.pushUsed(chain.usedElement(writtenLength: written))
        }
        _ = try? queue.pushUsed(UsedElement(id: header[12], length: 1, descriptorCount: header[13]))
        _ = try? queue.publishUsed()
        if round & 1 == 0 {
            _ = try? queue.enableNotifications()
        } else {
            _ = try? queue.disableNotifications()
        }
        // Hand-over: rebuild from exported state.
        if header[14] & (1 << UInt16(round)) != 0, queue.inFlightCount == 0, queue.brokenError == nil {
            if let rebuilt = try? DeviceQueue(state: queue.state, memory: memory) { queue = rebuilt }
        }
    }
}

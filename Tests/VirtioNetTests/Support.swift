import VirtioModel
import VirtioNet
import Virtqueue
import VirtqueueTestSupport
import VirtioNetTestSupport

typealias Net = VirtioFeatures.Net

/// An Ethernet frame of `length` bytes whose content depends on `sequence`.
func testFrame(_ sequence: Int, length: Int) -> [UInt8] {
    let destination: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
    let source: [UInt8] = [0x52, 0x54, 0x00, 0xab, 0xcd, UInt8(truncatingIfNeeded: sequence)]
    var frame = destination + source + [0x88, 0xb5]
    frame += withUnsafeBytes(of: UInt32(sequence).littleEndian, Array.init)
    while frame.count < length { frame.append(UInt8(truncatingIfNeeded: frame.count &* 7 &+ sequence)) }
    return Array(frame.prefix(length))
}

func sequenceNumber(of frame: [UInt8]) -> Int? {
    guard frame.count >= 18 else { return nil }
    return Int(UInt32(frame[14]) | UInt32(frame[15]) << 8 | UInt32(frame[16]) << 16 | UInt32(frame[17]) << 24)
}

/// A guest plus the device side of its first queue pair (and control queue).
struct NetRig {
    var guest: VirtioNetGuest
    var tx: VirtioNetTransmitQueue<HeapGuestMemory>
    var rx: VirtioNetReceiveQueue<HeapGuestMemory>
    let backend: LoopbackBackend

    init(layout: QueueLayout, features: VirtioFeatures, size: UInt16 = 64, eventIndex: Bool = false, loopsBack: Bool = true) throws {
        guest = try VirtioNetGuest(layout: layout, size: size, features: features, eventIndex: eventIndex)
        tx = try VirtioNetTransmitQueue(state: guest.queueStates[1], memory: guest.memory, features: features)
        rx = try VirtioNetReceiveQueue(state: guest.queueStates[0], memory: guest.memory, features: features)
        backend = LoopbackBackend(loopsBack: loopsBack)
    }
}

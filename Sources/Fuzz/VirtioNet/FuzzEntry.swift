import VirtioModel
import VirtioNet
import Virtqueue
import VirtqueueTestSupport

/// libFuzzer entry point for the software virtio-net device.
///
/// Input: a 20-byte header, then guest memory (at guest address 0).
///   byte 0   bit0 packed, bit1 EVENT_IDX, bit2 MRG_RXBUF, bit3 CSUM+HOST_TSO*, bit4 control features,
///            bits 5-7 rounds - 1
///   byte 1   queue size (split: 1 << (b & 7); packed: (b & 15) + 1)
///   2..19    receiveq, transmitq, controlq: descriptor, driver, device area (le16 each)
/// Each round transmits what the (fuzzed) transmit ring holds through a
/// loopback backend, delivers it (and a frame taken from the input) into the
/// receive ring, and answers the control ring; header and command parsers
/// also see raw slices of the input. Nothing may crash, write outside guest
/// memory, or leave a chain in flight.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 20 else { return 0 }
    fuzzOne(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

func fuzzOne(_ input: [UInt8]) {
    let flags = input[0]
    let body = Array(input.dropFirst(20))
    func le16(_ offset: Int) -> UInt64 { UInt64(input[offset]) | UInt64(input[offset + 1]) << 8 }

    // Parsers on raw bytes.
    _ = try? VirtioNetHeader(parsing: body).validateTransmit(frameLength: body.count - 12, features: VirtioFeatures(rawValue: UInt64(flags) << 8 | 0x3f01))
    if let command = try? VirtioNetControlCommand(parsing: Array(body.prefix(64))) {
        var state = VirtioNetControlState()
        _ = try? state.apply(command, features: VirtioFeatures(rawValue: ~0), maximumQueuePairs: UInt16(input[1]))
        _ = state.replayCommands(features: VirtioFeatures(rawValue: ~0))
    }

    let memory: HeapGuestMemory
    do {
        memory = try HeapGuestMemory(size: max(body.count, 64))
        try memory.writeBytes(body, at: GuestAddress(0))
    } catch { return }
    let layout: QueueLayout = flags & 1 == 0 ? .split : .packed
    let queueSize: UInt16 = layout == .split ? 1 << UInt16(input[1] & 7) : UInt16(input[1] & 15) + 1
    var features: VirtioFeatures = [.version1]
    if flags & 2 != 0 { features.insert(.ringEventIndex) }
    if flags & 4 != 0 { features.insert(VirtioFeatures.Net.mergeableRxBuffers) }
    if flags & 8 != 0 { features.formUnion([VirtioFeatures.Net.checksum, VirtioFeatures.Net.hostTSO4, VirtioFeatures.Net.hostTSO6, VirtioFeatures.Net.hostUFO]) }
    if flags & 16 != 0 {
        features.formUnion([
            VirtioFeatures.Net.controlVirtqueue, VirtioFeatures.Net.controlRx, VirtioFeatures.Net.controlRxExtra,
            VirtioFeatures.Net.controlVLAN, VirtioFeatures.Net.controlMACAddress, VirtioFeatures.Net.multiqueue,
            VirtioFeatures.Net.guestAnnounce, VirtioFeatures.Net.controlGuestOffloads, VirtioFeatures.Net.guestChecksum,
        ])
    }
    func state(_ queue: Int) -> QueueState {
        let base = 2 + queue * 6
        return QueueState(
            layout: layout, size: queueSize, descriptorArea: GuestAddress(le16(base)),
            driverArea: GuestAddress(le16(base + 2)), deviceArea: GuestAddress(le16(base + 4)),
            eventIndex: flags & 2 != 0)
    }
    let backend = LoopbackBackend(loopsBack: true, recordsSent: false)
    var receive = try? VirtioNetReceiveQueue(state: state(0), memory: memory, features: features)
    var transmit = try? VirtioNetTransmitQueue(state: state(1), memory: memory, features: features)
    var control = try? VirtioNetControlQueue(state: state(2), memory: memory, features: features, maximumQueuePairs: 4)
    // A frame from the input for the receive path, with a header from it too.
    let injected = Array(body.suffix(min(body.count, 200)))
    backend.inject(.init(header: (try? VirtioNetHeader(parsing: body)) ?? VirtioNetHeader(), bytes: injected))

    let rounds = Int(flags >> 5) + 1
    for round in 0..<rounds {
        if transmit != nil {
            _ = try? transmit!.process(backend: backend, budget: 16)
            precondition(transmit!.queue.inFlightCount == 0 || transmit!.brokenError != nil, "transmit chain left in flight")
        }
        if receive != nil {
            _ = try? receive!.process(backend: backend, filter: control?.state, budget: 16)
            precondition(receive!.queue.inFlightCount == 0 || receive!.brokenError != nil, "receive chain left in flight")
            if round & 1 == 1 { receive!.dropPendingFrame() }
        }
        if control != nil {
            _ = try? control!.process(budget: 16)
        }
        // Hand-over: rebuild from exported states.
        if round == 1 {
            if let current = transmit, current.brokenError == nil {
                transmit = try? VirtioNetTransmitQueue(state: current.state, memory: memory, features: features)
            }
            if let current = receive, current.brokenError == nil, !current.hasPendingFrame {
                receive = try? VirtioNetReceiveQueue(state: current.state, memory: memory, features: features)
            }
        }
    }
}

import Foundation
import Testing
import VirtioModel
import VirtioNet
import Virtqueue
import VirtqueueTestSupport
import VirtioNetTestSupport

/// Builds the seed corpus of `fuzz-virtio-net` (Tests/Fuzz/corpus/virtio-net)
/// from a real guest's memory, in the fuzzer's input format (see
/// Sources/Fuzz/VirtioNet/FuzzEntry.swift). Runs always (checks the seeds
/// are well-formed); writes files only when VDPAD_WRITE_FUZZ_SEEDS names a directory.
@Suite("fuzz-virtio-net seeds")
struct FuzzSeedTests {
    static func seed(layout: QueueLayout, mergeable: Bool, offloads: Bool) throws -> [UInt8] {
        var features: VirtioFeatures = [.version1, .ringEventIndex, Net.controlVirtqueue, Net.controlRx, Net.controlVLAN, Net.multiqueue]
        if mergeable { features.insert(Net.mergeableRxBuffers) }
        if offloads { features.formUnion([Net.checksum, Net.hostTSO4]) }
        var guest = try VirtioNetGuest(
            layout: layout, size: 8, features: features, control: true, eventIndex: true, slotSize: 128, ringBase: GuestAddress(0))
        try guest.postReceiveBuffers(count: 3, size: mergeable ? 40 : 100, segments: 2)
        try guest.transmit(Array(repeating: 0xab, count: 14) + [0x08, 0x00] + Array(0..<40),
                           header: offloads ? VirtioNetHeader(flags: .needsChecksum, checksumStart: 14, checksumOffset: 6) : VirtioNetHeader(),
                           segments: 2)
        try guest.sendControl(VirtioNetControlCommand.vlanAdd(42).bytes)
        try guest.sendControl(VirtioNetControlCommand.queuePairsSet(2).bytes)
        for queue in 0..<3 { _ = try guest.publish(queue) }
        var flags: UInt8 = 2 | 16 | 0x40
        if layout == .packed { flags |= 1 }
        if mergeable { flags |= 4 }
        if offloads { flags |= 8 }
        var header: [UInt8] = [flags, layout == .split ? 3 : 7]
        for state in guest.queueStates {
            for address in [state.descriptorArea, state.driverArea, state.deviceArea] {
                header += [UInt8(address.rawValue & 0xff), UInt8(address.rawValue >> 8)]
            }
        }
        let size = guest.memory.regions.allRegions[0].size
        return header + (try guest.memory.readBytes(at: GuestAddress(0), count: Int(size)))
    }

    @Test func seedsFitTheFuzzerLimits() throws {
        let directory = ProcessInfo.processInfo.environment["VDPAD_WRITE_FUZZ_SEEDS"]
        for layout in QueueLayout.allCases {
            for (mergeable, offloads) in [(false, false), (true, false), (true, true)] {
                let bytes = try Self.seed(layout: layout, mergeable: mergeable, offloads: offloads)
                #expect(bytes.count <= 8192, "run-fuzzers.sh uses -max_len=8192")
                if let directory {
                    let name = "\(layout)\(mergeable ? "-mrg" : "")\(offloads ? "-csum" : "").bin"
                    try Data(bytes).write(to: URL(fileURLWithPath: directory).appendingPathComponent(name))
                }
            }
        }
    }
}

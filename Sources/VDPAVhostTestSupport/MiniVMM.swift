import VDPASystem
import VDPAVhost
import VirtioModel
import VirtioNet
import VirtioNetTestSupport
import Virtqueue
import VirtqueueTestSupport

/// A minimal VMM for a vhost-vdpa net device, for the kernel lab: guest memory in a
/// memfd mapped into the device through its IOTLB (IOVA = guest physical address),
/// split rings built with the virtqueue engine's driver role, kick and call eventfds,
/// and the virtio initialisation sequence (§3.1.1: ACKNOWLEDGE, DRIVER, features,
/// FEATURES_OK, queues, DRIVER_OK). Queue 0 is receiveq, 1 transmitq.
public final class MiniVMM {
    public let device: VhostVDPADevice
    public private(set) var guest: VirtioNetGuest
    public let features: VirtioFeatures
    public let queueSize: UInt16
    private let memory: SharedMemory
    private let kicks: [EventFD]
    private let calls: [EventFD]

    /// Features the mini VMM accepts when the device offers them: enough for frames,
    /// nothing that needs a control queue.
    public static let wantedFeatures: VirtioFeatures = [.version1, .accessPlatform, VirtioFeatures.Net.mac]

    /// Opens `path`, takes ownership and brings the device to DRIVER_OK with two queues,
    /// both starting at ring position 0.
    public init(path: String, queueSize: UInt16 = 64) throws {
        device = try VhostVDPADevice(path: path)
        self.queueSize = queueSize
        try device.setOwner()
        features = try device.features().intersection(Self.wantedFeatures)
        try device.setBackendFeatures(try device.backendFeatures().intersection([.iotlbMessageV2, .iotlbBatch]))

        var shared: SharedMemory?
        guest = try VirtioNetGuest(layout: .split, queuePairs: 1, size: queueSize, features: features, slotSize: 2048) { size in
            let length = (size + 0xfff) & ~0xfff
            let mapping = try SharedMemory(name: "vdpad-mini-vmm", length: length)
            shared = mapping
            return try HeapGuestMemory(borrowing: mapping.address, size: length, owner: mapping)
        }
        guard let shared else { throw VhostError(step: "guest memory", device: path, errno: 0, reason: "not allocated") }
        memory = shared
        kicks = try (0..<2).map { _ in try EventFD() }
        calls = try (0..<2).map { _ in try EventFD() }

        try device.setStatus([])
        try device.setStatus([.acknowledge])
        try device.setStatus([.acknowledge, .driver])
        try device.setFeatures(features)
        try device.setStatus([.acknowledge, .driver, .featuresOK])
        guard try device.status().contains(.featuresOK) else {
            throw VhostError(step: "FEATURES_OK", device: path, errno: 0, reason: "the device did not accept \(features)")
        }
        try device.send([
            .batchBegin(),
            .update(iova: IOVA(0), size: UInt64(memory.length), userAddress: memory.userAddress, permission: .readWrite),
            .batchEnd(),
        ])
        for queue in 0..<2 {
            let state = guest.queueStates[queue]
            let index = QueueIndex(UInt32(queue))
            try device.setQueueSize(index, queueSize)
            try device.setQueueAddresses(index, VringAddresses(
                descriptorTable: IOVA(state.descriptorArea.rawValue), driverArea: IOVA(state.driverArea.rawValue),
                deviceArea: IOVA(state.deviceArea.rawValue)))
            try device.setQueueBase(index, 0)
            try device.setKick(index, kicks[queue].fileDescriptor)
            try device.setCall(index, calls[queue].fileDescriptor)
            try device.setQueueEnabled(index, true)
        }
        try device.setStatus([.acknowledge, .driver, .featuresOK, .driverOK])
    }

    /// Posts `count` receive buffers and kicks receiveq.
    public func postReceiveBuffers(count: Int) throws {
        try guest.postReceiveBuffers(count: count, size: 2048 - 64)
        if try guest.publish(VirtioNetGuest.receiveQueue(0)) { try kicks[0].signal() }
    }

    /// Queues `frames` on transmitq and kicks it.
    public func transmit(_ frames: [[UInt8]]) throws {
        for frame in frames { try guest.transmit(frame) }
        try guest.publish(VirtioNetGuest.transmitQueue(0))
        try kicks[1].signal()
    }

    /// Frames received until `count` arrived or `timeoutMilliseconds` passed without any.
    public func receive(count: Int, timeoutMilliseconds: Int32 = 5000) throws -> [VirtioNetGuest.ReceivedPacket] {
        var packets: [VirtioNetGuest.ReceivedPacket] = []
        while packets.count < count {
            let batch = try guest.receivePackets()
            packets += batch
            if batch.isEmpty {
                guard try calls[0].wait(timeoutMilliseconds: timeoutMilliseconds) else { break }
                try calls[0].drain()
            }
        }
        return packets
    }

    /// Transmit buffers the device has completed.
    public func completedTransmissions() throws -> Int { try guest.collectTransmitted().count }

    /// Resets the device and gives it up (the kernel waits for this before deleting it).
    public func close() {
        try? device.setStatus([])
        device.close()
    }
}

import VDPASystem
import VDPAVhost
import VhostUser
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
///
/// It drives the device either itself (`init(path:)`: it opens `/dev/vhost-vdpa-N`) or as a
/// VMM drives a vdpad port (`init(vhostUserSocket:)`: vhost-user front-end; vdpad holds the
/// device and maps the memfd the mini VMM sends).
public final class MiniVMM {
    /// The vhost-vdpa device when the mini VMM drives it itself.
    public var device: VhostVDPADevice! { transport.device }
    public private(set) var guest: VirtioNetGuest
    public let features: VirtioFeatures
    public let queueSize: UInt16
    private let memory: SharedMemory
    private let kicks: [EventFD]
    private let calls: [EventFD]
    /// Queues set up on the device: receiveq 0, transmitq 1, then further pairs (and the
    /// control queue after them, when there is one).
    public let activeQueues: Int
    private var transport: Transport

    private enum Transport {
        case vhostVDPA(VhostVDPADevice)
        case vhostUser(VhostUserFrontend, socket: String)
        var device: VhostVDPADevice? { if case .vhostVDPA(let device) = self { device } else { nil } }
    }

    /// Features the mini VMM accepts when the device offers them: enough for frames,
    /// nothing that needs a control queue.
    public static let wantedFeatures: VirtioFeatures = [.version1, .accessPlatform, VirtioFeatures.Net.mac]
    /// What it accepts besides with a control queue.
    public static let controlFeatures: VirtioFeatures = [
        VirtioFeatures.Net.controlVirtqueue, VirtioFeatures.Net.controlRx, VirtioFeatures.Net.controlVLAN,
        VirtioFeatures.Net.controlMACAddress, VirtioFeatures.Net.multiqueue,
    ]

    /// Opens `path`, takes ownership and brings the device to DRIVER_OK with two queues,
    /// both starting at ring position 0.
    public init(path: String, queueSize: UInt16 = 64) throws {
        let device = try VhostVDPADevice(path: path)
        transport = .vhostVDPA(device)
        self.queueSize = queueSize
        activeQueues = 2
        try device.setOwner()
        features = try device.features().intersection(Self.wantedFeatures)
        try device.setBackendFeatures(try device.backendFeatures().intersection([.iotlbMessageV2, .iotlbBatch]))

        (guest, memory) = try Self.makeGuest(queueSize: queueSize, features: features, queuePairs: 1)
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

    /// Guest memory in a memfd (so it can be handed to a vhost-user back-end), rings laid out in it.
    private static func makeGuest(queueSize: UInt16, features: VirtioFeatures, queuePairs: Int) throws -> (VirtioNetGuest, SharedMemory) {
        var shared: SharedMemory?
        let guest = try VirtioNetGuest(layout: .split, queuePairs: queuePairs, size: queueSize, features: features, slotSize: 2048) { size in
            let length = (size + 0xfff) & ~0xfff
            let mapping = try SharedMemory(name: "vdpad-mini-vmm", length: length)
            shared = mapping
            return try HeapGuestMemory(borrowing: mapping.address, size: length, owner: mapping)
        }
        guard let shared else { throw VhostUserError("guest memory not allocated") }
        return (guest, shared)
    }

    /// Connects to a vdpad port and sets the device up through it, as QEMU's vhost-user-net
    /// does: owner, features, protocol features (REPLY_ACK, STATUS), the memory table (the
    /// memfd, guest physical 0), each vring (num, addr in this process's addresses, base 0,
    /// kick, call, enable), then status DRIVER_OK.
    ///
    /// `queues`: how many data virtqueues to set up (1: receiveq only; 2: a pair; more: more
    /// pairs). `control: true` also sets up the control queue after them (§5.1.2: controlq
    /// 2N with N the device's max_virtqueue_pairs under MQ, so `queues` is then 2N), and
    /// accepts CTRL_VQ, CTRL_RX, CTRL_VLAN, CTRL_MAC_ADDR and MQ when offered.
    /// `sealable: false`: the memfd forbids seals, as memory that cannot be sealed against
    /// shrinking (DPDK's, a hugetlbfs file).
    public init(vhostUserSocket: String, queueSize: UInt16 = 64, queues: Int = 2, control: Bool = false, sealable: Bool = true) throws {
        let frontend = try VhostUserFrontend(socketPath: vhostUserSocket)
        transport = .vhostUser(frontend, socket: vhostUserSocket)
        self.queueSize = queueSize
        let pairs = (max(1, queues) + 1) / 2
        activeQueues = max(1, queues) + (control ? 1 : 0)
        // As QEMU's vhost_dev_init: the owner first, then the features.
        try frontend.setOwner()
        let offered = try frontend.getFeatures()
        var wanted = Self.wantedFeatures.subtracting(.accessPlatform)
        if control { wanted.formUnion(Self.controlFeatures) }
        features = VirtioFeatures(rawValue: offered).intersection(wanted)
        var shared: SharedMemory?
        guest = try VirtioNetGuest(layout: .split, queuePairs: pairs, size: queueSize, features: features, control: control, slotSize: 2048) { size in
            let length = (size + 0xfff) & ~0xfff
            let mapping = try SharedMemory(name: "vdpad-mini-vmm", length: length)
            shared = mapping
            return try HeapGuestMemory(borrowing: mapping.address, size: length, owner: mapping)
        }
        guard let shared else { throw VhostUserError("guest memory not allocated") }
        memory = shared
        if !sealable { try memory.forbidSeals() }
        kicks = try (0..<activeQueues).map { _ in try EventFD() }
        calls = try (0..<activeQueues).map { _ in try EventFD() }
        try setUp(frontend, offered: offered, bases: [UInt32](repeating: 0, count: activeQueues))
    }

    private func setUp(_ frontend: VhostUserFrontend, offered: UInt64, bases: [UInt32]) throws {
        let protocolBit: UInt64 = 1 << 30
        try frontend.setFeatures(features.rawValue | (offered & protocolBit))
        if offered & protocolBit != 0 {
            let protocolFeatures = try frontend.getProtocolFeatures().intersection([.replyAck, .status, .multipleQueues, .config])
            try frontend.setProtocolFeatures(protocolFeatures)
        }
        try frontend.setMemoryTable([(VhostUserMemoryRegion(guestPhysicalAddress: 0, size: UInt64(memory.length), userAddress: memory.userAddress, mmapOffset: 0),
                                      memory.fileDescriptor)])
        for queue in 0..<activeQueues {
            let state = guest.queueStates[queue]
            let index = UInt32(queue)
            try frontend.setVringNum(index, UInt32(queueSize))
            try frontend.setVringAddress(VhostUserVringAddress(
                index: index, descriptorTable: memory.userAddress + state.descriptorArea.rawValue,
                usedRing: memory.userAddress + state.deviceArea.rawValue, availableRing: memory.userAddress + state.driverArea.rawValue))
            try frontend.setVringBase(index, bases[queue])
            try frontend.setVringKick(index, kicks[queue].fileDescriptor)
            try frontend.setVringCall(index, calls[queue].fileDescriptor)
            try frontend.setVringEnable(index, true)
        }
        try frontend.setStatus(DeviceStatus([.acknowledge, .driver, .featuresOK, .driverOK]).rawValue)
    }

    /// Connects again (after the back-end restarted) and replays the whole set-up; each
    /// ring's base is where the driver's used index stands (nothing in flight), as QEMU
    /// restores a vhost-user back-end whose GET_VRING_BASE it could not read
    /// (`virtio_queue_restore_last_avail_idx`). `socket`: another path than the first one.
    public func reconnect(socket newSocket: String? = nil) throws {
        guard case .vhostUser(let old, let oldSocket) = transport else { return }
        old.close()
        let socket = newSocket ?? oldSocket
        let frontend = try VhostUserFrontend(socketPath: socket)
        transport = .vhostUser(frontend, socket: socket)
        try frontend.setOwner()
        try setUp(frontend, offered: try frontend.getFeatures(), bases: (0..<activeQueues).map { UInt32(usedIndex(queue: $0)) })
    }

    /// The driver's view of queue `queue` (split ring, §2.7): `avail->idx` it published and
    /// `used->idx` the device wrote, read from guest memory.
    public func availableIndex(queue: Int) -> UInt16 { readLE16(at: guest.queueStates[queue].driverArea.rawValue + 2) }
    public func usedIndex(queue: Int) -> UInt16 { readLE16(at: guest.queueStates[queue].deviceArea.rawValue + 2) }
    /// ``availableIndex(queue:)`` of every active queue (receiveq 0, transmitq 1, …).
    public var driverAvailableIndexes: [UInt16] { (0..<activeQueues).map(availableIndex(queue:)) }
    /// ``usedIndex(queue:)`` of every active queue.
    public var usedIndexes: [UInt16] { (0..<activeQueues).map(usedIndex(queue:)) }

    private func readLE16(at offset: UInt64) -> UInt16 {
        // SAFETY: the ring areas lie inside the mapping (the guest laid them out there).
        UInt16(littleEndian: memory.address.loadUnaligned(fromByteOffset: Int(offset), as: UInt16.self))
    }

    /// Posts `count` receive buffers and kicks receiveq `pair`.
    public func postReceiveBuffers(count: Int, pair: Int = 0) throws {
        try guest.postReceiveBuffers(pair: pair, count: count, size: 2048 - 64)
        if try guest.publish(VirtioNetGuest.receiveQueue(pair)) { try kicks[VirtioNetGuest.receiveQueue(pair)].signal() }
    }

    /// Queues `frames` on transmitq `pair` and kicks it; with `kick: false` they are only
    /// published, as a polling driver or one with notifications suppressed leaves them.
    public func transmit(_ frames: [[UInt8]], pair: Int = 0, kick: Bool = true) throws {
        for frame in frames { try guest.transmit(frame, pair: pair) }
        try guest.publish(VirtioNetGuest.transmitQueue(pair))
        if kick { try kicks[VirtioNetGuest.transmitQueue(pair)].signal() }
    }

    /// Sends one control command (§5.1.6.5) and waits for its ack: VIRTIO_NET_OK (0) or
    /// VIRTIO_NET_ERR (1); nil when none came in `timeoutMilliseconds`.
    public func control(_ command: VirtioNetControlCommand, timeoutMilliseconds: Int32 = 5000) throws -> UInt8? {
        let queue = guest.controlQueue
        try guest.sendControl(command.bytes)
        try guest.publish(queue)
        try kicks[queue].signal()
        let deadline = ContinuousClock.now + .milliseconds(Int(timeoutMilliseconds))
        while ContinuousClock.now < deadline {
            if let ack = try guest.collectControlAcks().first { return ack }
            _ = try calls[queue].wait(timeoutMilliseconds: 50)
            _ = try? calls[queue].drain()
        }
        return nil
    }

    /// How many notifications queue `queue`'s kick eventfd holds (the mini VMM's own and
    /// whoever else signalled it), read and reset: 0 when none. Only meaningful on a port,
    /// where vdpad holds the eventfd and the device polls it.
    public func takeKicks(queue: Int) throws -> UInt64 { try kicks[queue].drain() }

    /// Frames received on receiveq `pair` until `count` arrived or `timeoutMilliseconds`
    /// passed without any.
    public func receive(count: Int, pair: Int = 0, timeoutMilliseconds: Int32 = 5000) throws -> [VirtioNetGuest.ReceivedPacket] {
        var packets: [VirtioNetGuest.ReceivedPacket] = []
        let queue = VirtioNetGuest.receiveQueue(pair)
        while packets.count < count {
            let batch = try guest.receivePackets(pair: pair)
            packets += batch
            if batch.isEmpty {
                guard try calls[queue].wait(timeoutMilliseconds: timeoutMilliseconds) else { break }
                try calls[queue].drain()
            }
        }
        return packets
    }

    /// Truncates the guest memory's memfd to nothing, as a misbehaving VMM could: afterwards
    /// neither this object nor the device may touch the memory (it faults); only kicks and
    /// `close()` are left.
    public func truncateMemory() throws { try memory.truncate(to: 0) }

    /// Gives queue `queue`'s call eventfd to the back-end again (VHOST_USER_SET_VRING_CALL),
    /// as QEMU does when a guest's interrupt set-up changes: the back-end takes it anew.
    public func resendCall(queue: Int) throws {
        guard case .vhostUser(let frontend, _) = transport else { return }
        try frontend.setVringCall(UInt32(queue), calls[queue].fileDescriptor)
    }

    /// Enables or disables queue `queue` (VHOST_USER_SET_VRING_ENABLE), as QEMU does for the
    /// queue pairs its guest turns on or off.
    public func setQueueEnabled(_ queue: Int, _ enabled: Bool) throws {
        guard case .vhostUser(let frontend, _) = transport else { return }
        try frontend.setVringEnable(UInt32(queue), enabled)
    }

    /// Kicks queue `queue` without touching guest memory.
    public func kick(queue: Int) throws { try kicks[queue].signal() }

    /// Transmit buffers the device has completed.
    public func completedTransmissions() throws -> Int { try guest.collectTransmitted().count }

    /// Resets the device and gives it up (the kernel waits for this before deleting it).
    public func close() {
        switch transport {
        case .vhostVDPA(let device):
            try? device.setStatus([])
            device.close()
        case .vhostUser(let frontend, _):
            frontend.close()
        }
    }
}

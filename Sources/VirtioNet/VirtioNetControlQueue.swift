import Virtqueue
import VirtioModel

/// The device side of the virtio-net control queue (§5.1.6.5): each chain is
/// `{class, command, data…}` readable, then at least one writable byte for
/// the ack. Well-formed commands whose feature was negotiated update
/// ``state`` and get VIRTIO_NET_OK; everything else gets VIRTIO_NET_ERR and
/// leaves the state alone.
public struct VirtioNetControlQueue<Memory: GuestMemory> {
    public private(set) var queue: DeviceQueue<Memory>
    public let memory: Memory
    public let features: VirtioFeatures
    /// Config space `max_virtqueue_pairs`.
    public let maximumQueuePairs: UInt16
    public private(set) var state: VirtioNetControlState
    public private(set) var counters = NetQueueCounters()
    /// The last refused command's reason, for diagnostics.
    public private(set) var lastError: VirtioNetControlError?
    private var chain = DescriptorChain()

    public init(
        queue: DeviceQueue<Memory>, memory: Memory, features: VirtioFeatures,
        maximumQueuePairs: UInt16, state: VirtioNetControlState? = nil
    ) {
        self.queue = queue
        self.memory = memory
        self.features = features
        self.maximumQueuePairs = maximumQueuePairs
        self.state = state ?? VirtioNetControlState(features: features)
    }

    public init(
        state queueState: QueueState, memory: Memory, features: VirtioFeatures,
        maximumQueuePairs: UInt16, controlState: VirtioNetControlState? = nil
    ) throws(VirtqueueError) {
        self.init(
            queue: try DeviceQueue(state: queueState, memory: memory), memory: memory, features: features,
            maximumQueuePairs: maximumQueuePairs, state: controlState)
    }

    public var queueState: QueueState { queue.state }
    public var brokenError: VirtqueueError? { queue.brokenError }

    /// Answers up to `budget` commands; returns the commands applied, in order.
    public mutating func process(budget: Int = 64) throws(VirtqueueError) -> (run: NetQueueRun, applied: [VirtioNetControlCommand]) {
        var run = NetQueueRun()
        var applied: [VirtioNetControlCommand] = []
        while true {
            if run.completed >= budget {
                run.hasMoreWork = true
                break
            }
            guard try queue.popAvailable(into: &chain) else {
                if try queue.enableNotifications() { continue }
                break
            }
            var written: UInt32 = 0
            let result = execute()
            switch result {
            case .success(let command):
                applied.append(command)
                counters.packets &+= 1
            case .failure(let error):
                lastError = error
                counters.errors &+= 1
            }
            if chain.writableLength > 0 {
                let ack: VirtioNetAck = (try? result.get()) != nil ? .ok : .error
                written = (try? chain.writeWritable([ack.rawValue], to: memory)) ?? 0
            }
            try queue.pushUsed(chain.usedElement(writtenLength: written))
            run.completed += 1
        }
        if try queue.publishUsed() { run.needsNotification = true }
        return (run, applied)
    }

    private mutating func execute() -> Result<VirtioNetControlCommand, VirtioNetControlError> {
        guard chain.writableLength > 0 else { return .failure(.noAckBuffer) }
        guard chain.readableLength <= UInt64(VirtioNetControlCommand.maximumDataLength + 2) else {
            return .failure(.dataTooLong(Int(clamping: chain.readableLength)))
        }
        do {
            let bytes: [UInt8]
            do { bytes = try chain.readableBytes(from: memory) } catch { return .failure(.truncated) }
            let command = try VirtioNetControlCommand(parsing: bytes)
            try state.apply(command, features: features, maximumQueuePairs: maximumQueuePairs)
            return .success(command)
        } catch {
            return .failure(error)
        }
    }
}

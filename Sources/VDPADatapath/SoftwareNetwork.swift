import VDPASystem
import VirtioModel
import VirtioNet

/// The network side of vdpad's software datapath: one ``NetBackend`` per queue pair, and the
/// receive offloads the negotiated features allow.
public protocol SoftwareNetwork: AnyObject {
    /// What the API lists the backend by (a TAP interface's name).
    var name: String { get }
    /// Where its packets go, as the API shows it (`/dev/net/tun`).
    var path: String { get }
    /// How many queue pairs it can serve (each has its own ``backend(pair:)``).
    var queuePairs: Int { get }
    /// The backend of queue pair `pair` (`0..<queuePairs`).
    func backend(pair: Int) -> any NetBackend
    /// Tells the network side which offloaded packets the guest accepts (its negotiated
    /// receive offloads, narrowed by VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET when given).
    func setOffloads(for features: VirtioFeatures, guestOffloads: UInt64?) throws
    /// Only pairs `0..<count` are served: the network side stops handing packets to the others.
    func setServedPairs(_ count: Int) throws
}

/// A TAP interface as the network side: one queue (`IFF_MULTI_QUEUE` when there are several),
/// each a ``TapBackend``, queue pair N on queue N, as QEMU's `queues=N` tap does.
public final class TapNetwork: SoftwareNetwork {
    public let name: String
    public let path = "/dev/net/tun"
    private let queues: [TapBackend]
    /// Whether each queue is attached (TUNSETQUEUE refuses to attach an attached queue).
    private var attached: [Bool]

    /// Opens `queuePairs` queues of TAP `name`, creating the interface when it does not exist.
    /// An existing interface must have been created with the same queue mode (one queue, or
    /// `multi_queue`): the kernel refuses the other (EINVAL).
    public init(name: String, queuePairs: Int = 1) throws {
        guard queuePairs >= 1 else {
            throw SystemError(errno: ErrnoCode.invalidArgument, operation: "TUNSETIFF with \(queuePairs) queues", path: name)
        }
        let first = try TapDevice(name: name, multiQueue: queuePairs > 1)
        var queues = [TapBackend(tap: first)]
        for _ in 1..<queuePairs {
            queues.append(TapBackend(tap: try TapDevice(name: first.name, multiQueue: true)))
        }
        self.name = first.name
        self.queues = queues
        attached = [Bool](repeating: true, count: queues.count)
    }

    public var queuePairs: Int { queues.count }

    public func backend(pair: Int) -> any NetBackend { queues[pair] }

    public func setOffloads(for features: VirtioFeatures, guestOffloads: UInt64?) throws {
        let offloads = TapBackend.offloads(for: features, guestOffloads: guestOffloads)
        for queue in queues { try queue.tap.setOffloads(offloads) }
    }

    /// Detaches the queues of pairs not served (so the kernel steers no packet to a queue
    /// nobody reads) and attaches the served ones. Queue 0 stays attached.
    public func setServedPairs(_ count: Int) throws {
        guard queues.count > 1 else { return }
        for (index, queue) in queues.enumerated() {
            let wanted = index == 0 || index < count
            guard wanted != attached[index] else { continue }
            try queue.tap.setQueueAttached(wanted)
            attached[index] = wanted
        }
    }
}

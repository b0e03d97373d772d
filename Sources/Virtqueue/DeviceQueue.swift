/// The device role of a virtqueue, independent of layout.
///
/// Typical datapath loop (batching: one index publication and one
/// notification decision per batch):
///
/// ```swift
/// var chain = DescriptorChain()
/// while try queue.popAvailable(into: &chain) {
///     let written = process(chain)
///     try queue.pushUsed(chain.usedElement(writtenLength: written))
/// }
/// if try queue.publishUsed() { interruptDriver() }
/// ```
///
/// Any guest fault marks the queue broken: the error is recorded in
/// ``brokenError`` and rethrown by every later call; the device should set
/// DEVICE_NEEDS_RESET (virtio 1.x "Device Status Field").
public protocol VirtqueueDevice<Memory> {
    associatedtype Memory: GuestMemory

    /// Builds a validated queue from untrusted `state`.
    init(state: QueueState, memory: Memory) throws(VirtqueueError)

    /// The current state, suitable for hand-over to another backend. Chains
    /// popped but not yet pushed as used (``inFlightCount``) are counted as
    /// consumed: complete them before exporting.
    var state: QueueState { get }
    /// The guest fault that broke the queue, if any.
    var brokenError: VirtqueueError? { get }
    /// Chains popped and not yet pushed as used.
    var inFlightCount: Int { get }

    /// Pops the next available chain into `chain` (reusing its storage).
    /// Returns false when the driver has made nothing new available.
    mutating func popAvailable(into chain: inout DescriptorChain) throws(VirtqueueError) -> Bool
    /// Queues a used element; it becomes visible to the driver at ``publishUsed()``.
    mutating func pushUsed(_ element: UsedElement) throws(VirtqueueError)
    /// Publishes all pushed used elements with one release store, then decides
    /// (after a full fence) whether the driver wants a used buffer notification.
    mutating func publishUsed() throws(VirtqueueError) -> Bool
    /// Asks the driver for available buffer notifications. Returns true when
    /// buffers are already available (re-poll before sleeping).
    mutating func enableNotifications() throws(VirtqueueError) -> Bool
    /// Asks the driver not to send available buffer notifications (best effort).
    mutating func disableNotifications() throws(VirtqueueError)

    /// The current read position in the available ring, to come back to with
    /// ``rewindAvailable(to:)``.
    var availablePosition: AvailablePosition { get }
    /// Gives back every chain popped since `position` was taken, as if it had
    /// never been popped: the next ``popAvailable(into:)`` returns the first
    /// of them again. None of those chains may have been pushed as used
    /// (throws ``VirtqueueError/rewindPastUsed`` otherwise and changes nothing).
    /// The counterpart of vhost's `vhost_discard_vq_desc` and QEMU's
    /// `virtqueue_rewind`: a receive path that popped buffers for a frame that
    /// then does not fit returns them untouched.
    mutating func rewindAvailable(to position: AvailablePosition) throws(VirtqueueError)
}

/// A read position in a queue's available ring (device role), see
/// ``VirtqueueDevice/rewindAvailable(to:)``.
public struct AvailablePosition: Hashable, Sendable {
    /// Split: free-running avail index; packed: ring slot.
    public var index: UInt16
    /// Packed: the Driver Ring Wrap Counter at that slot (split: always true).
    public var wrapCounter: Bool
    /// Chains popped by the queue before this position (monotonic).
    public var popCount: UInt64

    public init(index: UInt16, wrapCounter: Bool, popCount: UInt64) {
        self.index = index
        self.wrapCounter = wrapCounter
        self.popCount = popCount
    }
}

extension VirtqueueDevice {
    /// Pops up to `chains.count` chains into the reusable `chains` storage;
    /// returns how many were popped.
    @inlinable
    public mutating func popAvailable(into chains: inout [DescriptorChain], maximum: Int) throws(VirtqueueError) -> Int {
        let limit = min(maximum, chains.count)
        var count = 0
        while count < limit {
            guard try popAvailable(into: &chains[count]) else { break }
            count &+= 1
        }
        return count
    }
}

/// Builds a device queue of the layout `state` names, as an existential; open it
/// once (pass it to a generic function) to get a specialised hot loop.
public func makeDeviceQueue<Memory: GuestMemory>(
    state: QueueState, memory: Memory
) throws(VirtqueueError) -> any VirtqueueDevice<Memory> {
    switch state.layout {
    case .split: return try SplitDeviceQueue(state: state, memory: memory)
    case .packed: return try PackedDeviceQueue(state: state, memory: memory)
    }
}

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

/// The device role of a virtqueue in the layout its state names (split or packed), as one
/// concrete type: the datapath holds it by value and every call is a direct, specialisable
/// call into ``SplitDeviceQueue`` or ``PackedDeviceQueue`` (one predictable branch), not a
/// dynamic dispatch through an existential.
public struct DeviceQueue<Memory: GuestMemory>: VirtqueueDevice {
    // Exactly one of the two is set (by `init`, never changed): the mutating calls go through
    // `split!` / `packed!` so the queue is mutated in place, without a copy.
    @usableFromInline var split: SplitDeviceQueue<Memory>?
    @usableFromInline var packed: PackedDeviceQueue<Memory>?
    /// Which of the two is set. (Testing `split != nil` would copy the queue: a stored flag does not.)
    @usableFromInline let isSplit: Bool

    /// Builds the queue of `state.layout` from untrusted `state`.
    public init(state: QueueState, memory: Memory) throws(VirtqueueError) {
        switch state.layout {
        case .split: split = try SplitDeviceQueue(state: state, memory: memory)
        case .packed: packed = try PackedDeviceQueue(state: state, memory: memory)
        }
        isSplit = state.layout == .split
    }

    @inlinable public var state: QueueState { isSplit ? split!.state : packed!.state }
    @inlinable public var brokenError: VirtqueueError? { isSplit ? split!.brokenError : packed!.brokenError }
    @inlinable public var inFlightCount: Int { isSplit ? split!.inFlightCount : packed!.inFlightCount }
    /// ``SplitDeviceQueue/collapsesInOrderBatches`` of the queue, whichever its layout.
    public var collapsesInOrderBatches: Bool {
        get { isSplit ? split!.collapsesInOrderBatches : packed!.collapsesInOrderBatches }
        set {
            if isSplit { split!.collapsesInOrderBatches = newValue } else { packed!.collapsesInOrderBatches = newValue }
        }
    }
    @inlinable public var availablePosition: AvailablePosition { isSplit ? split!.availablePosition : packed!.availablePosition }

    @inlinable
    public mutating func popAvailable(into chain: inout DescriptorChain) throws(VirtqueueError) -> Bool {
        if isSplit { return try split!.popAvailable(into: &chain) }
        return try packed!.popAvailable(into: &chain)
    }

    @inlinable
    public mutating func pushUsed(_ element: UsedElement) throws(VirtqueueError) {
        if isSplit { return try split!.pushUsed(element) }
        try packed!.pushUsed(element)
    }

    @inlinable
    public mutating func publishUsed() throws(VirtqueueError) -> Bool {
        if isSplit { return try split!.publishUsed() }
        return try packed!.publishUsed()
    }

    @inlinable
    public mutating func enableNotifications() throws(VirtqueueError) -> Bool {
        if isSplit { return try split!.enableNotifications() }
        return try packed!.enableNotifications()
    }

    @inlinable
    public mutating func disableNotifications() throws(VirtqueueError) {
        if isSplit { return try split!.disableNotifications() }
        try packed!.disableNotifications()
    }

    @inlinable
    public mutating func rewindAvailable(to position: AvailablePosition) throws(VirtqueueError) {
        if isSplit { return try split!.rewindAvailable(to: position) }
        try packed!.rewindAvailable(to: position)
    }
}

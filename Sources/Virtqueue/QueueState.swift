/// Ring layout (§2.7 "Split Virtqueues", §2.8 "Packed Virtqueues").
public enum QueueLayout: String, Hashable, Sendable, Codable, CaseIterable {
    case split
    case packed
}

/// The complete, serialisable state of one virtqueue, as plain **untrusted**
/// data. Build a validated queue from it with `init(state:memory:)` on
/// ``SplitDeviceQueue``/``PackedDeviceQueue`` (or ``DeviceQueue``);
/// read it back at any time with the queue's `state` property. Moving a
/// queue between backends (software fallback ⇄ vhost-vdpa) is: stop the old
/// one after completing its in-flight chains, export `state`, build the new
/// one from it. No descriptor is lost or repeated.
public struct QueueState: Codable, Sendable, Hashable {
    public var layout: QueueLayout
    /// Queue Size (number of descriptors).
    public var size: UInt16
    /// Descriptor Table (split) / Descriptor Ring (packed) address.
    public var descriptorArea: GuestAddress
    /// Available Ring (split) / Driver Event Suppression (packed) address.
    public var driverArea: GuestAddress
    /// Used Ring (split) / Device Event Suppression (packed) address.
    public var deviceArea: GuestAddress
    /// Device: next avail index to read. Split: free-running 16-bit index;
    /// packed: ring position `0..<size`.
    public var nextAvailIndex: UInt16
    /// Device: next used index to write. Split: free-running 16-bit index
    /// (equals `used->idx` once published); packed: ring position `0..<size`.
    public var nextUsedIndex: UInt16
    /// Packed only: the device's Driver Ring Wrap Counter (starts true).
    public var availWrapCounter: Bool
    /// Packed only: the device's Used Ring Wrap Counter (starts true).
    public var usedWrapCounter: Bool
    /// VIRTIO_F_EVENT_IDX / VIRTIO_RING_F_EVENT_IDX negotiated.
    public var eventIndex: Bool
    /// VIRTIO_F_INDIRECT_DESC / VIRTIO_RING_F_INDIRECT_DESC negotiated.
    public var indirectDescriptors: Bool
    /// VIRTIO_F_IN_ORDER negotiated.
    public var inOrder: Bool
    /// queue_enable / vhost "ready".
    public var ready: Bool

    public init(
        layout: QueueLayout, size: UInt16,
        descriptorArea: GuestAddress, driverArea: GuestAddress, deviceArea: GuestAddress,
        nextAvailIndex: UInt16 = 0, nextUsedIndex: UInt16 = 0,
        availWrapCounter: Bool = true, usedWrapCounter: Bool = true,
        eventIndex: Bool = false, indirectDescriptors: Bool = false, inOrder: Bool = false,
        ready: Bool = true
    ) {
        self.layout = layout
        self.size = size
        self.descriptorArea = descriptorArea
        self.driverArea = driverArea
        self.deviceArea = deviceArea
        self.nextAvailIndex = nextAvailIndex
        self.nextUsedIndex = nextUsedIndex
        self.availWrapCounter = availWrapCounter
        self.usedWrapCounter = usedWrapCounter
        self.eventIndex = eventIndex
        self.indirectDescriptors = indirectDescriptors
        self.inOrder = inOrder
        self.ready = ready
    }

    /// The largest queue size either layout allows (§2.7, §2.8: 32768).
    public static let maximumSize: UInt16 = 32768

    /// Bytes of the Descriptor Table / Ring: 16 × size.
    public var descriptorAreaLength: UInt64 { 16 &* UInt64(size) }

    /// Bytes of the driver area. Split: flags, idx, ring[size], used_event
    /// (6 + 2 × size). Packed: 4 (struct pvirtq_event_suppress).
    public var driverAreaLength: UInt64 {
        layout == .split ? 6 &+ 2 &* UInt64(size) : 4
    }

    /// Bytes of the device area. Split: flags, idx, ring[size] of 8-byte
    /// elements, avail_event (6 + 8 × size). Packed: 4.
    public var deviceAreaLength: UInt64 {
        layout == .split ? 6 &+ 8 &* UInt64(size) : 4
    }

    /// Required alignments (§2.7 "Virtqueue Alignment" table; §2.8: 16/4/4).
    public static func alignment(of area: RingArea, layout: QueueLayout) -> UInt64 {
        switch (area, layout) {
        case (.descriptor, _): 16
        case (.driver, .split): 2
        case (.device, .split): 4
        case (_, .packed): 4
        }
    }

    /// Validates everything that does not depend on ring contents.
    public func validate(memory: some GuestMemory) throws(VirtqueueError) {
        guard ready else { throw .queueNotReady }
        guard size != 0, size <= Self.maximumSize else { throw .invalidQueueSize(size) }
        if layout == .split, size & (size &- 1) != 0 { throw .invalidQueueSize(size) }
        if layout == .packed {
            guard nextAvailIndex < size else { throw .invalidSavedIndex(nextAvailIndex) }
            guard nextUsedIndex < size else { throw .invalidSavedIndex(nextUsedIndex) }
        } else {
            // The device can never have consumed more than `size` buffers that
            // are not yet used.
            guard nextAvailIndex &- nextUsedIndex <= size else { throw .invalidSavedIndex(nextAvailIndex) }
        }
        for (area, address, length) in [
            (RingArea.descriptor, descriptorArea, descriptorAreaLength),
            (.driver, driverArea, driverAreaLength),
            (.device, deviceArea, deviceAreaLength),
        ] {
            let alignment = Self.alignment(of: area, layout: layout)
            guard address.isAligned(to: alignment) else {
                throw .misalignedArea(area: area, address: address, requiredAlignment: alignment)
            }
            do {
                try memory.checkRange(address, length: length, requireContiguous: true)
            } catch {
                throw .areaOutOfMemory(area: area, address: address, length: length)
            }
        }
    }
}

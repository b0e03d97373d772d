/// Everything that can go wrong on a virtqueue. Guest-controlled input never
/// traps: it produces one of these. Errors caused by the guest (the other
/// side of the ring) mark the queue broken (``isGuestFault``); the device
/// should then set DEVICE_NEEDS_RESET (virtio 1.x "Device Status Field").
public enum VirtqueueError: Error, Hashable, Sendable {
    // MARK: Queue configuration (QueueState validation)
    /// Size zero, above 32768, or (split layout) not a power of two
    /// (§2.7 "Split Virtqueues", §2.8 "Packed Virtqueues": Queue Size).
    case invalidQueueSize(UInt16)
    /// A ring area is not aligned as §2.7 / §2.8 require ("Virtqueue Alignment").
    case misalignedArea(area: RingArea, address: GuestAddress, requiredAlignment: UInt64)
    /// A ring area is not inside (one region of) guest memory.
    case areaOutOfMemory(area: RingArea, address: GuestAddress, length: UInt64)
    /// A saved index or wrap counter is impossible for this size/layout.
    case invalidSavedIndex(UInt16)
    /// The queue is not enabled/ready.
    case queueNotReady

    // MARK: Descriptor chains (device role)
    /// A head or `next` index is not below the queue size / indirect table size.
    case descriptorIndexOutOfRange(index: UInt16, limit: UInt32)
    /// Following NEXT revisits a descriptor (more hops than distinct entries).
    case descriptorLoop(head: UInt16)
    /// A chain (including indirect entries) is longer than the queue size
    /// (§2.7.5.3.1 / §2.8.? "A driver MUST NOT create a descriptor chain longer than the Queue Size").
    case chainTooLong(head: UInt16, limit: UInt32)
    /// VIRTQ_DESC_F_INDIRECT inside an indirect table (§2.7.5.3.1).
    case nestedIndirect(head: UInt16)
    /// VIRTQ_DESC_F_INDIRECT together with VIRTQ_DESC_F_NEXT (§2.7.5.3.1, §2.8.?).
    case indirectWithNext(head: UInt16)
    /// VIRTQ_DESC_F_INDIRECT used but VIRTIO_F_INDIRECT_DESC not negotiated.
    case indirectNotNegotiated(head: UInt16)
    /// Indirect table length is not a multiple of 16 bytes.
    case indirectTableLengthNotMultipleOf16(head: UInt16, length: UInt32)
    /// Indirect table of length zero.
    case zeroLengthIndirectTable(head: UInt16)
    /// A device-readable descriptor follows a device-writable one (§2.7.4.2 / §2.8.?).
    case readableAfterWritable(head: UInt16)
    /// A buffer or indirect table is not backed by guest memory.
    case bufferOutOfMemory(head: UInt16, address: GuestAddress, length: UInt32)
    /// A buffer or indirect table has `address + length` overflowing 64 bits.
    case bufferAddressOverflow(head: UInt16, address: GuestAddress, length: UInt32)
    /// A packed-ring Buffer ID is not below the queue size.
    case bufferIdOutOfRange(id: UInt16, limit: UInt16)
    /// The driver's avail index is more than queue size ahead of the device's (§2.7.6).
    case availIndexTooFarAhead(availIndex: UInt16, lastSeen: UInt16, size: UInt16)

    // MARK: Used ring (driver role, and device-role misuse)
    /// The device reported a used id that the driver has not made available (or already got back).
    case usedIdNotInFlight(id: UInt32)
    /// The used index ran more than queue size ahead of the driver's view.
    case usedIndexTooFarAhead(usedIndex: UInt16, lastSeen: UInt16, size: UInt16)
    /// The device reported more bytes written than the buffer's writable capacity.
    case usedLengthExceedsBuffer(id: UInt16, length: UInt32, capacity: UInt64)
    /// Device role: pushing a used element for which no chain is in flight.
    case usedWithoutAvailable(id: UInt16)
    /// Device role: rewinding over chains already pushed as used (or to a
    /// position this queue never had).
    case rewindPastUsed

    // MARK: Driver-side API misuse (not guest faults)
    /// Not enough free descriptors / ids for this buffer.
    case queueFull
    /// A buffer needs at least one segment.
    case emptyBuffer
    /// Segment list longer than the queue (or indirect) limit.
    case tooManySegments(Int)

    // MARK: Memory
    /// A ring access (index, descriptor, used element) failed its bounds check.
    case memory(GuestMemoryError)

    /// Whether this error is the other side's fault, i.e. marks the queue broken.
    public var isGuestFault: Bool {
        switch self {
        case .queueFull, .emptyBuffer, .tooManySegments, .usedWithoutAvailable, .rewindPastUsed, .queueNotReady:
            return false
        default:
            return true
        }
    }

    /// A payload-free name for the error case, convenient for matching in tests and logs.
    public var kind: Kind {
        switch self {
        case .invalidQueueSize: .invalidQueueSize
        case .misalignedArea: .misalignedArea
        case .areaOutOfMemory: .areaOutOfMemory
        case .invalidSavedIndex: .invalidSavedIndex
        case .queueNotReady: .queueNotReady
        case .descriptorIndexOutOfRange: .descriptorIndexOutOfRange
        case .descriptorLoop: .descriptorLoop
        case .chainTooLong: .chainTooLong
        case .nestedIndirect: .nestedIndirect
        case .indirectWithNext: .indirectWithNext
        case .indirectNotNegotiated: .indirectNotNegotiated
        case .indirectTableLengthNotMultipleOf16: .indirectTableLengthNotMultipleOf16
        case .zeroLengthIndirectTable: .zeroLengthIndirectTable
        case .readableAfterWritable: .readableAfterWritable
        case .bufferOutOfMemory: .bufferOutOfMemory
        case .bufferAddressOverflow: .bufferAddressOverflow
        case .bufferIdOutOfRange: .bufferIdOutOfRange
        case .availIndexTooFarAhead: .availIndexTooFarAhead
        case .usedIdNotInFlight: .usedIdNotInFlight
        case .usedIndexTooFarAhead: .usedIndexTooFarAhead
        case .usedLengthExceedsBuffer: .usedLengthExceedsBuffer
        case .usedWithoutAvailable: .usedWithoutAvailable
        case .rewindPastUsed: .rewindPastUsed
        case .queueFull: .queueFull
        case .emptyBuffer: .emptyBuffer
        case .tooManySegments: .tooManySegments
        case .memory: .memory
        }
    }

    /// Payload-free error names.
    public enum Kind: String, Hashable, Sendable, CaseIterable, Codable {
        case invalidQueueSize, misalignedArea, areaOutOfMemory, invalidSavedIndex, queueNotReady
        case descriptorIndexOutOfRange, descriptorLoop, chainTooLong, nestedIndirect, indirectWithNext
        case indirectNotNegotiated, indirectTableLengthNotMultipleOf16, zeroLengthIndirectTable
        case readableAfterWritable, bufferOutOfMemory, bufferAddressOverflow, bufferIdOutOfRange
        case availIndexTooFarAhead
        case usedIdNotInFlight, usedIndexTooFarAhead, usedLengthExceedsBuffer, usedWithoutAvailable, rewindPastUsed
        case queueFull, emptyBuffer, tooManySegments, memory
    }
}

/// The three areas of a virtqueue (§2.6 "Virtqueues").
public enum RingArea: String, Hashable, Sendable, Codable {
    /// Descriptor Table (split) / Descriptor Ring (packed).
    case descriptor
    /// Available Ring (split) / Driver Event Suppression (packed).
    case driver
    /// Used Ring (split) / Device Event Suppression (packed).
    case device
}

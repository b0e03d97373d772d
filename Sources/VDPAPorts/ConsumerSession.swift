import VDPASystem
import VDPAVhost
import VirtioModel

/// A guest memory region as a port's consumer described it (vhost-user SET_MEM_TABLE),
/// mapped into vdpad so the vhost-vdpa device can pin it: IOVA = guest physical address,
/// `uaddr` = vdpad's mapping.
final class ConsumerMemoryRegion: @unchecked Sendable {
    // SAFETY (@unchecked): immutable after init; the mapping lives as long as this object.
    let guestPhysicalAddress: UInt64
    let size: UInt64
    /// Where the consumer has it mapped (the addresses of its SET_VRING_ADDR).
    let consumerAddress: UInt64
    let mapping: MappedFile
    /// Whether the file is sealed against shrinking (`F_SEAL_SHRINK`): then no part of the
    /// mapping can vanish under a reader. vdpad's own datapath guards memory that is not.
    let sealedAgainstShrinking: Bool

    /// The caller checked that neither `guestPhysicalAddress + size` nor `consumerAddress + size`
    /// overflows (``VhostUserPort``'s SET_MEM_TABLE).
    init(guestPhysicalAddress: UInt64, size: UInt64, consumerAddress: UInt64, mapping: MappedFile, sealedAgainstShrinking: Bool) {
        self.guestPhysicalAddress = guestPhysicalAddress
        self.size = size
        self.consumerAddress = consumerAddress
        self.mapping = mapping
        self.sealedAgainstShrinking = sealedAgainstShrinking
    }

    /// The guest physical address of a consumer address inside this region.
    func guestPhysical(ofConsumerAddress address: UInt64) -> UInt64? {
        guard address >= consumerAddress, address - consumerAddress < size else { return nil }
        return guestPhysicalAddress + (address - consumerAddress)
    }
}

/// One virtqueue as the consumer set it up.
struct ConsumerQueue {
    var size: UInt16 = 0
    /// Ring addresses as guest physical addresses (translated from the consumer's).
    var addresses: VringAddresses?
    /// The base the consumer asked for (SET_VRING_BASE).
    var base: UInt32 = 0
    var kick: OwnedFileDescriptor?
    var call: OwnedFileDescriptor?
    var enabled = false

    /// Whether the consumer gave it a size and addresses: a queue a device can run.
    var isSetUp: Bool { addresses != nil && size > 0 }
}

/// What a port's consumer has set up, as one value: the features it negotiated, its memory
/// and its rings. Every backend starts from it, and the port keeps it across backends.
struct ConsumerSession {
    /// What the consumer negotiated (SET_FEATURES), with the vhost-user protocol bit.
    var features: VirtioFeatures?
    var regions: [ConsumerMemoryRegion] = []
    var queues: [Int: ConsumerQueue] = [:]

    /// The queues the consumer gave addresses to (the ones a backend runs), by index.
    var configuredQueueIndexes: [Int] { queues.filter { $0.value.addresses != nil }.keys.sorted() }

    /// Whether every configured queue has its kick eventfd and is enabled (a consumer without
    /// the STATUS protocol feature starts the device this way).
    var allConfiguredQueuesReady: Bool {
        let configured = queues.values.filter { $0.addresses != nil }
        return !configured.isEmpty && configured.allSatisfy { $0.kick != nil && $0.enabled }
    }
}

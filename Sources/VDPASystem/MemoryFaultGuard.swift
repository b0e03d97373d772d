import CMemoryFaultGuard

/// A range of vdpad's address space mapping a file a peer owns (a VMM's guest memory),
/// guarded against the peer truncating the file: an access past the file's new end raises
/// SIGBUS, which the guard's handler absorbs by mapping a zero-filled private page there
/// (`CMemoryFaultGuard`). The access then completes on memory that is no longer the guest's,
/// the daemon lives, and ``faults`` tells the owner to stop trusting the range.
///
/// The range is registered for as long as this object lives; drop it before the mapping is
/// unmapped.
public final class GuardedMemoryRange: Sendable {
    private let slot: Int32

    /// Registers `length` bytes at `address`; nil when the guard cannot be installed or its
    /// table is full (the caller then refuses memory that could shrink under it).
    public init?(address: UnsafeMutableRawPointer, length: Int) {
        guard vdpad_fault_guard_install() == 0 else { return nil }
        let slot = vdpad_fault_guard_add(address, UInt64(length))
        guard slot >= 0 else { return nil }
        self.slot = slot
    }

    deinit { vdpad_fault_guard_remove(slot) }

    /// Faults the guard absorbed in the range: accesses past the end of a truncated file.
    public var faults: UInt64 { vdpad_fault_guard_faults(slot) }
}

/// The daemon's footprint on a long run: glibc keeps freed memory in per-thread arenas,
/// so a burst (thousands of `dev_add`s, a large `dev_list` to many clients) would stay
/// resident for good. vdpad caps the arenas at start and trims when it falls idle.
public enum AllocatorTuning {
    /// Caps glibc malloc at `arenas` arenas (call before threads start allocating).
    public static func limitArenas(_ arenas: Int32 = 2) { system_limitAllocatorArenas(arenas) }

    /// Returns free heap pages to the kernel (`malloc_trim(0)`); costs a few ms with a large heap.
    public static func returnFreeMemory() { system_trimAllocator() }
}

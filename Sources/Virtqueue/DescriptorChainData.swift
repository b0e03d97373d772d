extension DescriptorChain {
    /// Gathers the device-readable bytes into `destination`; returns the
    /// number of bytes copied (at most `destination.count`). Each segment was
    /// validated at pop time and is re-checked by `memory` on access.
    @inlinable
    public func gatherReadable(
        from memory: some GuestMemory, into destination: UnsafeMutableRawBufferPointer
    ) throws(GuestMemoryError) -> Int {
        var copied = 0
        for segment in readableSegments {
            let room = destination.count &- copied
            if room <= 0 { break }
            let count = min(room, Int(segment.length))
            // SAFETY: `copied + count <= destination.count`, so the rebased
            // slice stays within the caller's buffer.
            let slice = UnsafeMutableRawBufferPointer(rebasing: destination[copied..<(copied &+ count)])
            try memory.read(at: segment.address, into: slice)
            copied &+= count
        }
        return copied
    }

    /// Scatters `source` into the device-writable segments, never past their
    /// total length; returns the number of bytes written (the used length).
    @inlinable
    public func scatterWritable(
        _ source: UnsafeRawBufferPointer, to memory: some GuestMemory
    ) throws(GuestMemoryError) -> UInt32 {
        var written = 0
        for segment in writableSegments {
            let remaining = source.count &- written
            if remaining <= 0 { break }
            let count = min(remaining, Int(segment.length))
            // SAFETY: `written + count <= source.count`.
            let slice = UnsafeRawBufferPointer(rebasing: source[written..<(written &+ count)])
            try memory.write(at: segment.address, from: slice)
            written &+= count
        }
        return UInt32(truncatingIfNeeded: written)
    }

    /// The readable bytes as an array (control paths and tests).
    public func readableBytes(from memory: some GuestMemory) throws(GuestMemoryError) -> [UInt8] {
        let total = Int(clamping: readableLength)
        var bytes = [UInt8](repeating: 0, count: total)
        var failure: GuestMemoryError?
        var copied = 0
        bytes.withUnsafeMutableBytes { buffer in
            do throws(GuestMemoryError) { copied = try gatherReadable(from: memory, into: buffer) } catch { failure = error }
        }
        if let failure { throw failure }
        return Array(bytes.prefix(copied))
    }

    /// Writes `bytes` into the writable segments; returns the used length.
    public func writeWritable(_ bytes: [UInt8], to memory: some GuestMemory) throws(GuestMemoryError) -> UInt32 {
        var failure: GuestMemoryError?
        var written: UInt32 = 0
        bytes.withUnsafeBytes { buffer in
            do throws(GuestMemoryError) { written = try scatterWritable(buffer, to: memory) } catch { failure = error }
        }
        if let failure { throw failure }
        return written
    }
}

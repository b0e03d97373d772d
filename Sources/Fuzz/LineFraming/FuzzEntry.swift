import NIOCore
import NIOEmbedded
import VDPADaemon

/// libFuzzer entry point for the request framing of the API socket: byte 0 picks the line
/// limit (1–64), bytes 1–2 where the stream is cut into reads, the rest is the stream. The
/// lines the daemon's decoder gives, and whether it refuses the stream, must be those of the
/// rule in Documentation/api.md (lines end in "\n" or "\r\n"; at most the limit, not counting
/// the ending; empty lines skipped; an over-long line refused as soon as it is known to be).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLineFraming(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 3 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let limit = Int(input[0] % 64) + 1
    var seed = UInt32(input[1]) << 8 | UInt32(input[2]) | 1
    let stream = Array(input[3...])

    let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineFrameDecoder(maximumLength: limit)))
    var lines: [[UInt8]] = []
    var refused = false
    var offset = 0
    while offset < stream.count && !refused {
        // xorshift: reads of 1 to 16 bytes.
        seed ^= seed << 13; seed ^= seed >> 17; seed ^= seed << 5
        let end = min(stream.count, offset + Int(seed % 16) + 1)
        do {
            try channel.writeInbound(ByteBuffer(bytes: stream[offset..<end]))
        } catch is RequestTooLargeError {
            refused = true
        } catch {
            preconditionFailure("the decoder threw \(error)")
        }
        while let line = try? channel.readInbound(as: ByteBuffer.self) { lines.append(Array(line.readableBytesView)) }
        offset = end
    }
    let expected = rule(stream, limit: limit)
    precondition(lines == expected.lines, "lines \(lines) where the rule gives \(expected.lines) (limit \(limit))")
    precondition(refused == expected.refused, "refused \(refused) where the rule says \(expected.refused) (limit \(limit))")
    return 0
}

/// The framing rule, read straight from the bytes.
func rule(_ stream: [UInt8], limit: Int) -> (lines: [[UInt8]], refused: Bool) {
    var lines: [[UInt8]] = []
    var pending: [UInt8] = []
    for byte in stream {
        if byte == UInt8(ascii: "\n") {
            if pending.last == UInt8(ascii: "\r") { pending.removeLast() }
            if pending.count > limit { return (lines, true) }
            if !pending.isEmpty { lines.append(pending) }
            pending = []
        } else {
            pending.append(byte)
            // Longer than the limit and not a "\r" that the next byte may make an ending.
            if pending.count > limit + 1 || (pending.count == limit + 1 && byte != UInt8(ascii: "\r")) { return (lines, true) }
        }
    }
    return (lines, false)
}

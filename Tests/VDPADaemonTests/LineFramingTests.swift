import NIOCore
import NIOEmbedded
import Testing
@testable import VDPADaemon

/// The request framing: lines of at most the limit, "\n" or "\r\n", however the bytes are cut.
@Suite struct LineFramingTests {
    /// The lines `chunks` give, in order, or the error that ended them.
    static func lines(_ chunks: [String], limit: Int) -> (lines: [String], error: (any Error)?) {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineFrameDecoder(maximumLength: limit)))
        var lines: [String] = []
        func drain() {
            while let buffer = try? channel.readInbound(as: ByteBuffer.self) { lines.append(String(buffer: buffer)) }
        }
        do {
            for chunk in chunks {
                try channel.writeInbound(ByteBuffer(string: chunk))
                drain()
            }
            _ = try channel.finish()
            drain()
        } catch {
            drain()
            return (lines, error)
        }
        return (lines, nil)
    }

    @Test func aLineOfTheLimitIsAcceptedWithEitherEnding() {
        for text in ["12345678\n", "12345678\r\n"] {
            let result = Self.lines([text], limit: 8)
            #expect(result.lines == ["12345678"] && result.error == nil, "\(text.debugDescription)")
        }
        // The "\r" in one read, the "\n" in the next.
        #expect(Self.lines(["12345678\r", "\n"], limit: 8).lines == ["12345678"])
    }

    @Test func aLineOverTheLimitIsRefusedWithoutWaitingForItsEnd() {
        for chunks in [["123456789\n"], ["123456789"], ["12345678\r\r\n"], ["1234", "5678", "9"]] {
            let result = Self.lines(chunks, limit: 8)
            #expect(result.error is RequestTooLargeError && result.lines.isEmpty, "\(chunks)")
        }
    }

    /// Cut at every place, the stream gives the same lines (the search goes on where the last
    /// read left it).
    @Test func everyCutGivesTheSameLines() {
        let stream = "{\"a\":1}\r\n\n{\"b\":22}\n{\"c\":333}\r\n"
        let expected = ["{\"a\":1}", "{\"b\":22}", "{\"c\":333}"]
        let bytes = Array(stream.utf8)
        func text(_ part: ArraySlice<UInt8>) -> String { String(decoding: part, as: UTF8.self) }
        for first in 0...bytes.count {
            for second in first...bytes.count {
                let chunks = [text(bytes[..<first]), text(bytes[first..<second]), text(bytes[second...])]
                let result = Self.lines(chunks, limit: 16)
                #expect(result.lines == expected && result.error == nil, "\(chunks)")
            }
        }
        // One byte at a time.
        #expect(Self.lines(bytes.map { text([$0][...]) }, limit: 16).lines == expected)
    }
}

import NIOCore

/// A request line longer than the limit.
public struct RequestTooLargeError: Error, Hashable, Sendable {
    public var limit: Int
}

/// Splits the byte stream into newline-terminated lines of at most `maximumLength`
/// bytes, not counting the "\n" or a "\r\n" that ends them. A longer line is an error: the
/// connection answers `request_too_large` and closes, the daemon and other clients carry on.
///
/// Each byte is searched for the newline once, however the line is cut into reads: the work
/// is linear in the bytes received, not in the bytes times the reads.
package struct LineFrameDecoder: ByteToMessageDecoder {
    package typealias InboundOut = ByteBuffer
    package let maximumLength: Int
    /// How many readable bytes were already searched without finding a newline.
    private var searched = 0

    package init(maximumLength: Int) { self.maximumLength = maximumLength }

    package mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        guard let newline = view[(view.startIndex + min(searched, view.count))...].firstIndex(of: UInt8(ascii: "\n")) else {
            searched = view.count
            // A line of the largest length may still be waiting for the "\n" after its "\r".
            if view.count > maximumLength + 1 || (view.count == maximumLength + 1 && view.last != UInt8(ascii: "\r")) {
                throw RequestTooLargeError(limit: maximumLength)
            }
            return .needMoreData
        }
        searched = 0
        let terminated = newline - view.startIndex
        let length = terminated > 0 && view[newline - 1] == UInt8(ascii: "\r") ? terminated - 1 : terminated
        guard length <= maximumLength else { throw RequestTooLargeError(limit: maximumLength) }
        guard let line = buffer.readSlice(length: length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: terminated - length + 1)
        if line.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(line)) }
        return .continue
    }

    package mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        // A last request without its newline, from a client that half-closed after writing.
        let view = buffer.readableBytesView
        let length = view.last == UInt8(ascii: "\r") ? view.count - 1 : view.count
        if length > 0, let line = buffer.readSlice(length: length) {
            context.fireChannelRead(wrapInboundOut(line))
        }
        return .needMoreData
    }
}

/// Closes a connection that sent nothing for the idle timeout (IdleStateHandler's read event).
final class IdleConnectionCloser: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}

import VDPASystem
import VhostUser

/// What a vhost-user back-end answers.
public enum VhostUserReply: Sendable {
    case u64(UInt64)
    case vringState(VhostUserVringState)
    case config(offset: UInt32, flags: UInt32, bytes: [UInt8])
}

/// Reacts to a front-end's requests (a port).
public protocol VhostUserBackendHandler: AnyObject {
    /// Handles one request; returns its reply (nil for requests without one). Throwing
    /// answers with a failure: a non-zero ack when REPLY_ACK was negotiated and asked for,
    /// otherwise the connection is closed (the protocol's only other way to say no).
    func handle(_ request: VhostUserRequest, fileDescriptors: [OwnedFileDescriptor]) throws -> VhostUserReply?
    /// The front-end went away (or the connection was stopped).
    func connectionClosed()
}

/// One front-end connection of a vhost-user back-end: reads messages with their file
/// descriptors, hands them to the handler, writes the replies (vhost-user.rst "Communication").
///
/// A front-end that connects must take the socket (`SET_OWNER`, which QEMU and DPDK send within
/// milliseconds of connecting) within `setupTimeout`, and a message that has begun must be
/// whole within `messageTimeout`: a consumer that connects and stalls, or stops mid-message,
/// is disconnected rather than holding the port's one connection. Between messages a front-end
/// may stay silent as long as it likes (a guest that has not started its driver yet).
public final class VhostUserBackendConnection: @unchecked Sendable {
    // SAFETY (@unchecked): `run()` is the only reader and writer; `stop()` only shuts the socket down.
    private let socket: UnixMessageSocket
    private weak var handler: (any VhostUserBackendHandler)?
    public private(set) var replyAckNegotiated = false
    private let setupTimeout: Duration
    private let messageTimeout: Duration

    public static let defaultSetupTimeout = Duration.seconds(10)
    public static let defaultMessageTimeout = Duration.seconds(5)

    public init(socket: UnixMessageSocket, handler: any VhostUserBackendHandler,
                setupTimeout: Duration = defaultSetupTimeout, messageTimeout: Duration = defaultMessageTimeout) {
        self.socket = socket
        self.handler = handler
        self.setupTimeout = setupTimeout
        self.messageTimeout = messageTimeout
    }

    /// Serves until the front-end closes, a message is malformed, a timeout passes, or
    /// `stop()`. Blocking.
    public func run() {
        defer {
            socket.close()
            handler?.connectionClosed()
        }
        var setupDeadline: ContinuousClock.Instant? = .now + setupTimeout
        while true {
            guard let (header, request, fds) = try? readRequest(setupDeadline: setupDeadline), let handler else { return }
            if case .setOwner = request { setupDeadline = nil }
            var reply: VhostUserReply?
            var failed = false
            do {
                reply = try handler.handle(request, fileDescriptors: fds)
            } catch {
                failed = true
            }
            if case .setProtocolFeatures(let raw) = request, !failed {
                replyAckNegotiated = VhostUserProtocolFeatures(rawValue: raw).contains(.replyAck)
            }
            let bytes: [UInt8]?
            if request.hasReply {
                guard !failed, let reply else { return }
                bytes = switch reply {
                case .u64(let value): VhostUserCodec.encodeReply(to: header.request, u64: value)
                case .vringState(let state): VhostUserCodec.encodeReply(to: header.request, vringState: state)
                case .config(let offset, let flags, let payload): VhostUserCodec.encodeReply(to: header.request, config: offset, flags: flags, bytes: payload)
                }
            } else if replyAckNegotiated, VhostUserCodec.needsReply(header) {
                bytes = VhostUserCodec.encodeReply(to: header.request, u64: failed ? 1 : 0)
            } else if failed {
                return
            } else {
                bytes = nil
            }
            if let bytes { guard (try? socket.send(bytes)) != nil else { return } }
        }
    }

    private func readRequest(setupDeadline: ContinuousClock.Instant?) throws -> (VhostUserHeader, VhostUserRequest, [OwnedFileDescriptor]) {
        try socket.waitReadable(until: setupDeadline)
        // Something came (or the end of the stream): the whole message is due now.
        let messageDeadline = ContinuousClock.now + messageTimeout
        let (headerBytes, headerFDs) = try socket.receive(exactly: VhostUserHeader.byteCount, deadline: messageDeadline)
        let header = try VhostUserCodec.decodeHeader(headerBytes)
        var fds = headerFDs
        var payload: [UInt8] = []
        if header.size > 0 {
            let (bytes, more) = try socket.receive(exactly: Int(header.size), deadline: messageDeadline)
            payload = bytes
            fds += more
        }
        return (header, try VhostUserCodec.decodeRequest(header: header, payload: payload, fileDescriptorCount: fds.count), fds)
    }

    /// Ends the connection: `run()` returns.
    public func stop() { socket.shutdown() }
}

import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import VDPARPC
import VDPASystem

/// What the server hands each request line to: vdpad's ``RPCDispatcher``, or in the
/// API benchmark a canned-reply handler that measures the transport alone.
public protocol RPCLineHandling: Sendable {
    func handle(line: [UInt8], caller: RPCCaller, authorization: RPCAuthorization?) async -> RPCDispatchOutcome
}

extension RPCDispatcher: RPCLineHandling {}

/// JSON-RPC 2.0 over a Unix stream socket, one request or response per line.
///
/// Each connection is served by its own task: a malformed, oversized, slow or
/// vanished client gets an error or a closed connection, and nothing else.
public final class RPCServer: Service {
    public struct Settings: Sendable {
        public var socketPath: String
        public var socketMode: UInt32
        public var socketGroup: String?
        public var maximumRequestBytes: Int
        public var idleTimeout: TimeAmount
        /// Who may call what, from each connection's peer credentials.
        public var authorization: RPCAuthorization
        /// The most connections, and event subscriptions, one uid may hold open at once.
        public var maximumConnectionsPerUser: Int
        public var maximumSubscriptionsPerUser: Int

        public init(socketPath: String, socketMode: UInt32 = 0o660, socketGroup: String? = nil, maximumRequestBytes: Int = 1 << 20, idleTimeout: TimeAmount = .seconds(300),
                    authorization: RPCAuthorization = RPCAuthorization(adminGroup: nil, readGroup: nil, daemonUID: PeerIdentity.processUID),
                    maximumConnectionsPerUser: Int = 256, maximumSubscriptionsPerUser: Int = 32) {
            self.authorization = authorization
            self.maximumConnectionsPerUser = maximumConnectionsPerUser
            self.maximumSubscriptionsPerUser = maximumSubscriptionsPerUser
            self.socketPath = socketPath
            self.socketMode = socketMode
            self.socketGroup = socketGroup
            self.maximumRequestBytes = maximumRequestBytes
            self.idleTimeout = idleTimeout
        }
    }

    private let settings: Settings
    private let dispatcher: any RPCLineHandling
    private let events: EventHub
    private let logger: Logger
    private let onListening: @Sendable () -> Void
    private let idleTrimmer = IdleMemoryTrimmer()
    private let perUser = PerUserCounts()

    public init(settings: Settings, dispatcher: any RPCLineHandling, events: EventHub, logger: Logger, onListening: @escaping @Sendable () -> Void = {}) {
        self.settings = settings
        self.dispatcher = dispatcher
        self.events = events
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        let settings = self.settings
        let directory = String(settings.socketPath[..<(settings.socketPath.lastIndex(of: "/") ?? settings.socketPath.startIndex)])
        if !directory.isEmpty {
            try FileSystem.createDirectory(directory)
            try PrivateDirectory.checkForSockets(directory)
        }
        let bindPath = settings.socketPath + ".new"
        let unclaimed = UnclaimedConnections()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .bind(unixDomainSocketPath: bindPath, cleanupExistingSocketFile: true) { channel in
                // Who connected, as the kernel recorded it at connect(2).
                let credentials: EventLoopFuture<PeerCredentials?> = (channel as? SocketOptionProvider).map {
                    $0.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
                        .map { (credentials: PeerCredentials) -> PeerCredentials? in credentials }
                        .recover { _ in nil }
                } ?? channel.eventLoop.makeSucceededFuture(nil)
                return credentials.flatMapThrowing { credentials in
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: settings.idleTimeout), name: "idle")
                    try channel.pipeline.syncOperations.addHandler(IdleConnectionCloser(), name: "idle-closer")
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maximumLength: settings.maximumRequestBytes)))
                    let connection = try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    unclaimed.hold(connection)
                    return AcceptedConnection(channel: connection, credentials: credentials)
                }
            }
        // Mode and group are set on a private name, then the socket is renamed into place:
        // no client ever finds the path with other permissions than the configured ones.
        try PrivateDirectory.setSocketPermissions(bindPath, mode: settings.socketMode, group: settings.socketGroup)
        try FileSystem.rename(bindPath, to: settings.socketPath)
        logger.info("Listening", metadata: ["socket": "\(settings.socketPath)"])
        onListening()
        try await withGracefulShutdownHandler {
            try await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await accepted in inbound {
                        unclaimed.release(accepted.channel)
                        group.addTask { await self.serve(accepted.channel, credentials: accepted.credentials) }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
            self.events.finishAll()
        }
        // Connections accepted while the listener closed never reached the loop: close them.
        for connection in unclaimed.takeAll() {
            try? await connection.executeThenClose { _, _ in }
        }
        try? FileSystem.removeFile(settings.socketPath)
    }

    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, credentials: PeerCredentials?) async {
        idleTrimmer.connectionOpened()
        defer { idleTrimmer.connectionClosed() }
        let authorization = settings.authorization
        // One uid cannot take every descriptor of the daemon: past its share, a connection is
        // told why and closed (the uid's other connections and everyone else carry on).
        let uid = credentials?.uid ?? UInt32.max
        guard perUser.open(uid, limit: settings.maximumConnectionsPerUser, \.connections) else {
            logger.notice("Refused a connection: too many from one user", metadata: ["uid": "\(uid)", "limit": "\(settings.maximumConnectionsPerUser)"])
            let reply = RPCDispatcher.encodeError(id: nil, RPCErrorObject(
                code: .tryAgain, message: "uid \(uid) has \(settings.maximumConnectionsPerUser) connections open, the most one user may; closing this one"))
            try? await connection.executeThenClose { _, outbound in try await outbound.write(Self.frame(reply)) }
            return
        }
        defer { perUser.close(uid, \.connections) }
        // The group lookup may ask NSS: done here, on this connection's task, not on the event loop.
        let caller = authorization.caller(credentials)
        do {
            try await connection.executeThenClose { inbound, outbound in
                try await cancelWhenGracefulShutdown {
                    var subscription: Task<Void, Never>?
                    defer { subscription?.cancel() }
                    do {
                        for try await var line in inbound {
                            let bytes = line.readBytes(length: line.readableBytes) ?? []
                            switch await self.dispatcher.handle(line: bytes, caller: caller, authorization: authorization) {
                            case .none:
                                continue
                            case .reply(let reply):
                                try await outbound.write(Self.frame(reply))
                            case .splicedReply(let head, let body, let tail):
                                try await outbound.write(Self.frame(head, body, tail))
                            case .subscribe(let reply, let id):
                                if subscription == nil, !self.perUser.open(uid, limit: self.settings.maximumSubscriptionsPerUser, \.subscriptions) {
                                    try await outbound.write(Self.frame(RPCDispatcher.encodeError(id: id, RPCErrorObject(
                                        code: .tryAgain, message: "uid \(uid) has \(self.settings.maximumSubscriptionsPerUser) event subscriptions, the most one user may"))))
                                    continue
                                }
                                try await outbound.write(Self.frame(reply))
                                guard subscription == nil else { continue }
                                _ = try? await connection.channel.pipeline.removeHandler(name: "idle").get()
                                let stream = self.events.subscribe()
                                let channel = connection.channel
                                let perUser = self.perUser
                                subscription = Task {
                                    defer { perUser.close(uid, \.subscriptions) }
                                    for await event in stream {
                                        do { try await outbound.write(Self.frame(RPCDispatcher.encodeEvent(event))) } catch { break }
                                    }
                                    // The stream ends when this client fell too far behind (or at shutdown).
                                    channel.close(promise: nil)
                                }
                            }
                        }
                    } catch let error as RequestTooLargeError {
                        let reply = RPCDispatcher.encodeError(id: nil, RPCErrorObject(
                            code: .requestTooLarge, message: "request line longer than \(error.limit) bytes; closing the connection"))
                        try? await outbound.write(Self.frame(reply))
                    }
                }
            }
        } catch is CancellationError {
            return
        } catch {
            logger.debug("Connection ended", metadata: ["error": "\(error)"])
        }
    }

    /// One line: the parts, then a newline, in a single buffer (one copy of each part).
    private static func frame(_ parts: [UInt8]...) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(parts.reduce(1) { $0 + $1.count })
        for part in parts { buffer.writeBytes(part) }
        buffer.writeInteger(UInt8(ascii: "\n"))
        return buffer
    }
}

/// Gives the memory of a burst back to the kernel once no client has been connected
/// for a second (see ``AllocatorTuning``); debounced so that a client that connects
/// for each command (vdpactl) does not trim on every call.
final class IdleMemoryTrimmer: Sendable {
    private struct State {
        var connections = 0
        var idleSince: UInt64 = 0
    }

    private let state = Mutex(State())
    private let quietPeriod: Duration

    init(quietPeriod: Duration = .seconds(1)) { self.quietPeriod = quietPeriod }

    func connectionOpened() { state.withLock { $0.connections += 1 } }

    func connectionClosed() {
        let generation = state.withLock { state -> UInt64? in
            state.connections -= 1
            guard state.connections == 0 else { return nil }
            state.idleSince &+= 1
            return state.idleSince
        }
        guard let generation else { return }
        Task.detached(priority: .background) { [self] in
            try? await Task.sleep(for: quietPeriod)
            if state.withLock({ $0.connections == 0 && $0.idleSince == generation }) {
                AllocatorTuning.returnFreeMemory()
            }
        }
    }
}

/// Connections and subscriptions open per uid.
final class PerUserCounts: Sendable {
    struct Counts {
        var connections = 0
        var subscriptions = 0
    }
    private let counts = Mutex<[UInt32: Counts]>([:])

    /// Counts one more of `kind` for `uid` unless it has `limit` already.
    func open(_ uid: UInt32, limit: Int, _ kind: WritableKeyPath<Counts, Int> & Sendable) -> Bool {
        counts.withLock { counts in
            guard counts[uid, default: Counts()][keyPath: kind] < limit else { return false }
            counts[uid, default: Counts()][keyPath: kind] += 1
            return true
        }
    }

    func close(_ uid: UInt32, _ kind: WritableKeyPath<Counts, Int> & Sendable) {
        counts.withLock { counts in
            counts[uid, default: Counts()][keyPath: kind] -= 1
            if let entry = counts[uid], entry.connections <= 0, entry.subscriptions <= 0 { counts[uid] = nil }
        }
    }
}

/// A connection as the child initializer hands it to the accept loop.
struct AcceptedConnection: Sendable {
    var channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    var credentials: PeerCredentials?
}

/// Accepted connections not yet taken by the accept loop. A connection accepted while
/// the listener shuts down can stay buffered in the server channel's stream and be
/// dropped without ever being closed, which NIO treats as a programming error (a trap).
/// The server holds each one from the child initializer until the loop takes it, and
/// closes whatever is left when the loop has ended.
final class UnclaimedConnections: Sendable {
    private let connections = Mutex<[ObjectIdentifier: NIOAsyncChannel<ByteBuffer, ByteBuffer>]>([:])

    func hold(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) {
        connections.withLock { $0[ObjectIdentifier(connection.channel)] = connection }
    }

    func release(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) {
        _ = connections.withLock { $0.removeValue(forKey: ObjectIdentifier(connection.channel)) }
    }

    func takeAll() -> [NIOAsyncChannel<ByteBuffer, ByteBuffer>] {
        connections.withLock { held in
            defer { held.removeAll() }
            return Array(held.values)
        }
    }
}

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
    func handle(line: [UInt8]) async -> RPCDispatchOutcome
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

        public init(socketPath: String, socketMode: UInt32 = 0o660, socketGroup: String? = nil, maximumRequestBytes: Int = 1 << 20, idleTimeout: TimeAmount = .seconds(300)) {
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
        if !directory.isEmpty { try FileSystem.createDirectory(directory) }
        let bindPath = settings.socketPath + ".new"
        let unclaimed = UnclaimedConnections()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .bind(unixDomainSocketPath: bindPath, cleanupExistingSocketFile: true) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: settings.idleTimeout), name: "idle")
                    try channel.pipeline.syncOperations.addHandler(IdleConnectionCloser(), name: "idle-closer")
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maximumLength: settings.maximumRequestBytes)))
                    let connection = try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    unclaimed.hold(connection)
                    return connection
                }
            }
        // Mode and group are set on a private name, then the socket is renamed into place:
        // no client ever finds the path with other permissions than the configured ones.
        try FileSystem.setMode(bindPath, settings.socketMode)
        if let group = settings.socketGroup, !group.isEmpty { try FileSystem.setGroup(bindPath, groupName: group) }
        try FileSystem.rename(bindPath, to: settings.socketPath)
        logger.info("Listening", metadata: ["socket": "\(settings.socketPath)"])
        onListening()
        try await withGracefulShutdownHandler {
            try await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        unclaimed.release(connection)
                        group.addTask { await self.serve(connection) }
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

    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        idleTrimmer.connectionOpened()
        defer { idleTrimmer.connectionClosed() }
        do {
            try await connection.executeThenClose { inbound, outbound in
                try await cancelWhenGracefulShutdown {
                    var subscription: Task<Void, Never>?
                    defer { subscription?.cancel() }
                    do {
                        for try await var line in inbound {
                            let bytes = line.readBytes(length: line.readableBytes) ?? []
                            switch await self.dispatcher.handle(line: bytes) {
                            case .none:
                                continue
                            case .reply(let reply):
                                try await outbound.write(Self.frame(reply))
                            case .splicedReply(let head, let body, let tail):
                                try await outbound.write(Self.frame(head, body, tail))
                            case .subscribe(let reply):
                                try await outbound.write(Self.frame(reply))
                                guard subscription == nil else { continue }
                                _ = try? await connection.channel.pipeline.removeHandler(name: "idle").get()
                                let stream = self.events.subscribe()
                                let channel = connection.channel
                                subscription = Task {
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

import Foundation
import Testing
import VDPAPorts
import VDPASystem
import VhostUser

@Suite struct VhostUserCodecTests {
    static let requests: [VhostUserRequest] = [
        .getFeatures, .setFeatures(0x1_4000_0020), .setOwner, .resetOwner,
        .setMemoryTable([VhostUserMemoryRegion(guestPhysicalAddress: 0, size: 0x10000, userAddress: 0x7f00_0000_0000, mmapOffset: 0),
                         VhostUserMemoryRegion(guestPhysicalAddress: 0x10_0000, size: 0x2000, userAddress: 0x7f00_1000_0000, mmapOffset: 0x1000)]),
        .setVringNum(.init(index: 1, num: 256)),
        .setVringAddress(.init(index: 1, flags: 0, descriptorTable: 0x1000, usedRing: 0x3000, availableRing: 0x2000, logGuestAddress: 0)),
        .setVringBase(.init(index: 0, num: 0x8005_8003)), .getVringBase(index: 2),
        .setVringKick(index: 0, hasFileDescriptor: true), .setVringCall(index: 1, hasFileDescriptor: false), .setVringErr(index: 2, hasFileDescriptor: true),
        .getProtocolFeatures, .setProtocolFeatures(0x1_0208), .getQueueNum, .setVringEnable(.init(index: 1, num: 1)),
        .getConfig(offset: 0, size: 6, flags: 0), .setConfig(offset: 4, flags: 0, bytes: [1, 2]),
        .setStatus(0x0f), .getStatus, .getMaxMemorySlots,
    ]

    static func fileDescriptors(of request: VhostUserRequest) -> Int {
        switch request {
        case .setMemoryTable(let regions): regions.count
        case .setVringKick(_, let has), .setVringCall(_, let has), .setVringErr(_, let has): has ? 1 : 0
        default: 0
        }
    }

    static func decode(_ bytes: [UInt8], fileDescriptors: Int) throws -> (VhostUserHeader, VhostUserRequest) {
        let header = try VhostUserCodec.decodeHeader(bytes.prefix(12))
        return (header, try VhostUserCodec.decodeRequest(header: header, payload: Array(bytes.dropFirst(12)), fileDescriptorCount: fileDescriptors))
    }

    @Test(arguments: requests)
    func everyRequestRoundTrips(_ request: VhostUserRequest) throws {
        let bytes = VhostUserCodec.encodeRequest(request, needReply: true)
        let (header, decoded) = try Self.decode(bytes, fileDescriptors: Self.fileDescriptors(of: request))
        #expect(decoded == request)
        #expect(VhostUserCodec.needsReply(header))
        #expect(header.flags & VhostUserHeader.versionMask == 1)
    }

    @Test func repliesRoundTrip() throws {
        let u64 = VhostUserCodec.encodeReply(to: 1, u64: 0xdead_beef)
        let header = try VhostUserCodec.decodeHeader(u64.prefix(12))
        #expect(try VhostUserCodec.decodeReplyU64(header: header, payload: Array(u64.dropFirst(12))) == 0xdead_beef)
        let state = VhostUserCodec.encodeReply(to: 11, vringState: .init(index: 1, num: 42))
        #expect(try VhostUserCodec.decodeReplyVringState(header: try VhostUserCodec.decodeHeader(state.prefix(12)), payload: Array(state.dropFirst(12))) == .init(index: 1, num: 42))
        let config = VhostUserCodec.encodeReply(to: 24, config: 0, flags: 0, bytes: [1, 2, 3])
        #expect(try VhostUserCodec.decodeReplyConfig(header: try VhostUserCodec.decodeHeader(config.prefix(12)), payload: Array(config.dropFirst(12))) == [1, 2, 3])
    }

    @Test func malformedMessagesAreRefused() throws {
        // Wrong version.
        #expect(throws: VhostUserError.self) { try VhostUserCodec.decodeHeader([1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]) }
        // A payload over the limit.
        #expect(throws: VhostUserError.self) { try VhostUserCodec.decodeHeader([1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0]) }
        // A short u64.
        let short = VhostUserHeader(request: 2, flags: 1, size: 4)
        #expect(throws: VhostUserError.self) { try VhostUserCodec.decodeRequest(header: short, payload: [0, 0, 0, 0], fileDescriptorCount: 0) }
        // A memory table whose regions and descriptors disagree, or with more than 8 regions.
        let table = VhostUserCodec.encodeRequest(.setMemoryTable([VhostUserMemoryRegion(guestPhysicalAddress: 0, size: 4096, userAddress: 0, mmapOffset: 0)]), needReply: false)
        #expect(throws: VhostUserError.self) { try Self.decode(table, fileDescriptors: 0) }
        var nine = [UInt8](repeating: 0, count: 8 + 9 * 32)
        nine[0] = 9
        #expect(throws: VhostUserError.self) {
            try VhostUserCodec.decodeRequest(header: .init(request: 5, flags: 1, size: UInt32(nine.count)), payload: nine, fileDescriptorCount: 9)
        }
        // A region that wraps around.
        let wrapping = VhostUserCodec.encodeRequest(.setMemoryTable([VhostUserMemoryRegion(guestPhysicalAddress: .max - 10, size: 4096, userAddress: 0, mmapOffset: 0)]), needReply: false)
        #expect(throws: VhostUserError.self) { try Self.decode(wrapping, fileDescriptors: 1) }
        // A kick without its descriptor (and without NOFD).
        let kick = VhostUserCodec.encodeRequest(.setVringKick(index: 0, hasFileDescriptor: true), needReply: false)
        #expect(throws: VhostUserError.self) { try Self.decode(kick, fileDescriptors: 0) }
        // Descriptors where none belong.
        #expect(throws: VhostUserError.self) { try Self.decode(VhostUserCodec.encodeRequest(.getFeatures, needReply: false), fileDescriptors: 1) }
        // An oversized config access.
        var config = [UInt8](repeating: 0, count: 12)
        config[4] = 0xff
        config[5] = 0x01
        #expect(throws: VhostUserError.self) { try VhostUserCodec.decodeRequest(header: .init(request: 24, flags: 1, size: 12), payload: config, fileDescriptorCount: 0) }
        // Unknown requests decode as unsupported (the handler refuses them).
        #expect(try VhostUserCodec.decodeRequest(header: .init(request: 99, flags: 1, size: 0), payload: [], fileDescriptorCount: 0) == .unsupported(code: 99))
    }
}

@Suite struct UnixMessageSocketTests {
    @Test func descriptorsTravelWithTheBytes() throws {
        let (a, b) = try UnixMessageSocket.pair()
        let event = try EventFD()
        try a.send([1, 2, 3, 4], fileDescriptors: [event.fileDescriptor])
        let (bytes, fds) = try b.receive(exactly: 4)
        #expect(bytes == [1, 2, 3, 4] && fds.count == 1)
        // The received descriptor is the same eventfd: a signal through it is seen here.
        let received = EventFD(adopting: try #require(fds.first).rawValue, takingOwnership: false)
        try received.signal()
        #expect(try event.wait(timeoutMilliseconds: 1000))
    }

    @Test func exactReceivesSpanPartialWritesAndEndOfStreamThrows() throws {
        let (a, b) = try UnixMessageSocket.pair()
        try a.send([1, 2])
        try a.send([3, 4, 5])
        #expect(try b.receive(exactly: 5).bytes == [1, 2, 3, 4, 5])
        a.close()
        #expect(throws: SystemError.self) { try b.receive(exactly: 1) }
    }

    @Test func aListeningSocketGetsItsModeAndGroupBeforeItAppears() throws {
        let path = NSTemporaryDirectory() + "/vdpad-port-\(UUID().uuidString.prefix(8)).sock"
        let listener = try UnixListeningSocket(path: path, mode: 0o660, group: "adm")
        defer { listener.close() }
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o660)
        #expect((attributes[.groupOwnerAccountName] as? String) == "adm")
        #expect(!FileManager.default.fileExists(atPath: path + ".new"))
        let client = try UnixMessageSocket(connectingTo: path)
        let served = try listener.accept()
        try client.send([7])
        #expect(try served.receive(exactly: 1).bytes == [7])
        listener.close()
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func aMappingMustLieInsideItsFile() throws {
        let memory = try SharedMemory(name: "test", length: 8192)
        #expect(try MappedFile(fileDescriptor: memory.fileDescriptor, offset: 4096, length: 4096).length == 4096)
        #expect(throws: SystemError.self) { try MappedFile(fileDescriptor: memory.fileDescriptor, offset: 4096, length: 8192) }
        #expect(throws: SystemError.self) { try MappedFile(fileDescriptor: memory.fileDescriptor, offset: .max, length: 4096) }
    }
}

/// The back-end connection loop against a recording handler.
@Suite struct VhostUserBackendConnectionTests {
    final class Recorder: VhostUserBackendHandler, @unchecked Sendable {
        var requests: [VhostUserRequest] = []
        var closed = false
        func handle(_ request: VhostUserRequest, fileDescriptors: [OwnedFileDescriptor]) throws -> VhostUserReply? {
            requests.append(request)
            switch request {
            case .getFeatures: return .u64(1 << 30)
            case .getProtocolFeatures: return .u64(VhostUserProtocolFeatures.replyAck.rawValue)
            case .setStatus: throw VhostUserError("refused")
            default: return nil
            }
        }
        func connectionClosed() { closed = true }
    }

    @Test func repliesAcksAndFailures() throws {
        let (front, back) = try UnixMessageSocket.pair()
        let recorder = Recorder()
        let connection = VhostUserBackendConnection(socket: back, handler: recorder)
        let thread = Thread { connection.run() }
        thread.start()
        func exchange(_ request: VhostUserRequest, needReply: Bool) throws -> UInt64 {
            try front.send(VhostUserCodec.encodeRequest(request, needReply: needReply))
            let header = try VhostUserCodec.decodeHeader(try front.receive(exactly: 12).bytes)
            return try VhostUserCodec.decodeReplyU64(header: header, payload: try front.receive(exactly: Int(header.size)).bytes)
        }
        #expect(try exchange(.getFeatures, needReply: false) == 1 << 30)
        try front.send(VhostUserCodec.encodeRequest(.setProtocolFeatures(VhostUserProtocolFeatures.replyAck.rawValue), needReply: false))
        #expect(try exchange(.setOwner, needReply: true) == 0)
        #expect(try exchange(.setStatus(1), needReply: true) == 1)  // refused: a non-zero ack
        // A malformed message closes the connection.
        try front.send([1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0])
        #expect(throws: SystemError.self) { try front.receive(exactly: 1) }
        for _ in 0..<100 where !recorder.closed { Thread.sleep(forTimeInterval: 0.01) }
        #expect(recorder.closed)
        #expect(recorder.requests.count == 4)
    }

    /// Runs a connection with short timeouts; returns the front end and a way to learn when it ended.
    static func serve(setupTimeout: Duration, messageTimeout: Duration) throws -> (front: UnixMessageSocket, recorder: Recorder, ended: @Sendable () -> ContinuousClock.Instant?) {
        let (front, back) = try UnixMessageSocket.pair()
        let recorder = Recorder()
        let connection = VhostUserBackendConnection(socket: back, handler: recorder, setupTimeout: setupTimeout, messageTimeout: messageTimeout)
        final class End: @unchecked Sendable {
            // SAFETY (@unchecked): `instant` under `lock`.
            let lock = NSLock()
            var instant: ContinuousClock.Instant?
        }
        let end = End()
        let thread = Thread {
            connection.run()
            end.lock.withLock { end.instant = .now }
        }
        thread.start()
        return (front, recorder, { end.lock.withLock { end.instant } })
    }

    static func waitForEnd(_ ended: () -> ContinuousClock.Instant?, within: Duration) -> ContinuousClock.Instant? {
        let deadline = ContinuousClock.now + within
        while ended() == nil && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.01) }
        return ended()
    }

    @Test func aFrontEndThatNeverTakesTheSocketIsDisconnected() throws {
        let start = ContinuousClock.now
        let (front, recorder, ended) = try Self.serve(setupTimeout: .milliseconds(200), messageTimeout: .seconds(5))
        _ = front
        let end = try #require(Self.waitForEnd(ended, within: .seconds(5)))
        #expect(end - start >= .milliseconds(200) && end - start < .seconds(3))
        #expect(recorder.closed && recorder.requests.isEmpty)
    }

    @Test func aMessageCutShortIsDisconnectedButSilenceBetweenMessagesIsNot() throws {
        let (front, recorder, ended) = try Self.serve(setupTimeout: .milliseconds(200), messageTimeout: .milliseconds(300))
        try front.send(VhostUserCodec.encodeRequest(.setOwner, needReply: false))
        // Taken: silence longer than both timeouts is fine between messages.
        Thread.sleep(forTimeInterval: 0.6)
        #expect(ended() == nil)
        try front.send(VhostUserCodec.encodeRequest(.getFeatures, needReply: false))
        _ = try front.receive(exactly: 20)
        // Half a header, and nothing more.
        let cut = ContinuousClock.now
        try front.send(Array(VhostUserCodec.encodeRequest(.getFeatures, needReply: false).prefix(5)))
        let end = try #require(Self.waitForEnd(ended, within: .seconds(5)))
        #expect(end - cut >= .milliseconds(300) && end - cut < .seconds(3))
        #expect(recorder.requests.count == 2 && recorder.closed)
    }
}

import Foundation
import Testing
import VDPAPorts
import VDPASystem
import VDPAVhostTestSupport
import VhostUser

/// The front-end the mini VMM uses against the back-end connection loop, over a real
/// listening socket: requests with their descriptors, replies, REPLY_ACK acks and refusals.
@Suite struct VhostUserLoopbackTests {
    /// Answers like a small net back-end, maps the memory it is sent, signals the kick it is
    /// given, and refuses SET_STATUS 0x80 (FAILED) and anything it does not implement.
    final class Backend: VhostUserBackendHandler, @unchecked Sendable {
        // SAFETY (@unchecked): the connection thread writes, the test reads under `lock`.
        private let lock = NSLock()
        private var _requests: [VhostUserRequest] = []
        private var _firstGuestByte: UInt8?
        private var _closed = false
        var requests: [VhostUserRequest] { lock.withLock { _requests } }
        var firstGuestByte: UInt8? { lock.withLock { _firstGuestByte } }
        var closed: Bool { lock.withLock { _closed } }

        func handle(_ request: VhostUserRequest, fileDescriptors: [OwnedFileDescriptor]) throws -> VhostUserReply? {
            lock.withLock { _requests.append(request) }
            switch request {
            case .getFeatures: return .u64(1 << 32 | 1 << 30)
            case .getProtocolFeatures: return .u64(VhostUserProtocolFeatures([.replyAck, .status, .mq]).rawValue)
            case .getQueueNum: return .u64(2)
            case .getVringBase(let index): return .vringState(VhostUserVringState(index: index, num: 7))
            case .getStatus: return .u64(0x0f)
            case .getConfig(let offset, let size, let flags): return .config(offset: offset, flags: flags, bytes: (0..<UInt8(size)).map { $0 })
            case .setMemoryTable(let regions):
                guard let region = regions.first, let fd = fileDescriptors.first else { throw VhostUserError("no region") }
                let mapping = try MappedFile(fileDescriptor: fd.rawValue, offset: region.mmapOffset, length: Int(region.size))
                // SAFETY: the mapping is `region.size` (> 0) bytes long.
                let byte = mapping.address.load(as: UInt8.self)
                lock.withLock { _firstGuestByte = byte }
                return nil
            case .setVringKick:
                guard let fd = fileDescriptors.first else { throw VhostUserError("no kick") }
                try EventFD(adopting: fd.rawValue, takingOwnership: false).signal()
                return nil
            case .setStatus(let status) where status & 0x80 != 0: throw VhostUserError("FAILED")
            case .unsupported: throw VhostUserError("unsupported")
            default: return nil
            }
        }

        func connectionClosed() { lock.withLock { _closed = true } }
    }

    static func socketPath() -> String {
        NSTemporaryDirectory() + "/vdpad-loopback-\(UUID().uuidString.prefix(8)).sock"
    }

    /// A listener with one connection served on its own thread by `backend`.
    static func serve(_ backend: Backend) throws -> (UnixListeningSocket, VhostUserFrontend, Thread) {
        let listener = try UnixListeningSocket(path: socketPath())
        let frontend = try VhostUserFrontend(socketPath: listener.path)
        let served = try listener.accept()
        let connection = VhostUserBackendConnection(socket: served, handler: backend)
        let thread = Thread { connection.run() }
        thread.start()
        return (listener, frontend, thread)
    }

    static func waitUntil(_ condition: () -> Bool) {
        for _ in 0..<200 where !condition() { Thread.sleep(forTimeInterval: 0.01) }
    }

    @Test func aSetUpAsTheMiniVMMDoesIt() throws {
        let backend = Backend()
        let (listener, frontend, _) = try Self.serve(backend)
        defer { listener.close() }

        #expect(try frontend.getFeatures() == 1 << 32 | 1 << 30)
        try frontend.setOwner()
        try frontend.setFeatures(1 << 32)
        let offered = try frontend.getProtocolFeatures()
        #expect(offered == [.replyAck, .status, .multipleQueues])
        try frontend.setProtocolFeatures(offered)
        #expect(frontend.replyAck)
        #expect(try frontend.getQueueNum() == 2)

        let memory = try SharedMemory(name: "loopback", length: 8192)
        memory.address.storeBytes(of: 0xa5, as: UInt8.self)
        try frontend.setMemoryTable([(VhostUserMemoryRegion(guestPhysicalAddress: 0, size: 8192, userAddress: memory.userAddress, mmapOffset: 0),
                                      memory.fileDescriptor)])
        let kick = try EventFD()
        try frontend.setVringNum(0, 64)
        try frontend.setVringAddress(VhostUserVringAddress(index: 0, descriptorTable: memory.userAddress, usedRing: memory.userAddress + 2048,
                                                           availableRing: memory.userAddress + 1024))
        try frontend.setVringBase(0, 3)
        try frontend.setVringKick(0, kick.fileDescriptor)
        try frontend.setVringEnable(0, true)
        #expect(try frontend.getVringBase(0) == 7)
        #expect(try frontend.getConfig(offset: 0, size: 6) == [0, 1, 2, 3, 4, 5])
        try frontend.setStatus(0x0f)
        #expect(try frontend.getStatus() == 0x0f)

        // The back-end mapped the memfd it was sent and signalled through the kick it received.
        #expect(backend.firstGuestByte == 0xa5)
        #expect(try kick.wait(timeoutMilliseconds: 1000))
        #expect(backend.requests.contains(.setVringBase(VhostUserVringState(index: 0, num: 3))))

        frontend.close()
        Self.waitUntil { backend.closed }
        #expect(backend.closed)
    }

    @Test func aRefusalIsANonZeroAckThatNamesTheRequestAndTheConnectionGoesOn() throws {
        let backend = Backend()
        let (listener, frontend, _) = try Self.serve(backend)
        defer { listener.close() }
        try frontend.setProtocolFeatures(.replyAck)
        do {
            try frontend.setStatus(0x80)
            Issue.record("SET_STATUS 0x80 was acknowledged")
        } catch let error as VhostUserError {
            #expect(error.message.contains("setStatus"))
        }
        // An unimplemented request, with a descriptor the back-end has no use for: refused too.
        let event = try EventFD()
        #expect(throws: VhostUserError.self) {
            try frontend.send(.unsupported(code: VhostUserRequestCode.addMemoryRegion.rawValue), fileDescriptors: [event.fileDescriptor])
        }
        #expect(try frontend.getStatus() == 0x0f)
        #expect(!backend.closed)
        frontend.close()
    }

    @Test func withoutReplyAckARefusalClosesTheConnection() throws {
        let backend = Backend()
        let (listener, frontend, _) = try Self.serve(backend)
        defer { listener.close() }
        try frontend.setStatus(0x80)  // no ack asked for: the only answer is hanging up
        Self.waitUntil { backend.closed }
        #expect(backend.closed)
        #expect(throws: (any Error).self) { try frontend.getFeatures() }
    }
}

@Suite struct VhostUserProtocolFeatureNameTests {
    @Test func namesFollowTheSpec() {
        let features: VhostUserProtocolFeatures = [.mq, .replyAck, .config, .status, VhostUserProtocolFeatures(rawValue: 1 << 40)]
        #expect(features.names == ["MQ", "REPLY_ACK", "CONFIG", "STATUS", "bit 40"])
        #expect(VhostUserProtocolFeatures.configureMemorySlots.rawValue == 1 << 15)
    }

    @Test func memorySlotRequestsDecodeAsUnsupported() throws {
        for code in [VhostUserRequestCode.addMemoryRegion, .removeMemoryRegion] {
            let header = VhostUserHeader(request: code.rawValue, flags: 1, size: 40)
            #expect(try VhostUserCodec.decodeRequest(header: header, payload: [UInt8](repeating: 0, count: 40), fileDescriptorCount: 1)
                == .unsupported(code: code.rawValue))
        }
    }
}

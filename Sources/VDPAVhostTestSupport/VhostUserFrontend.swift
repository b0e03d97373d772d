import VDPASystem
import VhostUser

/// A vhost-user front-end for tests and the mini VMM: typed requests over a Unix socket,
/// with REPLY_ACK honoured (every request without a reply of its own asks for an ack once
/// it is negotiated, and a non-zero ack throws).
public final class VhostUserFrontend {
    public let socket: UnixMessageSocket
    public private(set) var replyAck = false

    public init(socketPath: String) throws {
        socket = try UnixMessageSocket(connectingTo: socketPath)
    }

    public func close() { socket.close() }

    /// Sends a request; for one with a reply, returns the reply's header and payload.
    @discardableResult
    public func send(_ request: VhostUserRequest, fileDescriptors: [Int32] = []) throws -> (VhostUserHeader, [UInt8])? {
        let wantsAck = replyAck && !request.hasReply
        try socket.send(VhostUserCodec.encodeRequest(request, needReply: wantsAck), fileDescriptors: fileDescriptors)
        guard request.hasReply || wantsAck else { return nil }
        let (headerBytes, _) = try socket.receive(exactly: VhostUserHeader.byteCount)
        let header = try VhostUserCodec.decodeHeader(headerBytes)
        let payload = header.size > 0 ? try socket.receive(exactly: Int(header.size)).bytes : []
        if wantsAck {
            let ack = try VhostUserCodec.decodeReplyU64(header: header, payload: payload)
            guard ack == 0 else { throw VhostUserError("the back-end refused \(request) (ack \(ack))") }
            return nil
        }
        return (header, payload)
    }

    private func u64(_ request: VhostUserRequest) throws -> UInt64 {
        guard let (header, payload) = try send(request) else { throw VhostUserError("no reply to \(request)") }
        return try VhostUserCodec.decodeReplyU64(header: header, payload: payload)
    }

    public func getFeatures() throws -> UInt64 { try u64(.getFeatures) }
    public func setFeatures(_ features: UInt64) throws { try send(.setFeatures(features)) }
    public func setOwner() throws { try send(.setOwner) }
    public func getProtocolFeatures() throws -> VhostUserProtocolFeatures { VhostUserProtocolFeatures(rawValue: try u64(.getProtocolFeatures)) }
    public func setProtocolFeatures(_ features: VhostUserProtocolFeatures) throws {
        try send(.setProtocolFeatures(features.rawValue))
        replyAck = features.contains(.replyAck)
    }
    public func getQueueNum() throws -> UInt64 { try u64(.getQueueNum) }
    public func setMemoryTable(_ regions: [(VhostUserMemoryRegion, Int32)]) throws {
        try send(.setMemoryTable(regions.map(\.0)), fileDescriptors: regions.map(\.1))
    }
    public func setVringNum(_ index: UInt32, _ num: UInt32) throws { try send(.setVringNum(VhostUserVringState(index: index, num: num))) }
    public func setVringAddress(_ address: VhostUserVringAddress) throws { try send(.setVringAddress(address)) }
    public func setVringBase(_ index: UInt32, _ base: UInt32) throws { try send(.setVringBase(VhostUserVringState(index: index, num: base))) }
    public func getVringBase(_ index: UInt32) throws -> UInt32 {
        guard let (header, payload) = try send(.getVringBase(index: index)) else { throw VhostUserError("no reply to GET_VRING_BASE") }
        return try VhostUserCodec.decodeReplyVringState(header: header, payload: payload).num
    }
    public func setVringKick(_ index: UInt32, _ fd: Int32) throws { try send(.setVringKick(index: index, hasFileDescriptor: true), fileDescriptors: [fd]) }
    public func setVringCall(_ index: UInt32, _ fd: Int32) throws { try send(.setVringCall(index: index, hasFileDescriptor: true), fileDescriptors: [fd]) }
    public func setVringEnable(_ index: UInt32, _ enabled: Bool) throws { try send(.setVringEnable(VhostUserVringState(index: index, num: enabled ? 1 : 0))) }
    public func setStatus(_ status: UInt8) throws { try send(.setStatus(status)) }
    public func getStatus() throws -> UInt8 { UInt8(truncatingIfNeeded: try u64(.getStatus)) }
    public func getConfig(offset: UInt32, size: UInt32) throws -> [UInt8] {
        guard let (header, payload) = try send(.getConfig(offset: offset, size: size, flags: 0)) else { throw VhostUserError("no reply to GET_CONFIG") }
        return try VhostUserCodec.decodeReplyConfig(header: header, payload: payload)
    }
}

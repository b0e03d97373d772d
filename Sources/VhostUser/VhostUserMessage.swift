/// vhost-user front-end request codes (QEMU docs/interop/vhost-user.rst, "Front-end
/// message types"). Only the ones vdpad answers or sends are named.
public enum VhostUserRequestCode: UInt32, Sendable, CaseIterable {
    case getFeatures = 1, setFeatures = 2, setOwner = 3, resetOwner = 4, setMemoryTable = 5
    case setLogBase = 6, setLogFD = 7
    case setVringNum = 8, setVringAddress = 9, setVringBase = 10, getVringBase = 11
    case setVringKick = 12, setVringCall = 13, setVringErr = 14
    case getProtocolFeatures = 15, setProtocolFeatures = 16, getQueueNum = 17, setVringEnable = 18
    case sendRARP = 19, netSetMTU = 20
    case getConfig = 24, setConfig = 25
    case getMaxMemorySlots = 36, addMemoryRegion = 37, removeMemoryRegion = 38
    case setStatus = 39, getStatus = 40
}

/// vhost-user protocol feature bits (GET/SET_PROTOCOL_FEATURES), vhost-user.rst "Protocol features".
public struct VhostUserProtocolFeatures: OptionSet, Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    /// VHOST_USER_PROTOCOL_F_MQ (0): GET_QUEUE_NUM.
    public static let multipleQueues = VhostUserProtocolFeatures(rawValue: 1 << 0)
    /// The spec's short name for ``multipleQueues``.
    public static let mq = multipleQueues
    /// VHOST_USER_PROTOCOL_F_LOG_SHMFD (1): dirty-page logging in shared memory.
    public static let logSharedMemory = VhostUserProtocolFeatures(rawValue: 1 << 1)
    /// VHOST_USER_PROTOCOL_F_RARP (2): SEND_RARP after migration.
    public static let rarp = VhostUserProtocolFeatures(rawValue: 1 << 2)
    /// VHOST_USER_PROTOCOL_F_REPLY_ACK (3): need_reply on any request.
    public static let replyAck = VhostUserProtocolFeatures(rawValue: 1 << 3)
    /// VHOST_USER_PROTOCOL_F_NET_MTU (4): NET_SET_MTU.
    public static let netMTU = VhostUserProtocolFeatures(rawValue: 1 << 4)
    /// VHOST_USER_PROTOCOL_F_BACKEND_REQ (5): the back-end's own request channel.
    public static let backendRequests = VhostUserProtocolFeatures(rawValue: 1 << 5)
    /// VHOST_USER_PROTOCOL_F_CROSS_ENDIAN (6).
    public static let crossEndian = VhostUserProtocolFeatures(rawValue: 1 << 6)
    /// VHOST_USER_PROTOCOL_F_CRYPTO_SESSION (7).
    public static let cryptoSession = VhostUserProtocolFeatures(rawValue: 1 << 7)
    /// VHOST_USER_PROTOCOL_F_PAGEFAULT (8): postcopy migration.
    public static let pageFault = VhostUserProtocolFeatures(rawValue: 1 << 8)
    /// VHOST_USER_PROTOCOL_F_CONFIG (9): GET/SET_CONFIG.
    public static let config = VhostUserProtocolFeatures(rawValue: 1 << 9)
    /// VHOST_USER_PROTOCOL_F_BACKEND_SEND_FD (10).
    public static let backendSendFileDescriptor = VhostUserProtocolFeatures(rawValue: 1 << 10)
    /// VHOST_USER_PROTOCOL_F_HOST_NOTIFIER (11).
    public static let hostNotifier = VhostUserProtocolFeatures(rawValue: 1 << 11)
    /// VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD (12).
    public static let inflightSharedMemory = VhostUserProtocolFeatures(rawValue: 1 << 12)
    /// VHOST_USER_PROTOCOL_F_RESET_DEVICE (13).
    public static let resetDevice = VhostUserProtocolFeatures(rawValue: 1 << 13)
    /// VHOST_USER_PROTOCOL_F_INBAND_NOTIFICATIONS (14).
    public static let inbandNotifications = VhostUserProtocolFeatures(rawValue: 1 << 14)
    /// VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS (15): GET_MAX_MEM_SLOTS, ADD/REM_MEM_REG.
    public static let configureMemorySlots = VhostUserProtocolFeatures(rawValue: 1 << 15)
    /// VHOST_USER_PROTOCOL_F_STATUS (16): SET/GET_STATUS.
    public static let status = VhostUserProtocolFeatures(rawValue: 1 << 16)

    static let named: [(VhostUserProtocolFeatures, String)] = [
        (.multipleQueues, "MQ"), (.logSharedMemory, "LOG_SHMFD"), (.rarp, "RARP"), (.replyAck, "REPLY_ACK"),
        (.netMTU, "NET_MTU"), (.backendRequests, "BACKEND_REQ"), (.crossEndian, "CROSS_ENDIAN"),
        (.cryptoSession, "CRYPTO_SESSION"), (.pageFault, "PAGEFAULT"), (.config, "CONFIG"),
        (.backendSendFileDescriptor, "BACKEND_SEND_FD"), (.hostNotifier, "HOST_NOTIFIER"),
        (.inflightSharedMemory, "INFLIGHT_SHMFD"), (.resetDevice, "RESET_DEVICE"),
        (.inbandNotifications, "INBAND_NOTIFICATIONS"), (.configureMemorySlots, "CONFIGURE_MEM_SLOTS"), (.status, "STATUS"),
    ]

    /// The spec's names of the bits set (without the VHOST_USER_PROTOCOL_F_ prefix), lowest
    /// first; a bit the spec names after STATUS shows as `bit N`.
    public var names: [String] {
        (0..<64).compactMap { bit -> String? in
            let feature = VhostUserProtocolFeatures(rawValue: 1 << UInt64(bit))
            guard contains(feature) else { return nil }
            return Self.named.first { $0.0 == feature }?.1 ?? "bit \(bit)"
        }
    }
}

/// `VhostUserMemoryRegion`: one guest memory region; its fd travels beside the message.
public struct VhostUserMemoryRegion: Hashable, Sendable {
    public var guestPhysicalAddress: UInt64
    public var size: UInt64
    /// Where the front-end has it mapped (the addresses its SET_VRING_ADDR uses).
    public var userAddress: UInt64
    public var mmapOffset: UInt64
    public init(guestPhysicalAddress: UInt64, size: UInt64, userAddress: UInt64, mmapOffset: UInt64) {
        self.guestPhysicalAddress = guestPhysicalAddress
        self.size = size
        self.userAddress = userAddress
        self.mmapOffset = mmapOffset
    }
}

/// `struct vhost_vring_addr` as vhost-user carries it: front-end user addresses.
public struct VhostUserVringAddress: Hashable, Sendable {
    public var index: UInt32
    public var flags: UInt32
    public var descriptorTable: UInt64
    public var usedRing: UInt64
    public var availableRing: UInt64
    public var logGuestAddress: UInt64
    public init(index: UInt32, flags: UInt32 = 0, descriptorTable: UInt64, usedRing: UInt64, availableRing: UInt64, logGuestAddress: UInt64 = 0) {
        self.index = index
        self.flags = flags
        self.descriptorTable = descriptorTable
        self.usedRing = usedRing
        self.availableRing = availableRing
        self.logGuestAddress = logGuestAddress
    }
}

/// `struct vhost_vring_state`.
public struct VhostUserVringState: Hashable, Sendable {
    public var index: UInt32
    public var num: UInt32
    public init(index: UInt32, num: UInt32) {
        self.index = index
        self.num = num
    }
}

/// One decoded front-end request. File descriptors travel beside the message (SCM_RIGHTS).
public enum VhostUserRequest: Hashable, Sendable {
    case getFeatures
    case setFeatures(UInt64)
    case setOwner
    case resetOwner
    /// Exactly one fd per region, in order.
    case setMemoryTable([VhostUserMemoryRegion])
    case setVringNum(VhostUserVringState)
    case setVringAddress(VhostUserVringAddress)
    case setVringBase(VhostUserVringState)
    case getVringBase(index: UInt32)
    /// u64 payload: the index in bits 0–7, bit 8 set when no fd comes (VHOST_USER_VRING_NOFD_MASK).
    case setVringKick(index: UInt32, hasFileDescriptor: Bool)
    case setVringCall(index: UInt32, hasFileDescriptor: Bool)
    case setVringErr(index: UInt32, hasFileDescriptor: Bool)
    case getProtocolFeatures
    case setProtocolFeatures(UInt64)
    case getQueueNum
    case setVringEnable(VhostUserVringState)
    case getConfig(offset: UInt32, size: UInt32, flags: UInt32)
    case setConfig(offset: UInt32, flags: UInt32, bytes: [UInt8])
    case setStatus(UInt8)
    case getStatus
    case getMaxMemorySlots
    /// A well-formed message vdpad does not implement.
    case unsupported(code: UInt32)

    /// Whether the request has a reply of its own (the GET_* requests).
    public var hasReply: Bool {
        switch self {
        case .getFeatures, .getVringBase, .getProtocolFeatures, .getQueueNum, .getConfig, .getStatus, .getMaxMemorySlots: true
        default: false
        }
    }
}

/// The 12-byte message header: request, flags (version 1 in bits 0–1, reply bit 2,
/// need_reply bit 3), payload size.
public struct VhostUserHeader: Hashable, Sendable {
    public static let byteCount = 12
    public static let version: UInt32 = 0x1
    public static let versionMask: UInt32 = 0x3
    public static let replyFlag: UInt32 = 1 << 2
    public static let needReplyFlag: UInt32 = 1 << 3

    public var request: UInt32
    public var flags: UInt32
    public var size: UInt32
    public init(request: UInt32, flags: UInt32, size: UInt32) {
        self.request = request
        self.flags = flags
        self.size = size
    }
}

/// A malformed vhost-user message: what was wrong with which request.
public struct VhostUserError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Encodes and decodes vhost-user messages (little-endian, as the spec requires). Decoding
/// takes bytes from a possibly hostile front-end: it checks every size and never traps.
public enum VhostUserCodec {
    /// The largest payload accepted: a memory table of 8 regions is 8 + 8×32 bytes; a config
    /// access is 12 + at most 256 bytes.
    public static let maximumPayloadSize = 4096
    /// VHOST_MEMORY_BASELINE_NREGIONS.
    public static let maximumFileDescriptors = 8
    static let maximumConfigSize: UInt32 = 256
    static let noFileDescriptorMask: UInt64 = 1 << 8

    public static func decodeHeader(_ bytes: some Collection<UInt8>) throws(VhostUserError) -> VhostUserHeader {
        let bytes = Array(bytes)
        guard bytes.count == VhostUserHeader.byteCount else { throw VhostUserError("header of \(bytes.count) bytes") }
        let header = VhostUserHeader(request: le32(bytes, 0), flags: le32(bytes, 4), size: le32(bytes, 8))
        guard header.flags & VhostUserHeader.versionMask == VhostUserHeader.version else {
            throw VhostUserError("request \(header.request): version \(header.flags & VhostUserHeader.versionMask), expected 1")
        }
        guard header.size <= UInt32(maximumPayloadSize) else {
            throw VhostUserError("request \(header.request): payload of \(header.size) bytes is over \(maximumPayloadSize)")
        }
        return header
    }

    public static func needsReply(_ header: VhostUserHeader) -> Bool { header.flags & VhostUserHeader.needReplyFlag != 0 }

    public static func decodeRequest(header: VhostUserHeader, payload: [UInt8], fileDescriptorCount: Int) throws(VhostUserError) -> VhostUserRequest {
        guard let code = VhostUserRequestCode(rawValue: header.request) else { return .unsupported(code: header.request) }
        func size(_ expected: Int) throws(VhostUserError) {
            guard payload.count == expected else { throw VhostUserError("\(code): payload of \(payload.count) bytes, expected \(expected)") }
        }
        func noFileDescriptors() throws(VhostUserError) {
            guard fileDescriptorCount == 0 else { throw VhostUserError("\(code): \(fileDescriptorCount) unexpected file descriptors") }
        }
        func u64() throws(VhostUserError) -> UInt64 {
            try size(8)
            return le64(payload, 0)
        }
        func vringState() throws(VhostUserError) -> VhostUserVringState {
            try size(8)
            return VhostUserVringState(index: le32(payload, 0), num: le32(payload, 4))
        }
        func vringFile() throws(VhostUserError) -> (UInt32, Bool) {
            let value = try u64()
            let hasFD = value & noFileDescriptorMask == 0
            guard fileDescriptorCount == (hasFD ? 1 : 0) else {
                throw VhostUserError("\(code): \(fileDescriptorCount) file descriptors, expected \(hasFD ? 1 : 0)")
            }
            return (UInt32(value & 0xff), hasFD)
        }
        switch code {
        case .getFeatures, .setOwner, .resetOwner, .getProtocolFeatures, .getQueueNum, .getStatus, .getMaxMemorySlots:
            try noFileDescriptors()
            // Some front-ends send a zero u64 with requests that have none; accept 0 or 8 bytes.
            guard payload.isEmpty || payload.count == 8 else { throw VhostUserError("\(code): payload of \(payload.count) bytes") }
            switch code {
            case .getFeatures: return .getFeatures
            case .setOwner: return .setOwner
            case .resetOwner: return .resetOwner
            case .getProtocolFeatures: return .getProtocolFeatures
            case .getQueueNum: return .getQueueNum
            case .getStatus: return .getStatus
            default: return .getMaxMemorySlots
            }
        case .setFeatures:
            try noFileDescriptors()
            return .setFeatures(try u64())
        case .setProtocolFeatures:
            try noFileDescriptors()
            return .setProtocolFeatures(try u64())
        case .setMemoryTable:
            guard payload.count >= 8 else { throw VhostUserError("\(code): payload of \(payload.count) bytes") }
            let count = Int(le32(payload, 0))
            guard count >= 1, count <= maximumFileDescriptors else { throw VhostUserError("\(code): \(count) regions (1…\(maximumFileDescriptors))") }
            try size(8 + 32 * count)
            guard fileDescriptorCount == count else { throw VhostUserError("\(code): \(count) regions but \(fileDescriptorCount) file descriptors") }
            var regions: [VhostUserMemoryRegion] = []
            for index in 0..<count {
                let base = 8 + 32 * index
                let region = VhostUserMemoryRegion(guestPhysicalAddress: le64(payload, base), size: le64(payload, base + 8),
                                                   userAddress: le64(payload, base + 16), mmapOffset: le64(payload, base + 24))
                guard region.size > 0,
                      region.guestPhysicalAddress.addingReportingOverflow(region.size).overflow == false,
                      region.userAddress.addingReportingOverflow(region.size).overflow == false,
                      region.mmapOffset.addingReportingOverflow(region.size).overflow == false
                else { throw VhostUserError("\(code): region \(index) is empty or wraps around") }
                regions.append(region)
            }
            return .setMemoryTable(regions)
        case .setVringNum:
            try noFileDescriptors()
            return .setVringNum(try vringState())
        case .setVringBase:
            try noFileDescriptors()
            return .setVringBase(try vringState())
        case .setVringEnable:
            try noFileDescriptors()
            return .setVringEnable(try vringState())
        case .getVringBase:
            try noFileDescriptors()
            return .getVringBase(index: try vringState().index)
        case .setVringAddress:
            try noFileDescriptors()
            try size(40)
            return .setVringAddress(VhostUserVringAddress(index: le32(payload, 0), flags: le32(payload, 4), descriptorTable: le64(payload, 8),
                                                          usedRing: le64(payload, 16), availableRing: le64(payload, 24), logGuestAddress: le64(payload, 32)))
        case .setVringKick:
            let (index, hasFD) = try vringFile()
            return .setVringKick(index: index, hasFileDescriptor: hasFD)
        case .setVringCall:
            let (index, hasFD) = try vringFile()
            return .setVringCall(index: index, hasFileDescriptor: hasFD)
        case .setVringErr:
            let (index, hasFD) = try vringFile()
            return .setVringErr(index: index, hasFileDescriptor: hasFD)
        case .getConfig, .setConfig:
            try noFileDescriptors()
            guard payload.count >= 12 else { throw VhostUserError("\(code): payload of \(payload.count) bytes") }
            let offset = le32(payload, 0), length = le32(payload, 4), flags = le32(payload, 8)
            guard length <= maximumConfigSize else { throw VhostUserError("\(code): config size \(length) is over \(maximumConfigSize)") }
            try size(12 + Int(length))
            if code == .getConfig { return .getConfig(offset: offset, size: length, flags: flags) }
            return .setConfig(offset: offset, flags: flags, bytes: Array(payload[12...]))
        case .setStatus:
            try noFileDescriptors()
            let value = try u64()
            guard value <= 0xff else { throw VhostUserError("\(code): status \(value) is over 8 bits") }
            return .setStatus(UInt8(value))
        case .setLogBase, .setLogFD, .sendRARP, .netSetMTU, .addMemoryRegion, .removeMemoryRegion:
            return .unsupported(code: header.request)
        }
    }

    // MARK: encoding

    static func message(_ request: UInt32, flags: UInt32, payload: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(VhostUserHeader.byteCount + payload.count)
        put32(&bytes, request)
        put32(&bytes, flags | VhostUserHeader.version)
        put32(&bytes, UInt32(payload.count))
        return bytes + payload
    }

    public static func encodeReply(to request: UInt32, u64 value: UInt64) -> [UInt8] {
        var payload: [UInt8] = []
        put64(&payload, value)
        return message(request, flags: VhostUserHeader.replyFlag, payload: payload)
    }

    public static func encodeReply(to request: UInt32, vringState: VhostUserVringState) -> [UInt8] {
        var payload: [UInt8] = []
        put32(&payload, vringState.index)
        put32(&payload, vringState.num)
        return message(request, flags: VhostUserHeader.replyFlag, payload: payload)
    }

    public static func encodeReply(to request: UInt32, config offset: UInt32, flags: UInt32, bytes: [UInt8]) -> [UInt8] {
        message(request, flags: VhostUserHeader.replyFlag, payload: configPayload(offset: offset, flags: flags, size: UInt32(bytes.count), bytes: bytes))
    }

    static func configPayload(offset: UInt32, flags: UInt32, size: UInt32, bytes: [UInt8]) -> [UInt8] {
        var payload: [UInt8] = []
        put32(&payload, offset)
        put32(&payload, size)
        put32(&payload, flags)
        return payload + bytes
    }

    /// A front-end request (tests and the mini VMM play the front-end).
    public static func encodeRequest(_ request: VhostUserRequest, needReply: Bool) -> [UInt8] {
        var payload: [UInt8] = []
        let code: UInt32
        func state(_ s: VhostUserVringState) { put32(&payload, s.index); put32(&payload, s.num) }
        func file(_ index: UInt32, _ hasFD: Bool) { put64(&payload, UInt64(index & 0xff) | (hasFD ? 0 : noFileDescriptorMask)) }
        switch request {
        case .getFeatures: code = VhostUserRequestCode.getFeatures.rawValue
        case .setFeatures(let value): code = VhostUserRequestCode.setFeatures.rawValue; put64(&payload, value)
        case .setOwner: code = VhostUserRequestCode.setOwner.rawValue
        case .resetOwner: code = VhostUserRequestCode.resetOwner.rawValue
        case .setMemoryTable(let regions):
            code = VhostUserRequestCode.setMemoryTable.rawValue
            put32(&payload, UInt32(regions.count))
            put32(&payload, 0)
            for region in regions {
                put64(&payload, region.guestPhysicalAddress)
                put64(&payload, region.size)
                put64(&payload, region.userAddress)
                put64(&payload, region.mmapOffset)
            }
        case .setVringNum(let s): code = VhostUserRequestCode.setVringNum.rawValue; state(s)
        case .setVringAddress(let a):
            code = VhostUserRequestCode.setVringAddress.rawValue
            put32(&payload, a.index)
            put32(&payload, a.flags)
            put64(&payload, a.descriptorTable)
            put64(&payload, a.usedRing)
            put64(&payload, a.availableRing)
            put64(&payload, a.logGuestAddress)
        case .setVringBase(let s): code = VhostUserRequestCode.setVringBase.rawValue; state(s)
        case .getVringBase(let index): code = VhostUserRequestCode.getVringBase.rawValue; state(VhostUserVringState(index: index, num: 0))
        case .setVringKick(let index, let hasFD): code = VhostUserRequestCode.setVringKick.rawValue; file(index, hasFD)
        case .setVringCall(let index, let hasFD): code = VhostUserRequestCode.setVringCall.rawValue; file(index, hasFD)
        case .setVringErr(let index, let hasFD): code = VhostUserRequestCode.setVringErr.rawValue; file(index, hasFD)
        case .getProtocolFeatures: code = VhostUserRequestCode.getProtocolFeatures.rawValue
        case .setProtocolFeatures(let value): code = VhostUserRequestCode.setProtocolFeatures.rawValue; put64(&payload, value)
        case .getQueueNum: code = VhostUserRequestCode.getQueueNum.rawValue
        case .setVringEnable(let s): code = VhostUserRequestCode.setVringEnable.rawValue; state(s)
        case .getConfig(let offset, let size, let flags):
            code = VhostUserRequestCode.getConfig.rawValue
            payload = configPayload(offset: offset, flags: flags, size: size, bytes: [UInt8](repeating: 0, count: Int(min(size, maximumConfigSize))))
        case .setConfig(let offset, let flags, let bytes):
            code = VhostUserRequestCode.setConfig.rawValue
            payload = configPayload(offset: offset, flags: flags, size: UInt32(bytes.count), bytes: bytes)
        case .setStatus(let value): code = VhostUserRequestCode.setStatus.rawValue; put64(&payload, UInt64(value))
        case .getStatus: code = VhostUserRequestCode.getStatus.rawValue
        case .getMaxMemorySlots: code = VhostUserRequestCode.getMaxMemorySlots.rawValue
        case .unsupported(let raw): code = raw
        }
        return message(code, flags: needReply ? VhostUserHeader.needReplyFlag : 0, payload: payload)
    }

    /// The u64 of a reply (features, acks, queue counts).
    public static func decodeReplyU64(header: VhostUserHeader, payload: [UInt8]) throws(VhostUserError) -> UInt64 {
        guard header.flags & VhostUserHeader.replyFlag != 0, payload.count == 8 else {
            throw VhostUserError("reply to \(header.request): \(payload.count) bytes, flags 0x\(String(header.flags, radix: 16))")
        }
        return le64(payload, 0)
    }

    public static func decodeReplyVringState(header: VhostUserHeader, payload: [UInt8]) throws(VhostUserError) -> VhostUserVringState {
        guard header.flags & VhostUserHeader.replyFlag != 0, payload.count == 8 else {
            throw VhostUserError("reply to \(header.request): \(payload.count) bytes")
        }
        return VhostUserVringState(index: le32(payload, 0), num: le32(payload, 4))
    }

    public static func decodeReplyConfig(header: VhostUserHeader, payload: [UInt8]) throws(VhostUserError) -> [UInt8] {
        guard header.flags & VhostUserHeader.replyFlag != 0, payload.count >= 12, payload.count == 12 + Int(le32(payload, 4)) else {
            throw VhostUserError("reply to \(header.request): \(payload.count) bytes")
        }
        return Array(payload[12...])
    }

    // MARK: little-endian helpers (callers check sizes first)

    static func le32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * UInt32($1)) }
    }

    static func le64(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
    }

    static func put32(_ bytes: inout [UInt8], _ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    static func put64(_ bytes: inout [UInt8], _ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
}

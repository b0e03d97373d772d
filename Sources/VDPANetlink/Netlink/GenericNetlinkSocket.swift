internal import CLibNL
import VDPASystem

/// One reply message of a generic netlink request: its command and attribute bytes.
struct GenericNetlinkReply {
    var command: UInt8
    var attributeBytes: [UInt8]
}

/// A libnl generic netlink socket bound to one family. It has one owner and is
/// not thread-safe (libnl sockets are not); ``NetlinkVDPAClient`` serialises use.
///
/// Requests are sent with libnl, replies are copied out of libnl's buffers in the
/// receive callbacks and parsed in Swift (``NetlinkAttributeSet``), and kernel
/// errors keep their errno and extended-ack text (``ExtendedAck``), apart from
/// libnl's own error codes.
final class GenericNetlinkSocket {
    private let socket: OpaquePointer
    let familyID: Int32

    /// Connects and resolves `familyName`; throws `.familyUnavailable` when the kernel lacks it.
    init(familyName: String) throws(VDPAError) {
        guard let socket = nl_socket_alloc() else {
            throw .netlinkLibrary(operation: "nl_socket_alloc", code: -Int32(NLE_NOMEM), message: "out of memory")
        }
        self.socket = socket
        var rc = genl_connect(socket)
        guard rc == 0 else {
            nl_socket_free(socket)
            throw Self.libraryError("genl_connect", rc)
        }
        // Acks only where the request asks for one (doit), never on dumps.
        nl_socket_disable_auto_ack(socket)
        // NETLINK_EXT_ACK: the kernel adds its reason text to errors.
        // NETLINK_CAP_ACK: errors carry only the header of our request, not all of it.
        let fd = nl_socket_get_fd(socket)
        try? SocketOptions.enable(fd: fd, level: clibnl_sol_netlink(), option: 11)
        try? SocketOptions.enable(fd: fd, level: clibnl_sol_netlink(), option: 10)
        rc = genl_ctrl_resolve(socket, familyName)
        guard rc >= 0 else {
            nl_socket_free(socket)
            if rc == -Int32(NLE_OBJ_NOTFOUND) {
                throw .familyUnavailable(reason: "generic netlink family '\(familyName)' not found (is the vdpa module loaded?)")
            }
            throw Self.libraryError("genl_ctrl_resolve(\(familyName))", rc)
        }
        familyID = rc
    }

    deinit { nl_socket_free(socket) }

    /// Builds a request message; exposed for byte-level tests of the encoding.
    static func encode(familyID: Int32, command: UInt8, flags: Int32, attributes: [EncodedAttribute]) throws(VDPAError) -> OwnedMessage {
        guard let message = nlmsg_alloc() else {
            throw .netlinkLibrary(operation: "nlmsg_alloc", code: -Int32(NLE_NOMEM), message: "out of memory")
        }
        let owned = OwnedMessage(message)
        guard genlmsg_put(message, UInt32(NL_AUTO_PORT), UInt32(NL_AUTO_SEQ), familyID, 0, flags, command, VDPAFamily.version) != nil else {
            throw .netlinkLibrary(operation: "genlmsg_put", code: -Int32(NLE_NOMEM), message: "message too small")
        }
        for attribute in attributes {
            let type = Int32(attribute.type)
            let rc: Int32 = switch attribute.value {
            case .u16(let value): nla_put_u16(message, type, value)
            case .u32(let value): nla_put_u32(message, type, value)
            case .u64(let value): nla_put_u64(message, type, value)
            case .string(let value): nla_put_string(message, type, value)
            case .binary(let bytes): bytes.withUnsafeBytes { nla_put(message, type, Int32($0.count), $0.baseAddress) }
            }
            guard rc == 0 else { throw Self.libraryError("nla_put(\(attribute.type))", rc) }
        }
        return owned
    }

    /// Sends one request and collects its replies until the kernel's ACK (doit),
    /// NLMSG_DONE (dump) or error.
    func request(command: UInt8, dump: Bool, attributes: [EncodedAttribute], operation: String) throws(VDPAError) -> [GenericNetlinkReply] {
        let flags = dump ? Int32(NLM_F_DUMP) : Int32(NLM_F_ACK)
        let message = try Self.encode(familyID: familyID, command: command, flags: flags, attributes: attributes)
        let sent = nl_send_auto(socket, message.pointer)
        guard sent >= 0 else { throw Self.libraryError("\(operation): nl_send_auto", sent) }

        guard let callbacks = nl_cb_alloc(NL_CB_DEFAULT) else {
            throw .netlinkLibrary(operation: "nl_cb_alloc", code: -Int32(NLE_NOMEM), message: "out of memory")
        }
        defer { nl_cb_put(callbacks) }
        let collector = ReplyCollector()
        // SAFETY: `collector` outlives every callback: the callbacks run only inside
        // nl_recvmsgs below, and `withExtendedLifetime` keeps it alive until then.
        let context = Unmanaged.passUnretained(collector).toOpaque()
        nl_cb_set(callbacks, NL_CB_VALID, NL_CB_CUSTOM, genericNetlinkValidCallback, context)
        nl_cb_set(callbacks, NL_CB_FINISH, NL_CB_CUSTOM, genericNetlinkFinishCallback, context)
        nl_cb_set(callbacks, NL_CB_ACK, NL_CB_CUSTOM, genericNetlinkAckCallback, context)
        nl_cb_err(callbacks, NL_CB_CUSTOM, genericNetlinkErrorCallback, context)
        try withExtendedLifetime(collector) { () throws(VDPAError) in
            while !collector.finished {
                let rc = nl_recvmsgs(socket, callbacks)
                if let errorBytes = collector.errorMessage {
                    let ack = ExtendedAck(errorMessage: errorBytes)
                    throw .kernel(operation: operation, errno: ack?.errno ?? 0, extack: ack?.message)
                }
                if let malformed = collector.malformed {
                    throw .malformedReply(operation: operation, detail: malformed)
                }
                guard rc >= 0 else { throw Self.libraryError(operation, rc) }
            }
        }
        return collector.replies
    }

    private static func libraryError(_ operation: String, _ code: Int32) -> VDPAError {
        let text = nl_geterror(code).map { String(cString: $0) } ?? "unknown"
        return .netlinkLibrary(operation: operation, code: code, message: text)
    }
}

/// An attribute to put into a request, with the width the kernel's policy expects.
struct EncodedAttribute {
    enum Value {
        case u16(UInt16)
        case u32(UInt32)
        case u64(UInt64)
        case string(String)
        case binary([UInt8])
    }
    var type: UInt16
    var value: Value
}

/// An `nl_msg` with one owner, freed synchronously in `deinit`.
final class OwnedMessage {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { nlmsg_free(pointer) }

    /// The complete message as it would be sent (header included).
    var bytes: [UInt8] {
        let header = nlmsg_hdr(pointer)!
        // SAFETY: libnl keeps the message contiguous; nlmsg_len covers the header and payload.
        return Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(header), count: Int(header.pointee.nlmsg_len)))
    }
}

/// Receives what the callbacks copy out of libnl's buffers.
final class ReplyCollector {
    var replies: [GenericNetlinkReply] = []
    var finished = false
    var errorMessage: [UInt8]?
    var malformed: String?
}

private func collector(_ context: UnsafeMutableRawPointer?) -> ReplyCollector {
    // SAFETY: every callback is registered with a ReplyCollector kept alive by request().
    Unmanaged<ReplyCollector>.fromOpaque(context!).takeUnretainedValue()
}

private func genericNetlinkValidCallback(_ message: OpaquePointer?, _ context: UnsafeMutableRawPointer?) -> Int32 {
    let collector = collector(context)
    guard let message, let header = nlmsg_hdr(message) else { return Int32(NL_SKIP.rawValue) }
    let total = Int(header.pointee.nlmsg_len)
    let headersSize = Int(clibnl_nlmsg_hdrlen() + clibnl_genl_hdrlen())
    guard total >= headersSize else {
        collector.malformed = "generic netlink message of \(total) bytes"
        return Int32(NL_STOP.rawValue)
    }
    // SAFETY: the message is `total` bytes long (libnl validated nlmsg_len against what
    // it received); the generic header follows the netlink header, attributes follow it.
    let base = UnsafeRawPointer(header)
    let command = base.load(fromByteOffset: Int(clibnl_nlmsg_hdrlen()), as: UInt8.self)
    let attributes = Array(UnsafeRawBufferPointer(start: base + headersSize, count: total - headersSize))
    collector.replies.append(GenericNetlinkReply(command: command, attributeBytes: attributes))
    return Int32(NL_OK.rawValue)
}

private func genericNetlinkFinishCallback(_ message: OpaquePointer?, _ context: UnsafeMutableRawPointer?) -> Int32 {
    collector(context).finished = true
    return Int32(NL_STOP.rawValue)
}

private func genericNetlinkAckCallback(_ message: OpaquePointer?, _ context: UnsafeMutableRawPointer?) -> Int32 {
    collector(context).finished = true
    return Int32(NL_STOP.rawValue)
}

private func genericNetlinkErrorCallback(
    _ address: UnsafeMutablePointer<sockaddr_nl>?,
    _ error: UnsafeMutablePointer<nlmsgerr>?,
    _ context: UnsafeMutableRawPointer?
) -> Int32 {
    let collector = collector(context)
    collector.finished = true
    guard let error else { return Int32(NL_STOP.rawValue) }
    // SAFETY: `struct nlmsgerr` is the payload of an NLMSG_ERROR message, so its
    // netlink header sits NLMSG_HDRLEN bytes before it in libnl's receive buffer,
    // and nlmsg_len (checked by libnl against the received size) bounds the message.
    let header = UnsafeRawPointer(error) - Int(clibnl_nlmsg_hdrlen())
    let length = Int(header.load(as: UInt32.self))
    collector.errorMessage = Array(UnsafeRawBufferPointer(start: header, count: max(length, Int(clibnl_nlmsg_hdrlen()) + 4)))
    return Int32(NL_STOP.rawValue)
}

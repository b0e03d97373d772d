import Foundation

/// A JSON-RPC 2.0 request id: a string or a number (null is not an id here:
/// a request without an id is a notification).
public enum RPCRequestID: Hashable, Sendable, Codable, CustomStringConvertible {
    case number(Int64)
    case string(String)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int64.self) {
            self = .number(number)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .number(let number): try container.encode(number)
        case .string(let string): try container.encode(string)
        }
    }

    public var description: String {
        switch self {
        case .number(let number): "\(number)"
        case .string(let string): string
        }
    }
}

/// The part of a request every method shares: decoded first, then the params
/// are decoded into the method's own type from the same bytes.
public struct RPCRequestHeader: Decodable, Sendable {
    public var jsonrpc: String?
    public var id: RPCRequestID?
    public var method: String
    /// Whether the id member was present (an explicit `"id": null` is an invalid request).
    public var hasID: Bool

    private enum CodingKeys: String, CodingKey { case jsonrpc, id, method }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        jsonrpc = try container.decodeIfPresent(String.self, forKey: .jsonrpc)
        hasID = container.contains(.id)
        id = try container.decodeIfPresent(RPCRequestID.self, forKey: .id)
        method = try container.decode(String.self, forKey: .method)
    }
}

/// A request with its params decoded as `Params`.
public struct RPCRequest<Params: Codable & Sendable>: Codable, Sendable {
    public var jsonrpc: String = "2.0"
    public var id: RPCRequestID?
    public var method: String
    public var params: Params?

    public init(id: RPCRequestID?, method: String, params: Params?) {
        self.id = id
        self.method = method
        self.params = params
    }
}

/// The error member of a response (JSON-RPC 2.0 §5.1).
public struct RPCErrorObject: Codable, Hashable, Sendable, Error, CustomStringConvertible {
    public var code: Int
    public var message: String
    public var data: RPCErrorData?

    public init(code: RPCErrorCode, message: String, data: RPCErrorData? = nil) {
        self.code = code.rawValue
        self.message = message
        self.data = data
    }

    public var errorCode: RPCErrorCode? { RPCErrorCode(rawValue: code) }

    public var description: String { message }
}

/// What an error's `data` carries: the kernel's errno and extended-ack text where
/// the kernel refused, the operation that failed, and the offending parameter.
public struct RPCErrorData: Codable, Hashable, Sendable {
    /// The positive errno value.
    public var errno: Int32?
    /// Its symbolic name, e.g. "ENODEV".
    public var errnoName: String?
    /// The kernel's extended acknowledgement text, e.g. "vdpa: Fail to find the specified management device".
    public var extack: String?
    /// The kernel operation or step that failed, e.g. "VDPA_CMD_DEV_NEW vdpa0".
    public var operation: String?
    /// The request parameter at fault.
    public var parameter: String?
    /// Every reason, when there are several (an invalid profile, an incompatible destination).
    public var reasons: [RPCErrorReason]?

    public init(errno: Int32? = nil, errnoName: String? = nil, extack: String? = nil, operation: String? = nil, parameter: String? = nil, reasons: [RPCErrorReason]? = nil) {
        self.errno = errno
        self.errnoName = errnoName
        self.extack = extack
        self.operation = operation
        self.parameter = parameter
        self.reasons = reasons
    }

    private enum CodingKeys: String, CodingKey {
        case errno, errnoName = "errno_name", extack, operation, parameter, reasons
    }
}

/// One reason of an error that has several, with a stable code for programs (a profile's
/// `ProfileIssue.Code`, a compatibility check's `CompatibilityReason.Code`) and the details
/// that apply to it.
public struct RPCErrorReason: Codable, Hashable, Sendable, CustomStringConvertible {
    public var code: String
    public var message: String
    /// "error" or "warning" (profile validation).
    public var severity: String?
    /// Feature names the reason is about.
    public var features: [String]?
    /// The quirk that caused it.
    public var quirk: String?
    /// The provisioning attribute it is about ("mac", "mtu", "max_vqp", "device_features").
    public var attribute: String?
    public var requested: Int?
    public var limit: Int?

    public init(code: String, message: String, severity: String? = nil, features: [String]? = nil, quirk: String? = nil, attribute: String? = nil, requested: Int? = nil, limit: Int? = nil) {
        self.code = code
        self.message = message
        self.severity = severity
        self.features = features
        self.quirk = quirk
        self.attribute = attribute
        self.requested = requested
        self.limit = limit
    }

    public var description: String { message }
}

/// A response: `result` or `error`.
public struct RPCResponse<Result: Codable & Sendable>: Codable, Sendable {
    public var jsonrpc: String = "2.0"
    public var id: RPCRequestID?
    public var result: Result?
    public var error: RPCErrorObject?

    public init(id: RPCRequestID?, result: Result) {
        self.id = id
        self.result = result
    }

    public init(id: RPCRequestID?, error: RPCErrorObject) {
        self.id = id
        self.error = error
    }

    private enum CodingKeys: String, CodingKey { case jsonrpc, id, result, error }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(jsonrpc, forKey: .jsonrpc)
        // JSON-RPC: id is null when the request's id could not be determined.
        if let id { try container.encode(id, forKey: .id) } else { try container.encodeNil(forKey: .id) }
        if let error { try container.encode(error, forKey: .error) } else { try container.encode(result, forKey: .result) }
    }
}

/// A server-pushed notification (no id).
public struct RPCNotification<Params: Codable & Sendable>: Codable, Sendable {
    public var jsonrpc: String = "2.0"
    public var method: String
    public var params: Params

    public init(method: String, params: Params) {
        self.method = method
        self.params = params
    }
}

/// The response shape a client decodes before it knows whether it got a result,
/// an error, or a notification.
public struct RPCIncomingMessage<Result: Decodable & Sendable>: Decodable, Sendable {
    public var id: RPCRequestID?
    public var method: String?
    public var result: Result?
    public var error: RPCErrorObject?
}

/// Empty params or result (`{}`).
public struct RPCEmpty: Codable, Hashable, Sendable {
    public init() {}
}

/// The JSON encoding the daemon and the client share: keys sorted (stable output
/// for diffs, docs and tests) and "/" left unescaped (paths stay readable).
public enum RPCJSON {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        Array(try encoder().encode(value))
    }
}

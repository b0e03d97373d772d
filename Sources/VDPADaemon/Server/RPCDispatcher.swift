import Foundation
import VDPAPolicy
import VDPARPC

/// What handling one request line produced.
public enum RPCDispatchOutcome: Sendable {
    /// Send these bytes (a response line without its newline).
    case reply([UInt8])
    /// A notification (no id): nothing to send.
    case none
    /// Reply, then start pushing events to this connection.
    case subscribe(reply: [UInt8], id: RPCRequestID?)
    /// A response line in three parts: `body` is a result encoded once and shared by
    /// every answer (a large `dev_list`), so the transport copies it once, into the socket
    /// buffer, instead of the dispatcher building a new line around it.
    case splicedReply(head: [UInt8], body: [UInt8], tail: [UInt8])

    /// The response line (without its newline), if there is one.
    public var responseLine: [UInt8]? {
        switch self {
        case .reply(let bytes), .subscribe(let bytes, _): bytes
        case .splicedReply(let head, let body, let tail): head + body + tail
        case .none: nil
        }
    }
}

/// Decodes JSON-RPC 2.0 request lines, calls the controller, encodes the answers.
/// Transport-free, so the protocol rules are tested without a socket.
public struct RPCDispatcher: Sendable {
    public let controller: VDPAController

    public init(controller: VDPAController) { self.controller = controller }

    /// Handles a line from a caller inside the daemon's own process (every method allowed).
    public func handle(line: [UInt8]) async -> RPCDispatchOutcome {
        await handle(line: line, caller: .inProcess, authorization: nil)
    }

    /// Handles a line from `caller`: a method beyond its access is `permission_denied`, and logged.
    public func handle(line: [UInt8], caller: RPCCaller, authorization: RPCAuthorization?) async -> RPCDispatchOutcome {
        let data = Data(line)
        let decoder = JSONDecoder()
        let header: RPCRequestHeader
        do {
            header = try decoder.decode(RPCRequestHeader.self, from: data)
        } catch {
            if (try? JSONSerialization.jsonObject(with: data)) == nil {
                return .reply(Self.encodeError(id: nil, RPCErrorObject(code: .parseError, message: "Parse error: the request is not valid JSON")))
            }
            return .reply(Self.encodeError(id: nil, RPCErrorObject(code: .invalidRequest, message: "Invalid request: expected an object with a string 'method' and an optional 'id'")))
        }
        guard header.jsonrpc == "2.0" else {
            return .reply(Self.encodeError(id: header.id, RPCErrorObject(code: .invalidRequest, message: "Invalid request: 'jsonrpc' must be \"2.0\"")))
        }
        if header.hasID && header.id == nil {
            return .reply(Self.encodeError(id: nil, RPCErrorObject(code: .invalidRequest, message: "Invalid request: 'id' must be a string or a number")))
        }
        let isNotification = !header.hasID
        guard let method = VDPAMethod(rawValue: header.method) else {
            if isNotification { return .none }
            return .reply(Self.encodeError(id: header.id, RPCErrorObject(code: .methodNotFound, message: "Method not found: \(header.method)")))
        }
        if caller.access < method.requiredAccess {
            let message = authorization?.refusal(of: method, for: caller) ?? "\(method.rawValue) is not allowed for this caller"
            controller.logger.notice("Refused a call", metadata: [
                "method": "\(method.rawValue)", "uid": "\(caller.credentials.map { "\($0.uid)" } ?? "none")",
                "pid": "\(caller.credentials.map { "\($0.pid)" } ?? "none")", "access": "\(caller.access)",
            ])
            if isNotification { return .none }
            return .reply(Self.encodeError(id: header.id, RPCErrorObject(code: .permissionDenied, message: message,
                                                                         data: RPCErrorData(operation: method.rawValue))))
        }
        let outcome = await dispatch(method, id: header.id, data: data)
        if isNotification { return .none }
        return outcome
    }

    /// The params of a method that needs them.
    private func requiredParams<P: Codable & Sendable>(_ type: P.Type, _ data: Data) throws -> P {
        guard let params = try optionalParams(type, data) else {
            throw RPCErrorObject(code: .invalidParams, message: "Invalid params: this method needs params")
        }
        return params
    }

    /// The params of a method that may be called without them.
    private func optionalParams<P: Codable & Sendable>(_ type: P.Type, _ data: Data) throws -> P? {
        do {
            return try JSONDecoder().decode(RPCRequest<P>.self, from: data).params
        } catch let error as RPCErrorObject {
            throw error
        } catch let DecodingError.keyNotFound(key, context) {
            throw RPCErrorObject(code: .invalidParams, message: "Invalid params: missing '\(Self.path(context.codingPath + [key]))'",
                                 data: RPCErrorData(parameter: key.stringValue))
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw RPCErrorObject(code: .invalidParams, message: "Invalid params: wrong type for '\(Self.path(context.codingPath))'",
                                 data: RPCErrorData(parameter: context.codingPath.last?.stringValue))
        } catch let DecodingError.dataCorrupted(context) {
            throw RPCErrorObject(code: .invalidParams, message: "Invalid params: \(context.debugDescription)",
                                 data: RPCErrorData(parameter: context.codingPath.last?.stringValue))
        } catch {
            throw RPCErrorObject(code: .invalidParams, message: "Invalid params: \(error)")
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.filter { $0.stringValue != "params" }.map(\.stringValue).joined(separator: ".")
    }

    private func dispatch(_ method: VDPAMethod, id: RPCRequestID?, data: Data) async -> RPCDispatchOutcome {
        do {
            switch method {
            case .rpcMethods:
                return .reply(try Self.encode(id: id, RPCMethodsResult(methods: VDPAMethod.allCases.map(\.rawValue))))
            case .daemonStatus:
                return .reply(try Self.encode(id: id, await controller.daemonStatus()))
            case .mgmtdevList:
                let p = try optionalParams(MgmtdevListParams.self, data) ?? MgmtdevListParams()
                return .reply(try Self.encode(id: id, try await controller.managementDevices(p)))
            case .devAdd:
                let p = try requiredParams(DevAddParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.addDevice(p)))
            case .devDel:
                let p = try requiredParams(DevDelParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.deleteDevice(p)))
            case .devList:
                let p = try optionalParams(DevListParams.self, data) ?? DevListParams()
                let result = try await controller.encodedDeviceList(p)
                return Self.splice(id: id, encodedResult: result)
            case .devGet:
                let p = try requiredParams(DeviceNameParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.device(p)))
            case .devConfigGet:
                let p = try optionalParams(DevConfigGetParams.self, data) ?? DevConfigGetParams()
                return .reply(try Self.encode(id: id, try await controller.deviceConfigs(p)))
            case .devVstatsGet:
                let p = try requiredParams(DevVstatsGetParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.vendorStatistics(p)))
            case .devSet:
                let p = try requiredParams(DevSetParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.setDevice(p)))
            case .devBind:
                let p = try requiredParams(DevBindParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.bindDevice(p)))
            case .profileAdd:
                let p = try requiredParams(Profile.self, data)
                return .reply(try Self.encode(id: id, try await controller.addProfile(p)))
            case .profileDel:
                let p = try requiredParams(ProfileNameParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.deleteProfile(p)))
            case .profileList:
                return .reply(try Self.encode(id: id, await controller.listProfiles()))
            case .profileGet:
                let p = try requiredParams(ProfileNameParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.profile(p)))
            case .capsExport:
                return .reply(try Self.encode(id: id, try await controller.exportCapabilities()))
            case .compatCheck:
                let p = try requiredParams(CompatCheckParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.checkCompatibility(p)))
            case .compatBaseline:
                let p = try requiredParams(CompatBaselineParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.computeBaseline(p)))
            case .quirkList:
                return .reply(try Self.encode(id: id, try await controller.listQuirks()))
            case .quirkTest:
                let p = try requiredParams(QuirkTestParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.testQuirks(p)))
            case .portAdd:
                let p = try requiredParams(PortAddParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.addPort(p)))
            case .portDel:
                let p = try requiredParams(PortNameParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.deletePort(p)))
            case .portList:
                return .reply(try Self.encode(id: id, await controller.listPorts()))
            case .portGet:
                let p = try requiredParams(PortNameParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.port(p)))
            case .portSet:
                let p = try requiredParams(PortSetParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.setPort(p)))
            case .vqStateSave:
                let p = try requiredParams(VqStateSaveParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.saveVirtqueueState(p)))
            case .vqStateList:
                return .reply(try Self.encode(id: id, try await controller.listVirtqueueStates()))
            case .vqStateGet:
                let p = try requiredParams(VqStateNameParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.virtqueueState(p)))
            case .vqStateExport:
                let p = try requiredParams(VqStateNameParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.exportVirtqueueState(p)))
            case .vqStateImport:
                let p = try requiredParams(VqStateImportParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.importVirtqueueState(p)))
            case .vqStateRestore:
                let p = try requiredParams(VqStateRestoreParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.restoreVirtqueueState(p)))
            case .vqStateDel:
                let p = try requiredParams(VqStateNameParams.self, data)
                return .reply(try Self.encode(id: id, try await controller.deleteVirtqueueState(p)))
            case .eventsSubscribe:
                return .subscribe(reply: try Self.encode(id: id, EventsSubscribeResult(subscribed: true)), id: id)
            }
        } catch {
            return .reply(Self.encodeError(id: id, APIError.from(error)))
        }
    }

    static func encode<R: Codable & Sendable>(id: RPCRequestID?, _ result: R) throws -> [UInt8] {
        try RPCJSON.encode(RPCResponse(id: id, result: result))
    }

    /// A response around an already encoded result.
    static func splice(id: RPCRequestID?, encodedResult: [UInt8]) -> RPCDispatchOutcome {
        let idJSON: [UInt8] = switch id {
        case .number(let number)?: Array(String(number).utf8)
        case .string?: (try? RPCJSON.encode(id)) ?? Array("null".utf8)
        case nil: Array("null".utf8)
        }
        return .splicedReply(head: Array(#"{"jsonrpc":"2.0","id":"#.utf8) + idJSON + Array(#","result":"#.utf8),
                             body: encodedResult, tail: [UInt8(ascii: "}")])
    }

    public static func encodeError(id: RPCRequestID?, _ error: RPCErrorObject) -> [UInt8] {
        (try? RPCJSON.encode(RPCResponse<RPCEmpty>(id: id, error: error)))
            ?? Array(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"Internal error"}}"#.utf8)
    }

    public static func encodeEvent(_ event: DeviceEvent) -> [UInt8] {
        (try? RPCJSON.encode(RPCNotification(method: vdpadEventNotificationMethod, params: event))) ?? []
    }
}

import Foundation
import VDPARPC
import VDPASystem

/// Why a call to vdpad did not produce a result or an API error.
public enum VDPAClientError: Error, CustomStringConvertible, Sendable {
    /// The socket could not be reached (daemon not running, wrong path, no permission).
    case cannotConnect(path: String, SystemError)
    /// Reading or writing the socket failed.
    case transport(SystemError)
    /// The daemon closed the connection before answering.
    case connectionClosed
    /// The daemon's answer was not a JSON-RPC response vdpactl understands.
    case malformedResponse(String)

    public var description: String {
        switch self {
        case .cannotConnect(let path, let error):
            "cannot connect to vdpad at \(path): \(error.reason) (is vdpad running? see --socket / VDPAD_SOCKET)"
        case .transport(let error): "connection to vdpad failed: \(error)"
        case .connectionClosed: "vdpad closed the connection"
        case .malformedResponse(let detail): "unexpected answer from vdpad: \(detail)"
        }
    }
}

/// A JSON-RPC 2.0 client for vdpad's Unix socket: one request per line, answers
/// matched by id; used by vdpactl and by the integration tests.
public final class VDPAClient {
    /// `/run/vdpad/vdpad.sock`, or `$VDPAD_SOCKET` when set.
    public static var defaultSocketPath: String {
        ProcessInfo.processInfo.environment["VDPAD_SOCKET"].flatMap { $0.isEmpty ? nil : $0 } ?? "/run/vdpad/vdpad.sock"
    }

    private let connection: UnixStreamConnection
    private var buffer: [UInt8] = []
    private var nextID: Int64 = 1
    private let encoder = RPCJSON.encoder()
    private let decoder = JSONDecoder()
    public let socketPath: String

    public init(socketPath: String = VDPAClient.defaultSocketPath) throws {
        self.socketPath = socketPath
        do {
            connection = try UnixStreamConnection(path: socketPath)
        } catch let error as SystemError {
            throw VDPAClientError.cannotConnect(path: socketPath, error)
        }
    }

    /// Calls `method` and decodes its result; an API error is thrown as ``RPCErrorObject``.
    public func call<Params: Codable & Sendable, Result: Codable & Sendable>(
        _ method: VDPAMethod, _ params: Params, as: Result.Type = Result.self
    ) throws -> Result {
        let id = RPCRequestID.number(nextID)
        nextID += 1
        let request = RPCRequest(id: id, method: method.rawValue, params: params)
        var line = try encoder.encode(request)
        line.append(UInt8(ascii: "\n"))
        do { try connection.writeAll(Array(line)) } catch let error as SystemError { throw VDPAClientError.transport(error) }
        while true {
            let reply = try readLine()
            let message: RPCIncomingMessage<Result>
            do {
                message = try decoder.decode(RPCIncomingMessage<Result>.self, from: Data(reply))
            } catch {
                throw VDPAClientError.malformedResponse("\(error)")
            }
            if message.method != nil { continue }  // a notification, not our answer
            guard message.id == id else { continue }
            if let error = message.error { throw error }
            guard let result = message.result else { throw VDPAClientError.malformedResponse("response without result") }
            return result
        }
    }

    /// Calls a method without params.
    public func call<Result: Codable & Sendable>(_ method: VDPAMethod, as: Result.Type = Result.self) throws -> Result {
        try call(method, RPCEmpty(), as: Result.self)
    }

    /// Subscribes to device events and hands each to `handler` until it returns false
    /// or the connection ends. With a timeout, returns when nothing arrives in time.
    public func followEvents(timeoutMilliseconds: Int32? = nil, onSubscribed: () -> Void = {}, _ handler: (DeviceEvent) -> Bool) throws {
        _ = try call(.eventsSubscribe, as: EventsSubscribeResult.self)
        onSubscribed()
        while true {
            let line: [UInt8]
            do {
                line = try readLine(timeoutMilliseconds: timeoutMilliseconds)
            } catch VDPAClientError.transport(let error) where error.errno == ErrnoCode.timedOut {
                return
            } catch VDPAClientError.connectionClosed {
                return
            }
            guard let notification = try? decoder.decode(RPCNotification<DeviceEvent>.self, from: Data(line)),
                  notification.method == vdpadEventNotificationMethod else { continue }
            if !handler(notification.params) { return }
        }
    }

    /// Sends raw bytes (tests of malformed input) and returns the next line, or nil
    /// when the daemon has closed the connection.
    public func sendRaw(_ bytes: [UInt8], timeoutMilliseconds: Int32 = 5000) throws -> [UInt8]? {
        do { try connection.writeAll(bytes) } catch let error as SystemError {
            if error.errno == ErrnoCode.brokenPipe || error.errno == ErrnoCode.connectionReset { return nil }
            throw VDPAClientError.transport(error)
        }
        do {
            return try readLine(timeoutMilliseconds: timeoutMilliseconds)
        } catch VDPAClientError.connectionClosed {
            return nil
        } catch VDPAClientError.transport(let error) where error.errno == ErrnoCode.connectionReset {
            return nil  // closed by the daemon with our bytes still unread
        }
    }

    private func readLine(timeoutMilliseconds: Int32? = nil) throws -> [UInt8] {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                return line
            }
            let chunk: [UInt8]
            do { chunk = try connection.read(timeoutMilliseconds: timeoutMilliseconds) } catch let error as SystemError {
                throw VDPAClientError.transport(error)
            }
            if chunk.isEmpty { throw VDPAClientError.connectionClosed }
            buffer.append(contentsOf: chunk)
        }
    }

    public func close() { connection.close() }
}

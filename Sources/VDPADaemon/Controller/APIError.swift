import VDPANetlink
import VDPAVhost
import VDPAPorts
import VDPARPC
import VDPAStore
import VDPASystem

/// Turns failures of the layers below into the API's stable error objects,
/// keeping the kernel's errno and extended-ack text in `data`.
enum APIError {
    static func from(_ error: any Error) -> RPCErrorObject {
        switch error {
        case let error as RPCErrorObject:
            return error
        case let error as VDPAError:
            return from(error)
        case let error as VhostError:
            return from(error)
        case let error as PortError:
            switch error.kind {
            case .notAttached: return RPCErrorObject(code: .notAttached, message: error.message)
            case .consumer: return RPCErrorObject(code: .invalidRequest, message: error.message)
            case .notSupported: return RPCErrorObject(code: .notSupported, message: error.message)
            }
        case let error as SystemError:
            return RPCErrorObject(code: .internalError, message: error.description, data: RPCErrorData(
                errno: error.errno, errnoName: error.errnoName, operation: error.operation))
        case let error as StateStoreError:
            return RPCErrorObject(code: .stateStoreFailure, message: error.description)
        default:
            return RPCErrorObject(code: .internalError, message: "\(error)")
        }
    }

    static func from(_ error: VDPAError) -> RPCErrorObject {
        switch error {
        case .kernel(let operation, let errno, let extack):
            let code: RPCErrorCode = switch errno {
            case ErrnoCode.noSuchDevice, ErrnoCode.noSuchFileOrDirectory: .notFound
            case ErrnoCode.fileExists: .alreadyExists
            case ErrnoCode.notSupported: .notSupported
            case ErrnoCode.notPermitted, ErrnoCode.permissionDenied: .permissionDenied
            case ErrnoCode.tryAgain: .tryAgain
            default: .kernelRejected
            }
            let reason = SystemError.describe(errno: errno)
            let message = extack.map { "\($0) (kernel answers: \(reason))" } ?? "kernel answers: \(reason)"
            return RPCErrorObject(code: code, message: message, data: RPCErrorData(
                errno: errno, errnoName: SystemError.name(ofErrno: errno), extack: extack, operation: operation))
        case .familyUnavailable(let reason):
            return RPCErrorObject(code: .vdpaUnavailable, message: reason)
        case .netlinkLibrary(let operation, _, let message):
            return RPCErrorObject(code: .internalError, message: "netlink: \(message)", data: RPCErrorData(operation: operation))
        case .malformedReply(let operation, let detail):
            return RPCErrorObject(code: .internalError, message: "malformed kernel reply: \(detail)", data: RPCErrorData(operation: operation))
        case .sysfs(let systemError):
            let code: RPCErrorCode = systemError.errno == ErrnoCode.noSuchDevice ? .notFound : .sysfsFailure
            return RPCErrorObject(code: code, message: systemError.description, data: RPCErrorData(
                errno: systemError.errno, errnoName: systemError.errnoName, operation: "\(systemError.operation) \(systemError.path ?? "")"))
        case .driverUnavailable:
            return RPCErrorObject(code: .driverUnavailable, message: error.description)
        case .deviceInUse(_, let path, let operation):
            return RPCErrorObject(code: .deviceInUse, message: error.description, data: RPCErrorData(
                errno: ErrnoCode.busy, errnoName: SystemError.name(ofErrno: ErrnoCode.busy), operation: "\(operation) (open \(path))"))
        }
    }

    /// A failed vhost-vdpa step: the errno decides the code, the step (the ioctl) is the operation.
    static func from(_ error: VhostError) -> RPCErrorObject {
        let code: RPCErrorCode = switch error.errno {
        case ErrnoCode.notSupported: .notSupported
        case ErrnoCode.busy: .deviceInUse
        case ErrnoCode.noSuchDevice, ErrnoCode.noSuchFileOrDirectory: .notFound
        case ErrnoCode.notPermitted, ErrnoCode.permissionDenied: .permissionDenied
        default: .kernelRejected
        }
        return RPCErrorObject(code: code, message: error.description, data: RPCErrorData(
            errno: error.errno == 0 ? nil : error.errno, errnoName: error.errno == 0 ? nil : SystemError.name(ofErrno: error.errno),
            operation: "\(error.step) \(error.device)"))
    }

    static func invalidParams(_ message: String, parameter: String? = nil) -> RPCErrorObject {
        RPCErrorObject(code: .invalidParams, message: message, data: parameter.map { RPCErrorData(parameter: $0) })
    }
}

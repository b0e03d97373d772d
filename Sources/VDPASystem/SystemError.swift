#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed system call: which call, on what path, and the kernel's errno.
public struct SystemError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The errno value the kernel returned.
    public var errno: Int32
    /// The system call that failed, e.g. "open" or "connect".
    public var operation: String
    /// The file or socket path involved, when there is one.
    public var path: String?

    public init(errno: Int32, operation: String, path: String? = nil) {
        self.errno = errno
        self.operation = operation
        self.path = path
    }

    /// The C library's text for `errno` ("No such file or directory").
    public var reason: String { system_errnoDescription(errno) }

    /// The symbolic errno name ("ENOENT") for the values vdpad reports most.
    public var errnoName: String { SystemError.name(ofErrno: errno) }

    public var description: String {
        if let path { return "\(operation) \(path): \(reason)" }
        return "\(operation): \(reason)"
    }

    /// The symbolic name of an errno value, or "errno N" for values not listed.
    public static func name(ofErrno code: Int32) -> String {
        switch code {
        case EPERM: "EPERM"
        case ENOENT: "ENOENT"
        case EINTR: "EINTR"
        case EIO: "EIO"
        case ENXIO: "ENXIO"
        case EBADF: "EBADF"
        case EAGAIN: "EAGAIN"
        case ENOMEM: "ENOMEM"
        case EACCES: "EACCES"
        case EFAULT: "EFAULT"
        case EBUSY: "EBUSY"
        case EEXIST: "EEXIST"
        case ENODEV: "ENODEV"
        case EINVAL: "EINVAL"
        case ENOSPC: "ENOSPC"
        case ERANGE: "ERANGE"
        case ENAMETOOLONG: "ENAMETOOLONG"
        case ENOSYS: "ENOSYS"
        case EOPNOTSUPP: "EOPNOTSUPP"
        case ECONNREFUSED: "ECONNREFUSED"
        case ETIMEDOUT: "ETIMEDOUT"
        case ENOBUFS: "ENOBUFS"
        case EPROTONOSUPPORT: "EPROTONOSUPPORT"
        case EMSGSIZE: "EMSGSIZE"
        default: "errno \(code)"
        }
    }

    /// The C library's text for an errno value.
    public static func describe(errno code: Int32) -> String { system_errnoDescription(code) }
}

/// Errno values the layers above compare against, so they need not import Glibc.
public enum ErrnoCode {
    public static let notPermitted = EPERM
    public static let noSuchFileOrDirectory = ENOENT
    public static let tryAgain = EAGAIN
    public static let permissionDenied = EACCES
    public static let busy = EBUSY
    public static let fileExists = EEXIST
    public static let noSuchDevice = ENODEV
    public static let invalidArgument = EINVAL
    public static let outOfRange = ERANGE
    public static let notSupported = EOPNOTSUPP
    public static let connectionRefused = ECONNREFUSED
    public static let timedOut = ETIMEDOUT
    public static let protocolNotSupported = EPROTONOSUPPORT
    public static let messageTooLong = EMSGSIZE
    public static let brokenPipe = EPIPE
    public static let connectionReset = ECONNRESET
}

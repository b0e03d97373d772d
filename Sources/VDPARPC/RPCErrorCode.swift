/// Stable error codes of the vdpad API. The JSON-RPC 2.0 codes keep their
/// meaning; vdpad's own codes are positive and never change meaning once published.
public enum RPCErrorCode: Int, CaseIterable, Sendable, Codable {
    // JSON-RPC 2.0 §5.1
    case parseError = -32700
    case invalidRequest = -32600
    case methodNotFound = -32601
    case invalidParams = -32602
    case internalError = -32603

    /// The kernel has no `vdpa` netlink family (module not loaded, or no vDPA support).
    case vdpaUnavailable = 1001
    /// No such device or management device (ENODEV/ENOENT).
    case notFound = 1002
    /// A device of that name exists (EEXIST).
    case alreadyExists = 1003
    /// The device or management device cannot do this (EOPNOTSUPP).
    case notSupported = 1004
    /// The kernel refused the request (EINVAL and other errnos); see data.extack.
    case kernelRejected = 1005
    /// The daemon lacks the privilege the kernel requires (EPERM/EACCES).
    case permissionDenied = 1006
    /// Not possible yet, e.g. statistics before feature negotiation (EAGAIN).
    case tryAgain = 1007
    /// The device was not created by vdpad; vdpad does not touch it unless forced.
    case unmanagedDevice = 1008
    /// The requested vdpa bus driver is not loaded.
    case driverUnavailable = 1009
    /// The durable state store failed; nothing was acknowledged.
    case stateStoreFailure = 1010
    /// A sysfs operation failed (binding); data.errno says why.
    case sysfsFailure = 1011
    /// The request line exceeded the size limit; the connection is closed.
    case requestTooLarge = 1012
    /// The daemon is shutting down.
    case shuttingDown = 1013
    /// A device's state after the kernel acted differs from what was asked.
    case verificationFailed = 1014
    /// The device is held open by another process (a VMM has its /dev/vhost-vdpa-N).
    case deviceInUse = 1015
    /// The management device cannot present the requested profile; data.reasons says every why.
    case profileIncompatible = 1016
    /// The target device cannot take the saved virtqueue state; data.reasons says every why.
    case stateIncompatible = 1017
    /// The device backs no port, or the port's consumer has not set up its rings: there is no
    /// state to read, or nothing to start a device under.
    case notAttached = 1018

    /// The name used in documentation.
    public var name: String {
        switch self {
        case .parseError: "parse_error"
        case .invalidRequest: "invalid_request"
        case .methodNotFound: "method_not_found"
        case .invalidParams: "invalid_params"
        case .internalError: "internal_error"
        case .vdpaUnavailable: "vdpa_unavailable"
        case .notFound: "not_found"
        case .alreadyExists: "already_exists"
        case .notSupported: "not_supported"
        case .kernelRejected: "kernel_rejected"
        case .permissionDenied: "permission_denied"
        case .tryAgain: "try_again"
        case .unmanagedDevice: "unmanaged_device"
        case .driverUnavailable: "driver_unavailable"
        case .stateStoreFailure: "state_store_failure"
        case .sysfsFailure: "sysfs_failure"
        case .requestTooLarge: "request_too_large"
        case .shuttingDown: "shutting_down"
        case .verificationFailed: "verification_failed"
        case .deviceInUse: "device_in_use"
        case .profileIncompatible: "profile_incompatible"
        case .stateIncompatible: "state_incompatible"
        case .notAttached: "not_attached"
        }
    }
}

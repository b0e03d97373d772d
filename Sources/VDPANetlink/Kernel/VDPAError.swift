import VDPASystem

/// A failed operation on the kernel's vDPA interfaces. Kernel refusals keep the
/// kernel's own errno and its extended-ack text ("vdpa: Fail to find the
/// specified management device"), so callers can show the kernel's reason.
public enum VDPAError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kernel refused a netlink request.
    case kernel(operation: String, errno: Int32, extack: String?)
    /// The kernel has no `vdpa` generic netlink family (the `vdpa` module is not loaded).
    case familyUnavailable(reason: String)
    /// libnl failed before the kernel answered (its own NLE_* code, not an errno).
    case netlinkLibrary(operation: String, code: Int32, message: String)
    /// A reply did not have the shape the uapi promises.
    case malformedReply(operation: String, detail: String)
    /// A sysfs read or write failed (binding, driver lookup).
    case sysfs(SystemError)
    /// The requested bus driver is not registered (its module is not loaded).
    case driverUnavailable(BusDriver)
    /// Another process holds the device's vhost-vdpa character device open; deleting or
    /// unbinding it would block until that process closes it (vhost_vdpa_remove waits).
    case deviceInUse(device: String, path: String, operation: String)

    /// The errno behind the failure, when there is one.
    public var errno: Int32? {
        switch self {
        case .kernel(_, let errno, _): errno
        case .sysfs(let error): error.errno
        case .deviceInUse: ErrnoCode.busy
        default: nil
        }
    }

    /// The kernel's extended-ack text, when it gave one.
    public var extack: String? {
        if case .kernel(_, _, let extack) = self { return extack }
        return nil
    }

    public var description: String {
        switch self {
        case .kernel(let operation, let errno, let extack):
            let reason = SystemError.describe(errno: errno)
            if let extack, !extack.isEmpty { return "\(operation): \(extack) (kernel: \(reason))" }
            return "\(operation): kernel: \(reason)"
        case .familyUnavailable(let reason):
            return "the kernel has no vdpa netlink family: \(reason)"
        case .netlinkLibrary(let operation, let code, let message):
            return "\(operation): libnl error \(code): \(message)"
        case .malformedReply(let operation, let detail):
            return "\(operation): malformed kernel reply: \(detail)"
        case .sysfs(let error):
            return error.description
        case .driverUnavailable(let driver):
            return "vdpa bus driver \(driver) is not available (is its module loaded?)"
        case .deviceInUse(let device, let path, let operation):
            return "cannot \(operation) \(device): \(path) is open in another process (a VMM?); the kernel would wait until it is closed"
        }
    }
}

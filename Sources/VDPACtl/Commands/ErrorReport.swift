import Foundation
import VDPAClient
import VDPARPC

/// The lines vdpactl prints for a failed call: the daemon's message, and where the kernel
/// refused, its reason (errno name and description, extended-ack text) as the daemon passed
/// them on in the error's `data`.
public enum ErrorReport {
    /// The report's lines, without the "vdpactl: " prefix.
    public static func lines(for error: RPCErrorObject) -> [String] {
        guard let data = error.data, let errno = data.errno else {
            let parameter = error.data?.parameter.map { " (parameter \($0))" } ?? ""
            // Several reasons (an invalid profile, an incompatible profile): one line each.
            let reasons = (error.data?.reasons ?? []).map { "  \($0.severity.map { "\($0): " } ?? "")\($0.message)" }
            return [error.message + parameter] + (reasons.count > 1 ? reasons : [])
        }
        var kernel = "kernel answered: \(describe(errno: errno))"
        if let name = data.errnoName { kernel += " (\(name))" }
        if let extack = data.extack, !extack.isEmpty { kernel += ": \(extack)" }
        // The daemon builds kernel errors' messages from the extack and errno alone; say those once.
        let messageRepeatsKernel = error.message.hasPrefix("kernel answers")
            || (data.extack.map { !$0.isEmpty && error.message.hasPrefix($0) } ?? false)
        return messageRepeatsKernel ? [kernel] : [error.message, kernel]
    }

    static func lines(for error: VDPAClientError) -> [String] { [error.description] }

    /// strerror(3) text for an errno value.
    static func describe(errno: Int32) -> String { String(cString: strerror(errno)) }
}

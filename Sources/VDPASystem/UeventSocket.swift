#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A `NETLINK_KOBJECT_UEVENT` socket subscribed to the kernel's uevent broadcast
/// (multicast group 1), which announces every device add/remove/bind/unbind/change.
public final class UeventSocket {
    private var fd: Int32
    private static let kernelGroup: UInt32 = 1
    private static let netlinkKobjectUevent: Int32 = 15

    public init() throws {
        fd = try system_socket(AF_NETLINK, Int32(SOCK_DGRAM.rawValue), UeventSocket.netlinkKobjectUevent)
        do {
            // A generous receive buffer: bursts of uevents arrive when many devices change at once.
            try? system_setsockopt(fd, SOL_SOCKET, SO_RCVBUF, 1 << 20)
            try system_bindNetlink(fd, groups: UeventSocket.kernelGroup)
        } catch {
            system_close(fd)
            throw error
        }
    }

    deinit { if fd >= 0 { system_close(fd) } }

    /// Waits up to `timeoutMilliseconds` for one uevent datagram; nil on timeout.
    public func receive(timeoutMilliseconds: Int32) throws -> [UInt8]? {
        guard try system_pollReadable(fd, timeoutMilliseconds: timeoutMilliseconds) else { return nil }
        var buffer = [UInt8](repeating: 0, count: 8192)
        let count = try buffer.withUnsafeMutableBytes { raw throws in
            try system_recv(fd, raw, flags: Int32(MSG_DONTWAIT))
        }
        buffer.removeSubrange(count...)
        return buffer
    }
}

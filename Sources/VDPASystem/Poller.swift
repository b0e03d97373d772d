#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Waits on a few file descriptors at once (`poll(2)`), for the datapath
/// workers: kick eventfds, a TAP descriptor, a wake-up eventfd.
public struct Poller {
    /// What to wait for on one descriptor.
    public struct Interest: Hashable, Sendable {
        public var fileDescriptor: Int32
        public var readable: Bool
        public var writable: Bool
        public init(fileDescriptor: Int32, readable: Bool = true, writable: Bool = false) {
            self.fileDescriptor = fileDescriptor
            self.readable = readable
            self.writable = writable
        }
    }

    /// What happened on one descriptor.
    public struct Readiness: Hashable, Sendable {
        public var readable: Bool
        public var writable: Bool
        /// POLLERR / POLLHUP / POLLNVAL.
        public var failed: Bool
    }

    private var descriptors: [pollfd] = []

    public init() {}

    /// Waits until one of `interests` is ready or the timeout passes (-1: forever).
    /// Returns one readiness per interest, in order.
    public mutating func wait(_ interests: [Interest], timeoutMilliseconds: Int32) throws -> [Readiness] {
        descriptors.removeAll(keepingCapacity: true)
        for interest in interests {
            var events: Int16 = 0
            if interest.readable { events |= Int16(POLLIN) }
            if interest.writable { events |= Int16(POLLOUT) }
            descriptors.append(pollfd(fd: interest.fileDescriptor, events: events, revents: 0))
        }
        _ = try system_poll(&descriptors, timeoutMilliseconds: timeoutMilliseconds)
        return descriptors.map { descriptor in
            Readiness(
                readable: descriptor.revents & Int16(POLLIN) != 0,
                writable: descriptor.revents & Int16(POLLOUT) != 0,
                failed: descriptor.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0)
        }
    }
}

/// An `eventfd(2)` counter, non-blocking and close-on-exec: the kick
/// (driver → device) and call (device → driver) notifiers of a virtqueue,
/// as vhost and vhost-user hand them around.
public final class EventFD: Sendable {
    /// The descriptor; owned by this object and closed in `deinit`.
    public let fileDescriptor: Int32
    private let owned: Bool

    /// A new eventfd with counter `initial`.
    public init(initial: UInt32 = 0) throws {
        fileDescriptor = try system_eventfd(initial: initial)
        owned = true
    }

    /// Wraps a descriptor received from elsewhere (a vhost-user message);
    /// with `takingOwnership` it is closed in `deinit`.
    public init(adopting fileDescriptor: Int32, takingOwnership: Bool) {
        self.fileDescriptor = fileDescriptor
        owned = takingOwnership
    }

    deinit {
        if owned { system_close(fileDescriptor) }
    }

    /// Adds 1 to the counter (wakes a poller).
    public func signal() throws {
        var one: UInt64 = 1
        _ = try withUnsafeBytes(of: &one) { try system_writeNonBlocking(fileDescriptor, $0) }
    }

    /// Reads and resets the counter; 0 when it was already 0.
    @discardableResult
    public func drain() throws -> UInt64 {
        var value: UInt64 = 0
        let count = try withUnsafeMutableBytes(of: &value) { try system_readNonBlocking(fileDescriptor, $0) }
        return count == 8 ? value : 0
    }

    /// Waits until the counter is non-zero or `timeoutMilliseconds` pass; returns whether it is.
    public func wait(timeoutMilliseconds: Int32) throws -> Bool {
        try system_pollReadable(fileDescriptor, timeoutMilliseconds: timeoutMilliseconds)
    }
}

/// Where a software virtio-net device sends the frames its driver transmits
/// and gets the frames it delivers to the driver: a TAP device, a loopback
/// for tests, and whatever else can move Ethernet frames with a virtio-net
/// header (ARCHITECTURE.md: each kernel boundary is a protocol).
///
/// A backend is used by one queue pair's worker at a time; `send` and
/// `receive` never block (a full or empty backend says so).
public protocol NetBackend: AnyObject, Sendable {
    /// Sends one frame; `header` is already validated and normalised
    /// (``VirtioNetHeader/normalizedForTransmit``). Returns
    /// ``NetSendResult/wouldBlock`` when the backend cannot take it now; the
    /// caller keeps the frame and retries when ``readiness`` says writable.
    /// `frame` may be the guest's own buffer: read it during the call only, and expect that
    /// the guest can change it meanwhile (its header was copied and validated already).
    func send(header: VirtioNetHeader, frame: UnsafeRawBufferPointer) throws(NetBackendError) -> NetSendResult

    /// Receives one frame into `frame` (at most `frame.count` bytes; longer
    /// frames are truncated by the backend and reported as such). Returns nil
    /// when nothing is waiting.
    func receive(into frame: UnsafeMutableRawBufferPointer) throws(NetBackendError) -> NetReceivedFrame?

    /// How a worker learns that `receive` has something or `send` may proceed.
    var readiness: NetBackendReadiness { get }
}

/// The outcome of ``NetBackend/send(header:frame:)``.
public enum NetSendResult: Hashable, Sendable {
    case sent
    /// Full for now: retry the same frame later.
    case wouldBlock
}

/// A frame ``NetBackend/receive(into:)`` put into the caller's buffer.
public struct NetReceivedFrame: Hashable, Sendable {
    /// The header that came with it (`num_buffers` is the receiver's to set).
    public var header: VirtioNetHeader
    /// Frame bytes written at the start of the buffer.
    public var length: Int
    public init(header: VirtioNetHeader, length: Int) {
        self.header = header
        self.length = length
    }
}

/// How a backend signals readiness.
public enum NetBackendReadiness: Sendable {
    /// A file descriptor that polls readable when frames wait and writable
    /// when sends may proceed (a TAP fd).
    case fileDescriptor(Int32)
    /// An in-process backend: it calls the waker it was given whenever a
    /// frame becomes available to `receive` (and never returns `wouldBlock`).
    case inProcess(NetBackendWakerSlot)
}

/// Holds the waker an in-process backend calls when it has frames to receive.
public final class NetBackendWakerSlot: Sendable {
    private let storage = LockedValue<(@Sendable () -> Void)?>(nil)
    public init() {}
    /// Installs (or with nil removes) the waker.
    public func install(_ waker: (@Sendable () -> Void)?) { storage.withLock { $0 = waker } }
    /// Calls the installed waker, if any.
    public func wake() { storage.withLock { $0 }?() }
}

/// A backend failure (the kernel's errno when there is one).
public struct NetBackendError: Error, Hashable, Sendable, CustomStringConvertible {
    public var operation: String
    public var errno: Int32?
    public var message: String
    public init(operation: String, errno: Int32? = nil, message: String) {
        self.operation = operation
        self.errno = errno
        self.message = message
    }
    public var description: String { "\(operation): \(message)" }
}

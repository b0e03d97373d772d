import VDPAVhost
import VirtioModel

/// What processes a port's rings: a vhost-vdpa device (``HardwareBackend``), or vdpad's own
/// datapath. The port calls it under its lock, and in this order: ``prepare`` (everything but
/// the rings' positions, while another backend may still run the rings), ``launch`` at the
/// positions, then while it runs ``suspend``/``resume``, ``bases(of:)`` and the consumer's
/// changes; ``stop`` when the consumer resets; ``release`` last.
///
/// Ring positions are the vhost encoding (`VHOST_GET_VRING_BASE`/`SET_VRING_BASE`: a split
/// ring's index, a packed ring's index and wrap counter).
protocol PortBackend: AnyObject {
    /// What the API shows of it.
    var snapshot: PortBackendSnapshot { get }
    /// The name it is listed by (a device's name).
    var deviceName: String { get }
    var offeredFeatures: VirtioFeatures { get }
    /// What a port serves its consumer from it (``PortBackendSnapshot/servedFeatures``).
    var servedFeatures: VirtioFeatures { get }
    var backendFeatures: BackendFeatures { get }
    var queueCount: Int { get }
    var deviceType: UInt32 { get }
    /// The features it runs with (set by ``prepare``).
    var negotiatedFeatures: VirtioFeatures { get }
    var running: Bool { get }
    var suspended: Bool { get }
    /// Whether ``suspend`` can stop it at a clean point (a move needs it).
    var canSuspend: Bool { get }

    /// The features it runs with for a consumer that negotiated `consumerFeatures` (without
    /// the vhost-user protocol bit).
    func runningFeatures(for consumerFeatures: VirtioFeatures) -> VirtioFeatures
    func prepare(features: VirtioFeatures, session: ConsumerSession, timings: inout StepTimings) throws
    /// Starts the prepared rings at `bases` (else the consumer's own) and looks at each enabled
    /// ring once without waiting for a kick (work may be pending).
    func launch(session: ConsumerSession, bases: [Int: UInt32], timings: inout StepTimings) throws
    func suspend() throws
    func resume(session: ConsumerSession) throws
    func bases(of queues: [Int]) throws -> [Int: UInt32]
    func status() throws -> DeviceStatus
    func configSpace() throws -> [UInt8]
    func config(offset: UInt32, length: UInt32) throws -> [UInt8]
    /// The consumer replaced its memory table (SET_MEM_TABLE).
    func memoryChanged(_ session: ConsumerSession) throws
    /// The consumer gave queue `queue` another kick (or call) eventfd while the backend holds it.
    func kickChanged(queue: Int, session: ConsumerSession) throws
    func callChanged(queue: Int, session: ConsumerSession) throws
    /// The consumer enabled or disabled queue `queue` (SET_VRING_ENABLE).
    func enabledChanged(queue: Int, session: ConsumerSession) throws
    /// Forgets the consumer's memory (a hardware device's pinned pages go at once).
    func unmapAll()
    /// Stops touching the consumer's memory (device reset).
    func stop()
    func release()
}

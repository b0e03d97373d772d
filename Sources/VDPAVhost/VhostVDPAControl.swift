import VirtioModel

/// The vhost-vdpa operations a backend of vdpad needs, as a protocol: the real
/// ``VhostVDPADevice`` (`/dev/vhost-vdpa-N`, tested in the kernel lab) and a fake for
/// unit tests of the layers above implement it. Every method wraps one ioctl (or an
/// IOTLB `write()`); see ``VhostVDPADevice`` for the kernel's rules.
public protocol VhostVDPAControl: AnyObject, Sendable {
    /// The character device path, for messages.
    var path: String { get }
    func setOwner() throws(VhostError)
    func deviceID() throws(VhostError) -> UInt32
    func features() throws(VhostError) -> VirtioFeatures
    func setFeatures(_ features: VirtioFeatures) throws(VhostError)
    func backendFeatures() throws(VhostError) -> BackendFeatures
    func setBackendFeatures(_ features: BackendFeatures) throws(VhostError)
    func status() throws(VhostError) -> DeviceStatus
    func setStatus(_ status: DeviceStatus) throws(VhostError)
    func configSize() throws(VhostError) -> UInt32
    func config(offset: UInt32, length: UInt32) throws(VhostError) -> [UInt8]
    func queueCount() throws(VhostError) -> UInt32
    func maximumQueueSize() throws(VhostError) -> UInt16
    func iovaRange() throws(VhostError) -> IOVARange
    func setQueueSize(_ queue: QueueIndex, _ size: UInt16) throws(VhostError)
    func setQueueAddresses(_ queue: QueueIndex, _ addresses: VringAddresses) throws(VhostError)
    func queueBase(_ queue: QueueIndex) throws(VhostError) -> UInt32
    func setQueueBase(_ queue: QueueIndex, _ base: UInt32) throws(VhostError)
    func setKick(_ queue: QueueIndex, _ eventFD: Int32) throws(VhostError)
    func setCall(_ queue: QueueIndex, _ eventFD: Int32) throws(VhostError)
    func setQueueEnabled(_ queue: QueueIndex, _ enabled: Bool) throws(VhostError)
    func suspend() throws(VhostError)
    func resume() throws(VhostError)
    func send(_ messages: [IOTLBMessage]) throws(VhostError)
    /// Closes the device: the kernel resets it (vhost_vdpa_release) and may delete it.
    func close()
}

extension VhostVDPADevice: VhostVDPAControl {}

/// Opens vhost-vdpa character devices: the real one opens `/dev/vhost-vdpa-N`, a fake
/// hands out fakes.
public protocol VhostVDPAOpening: Sendable {
    func open(path: String) throws(VhostError) -> any VhostVDPAControl
}

/// Opens the real `/dev/vhost-vdpa-N`.
public struct VhostVDPADeviceOpener: VhostVDPAOpening {
    public init() {}
    public func open(path: String) throws(VhostError) -> any VhostVDPAControl { try VhostVDPADevice(path: path) }
}

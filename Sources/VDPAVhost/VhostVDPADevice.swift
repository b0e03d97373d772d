import CVhostUAPI
import VDPASystem
import VirtioModel

/// One `/dev/vhost-vdpa-N`: the vhost-vdpa character device of a vDPA device bound to
/// the `vhost_vdpa` bus driver (drivers/vhost/vdpa.c). Each method wraps one ioctl of
/// include/uapi/linux/vhost.h, named in its doc comment and in its errors; IOTLB
/// updates go through `write()` as `struct vhost_msg_v2`.
///
/// The kernel's rules that matter to callers: the first opener owns the device after
/// `setOwner()`; vring addresses and bases may be set only before DRIVER_OK or while
/// suspended; vring ioctls on an index ≥ the queue count fail with ENOBUFS.
public final class VhostVDPADevice: @unchecked Sendable {
    // SAFETY (@unchecked): all state is the file descriptor, which the kernel serialises.
    public let path: String
    private let file: DeviceFile

    public init(path: String) throws(VhostError) {
        self.path = path
        do { file = try DeviceFile(path: path) } catch { throw VhostError(step: "open", device: path, failure: error) }
    }

    public func close() { file.close() }

    // MARK: ownership, identity, features

    /// VHOST_SET_OWNER: this process owns the device (its memory is what IOTLB
    /// `uaddr`s refer to).
    public func setOwner() throws(VhostError) { try call("VHOST_SET_OWNER") { try file.control(UInt(CVhost_SET_OWNER), operation: "VHOST_SET_OWNER") } }

    /// VHOST_RESET_OWNER.
    public func resetOwner() throws(VhostError) { try call("VHOST_RESET_OWNER") { try file.control(UInt(CVhost_RESET_OWNER), operation: "VHOST_RESET_OWNER") } }

    /// VHOST_VDPA_GET_DEVICE_ID: the virtio device id (1 = net, 2 = block).
    public func deviceID() throws(VhostError) -> UInt32 { try get("VHOST_VDPA_GET_DEVICE_ID", CVhost_VDPA_GET_DEVICE_ID, UInt32(0)) }

    /// VHOST_GET_FEATURES: the device's features (what it offers).
    public func features() throws(VhostError) -> VirtioFeatures {
        VirtioFeatures(rawValue: try get("VHOST_GET_FEATURES", CVhost_GET_FEATURES, UInt64(0)))
    }

    /// VHOST_SET_FEATURES: the features the driver accepts (before FEATURES_OK).
    public func setFeatures(_ features: VirtioFeatures) throws(VhostError) {
        try set("VHOST_SET_FEATURES", CVhost_SET_FEATURES, features.rawValue)
    }

    /// VHOST_GET_BACKEND_FEATURES.
    public func backendFeatures() throws(VhostError) -> BackendFeatures {
        BackendFeatures(rawValue: try get("VHOST_GET_BACKEND_FEATURES", CVhost_GET_BACKEND_FEATURES, UInt64(0)))
    }

    /// VHOST_SET_BACKEND_FEATURES (unknown bits: EOPNOTSUPP; DESC_ASID without IOTLB_ASID: EINVAL).
    public func setBackendFeatures(_ features: BackendFeatures) throws(VhostError) {
        try set("VHOST_SET_BACKEND_FEATURES", CVhost_SET_BACKEND_FEATURES, features.rawValue)
    }

    // MARK: status, config

    /// VHOST_VDPA_GET_STATUS.
    public func status() throws(VhostError) -> DeviceStatus {
        DeviceStatus(rawValue: try get("VHOST_VDPA_GET_STATUS", CVhost_VDPA_GET_STATUS, UInt8(0)))
    }

    /// VHOST_VDPA_SET_STATUS (0 resets the device).
    public func setStatus(_ status: DeviceStatus) throws(VhostError) {
        try set("VHOST_VDPA_SET_STATUS", CVhost_VDPA_SET_STATUS, status.rawValue)
    }

    /// VHOST_VDPA_GET_CONFIG_SIZE: bytes of device-specific config space.
    public func configSize() throws(VhostError) -> UInt32 { try get("VHOST_VDPA_GET_CONFIG_SIZE", CVhost_VDPA_GET_CONFIG_SIZE, UInt32(0)) }

    /// VHOST_VDPA_GET_CONFIG: `length` bytes of config space at `offset`
    /// (`struct vhost_vdpa_config { u32 off; u32 len; u8 buf[]; }`).
    public func config(offset: UInt32 = 0, length: UInt32) throws(VhostError) -> [UInt8] {
        var buffer = Self.configBuffer(offset: offset, bytes: [UInt8](repeating: 0, count: Int(length)))
        try call("VHOST_VDPA_GET_CONFIG") {
            try buffer.withUnsafeMutableBytes { try file.control(UInt(CVhost_VDPA_GET_CONFIG), buffer: $0, operation: "VHOST_VDPA_GET_CONFIG") }
        }
        return Array(buffer[8...])
    }

    /// VHOST_VDPA_SET_CONFIG: writes `bytes` at `offset` of config space.
    public func setConfig(offset: UInt32, bytes: [UInt8]) throws(VhostError) {
        var buffer = Self.configBuffer(offset: offset, bytes: bytes)
        try call("VHOST_VDPA_SET_CONFIG") {
            try buffer.withUnsafeMutableBytes { try file.control(UInt(CVhost_VDPA_SET_CONFIG), buffer: $0, operation: "VHOST_VDPA_SET_CONFIG") }
        }
    }

    private static func configBuffer(offset: UInt32, bytes: [UInt8]) -> [UInt8] {
        withUnsafeBytes(of: offset.littleEndian, Array.init) + withUnsafeBytes(of: UInt32(bytes.count).littleEndian, Array.init) + bytes
    }

    // MARK: queues, groups, address spaces

    /// VHOST_VDPA_GET_VQS_COUNT.
    public func queueCount() throws(VhostError) -> UInt32 { try get("VHOST_VDPA_GET_VQS_COUNT", CVhost_VDPA_GET_VQS_COUNT, UInt32(0)) }

    /// VHOST_VDPA_GET_VRING_NUM: the largest queue size the device takes.
    public func maximumQueueSize() throws(VhostError) -> UInt16 { try get("VHOST_VDPA_GET_VRING_NUM", CVhost_VDPA_GET_VRING_NUM, UInt16(0)) }

    /// VHOST_VDPA_GET_VRING_SIZE: the size of one queue (kernels ≥ 6.10).
    public func queueSize(_ queue: QueueIndex) throws(VhostError) -> UInt32 {
        try vringState("VHOST_VDPA_GET_VRING_SIZE", CVhost_VDPA_GET_VRING_SIZE, queue, 0).num
    }

    /// VHOST_VDPA_GET_IOVA_RANGE.
    public func iovaRange() throws(VhostError) -> IOVARange {
        let raw = try get("VHOST_VDPA_GET_IOVA_RANGE", CVhost_VDPA_GET_IOVA_RANGE, (UInt64(0), UInt64(0)))
        return IOVARange(first: IOVA(raw.0), last: IOVA(raw.1))
    }

    /// VHOST_VDPA_GET_GROUP_NUM: virtqueue groups.
    public func groupCount() throws(VhostError) -> UInt32 { try get("VHOST_VDPA_GET_GROUP_NUM", CVhost_VDPA_GET_GROUP_NUM, UInt32(0)) }

    /// VHOST_VDPA_GET_AS_NUM: address spaces.
    public func addressSpaceCount() throws(VhostError) -> UInt32 { try get("VHOST_VDPA_GET_AS_NUM", CVhost_VDPA_GET_AS_NUM, UInt32(0)) }

    /// VHOST_VDPA_GET_VRING_GROUP: the group of a queue.
    public func group(of queue: QueueIndex) throws(VhostError) -> UInt32 {
        try vringState("VHOST_VDPA_GET_VRING_GROUP", CVhost_VDPA_GET_VRING_GROUP, queue, 0).num
    }

    /// VHOST_VDPA_SET_GROUP_ASID: puts a group in an address space.
    public func setAddressSpace(_ asid: UInt32, forGroup group: UInt32) throws(VhostError) {
        _ = try vringState("VHOST_VDPA_SET_GROUP_ASID", CVhost_VDPA_SET_GROUP_ASID, QueueIndex(group), asid)
    }

    // MARK: one virtqueue

    /// VHOST_SET_VRING_NUM: the queue's size.
    public func setQueueSize(_ queue: QueueIndex, _ size: UInt16) throws(VhostError) {
        _ = try vringState("VHOST_SET_VRING_NUM", CVhost_SET_VRING_NUM, queue, UInt32(size))
    }

    /// VHOST_SET_VRING_ADDR (`struct vhost_vring_addr`, 40 bytes; the addresses are IOVAs
    /// under an IOTLB). Only before DRIVER_OK or while suspended.
    public func setQueueAddresses(_ queue: QueueIndex, _ addresses: VringAddresses) throws(VhostError) {
        // index u32, flags u32, desc u64, used u64, avail u64, log u64
        var raw: (UInt32, UInt32, UInt64, UInt64, UInt64, UInt64) = (
            queue.rawValue, 0, addresses.descriptorTable.rawValue, addresses.deviceArea.rawValue,
            addresses.driverArea.rawValue, 0)
        try call("VHOST_SET_VRING_ADDR") { try file.control(UInt(CVhost_SET_VRING_ADDR), &raw, operation: "VHOST_SET_VRING_ADDR") }
    }

    /// VHOST_GET_VRING_BASE: where the device stands in the queue, in vhost's encoding
    /// (split: next avail index; packed: avail and used positions with wrap counters in
    /// bit 15 of each half — see `VringBase` in the Virtqueue module).
    public func queueBase(_ queue: QueueIndex) throws(VhostError) -> UInt32 {
        try vringState("VHOST_GET_VRING_BASE", CVhost_GET_VRING_BASE, queue, 0).num
    }

    /// VHOST_SET_VRING_BASE. Only before DRIVER_OK or while suspended.
    public func setQueueBase(_ queue: QueueIndex, _ base: UInt32) throws(VhostError) {
        _ = try vringState("VHOST_SET_VRING_BASE", CVhost_SET_VRING_BASE, queue, base)
    }

    /// VHOST_SET_VRING_KICK: the eventfd the driver signals (-1: none).
    public func setKick(_ queue: QueueIndex, _ eventFD: Int32) throws(VhostError) {
        try vringFile("VHOST_SET_VRING_KICK", CVhost_SET_VRING_KICK, queue, eventFD)
    }

    /// VHOST_SET_VRING_CALL: the eventfd the device signals (-1: none).
    public func setCall(_ queue: QueueIndex, _ eventFD: Int32) throws(VhostError) {
        try vringFile("VHOST_SET_VRING_CALL", CVhost_SET_VRING_CALL, queue, eventFD)
    }

    /// VHOST_VDPA_SET_VRING_ENABLE.
    public func setQueueEnabled(_ queue: QueueIndex, _ enabled: Bool) throws(VhostError) {
        _ = try vringState("VHOST_VDPA_SET_VRING_ENABLE", CVhost_VDPA_SET_VRING_ENABLE, queue, enabled ? 1 : 0)
    }

    // MARK: suspend, resume

    /// VHOST_VDPA_SUSPEND: the device stops processing descriptors at a clean point
    /// (no-op before DRIVER_OK; EOPNOTSUPP when the parent cannot).
    public func suspend() throws(VhostError) { try call("VHOST_VDPA_SUSPEND") { try file.control(UInt(CVhost_VDPA_SUSPEND), operation: "VHOST_VDPA_SUSPEND") } }

    /// VHOST_VDPA_RESUME.
    public func resume() throws(VhostError) { try call("VHOST_VDPA_RESUME") { try file.control(UInt(CVhost_VDPA_RESUME), operation: "VHOST_VDPA_RESUME") } }

    // MARK: IOTLB

    /// Writes IOTLB messages (needs IOTLB_MSG_V2 in the backend features; batches need
    /// IOTLB_BATCH). The kernel refuses an UPDATE outside the IOVA range or overlapping a
    /// mapping, but `vhost_chr_write_iter` reports every refused message as EFAULT: the
    /// error names the message, the errno cannot say more.
    public func send(_ messages: [IOTLBMessage]) throws(VhostError) {
        for message in messages {
            let step = switch message {
            case .update: "IOTLB update"
            case .invalidate: "IOTLB invalidate"
            case .batchBegin: "IOTLB batch begin"
            case .batchEnd: "IOTLB batch end"
            }
            try call(step) { try file.writeMessage(message.encoded, operation: step) }
        }
    }

    // MARK: plumbing

    private func vringState(_ step: String, _ request: UInt, _ queue: QueueIndex, _ num: UInt32) throws(VhostError) -> (index: UInt32, num: UInt32) {
        var state: (UInt32, UInt32) = (queue.rawValue, num)
        try call(step) { try file.control(request, &state, operation: "ioctl") }
        return state
    }

    private func vringFile(_ step: String, _ request: UInt, _ queue: QueueIndex, _ fd: Int32) throws(VhostError) {
        var state: (UInt32, Int32) = (queue.rawValue, fd)
        try call(step) { try file.control(request, &state, operation: "ioctl") }
    }

    private func get<T>(_ step: String, _ request: UInt, _ initial: T) throws(VhostError) -> T {
        var value = initial
        try call(step) { try file.control(request, &value, operation: "ioctl") }
        return value
    }

    private func set<T>(_ step: String, _ request: UInt, _ value: T) throws(VhostError) {
        var value = value
        try call(step) { try file.control(request, &value, operation: "ioctl") }
    }

    private func call(_ step: String, _ body: () throws -> Void) throws(VhostError) {
        do { try body() } catch { throw VhostError(step: step, device: path, failure: error) }
    }
}

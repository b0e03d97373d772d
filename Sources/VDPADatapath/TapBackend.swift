import VDPASystem
import VirtioModel
import VirtioNet

/// A ``NetBackend`` on a TAP interface (``TapDevice``): packets cross the
/// boundary as `virtio_net_hdr_v1` + frame, exactly the guest's layout, so
/// offloads (checksum, TSO, UFO) pass through untouched; the kernel
/// validates them again (`virtio_net_hdr_to_skb`).
public final class TapBackend: NetBackend {
    public let tap: TapDevice

    public init(tap: TapDevice) {
        self.tap = tap
    }

    /// Opens TAP `name` (one queue; `multiQueue` for one backend per queue pair)
    /// and sets its offloads from the negotiated features.
    public convenience init(name: String, multiQueue: Bool = false, features: VirtioFeatures) throws {
        self.init(tap: try TapDevice(name: name, multiQueue: multiQueue))
        try tap.setOffloads(Self.offloads(for: features))
    }

    /// TUNSETOFFLOAD flags matching the guest's receive offloads (what the
    /// kernel may hand to the guest): GUEST_CSUM → CSUM, GUEST_TSO4/6 →
    /// TSO4/6, GUEST_ECN → TSO_ECN, GUEST_UFO → UFO, GUEST_USO4/6 → USO4/6,
    /// as QEMU's `tap_set_offload` maps them. `guestOffloads` (set by
    /// VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET) narrows the negotiated set.
    public static func offloads(for features: VirtioFeatures, guestOffloads: UInt64? = nil) -> TapDevice.Offloads {
        typealias Net = VirtioFeatures.Net
        var active = features
        if let guestOffloads { active = features.intersection(VirtioFeatures(rawValue: guestOffloads)) }
        var offloads: TapDevice.Offloads = []
        guard active.contains(Net.guestChecksum) else { return [] }
        offloads.insert(.checksum)
        if active.contains(Net.guestTSO4) { offloads.insert(.tso4) }
        if active.contains(Net.guestTSO6) { offloads.insert(.tso6) }
        if active.contains(Net.guestECN) { offloads.insert(.tsoECN) }
        if active.contains(Net.guestUFO) { offloads.insert(.ufo) }
        if active.contains(VirtioFeatures(bit: 54)) { offloads.insert(.uso4) }
        if active.contains(VirtioFeatures(bit: 55)) { offloads.insert(.uso6) }
        return offloads
    }

    public var readiness: NetBackendReadiness { .fileDescriptor(tap.fileDescriptor) }

    public func send(header: VirtioNetHeader, frame: UnsafeRawBufferPointer) throws(NetBackendError) -> NetSendResult {
        do {
            let sent = try withUnsafeTemporaryAllocation(byteCount: VirtioNetHeader.size, alignment: 2) { buffer in
                header.serialize(into: buffer)
                return try tap.write(header: UnsafeRawBufferPointer(buffer), frame: frame)
            }
            return sent ? .sent : .wouldBlock
        } catch {
            throw Self.backendError("write", error)
        }
    }

    public func receive(into frame: UnsafeMutableRawBufferPointer) throws(NetBackendError) -> NetReceivedFrame? {
        do {
            return try withUnsafeTemporaryAllocation(byteCount: VirtioNetHeader.size, alignment: 2) { buffer in
                guard let length = try tap.read(header: buffer, frame: frame) else { return nil }
                let header = try VirtioNetHeader(parsing: UnsafeRawBufferPointer(buffer))
                return NetReceivedFrame(header: header, length: min(length, frame.count))
            }
        } catch {
            throw Self.backendError("read", error)
        }
    }

    static func backendError(_ operation: String, _ error: any Error) -> NetBackendError {
        if let error = error as? SystemError {
            return NetBackendError(operation: operation, errno: error.errno, message: error.description)
        }
        return NetBackendError(operation: operation, message: "\(error)")
    }
}

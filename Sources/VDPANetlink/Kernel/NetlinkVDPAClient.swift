import Dispatch
import VirtioModel

/// The `vdpa` generic netlink family through libnl: every command of Linux 6.12.
///
/// Calls block in the kernel (device creation probes drivers), so they run on a
/// private serial queue, never on the caller's thread pool; one socket serves all
/// calls in order and is replaced after a transport failure.
public final class NetlinkVDPAClient: @unchecked Sendable {
    // @unchecked: `socket` is only touched on `queue`.
    private let queue = DispatchQueue(label: "vdpad.netlink")
    private var socket: GenericNetlinkSocket?

    public init() {}

    private func perform<T: Sendable>(_ body: @escaping @Sendable (GenericNetlinkSocket) throws(VDPAError) -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                do {
                    let socket = try self.connectedSocket()
                    continuation.resume(returning: try body(socket))
                } catch let error as VDPAError {
                    if case .netlinkLibrary = error { self.socket = nil }
                    continuation.resume(throwing: error)
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    private func connectedSocket() throws(VDPAError) -> GenericNetlinkSocket {
        if let socket { return socket }
        let socket = try GenericNetlinkSocket(familyName: VDPAFamily.name)
        self.socket = socket
        return socket
    }

    private static func decode<T>(_ operation: String, _ reply: GenericNetlinkReply, _ decoder: (NetlinkAttributeSet) throws(NetlinkAttributeError) -> T) throws(VDPAError) -> T {
        do {
            return try decoder(try NetlinkAttributeSet(parsing: reply.attributeBytes))
        } catch {
            throw .malformedReply(operation: operation, detail: error.description)
        }
    }

    private static func single<T>(_ operation: String, _ replies: [GenericNetlinkReply], _ decoder: (NetlinkAttributeSet) throws(NetlinkAttributeError) -> T) throws(VDPAError) -> T {
        guard let reply = replies.first else { throw .malformedReply(operation: operation, detail: "no reply message") }
        return try decode(operation, reply, decoder)
    }

    static func handleAttributes(_ handle: ManagementDeviceHandle) -> [EncodedAttribute] {
        var attributes: [EncodedAttribute] = []
        if let bus = handle.bus { attributes.append(.init(type: VDPAAttribute.managementBusName.rawValue, value: .string(bus))) }
        attributes.append(.init(type: VDPAAttribute.managementDeviceName.rawValue, value: .string(handle.name)))
        return attributes
    }

    /// The attributes of `VDPA_CMD_DEV_NEW`, encoded as iproute2 encodes them:
    /// names NUL-terminated, MAC as 6 bytes, MTU and max_vqp as u16, features as u64.
    static func createAttributes(_ request: DeviceCreateRequest) -> [EncodedAttribute] {
        var attributes = [EncodedAttribute(type: VDPAAttribute.deviceName.rawValue, value: .string(request.name))]
        attributes += handleAttributes(request.managementDevice)
        if let mac = request.macAddress {
            attributes.append(.init(type: VDPAAttribute.netMACAddress.rawValue, value: .binary(mac.bytes)))
        }
        if let mtu = request.mtu { attributes.append(.init(type: VDPAAttribute.netMTU.rawValue, value: .u16(mtu))) }
        if let pairs = request.maxVirtqueuePairs {
            attributes.append(.init(type: VDPAAttribute.netMaxVirtqueuePairs.rawValue, value: .u16(pairs)))
        }
        if let features = request.deviceFeatures {
            attributes.append(.init(type: VDPAAttribute.deviceFeatures.rawValue, value: .u64(features.rawValue)))
        }
        return attributes
    }

    private static func nameAttribute(_ name: String) -> EncodedAttribute {
        EncodedAttribute(type: VDPAAttribute.deviceName.rawValue, value: .string(name))
    }

    public func familyStatus() async -> VDPAFamilyStatus {
        do {
            return .available(familyID: try await perform { $0.familyID })
        } catch let error as VDPAError {
            if case .familyUnavailable(let reason) = error { return .unavailable(reason: reason) }
            return .unavailable(reason: error.description)
        } catch {
            return .unavailable(reason: "\(error)")
        }
    }

    public func managementDevices() async throws -> [ManagementDevice] {
        try await perform { socket throws(VDPAError) in
            let operation = "VDPA_CMD_MGMTDEV_GET"
            let replies = try socket.request(command: VDPACommand.managementDeviceGet.rawValue, dump: true, attributes: [], operation: operation)
            var devices: [ManagementDevice] = []
            for reply in replies { devices.append(try Self.decode(operation, reply, VDPAReplyDecoder.managementDevice)) }
            return devices
        }
    }

    public func managementDevice(_ handle: ManagementDeviceHandle) async throws -> ManagementDevice {
        try await perform { socket throws(VDPAError) in
            let operation = "VDPA_CMD_MGMTDEV_GET \(handle)"
            let replies = try socket.request(command: VDPACommand.managementDeviceGet.rawValue, dump: false, attributes: Self.handleAttributes(handle), operation: operation)
            return try Self.single(operation, replies, VDPAReplyDecoder.managementDevice)
        }
    }

    public func devices() async throws -> [VDPADeviceInfo] {
        try await perform { socket throws(VDPAError) in
            let operation = "VDPA_CMD_DEV_GET"
            let replies = try socket.request(command: VDPACommand.deviceGet.rawValue, dump: true, attributes: [], operation: operation)
            var devices: [VDPADeviceInfo] = []
            for reply in replies { devices.append(try Self.decode(operation, reply, VDPAReplyDecoder.device)) }
            return devices
        }
    }

    public func device(named name: String) async throws -> VDPADeviceInfo {
        try await perform { socket throws(VDPAError) in
            let operation = "VDPA_CMD_DEV_GET \(name)"
            let replies = try socket.request(command: VDPACommand.deviceGet.rawValue, dump: false, attributes: [Self.nameAttribute(name)], operation: operation)
            return try Self.single(operation, replies, VDPAReplyDecoder.device)
        }
    }

    public func createDevice(_ request: DeviceCreateRequest) async throws {
        try await perform { socket throws(VDPAError) in
            _ = try socket.request(command: VDPACommand.deviceNew.rawValue, dump: false, attributes: Self.createAttributes(request), operation: "VDPA_CMD_DEV_NEW \(request.name)")
        }
    }

    public func deleteDevice(named name: String) async throws {
        try await perform { socket throws(VDPAError) in
            _ = try socket.request(command: VDPACommand.deviceDelete.rawValue, dump: false, attributes: [Self.nameAttribute(name)], operation: "VDPA_CMD_DEV_DEL \(name)")
        }
    }

    public func deviceConfig(named name: String) async throws -> DeviceConfig {
        try await perform { socket throws(VDPAError) in
            let operation = "VDPA_CMD_DEV_CONFIG_GET \(name)"
            let replies = try socket.request(command: VDPACommand.deviceConfigGet.rawValue, dump: false, attributes: [Self.nameAttribute(name)], operation: operation)
            return try Self.single(operation, replies, VDPAReplyDecoder.config)
        }
    }

    public func vendorStatistics(device name: String, queueIndex: UInt32) async throws -> VendorStatistics {
        try await perform { socket throws(VDPAError) in
            let operation = "VDPA_CMD_DEV_VSTATS_GET \(name) qidx \(queueIndex)"
            let attributes = [Self.nameAttribute(name), EncodedAttribute(type: VDPAAttribute.queueIndex.rawValue, value: .u32(queueIndex))]
            let replies = try socket.request(command: VDPACommand.deviceVendorStatsGet.rawValue, dump: false, attributes: attributes, operation: operation)
            return try Self.single(operation, replies, VDPAReplyDecoder.vendorStatistics)
        }
    }

    public func setMACAddress(device name: String, to address: MACAddress) async throws {
        try await perform { socket throws(VDPAError) in
            let attributes = [Self.nameAttribute(name), EncodedAttribute(type: VDPAAttribute.netMACAddress.rawValue, value: .binary(address.bytes))]
            _ = try socket.request(command: VDPACommand.deviceAttributeSet.rawValue, dump: false, attributes: attributes, operation: "VDPA_CMD_DEV_ATTR_SET \(name)")
        }
    }
}

import Foundation

/// A port: a vhost-user socket vdpad serves to one consumer (a VMM), backed by a vDPA
/// device vdpad holds open. Kept so a restarted daemon serves the same sockets.
public struct PortRecord: Codable, Hashable, Sendable {
    public var name: String
    /// The vDPA device backing it (nil: none attached).
    public var device: String?
    public var socketPath: String
    /// The backend features (`VHOST_GET_BACKEND_FEATURES`) last read from its device, and
    /// that device's management device: what the capabilities document reports.
    public var backendFeatures: Int64?
    public var managementDevice: String?
    /// The uid and gid whose VMMs may connect (nil: any the socket lets in).
    public var consumerUID: Int64?
    public var consumerGID: Int64?
    /// The TAP interface of its software backend (nil: none; at most one of `device` and `tap`).
    public var tap: String?
    /// The profile the port presents to its VMM (nil: the backend's features).
    public var profile: String?
    /// The queue pairs of its software backend's TAP (nil: one).
    public var queues: Int64?
    public var createdAt: Date
    public var updatedAt: Date

    public init(name: String, device: String?, socketPath: String, backendFeatures: Int64? = nil, managementDevice: String? = nil,
                consumerUID: Int64? = nil, consumerGID: Int64? = nil, tap: String? = nil, profile: String? = nil, queues: Int64? = nil,
                createdAt: Date = Date(), updatedAt: Date = Date()) {
        self.tap = tap
        self.queues = queues
        self.profile = profile
        self.consumerUID = consumerUID
        self.consumerGID = consumerGID
        self.name = name
        self.device = device
        self.socketPath = socketPath
        self.backendFeatures = backendFeatures
        self.managementDevice = managementDevice
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A saved virtqueue state, kept as the JSON of the policy layer's
/// `VirtqueueStateDocument` (`vdpad.vqstate/v1`).
public struct SnapshotRecord: Codable, Hashable, Sendable {
    public var name: String
    public var device: String
    public var port: String?
    /// Where it came from: "saved" here or "imported".
    public var origin: String
    public var json: String
    public var createdAt: Date

    public init(name: String, device: String, port: String?, origin: String, json: String, createdAt: Date = Date()) {
        self.name = name
        self.device = device
        self.port = port
        self.origin = origin
        self.json = json
        self.createdAt = createdAt
    }
}

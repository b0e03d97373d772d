import Foundation
import VirtioModel

/// How vdpad created a device, kept because the kernel cannot report it back
/// (it has no attribute for the provisioning request once the device exists).
public struct DeviceRecord: Codable, Hashable, Sendable {
    /// Where the record stands in the device's life. A record is written before the
    /// kernel is asked to act, so a crash between the two is resolved at start.
    public enum State: String, Codable, Sendable {
        /// `VDPA_CMD_DEV_NEW` may have been sent; not yet confirmed.
        case creating
        /// The device exists (or existed at the last reconcile) and is vdpad's.
        case active
        /// `VDPA_CMD_DEV_DEL` may have been sent; not yet confirmed.
        case deleting
        /// A change (the MAC, the driver) is recorded and may have been sent; not yet
        /// confirmed. At start vdpad carries it out (the record is what was asked for).
        case changing
        /// The kernel lost the device (host reboot, module unload) and it was not recreated.
        case vanished
    }

    public var name: String
    public var managementBus: String?
    public var managementName: String
    public var macAddress: String?
    public var mtu: Int?
    public var maxVirtqueuePairs: Int?
    /// The `device_features` requested at creation (hex), nil when left to the device.
    public var requestedFeatures: String?
    /// The device features the kernel reported after creation (hex).
    public var provisionedFeatures: String?
    /// The virtio device type the kernel reported.
    public var deviceType: Int?
    /// The bus driver vdpad was asked to keep the device on; nil: the kernel's default.
    public var driver: String?
    /// The profile the device was made from, and its version then.
    public var profile: String?
    public var profileVersion: Int?
    /// The quirks in force on the management device when the device was made.
    public var quirks: [String]?
    public var state: State
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        name: String, managementBus: String?, managementName: String, macAddress: String? = nil, mtu: Int? = nil,
        maxVirtqueuePairs: Int? = nil, requestedFeatures: String? = nil, provisionedFeatures: String? = nil,
        deviceType: Int? = nil, driver: String? = nil, profile: String? = nil, profileVersion: Int? = nil, quirks: [String]? = nil,
        state: State, createdAt: Date = Date(), updatedAt: Date = Date()
    ) {
        self.profile = profile
        self.profileVersion = profileVersion
        self.quirks = quirks
        self.name = name
        self.managementBus = managementBus
        self.managementName = managementName
        self.macAddress = macAddress
        self.mtu = mtu
        self.maxVirtqueuePairs = maxVirtqueuePairs
        self.requestedFeatures = requestedFeatures
        self.provisionedFeatures = provisionedFeatures
        self.deviceType = deviceType
        self.driver = driver
        self.state = state
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

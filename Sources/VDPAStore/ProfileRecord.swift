import Foundation

/// A profile added through the API, kept as the JSON of the policy layer's `Profile`
/// (`vdpad.profile/v1`) so the store does not depend on how profiles are modelled.
public struct ProfileRecord: Codable, Hashable, Sendable {
    public var name: String
    public var version: Int
    /// The profile's JSON document.
    public var json: String
    public var createdAt: Date
    public var updatedAt: Date

    public init(name: String, version: Int, json: String, createdAt: Date = Date(), updatedAt: Date = Date()) {
        self.name = name
        self.version = version
        self.json = json
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

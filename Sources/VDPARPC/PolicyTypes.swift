import VDPAPolicy
import VirtioModel

// MARK: profile_add, profile_del, profile_list, profile_get

/// A profile as the API shows it: the profile itself, where it comes from, and the advice its
/// validation gave (warnings never refuse a profile).
public struct ProfileInfo: Codable, Hashable, Sendable {
    /// Where a profile is defined.
    public enum Source: String, Codable, Hashable, Sendable {
        /// Added with `profile_add`, kept in the state store.
        case api
        /// A file of the profiles directory (`profiles_dir`), read at start; read-only through the API.
        case file
    }

    public var profile: Profile
    public var source: Source
    /// The file that defines it (source `file`).
    public var file: String?
    /// When it was added or last replaced (source `api`).
    public var updatedAt: String?
    /// Advice the profile ignores (validation warnings).
    public var warnings: [ProfileIssue]

    public init(profile: Profile, source: Source, file: String? = nil, updatedAt: String? = nil, warnings: [ProfileIssue] = []) {
        self.profile = profile
        self.source = source
        self.file = file
        self.updatedAt = updatedAt
        self.warnings = warnings
    }

    private enum CodingKeys: String, CodingKey {
        case profile, source, file, updatedAt = "updated_at", warnings
    }
}

public struct ProfileNameParams: Codable, Hashable, Sendable {
    public var name: String
    public init(name: String) { self.name = name }
}

public struct ProfileListResult: Codable, Hashable, Sendable {
    public var profiles: [ProfileInfo]
    public init(profiles: [ProfileInfo]) { self.profiles = profiles }
}

public struct ProfileDelResult: Codable, Hashable, Sendable {
    public var name: String
    public init(name: String) { self.name = name }
}

extension RPCErrorReason {
    /// A profile validation issue.
    public init(_ issue: ProfileIssue) {
        self.init(code: issue.code.rawValue, message: issue.message, severity: issue.severity.rawValue)
    }

    /// A reason (or note) of a compatibility check.
    public init(_ reason: CompatibilityReason) {
        self.init(code: reason.code.rawValue, message: reason.message, features: reason.features, quirk: reason.quirk,
                  attribute: reason.attribute, requested: reason.requested, limit: reason.limit)
    }
}

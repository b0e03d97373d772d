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

// MARK: compat_check

public struct CompatCheckParams: Codable, Hashable, Sendable {
    /// What must be presented: exactly one of the three.
    public struct Source: Codable, Hashable, Sendable {
        /// A profile's name.
        public var profile: String?
        /// A device on this host: its device features and configuration.
        public var device: String?
        /// A requirement given in full (device type, features, mtu, queue pairs, …).
        public var requirement: DeviceRequirement?

        public init(profile: String? = nil, device: String? = nil, requirement: DeviceRequirement? = nil) {
            self.profile = profile
            self.device = device
            self.requirement = requirement
        }
    }

    /// Where it must be presented: a management device of this host, or a capabilities
    /// document (another host's `caps_export`), optionally narrowed to one of its management devices.
    public struct Destination: Codable, Hashable, Sendable {
        public var mgmtdev: String?
        public var caps: CapabilitiesDocument?

        public init(mgmtdev: String? = nil, caps: CapabilitiesDocument? = nil) {
            self.mgmtdev = mgmtdev
            self.caps = caps
        }
    }

    public var source: Source
    public var destination: Destination

    public init(source: Source, destination: Destination) {
        self.source = source
        self.destination = destination
    }
}

/// A ``CompatibilityResult`` with the exit status `vdpactl compat check` uses for it
/// (0 identical, 1 superset, 2 incompatible), as one flat object.
public struct CompatCheckResult: Codable, Hashable, Sendable {
    public var result: CompatibilityResult
    public var exitCode: Int32

    public init(_ result: CompatibilityResult) {
        self.result = result
        exitCode = result.answer.exitCode
    }

    private enum CodingKeys: String, CodingKey { case exitCode = "exit_code" }

    public init(from decoder: any Decoder) throws {
        result = try CompatibilityResult(from: decoder)
        exitCode = try decoder.container(keyedBy: CodingKeys.self).decode(Int32.self, forKey: .exitCode)
    }

    public func encode(to encoder: any Encoder) throws {
        try result.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(exitCode, forKey: .exitCode)
    }
}

// MARK: compat_baseline

public struct CompatBaselineParams: Codable, Hashable, Sendable {
    /// Capabilities documents of the hosts (each host's `caps_export`).
    public var documents: [CapabilitiesDocument]?
    /// Adds this host's own capabilities document.
    public var includeLocal: Bool?
    /// "network" (default) or "block".
    public var deviceType: String?
    /// The baseline profile's name (default "baseline").
    public var name: String?
    /// Host name → management device handle, for hosts with more than one of the type.
    public var choices: [String: String]?

    public init(documents: [CapabilitiesDocument]? = nil, includeLocal: Bool? = nil, deviceType: String? = nil, name: String? = nil, choices: [String: String]? = nil) {
        self.documents = documents
        self.includeLocal = includeLocal
        self.deviceType = deviceType
        self.name = name
        self.choices = choices
    }

    private enum CodingKeys: String, CodingKey {
        case documents, includeLocal = "include_local", deviceType = "device_type", name, choices
    }
}

// MARK: quirk_list, quirk_test

/// A quirk as the API shows it.
public struct QuirkInfo: Codable, Hashable, Sendable {
    public var name: String
    public var file: String
    public var line: Int
    public var summary: String?
    public var match: QuirkMatch
    /// The actions in the file's own words ("clear GUEST_ANNOUNCE", "cap mtu 9000").
    public var actions: [String]
    /// Management devices of this host it applies to ("[BUS/]NAME").
    public var appliesTo: [String]

    public init(_ quirk: Quirk, appliesTo: [String]) {
        name = quirk.name
        file = quirk.file
        line = quirk.line
        summary = quirk.summary
        match = quirk.match
        actions = quirk.actions.map { QuirkInfo.describe($0, deviceType: quirk.match.deviceType) }
        self.appliesTo = appliesTo
    }

    public static func describe(_ action: QuirkAction, deviceType: VirtioDeviceType?) -> String {
        switch action {
        case .set(let features): "set " + features.names(for: deviceType).joined(separator: ", ")
        case .clear(let features): "clear " + features.names(for: deviceType).joined(separator: ", ")
        case .capMTU(let value): "cap mtu \(value)"
        case .capQueuePairs(let value): "cap queue_pairs \(value)"
        case .capQueueSize(let value): "cap queue_size \(value)"
        case .deny(let attribute): "deny \(attribute.rawValue)"
        }
    }

    private enum CodingKeys: String, CodingKey {
        case name, file, line, summary, match, actions, appliesTo = "applies_to"
    }
}

public struct QuirkListResult: Codable, Hashable, Sendable {
    public var quirks: [QuirkInfo]
    /// Problems in the quirk files (each skipped quirk once, with file and line).
    public var errors: [PolicyFileError]
    public init(quirks: [QuirkInfo], errors: [PolicyFileError]) {
        self.quirks = quirks
        self.errors = errors
    }
}

public struct QuirkTestParams: Codable, Hashable, Sendable {
    /// The text of a quirk file.
    public var text: String
    /// The name to report errors under (default "quirk-test.conf").
    public var fileName: String?
    public init(text: String, fileName: String? = nil) {
        self.text = text
        self.fileName = fileName
    }

    private enum CodingKeys: String, CodingKey {
        case text, fileName = "file_name"
    }
}

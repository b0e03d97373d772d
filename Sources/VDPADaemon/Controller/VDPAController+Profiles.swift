import Foundation
import VDPAPolicy
import VDPARPC
import VDPAStore

/// A profile added through the API, as the controller keeps it.
struct StoredProfile: Sendable {
    var profile: Profile
    var record: ProfileRecord
}

extension VDPAController {
    /// Reads the profiles added through the API from the store; one that no longer decodes is
    /// logged and left out (never fatal).
    func loadStoredProfiles() throws {
        var loaded: [String: StoredProfile] = [:]
        for record in try store.profiles() {
            do {
                let profile = try JSONDecoder().decode(Profile.self, from: Data(record.json.utf8))
                loaded[record.name] = StoredProfile(profile: profile, record: record)
            } catch {
                logger.error("Ignoring a stored profile that does not decode", metadata: ["profile": "\(record.name)", "error": "\(error)"])
            }
        }
        storedProfiles = loaded
    }

    /// The profile named `name`, added through the API or read from the profiles directory.
    func profileInfo(named name: String) -> ProfileInfo? {
        if let file = policy.profiles.first(where: { $0.profile.name == name }) {
            return ProfileInfo(profile: file.profile, source: .file, file: file.file, warnings: Self.warnings(of: file.profile))
        }
        if let stored = storedProfiles[name] {
            return ProfileInfo(profile: stored.profile, source: .api, updatedAt: Timestamp.string(stored.record.updatedAt),
                               warnings: Self.warnings(of: stored.profile))
        }
        return nil
    }

    /// The profile named `name`, or `not_found`.
    func requireProfile(_ name: String, parameter: String) throws -> Profile {
        guard let info = profileInfo(named: name) else {
            throw RPCErrorObject(code: .notFound, message: "no profile \(name)", data: RPCErrorData(parameter: parameter))
        }
        return info.profile
    }

    static func warnings(of profile: Profile) -> [ProfileIssue] {
        profile.validate().filter { $0.severity == .warning }
    }

    // MARK: API: profiles

    /// Adds a profile, or replaces one added through the API by a higher version. Every
    /// validation error is returned at once (`invalid_params`, `data.reasons`).
    public func addProfile(_ profile: Profile) throws -> ProfileInfo {
        let issues = profile.validate()
        let errors = issues.filter { $0.severity == .error }
        guard errors.isEmpty else {
            throw RPCErrorObject(code: .invalidParams, message: "profile '\(profile.name)' is invalid: " + errors.map(\.message).joined(separator: "; "),
                                 data: RPCErrorData(reasons: issues.map(RPCErrorReason.init)))
        }
        if let file = policy.profiles.first(where: { $0.profile.name == profile.name }) {
            throw RPCErrorObject(code: .alreadyExists, message: "profile \(profile.name) is defined in \(file.file); change that file instead")
        }
        let existing = storedProfiles[profile.name]
        if let existing, profile.version <= existing.profile.version {
            if existing.profile == profile, let info = profileInfo(named: profile.name) { return info }  // the same request again
            throw RPCErrorObject(code: .alreadyExists, message:
                "profile \(profile.name) version \(existing.profile.version) exists; add version \(existing.profile.version + 1) or higher to replace it")
        }
        let json = String(decoding: try RPCJSON.encode(profile), as: UTF8.self)
        var record = ProfileRecord(name: profile.name, version: profile.version, json: json, createdAt: existing?.record.createdAt ?? Date())
        try store.save(record)
        record.updatedAt = Date()
        storedProfiles[profile.name] = StoredProfile(profile: profile, record: record)
        logger.info(existing == nil ? "Profile added" : "Profile replaced", metadata: ["profile": "\(profile.name)", "version": "\(profile.version)"])
        return ProfileInfo(profile: profile, source: .api, updatedAt: Timestamp.string(record.updatedAt), warnings: Self.warnings(of: profile))
    }

    /// Deletes a profile added through the API. Devices made from it keep their record of it.
    public func deleteProfile(_ params: ProfileNameParams) throws -> ProfileDelResult {
        if let file = policy.profiles.first(where: { $0.profile.name == params.name }) {
            throw RPCErrorObject(code: .notSupported, message: "profile \(params.name) is defined in \(file.file); remove that file instead")
        }
        guard storedProfiles[params.name] != nil else {
            throw RPCErrorObject(code: .notFound, message: "no profile \(params.name)", data: RPCErrorData(parameter: "name"))
        }
        try store.delete(profileNamed: params.name)
        storedProfiles[params.name] = nil
        logger.info("Profile deleted", metadata: ["profile": "\(params.name)"])
        return ProfileDelResult(name: params.name)
    }

    /// Every profile, by name.
    public func listProfiles() -> ProfileListResult {
        let names = Set(policy.profiles.map(\.profile.name)).union(storedProfiles.keys).sorted()
        return ProfileListResult(profiles: names.compactMap(profileInfo(named:)))
    }

    public func profile(_ params: ProfileNameParams) throws -> ProfileInfo {
        guard let info = profileInfo(named: params.name) else {
            throw RPCErrorObject(code: .notFound, message: "no profile \(params.name)", data: RPCErrorData(parameter: "name"))
        }
        return info
    }
}

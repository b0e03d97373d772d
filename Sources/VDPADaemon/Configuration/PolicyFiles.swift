import Logging
import VDPAPolicy
import VDPASystem

/// The policy vdpad reads at start: profile files (`profiles_dir/*.json`) and quirk files
/// (`quirks_dir/*.conf`). A bad file, or a bad line in one, is logged with its file and line and
/// skipped: policy files never stop the daemon.
public struct LoadedPolicy: Sendable {
    /// A profile from a file, with the file's path.
    public struct FileProfile: Sendable, Hashable {
        public var profile: Profile
        public var file: String
        public init(profile: Profile, file: String) {
            self.profile = profile
            self.file = file
        }
    }

    public var profiles: [FileProfile]
    public var quirks: QuirkDatabase
    /// What was wrong in the quirk files (those quirks were skipped).
    public var quirkErrors: [PolicyFileError] = []

    public init(profiles: [FileProfile] = [], quirks: QuirkDatabase = QuirkDatabase()) {
        self.profiles = profiles
        self.quirks = quirks
    }

    /// Reads the directories; every problem is logged, none is thrown.
    public static func load(profilesDirectory: String?, quirksDirectory: String?, logger: Logger) -> LoadedPolicy {
        var policy = LoadedPolicy()
        if let profilesDirectory {
            let files = readFiles(in: profilesDirectory, suffix: ".json", what: "profile", logger: logger)
            var seen: [String: String] = [:]
            for file in files {
                switch ProfileFile.parse(text: file.text, fileName: file.fileName) {
                case .success(let profile):
                    if let first = seen[profile.name] {
                        logger.error("Ignoring a bad profile file", metadata: ["error": "\(file.fileName): profile '\(profile.name)' is already defined in \(first); ignored"])
                        continue
                    }
                    seen[profile.name] = file.fileName
                    policy.profiles.append(FileProfile(profile: profile, file: file.fileName))
                    for warning in profile.validate() where warning.severity == .warning {
                        logger.notice("Profile advice", metadata: ["file": "\(file.fileName)", "warning": "\(warning.message)"])
                    }
                case .failure(let failure):
                    for error in failure.errors {
                        logger.error("Ignoring a bad profile file", metadata: ["error": "\(error)"])
                    }
                }
            }
            if !policy.profiles.isEmpty {
                logger.info("Loaded profiles", metadata: ["directory": "\(profilesDirectory)", "profiles": "\(policy.profiles.map(\.profile.name))"])
            }
        }
        if let quirksDirectory {
            let files = readFiles(in: quirksDirectory, suffix: ".conf", what: "quirk", logger: logger)
            let (database, errors) = QuirkDatabase.load(files)
            for error in errors {
                logger.error("Ignoring a bad quirk", metadata: ["error": "\(error)"])
            }
            policy.quirks = database
            policy.quirkErrors = errors
            if !database.quirks.isEmpty {
                logger.info("Loaded quirks", metadata: ["directory": "\(quirksDirectory)", "quirks": "\(database.quirks.map(\.name))"])
            }
        }
        return policy
    }

    /// The files of `directory` ending in `suffix`, by name, with their text. A missing directory
    /// is no error (nothing configured); an unreadable file is logged and skipped.
    static func readFiles(in directory: String, suffix: String, what: String, logger: Logger) -> [(fileName: String, text: String)] {
        let names: [String]
        do {
            names = try FileSystem.listDirectory(directory)
        } catch let error as SystemError where error.errno == ErrnoCode.noSuchFileOrDirectory {
            logger.debug("No \(what) directory", metadata: ["directory": "\(directory)"])
            return []
        } catch {
            logger.error("Cannot read the \(what) directory; no \(what)s loaded", metadata: ["directory": "\(directory)", "error": "\(error)"])
            return []
        }
        var files: [(fileName: String, text: String)] = []
        for name in names.sorted() where name.hasSuffix(suffix) && !name.hasPrefix(".") {
            let path = directory + "/" + name
            do {
                files.append((path, try FileSystem.readText(path)))
            } catch {
                logger.error("Cannot read a \(what) file; skipped", metadata: ["file": "\(path)", "error": "\(error)"])
            }
        }
        return files
    }
}

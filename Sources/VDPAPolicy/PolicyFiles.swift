#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VirtioModel

/// An error in a policy file (a profile or quirk file), with where it is: "quirks.d/acme.conf:12: …".
public struct PolicyFileError: Error, Hashable, Sendable, Codable, CustomStringConvertible {
    public var file: String
    /// 1-based; nil when the error is about the whole file or the decoder gives no position.
    public var line: Int?
    public var message: String

    public init(file: String, line: Int?, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String { line.map { "\(file):\($0): \(message)" } ?? "\(file): \(message)" }
}

/// Profile files: `etc/vdpad/profiles.d/*.json`, one JSON ``Profile`` per file. The caller reads
/// the files; these functions take the text and the file name (for the errors).
public enum ProfileFile {
    /// Decodes and validates one profile file. Every validation error is returned, each with the
    /// file name; decoding errors carry the line when the JSON decoder reports one.
    public static func parse(text: String, fileName: String) -> Result<Profile, ProfileFileErrors> {
        let profile: Profile
        do {
            profile = try JSONDecoder().decode(Profile.self, from: Data(text.utf8))
        } catch let error as DecodingError {
            return .failure(ProfileFileErrors(errors: [decodingError(error, text: text, fileName: fileName)]))
        } catch {
            return .failure(ProfileFileErrors(errors: [PolicyFileError(file: fileName, line: nil, message: "\(error)")]))
        }
        let errors = profile.errors.map { PolicyFileError(file: fileName, line: nil, message: "profile '\(profile.name)': \($0.message)") }
        return errors.isEmpty ? .success(profile) : .failure(ProfileFileErrors(errors: errors))
    }

    /// Encodes a profile as its file holds it (sorted keys, pretty-printed, a final newline).
    public static func encode(_ profile: Profile) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Encoding these value types cannot fail (no floats, no throwing encode).
        let data = (try? encoder.encode(profile)) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// Loads a directory's worth of profile files: good profiles and every error. Two files with
    /// the same profile name: the first (in the order given) wins, the second is an error.
    public static func load(_ files: [(fileName: String, text: String)]) -> (profiles: [Profile], errors: [PolicyFileError]) {
        var profiles: [Profile] = []
        var errors: [PolicyFileError] = []
        var seen: [String: String] = [:]
        for file in files {
            switch parse(text: file.text, fileName: file.fileName) {
            case .success(let profile):
                if let first = seen[profile.name] {
                    errors.append(PolicyFileError(file: file.fileName, line: nil, message: "profile '\(profile.name)' is already defined in \(first); ignored"))
                } else {
                    seen[profile.name] = file.fileName
                    profiles.append(profile)
                }
            case .failure(let failure):
                errors.append(contentsOf: failure.errors)
            }
        }
        return (profiles, errors)
    }

    static func decodingError(_ error: DecodingError, text: String, fileName: String) -> PolicyFileError {
        let (context, kind): (DecodingError.Context?, String) = switch error {
        case .dataCorrupted(let context): (context, "")
        case .keyNotFound(let key, let context): (context, "missing key '\(key.stringValue)'")
        case .typeMismatch(let type, let context): (context, "expected \(typeName(type))")
        case .valueNotFound(let type, let context): (context, "expected \(typeName(type)), found null")
        @unknown default: (nil, "\(error)")
        }
        var path = context?.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") ?? ""
        if case .keyNotFound = error { path = path.isEmpty ? "" : path }
        var detail = context?.debugDescription ?? ""
        var line: Int?
        if let unknown = context?.underlyingError as? UnknownKeys {
            // A misspelt key: the line of the first one the file has.
            line = unknown.keys.compactMap { lineOfKey($0, in: text) }.min()
        } else if let underlying = context?.underlyingError {
            let text = "\(underlying)"
            line = lineNumber(in: text)
            if detail.isEmpty || detail == "The given data was not valid JSON." { detail = "invalid JSON: \(text)" }
        }
        if line == nil { line = lineNumber(in: detail) }
        // The decoder gives no position for syntax errors: find it.
        if case .dataCorrupted = error, context?.codingPath.isEmpty ?? true, let syntax = JSONSyntax.firstError(in: text) {
            return PolicyFileError(file: fileName, line: syntax.line, message: "invalid JSON at column \(syntax.column): \(syntax.message)")
        }
        // A key error has no position from the decoder: point at the key's first occurrence.
        if line == nil, let last = context?.codingPath.last?.stringValue, context?.codingPath.last?.intValue == nil {
            line = lineOfKey(last, in: text)
        }
        let message = [path.isEmpty ? nil : path + ":", kind.isEmpty ? nil : kind, detail.isEmpty ? nil : detail]
            .compactMap { $0 }.joined(separator: " ")
        return PolicyFileError(file: fileName, line: line, message: message)
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is UInt32.Type: "a number"
        default: "\(type)"
        }
    }

    /// "… around line 3, column 5." → 3.
    static func lineNumber(in message: String) -> Int? {
        let characters = Array(message)
        let needle = Array("line ")
        guard characters.count > needle.count else { return nil }
        for start in 0...(characters.count - needle.count) where Array(characters[start..<start + needle.count]) == needle {
            let digits = characters[(start + needle.count)...].prefix { $0.isNumber }
            if let number = Int(String(digits)) { return number }
        }
        return nil
    }

    /// The first line where `key` stands as an object key (`"key"` then `:`).
    static func lineOfKey(_ key: String, in text: String) -> Int? {
        let needle = "\"\(key)\""
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var rest = line[...]
            while let found = rest.firstRange(of: needle) {
                if rest[found.upperBound...].drop(while: { $0 == " " || $0 == "\t" }).first == ":" { return index + 1 }
                rest = rest[found.upperBound...]
            }
        }
        return nil
    }
}

/// Every error of one profile file.
public struct ProfileFileErrors: Error, Hashable, Sendable, CustomStringConvertible {
    public var errors: [PolicyFileError]
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

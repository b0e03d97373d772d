import Testing
import VDPADaemon

/// The shipped etc/vdpad/vdpad.conf against DaemonConfiguration: it parses, it
/// documents every key, and the values it calls defaults are the code's defaults.
@Suite struct ConfigurationFileTests {
    /// A `key = value` line of the file, set or commented out (`# key = value`).
    struct Assignment {
        var line: Int
        var key: String
        var value: String
        var commented: Bool
    }

    static func assignments(in text: String) -> [Assignment] {
        var result: [Assignment] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = Substring(rawLine)
            let commented = line.hasPrefix("#")
            if commented { line = line.drop { $0 == "#" || $0 == " " } }
            // A setting is a lower-case key, "=", then the value up to an optional comment.
            guard let match = line.wholeMatch(of: /([a-z][a-z_]*)[ \t]*=[ \t]*([^#]*?)[ \t]*(#.*)?/) else { continue }
            result.append(Assignment(line: index + 1, key: String(match.1), value: String(match.2), commented: commented))
        }
        return result
    }

    let text: String
    init() throws { text = try RepositoryFiles.text("etc/vdpad/vdpad.conf") }

    @Test func theShippedFileParsesToTheDefaults() throws {
        var configuration = DaemonConfiguration()
        try configuration.apply(fileText: text, fileName: "etc/vdpad/vdpad.conf")
        #expect(configuration == DaemonConfiguration())
    }

    @Test func everyKeyIsDocumentedOnceAndEveryDocumentedKeyExists() {
        let assignments = Self.assignments(in: text)
        let documented = assignments.map(\.key)
        #expect(Set(documented) == Set(DaemonConfiguration.keys.keys), "documented: \(documented.sorted())")
        #expect(documented.count == Set(documented).count, "a key appears twice: \(documented)")
    }

    @Test func eachDocumentedValueIsAcceptedAndIsTheDefault() {
        let assignments = Self.assignments(in: text)
        #expect(!assignments.isEmpty)
        for assignment in assignments {
            var configuration = DaemonConfiguration()
            do {
                try configuration.set(assignment.key, assignment.value)
            } catch {
                Issue.record("line \(assignment.line): \(assignment.key) = \(assignment.value) is refused: \(error.message)")
                continue
            }
            #expect(configuration == DaemonConfiguration(), "line \(assignment.line): \(assignment.key) = \(assignment.value) is not the default")
        }
    }

    @Test func theAssignmentScannerSeesCommentedSettingsButNotProse() {
        let sample = """
        # Format: one "key = value" per line
        #socket_mode = 0640
        # log_level = debug   # louder
        state_dir = /srv/vdpad
        """
        let found = Self.assignments(in: sample)
        #expect(found.map(\.key) == ["socket_mode", "log_level", "state_dir"])
        #expect(found.map(\.value) == ["0640", "debug", "/srv/vdpad"])
        #expect(found.map(\.commented) == [true, true, false])
    }
}

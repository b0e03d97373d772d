import Foundation

/// Files of the source tree (unit file, configuration, documentation) that tests check
/// against the code, found from this file's own path.
enum RepositoryFiles {
    /// The repository root: this file is Tests/VDPADaemonTests/RepositoryFiles.swift.
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // VDPADaemonTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    /// The text of a file given relative to the repository root.
    static func text(_ relativePath: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(relativePath), encoding: .utf8)
    }
}

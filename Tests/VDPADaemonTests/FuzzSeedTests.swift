import Foundation
import Testing
import VDPADaemon
import VDPAPolicy

/// The fuzzers of documents and files start from seeds that get past their decoders: a seed
/// that fails to decode only tests the first error path. The document seeds are the examples
/// of Documentation/ (a test here fails when a new example is not a seed).
@Suite struct FuzzSeedTests {
    static func seeds(_ target: String) throws -> [(name: String, text: String)] {
        let directory = RepositoryFiles.root.appendingPathComponent("Tests/Fuzz/corpus/\(target)").path
        return try FileManager.default.contentsOfDirectory(atPath: directory).sorted().map {
            ($0, try String(contentsOfFile: directory + "/" + $0, encoding: .utf8))
        }
    }

    /// Profiles decode; some are invalid on purpose (an api.md example of profile_add refused).
    @Test func profileSeedsDecodeAndMostAreValid() throws {
        let seeds = try Self.seeds("profiles")
        var valid = 0
        for seed in seeds {
            #expect(throws: Never.self, "\(seed.name)") { _ = try JSONDecoder().decode(Profile.self, from: Data(seed.text.utf8)) }
            if case .success = ProfileFile.parse(text: seed.text, fileName: seed.name) { valid += 1 }
        }
        #expect(valid > seeds.count / 2)
    }

    @Test func quirkSeedsParseWithoutErrors() throws {
        let seeds = try Self.seeds("quirks")
        #expect(!seeds.isEmpty)
        for seed in seeds {
            let result = QuirkParser.parse(text: seed.text, fileName: seed.name)
            #expect(result.errors.isEmpty && !result.quirks.isEmpty, "\(seed.name): \(result.errors)")
        }
    }

    @Test func stateSeedsAreValidStates() throws {
        let seeds = try Self.seeds("vq-state")
        #expect(!seeds.isEmpty)
        for seed in seeds {
            let document = try JSONDecoder().decode(VirtqueueStateDocument.self, from: Data(seed.text.utf8))
            #expect(document.validate().isEmpty, "\(seed.name): \(document.validate())")
        }
    }

    @Test func capabilitiesSeedsDecode() throws {
        let seeds = try Self.seeds("caps")
        #expect(!seeds.isEmpty)
        for seed in seeds {
            let document = try JSONDecoder().decode(CapabilitiesDocument.self, from: Data(seed.text.utf8))
            #expect(!document.mgmtdevs.isEmpty, "\(seed.name)")
        }
    }

    @Test func configurationSeedsApply() throws {
        for seed in try Self.seeds("config") {
            var configuration = DaemonConfiguration()
            #expect(throws: Never.self, "\(seed.name)") { try configuration.apply(fileText: seed.text, fileName: seed.name) }
        }
    }

    /// Every document example of the documentation (JSON with a vdpad schema, quirk sections)
    /// is a seed of its fuzzer.
    @Test func everyDocumentExampleIsASeed() throws {
        let targets = ["vdpad.profile/v1": "profiles", "vdpad.caps/v1": "caps", "vdpad.vqstate/v1": "vq-state"]
        var seeds: [String: Set<String>] = [:]
        for target in targets.values {
            seeds[target] = Set(try Self.seeds(target).map { try canonical(jsonObject($0.text)) })
        }
        let documentation = RepositoryFiles.root.appendingPathComponent("Documentation").path
        for file in try FileManager.default.contentsOfDirectory(atPath: documentation).sorted() where file.hasSuffix(".md") {
            let text = try String(contentsOfFile: documentation + "/" + file, encoding: .utf8)
            for block in codeBlocks(text) {
                for candidate in [block] + block.split(separator: "\n").map(String.init) {
                    guard let object = try? jsonObject(candidate) else { continue }
                    for document in objects(in: object) {
                        guard let schema = document["schema"] as? String, let target = targets[schema] else { continue }
                        #expect(seeds[target]?.contains(try canonical(document)) == true,
                                "a \(schema) example of \(file) is not a seed in Tests/Fuzz/corpus/\(target) (Tests/Fuzz/make-document-seeds.py)")
                    }
                }
            }
        }
        let quirkSeeds = Set(try Self.seeds("quirks").map { $0.text.trimmingCharacters(in: .whitespacesAndNewlines) })
        for block in codeBlocks(try RepositoryFiles.text("Documentation/quirks.md")) where block.contains("[quirk ") && !block.contains("[quirk NAME]") {
            #expect(quirkSeeds.contains(block.trimmingCharacters(in: .whitespacesAndNewlines)), "a quirks.md example is not a seed: \(block)")
        }
    }

    func codeBlocks(_ markdown: String) -> [String] {
        var blocks: [String] = [], current: [Substring]?
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") {
                if let lines = current { blocks.append(lines.joined(separator: "\n")); current = nil } else { current = [] }
            } else {
                current?.append(line)
            }
        }
        return blocks
    }

    func objects(in value: Any) -> [[String: Any]] {
        switch value {
        case let object as [String: Any]: [object] + object.values.flatMap(objects(in:))
        case let array as [Any]: array.flatMap(objects(in:))
        default: []
        }
    }

    func canonical(_ value: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]), as: UTF8.self)
    }
}

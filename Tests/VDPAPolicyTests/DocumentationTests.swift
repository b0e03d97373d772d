import Foundation
import Testing
import VirtioModel
@testable import VDPAPolicy

/// The examples in Documentation/ are decoded, so the docs cannot drift from the code.
@Suite struct DocumentationTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func blocks(_ file: String, language: String) throws -> [String] {
        let text = try String(contentsOf: root.appendingPathComponent("Documentation/" + file), encoding: .utf8)
        var blocks: [String] = []
        var current: [Substring]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if let lines = current {
                if line == "```" {
                    blocks.append(lines.joined(separator: "\n"))
                    current = nil
                } else {
                    current = lines + [line]
                }
            } else if line == "```" + language {
                current = []
            }
        }
        return blocks
    }

    @Test func quirkExamplesParse() throws {
        let blocks = try Self.blocks("quirks.md", language: "").filter { $0.contains("[quirk ") && !$0.contains("[quirk NAME]") }
        #expect(blocks.count == 3)
        for block in blocks {
            let result = QuirkParser.parse(text: block, fileName: "quirks.md")
            #expect(result.errors.isEmpty, "\(result.errors)")
            #expect(result.quirks.count == 1)
        }
    }

    @Test func compatibilityExamplesDecode() throws {
        let blocks = try Self.blocks("compatibility.md", language: "json")
        #expect(blocks.count == 2)
        let profile = try ProfileFile.parse(text: blocks[0], fileName: "compatibility.md").get()
        #expect(profile.name == "web-net" && profile.validate().isEmpty)
        let caps = try JSONDecoder().decode(CapabilitiesDocument.self, from: Data(blocks[1].utf8))
        let destination = try #require(caps.destinations(for: .network).first)
        #expect(CompatibilityCheck.compare(source: DeviceRequirement(profile: profile), destination: destination).answer == .identical)
    }

    @Test func schemaIsJSON() throws {
        let data = try Data(contentsOf: Self.root.appendingPathComponent("Documentation/caps-schema.json"))
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        #expect((object?["properties"] as? [String: Any])?["schema"] != nil)
    }
}

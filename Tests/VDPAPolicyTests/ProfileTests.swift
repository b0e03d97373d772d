import Foundation
import Testing
import VirtioModel
@testable import VDPAPolicy

@Suite struct ProfileTests {
    static func features(_ names: String...) -> VirtioFeatures { try! VirtioFeatures(names: names, deviceType: .network) }
    static let good = Profile(
        name: "web-net", version: 3, deviceType: .network,
        features: features("VERSION_1", "ACCESS_PLATFORM", "CSUM", "GUEST_CSUM", "MAC", "MTU", "CTRL_VQ", "MQ", "STATUS"),
        mac: .pool, mtu: 1500, queuePairs: 4, queueSize: 256)

    @Test func goodProfileHasNoIssues() {
        #expect(Self.good.validate().isEmpty)
    }

    @Test func validationReturnsEveryReason() {
        let profile = Profile(name: "bad name!", version: 0, deviceType: .network, features: Self.features("GUEST_TSO4", "GSO"),
                              mac: .fixed(MACAddress("01:00:5e:00:00:01")!), mtu: 40, queuePairs: 4, queueSize: 300)
        let codes = profile.validate().filter { $0.severity == .error }.map(\.code)
        #expect(codes == [.name, .version, .featureRequired, .featureDependency, .legacyFeature, .mtuRange, .mtuNeedsFeature,
                          .queuePairsNeedMQ, .queueSizeRange, .macNeedsFeature, .macInvalid])
        #expect(profile.validate().contains { $0.severity == .warning && $0.message.contains("ACCESS_PLATFORM") })
    }

    @Test func packedRingAllowsAnyQueueSize() {
        var profile = Self.good
        profile.queueSize = 300
        #expect(profile.errors.map(\.code) == [.queueSizeRange])
        profile.features.insert(.ringPacked)
        #expect(profile.errors.isEmpty)
    }

    @Test func netFieldsOnBlockDevicesAreRejected() {
        let profile = Profile(name: "disk", deviceType: .block, features: [.version1, .accessPlatform], mac: .pool, mtu: 1500, queuePairs: 2)
        #expect(profile.errors.map(\.code) == [.notApplicable, .notApplicable, .notApplicable])
    }

    @Test func jsonRoundTripsWithSchemaAndNames() throws {
        let text = ProfileFile.encode(Self.good)
        #expect(text.contains(#""schema" : "vdpad.profile\/v1""#) || text.contains(#""schema" : "vdpad.profile/v1""#))
        #expect(text.contains(#""device_type" : "network""#))
        #expect(text.contains(#""MQ""#))
        #expect(try ProfileFile.parse(text: text, fileName: "web-net.json").get() == Self.good)
    }

    @Test func featuresMayBeGivenByName() throws {
        let text = """
        {"schema": "vdpad.profile/v1", "name": "n", "version": 1, "device_type": "net",
         "features": {"names": ["VERSION_1", "ACCESS_PLATFORM", "MAC"]}, "mac": {"policy": "fixed", "address": "52:54:00:00:00:01"}}
        """
        let profile = try ProfileFile.parse(text: text, fileName: "n.json").get()
        #expect(profile.features == Self.features("VERSION_1", "ACCESS_PLATFORM", "MAC"))
        #expect(profile.mac == .fixed(MACAddress("52:54:00:00:00:01")!))
    }

    func errors(_ text: String) -> [PolicyFileError] {
        guard case .failure(let failure) = ProfileFile.parse(text: text, fileName: "p.json") else { return [] }
        return failure.errors
    }

    @Test func syntaxErrorsCarryFileAndLine() {
        let errors = errors("{\n  \"schema\": \"vdpad.profile/v1\",\n  \"name\": ,\n}")
        #expect(errors.count == 1)
        #expect(errors[0].file == "p.json")
        #expect(errors[0].line == 3, "\(errors[0])")
        #expect(errors[0].description == "p.json:3: invalid JSON at column 11: expected a value, found ','")
        #expect(JSONSyntax.firstError(in: #"{"a": [1, 2.5e3, "x\u00e9", true, null, {}]}"#) == nil)
        #expect(JSONSyntax.firstError(in: "{\"a\": \"unterminated}")?.message == "unterminated string, found the end of the file")
    }

    @Test func unknownKeysAndWrongSchemaAreErrors() {
        let unknown = errors(#"{"schema": "vdpad.profile/v1", "name": "n", "version": 1, "device_type": "net", "features": {"hex": "0x100000000"}, "queue_pair": 2}"#)
        #expect(unknown.first?.message.contains("unknown key 'queue_pair'") == true)
        let schema = errors(#"{"schema": "vdpad.profile/v2", "name": "n", "version": 1, "device_type": "net", "features": {"hex": "0x100000000"}}"#)
        #expect(schema.first?.message.contains("is not vdpad.profile/v1") == true)
        let missing = errors("{\"schema\": \"vdpad.profile/v1\",\n \"name\": \"n\",\n \"device_type\": \"net\", \"features\": {\"hex\": \"0x100000000\"}}")
        #expect(missing.first?.message.contains("missing key 'version'") == true)
    }

    /// A misspelt key is reported at its line, as syntax errors are (the decoder gives none).
    @Test func unknownKeysCarryTheirLine() {
        let text = "{\n  \"schema\": \"vdpad.profile/v1\",\n  \"name\": \"featurs\",\n  \"version\": 1,\n  \"device_type\": \"net\",\n"
            + "  \"features\": {\"hex\": \"0x100000000\"},\n  \"featurs\" : [\"MAC\"]\n}\n"
        let unknown = errors(text)
        #expect(unknown.count == 1)
        // Line 3 has "featurs" as a value, not as a key: the key is on line 7.
        #expect(unknown.first?.line == 7, "\(unknown)")
        #expect(unknown.first?.description.hasPrefix("p.json:7: unknown key 'featurs'") == true, "\(unknown)")
        // Inside a nested object: the nested key's line, not its parent's.
        let nested = errors("{\"schema\": \"vdpad.profile/v1\", \"name\": \"n\", \"version\": 1, \"device_type\": \"net\",\n \"features\": {\n  \"hexx\": \"0x100000000\"}}")
        #expect(nested.first?.line == 3, "\(nested)")
    }

    @Test func featureNamesAndHexMustAgree() {
        let unknown = errors(#"{"schema": "vdpad.profile/v1", "name": "n", "version": 1, "device_type": "net", "features": {"names": ["VERSION_1", "TURBO"]}}"#)
        #expect(unknown.first?.message.contains("unknown feature name 'TURBO'") == true)
        let mismatch = errors(#"{"schema": "vdpad.profile/v1", "name": "n", "version": 1, "device_type": "net", "features": {"hex": "0x100000020", "names": ["VERSION_1"]}}"#)
        #expect(mismatch.first?.message.contains("only in hex: [\"MAC\"]") == true)
    }

    @Test func validationErrorsCarryTheFileName() {
        var profile = Self.good
        profile.queueSize = 100
        profile.mtu = 60
        let errors = errors(ProfileFile.encode(profile))
        #expect(errors.count == 2)
        #expect(errors.allSatisfy { $0.file == "p.json" && $0.description.hasPrefix("p.json: profile 'web-net': ") })
    }

    @Test func loadKeepsTheFirstOfTwoProfilesWithOneName() {
        let text = ProfileFile.encode(Self.good)
        let (profiles, errors) = ProfileFile.load([("a.json", text), ("b.json", text), ("c.json", "[")])
        #expect(profiles.count == 1)
        #expect(errors.count == 2)
        #expect(errors[0].description == "b.json: profile 'web-net' is already defined in a.json; ignored")
        #expect(errors[1].file == "c.json")
    }
}

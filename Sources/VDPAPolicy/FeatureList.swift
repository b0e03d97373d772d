import VirtioModel

/// A feature set as policy documents write it: the hex value (64 bits survive JSON) and the spec
/// names of its bits, for people. Decoding reads `hex` when present; otherwise `names` (which
/// need the device type, so documents resolve them with ``resolve(deviceType:)``).
public struct FeatureList: Hashable, Sendable, Codable, CustomStringConvertible {
    public var hex: String?
    public var names: [String]?

    public init(_ features: VirtioFeatures, deviceType: VirtioDeviceType?) {
        hex = features.hexString
        names = features.names(for: deviceType)
    }

    public init(hex: String?, names: [String]?) {
        self.hex = hex
        self.names = names
    }

    private enum CodingKeys: String, CodingKey { case hex, names }

    /// A misspelt key ("hexx") is an error, not an empty list.
    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: ["hex", "names"])
        let container = try decoder.container(keyedBy: CodingKeys.self)
        hex = try container.decodeIfPresent(String.self, forKey: .hex)
        names = try container.decodeIfPresent([String].self, forKey: .names)
    }

    /// The feature set, checking that `hex` and `names` agree when both are given.
    public func resolve(deviceType: VirtioDeviceType?) throws(FeatureListError) -> VirtioFeatures {
        var fromHex: VirtioFeatures?
        if let hex {
            guard let value = VirtioFeatures(hex: hex) else { throw .badHex(hex) }
            fromHex = value
        }
        var fromNames: VirtioFeatures?
        if let names {
            do { fromNames = try VirtioFeatures(names: names, deviceType: deviceType) } catch { throw .unknownName(error.name) }
        }
        switch (fromHex, fromNames) {
        case let (hex?, names?):
            guard hex == names else { throw .mismatch(hex: hex, names: names, deviceType: deviceType) }
            return hex
        case let (hex?, nil): return hex
        case let (nil, names?): return names
        case (nil, nil): throw .empty
        }
    }

    public var description: String { hex ?? names?.joined(separator: ",") ?? "" }
}

/// Why a ``FeatureList`` does not give a feature set.
public enum FeatureListError: Error, Hashable, Sendable, CustomStringConvertible {
    case badHex(String)
    case unknownName(String)
    case mismatch(hex: VirtioFeatures, names: VirtioFeatures, deviceType: VirtioDeviceType?)
    case empty

    public var description: String {
        switch self {
        case .badHex(let text): "not a hex feature set: '\(text)'"
        case .unknownName(let name): "unknown feature name '\(name)'"
        case let .mismatch(hex, names, deviceType):
            "hex \(hex.hexString) and names (\(names.hexString)) disagree: only in hex: "
                + "\(hex.subtracting(names).names(for: deviceType)), only in names: \(names.subtracting(hex).names(for: deviceType))"
        case .empty: "a feature set needs \"hex\" or \"names\""
        }
    }
}

/// Parses one feature word of a quirk or a command line: a spec name ("GUEST_TSO4",
/// "VIRTIO_NET_F_GUEST_TSO4"), "bit_N" or a decimal bit number 0–63.
public func parseFeatureWord(_ word: some StringProtocol, deviceType: VirtioDeviceType?) -> Int? {
    let text = String(word)
    if let bit = Int(text) { return (0..<64).contains(bit) ? bit : nil }
    if text.hasPrefix("bit_"), let bit = Int(text.dropFirst(4)) { return (0..<64).contains(bit) ? bit : nil }
    return FeatureCatalogue.bit(named: text, deviceType: deviceType)
}

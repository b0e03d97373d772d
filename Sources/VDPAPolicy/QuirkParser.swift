import VirtioModel

/// The parser of quirk files (`etc/vdpad/quirks.d/*.conf`, format in Documentation/quirks.md).
///
/// It never stops at an error: every bad line is reported with its file and line, the quirk it
/// belongs to is dropped (half a quirk is worse than none), and every good quirk is returned.
public enum QuirkParser {
    public struct Result: Hashable, Sendable {
        public var quirks: [Quirk]
        public var errors: [PolicyFileError]
    }

    /// Parses one file's text.
    public static func parse(text: String, fileName: String) -> Result {
        var quirks: [Quirk] = []
        var errors: [PolicyFileError] = []
        var current: Section?
        var names: [String: Int] = [:]

        func finish() {
            guard var section = current else { return }
            current = nil
            section.resolve(fileName: fileName)
            errors.append(contentsOf: section.errors)
            if section.errors.isEmpty, let quirk = section.quirk(fileName: fileName) { quirks.append(quirk) }
        }

        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            func fail(_ message: String) {
                let error = PolicyFileError(file: fileName, line: lineNumber, message: message)
                if current != nil { current?.errors.append(error) } else { errors.append(error) }
            }
            let line = stripComment(rawLine).trimmingWhitespace()
            if line.isEmpty { continue }

            if line.hasPrefix("[") {
                finish()
                guard line.hasSuffix("]") else {
                    errors.append(PolicyFileError(file: fileName, line: lineNumber, message: "section header '\(line)' has no closing ']'"))
                    current = Section(name: "", line: lineNumber, broken: true)
                    continue
                }
                let words = line.dropFirst().dropLast().split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard words.count == 2, words[0] == "quirk" else {
                    errors.append(PolicyFileError(file: fileName, line: lineNumber, message: "section header '\(line)' must be '[quirk NAME]'"))
                    current = Section(name: "", line: lineNumber, broken: true)
                    continue
                }
                let name = String(words[1])
                current = Section(name: name, line: lineNumber)
                if !Profile.isValidName(name) {
                    fail("quirk name '\(name)' must be 1–64 letters, digits, '-', '_' or '.'")
                } else if let first = names[name] {
                    fail("quirk '\(name)' is already defined at line \(first)")
                } else {
                    names[name] = lineNumber
                }
                continue
            }

            guard let equals = line.firstIndex(of: "=") else {
                fail("expected 'KEY = VALUE', '[quirk NAME]' or a comment, found '\(line)'")
                continue
            }
            let key = String(line[..<equals]).trimmingWhitespace()
            let value = String(line[line.index(after: equals)...]).trimmingWhitespace()
            guard current != nil else {
                errors.append(PolicyFileError(file: fileName, line: lineNumber, message: "'\(key)' outside a [quirk NAME] section"))
                continue
            }
            if current?.broken == true { continue } // the header already failed; its lines would only repeat it
            guard !value.isEmpty else {
                fail("'\(key)' has no value")
                continue
            }
            current?.add(key: key, value: value, line: lineNumber, fileName: fileName)
        }
        finish()
        return Result(quirks: quirks, errors: errors)
    }

    /// A '#' or ';' at the start of a line or after whitespace starts a comment.
    static func stripComment(_ line: Substring) -> Substring {
        var previous: Character = " "
        for index in line.indices {
            let character = line[index]
            if (character == "#" || character == ";") && (previous == " " || previous == "\t") {
                return line[..<index]
            }
            previous = character
        }
        return line
    }

    /// The lines of one `[quirk NAME]` section, collected until the section ends (actions are
    /// read at the end, once `match.class` is known, because feature names depend on it).
    struct Section {
        var name: String
        var line: Int
        var broken = false
        var summary: String?
        var match = QuirkMatch()
        var matchKeys: [String: Int] = [:]
        var rawActions: [(value: String, line: Int)] = []
        var actions: [QuirkAction] = []
        var errors: [PolicyFileError] = []

        init(name: String, line: Int, broken: Bool = false) {
            self.name = name
            self.line = line
            self.broken = broken
        }

        mutating func add(key: String, value: String, line: Int, fileName: String) {
            func fail(_ message: String) { errors.append(PolicyFileError(file: fileName, line: line, message: message)) }
            switch key {
            case "description":
                if summary != nil { fail("'description' given twice in quirk '\(name)'") }
                summary = value
            case "action":
                rawActions.append((value, line))
            case _ where key.hasPrefix("match."):
                let field = String(key.dropFirst("match.".count))
                if let first = matchKeys[field] {
                    fail("'\(key)' given twice in quirk '\(name)' (first at line \(first)); a quirk matches one value per key")
                    return
                }
                matchKeys[field] = line
                switch field {
                case "mgmtdev": match.mgmtdev = value
                case "bus": match.bus = value
                case "driver": match.driver = value
                case "pci_vendor", "pci_device", "pci_subsystem_vendor", "pci_subsystem_device":
                    guard let id = QuirkParser.parsePCIID(value) else {
                        fail("'\(key)' needs a 16-bit hex ID such as 0x15b3, found '\(value)'")
                        return
                    }
                    switch field {
                    case "pci_vendor": match.pciVendor = id
                    case "pci_device": match.pciDevice = id
                    case "pci_subsystem_vendor": match.pciSubsystemVendor = id
                    default: match.pciSubsystemDevice = id
                    }
                case "class":
                    guard let type = VirtioDeviceType(name: value) else {
                        fail("'match.class' must be net or block, found '\(value)'")
                        return
                    }
                    match.deviceType = type
                default:
                    fail("unknown match key '\(key)' (match.mgmtdev, match.bus, match.driver, match.pci_vendor, match.pci_device, match.pci_subsystem_vendor, match.pci_subsystem_device, match.class)")
                }
            default:
                fail("unknown key '\(key)' (description, match.KEY, action)")
            }
        }

        mutating func resolve(fileName: String) {
            guard !broken else { return }
            for (value, line) in rawActions {
                switch QuirkParser.parseAction(value, deviceType: match.deviceType) {
                case .success(let action): actions.append(action)
                case .failure(let message): errors.append(PolicyFileError(file: fileName, line: line, message: message.text))
                }
            }
            if match.isEmpty {
                errors.append(PolicyFileError(file: fileName, line: line, message: "quirk '\(name)' has no match key: it would apply to every management device"))
            }
            if rawActions.isEmpty {
                errors.append(PolicyFileError(file: fileName, line: line, message: "quirk '\(name)' has no action"))
            }
        }

        func quirk(fileName: String) -> Quirk? {
            broken ? nil : Quirk(name: name, summary: summary, match: match, actions: actions, file: fileName, line: line)
        }
    }

    struct Message: Error { var text: String }

    /// "0x15b3" or "15b3".
    static func parsePCIID(_ text: String) -> UInt16? {
        var digits = Substring(text.lowercased())
        if digits.hasPrefix("0x") { digits = digits.dropFirst(2) }
        guard (1...4).contains(digits.count) else { return nil }
        return UInt16(digits, radix: 16)
    }

    /// One `action = …` value: `set F[, F…]`, `clear F[, F…]`, `cap mtu|queue_pairs|queue_size N`,
    /// `deny mac|mtu|max_vqp|device_features`.
    static func parseAction(_ text: String, deviceType: VirtioDeviceType?) -> Swift.Result<QuirkAction, Message> {
        let verbEnd = text.firstIndex(where: { $0 == " " || $0 == "\t" }) ?? text.endIndex
        let verb = String(text[..<verbEnd])
        let rest = String(text[verbEnd...]).trimmingWhitespace()
        switch verb {
        case "set", "clear":
            let words = rest.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" })
            guard !words.isEmpty else { return .failure(Message(text: "'\(verb)' needs at least one feature name or bit number")) }
            var bits = VirtioFeatures()
            var unknown: [String] = []
            for word in words {
                if let bit = parseFeatureWord(word, deviceType: deviceType) {
                    bits.insert(VirtioFeatures(bit: bit))
                } else {
                    unknown.append(String(word))
                }
            }
            guard unknown.isEmpty else {
                let hint = deviceType == nil
                    ? " (without match.class only device-independent names are known; add match.class = net or block for device-specific ones, or use bit numbers)"
                    : " for \(deviceType!.className) devices"
                return .failure(Message(text: "unknown feature name\(unknown.count == 1 ? "" : "s") \(unknown.map { "'\($0)'" }.joined(separator: ", "))\(hint)"))
            }
            return .success(verb == "set" ? .set(bits) : .clear(bits))
        case "cap":
            let words = rest.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count == 2 else { return .failure(Message(text: "'cap' needs a limit and a number: cap mtu|queue_pairs|queue_size N")) }
            guard let value = Int(words[1]) else { return .failure(Message(text: "'cap \(words[0])' needs a number, found '\(words[1])'")) }
            switch words[0] {
            case "mtu":
                guard (68...65535).contains(value) else { return .failure(Message(text: "cap mtu \(value) is outside 68–65535")) }
                return .success(.capMTU(value))
            case "queue_pairs":
                guard (1...0x8000).contains(value) else { return .failure(Message(text: "cap queue_pairs \(value) is outside 1–32768")) }
                return .success(.capQueuePairs(value))
            case "queue_size":
                guard (1...32768).contains(value) else { return .failure(Message(text: "cap queue_size \(value) is outside 1–32768")) }
                return .success(.capQueueSize(value))
            default:
                return .failure(Message(text: "unknown limit '\(words[0])' (mtu, queue_pairs, queue_size)"))
            }
        case "deny":
            guard let attribute = ProvisioningAttribute(rawValue: rest) else {
                return .failure(Message(text: "'deny' needs one attribute: mac, mtu, max_vqp or device_features; found '\(rest)'"))
            }
            return .success(.deny(attribute))
        default:
            return .failure(Message(text: "unknown action '\(verb)' (set, clear, cap, deny)"))
        }
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = lastIndex(where: { !isSpace($0) })!
        return String(self[first...last])
    }
}

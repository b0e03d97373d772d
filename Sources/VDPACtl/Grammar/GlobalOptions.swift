/// The options before the object (`vdpactl [OPTIONS] OBJECT …`), as iproute2's `vdpa` takes
/// them (`-j`, `-p`, `-V`, `-h`, short ones combinable as `-jp`) plus `--socket PATH`.
public struct GlobalOptions: Hashable, Sendable {
    /// `-j` / `--json`: print data as JSON.
    public var json = false
    /// `-p` / `--pretty`: indent the JSON (no effect on text).
    public var pretty = false
    /// `--socket PATH`: the daemon's socket; nil means the default.
    public var socketPath: String?
    /// `-V` / `--version`.
    public var showVersion = false
    /// `-h` / `--help`.
    public var showHelp = false

    public init() {}

    /// Splits `arguments` into the global options and the object words that follow them.
    /// Parsing stops at the first word that does not start with "-" (or after "--").
    public static func parse(_ arguments: [String]) throws(GrammarError) -> (GlobalOptions, [String]) {
        var options = GlobalOptions()
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let word = arguments[index]
            guard word.hasPrefix("-"), word != "-" else { break }
            index += 1
            if word == "--" { break }
            if word.hasPrefix("--") {
                let (name, inlineValue) = splitLongOption(word)
                switch name {
                case "json": options.json = true
                case "pretty": options.pretty = true
                case "version", "Version": options.showVersion = true
                case "help": options.showHelp = true
                case "socket":
                    if let inlineValue {
                        options.socketPath = inlineValue
                    } else if index < arguments.endIndex {
                        options.socketPath = arguments[index]
                        index += 1
                    } else {
                        throw GrammarError("Option \"--socket\" requires a path", usage: .main)
                    }
                default: throw GrammarError("Unknown option \"\(word)\"", usage: .main)
                }
                if inlineValue != nil && name != "socket" {
                    throw GrammarError("Option \"--\(name)\" takes no value", usage: .main)
                }
                continue
            }
            for letter in word.dropFirst() {
                switch letter {
                case "j": options.json = true
                case "p": options.pretty = true
                case "V": options.showVersion = true
                case "h": options.showHelp = true
                default: throw GrammarError("Unknown option \"-\(letter)\"", usage: .main)
                }
            }
        }
        return (options, Array(arguments[index...]))
    }

    private static func splitLongOption(_ word: String) -> (name: String, value: String?) {
        let body = word.dropFirst(2)
        guard let equals = body.firstIndex(of: "=") else { return (String(body), nil) }
        return (String(body[..<equals]), String(body[body.index(after: equals)...]))
    }
}

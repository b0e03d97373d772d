/// A command line vdpactl cannot run: the message iproute2 prints for the same mistake
/// (where it has one) and, when it helps, the usage text of the command concerned.
public struct GrammarError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The message lines, e.g. `Command "x" not found`.
    public var message: String
    /// The usage to print after the message.
    public var usage: HelpTopic?

    public init(_ message: String, usage: HelpTopic? = nil) {
        self.message = message
        self.usage = usage
    }

    public var description: String { message }

    static func unknownOption(_ word: String) -> GrammarError { GrammarError("Unknown option \"\(word)\"") }
    static func commandNotFound(_ word: String, usage: HelpTopic) -> GrammarError {
        GrammarError("Command \"\(word)\" not found", usage: usage)
    }
}

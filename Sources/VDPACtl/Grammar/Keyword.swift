/// iproute2's abbreviation rule (`matches()` in lib/utils.c): `word` stands for `keyword`
/// when it is a non-empty prefix of it, so `dev sh` is `dev show` and `mgmt` is `mgmtdev`.
/// Where two keywords share a prefix, the one tested first wins, as in iproute2.
func matches(_ word: String, _ keyword: String) -> Bool {
    !word.isEmpty && keyword.hasPrefix(word)
}

/// The words of a command line still to read, front first.
struct WordStream {
    private var words: ArraySlice<String>

    init(_ words: some Collection<String>) { self.words = ArraySlice(words) }

    var isEmpty: Bool { words.isEmpty }
    var count: Int { words.count }
    var peek: String? { words.first }

    mutating func next() -> String? { words.popFirst() }

    /// The value after a keyword, or the error iproute2 prints when it is missing.
    mutating func value(after keyword: String, expecting kind: ValueKind = .string) throws(GrammarError) -> String {
        guard let value = words.popFirst() else { throw GrammarError(kind.missingMessage) }
        return value
    }

    /// What a keyword's value is, for the "expected" message when it is missing.
    enum ValueKind {
        case string, number, handle

        var missingMessage: String {
            switch self {
            case .string: "String parameter expected"
            case .number: "number expected"
            case .handle: "vdpa identification (\"mgmtdev_bus_name/mgmtdev_name\") expected"
            }
        }
    }
}

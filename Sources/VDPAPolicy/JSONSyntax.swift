/// Finds where a JSON text first breaks the grammar (RFC 8259), because the JSON decoder
/// reports only that the data "was not valid JSON". Used for the line numbers of errors in
/// policy files; not a parser.
enum JSONSyntax {
    struct Failure: Error {
        var line: Int
        var column: Int
        var message: String
    }

    /// nil when the text is valid JSON.
    static func firstError(in text: String) -> Failure? {
        var scanner = Scanner(bytes: Array(text.utf8))
        do throws(Failure) {
            scanner.skipSpace()
            try scanner.value(depth: 0)
            scanner.skipSpace()
            if scanner.index < scanner.bytes.count { throw scanner.fail("unexpected text after the JSON value") }
            return nil
        } catch {
            return error
        }
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        func fail(_ message: String) -> Failure {
            var line = 1, column = 1
            for byte in bytes[..<min(index, bytes.count)] {
                if byte == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
            }
            let found = index < bytes.count ? "'\(Character(Unicode.Scalar(bytes[index])))'" : "the end of the file"
            return Failure(line: line, column: column, message: "\(message), found \(found)")
        }

        var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipSpace() {
            while let byte = peek, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
        }

        mutating func expect(_ byte: UInt8, _ what: String) throws(Failure) {
            guard peek == byte else { throw fail("expected \(what)") }
            index += 1
        }

        mutating func value(depth: Int) throws(Failure) {
            guard depth < 512 else { throw fail("nesting too deep") }
            switch peek {
            case UInt8(ascii: "{")?:
                index += 1
                skipSpace()
                if peek == UInt8(ascii: "}") { index += 1; return }
                while true {
                    skipSpace()
                    guard peek == UInt8(ascii: "\"") else { throw fail("expected a key in quotes") }
                    try string()
                    skipSpace()
                    try expect(UInt8(ascii: ":"), "':' after the key")
                    skipSpace()
                    try value(depth: depth + 1)
                    skipSpace()
                    if peek == UInt8(ascii: ",") { index += 1; continue }
                    try expect(UInt8(ascii: "}"), "',' or '}'")
                    return
                }
            case UInt8(ascii: "[")?:
                index += 1
                skipSpace()
                if peek == UInt8(ascii: "]") { index += 1; return }
                while true {
                    skipSpace()
                    try value(depth: depth + 1)
                    skipSpace()
                    if peek == UInt8(ascii: ",") { index += 1; continue }
                    try expect(UInt8(ascii: "]"), "',' or ']'")
                    return
                }
            case UInt8(ascii: "\"")?: try string()
            case UInt8(ascii: "t")?: try word("true")
            case UInt8(ascii: "f")?: try word("false")
            case UInt8(ascii: "n")?: try word("null")
            case let byte? where byte == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte): try number()
            default: throw fail("expected a value")
            }
        }

        mutating func word(_ text: String) throws(Failure) {
            for byte in text.utf8 { try expect(byte, "'\(text)'") }
        }

        mutating func string() throws(Failure) {
            index += 1
            while let byte = peek {
                index += 1
                switch byte {
                case UInt8(ascii: "\""): return
                case UInt8(ascii: "\\"):
                    guard let escaped = peek else { break }
                    index += 1
                    if escaped == UInt8(ascii: "u") {
                        for _ in 0..<4 {
                            guard let hex = peek, (hex >= 0x30 && hex <= 0x39) || (hex | 0x20 >= 0x61 && hex | 0x20 <= 0x66) else { throw fail("expected 4 hex digits after \\u") }
                            index += 1
                        }
                    } else if !"\"\\/bfnrt".utf8.contains(escaped) {
                        index -= 1
                        throw fail("unknown escape")
                    }
                case 0..<0x20:
                    index -= 1
                    throw fail("control character in a string")
                default: break
                }
            }
            throw fail("unterminated string")
        }

        mutating func number() throws(Failure) {
            func digits() -> Int {
                let start = index
                while let byte = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { index += 1 }
                return index - start
            }
            if peek == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw fail("expected a digit") }
            if peek == UInt8(ascii: ".") {
                index += 1
                guard digits() > 0 else { throw fail("expected a digit after '.'") }
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                index += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
                guard digits() > 0 else { throw fail("expected an exponent") }
            }
        }
    }
}

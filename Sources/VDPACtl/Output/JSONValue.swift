import Foundation

/// A JSON value whose objects keep their members in the order they were built, so
/// vdpactl's JSON lists keys in iproute2's order (readers compare it as data, people read it).
public indirect enum JSONValue: Hashable, Sendable {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case unsigned(UInt64)
    case double(Double)
    case bool(Bool)
    case null

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.object(let left), .object(let right)):
            left.count == right.count && zip(left, right).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.array(let left), .array(let right)): left == right
        case (.string(let left), .string(let right)): left == right
        case (.unsigned(let left), .unsigned(let right)): left == right
        case (.double(let left), .double(let right)): left == right
        case (.bool(let left), .bool(let right)): left == right
        case (.null, .null): true
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .object(let members):
            for (key, value) in members {
                hasher.combine(key)
                hasher.combine(value)
            }
        case .array(let values): hasher.combine(values)
        case .string(let text): hasher.combine(text)
        case .unsigned(let number): hasher.combine(number)
        case .double(let number): hasher.combine(number)
        case .bool(let flag): hasher.combine(flag)
        case .null: hasher.combine(0)
        }
    }

    /// A number member from any unsigned integer.
    public static func number(_ value: some BinaryInteger) -> JSONValue { .unsigned(UInt64(value)) }

    /// A list of strings.
    public static func strings(_ values: [String]) -> JSONValue { .array(values.map(JSONValue.string)) }

    /// The member `key` of an object, nil otherwise.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }
}

/// Writes ``JSONValue``s as iproute2's json_writer does: compact on one line, or with
/// `pretty` four-space indentation and arrays on one line (`[ "a","b" ]`).
public enum JSONWriter {
    public static func write(_ value: JSONValue, pretty: Bool) -> String {
        var output = ""
        write(value, pretty: pretty, depth: 0, into: &output)
        return output
    }

    private static func write(_ value: JSONValue, pretty: Bool, depth: Int, into output: inout String) {
        switch value {
        case .object(let members):
            output += "{"
            for (index, (key, member)) in members.enumerated() {
                if index > 0 { output += "," }
                if pretty { output += "\n" + indentation(depth + 1) }
                output += quoted(key) + (pretty ? ": " : ":")
                write(member, pretty: pretty, depth: depth + 1, into: &output)
            }
            if pretty && !members.isEmpty { output += "\n" + indentation(depth) }
            output += "}"
        case .array(let values):
            output += pretty ? "[ " : "["
            for (index, element) in values.enumerated() {
                if index > 0 { output += "," }
                write(element, pretty: pretty, depth: depth + 1, into: &output)
            }
            output += pretty ? (values.isEmpty ? "]" : " ]") : "]"
        case .string(let text): output += quoted(text)
        case .unsigned(let number): output += String(number)
        case .double(let number):
            output += number.isFinite ? (number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)) : "null"
        case .bool(let flag): output += flag ? "true" : "false"
        case .null: output += "null"
        }
    }

    private static func indentation(_ depth: Int) -> String { String(repeating: "    ", count: depth) }

    /// A JSON string literal (RFC 8259 §7): quotes, backslashes and control characters escaped.
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}

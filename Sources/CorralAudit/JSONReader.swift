import CorralSystem
/// A JSON value as the audit log needs it: numbers keep their literal text (the log never
/// does arithmetic on them, and re-encoding could change them), objects keep their members'
/// order and byte offsets.
indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([JSONMember])

    /// The value of the first member named `key`, for objects.
    subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }
}

struct JSONMember: Sendable, Equatable {
    var key: String
    var value: JSONValue
    /// Offset of the key's opening quote in the bytes read.
    var keyStart: Int
    /// Where the value's bytes lie.
    var valueRange: Range<Int>
}

struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    var message: String
    var offset: Int
    var description: String { "\(message) at byte \(offset + 1)" }
}

/// A strict RFC 8259 reader: no comments, no trailing commas, no lone surrogates, no control
/// characters inside strings, valid UTF-8 only, nesting at most 128 deep (the log is read
/// from files anyone with write access could have crafted).
struct JSONReader {
    /// A string or number token: what redaction looks at.
    struct Scalar: Sendable {
        var range: Range<Int>
        var value: JSONValue
    }

    let bytes: [UInt8]
    private(set) var index: Int
    private var depth = 0
    /// Every string (keys included) and number read, in order, when asked for.
    private(set) var scalars: [Scalar]?
    /// False: check only. Strings come back empty, objects and arrays without their
    /// contents; nothing is allocated per token (the writer checks every payload).
    let keepsValues: Bool

    static let maximumDepth = 128

    init(_ bytes: [UInt8], from start: Int = 0, recordingScalars: Bool = false, keepingValues: Bool = true) {
        self.bytes = bytes
        self.index = start
        self.scalars = recordingScalars ? [] : nil
        self.keepsValues = keepingValues
    }

    /// Reads exactly one value filling `bytes` (whitespace around it allowed).
    static func parse(_ bytes: [UInt8], recordingScalars: Bool = false,
                      keepingValues: Bool = true) throws(JSONError) -> (JSONValue, [Scalar]) {
        var reader = JSONReader(bytes, recordingScalars: recordingScalars, keepingValues: keepingValues)
        reader.skipWhitespace()
        let value = try reader.value()
        reader.skipWhitespace()
        guard reader.index == bytes.count else { throw reader.error("text after the JSON value") }
        return (value, reader.scalars ?? [])
    }

    // MARK: - Values

    mutating func value() throws(JSONError) -> JSONValue {
        guard index < bytes.count else { throw error("unexpected end of line") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""):
            let start = index
            let text = try string()
            scalars?.append(Scalar(range: start..<index, value: .string(text)))
            return .string(text)
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw error("unexpected character \(Self.show(bytes[index]))")
        }
    }

    private mutating func object() throws(JSONError) -> JSONValue {
        try enter()
        index += 1
        var members: [JSONMember] = []
        skipWhitespace()
        if peek(UInt8(ascii: "}")) {
            index += 1
            depth -= 1
            return .object([])
        }
        while true {
            skipWhitespace()
            guard peek(UInt8(ascii: "\"")) else { throw error("expected a member name") }
            let keyStart = index
            let key = try string()
            scalars?.append(Scalar(range: keyStart..<index, value: .string(key)))
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            skipWhitespace()
            let valueStart = index
            let value = try value()
            if keepsValues {
                members.append(JSONMember(key: key, value: value, keyStart: keyStart, valueRange: valueStart..<index))
            }
            skipWhitespace()
            if peek(UInt8(ascii: ",")) {
                index += 1
                continue
            }
            try expect(UInt8(ascii: "}"))
            depth -= 1
            return .object(members)
        }
    }

    private mutating func array() throws(JSONError) -> JSONValue {
        try enter()
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if peek(UInt8(ascii: "]")) {
            index += 1
            depth -= 1
            return .array([])
        }
        while true {
            skipWhitespace()
            let element = try value()
            if keepsValues { elements.append(element) }
            skipWhitespace()
            if peek(UInt8(ascii: ",")) {
                index += 1
                continue
            }
            try expect(UInt8(ascii: "]"))
            depth -= 1
            return .array(elements)
        }
    }

    private mutating func enter() throws(JSONError) {
        depth += 1
        guard depth <= Self.maximumDepth else { throw error("nested more than \(Self.maximumDepth) deep") }
    }

    // MARK: - Tokens

    private mutating func string() throws(JSONError) -> String {
        index += 1  // the opening quote
        // Most strings have no escapes: checked (and copied, when kept) in one piece.
        let start = index
        while index < bytes.count, bytes[index] != UInt8(ascii: "\\"), bytes[index] != UInt8(ascii: "\""), bytes[index] >= 0x20 {
            index += 1
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
            let text = try checkedText(bytes[start..<index])
            index += 1
            return text
        }
        var utf8 = Array(bytes[start..<index])
        while true {
            guard index < bytes.count else { throw error("unterminated string") }
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return try checkedText(utf8[...])
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw error("unterminated escape") }
                let escaped = bytes[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escaped)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"): utf8 += try unicodeEscape()
                default: throw error("invalid escape \\\(Self.show(escaped))")
                }
            case 0..<0x20:
                throw error("control character \(Self.show(byte)) inside a string")
            default:
                utf8.append(byte)
                index += 1
            }
        }
    }

    /// Valid UTF-8 as a String (empty when values are not kept).
    private func checkedText(_ utf8: ArraySlice<UInt8>) throws(JSONError) -> String {
        if keepsValues {
            guard let text = String(validating: utf8, as: UTF8.self) else { throw error("invalid UTF-8 in a string") }
            return text
        }
        var iterator = utf8.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return ""
            case .error: throw error("invalid UTF-8 in a string")
            }
        }
    }

    /// After `\u`: four hex digits, or a surrogate pair written as two escapes.
    private mutating func unicodeEscape() throws(JSONError) -> [UInt8] {
        let first = try hexQuad()
        var scalarValue = first
        if (0xD800..<0xDC00).contains(first) {
            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                throw error("lone surrogate \\u\(String(first, radix: 16))")
            }
            index += 2
            let second = try hexQuad()
            guard (0xDC00..<0xE000).contains(second) else { throw error("lone surrogate \\u\(String(first, radix: 16))") }
            scalarValue = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        } else if (0xDC00..<0xE000).contains(first) {
            throw error("lone surrogate \\u\(String(first, radix: 16))")
        }
        guard let scalar = Unicode.Scalar(scalarValue) else { throw error("invalid \\u escape") }
        return Array(String(Character(scalar)).utf8)
    }

    private mutating func hexQuad() throws(JSONError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("short \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = Self.hexDigit(bytes[index]) else { throw error("invalid \\u escape") }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    private mutating func number() throws(JSONError) -> JSONValue {
        let start = index
        if peek(UInt8(ascii: "-")) { index += 1 }
        if peek(UInt8(ascii: "0")) {
            index += 1
        } else {
            guard digits() > 0 else { throw error("invalid number") }
        }
        if peek(UInt8(ascii: ".")) {
            index += 1
            guard digits() > 0 else { throw error("invalid number") }
        }
        if peek(UInt8(ascii: "e")) || peek(UInt8(ascii: "E")) {
            index += 1
            if peek(UInt8(ascii: "+")) || peek(UInt8(ascii: "-")) { index += 1 }
            guard digits() > 0 else { throw error("invalid number") }
        }
        guard keepsValues || scalars != nil else { return .number("") }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        scalars?.append(Scalar(range: start..<index, value: .number(text)))
        return .number(text)
    }

    private mutating func digits() -> Int {
        let start = index
        while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
        return index - start
    }

    private mutating func literal(_ word: String, _ value: JSONValue) throws(JSONError) -> JSONValue {
        let expected = word.utf8
        guard index + expected.count <= bytes.count, bytes[index..<index + expected.count].elementsEqual(expected) else {
            throw error("invalid literal (expected \(word))")
        }
        index += expected.count
        return value
    }

    // MARK: - Helpers

    mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    private func peek(_ byte: UInt8) -> Bool { index < bytes.count && bytes[index] == byte }

    private mutating func expect(_ byte: UInt8) throws(JSONError) {
        guard peek(byte) else {
            throw error(index < bytes.count ? "expected \(Self.show(byte)), found \(Self.show(bytes[index]))"
                                            : "expected \(Self.show(byte)) before the end of the line")
        }
        index += 1
    }

    func error(_ message: String) -> JSONError { JSONError(message: message, offset: index) }

    static func hexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// A byte for an error message: printable ASCII quoted, anything else as hex.
    static func show(_ byte: UInt8) -> String {
        (0x21..<0x7F).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x" + String(byte, radix: 16)
    }
}

// MARK: - Writing

public enum JSONWriter {
    /// `text` as a JSON string, quotes included: `"` and `\` escaped, control characters as
    /// `\n`, `\t`, … or `\u00XX`, everything else as UTF-8 — as `JSONEncoder` writes it
    /// with `.withoutEscapingSlashes`.
    public static func string(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 2)
        appendString(text, to: &out)
        return out
    }

    /// Appends `text` as a JSON string (see `string(_:)`).
    public static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        if !text.utf8.contains(where: needsEscape) {  // the common case: copied whole
            out += text.utf8
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0x08: out += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
            case 0x0C: out += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
            case 0..<0x20:
                out += Array("\\u00".utf8) + [hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    static let hexDigits = Array("0123456789abcdef".utf8)

    /// Whether `byte` is written escaped inside a JSON string.
    static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    /// Lowercase hex of `bytes`.
    static func hex(_ bytes: some Sequence<UInt8>) -> String { lowercaseHex(Array(bytes)) }

    /// The bytes of lowercase (or uppercase) hex text; nil when it is not hex of even length.
    static func bytes(fromHex text: some StringProtocol) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var i = 0
        while i < digits.count {
            guard let high = JSONReader.hexDigit(digits[i]), let low = JSONReader.hexDigit(digits[i + 1]) else { return nil }
            out.append(high << 4 | low)
            i += 2
        }
        return out
    }
}

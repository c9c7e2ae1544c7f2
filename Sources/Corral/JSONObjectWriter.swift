import CorralAudit

/// One JSON object, its members appended in the order given (nil values left out, as
/// `encodeIfPresent` leaves them), strings escaped as `JSONEncoder` escapes them with
/// `.withoutEscapingSlashes` (`JSONWriter`).
///
/// The hand-written encodings of what every run or every watched call writes use it: the
/// audit's run-start and run-end entries (`RunReport+AuditLine.swift`) and a watched call's
/// event (`SyscallEventLine.swift`). Foundation's `JSONEncoder` spends most of a millisecond
/// per process instantiating generic metadata before its first byte, and microseconds per
/// line after that. (Nor `joined`: its first use in a process looks a conformance up at run
/// time, ~0.1 ms; see LaunchPathCollections.swift.) Callers list members sorted by key, as `.sortedKeys` does; tests decode
/// both encodings and compare.
struct JSONObjectWriter {
    private var bytes: [UInt8] = [UInt8(ascii: "{")]
    private var empty = true

    func finished() -> [UInt8] { bytes + [UInt8(ascii: "}")] }

    /// The object and a newline: one JSON line.
    func line() -> [UInt8] { bytes + [UInt8(ascii: "}"), 0x0A] }

    mutating func string(_ key: String, _ value: String?) {
        guard let value else { return }
        member(key)
        JSONWriter.appendString(value, to: &bytes)
    }

    mutating func integer(_ key: String, _ value: (some BinaryInteger)?) {
        guard let value else { return }
        member(key)
        bytes += String(value).utf8
    }

    /// Swift's shortest round-trip form less a trailing `.0` (`0.25`, `3`, `1e-05`), as
    /// `JSONEncoder` writes it. Non-finite values, which JSON cannot hold, are written as 0.
    mutating func double(_ key: String, _ value: Double?) {
        guard let value else { return }
        member(key)
        var text = value.isFinite ? String(value) : "0"
        if text.hasSuffix(".0") { text.removeLast(2) }
        bytes += text.utf8
    }

    mutating func boolean(_ key: String, _ value: Bool) {
        member(key)
        bytes += (value ? "true" : "false").utf8
    }

    mutating func strings(_ key: String, _ values: [String]?) {
        guard let values else { return }
        member(key)
        bytes.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            JSONWriter.appendString(value, to: &bytes)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    mutating func integers(_ key: String, _ values: [Int]) {
        member(key)
        bytes.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes += String(value).utf8
        }
        bytes.append(UInt8(ascii: "]"))
    }

    mutating func object(_ key: String, _ value: JSONObjectWriter?) {
        guard let value else { return }
        member(key)
        bytes += value.finished()
    }

    mutating func objects(_ key: String, _ values: [JSONObjectWriter]) {
        member(key)
        bytes.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes += value.finished()
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// A value encoded elsewhere: compact JSON without a trailing newline.
    mutating func encoded(_ key: String, _ value: [UInt8]?) {
        guard let value else { return }
        member(key)
        bytes += value
    }

    private mutating func member(_ key: String) {
        if !empty { bytes.append(UInt8(ascii: ",")) }
        empty = false
        JSONWriter.appendString(key, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
    }
}

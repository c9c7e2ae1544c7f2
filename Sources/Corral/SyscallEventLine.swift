import CorralProfile
import CorralSystem

// MARK: - The JSON line of a watched call's event, written by hand

extension RunEvent {
    /// The compact, key-sorted JSON line of a `syscall` event, as `jsonLine()` gives it but
    /// written directly: a busy program makes thousands of watched calls, each one line in the
    /// event stream and one entry in the audit log, and JSONEncoder's generic path costs
    /// several microseconds a line, on the CPU the sandbox shares. Nil for any other event
    /// (those take `jsonLine()`); a test decodes both and compares.
    func syscallLine() -> [UInt8]? {
        guard type == .syscall, command == nil, rule == nil, action == nil, limit == nil, reason == nil,
              signal == nil, detail == nil, termination == nil, exitStatus == nil, verdict == nil,
              network == nil, transaction == nil else { return nil }
        var object = JSONObjectWriter()
        if let call { object.object("call", call.jsonObject()) }
        object.string("goal", goal)
        object.integer("pid", pid)
        object.integer("seq", seq)
        object.string("syscall", syscall)
        object.string("time", time)
        object.string("type", type.rawValue)
        return object.finished() + [0x0A]
    }
}

extension WatchedCall {
    /// The keys in sorted order, as `JSONEncoder` with `.sortedKeys` writes them.
    fileprivate func jsonObject() -> JSONObjectWriter {
        var object = JSONObjectWriter()
        if let address { object.object("address", address.jsonObject()) }
        if let argv { object.strings("argv", argv) }
        object.object("decision", decision.jsonObject())
        object.integer("dirfd", dirfd)
        object.string("family", family)
        object.integer("fd", fd)
        object.string("flags", flags)
        object.integer("mode", mode)
        object.string("newPath", newPath)
        object.integer("number", number)
        object.string("path", path)
        object.integer("pid", pid)
        object.integer("signal", signal)
        object.string("syscall", syscall)
        object.integer("target", target)
        object.double("time", time)
        if let truncated { object.boolean("truncated", truncated) }
        object.string("unreadable", unreadable)
        return object
    }
}

extension WatchDecision {
    fileprivate func jsonObject() -> JSONObjectWriter {
        var object = JSONObjectWriter()
        switch self {
        case .continue:
            object.string("kind", "continue")
        case .deny(let errno):
            object.string("errno", ErrnoNames.name(of: errno) ?? String(errno))
            object.string("kind", "deny")
        }
        return object
    }
}

extension SocketAddress {
    fileprivate func jsonObject() -> JSONObjectWriter {
        var object = JSONObjectWriter()
        object.string("abstractName", abstractName)
        object.string("address", address)
        object.string("family", family)
        object.string("path", path)
        object.integer("port", port)
        object.integer("scopeID", scopeID)
        return object
    }
}

/// One JSON object, its members appended in the order given (nil values left out, as
/// `encodeIfPresent` leaves them), strings escaped as `JSONEncoder` escapes them with
/// `.withoutEscapingSlashes`: `"` and `\`, and control characters.
struct JSONObjectWriter {
    private var bytes: [UInt8] = [UInt8(ascii: "{")]
    private var empty = true

    func finished() -> [UInt8] { bytes + [UInt8(ascii: "}")] }

    mutating func string(_ key: String, _ value: String?) {
        guard let value else { return }
        member(key)
        Self.appendString(value, to: &bytes)
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

    mutating func strings(_ key: String, _ values: [String]) {
        member(key)
        bytes.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            Self.appendString(value, to: &bytes)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    mutating func object(_ key: String, _ value: JSONObjectWriter) {
        member(key)
        bytes += value.finished()
    }

    private mutating func member(_ key: String) {
        if !empty { bytes.append(UInt8(ascii: ",")) }
        empty = false
        Self.appendString(key, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func appendString(_ text: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            bytes += text.utf8  // the common case: copied whole
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0x08: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
            case 0x0C: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
            case 0..<0x20:
                bytes += Array("\\u00".utf8) + [hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]]
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

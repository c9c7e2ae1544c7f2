/// Keeps secret values (the manifest's `env.secrets`) out of the log. Matching is done on
/// decoded JSON strings, not on raw bytes, so a secret is found however the caller's encoder
/// escaped it (`\/`, `\u0041`, `\"`); a string that contains one is re-encoded with every
/// occurrence replaced by `[redacted]`. A number whose literal contains a secret (a numeric
/// PIN) becomes the string `"[redacted]"`. The result is always valid JSON of the same shape.
///
/// Values shorter than `minimumLength` bytes are not redacted: they would blank out common
/// words and digits of every event while protecting almost nothing.
struct Redactor: Sendable {
    static let minimumLength = 4
    static let replacement = "[redacted]"

    /// UTF-8 of each secret, longest first, so a secret that contains another is replaced whole.
    let secrets: [[UInt8]]

    init(_ secrets: [String]) {
        self.secrets = Set(secrets.filter { $0.utf8.count >= Self.minimumLength })
            .sorted { $0.utf8.count != $1.utf8.count ? $0.utf8.count > $1.utf8.count : $0 < $1 }
            .map { Array($0.utf8) }
    }

    /// `payload` checked to be one JSON object, made compact (whitespace outside strings
    /// removed, so the line stays one line) and with every secret replaced.
    /// - Returns: nil when `payload` is not a JSON object.
    /// - Parameter compact: the caller vouches that `payload` is one compact JSON object
    ///   (`AuditLog.Entry.compact`); with nothing to redact it is returned as it is, less a
    ///   trailing newline.
    func prepare(payload: [UInt8], compact: Bool = false) -> [UInt8]? {
        // Decoded strings equal their raw bytes unless an escape (`\`) is present, so without
        // one, a payload whose bytes hold no secret needs checking only.
        let searching = !secrets.isEmpty
            && (payload.contains(UInt8(ascii: "\\")) || secrets.contains { Self.find($0, in: payload[...]) != nil })
        if compact && !searching && payload.first == UInt8(ascii: "{") {
            return payload.last == 0x0A ? Array(payload.dropLast()) : payload
        }
        guard let parsed = try? JSONReader.parse(payload, recordingScalars: searching, keepingValues: searching),
              case .object = parsed.0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(payload.count)
        var position = 0
        for scalar in parsed.1 {
            guard let replacement = replacement(for: scalar.value) else { continue }
            Self.appendCompact(payload[position..<scalar.range.lowerBound], to: &out)
            out += replacement
            position = scalar.range.upperBound
        }
        Self.appendCompact(payload[position...], to: &out)
        return out
    }

    /// `text` with every secret replaced.
    func redact(_ text: String) -> String {
        guard !secrets.isEmpty else { return text }
        var bytes = Array(text.utf8)
        var changed = false
        for secret in secrets {
            var from = 0
            while let found = Self.find(secret, in: bytes[from...]) {
                bytes.replaceSubrange(found..<found + secret.count, with: Self.replacement.utf8)
                from = found + Self.replacement.utf8.count
                changed = true
            }
        }
        return changed ? String(decoding: bytes, as: UTF8.self) : text
    }

    /// Where `needle` first occurs in `haystack` (an index of the whole array).
    static func find(_ needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Int? {
        guard let first = needle.first, haystack.count >= needle.count else { return nil }
        var start = haystack.startIndex
        let last = haystack.endIndex - needle.count
        while start <= last {
            guard let candidate = haystack[start...last].firstIndex(of: first) else { return nil }
            if haystack[candidate..<candidate + needle.count].elementsEqual(needle) { return candidate }
            start = candidate + 1
        }
        return nil
    }

    private func replacement(for value: JSONValue) -> [UInt8]? {
        switch value {
        case .string(let text):
            let redacted = redact(text)
            return redacted == text ? nil : JSONWriter.string(redacted)
        case .number(let literal):
            let digits = Array(literal.utf8)
            return secrets.contains { Self.find($0, in: digits[...]) != nil } ? JSONWriter.string(Self.replacement) : nil
        default:
            return nil
        }
    }

    /// Copies a stretch of valid JSON, dropping whitespace outside strings. The stretches
    /// handed in start outside a string (they run between whole tokens).
    private static func appendCompact(_ bytes: ArraySlice<UInt8>, to out: inout [UInt8]) {
        var inString = false
        var escaped = false
        for byte in bytes {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                out.append(byte)
            } else if byte == UInt8(ascii: "\"") {
                inString = true
                out.append(byte)
            } else {
                switch byte {
                case 0x20, 0x09, 0x0A, 0x0D: break  // (a switch: an array literal here costs an allocation a byte)
                default: out.append(byte)
                }
            }
        }
    }
}

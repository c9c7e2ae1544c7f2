import CorralSystem

/// `corral audit show`: the log as a readable timeline, one event a line:
///
/// ```
/// 2026-05-01 10:00:00.123456  r-7f3a  run.start  goal=build agent=claude plan=3f2a…
/// 2026-05-01 10:00:01.500000  r-7f3a  denial     syscall=connect errno=EPERM
/// 2026-05-01 10:00:02.000000  r-7f3a  run.end    exit=0 wall=2.0s  [signed]
/// ```
///
/// Shows the log as it is, without checking it (`corral audit verify` does that); a line
/// that is not an event is shown as such. Everything printed from the log passes through
/// `terminalSafe`: the log holds text from sandboxed programs.
public enum AuditTimeline {
    /// The summary of a payload is cut to this many characters.
    static let summaryWidth = 120

    /// - Parameter run: show only this run's events.
    /// - Throws: `CorralError` when the log cannot be read.
    public static func render(log: String, run: String? = nil) throws(CorralError) -> String {
        let bytes: [UInt8]
        do { bytes = try HostEnvironment.readFile(log) } catch {
            throw CorralError(.setupFailed, operation: "read audit log", path: log, errno: error)
        }
        var rows: [[String]] = []
        var lineNumber = 0
        let body = bytes.last == 0x0A ? bytes.dropLast() : bytes[...]
        for line in body.split(separator: 0x0A, omittingEmptySubsequences: false) where !body.isEmpty {
            lineNumber += 1
            guard let record = try? AuditRecord.parse(Array(line)) else {
                if run == nil { rows.append(["line \(lineNumber)", "-", "?", "(not an audit event)"]) }
                continue
            }
            if let run, record.run != run { continue }
            rows.append([displayTime(record.time), terminalSafe(record.run), terminalSafe(record.type),
                         summary(of: record.payload) + (record.signature != nil ? "  [signed]" : "")])
        }
        return layout(rows)
    }

    /// Columns padded to the widest entry of the first three (capped), two spaces apart.
    static func layout(_ rows: [[String]]) -> String {
        var widths = [0, 0, 0]
        for row in rows {
            for column in 0..<3 { widths[column] = min(32, max(widths[column], row[column].count)) }
        }
        var out = ""
        for row in rows {
            var line = ""
            for column in 0..<3 {
                line += row[column] + String(repeating: " ", count: max(0, widths[column] - row[column].count)) + "  "
            }
            line += row[3]
            while line.hasSuffix(" ") { line.removeLast() }
            out += line + "\n"
        }
        return out
    }

    /// `2026-05-01T10:00:00.123456789Z` as `2026-05-01 10:00:00.123456`.
    static func displayTime(_ time: String) -> String {
        guard AuditFormat.isTimestamp(time) else { return terminalSafe(time) }
        let characters = Array(time)
        return String(characters[0..<10]) + " " + String(characters[11..<26])
    }

    /// `key=value` for each member: strings bare (quoted when they hold spaces or quotes),
    /// numbers, booleans and null as written, objects as `{n}` and arrays as `[n]`; cut to
    /// `summaryWidth` characters.
    static func summary(of payload: JSONValue) -> String {
        guard case .object(let members) = payload else { return "" }
        var parts: [String] = []
        for member in members {
            parts.append(terminalSafe(member.key) + "=" + brief(member.value))
        }
        let text = parts.joined(separator: " ")
        return text.count > summaryWidth ? String(text.prefix(summaryWidth - 1)) + "…" : text
    }

    static func brief(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .number(let text): return text
        case .string(let text):
            let shown = terminalSafe(text.count > 60 ? String(text.prefix(59)) + "…" : text)
            return shown.isEmpty || shown.contains(" ") || shown.contains("\"") || shown.contains("=")
                ? "\"" + shown.replacing("\"", with: "\\\"") + "\"" : shown
        case .array(let elements): return "[\(elements.count)]"
        case .object(let members): return "{\(members.count)}"
        }
    }

    /// `text` with everything that could drive a terminal or disguise what is shown written
    /// as `\u{…}`: C0 controls (ESC among them), DEL, C1 controls, and the Unicode format
    /// characters used for bidirectional spoofing (U+200B–U+200F, U+202A–U+202E,
    /// U+2060–U+2069, U+FEFF) and line/paragraph separators (U+2028, U+2029).
    public static func terminalSafe(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            let v = scalar.value
            let unsafeForTerminal = v < 0x20 || v == 0x7F || (0x80..<0xA0).contains(v)
                || (0x200B...0x200F).contains(v) || (0x2028...0x202E).contains(v) || (0x2060...0x2069).contains(v)
                || v == 0xFEFF
            if unsafeForTerminal {
                out += "\\u{" + String(v, radix: 16) + "}"
            } else if scalar == "\\" {
                out += "\\\\"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

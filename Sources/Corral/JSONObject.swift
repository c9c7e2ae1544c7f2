import CorralAudit

/// A compact JSON object written member by member: the launch path's encoder for the audit
/// log's run-start and run-end entries. Foundation's `JSONEncoder` spends most of a
/// millisecond per process instantiating generic metadata and looking up conformances
/// before it writes the first byte, on every `corral run`; this writes bytes directly.
///
/// Members are written in the order given: callers list them sorted by key, as
/// `jsonLine()` (`.sortedKeys`) does, and skip absent optionals, as synthesized `Codable`
/// does. `RunReportJSONTests` checks the result against `JSONEncoder`'s.
struct JSONObject {
    private(set) var bytes: [UInt8] = [UInt8(ascii: "{")]

    init() { bytes.reserveCapacity(512) }

    private mutating func key(_ key: String) {
        if bytes.count > 1 { bytes.append(UInt8(ascii: ",")) }
        bytes += JSONWriter.string(key)
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func member(_ name: String, _ value: String?) {
        guard let value else { return }
        key(name)
        bytes += JSONWriter.string(value)
    }

    mutating func member(_ name: String, _ value: (some BinaryInteger)?) {
        guard let value else { return }
        key(name)
        bytes += Array(String(value).utf8)
    }

    mutating func member(_ name: String, _ value: Double?) {
        guard let value else { return }
        key(name)
        // Shortest round-trip digits, as JSONEncoder writes them; a whole number without ".0".
        var text = value.isFinite ? value.description : "0"
        if text.hasSuffix(".0") { text.removeLast(2) }
        bytes += Array(text.utf8)
    }

    mutating func member(_ name: String, _ values: [String]?) {
        guard let values else { return }
        key(name)
        bytes.append(UInt8(ascii: "["))
        for (i, value) in values.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes += JSONWriter.string(value)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    mutating func member(_ name: String, _ values: [Int]) {
        key(name)
        bytes += Array(("[" + values.map(String.init).joined(separator: ",") + "]").utf8)
    }

    mutating func member(_ name: String, _ object: JSONObject?) {
        guard let object else { return }
        key(name)
        bytes += object.finished
    }

    mutating func member(_ name: String, _ objects: [JSONObject]) {
        key(name)
        bytes.append(UInt8(ascii: "["))
        for (i, object) in objects.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes += object.finished
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// A value encoded elsewhere (compact JSON without the trailing newline).
    mutating func member(_ name: String, encoded: [UInt8]?) {
        guard let encoded else { return }
        key(name)
        bytes += encoded
    }

    var finished: [UInt8] { bytes + [UInt8(ascii: "}")] }

    /// The object and a newline: one JSON line.
    var line: [UInt8] { bytes + [UInt8(ascii: "}"), 0x0A] }
}

// MARK: - The run-start and run-end entries

extension AuditRunStart {
    /// The same JSON line as `jsonLine()`, without `JSONEncoder`.
    func auditLine() -> [UInt8] {
        var o = JSONObject()
        o.member("agent", agent)
        o.member("command", command)
        o.member("commit", commit)
        o.member("goal", goal)
        o.member("intent", intent)
        o.member("landlockABI", landlockABI)
        o.member("landlockEnforcement", landlockEnforcement)
        o.member("limits", limits.map(\.jsonObject))
        o.member("manifest", manifest)
        o.member("manifestSHA256", manifestSHA256)
        o.member("namespaces", namespaces)
        o.member("network", network)
        o.member("pid", pid)
        o.member("planDigest", planDigest)
        o.member("startedAt", startedAt)
        return o.line
    }
}

extension RunReport {
    /// The same JSON line as `jsonLine()`, without `JSONEncoder` for everything a plain run
    /// has; the parts only some runs have (watched calls, egress, staged writes) are encoded
    /// by it.
    func auditLine() -> [UInt8] {
        func encoded(_ value: (some Encodable)?) -> [UInt8]? { value.map { Array($0.jsonLine().dropLast()) } }
        var o = JSONObject()
        o.member("command", command)
        o.member("durationSeconds", durationSeconds)
        o.member("egress", encoded: encoded(egress))
        o.member("error", error)
        o.member("exitStatus", exitStatus)
        o.member("goalID", goalID)
        o.member("killReason", killReason?.rawValue)
        o.member("killRule", killRule)
        o.member("landlockABI", landlockABI)
        o.member("landlockEnforcement", landlockEnforcement)
        o.member("landlockNotEnforced", landlockNotEnforced)
        o.member("limits", limits.map(\.jsonObject))
        o.member("manifest", manifest)
        o.member("manifestSHA256", manifestSHA256)
        o.member("namespaces", namespaces)
        o.member("network", network)
        o.member("planDigest", planDigest)
        o.member("resources", resources.jsonObject)
        o.member("rulesFired", rulesFired.map(\.jsonObject))
        o.member("run", run)
        o.member("schemaVersion", schemaVersion)
        o.member("seccompInstructions", seccompInstructions)
        o.member("skippedPaths", skippedPaths)
        o.member("startedAt", startedAt)
        o.member("termination", termination?.jsonObject)
        var t = JSONObject()
        t.member("compile", timings.compile)
        t.member("launch", timings.launch)
        t.member("materialise", timings.materialise)
        t.member("run", timings.run)
        o.member("timings", t)
        o.member("transaction", encoded: encoded(transaction))
        o.member("verdict", verdict.rawValue)
        o.member("watched", encoded: encoded(watched))
        o.member("watchedDropped", watchedDropped)
        return o.line
    }
}

extension Termination {
    var jsonObject: JSONObject {
        var o = JSONObject()
        switch self {
        case .exited(let code):
            o.member("code", code)
            o.member("kind", "exited")
        case .signaled(let signal):
            o.member("kind", "signaled")
            o.member("signal", signal)
        }
        return o
    }
}

extension ResourceUse {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.member("cpuSystemSeconds", cpuSystemSeconds)
        o.member("cpuUserSeconds", cpuUserSeconds)
        o.member("largestProcessBytes", largestProcessBytes)
        o.member("memoryPeakBytes", memoryPeakBytes)
        o.member("oomKills", oomKills)
        o.member("processLimitHits", processLimitHits)
        o.member("processesPeak", processesPeak)
        o.member("stderrBytes", stderrBytes)
        o.member("stdoutBytes", stdoutBytes)
        return o
    }
}

extension LimitEnforcement {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.member("limit", limit)
        o.member("mechanism", mechanism)
        o.member("notEnforced", notEnforced)
        o.member("value", value)
        return o
    }
}

extension RuleFiring {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.member("action", action)
        o.member("at", at)
        o.member("detail", detail)
        o.member("rule", rule)
        return o
    }
}

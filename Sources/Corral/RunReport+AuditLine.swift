// The audit log's run-start and run-end payloads, written by hand (see `JSONObjectWriter`):
// every run writes both, and `AuditLineTests` checks them against the `Codable` encoding.

extension AuditRunStart {
    /// The same JSON line as `jsonLine()`, without `JSONEncoder`.
    func auditLine() -> [UInt8] {
        var o = JSONObjectWriter()
        o.string("agent", agent)
        o.strings("command", command)
        o.string("commit", commit)
        o.string("goal", goal)
        o.string("intent", intent)
        o.integer("landlockABI", landlockABI)
        o.string("landlockEnforcement", landlockEnforcement)
        o.objects("limits", limits.map(\.jsonObject))
        o.string("manifest", manifest)
        o.string("manifestSHA256", manifestSHA256)
        o.strings("namespaces", namespaces)
        o.string("network", network)
        o.integer("pid", pid)
        o.string("planDigest", planDigest)
        o.string("startedAt", startedAt)
        return o.line()
    }
}

extension RunReport {
    /// The same JSON line as `jsonLine()`, without `JSONEncoder` for everything a plain run
    /// has; the parts only some runs have (watched calls, egress, staged writes) are encoded
    /// by it.
    func auditLine() -> [UInt8] {
        func encoded(_ value: (some Encodable)?) -> [UInt8]? { value.map { Array($0.jsonLine().dropLast()) } }
        var o = JSONObjectWriter()
        o.strings("command", command)
        o.double("durationSeconds", durationSeconds)
        o.encoded("egress", encoded(egress))
        o.string("error", error)
        o.integer("exitStatus", exitStatus)
        o.string("goalID", goalID)
        o.string("killReason", killReason?.rawValue)
        o.string("killRule", killRule)
        o.integer("landlockABI", landlockABI)
        o.string("landlockEnforcement", landlockEnforcement)
        o.string("landlockNotEnforced", landlockNotEnforced)
        o.objects("limits", limits.map(\.jsonObject))
        o.string("manifest", manifest)
        o.string("manifestSHA256", manifestSHA256)
        o.strings("namespaces", namespaces)
        o.string("network", network)
        o.string("planDigest", planDigest)
        o.object("resources", resources.jsonObject)
        o.objects("rulesFired", rulesFired.map(\.jsonObject))
        o.string("run", run)
        o.integer("schemaVersion", schemaVersion)
        o.integers("seccompInstructions", seccompInstructions)
        o.strings("skippedPaths", skippedPaths)
        o.string("startedAt", startedAt)
        o.object("termination", termination?.jsonObject)
        var t = JSONObjectWriter()
        t.double("compile", timings.compile)
        t.double("launch", timings.launch)
        t.double("materialise", timings.materialise)
        t.double("run", timings.run)
        o.object("timings", t)
        o.encoded("transaction", encoded(transaction))
        o.string("verdict", verdict.rawValue)
        o.encoded("watched", encoded(watched))
        o.integer("watchedDropped", watchedDropped)
        return o.line()
    }
}

extension Termination {
    var jsonObject: JSONObjectWriter {
        var o = JSONObjectWriter()
        switch self {
        case .exited(let code):
            o.integer("code", code)
            o.string("kind", "exited")
        case .signaled(let signal):
            o.string("kind", "signaled")
            o.integer("signal", signal)
        }
        return o
    }
}

extension ResourceUse {
    var jsonObject: JSONObjectWriter {
        var o = JSONObjectWriter()
        o.double("cpuSystemSeconds", cpuSystemSeconds)
        o.double("cpuUserSeconds", cpuUserSeconds)
        o.integer("largestProcessBytes", largestProcessBytes)
        o.integer("memoryPeakBytes", memoryPeakBytes)
        o.integer("oomKills", oomKills)
        o.integer("processLimitHits", processLimitHits)
        o.integer("processesPeak", processesPeak)
        o.integer("stderrBytes", stderrBytes)
        o.integer("stdoutBytes", stdoutBytes)
        return o
    }
}

extension LimitEnforcement {
    var jsonObject: JSONObjectWriter {
        var o = JSONObjectWriter()
        o.string("limit", limit)
        o.string("mechanism", mechanism)
        o.string("notEnforced", notEnforced)
        o.string("value", value)
        return o
    }
}

extension RuleFiring {
    var jsonObject: JSONObjectWriter {
        var o = JSONObjectWriter()
        o.string("action", action)
        o.double("at", at)
        o.string("detail", detail)
        o.string("rule", rule)
        return o
    }
}

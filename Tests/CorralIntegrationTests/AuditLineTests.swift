import Foundation
import Testing
@testable import Corral

/// The run-start and run-end audit payloads are written by hand (`JSONObject`), off
/// Foundation's `JSONEncoder`, which costs most of a millisecond on every launch. They must
/// say exactly what the `Codable` encoding says: same members, same values.
@Suite struct AuditLineTests {
    static func parsed(_ bytes: [UInt8]) throws -> NSDictionary {
        #expect(bytes.last == 0x0A)
        return try #require(try JSONSerialization.jsonObject(with: Data(bytes.dropLast())) as? NSDictionary)
    }

    static func report(_ termination: Termination, full: Bool) -> RunReport {
        var resources = ResourceUse()
        resources.cpuUserSeconds = 0.004_85
        resources.cpuSystemSeconds = 1e-06
        resources.largestProcessBytes = 2_846_720
        if full {
            resources.memoryPeakBytes = 1 << 20
            resources.processesPeak = 3
            resources.processLimitHits = 0
            resources.oomKills = 0
            resources.stdoutBytes = 12
            resources.stderrBytes = 0
        }
        var report = RunReport(
            run: "goal-20261206-025826-04387358", goalID: "goal", manifest: "p/\"quoted\"\\.yaml",
            manifestSHA256: full ? String(repeating: "a", count: 64) : nil, planDigest: full ? "b" : nil,
            command: ["/bin/echo", "tab\there", "new\nline", "bell\u{07}", "ünï ☃"],
            startedAt: "2026-12-06T02:58:26.036458000Z", durationSeconds: 0.015_637_116, termination: termination,
            exitStatus: termination.exitStatus, killReason: full ? .supervisorSignal : nil, verdict: full ? .rogue : .clean,
            killRule: full ? "fork-bomb" : nil, resources: resources,
            limits: [LimitEnforcement(limit: "wall", value: "5m", mechanism: "supervisor", notEnforced: nil),
                     LimitEnforcement(limit: "memory", value: "1GiB", mechanism: nil, notEnforced: "no cgroup")],
            rulesFired: full ? [RuleFiring(rule: "r", action: "kill", detail: "rate 6/1s", at: 2.5)] : [],
            namespaces: ["user", "pid"], network: "none", landlockABI: 7, landlockEnforcement: "required",
            landlockNotEnforced: full ? "refer" : nil, seccompInstructions: [412, 9], skippedPaths: full ? ["/lib32"] : [],
            error: full ? "audit log: x" : nil,
            timings: RunReport.Timings(compile: 0.001, materialise: 0.000_4, launch: 0.004, run: 3))
        if full {
            report.watched = []
            report.watchedDropped = 3
        }
        return report
    }

    @Test(arguments: [Termination.exited(0), .exited(42), .signaled(9)], [false, true])
    func runEndMatchesTheCodableEncoding(termination: Termination, full: Bool) throws {
        let report = Self.report(termination, full: full)
        #expect(try Self.parsed(report.auditLine()) == Self.parsed(report.jsonLine()))
    }

    @Test func runStartMatchesTheCodableEncoding() throws {
        for agent in [nil, "bot@1"] as [String?] {
            let start = AuditRunStart(
                goal: "g", intent: agent == nil ? nil : "say \"hi\"", agent: agent, manifest: "/m.yaml",
                manifestSHA256: "c", planDigest: "d", command: ["a", "b"], landlockABI: 6, landlockEnforcement: "best-effort",
                namespaces: [], network: "allowlist", commit: "ask",
                limits: [LimitEnforcement(limit: "processes", value: "64", mechanism: "cgroup v1 pids.max", notEnforced: nil)],
                pid: 4242, startedAt: "2026-12-06T02:58:26.036458000Z")
            #expect(try Self.parsed(start.auditLine()) == Self.parsed(start.jsonLine()))
        }
    }

    /// Members in sorted order, as `jsonLine()` writes them: two writers, one line form.
    @Test func membersAreSorted() throws {
        let line = String(decoding: Self.report(.exited(0), full: true).auditLine(), as: UTF8.self)
        let keys = ["\"command\"", "\"durationSeconds\"", "\"error\"", "\"exitStatus\"", "\"goalID\"", "\"killReason\"",
                    "\"landlockABI\"", "\"limits\"", "\"resources\"", "\"timings\"", "\"verdict\"", "\"watchedDropped\""]
        let positions = keys.map { line.range(of: $0)?.lowerBound }
        #expect(!positions.contains(nil))
        #expect(positions.compactMap { $0 } == positions.compactMap { $0 }.sorted())
    }
}

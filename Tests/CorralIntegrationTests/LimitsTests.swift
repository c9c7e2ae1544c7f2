import Foundation
import Testing

/// `limits:` enforced for real, root and rootless: each limit meets a probe that pushes
/// against it, and the exact outcome (errno, bytes passed through, kill reason) is checked,
/// with the report's verdict and resource use.
@Suite(.tags(.integration))
struct LimitsTests {
    @Test("limits.output passes exactly the cap through, then stops the run", arguments: RunAs.allCases)
    func outputCap(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.limits = ["output: 64KiB"]
            let path = try sandbox.write(manifest)
            let report = sandbox.scratch + "/report.json", events = sandbox.scratch + "/events.jsonl"
            let result = try await sandbox.corral(["run", "--profile", path, "--report", report, "--events", events,
                                                   "--", sandbox.probe, "flood", "10000000"])
            #expect(result.status == 128 + SIGKILL, "\(result)")
            #expect(result.stdout.utf8.count == 65_536, "\(result.stdout.utf8.count) bytes passed through")
            #expect(result.stdout.allSatisfy { $0 == "x" })
            let fields = try LimitsReport.read(report)
            #expect(fields.killReason == "output")
            #expect(fields.verdict == "rogue")
            #expect((fields.resources.stdoutBytes ?? 0) >= 65_536)
            #expect(fields.limits.contains { $0.limit == "output" && $0.value == "64KiB" && $0.mechanism != nil })

            let lines = try EventLines.read(events)
            #expect(lines.map(\.type) == ["start", "limit", "kill", "exit"], "\(lines)")
            #expect(lines.map(\.seq) == [1, 2, 3, 4])
            #expect(lines[2].reason == "output")
            #expect(lines[3].verdict == "rogue" && lines[3].exitStatus == 128 + SIGKILL)
        }
    }

    @Test("limits.open_files: open fails with EMFILE at the limit", arguments: RunAs.allCases)
    func openFiles(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.limits = ["open_files: 32"]
            // 0, 1 and 2 are open; 29 more make 32.
            expectProbe(try await sandbox.probe("open-many", manifest: manifest), printed: "opened=29 errno=EMFILE")
        }
    }

    @Test("limits.file_size: a write past it fails with EFBIG at exactly the limit", arguments: RunAs.allCases)
    func fileSize(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.limits = ["file_size: 10000B"]
            expectProbe(try await sandbox.probe("write-big", "/tmp/big", "25000", manifest: manifest),
                        printed: "written=10000 errno=EFBIG")
            // Control: without the limit the same write completes.
            expectProbe(try await sandbox.probe("write-big", "/tmp/big", "25000"), printed: "written=25000 ok")
        }
    }

    @Test("limits.cpu ends a busy loop with reason cpu", arguments: RunAs.allCases)
    func cpuTime(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.limits = ["cpu: 1s"]
            let path = try sandbox.write(manifest)
            let report = sandbox.scratch + "/report.json"
            let result = try await sandbox.run(path, [sandbox.probe, "spin", "0"], report: report)
            // The supervisor's tree accounting kills (SIGKILL) or the per-process rlimit does (SIGXCPU).
            #expect([128 + SIGKILL, 128 + SIGXCPU].contains(result.status), "\(result)")
            // CPU time, not wall time: on a loaded machine a second of CPU takes longer.
            #expect(result.elapsed < .seconds(30), "\(result)")
            let fields = try LimitsReport.read(report)
            #expect(fields.killReason == "cpu")
            // rusage's split into user and system is tick-sampled; the total is near the limit.
            #expect(fields.resources.cpuUserSeconds + fields.resources.cpuSystemSeconds >= 0.5, "\(fields.resources)")
        }
    }

    @Test("an i386 syscall's SIGSYS is reported as a seccomp kill", arguments: RunAs.allCases)
    func seccompKill(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let path = try sandbox.write(Manifest(sandbox: sandbox))
            let report = sandbox.scratch + "/report.json"
            let result = try await sandbox.run(path, [sandbox.probe, "int80"], report: report)
            #expect(result.status == 128 + SIGSYS, "\(result)")
            let fields = try LimitsReport.read(report)
            #expect(fields.killReason == "seccomp" && fields.verdict == "rogue")
        }
    }

    @Test("a clean run: verdict clean, CPU and the largest process's memory reported", arguments: RunAs.allCases)
    func cleanRun(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let path = try sandbox.write(Manifest(sandbox: sandbox))
            let report = sandbox.scratch + "/report.json"
            let result = try await sandbox.run(path, [sandbox.probe, "alloc", "20"], report: report)
            #expect(result.status == 0 && result.stdout == "ok\n", "\(result)")
            let fields = try LimitsReport.read(report)
            #expect(fields.verdict == "clean" && fields.killReason == nil)
            #expect(fields.resources.largestProcessBytes >= 20 << 20, "\(fields.resources)")
            #expect(fields.resources.largestProcessBytes < 200 << 20, "\(fields.resources)")
        }
    }

    /// SIGTERM to corral is forwarded; a command that ignores it is killed when the grace
    /// period ends, and the report is still written.
    @Test("SIGTERM: forward, grace period, kill, report", arguments: RunAs.allCases)
    func gracePeriod(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let path = try sandbox.write(Manifest(sandbox: sandbox))
            let report = sandbox.scratch + "/report.json"
            let corral = Process()
            corral.environment = sandbox.processEnvironment
            corral.executableURL = URL(fileURLWithPath: runAs.commandPrefix.first ?? Products.corral)
            corral.arguments = Array(runAs.commandPrefix.dropFirst()) + (runAs.commandPrefix.isEmpty ? [] : [Products.corral])
                + ["run", "--profile", path, "--report", report, "--grace", "300ms", "--", sandbox.probe, "ignore-term", "30"]
            let output = Pipe()
            corral.standardOutput = output
            try corral.run()
            #expect(String(decoding: output.fileHandleForReading.availableData, as: UTF8.self) == "ready\n")
            let start = ContinuousClock.now
            kill(corral.processIdentifier, SIGTERM)
            corral.waitUntilExit()
            let elapsed = ContinuousClock.now - start
            #expect(corral.terminationStatus == 128 + SIGKILL)
            #expect(elapsed >= .milliseconds(250) && elapsed < .seconds(5), "\(elapsed)")
            let fields = try LimitsReport.read(report)
            #expect(fields.killReason == "supervisor-signal" && fields.verdict == "rogue")
        }
    }
}

/// The report fields these tests read.
struct LimitsReport: Decodable {
    struct Resources: Decodable, CustomStringConvertible {
        var cpuUserSeconds: Double
        var cpuSystemSeconds: Double
        var memoryPeakBytes: UInt64?
        var largestProcessBytes: UInt64
        var processesPeak: UInt64?
        var processLimitHits: UInt64?
        var oomKills: UInt64?
        var stdoutBytes: UInt64?
        var stderrBytes: UInt64?
        var description: String {
            "cpu \(cpuUserSeconds)+\(cpuSystemSeconds)s, peak \(memoryPeakBytes.map(String.init) ?? "-"), largest \(largestProcessBytes), procs \(processesPeak.map(String.init) ?? "-")"
        }
    }
    struct Limit: Decodable {
        var limit: String
        var value: String
        var mechanism: String?
        var notEnforced: String?
    }
    struct Firing: Decodable {
        var rule: String
        var action: String
        var detail: String
    }
    var killReason: String?
    var killRule: String?
    var verdict: String
    var exitStatus: Int32
    var resources: Resources
    var limits: [Limit]
    var rulesFired: [Firing]

    static func read(_ path: String) throws -> Self {
        try JSONDecoder().decode(Self.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }
}

/// `--events` lines, the fields the tests read.
struct EventLines: Decodable, CustomStringConvertible {
    var seq: Int
    var type: String
    var time: String
    var reason: String?
    var rule: String?
    var action: String?
    var limit: String?
    var detail: String?
    var verdict: String?
    var exitStatus: Int32?

    var description: String { "\(seq) \(type)\(reason.map { " " + $0 } ?? "")\(rule.map { " rule=" + $0 } ?? "")" }

    static func read(_ path: String) throws -> [Self] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONDecoder().decode(Self.self, from: Data($0.utf8)) }
    }
}

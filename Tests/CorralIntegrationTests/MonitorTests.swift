import Foundation
import Testing

/// Limits that need the run's cgroup, and monitor rules, end to end: a probe pushes against
/// each, and the exact outcome (errno, kill reason, rule, peak, events) is checked. cgroup
/// cases run as root (this host has no delegated cgroup for other users); the rootless
/// cases check the explicit degradation instead.
@Suite(.tags(.integration))
struct MonitorTests {
    static let cgroups = HostSupport.runCgroupsUnavailable

    @Test("a memory bomb is OOM-killed at limits.memory: reason memory, peak at the limit",
          .enabled(if: cgroups == nil, "\(cgroups ?? "")"))
    func memoryBomb() async throws {
        try await withSandbox(.root) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.limits = ["memory: 48MiB"]
            let path = try sandbox.write(manifest)
            let report = sandbox.scratch + "/report.json"
            let result = try await sandbox.run(path, [sandbox.probe, "alloc", "500"], report: report)
            #expect(result.status == 128 + SIGKILL, "\(result)")
            #expect(result.stdout.isEmpty, "the probe must not have finished: \(result)")
            let fields = try LimitsReport.read(report)
            #expect(fields.killReason == "memory" && fields.verdict == "rogue")
            let peak = try #require(fields.resources.memoryPeakBytes)
            #expect(peak > 40 << 20 && peak <= 48 << 20, "peak \(peak)")
            #expect((fields.resources.oomKills ?? 0) >= 1)
            #expect(fields.limits.first { $0.limit == "memory" }?.mechanism?.contains("cgroup") == true)
        }
    }

    @Test("a fork bomb gets EAGAIN at limits.processes; limit(processes) ends the run with reason processes",
          .enabled(if: cgroups == nil, "\(cgroups ?? "")"))
    func forkBomb() async throws {
        try await withSandbox(.root) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.limits = ["processes: 16"]
            // init and the probe count too: 14 children fit.
            expectProbe(try await sandbox.probe("fork-many", "100", manifest: manifest), printed: "forked=14 errno=EAGAIN")

            manifest.monitor = ["{ id: forks, when: limit(processes), then: kill }"]
            let path = try sandbox.write(manifest, named: "rule.yaml")
            let report = sandbox.scratch + "/report.json", events = sandbox.scratch + "/events.jsonl"
            _ = try await sandbox.corral(["run", "--profile", path, "--report", report, "--events", events,
                                          "--", sandbox.probe, "fork-many", "100"])
            let fields = try LimitsReport.read(report)
            #expect(fields.killReason == "processes" && fields.killRule == "forks" && fields.verdict == "rogue")
            #expect(fields.rulesFired.map(\.rule) == ["forks"])
            #expect((fields.resources.processLimitHits ?? 0) >= 1)
            let types = try EventLines.read(events).map(\.type)
            #expect(types.starts(with: ["start"]) && types.contains("limit") && types.contains("rule"), "\(types)")
            #expect(types.last == "exit")
        }
    }

    @Test("limits.cpu through the cgroup: the busy tree is killed by the supervisor",
          .enabled(if: cgroups == nil, "\(cgroups ?? "")"))
    func cpuThroughTheCgroup() async throws {
        try await withSandbox(.root) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.limits = ["cpu: 500ms"]
            let path = try sandbox.write(manifest)
            let report = sandbox.scratch + "/report.json"
            let result = try await sandbox.run(path, [sandbox.probe, "spin", "0"], report: report)
            // The supervisor samples every 50 ms and kills before the 1 s RLIMIT_CPU would.
            #expect(result.status == 128 + SIGKILL, "\(result)")
            let fields = try LimitsReport.read(report)
            #expect(fields.killReason == "cpu")
            #expect(fields.limits.first { $0.limit == "cpu" }?.mechanism?.contains("cgroup") == true)
        }
    }

    @Test("cpu_quota throttles: 0.3 s of CPU at 20% of a core takes over a second",
          .enabled(if: cgroups == nil, "\(cgroups ?? "")"))
    func cpuQuota() async throws {
        try await withSandbox(.root) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.limits = ["cpu_quota: 20%"]
            let throttled = try await sandbox.probe("spin", "0.3", manifest: manifest)
            expectProbe(throttled, printed: "ok")
            #expect(throttled.elapsed >= .milliseconds(1200), "\(throttled.elapsed)")
            let free = try await sandbox.probe("spin", "0.3")
            expectProbe(free, printed: "ok")
            #expect(free.elapsed < throttled.elapsed)
        }
    }

    /// A pause rule freezes the whole tree; SIGCONT to corral thaws it and the run finishes.
    @Test("pause freezes the run; SIGCONT to corral resumes it", .enabled(if: cgroups == nil, "\(cgroups ?? "")"))
    func pauseAndResume() async throws {
        try await withSandbox(.root) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.limits = ["processes: 64"]
            manifest.monitor = ["{ id: hold, when: \"cpu > 200ms\", then: pause }"]
            let path = try sandbox.write(manifest)
            let events = sandbox.scratch + "/events.jsonl", report = sandbox.scratch + "/report.json"
            let corral = Process()
            corral.environment = sandbox.processEnvironment
            corral.executableURL = URL(fileURLWithPath: Products.corral)
            corral.arguments = ["run", "--quiet", "--profile", path, "--events", events, "--report", report,
                                "--", sandbox.probe, "spin", "1"]
            let output = Pipe()
            corral.standardOutput = output
            try corral.run()
            var paused = false
            for _ in 0..<200 where !paused {
                try await Task.sleep(for: .milliseconds(25))
                paused = ((try? EventLines.read(events)) ?? []).contains { $0.type == "pause" }
            }
            #expect(paused, "no pause event")
            // Frozen: no CPU moves while paused, and the run does not end on its own.
            try await Task.sleep(for: .milliseconds(400))
            #expect(corral.isRunning)
            kill(corral.processIdentifier, SIGCONT)
            corral.waitUntilExit()
            #expect(corral.terminationStatus == 0)
            #expect(String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) == "ok\n")
            let types = try EventLines.read(events).map(\.type)
            #expect(types == ["start", "rule", "pause", "resume", "exit"], "\(types)")
            let fields = try LimitsReport.read(report)
            #expect(fields.verdict == "clean" && fields.rulesFired.map(\.rule) == ["hold"])
        }
    }

    @Test("SIGKILL of corral leaves its cgroup; the next run with limits removes it",
          .enabled(if: cgroups == nil, "\(cgroups ?? "")"))
    func staleCgroupIsRemoved() async throws {
        try await withSandbox(.root) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.limits = ["memory: 64MiB"]
            let path = try sandbox.write(manifest)
            let corral = Process()
            corral.environment = sandbox.processEnvironment
            corral.executableURL = URL(fileURLWithPath: Products.corral)
            corral.arguments = ["run", "--quiet", "--profile", path, "--", sandbox.probe, "sleep", "30"]
            try corral.run()
            let prefix = "corral-\(corral.processIdentifier)-"
            var groups: [String] = []
            for _ in 0..<200 where groups.isEmpty {
                try await Task.sleep(for: .milliseconds(20))
                groups = Self.runGroups(prefix: prefix)
            }
            #expect(!groups.isEmpty, "the run's cgroup was not found")
            kill(corral.processIdentifier, SIGKILL)
            corral.waitUntilExit()
            // (No check that the group is still there now: any other run with limits in this
            // parallel suite may already have removed it as stale, which is the point.)
            // PR_SET_PDEATHSIG kills the sandbox asynchronously; its group can go once it is empty.
            for _ in 0..<200 where !CommandRunner.processes(running: sandbox.probe).isEmpty { usleep(10_000) }
            expectProbe(try await sandbox.probe("exit", "0", manifest: manifest))
            #expect(Self.runGroups(prefix: prefix).isEmpty, "left: \(Self.runGroups(prefix: prefix))")
        }
    }

    /// Folders named `prefix…` in every cgroup hierarchy this process is in.
    static func runGroups(prefix: String) -> [String] {
        let mine = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? ""
        var found: [String] = []
        for line in mine.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let controller = parts[1].isEmpty ? "unified" : String(parts[1].split(separator: ",").first ?? "")
            let base = "/sys/fs/cgroup/" + (controller.hasPrefix("name=") ? String(controller.dropFirst(5)) : controller) + parts[2]
            for name in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] where name.hasPrefix(prefix) {
                found.append(base + "/" + name)
            }
        }
        return found
    }

    // MARK: - Rootless: explicit degradation

    @Test("rootless without a writable cgroup: best-effort says so; required refuses to start")
    func rootlessDegradation() async throws {
        try await withSandbox(.unprivileged) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.limits = ["memory: 64MiB"]
            let path = try sandbox.write(manifest)
            let report = sandbox.scratch + "/report.json"
            let result = try await sandbox.run(path, [sandbox.probe, "exit", "0"], report: report)
            #expect(result.status == 0, "\(result)")
            #expect(result.stderr.hasPrefix("corral: warning: limits.memory not enforced (limits.enforce: best-effort): "),
                    "\(result)")
            let fields = try LimitsReport.read(report)
            let memory = try #require(fields.limits.first { $0.limit == "memory" })
            #expect(memory.mechanism == nil && memory.notEnforced?.contains("EACCES") == true, "\(memory)")

            manifest.limits.append("enforce: required")
            let required = try sandbox.write(manifest, named: "required.yaml")
            expectCorralFailure(try await sandbox.run(required, [sandbox.probe, "exit", "0"]), status: 125,
                                mentioning: ["enforce limits", "limits.memory cannot be enforced on this host"])
        }
    }

    // MARK: - Rules on watched syscalls

    @Test("rate(connect) > 5/1s kills the run at the sixth connect", arguments: RunAs.allCases)
    func connectRate(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.monitor = ["{ id: scan, when: \"rate(connect) > 5/1s\", then: kill }"]
            let path = try sandbox.write(manifest)
            let report = sandbox.scratch + "/report.json"
            let result = try await sandbox.run(path, [sandbox.probe, "connect-many", "50", "127.0.0.1", "1"], report: report)
            #expect(result.status == 128 + SIGKILL, "\(result)")
            let fields = try LimitsReport.read(report)
            #expect(fields.killReason == "monitor" && fields.killRule == "scan")
            #expect(fields.rulesFired.first?.detail == "6 connect calls within 1s")
        }
    }

    @Test("an exec outside filesystem.exec is recorded, refused by Landlock, and ends the run", arguments: RunAs.allCases)
    func execOutsideTheAllowList(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.monitor = ["{ id: foreign-exec, when: exec-outside-allowlist, then: kill }"]
            let path = try sandbox.write(manifest)
            let report = sandbox.scratch + "/report.json", events = sandbox.scratch + "/events.jsonl"
            let result = try await sandbox.corral(["run", "--profile", path, "--report", report, "--events", events,
                                                   "--", sandbox.probe, "exec", "/usr/bin/true"])
            #expect(result.status == 128 + SIGKILL, "\(result)")
            let fields = try LimitsReport.read(report)
            #expect(fields.killReason == "monitor" && fields.killRule == "foreign-exec")
            #expect(fields.rulesFired.first?.detail == "exec of /usr/bin/true, outside filesystem.exec")
            let lines = try EventLines.read(events)
            // The probe's own exec (allowed) and the foreign one, then the rule.
            #expect(lines.filter { $0.type == "syscall" }.count == 2, "\(lines)")
            #expect(lines.map(\.type).contains("rule"))
        }
    }

    @Test("write-outside-declared sees a write attempt the mount layer refuses; writes inside pass", arguments: RunAs.allCases)
    func writeOutsideDeclared(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let out = try sandbox.makeFolder("out", ownedByRunner: true)
            var manifest = Manifest(sandbox: sandbox)
            manifest.write = [out]
            manifest.monitor = ["{ id: stray-write, when: write-outside-declared, then: alert }"]
            let path = try sandbox.write(manifest)
            let inside = sandbox.scratch + "/inside.json", outside = sandbox.scratch + "/outside.json"

            let allowed = try await sandbox.run(path, [sandbox.probe, "write", out + "/result.txt", "x"], report: inside)
            expectProbe(allowed, printed: "write \(out)/result.txt ok")
            #expect(try LimitsReport.read(inside).rulesFired.isEmpty)

            let refused = try await sandbox.run(path, [sandbox.probe, "write", sandbox.root + "/planted.txt", "x"],
                                                report: outside)
            // The mount layer is the barrier; the rule observes.
            expectProbe(refused, printed: "write \(sandbox.root)/planted.txt errno=EROFS")
            let fields = try LimitsReport.read(outside)
            #expect(fields.rulesFired.map(\.detail) == ["openat of \(sandbox.root)/planted.txt, outside filesystem.write"])
            #expect(fields.verdict == "clean", "alert does not end the run")
        }
    }

    /// A write named relative to a changed folder or to a directory descriptor is judged
    /// where the kernel would put it (the caller's cwd and fd, read from /proc).
    @Test("write-outside-declared resolves chdir- and dirfd-relative names", arguments: RunAs.allCases, ["cwd", "dirfd"])
    func writeOutsideDeclaredRelative(_ runAs: RunAs, mode: String) async throws {
        try await withSandbox(runAs) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.monitor = ["{ id: stray-write, when: write-outside-declared, then: alert }"]
            let path = try sandbox.write(manifest)
            let report = sandbox.scratch + "/report.json"
            let result = try await sandbox.run(path, [sandbox.probe, "write-relative", mode, sandbox.root, "planted.txt"],
                                               report: report)
            expectProbe(result, printed: "\(mode) errno=EROFS")
            let fired = try LimitsReport.read(report).rulesFired.map(\.detail)
            // glibc's open() is the openat syscall: both attempts are seen as openat.
            #expect(fired == ["openat of \(sandbox.root)/planted.txt, outside filesystem.write"], "\(fired)")
        }
    }

    /// On a terminal, a run longer than a second shows a live status line on stderr, cleared
    /// at the end; `--quiet` has none. `script` gives corral a pseudo-terminal.
    @Test("a live status line on a terminal, none with --quiet")
    func statusLine() async throws {
        try await withSandbox(.root) { sandbox in
            let path = try sandbox.write(Manifest(sandbox: sandbox))
            func underTerminal(_ extra: [String]) async throws -> String {
                let line = ([Products.corral, "run"] + extra + ["--profile", path, "--", sandbox.probe, "sleep", "1.6"])
                    .joined(separator: " ")
                return try await sandbox.command(["/usr/bin/script", "-qec", line, "/dev/null"]).stdout
            }
            let shown = try await underTerminal([])
            #expect(shown.contains("\r\u{1B}[2Kcorral: 1s"), "\(shown.debugDescription)")
            #expect(shown.hasSuffix("\r\u{1B}[2K"), "the line is cleared at the end: \(shown.debugDescription)")
            let quiet = try await underTerminal(["--quiet"])
            #expect(!quiet.contains("corral: "), "\(quiet.debugDescription)")
        }
    }
}

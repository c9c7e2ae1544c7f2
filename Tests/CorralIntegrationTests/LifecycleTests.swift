import Foundation
import Testing

/// How a run ends: exit codes and signals come back, `limits.wall` kills the whole tree,
/// and `--report` records it.
@Suite(.tags(.integration)) struct LifecycleTests {
    @Test("exit code 42 comes back as 42", arguments: RunAs.allCases)
    func exitCode(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let result = try await sandbox.probe("exit", "42")
            #expect(result.status == 42, "\(result)")
            #expect(result.stdout.isEmpty && result.stderr.isEmpty, "\(result)")
        }
    }

    @Test("SIGKILL comes back as 137", arguments: RunAs.allCases)
    func killedBySignal(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let result = try await sandbox.probe("kill-self", "KILL")
            #expect(result.status == 128 + SIGKILL, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
        }
    }

    /// SIGTERM to corral reaches the command (through the sandbox's init); a second one
    /// kills the whole tree. The command is `sh` ignoring or not ignoring TERM.
    @Test("SIGTERM to corral is forwarded; a second one kills", arguments: [false, true])
    func signalForwarding(ignoresTerm: Bool) async throws {
        try await withSandbox(.root) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.exec.append("/usr/bin/*")  // /usr is among the base manifest's read paths
            let path = try sandbox.write(manifest)
            let script = (ignoresTerm ? "trap '' TERM; " : "") + "echo ready; exec /usr/bin/sleep 30"
            let corral = Process()
            corral.environment = sandbox.processEnvironment
            corral.executableURL = URL(fileURLWithPath: Products.corral)
            // A long grace period: this test is about the second signal, not the timer (the
            // parallel test runner can delay this task by seconds).
            corral.arguments = ["run", "--profile", path, "--grace", "60s", "--events", sandbox.scratch + "/events",
                                "--", "/usr/bin/sh", "-c", script]
            let output = Pipe(), errors = Pipe()
            corral.standardOutput = output
            corral.standardError = errors
            try corral.run()
            let ready = output.fileHandleForReading.availableData   // "ready\n" once the command runs
            #expect(String(decoding: ready, as: UTF8.self) == "ready\n",
                    "\(String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self))")
            let start = ContinuousClock.now
            kill(corral.processIdentifier, SIGTERM)
            if ignoresTerm {
                usleep(200_000)  // blocking: a Task.sleep may resume seconds late under the parallel runner
                if !corral.isRunning {
                    Issue.record("sh ignores TERM, so the first one must not end the run; corral ended with \(corral.terminationStatus): \(String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self)) \((try? String(contentsOfFile: sandbox.scratch + "/events", encoding: .utf8)) ?? "")")
                }
                kill(corral.processIdentifier, SIGTERM)
            }
            corral.waitUntilExit()
            #expect(corral.terminationReason == .exit)
            #expect(corral.terminationStatus == (ignoresTerm ? 128 + SIGKILL : 128 + SIGTERM))
            #expect(ContinuousClock.now - start < .seconds(10))
        }
    }

    /// corral killed with SIGKILL (no chance to clean up): PR_SET_PDEATHSIG kills the
    /// sandbox's init, and with it every process of its pid namespace, including sleepers
    /// in sessions of their own.
    @Test("SIGKILL of corral leaves no process of the run", arguments: RunAs.allCases)
    func supervisorDeathKillsTheTree(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let path = try sandbox.write(Manifest(sandbox: sandbox))
            let corral = Process()
            corral.environment = sandbox.processEnvironment
            corral.executableURL = URL(fileURLWithPath: runAs.commandPrefix.first ?? Products.corral)
            corral.arguments = Array(runAs.commandPrefix.dropFirst())
                + (runAs.commandPrefix.isEmpty ? [] : [Products.corral])
                + ["run", "--profile", path, "--", sandbox.probe, "spawn-sleepers", "3", "30"]
            let output = Pipe()
            corral.standardOutput = output
            try corral.run()
            let line = output.fileHandleForReading.availableData  // "spawned …" once they run
            #expect(String(decoding: line, as: UTF8.self) == "spawned 3 4 5\n")
            #expect(CommandRunner.processes(running: sandbox.probe).count == 4)
            kill(corral.processIdentifier, SIGKILL)
            corral.waitUntilExit()
            var left = CommandRunner.processes(running: sandbox.probe)
            for _ in 0..<100 where !left.isEmpty {  // the kernel tears the namespace down
                try await Task.sleep(for: .milliseconds(20))
                left = CommandRunner.processes(running: sandbox.probe)
            }
            #expect(left == [], "processes of the run survived corral")
        }
    }

    /// Sleepers in their own sessions survive anything but the pid namespace's end.
    @Test("limits.wall kills a sleeping tree", arguments: RunAs.allCases)
    func wallClockLimit(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.wall = "1s"
            let path = try sandbox.write(manifest)
            let report = sandbox.scratch + "/report.json"

            let result = try await sandbox.run(path, [sandbox.probe, "spawn-sleepers", "3", "30"], report: report)
            #expect(result.status == 128 + SIGKILL, "\(result)")
            #expect(result.stdout == "spawned 3 4 5\n", "\(result)")
            #expect(result.elapsed >= .milliseconds(900) && result.elapsed < .seconds(10), "\(result)")
            #expect(CommandRunner.processes(running: sandbox.probe) == [], "sleepers survived corral")
            #expect(try RunReportFields.read(report).killReason == "timeout")

            // Control: the /proc scan does find a probe that is still running.
            let sleeper = Process()
            sleeper.executableURL = URL(fileURLWithPath: sandbox.probe)
            sleeper.arguments = ["sleep", "30"]
            try sleeper.run()
            defer {
                // SIGKILL: the test process may block SIGTERM, and its children inherit that.
                kill(sleeper.processIdentifier, SIGKILL)
                sleeper.waitUntilExit()
            }
            var found: [Int32] = []
            for _ in 0..<100 where found.isEmpty {   // until the child has exec'd the probe
                try await Task.sleep(for: .milliseconds(20))
                found = CommandRunner.processes(running: sandbox.probe)
            }
            #expect(found == [sleeper.processIdentifier])
        }
    }

    @Test("--report records exit status, digests, goal and Landlock ABI", arguments: RunAs.allCases)
    func runReport(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let manifest = try sandbox.write(Manifest(sandbox: sandbox))
            let command = [sandbox.probe, "exit", "42"]
            let reportPath = sandbox.scratch + "/report.json"

            let result = try await sandbox.run(manifest, command, report: reportPath)
            #expect(result.status == 42, "\(result)")
            let report = try RunReportFields.read(reportPath)
            #expect(report.exitStatus == 42)
            #expect(report.goalID == Manifest.goalID)
            #expect(report.landlockABI == HostSupport.landlockABI)
            #expect(report.killReason == nil)

            let sha256 = try await sandbox.command(["/usr/bin/sha256sum", manifest])
            #expect(report.manifestSHA256.isLowercaseSHA256)
            #expect(sha256.stdout.hasPrefix(report.manifestSHA256 + " "), "\(sha256)")

            // The same plan, explained by the same user, has the same digest.
            let explain = try await sandbox.corral(["explain", "--profile", manifest, "--"] + command)
            #expect(explain.status == 0, "\(explain)")
            #expect(report.planDigest.isLowercaseSHA256)
            #expect(explain.stdout.split(separator: "\n").contains("# plan digest \(report.planDigest)"),
                    "\(explain)")
        }
    }
}

/// The fields of `corral run --report` that the tests check.
struct RunReportFields: Decodable {
    var exitStatus: Int32
    var manifestSHA256: String
    var planDigest: String
    var goalID: String
    var landlockABI: Int
    var killReason: String?

    static func read(_ path: String) throws -> Self {
        try JSONDecoder().decode(Self.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }
}

extension String {
    var isLowercaseSHA256: Bool {
        utf8.count == 64 && allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }
}

import CCorralLaunch
import Corral
import Foundation
import Synchronization
import Testing

/// `syscalls.watch` end to end, through `corral run --report`: each watched call reaches the
/// supervisor, is recorded with its decoded arguments, and goes on with the kernel's own
/// answer; the kernel layers stay the barrier.
@Suite(.tags(.integration)) struct WatchTests {
    /// The report fields these tests read.
    struct WatchReport: Decodable {
        var watched: [WatchedCall]?
        var watchedDropped: Int?
    }

    /// Runs `argv` under the base manifest with `watch`, and returns the result and the report's
    /// watched calls.
    static func run(_ sandbox: Sandbox, watch: [String],
                    _ argv: [String]) async throws -> (CommandResult, WatchReport) {
        var manifest = Manifest(sandbox: sandbox)
        manifest.watch = watch
        let reportPath = sandbox.scratch + "/report-\(UUID().uuidString).json"
        let result = try await sandbox.run(try sandbox.write(manifest), argv, report: reportPath)
        guard FileManager.default.fileExists(atPath: reportPath) else { return (result, WatchReport()) }
        let report = try JSONDecoder().decode(WatchReport.self, from: Data(contentsOf: URL(fileURLWithPath: reportPath)))
        return (result, report)
    }

    /// The command's own execve runs on memory a rootless supervisor may not read through the
    /// kernel (see `LaunchMemory`); the second execve comes from the program itself.
    @Test("a watched execve records the exact path and argv", arguments: RunAs.allCases)
    func execve(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let argv = [sandbox.probe, "exec", sandbox.probe, "exit", "3"]
            let (result, report) = try await Self.run(sandbox, watch: ["execve"], argv)
            #expect(result.status == 3, "\(result)")
            let calls = report.watched ?? []
            #expect(calls.map(\.syscall) == ["execve", "execve"])
            guard calls.count == 2 else { return }
            #expect(calls[0].path == sandbox.probe)
            #expect(calls[0].argv == argv)
            #expect(calls[1].path == sandbox.probe)
            #expect(calls[1].argv == [sandbox.probe, "exit", "3"])
            for call in calls {
                #expect(call.decision == .continue && call.unreadable == nil && call.truncated == nil, "\(call)")
            }
            #expect(calls[0].pid == calls[1].pid)
            #expect(calls[0].time <= calls[1].time)
            #expect(report.watchedDropped == 0)
        }
    }

    @Test("a watched connect records family, address and port, and still fails as before", arguments: RunAs.allCases)
    func connect(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let (result, report) = try await Self.run(sandbox, watch: ["connect"],
                                                      [sandbox.probe, "connect", "127.0.0.1", "47113"])
            expectProbe(result, printed: "connect 127.0.0.1:47113 errno=ECONNREFUSED")
            let calls = report.watched ?? []
            #expect(calls.count == 1)
            let connect = try #require(calls.first)
            #expect(connect.syscall == "connect")
            #expect(connect.address == SocketAddress(family: "inet", address: "127.0.0.1", port: 47113))
            #expect(connect.fd == 3)
            #expect(connect.decision == .continue && connect.unreadable == nil)
        }
    }

    @Test("a watched openat records dirfd, path and flags", arguments: RunAs.allCases)
    func openat(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let target = try sandbox.writeFile("watched.txt", "x")
            let (result, report) = try await Self.run(sandbox, watch: ["openat"], [sandbox.probe, "open", target])
            expectProbe(result, printed: "open \(target) ok")
            let calls = report.watched ?? []
            #expect(!calls.isEmpty && calls.allSatisfy { $0.syscall == "openat" })
            let opens = calls.filter { $0.path == target }
            #expect(opens.count == 1)
            let open = try #require(opens.first)
            #expect(open.dirfd == -100)
            #expect(open.flags == "O_RDONLY|O_CLOEXEC")
            #expect(open.mode == nil && open.unreadable == nil)
        }
    }

    /// ERRNO outranks USER_NOTIF: the base profile's answer comes before the supervisor could
    /// see the call, so nothing is recorded for it.
    @Test("a watched syscall the base profile denies still fails with EPERM", arguments: RunAs.allCases)
    func deniedByTheBase(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let (result, report) = try await Self.run(sandbox, watch: ["ptrace", "execve"],
                                                      [sandbox.probe, "syscall", "ptrace"])
            expectProbe(result, printed: "syscall ptrace errno=EPERM")
            #expect((report.watched ?? []).map(\.syscall) == ["execve"])
        }
    }

    /// Landlock, the mount layout and the base filter answer exactly as without watching.
    @Test("watching changes no answer of the kernel layers", arguments: RunAs.allCases)
    func answersAreUnchanged(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let watch = ["openat", "open", "creat", "mkdir", "mkdirat", "execve", "connect", "socket", "unlink"]
            let probes: [[String]] = [
                ["open", "/etc/hostname"],
                ["open", "/nonexistent"],
                ["write", sandbox.root + "/new.txt"],
                ["mkdir", sandbox.root + "/new"],
                ["exec", "/bin/sh"],
                ["socket", "packet"],
                ["connect", "127.0.0.1", "47113"],
            ]
            for probe in probes {
                let plain = try await sandbox.run(try sandbox.write(Manifest(sandbox: sandbox)), [sandbox.probe] + probe)
                let (watched, report) = try await Self.run(sandbox, watch: watch, [sandbox.probe] + probe)
                #expect(plain.status == 0, "\(plain)")
                #expect(watched.status == plain.status && watched.stdout == plain.stdout, "\(probe): \(watched) vs \(plain)")
                #expect(report.watched?.first?.syscall == "execve")
            }
        }
    }

    /// A watched call's event is queued once the call is answered and written later by the
    /// supervisor: none may be lost or reordered, the last included, though the command exits
    /// right after it. 200 opens of distinct files by one shell, in the event stream and the
    /// audit log, in the order made.
    @Test("every watched call reaches the events and the audit log, in order, the last one too",
          arguments: RunAs.allCases)
    func everyCallIsRecordedInOrder(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let paths = try (0..<200).map { try sandbox.writeFile("ordered-\($0).txt", "x") }
            var manifest = Manifest(sandbox: sandbox)
            manifest.exec = ["/usr/bin/*"]
            manifest.watch = ["openat"]
            let manifestPath = try sandbox.write(manifest)
            let eventsPath = sandbox.scratch + "/events.jsonl"
            let script = paths.map { ": < \($0)" }.joined(separator: "; ")  // the shell exits right after the last
            let result = try await sandbox.corral(["run", "--profile", manifestPath, "--events", eventsPath, "--",
                                                   "/usr/bin/sh", "-c", script])
            #expect(result.status == 0, "\(result)")

            let lines = try String(contentsOfFile: eventsPath, encoding: .utf8).split(separator: "\n")
            let events = try lines.map { try JSONDecoder().decode(RunEvent.self, from: Data($0.utf8)) }
            #expect(events.map(\.seq) == Array(1...max(1, events.count)))
            #expect(events.last?.type == .exit)
            let wanted = Set(paths)
            let streamed = events.filter { $0.type == .syscall }.compactMap { $0.call?.path }.filter(wanted.contains)
            #expect(streamed == paths)

            let entries = try AuditTests.entries(sandbox)
            #expect(entries.map { $0["seq"] as? Int } == Array(1...max(1, entries.count)).map { $0 })
            #expect(entries.last?["type"] as? String == "run-end")
            let audited = entries.filter { $0["type"] as? String == "syscall" }.compactMap { entry -> String? in
                (AuditTests.payload(entry)["call"] as? [String: Any])?["path"] as? String
            }.filter(wanted.contains)
            #expect(audited == paths)
            // The audit holds the same events as the stream, by number.
            let auditedSeqs = entries.compactMap { AuditTests.payload($0)["seq"] as? Int }
            #expect(auditedSeqs == events.filter { $0.type != .start && $0.type != .exit }.map(\.seq))
            let verify = try await sandbox.corral(["audit", "verify"])
            #expect(verify.status == 0, "\(verify)")
        }
    }

    /// The listener is already served when the command's execve fails: the run ends as
    /// without watching (127, not found), and does not hang.
    @Test("a failing exec under watch ends the run with 127", arguments: RunAs.allCases)
    func failingExec(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let (result, _) = try await Self.run(sandbox, watch: ["execve", "openat"], ["/nonexistent/program"])
            expectCorralFailure(result, status: 127, mentioning: ["/nonexistent/program", "ENOENT"])
            #expect(result.elapsed < .seconds(10), "\(result)")
        }
    }
}

/// The decision hook and the event stream of the Swift library (in-process runs: root only).
@Suite(.serialized, .tags(.integration), .enabled(if: HostSupport.isRoot, "the in-process runs use the root variant"))
struct WatchDecisionTests {
    /// Runs `argv` in-process with `configure` applied to the options; returns the result and
    /// what the command wrote to stdout.
    static func run(_ sandbox: Sandbox, watch: [String], _ argv: [String],
                    _ configure: (inout RunOptions) -> Void) async throws -> (RunResult, String) {
        var manifest = Manifest(sandbox: sandbox)
        manifest.watch = watch
        let loaded = try Corral.loadProfile(at: try sandbox.write(manifest))
        let outPath = sandbox.scratch + "/stdout-\(UUID().uuidString)"
        #expect(FileManager.default.createFile(atPath: outPath, contents: nil))
        let out = try #require(FileHandle(forWritingAtPath: outPath))
        defer { try? out.close() }
        var options = RunOptions(command: argv, environment: [:])
        options.stdio = [-1, out.fileDescriptor, -1]
        configure(&options)
        let result = try await Corral.run(loaded, options: options)
        return (result, try String(contentsOfFile: outPath, encoding: .utf8))
    }

    @Test func aDecisionHookDeniesOneOpenWithItsErrno() async throws {
        try await withSandbox(.root) { sandbox in
            let target = try sandbox.writeFile("refused.txt", "x")
            let other = try sandbox.writeFile("fine.txt", "x")
            let observed = Mutex<[WatchedCall]>([])
            let (result, output) = try await Self.run(sandbox, watch: ["openat"],
                                                      [sandbox.probe, "exec", sandbox.probe, "open", target]) { options in
                options.watchDecision = { call in call.path == target ? .deny(errno: ENOTTY) : .continue }
                options.onWatchedCall = { call in observed.withLock { $0.append(call) } }
            }
            #expect(result.termination == .exited(0))
            #expect(output == "open \(target) errno=ENOTTY\n")
            let watched = result.report.watched ?? []
            #expect(watched.filter { $0.decision != .continue }.map(\.path) == [target])
            #expect(watched.first { $0.path == target }?.decision == .deny(errno: ENOTTY))
            #expect(observed.withLock { $0 } == watched)

            // The same hook leaves another file alone.
            let (again, otherOutput) = try await Self.run(sandbox, watch: ["openat"], [sandbox.probe, "open", other]) {
                $0.watchDecision = { call in call.path == target ? .deny(errno: ENOTTY) : .continue }
            }
            #expect(again.termination == .exited(0))
            #expect(otherOutput == "open \(other) ok\n")
        }
    }

    /// The same hook in a supervisor that runs as nobody (65534): a child process of the test
    /// runner drops to that user and runs the library there (an exit test), so the sandbox is
    /// rootless, as `corral` run by an ordinary user makes it.
    @Test(.enabled(if: RunAs.unprivileged.unavailableReason == nil, "needs unprivileged user namespaces"))
    func aDecisionHookDeniesOneOpenRootless() async throws {
        _ = try await withSandbox(.unprivileged) { sandbox in
            let target = try sandbox.writeFile("refused.txt", "x")
            var manifest = Manifest(sandbox: sandbox)
            manifest.watch = ["openat"]
            let manifestPath = try sandbox.write(manifest)
            let outPath = sandbox.scratch + "/stdout"
            await #expect(processExitsWith: .success) {
                [manifestPath = manifestPath as String, target = target as String, probe = sandbox.probe as String,
                 outPath = outPath as String, state = sandbox.stateDirectory as String] in
                if getuid() == 0 {
                    // As root, setgid and setuid set the real, effective and saved ids (all threads).
                    #expect(setgroups(0, nil) == 0 && setgid(65534) == 0 && setuid(65534) == 0)
                    // The uid change made this process non-dumpable, and its sandbox's init, a
                    // copy, could then not write its own id maps: prctl(PR_SET_DUMPABLE, 1).
                    #if arch(x86_64)
                    let prctl = 157
                    #else
                    let prctl = 167
                    #endif
                    #expect(corral_raw_syscall(prctl, 4, 1, 0, 0, 0, 0) == 0)
                }
                let out = open(outPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                #expect(out >= 0)
                var options = RunOptions(command: [probe, "open", target], environment: [:])
                options.stdio = [-1, out, -1]
                options.stateDirectory = state  // nobody cannot write root's home
                options.watchDecision = { call in call.path == target ? .deny(errno: ENOTTY) : .continue }
                let result = try Corral.runBlocking(try Corral.loadProfile(at: manifestPath), options: options)
                close(out)
                #expect(result.termination == .exited(0))
                #expect(try String(contentsOfFile: outPath, encoding: .utf8) == "open \(target) errno=ENOTTY\n")
                #expect(getuid() != 0)
                #expect(result.report.watched?.filter { $0.decision != .continue }.map(\.path) == [target])
            }
        }
    }

    /// The command's own execve is watched too: denying it fails the launch with that errno,
    /// as a thrown error, and leaves no watcher behind.
    @Test func denyingTheCommandsOwnExecveFailsTheLaunch() async throws {
        _ = try await withSandbox(.root) { sandbox in
            await #expect {
                _ = try await Self.run(sandbox, watch: ["execve"], [sandbox.probe, "exit", "0"]) {
                    $0.watchDecision = { _ in .deny(errno: EACCES) }
                }
            } throws: { error in
                let error = try #require(error as? CorralError)
                return error.stage == .exec && error.errno == .permissionDenied
            }
        }
    }

    /// 30 watched runs in a row: every watcher thread is joined and every listener closed.
    @Test func watchedRunsLeaveNoThreadOrDescriptorBehind() async throws {
        try await withSandbox(.root) { sandbox in
            func count(_ folder: String) -> Int { (try? FileManager.default.contentsOfDirectory(atPath: folder).count) ?? -1 }
            _ = try await Self.run(sandbox, watch: ["openat", "execve"], [sandbox.probe, "exit", "0"]) { _ in }
            let descriptors = count("/proc/self/fd"), threads = count("/proc/self/task")
            for _ in 0..<30 {
                let (result, _) = try await Self.run(sandbox, watch: ["openat", "execve"], [sandbox.probe, "exit", "0"]) { _ in }
                #expect(result.termination == .exited(0))
                #expect(result.report.watched?.first?.syscall == "execve")
            }
            // Other suites run in parallel in this process, each run in flight holding a few
            // descriptors and threads: a drift below 20 is theirs, a leak per run (30) is ours.
            #expect(count("/proc/self/fd") - descriptors < 20, "descriptors: \(descriptors) → \(count("/proc/self/fd"))")
            #expect(count("/proc/self/task") - threads < 20, "threads: \(threads) → \(count("/proc/self/task"))")
        }
    }

    @Test func theReportKeepsTheFirstCallsAndCountsTheRest() async throws {
        try await withSandbox(.root) { sandbox in
            let count = Mutex(0)
            let (result, output) = try await Self.run(sandbox, watch: ["openat"],
                                                      [sandbox.probe, "open-loop", "/etc/hostname", "100"]) { options in
                options.watchLogLimit = 5
                options.onWatchedCall = { _ in count.withLock { $0 += 1 } }
            }
            #expect(result.termination == .exited(0))
            #expect(output.hasPrefix("open-loop /etc/hostname ok ns_per_call="))
            let total = count.withLock { $0 }
            #expect(total >= 100)
            #expect(result.report.watched?.count == 5)
            #expect(result.report.watchedDropped == total - 5)
        }
    }
}

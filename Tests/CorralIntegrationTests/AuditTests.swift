import Foundation
import Testing

/// Every run lands in the audit log of its state directory: what was asked (manifest and
/// plan digests), what happened (watched calls, rules, kills, the transaction) and the
/// signed report; `corral audit verify` checks the chain.
@Suite(.tags(.integration)) struct AuditTests {
    /// The log's entries: `type`, `run` and `payload` of each line.
    static func entries(_ sandbox: Sandbox) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: sandbox.stateDirectory + "/audit.jsonl", encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    static func payload(_ entry: [String: Any]) -> [String: Any] { entry["payload"] as? [String: Any] ?? [:] }

    /// Entries are batched (a run that ends within 20 ms makes one append), but a longer run
    /// has its run-start on record while it still goes. The command runs until the test
    /// stops it (SIGTERM to corral), so a loaded machine cannot end it first.
    @Test("run-start is on record while a run goes")
    func runStartIsWrittenEarly() async throws {
        try await withSandbox(.root) { sandbox in
            let path = try sandbox.write(Manifest(sandbox: sandbox))
            let corral = Process()
            corral.environment = sandbox.processEnvironment
            corral.executableURL = URL(fileURLWithPath: Products.corral)
            corral.arguments = ["run", "--profile", path, "--grace", "100ms", "--", sandbox.probe, "sleep", "60"]
            corral.standardOutput = FileHandle.nullDevice
            try corral.run()
            defer { if corral.isRunning { kill(corral.processIdentifier, SIGKILL) } }
            var seen: [String?] = []
            let deadline = ContinuousClock.now + .seconds(20)
            while !seen.contains("run-start"), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
                seen = ((try? Self.entries(sandbox)) ?? []).map { $0["type"] as? String }
            }
            #expect(corral.isRunning, "the run must still go")
            #expect(seen == ["run-start"], "while the command sleeps: \(seen)")
            let start = try #require(try Self.entries(sandbox).first)
            #expect((Self.payload(start)["startedAt"] as? String)?.hasSuffix("Z") == true, "\(start)")
            kill(corral.processIdentifier, SIGTERM)
            corral.waitUntilExit()
            let types = try Self.entries(sandbox).map { $0["type"] as? String }
            #expect(types.first == "run-start" && types.last == "run-end" && types.filter { $0 == "run-start" }.count == 1,
                    "\(types)")
        }
    }

    @Test("a run is audited: start with digests, watched calls, rule and kill, signed end; verify passes",
          arguments: RunAs.allCases)
    func runIsAudited(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.exec.append("/usr/bin/*")
            manifest.monitor = ["{ id: no-probe, when: exec-outside-allowlist, then: kill }"]
            manifest.exec = ["/usr/bin/*"]
            let path = try sandbox.write(manifest)
            let run = try await sandbox.run(path, ["/usr/bin/sh", "-c", "\(sandbox.probe) exit 0"])
            #expect(run.status == 137, "\(run)")

            let entries = try Self.entries(sandbox)
            // The shell's exec (continued), the rule firing at the probe's exec and the kill, and
            // the probe's exec answered (denied) while the run is being killed.
            #expect(entries.map { $0["type"] as? String } == ["run-start", "syscall", "rule", "kill", "syscall", "run-end"],
                    "\(entries)")
            #expect(Set(entries.compactMap { $0["run"] as? String }).count == 1)
            #expect(entries.map { $0["seq"] as? Int } == [1, 2, 3, 4, 5, 6])
            let start = Self.payload(entries[0])
            #expect(start["goal"] as? String == Manifest.goalID)
            #expect(start["manifest"] as? String == path)
            let manifestBytes = try Data(contentsOf: URL(fileURLWithPath: path))
            let digest = try LabTool.run(["/usr/bin/sha256sum", path]).prefix(64)
            #expect(start["manifestSHA256"] as? String == String(digest), "\(manifestBytes.count) bytes")
            #expect((start["planDigest"] as? String)?.count == 64)
            #expect(start["landlockABI"] as? Int == HostSupport.landlockABI)
            #expect((Self.payload(entries[1])["call"] as? [String: Any])?["path"] as? String == "/usr/bin/sh")
            let denied = try #require(Self.payload(entries[4])["call"] as? [String: Any])
            #expect(denied["path"] as? String == sandbox.probe, "\(denied)")
            #expect((denied["decision"] as? [String: Any])?["kind"] as? String == "deny", "\(denied)")
            #expect(Self.payload(entries[2])["rule"] as? String == "no-probe")
            #expect(Self.payload(entries[3])["reason"] as? String == "monitor")
            let end = entries[5]
            #expect(Self.payload(end)["verdict"] as? String == "rogue")
            #expect(Self.payload(end)["killRule"] as? String == "no-probe")
            #expect((end["sig"] as? String)?.count == 128, "the run end is signed")

            let verify = try await sandbox.corral(["audit", "verify"])
            #expect(verify.status == 0, "\(verify)")
            #expect(verify.stdout.hasPrefix("ok: \(sandbox.stateDirectory)/audit.jsonl: 6 events, 1 run; 1 signature"),
                    "\(verify)")
        }
    }

    /// A sandbox that reads the folder holding the state directory sees neither the signing
    /// key nor the log (it could forge the one and cut the other).
    @Test("the state directory and the audit log are masked in every sandbox")
    func stateIsHidden() async throws {
        try await withSandbox(.root) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.read.append(sandbox.scratch)
            let path = try sandbox.write(manifest)
            _ = try await sandbox.run(path, [sandbox.probe, "exit", "0"])  // makes the key and the log
            let key = sandbox.stateDirectory + "/keys/audit-ed25519.key"
            #expect(FileManager.default.fileExists(atPath: key))
            let read = try await sandbox.run(path, [sandbox.probe, "read", key])
            #expect(read.stdout == "read \(key) errno=EACCES\n", "\(read)")
            let log = try await sandbox.run(path, [sandbox.probe, "ls", sandbox.stateDirectory])
            #expect(log.stdout.hasSuffix(" errno=EACCES\n"), "\(log)")
        }
    }

    @Test("a secret's value never reaches the log")
    func secretsAreRedacted() async throws {
        try await withSandbox(.root) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.exec.append("/usr/bin/*")
            let secret = "s3cr3t-token-value"
            let path = try sandbox.writeFile("manifest.yaml", manifest.yaml.replacingOccurrences(
                of: "filesystem:", with: "run:\n  env:\n    secrets: [API_TOKEN]\nfilesystem:"))
            // The value also on the command line: it reaches run-start and run-end, redacted.
            let run = try await sandbox.run(path, ["/usr/bin/sh", "-c", "exit 3", secret], environment: ["API_TOKEN": secret])
            #expect(run.status == 3, "\(run)")
            let text = try String(contentsOfFile: sandbox.stateDirectory + "/audit.jsonl", encoding: .utf8)
            #expect(!text.contains(secret))
            #expect(text.contains("[redacted]"))
            let verify = try await sandbox.corral(["audit", "verify"])
            #expect(verify.status == 0, "\(verify)")
        }
    }

    /// Twenty runs at once append to one log without breaking the chain.
    @Test("20 concurrent runs append to one log; verify passes")
    func concurrentRuns() async throws {
        try await withSandbox(.root) { sandbox in
            let path = try sandbox.write(Manifest(sandbox: sandbox))
            let results = try await withThrowingTaskGroup(of: CommandResult.self) { group in
                for index in 0..<20 {
                    group.addTask { try await sandbox.run(path, [sandbox.probe, "exit", "\(index)"], timeout: .seconds(60)) }
                }
                var all: [CommandResult] = []
                for try await result in group { all.append(result) }
                return all
            }
            #expect(results.map(\.status).sorted() == Array(0..<20), "\(results)")
            let entries = try Self.entries(sandbox)
            #expect(entries.filter { $0["type"] as? String == "run-start" }.count == 20)
            #expect(entries.filter { $0["type"] as? String == "run-end" }.count == 20)
            #expect(entries.map { $0["seq"] as? Int } == Array(1...40).map { Optional($0) })
            let verify = try await sandbox.corral(["audit", "verify"])
            #expect(verify.status == 0 && verify.stdout.contains("40 events, 20 runs; 20 signatures"), "\(verify)")
            let show = try await sandbox.corral(["audit", "show"])
            #expect(show.status == 0 && show.stdout.split(separator: "\n").count == 40, "\(show)")
        }
    }

    @Test("commit and discard of pending runs are audited")
    func commitAndDiscardAreAudited() async throws {
        try await withSandbox(.root) { sandbox in
            let out = try TransactionTests.makeTree(sandbox)
            let path = try sandbox.write(TransactionTests.manifest(sandbox, out: out, commit: "ask"))
            for decision in ["commit", "discard"] {
                let run = try await sandbox.run(path, ["/usr/bin/sh", "-c", "echo \(decision) > \"$1\"/\(decision)", "sh", out])
                #expect(run.status == 0, "\(run)")
                let id = try #require(try TransactionTests.pendingRun(sandbox))
                let done = try await sandbox.corral([decision, id])
                #expect(done.status == 0, "\(done)")
                let last = try #require(try Self.entries(sandbox).last)
                #expect(last["type"] as? String == decision)
                #expect(last["run"] as? String == id)
                #expect(Self.payload(last)["changes"] as? Int == 1)
                #expect((last["sig"] as? String) != nil)
            }
            let verify = try await sandbox.corral(["audit", "verify"])
            #expect(verify.status == 0, "\(verify)")
        }
    }
}

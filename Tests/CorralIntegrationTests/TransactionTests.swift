import Foundation
import Testing

/// Staged writes: a run's `filesystem.write` folders are overlays whose changes reach the
/// real folders only when the run is committed; a rogue run's never do.
@Suite(.tags(.integration)) struct TransactionTests {
    /// A write folder with a bit of everything: files, a subfolder, a symlink, an empty folder,
    /// owned by the user corral runs as (copy-up in a user namespace needs mapped owners).
    static func makeTree(_ sandbox: Sandbox) throws -> String {
        let out = try sandbox.makeFolder("out")
        try LabTool.run(["/bin/sh", "-c", """
            cd "$1" && printf 'one\\ntwo\\nthree\\n' > notes.txt && printf 'keep' > keep.txt \
            && mkdir -p sub/deep empty old && printf 'deep' > sub/deep/file && printf 'x' > old/x \
            && ln -s notes.txt link && chmod 640 keep.txt
            """, "sh", out])
        try sandbox.chownTreeToRunner(out)
        return out
    }

    /// The manifest: the tree writable, a shell and coreutils executable.
    static func manifest(_ sandbox: Sandbox, out: String, commit: String) -> Manifest {
        var manifest = Manifest(sandbox: sandbox)
        manifest.write = [out]
        manifest.exec += ["/usr/bin/*"]
        manifest.extraTopLevel = ["approval: { commit: \(commit) }"]
        return manifest
    }

    /// Creates, modifies, deletes, renames, chmods and symlinks.
    static let edits = """
        cd "$1" && printf 'one\\nTWO\\nthree\\n' > notes.txt && printf 'new' > added.txt && rm keep.txt \
        && mv old renamed && chmod 600 sub/deep/file && ln -s added.txt newlink && rm -r empty && mkdir made
        """

    /// The tree after `edits`, as `TreeListing` prints it.
    static func expectedAfterEdits(_ before: [String]) -> [String] {
        var tree = before.filter {
            !$0.hasPrefix("keep.txt ") && !$0.hasPrefix("empty ") && !$0.hasPrefix("old ") && !$0.hasPrefix("old/")
                && !$0.hasPrefix("notes.txt ") && !$0.hasPrefix("sub/deep/file ")
        }
        tree += [
            "added.txt file 644 new", "made dir 755", "newlink link added.txt", "notes.txt file 644 one\nTWO\nthree\n",
            "renamed dir 755", "renamed/x file 644 x", "sub/deep/file file 600 deep",
        ]
        return tree.sorted()
    }

    @Test("a clean run commits exactly its changes, as `corral diff` listed them", arguments: RunAs.allCases)
    func cleanRunCommits(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let out = try Self.makeTree(sandbox)
            let before = try TreeListing.of(out)
            let path = try sandbox.write(Self.manifest(sandbox, out: out, commit: "ask"))
            let run = try await sandbox.run(path, ["/usr/bin/sh", "-c", Self.edits, "sh", out])
            #expect(run.status == 0, "\(run)")
            #expect(try TreeListing.of(out) == before, "an `ask` run changes nothing before its commit")
            let id = try #require(try Self.pendingRun(sandbox), "\(run)")
            #expect(run.stderr.contains("corral: run \(id) is pending (10 changes)"), "\(run)")

            let diff = try await sandbox.corral(["diff", id, "--stat"])
            #expect(diff.status == 0, "\(diff)")
            #expect(diff.stdout == """
                added    \(out)/added.txt
                deleted  \(out)/empty (folder)
                deleted  \(out)/keep.txt
                added    \(out)/made (folder)
                added    \(out)/newlink (-> added.txt)
                modified \(out)/notes.txt
                deleted  \(out)/old (folder)
                added    \(out)/renamed (folder)
                added    \(out)/renamed/x
                mode     \(out)/sub/deep/file (0644 -> 0600)

                """, "\(diff)")
            let unified = try await sandbox.corral(["diff", id])
            #expect(unified.stdout.contains("""
                --- \(out)/notes.txt
                +++ \(out)/notes.txt
                @@ -1,3 +1,3 @@
                 one
                -two
                +TWO
                 three
                """), "\(unified)")

            let commit = try await sandbox.corral(["commit", id])
            #expect(commit.status == 0 && commit.stdout == "committed \(id): 10 changes\n", "\(commit)")
            #expect(try TreeListing.of(out) == Self.expectedAfterEdits(before))
            #expect(try Self.pendingRun(sandbox) == nil)
        }
    }

    @Test("`approval.commit: auto` applies a clean run's writes when it ends")
    func autoCommit() async throws {
        try await withSandbox(.root) { sandbox in
            let out = try Self.makeTree(sandbox)
            let before = try TreeListing.of(out)
            let path = try sandbox.write(Self.manifest(sandbox, out: out, commit: "auto"))
            let report = sandbox.scratch + "/report.json"
            let run = try await sandbox.run(path, ["/usr/bin/sh", "-c", Self.edits, "sh", out], report: report)
            #expect(run.status == 0 && run.stderr.isEmpty, "\(run)")
            #expect(try TreeListing.of(out) == Self.expectedAfterEdits(before))
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any]
            let transaction = try #require(json?["transaction"] as? [String: Any])
            #expect(transaction["outcome"] as? String == "committed")
            #expect(transaction["changes"] as? Int == 10)
            #expect(try Self.pendingRun(sandbox) == nil)
            #expect(FileManager.default.subpaths(atPath: sandbox.stateDirectory + "/runs") == [])
        }
    }

    /// A rogue run's writes are discarded: the tree is byte-for-byte as before (contents,
    /// modes, symlinks), and nothing is left staged.
    @Test("a rogue run leaves the write folder as it was", arguments: [
        ("limit", "limits:\n  wall: 300ms"),
        ("monitor rule", "monitor:\n  - { when: exec-outside-allowlist, then: kill }"),
        ("on_violation rollback", "monitor:\n  - { when: exec-outside-allowlist }\non_violation: rollback"),
    ])
    func rogueRunRollsBack(_ kind: String, _ yaml: String) async throws {
        try await withSandbox(.root) { sandbox in
            let out = try Self.makeTree(sandbox)
            let before = try TreeListing.of(out)
            var manifest = Self.manifest(sandbox, out: out, commit: "auto")
            manifest.extraTopLevel.append(yaml)
            // The edits, then: a sleep past the wall, or an exec outside filesystem.exec (the
            // probe, readable but not listed there: the rule kills at its execve).
            let tail = kind == "limit" ? "sleep 5" : "\(sandbox.probe) exit 0"
            if kind != "limit" { manifest.exec = ["/usr/bin/*"] }
            let path = try sandbox.write(manifest)
            let run = try await sandbox.run(path, ["/usr/bin/sh", "-c", Self.edits + " && " + tail, "sh", out])
            #expect(run.status == 137, "\(run)")
            #expect(try TreeListing.of(out) == before, "\(run)")
            #expect(try Self.pendingRun(sandbox) == nil)
            #expect(FileManager.default.subpaths(atPath: sandbox.stateDirectory + "/runs") == [])
        }
    }

    @Test("`approval.commit: never` is a dry run")
    func dryRun() async throws {
        try await withSandbox(.root) { sandbox in
            let out = try Self.makeTree(sandbox)
            let before = try TreeListing.of(out)
            let path = try sandbox.write(Self.manifest(sandbox, out: out, commit: "never"))
            let run = try await sandbox.run(path, ["/usr/bin/sh", "-c", Self.edits + " && cat notes.txt", "sh", out])
            #expect(run.status == 0 && run.stdout == "one\nTWO\nthree\n", "the command sees its own writes: \(run)")
            #expect(try TreeListing.of(out) == before)
            #expect(try Self.pendingRun(sandbox) == nil)
        }
    }

    /// The real file changed after the run began: commit refuses, names it, changes
    /// nothing, and the run stays pending.
    @Test("a conflicting change makes commit refuse and keeps the run pending")
    func conflictRefuses() async throws {
        try await withSandbox(.root) { sandbox in
            let out = try Self.makeTree(sandbox)
            let path = try sandbox.write(Self.manifest(sandbox, out: out, commit: "ask"))
            let run = try await sandbox.run(path, ["/usr/bin/sh", "-c", Self.edits, "sh", out])
            #expect(run.status == 0, "\(run)")
            let id = try #require(try Self.pendingRun(sandbox))
            try Data("changed meanwhile".utf8).write(to: URL(fileURLWithPath: out + "/notes.txt"))
            let changedTree = try TreeListing.of(out)
            let commit = try await sandbox.corral(["commit", id])
            #expect(commit.status == 125, "\(commit)")
            #expect(commit.stderr.contains("\(out)/notes.txt"), "\(commit)")
            #expect(try TreeListing.of(out) == changedTree)
            #expect(try Self.pendingRun(sandbox) == id)
            let discard = try await sandbox.corral(["discard", id])
            #expect(discard.status == 0 && discard.stdout == "discarded \(id): 10 changes\n", "\(discard)")
            #expect(try Self.pendingRun(sandbox) == nil)
        }
    }

    /// The same with `auto`: the real file changes while the run goes (the command waits for
    /// the test's flag, in a read path); the run ends clean but stays pending, saying why.
    @Test("auto: a real file changed during the run keeps the run pending, naming it")
    func autoConflictKeepsPending() async throws {
        try await withSandbox(.root) { sandbox in
            let out = try Self.makeTree(sandbox)
            let path = try sandbox.write(Self.manifest(sandbox, out: out, commit: "auto"))
            let flag = sandbox.root + "/go"
            let script = Self.edits + " && while [ ! -e \"$2\" ]; do sleep 0.02; done"
            async let run = sandbox.run(path, ["/usr/bin/sh", "-c", script, "sh", out, flag], timeout: .seconds(60))
            // The command has run (its edits are in the staging layer, so the baseline was
            // taken before it): now the real file changes.
            var waited = 0
            while (try? Self.pendingRun(sandbox)).flatMap({ $0 }).map({ id in
                FileManager.default.fileExists(atPath: "\(sandbox.stateDirectory)/runs/\(id)/layers/0/upper/added.txt")
            }) != true, waited < 600 {
                try await Task.sleep(for: .milliseconds(50))
                waited += 1
            }
            try Data("changed meanwhile".utf8).write(to: URL(fileURLWithPath: out + "/notes.txt"))
            try Data().write(to: URL(fileURLWithPath: flag))
            let result = try await run
            #expect(result.status == 0, "\(result)")
            let id = try #require(try Self.pendingRun(sandbox), "\(result)")
            #expect(result.stderr.hasPrefix("corral: run \(id) not committed: changed since it began: \(out)/notes.txt\n"),
                    "\(result)")
            #expect(try String(contentsOfFile: out + "/notes.txt", encoding: .utf8) == "changed meanwhile")
        }
    }

    /// SIGKILL during a commit at step N, then `corral recover`: always all or nothing.
    @Test("a commit killed at any step is completed by `corral recover`")
    func crashedCommitRecovers() async throws {
        try await withSandbox(.root) { sandbox in
            let out = try Self.makeTree(sandbox)
            let before = try TreeListing.of(out)
            let expected = Self.expectedAfterEdits(before)
            let path = try sandbox.write(Self.manifest(sandbox, out: out, commit: "ask"))
            var step = 0
            var outcomes: [String] = []
            while step < 64 {
                try LabTool.run(["/bin/rm", "-rf", out])
                _ = try Self.makeTree(sandbox)
                let run = try await sandbox.run(path, ["/usr/bin/sh", "-c", Self.edits, "sh", out])
                let id = try #require(try Self.pendingRun(sandbox), "\(run)")
                let commit = try await sandbox.corral(["commit", id], environment: ["CORRAL_TEST_CRASH_AFTER_STEP": "\(step)"])
                if commit.status == 0 {
                    #expect(try TreeListing.of(out) == expected)
                    break  // past the last step: the commit finished
                }
                #expect(commit.status == 137, "step \(step): \(commit)")
                let recover = try await sandbox.corral(["recover"])
                #expect(recover.status == 0, "\(recover)")
                let after = try TreeListing.of(out)
                let pending = try Self.pendingRun(sandbox)
                // All: the commit was completed and the run is gone. None: nothing was
                // applied yet and the run is still pending, to be committed again.
                let all = after == expected && pending == nil
                let none = after == before && pending == id
                #expect(all || none, "step \(step): neither all nor nothing: \(after), pending \(pending ?? "-")")
                outcomes.append(all ? "all" : "none")
                if let pending { _ = try await sandbox.corral(["discard", pending]) }
                step += 1
            }
            #expect(step >= 3, "the commit has several steps to crash at")
            #expect(outcomes.contains("all"), "\(outcomes)")
        }
    }

    @Test("a file as a write path is refused with a hint when writes are staged")
    func fileWritePathRefused() async throws {
        try await withSandbox(.root) { sandbox in
            let file = try sandbox.writeFile("single.txt", "x")
            var manifest = Manifest(sandbox: sandbox)
            manifest.write = [file]
            let path = try sandbox.write(manifest)
            let run = try await sandbox.run(path, [sandbox.probe, "exit", "0"])
            #expect(run.status == 125, "\(run)")
            #expect(run.stderr.contains("stage writes to `\(file)`: staged writes need a folder, and this is a file"), "\(run)")
            #expect(run.stderr.contains("hint: list the folder that holds it, or set `approval: { commit: direct }`"), "\(run)")
        }
    }

    /// The one run the state directory holds, if any.
    static func pendingRun(_ sandbox: Sandbox) throws -> String? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: sandbox.stateDirectory + "/runs")) ?? []
        let runs = names.filter { !$0.hasPrefix(".") }
        if runs.count > 1 { throw TestFailure("more than one run staged: \(runs)") }
        return runs.first
    }
}

/// A folder's tree as sorted lines: relative path, type, permissions, and the content of
/// files or the target of links (what "byte-for-byte as before" compares).
enum TreeListing {
    static func of(_ root: String) throws -> [String] {
        var lines: [String] = []
        let paths = try FileManager.default.subpathsOfDirectory(atPath: root)
        for relative in paths {
            let full = root + "/" + relative
            var st = stat()
            guard lstat(full, &st) == 0 else { throw TestFailure("lstat \(full): errno \(errno)") }
            let mode = String(st.st_mode & 0o7777, radix: 8)
            switch st.st_mode & S_IFMT {
            case S_IFDIR: lines.append("\(relative) dir \(mode)")
            case S_IFLNK:
                lines.append("\(relative) link \(try FileManager.default.destinationOfSymbolicLink(atPath: full))")
            case S_IFREG:
                let content = String(decoding: try Data(contentsOf: URL(fileURLWithPath: full)), as: UTF8.self)
                lines.append("\(relative) file \(mode) \(content)")
            default: lines.append("\(relative) other \(mode)")
            }
        }
        return lines.sorted()
    }
}

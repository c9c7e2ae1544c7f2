import Foundation
import Testing

/// What a hostile command could do to the supervisor itself, found by review and fixed:
/// each case reproduces the attack and checks it fails in the exact way intended.
@Suite(.tags(.integration))
struct SupervisorHardeningTests {
    /// tcflow(TCOOFF) on the shared terminal would suspend the terminal's output, and with
    /// it every write the supervisor makes there (the status line): denied by seccomp.
    @Test("tcflow(TCOOFF) on the terminal is EPERM", arguments: RunAs.allCases)
    func terminalFlowControl(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            expectProbe(try await sandbox.probe("tcxonc"), printed: "tcxonc errno=EPERM")
        }
    }

    /// Under a terminal, the command's stdin is the terminal opened read-only: writing to
    /// fd 0 cannot go around limits.output (or the relay) to the user's screen.
    @Test("stdin from a terminal is read-only in the sandbox")
    func readOnlyTerminalStdin() async throws {
        try await withSandbox(.root) { sandbox in
            let path = try sandbox.write(Manifest(sandbox: sandbox))
            let line = [Products.corral, "run", "--quiet", "--profile", path, "--", sandbox.probe, "write-fd", "0", "FROM-FD0"]
                .joined(separator: " ")
            let result = try await sandbox.command(["/usr/bin/script", "-qec", line, "/dev/null"])
            #expect(result.stdout.contains("EBADF"), "\(result.stdout.debugDescription)")
            #expect(!result.stdout.contains("FROM-FD0"), "\(result.stdout.debugDescription)")
        }
    }

    /// The report is opened before the run and never through a symlink or inside a write
    /// path, where the command could aim the supervisor's write at another file.
    @Test("--report inside a write path, or through a symlink, is refused before anything runs",
          arguments: RunAs.allCases)
    func reportPathCannotBeRedirected(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let out = try sandbox.makeFolder("out", ownedByRunner: true)
            var manifest = Manifest(sandbox: sandbox)
            manifest.write = [out]
            let path = try sandbox.write(manifest)
            let inside = try await sandbox.run(path, [sandbox.probe, "exit", "0"], report: out + "/report.json")
            expectCorralFailure(inside, status: 125, mentioning: ["open report file", "which the sandbox may write"])
            #expect(!FileManager.default.fileExists(atPath: out + "/report.json"))

            let victim = sandbox.scratch + "/victim", link = sandbox.scratch + "/report.json"
            try Data("precious\n".utf8).write(to: URL(fileURLWithPath: victim))
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: victim)
            let linked = try await sandbox.run(path, [sandbox.probe, "exit", "0"], report: link)
            expectCorralFailure(linked, status: 125, mentioning: ["open report file", "ELOOP"])
            #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
        }
    }

    /// Output still in a (grown) pipe when the command exits is all passed through.
    @Test("output buffered in the pipe at exit is passed through in full", arguments: RunAs.allCases)
    func drainAtExit(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.limits = ["output: 10MiB"]
            let path = try sandbox.write(manifest)
            let result = try await sandbox.run(path, [sandbox.probe, "flood-buffered", "1000000"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.utf8.count == 1_000_000)
        }
    }

    /// /tmp and /dev/shm are memory: sized to limits.memory (else 1 GiB), so a rootless run
    /// without a memory cgroup cannot pin half the host's RAM in them. (As root the run's
    /// memory cgroup is charged for tmpfs pages and OOM-kills first; MonitorTests covers it.)
    @Test("rootless: the private /tmp and /dev/shm end at limits.memory with ENOSPC")
    func scratchFilesystemsAreSized() async throws {
        try await withSandbox(.unprivileged) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.limits = ["memory: 16MiB"]
            for folder in ["/tmp", "/dev/shm"] {
                let result = try await sandbox.probe("write-big", folder + "/big", "100000000", manifest: manifest)
                #expect(result.stdout == "written=16777216 errno=ENOSPC\n", "\(folder): \(result)")
            }
        }
    }
}

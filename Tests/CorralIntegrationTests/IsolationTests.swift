import Foundation
import Testing

/// What the command sees of itself: no privileges, its own pid namespace, hostname and
/// session, only the manifest's environment, only fds 0–2.
@Suite(.tags(.integration)) struct IsolationTests {
    @Test("every capability set is empty, no_new_privs is set, seccomp filters", arguments: RunAs.allCases)
    func noPrivileges(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let result = try await sandbox.probe("proc-status")
            #expect(result.status == 0, "\(result)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            let expected = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"].map { "\($0): 0000000000000000" }
                + ["NoNewPrivs: 1", "Seccomp: 2"]
            #expect(Array(lines.prefix(expected.count)) == expected, "\(result)")
            // The probe prints Seccomp_filters last, when the kernel reports it.
            #expect(lines.count == expected.count
                    || (lines.count == expected.count + 1 && lines.last!.hasPrefix("Seccomp_filters: ")),
                    "\(result)")
        }
    }

    /// The launcher starts init away from the supervisor's CPU (`spread_cpus`); init puts
    /// the supervisor's CPU set back before anything runs, so the command inherits it whole.
    @Test("the command may run on every CPU the supervisor may",
          .enabled(if: HostSupport.mayUseSeveralCPUs, "this process may run on one CPU only: the launcher moves nothing"),
          arguments: RunAs.allCases)
    func cpuSet(_ runAs: RunAs) async throws {
        let mine = HostSupport.allowedCPUList
        try await withSandbox(runAs) { sandbox in
            expectProbe(try await sandbox.probe("cpus"), printed: "cpus \(mine)")
        }
    }

    @Test("the command is pid 2, the child of the sandbox's init", arguments: RunAs.allCases)
    func pidNamespace(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            expectProbe(try await sandbox.probe("pid"), printed: "pid=2 ppid=1")
        }
    }

    @Test("no host process is visible", arguments: RunAs.allCases)
    func noHostProcesses(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            expectProbe(try await sandbox.probe("ps"), printed: "pids 1 2")
        }
    }

    @Test("the hostname is the goal id", arguments: RunAs.allCases)
    func hostname(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            expectProbe(try await sandbox.probe("hostname"), printed: "hostname \(Manifest.goalID)")
        }
    }

    @Test("the uid inside is the caller's", arguments: RunAs.allCases)
    func uidIsTheCallers(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            let (uid, gid) = (runAs.uid, runAs.gid)
            expectProbe(try await sandbox.probe("uid"),
                        printed: "uid=\(uid) gid=\(gid) euid=\(uid) egid=\(gid) groups=")
        }
    }

    @Test("the environment holds only env.set and env.pass", arguments: RunAs.allCases)
    func environmentIsOnlyTheManifests(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            var manifest = Manifest(sandbox: sandbox)
            manifest.envSet = [("A", "1")]
            manifest.envPass = ["PASSME"]
            let result = try await sandbox.probe("env", manifest: manifest,
                                                 environment: ["PASSME": "passed", "UNLISTED": "leaked"])
            expectProbe(result, printed: "A=1", "PASSME=passed")
        }
    }

    @Test("only fds 0, 1 and 2 reach the command", arguments: RunAs.allCases)
    func onlyStandardDescriptors(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            // Control: started the same way without Corral, the probe does see fd 7 (and
            // the socket Foundation's Process hands every child to watch for its exit).
            let control = try await sandbox.command([sandbox.probe, "fds"], inheritedFD7: true)
            #expect(control.status == 0 && control.stdout.hasPrefix("fds 0 1 2 7"), "\(control)")

            let manifest = try sandbox.write(Manifest(sandbox: sandbox))
            let result = try await sandbox.run(manifest, [sandbox.probe, "fds"], inheritedFD7: true)
            expectProbe(result, printed: "fds 0 1 2")
        }
    }

    @Test("the command leads its own session", arguments: RunAs.allCases)
    func ownSession(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            expectProbe(try await sandbox.probe("sid"), printed: "sid=2 pid=2 pgid=2")
        }
    }

    @Test("there is no controlling terminal", arguments: RunAs.allCases)
    func noControllingTerminal(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            expectProbe(try await sandbox.probe("tty"), printed: "tty errno=ENXIO")
        }
    }
}

import Testing
@testable import CorralPlan
import CorralProfile

/// Mount steps, reserved folders, the working directory and the command.
@Suite struct FilesystemPlanTests {
    // MARK: - Mount order: parents before children, across kinds

    static let orderCases: [Case<[String]>] = [
        Case("a read under the fresh /tmp comes after the tmpfs", """
            run: { command: [/bin/true] }
            filesystem: { read: [/tmp/a/b] }
            """, [
                "tmpfs /tmp mode=1777 size=1024MiB noexec",
                "ro-bind /tmp/a/b",
            ]),
        Case("a deny inside a write path comes after the write overlay", """
            run: { command: [/bin/true] }
            filesystem: { write: [/srv/out], deny: [/srv/out/secret.txt] }
            """, [
                "tmpfs /tmp mode=1777 size=1024MiB noexec",
                "overlay /srv/out layer=0 staged noexec",
                "mask /srv/out/secret.txt optional",
            ]),
        Case("read / comes first", """
            run: { command: [/bin/true] }
            filesystem: { read: [/usr/share, /], deny: [/etc/shadow] }
            """, [
                "ro-bind /",
                "tmpfs /tmp mode=1777 size=1024MiB noexec",
                "ro-bind /usr/share",
                "mask /etc/shadow optional",
            ]),
        Case("a parent listed after its child is still mounted first", """
            run: { command: [/bin/true] }
            filesystem: { read: [/usr/share/doc, /usr/share, /usr] }
            """, [
                "ro-bind /usr",
                "tmpfs /tmp mode=1777 size=1024MiB noexec",
                "ro-bind /usr/share",
                "ro-bind /usr/share/doc",
            ]),
        Case("a write under a read path comes after the read bind", """
            run: { command: [/bin/true] }
            filesystem: { read: [/var], write: [/var/tmp/work] }
            """, [
                "ro-bind /var",
                "tmpfs /tmp mode=1777 size=1024MiB noexec",
                "overlay /var/tmp/work layer=0 staged noexec",
            ]),
        Case("a deny inside a read path comes after the read bind", """
            run: { command: [/bin/true] }
            filesystem: { read: [/etc], deny: [/etc/ssh] }
            """, [
                "ro-bind /etc",
                "tmpfs /tmp mode=1777 size=1024MiB noexec",
                "mask /etc/ssh optional",
            ]),
        Case("at one depth: binds in manifest order, then Corral's tmpfs, then masks", """
            run: { command: [/bin/true] }
            filesystem: { read: [/usr, /etc], write: [/srv], deny: [/root] }
            """, [
                "ro-bind /usr",
                "ro-bind /etc",
                "overlay /srv layer=0 staged noexec",
                "tmpfs /tmp mode=1777 size=1024MiB noexec",
                "mask /root optional",
            ]),
        Case("a mask comes after every bind, even a deeper one", """
            run: { command: [/bin/true] }
            filesystem: { read: [/, /usr/share/doc], write: [/srv/out/a/b], deny: [/root, /etc/ssh] }
            """, [
                "ro-bind /",
                "tmpfs /tmp mode=1777 size=1024MiB noexec",
                "ro-bind /usr/share/doc",
                "overlay /srv/out/a/b layer=0 staged noexec",
                "mask /root optional",
                "mask /etc/ssh optional",
            ]),
        Case("a write /tmp replaces the fresh tmpfs", """
            run: { command: [/bin/true] }
            filesystem: { read: [/usr], write: [/tmp] }
            """, [
                "ro-bind /usr",
                "overlay /tmp layer=0 staged noexec",
            ]),
        Case("a read /tmp replaces the fresh tmpfs", """
            run: { command: [/bin/true] }
            filesystem: { read: [/usr, /tmp] }
            """, [
                "ro-bind /usr",
                "ro-bind /tmp",
            ]),
        Case("optional entries keep their flag; relative and ~ paths are resolved", """
            run: { command: [/bin/true] }
            filesystem:
              read: [{ path: /lib64, optional: true }, ./data]
              write: [{ path: "~/out", optional: true }]
            """, [
                "ro-bind /lib64 optional",
                "tmpfs /tmp mode=1777 size=1024MiB noexec",
                "ro-bind /corral/profiles/data",
                "overlay /home/agent/out layer=0 staged noexec optional",
            ]),
    ]

    @Test(arguments: orderCases)
    func mountOrder(_ c: Case<[String]>) throws {
        #expect(try Plans.compile(c.yaml).manifestMounts == c.expected)
    }

    /// Corral's own steps, once, in full.
    @Test func fixedStepsOfAMinimalPlan() throws {
        let plan = try Plans.compile("""
            run: { command: [/bin/true] }
            filesystem: { read: [/usr] }
            """)
        #expect(plan.mounts.map(\.description) == [
            "ro-bind /usr",
            "tmpfs /dev mode=755 size=1MiB noexec",
            "proc /proc noexec",
            "tmpfs /tmp mode=1777 size=1024MiB noexec",
            "dev-bind /dev/null noexec",
            "dev-bind /dev/zero noexec",
            "dev-bind /dev/full noexec",
            "dev-bind /dev/random noexec",
            "dev-bind /dev/urandom noexec",
            "dev-bind /dev/tty noexec",
            "devpts /dev/pts noexec",
            "tmpfs /dev/shm mode=1777 size=1024MiB noexec",
            "symlink /dev/ptmx -> pts/ptmx",
            "symlink /dev/fd -> /proc/self/fd",
            "symlink /dev/stdin -> /proc/self/fd/0",
            "symlink /dev/stdout -> /proc/self/fd/1",
            "symlink /dev/stderr -> /proc/self/fd/2",
            "remount-ro /proc/sys",
            "remount-ro /proc/sysrq-trigger optional",
        ])
        #expect(plan.mounts.first { $0.path == "/proc/sysrq-trigger" }?.optional == true)
    }

    /// Every step's parent folder is mounted (or is a folder of the root) before it, for any
    /// order in the manifest.
    @Test(arguments: orderCases)
    func everyStepComesAfterTheStepsAboveIt(_ c: Case<[String]>) throws {
        let mounts = try Plans.compile(c.yaml).mounts
        for (index, step) in mounts.enumerated() {
            let laterAncestors = mounts[(index + 1)...].filter {
                $0.path != step.path && PlanCompiler.isBeneath(step.path, $0.path)
            }
            #expect(laterAncestors.isEmpty, "\(step) comes before \(laterAncestors.map(\.description))")
        }
    }

    /// Masks are the last steps of every plan, after Corral's own /dev and /proc steps too, so
    /// no later mount can cover one.
    @Test(arguments: orderCases)
    func masksComeAfterEveryOtherStep(_ c: Case<[String]>) throws {
        let kinds = try Plans.compile(c.yaml).mounts.map { $0.kind == .mask }
        #expect(!kinds.drop { !$0 }.contains(false), "a step follows a mask")
    }

    @Test func masksFollowCorralsOwnSteps() throws {
        let plan = try Plans.compile("""
            run: { command: [/bin/true] }
            filesystem: { read: [/usr, /etc], deny: [/etc/shadow] }
            """)
        #expect(plan.mounts.suffix(3).map(\.description) == [
            "remount-ro /proc/sys",
            "remount-ro /proc/sysrq-trigger optional",
            "mask /etc/shadow optional",
        ])
    }

    // MARK: - Flags: write binds noexec, read binds not, a mask for every deny

    @Test func writeBindsAreNoexecReadBindsAreNotAndEveryDenyIsMasked() throws {
        let plan = try Plans.compile("""
            run: { command: [/bin/true] }
            filesystem:
              read: [/usr, /etc, /srv/in]
              write: [/srv/out, /var/cache/tool]
              deny: [/etc/shadow, /etc/ssh, /srv/in/key.pem, /srv/out/token]
            """)
        let file = Plans.file
        func step(_ path: String) -> MountStep? { plan.mounts.first { $0.path == path } }

        for path in ["/usr", "/etc", "/srv/in"] {
            #expect(step(path)?.kind == .bind(readOnly: true), "\(path)")
            #expect(step(path)?.noexec == false, "\(path)")
        }
        // Staged (approval.commit auto by default): an overlay per write entry, by its index.
        for (layer, path) in ["/srv/out", "/var/cache/tool"].enumerated() {
            #expect(step(path)?.kind == .overlay(layer: layer), "\(path)")
            #expect(step(path)?.noexec == true, "\(path)")
        }
        let masks = plan.mounts.filter { $0.kind == .mask }
        #expect(masks.map(\.path) == ["/etc/shadow", "/etc/ssh", "/srv/in/key.pem", "/srv/out/token"])
        #expect(masks.allSatisfy { $0.optional })
        #expect(step("/etc/shadow")?.origin == ManifestLocation(file: file, line: 7, keyPath: "filesystem.deny[0]"))
        #expect(step("/srv/out")?.origin == ManifestLocation(file: file, line: 6, keyPath: "filesystem.write[0]"))
        // Corral's own writable filesystems are noexec too.
        for path in ["/tmp", "/dev", "/dev/shm", "/proc"] {
            #expect(step(path)?.noexec == true, "\(path)")
        }
    }

    // MARK: - /proc and /dev are Corral's

    static let reservedCases: [Case<String>] = [
        Case("read /proc", "filesystem:\n  read:\n    - /proc\n", """
            profiles/t.yaml:6: filesystem.read[0]: /proc is built by Corral and cannot be bound or masked
              hint: remove the entry; the sandbox gets a fresh /proc
            """),
        Case("read /proc/1/root", "filesystem:\n  read:\n    - /proc/1/root\n", """
            profiles/t.yaml:6: filesystem.read[0]: /proc is built by Corral and cannot be bound or masked
              hint: remove the entry; the sandbox gets a fresh /proc
            """),
        Case("write /dev/shm", "filesystem:\n  write:\n    - /dev/shm\n", """
            profiles/t.yaml:6: filesystem.write[0]: /dev is built by Corral and cannot be bound or masked
              hint: remove the entry; the sandbox gets a fresh /dev
            """),
        Case("write /proc/sys/kernel", "filesystem:\n  write:\n    - /proc/sys/kernel\n", """
            profiles/t.yaml:6: filesystem.write[0]: /proc is built by Corral and cannot be bound or masked
              hint: remove the entry; the sandbox gets a fresh /proc
            """),
        Case("deny /dev/tty", "filesystem:\n  read: [/usr]\n  deny:\n    - /dev/tty\n", """
            profiles/t.yaml:7: filesystem.deny[0]: /dev is built by Corral and cannot be bound or masked
              hint: remove the entry; the sandbox gets a fresh /dev
            """),
        Case("read /dev, written unnormalised", "filesystem:\n  read:\n    - /usr/../dev/\n", """
            profiles/t.yaml:6: filesystem.read[0]: /dev is built by Corral and cannot be bound or masked
              hint: remove the entry; the sandbox gets a fresh /dev
            """),
        Case("/procedures is not /proc", "filesystem:\n  read:\n    - /procedures\n    - /devices\n", "compiled"),
    ]

    @Test(arguments: reservedCases)
    func reservedFolders(_ c: Case<String>) throws {
        #expect(try Plans.failure("run: { command: [/bin/true] }\n" + c.yaml) == c.expected)
    }

    // MARK: - Working directory

    static let workdirCases: [Case<String>] = [
        Case("no workdir and no write path: /", """
            run: { command: [/bin/true] }
            filesystem: { read: [/usr] }
            """, "/"),
        Case("no workdir: the first write path", """
            run: { command: [/bin/true] }
            filesystem: { read: [/usr], write: [/srv/b, /srv/a] }
            """, "/srv/b"),
        Case("a workdir under a read path", """
            run: { command: [/bin/true], workdir: /usr/share }
            filesystem: { read: [/usr], write: [/srv/out] }
            """, "/usr/share"),
        Case("a workdir under /tmp, always visible", """
            run: { command: [/bin/true], workdir: /tmp/job }
            filesystem: { read: [/usr] }
            """, "/tmp/job"),
        Case("a relative workdir", """
            run: { command: [/bin/true], workdir: ./ws }
            filesystem: { read: [/usr, ./ws] }
            """, "/corral/profiles/ws"),
        Case("workdir / under read /", """
            run: { command: [/bin/true], workdir: / }
            filesystem: { read: [/] }
            """, "/"),
    ]

    @Test(arguments: workdirCases)
    func workdir(_ c: Case<String>) throws {
        #expect(try Plans.compile(c.yaml).workdir == c.expected)
    }

    static let invisibleWorkdirCases: [Case<String>] = [
        Case("outside every path", """
            run:
              command: [/bin/true]
              workdir: /opt/app
            filesystem: { read: [/usr], write: [/srv/out] }
            """, """
            profiles/t.yaml:5: run.workdir: /opt/app is not visible inside the sandbox
              hint: add it (or a folder above it) to filesystem.read or filesystem.write
            """),
        Case("a sibling sharing a prefix", """
            run:
              command: [/bin/true]
              workdir: /usrlocal
            filesystem: { read: [/usr] }
            """, """
            profiles/t.yaml:5: run.workdir: /usrlocal is not visible inside the sandbox
              hint: add it (or a folder above it) to filesystem.read or filesystem.write
            """),
        Case("/ without read /", """
            run:
              command: [/bin/true]
              workdir: /
            filesystem: { read: [/usr] }
            """, """
            profiles/t.yaml:5: run.workdir: / is not visible inside the sandbox
              hint: add it (or a folder above it) to filesystem.read or filesystem.write
            """),
    ]

    @Test(arguments: invisibleWorkdirCases)
    func invisibleWorkdir(_ c: Case<String>) throws {
        #expect(try Plans.failure(c.yaml) == c.expected)
    }

    // MARK: - Command

    static let noCommand = """
        no command to run
          hint: give one after `--` (corral run --profile P -- CMD…) or set run.command
        """

    static let commandCases: [Case<String>] = [
        Case("no run section", "filesystem: { read: [/usr] }\n", noCommand),
        Case("an empty run.command", "run: { command: [] }\n", noCommand),
        Case("a run section without command", "run: { workdir: /tmp }\n", noCommand),
    ]

    @Test(arguments: commandCases)
    func missingCommand(_ c: Case<String>) throws {
        #expect(try Plans.failure(c.yaml) == c.expected)
        #expect(try Plans.failure(c.yaml, command: []) == c.expected)
    }

    @Test func missingCommandWithAnEmptyProgramFromTheCLI() throws {
        #expect(try Plans.failure("run: { command: [/bin/true] }\n", command: [""]) == Self.noCommand)
    }

    @Test(arguments: [
        (nil, ["python3", "report.py"]),
        ([], ["python3", "report.py"]),
        (["/bin/ls", "-l"], ["/bin/ls", "-l"]),
    ] as [([String]?, [String])])
    func cliCommandOverridesRunCommand(_ cli: [String]?, _ expected: [String]) throws {
        let plan = try Plans.compile("run: { command: [python3, report.py] }\n", command: cli)
        #expect(plan.command == expected)
        #expect(plan.description.hasSuffix("exec " + expected.joined(separator: " ") + "\n"))
    }

    @Test func cliCommandRunsWithoutRunCommand() throws {
        let plan = try Plans.compile("filesystem: { read: [/usr] }\n", command: ["/usr/bin/env"])
        #expect(plan.command == ["/usr/bin/env"])
    }
}

import Testing
@testable import CorralPlan
import CorralProfile

@Suite struct PlanPrinterTests {
    // MARK: - Quoting

    static let quoteCases: [(String, String)] = [
        ("python3", "python3"),
        ("/usr/bin:/bin", "/usr/bin:/bin"),
        ("--out=a,b+c@d%e", "--out=a,b+c@d%e"),
        ("", "''"),
        ("hello world", "'hello world'"),
        ("$(id)", "'$(id)'"),
        ("it's", "'it'\\''s'"),
        ("\u{1b}[2J", "'\\x1b[2J'"),
        // Escapes are always two hex digits.
        ("tab\there", "'tab\\x09here'"),
        ("bell\u{7}", "'bell\\x07'"),
        ("a\nb", "'a\\x0ab'"),
        ("nul\u{0}", "'nul\\x00'"),
        ("\u{1}1", "'\\x011'"),
        ("\u{11}", "'\\x11'"),
        ("del\u{7f}", "'del\\x7f'"),
        ("csi\u{9b}2J", "'csi\\x9b2J'"),
        ("\u{9f}", "'\\x9f'"),
        ("héllo", "héllo"),
    ]

    @Test(arguments: quoteCases)
    func quote(_ word: String, _ expected: String) {
        #expect(PlanPrinter.quote(word) == expected)
    }

    @Test func controlCharactersInTheCommandAreEscaped() throws {
        let plan = try Plans.compile("""
            run: { command: [/bin/echo, "\\e[2J\\e]0;owned\\a", "a\\nexec /bin/evil"] }
            """)
        #expect(plan.command == ["/bin/echo", "\u{1b}[2J\u{1b}]0;owned\u{07}", "a\nexec /bin/evil"])
        let text = plan.description
        #expect(!text.contains("\u{1b}"))
        #expect(!text.contains("\u{07}"))
        // The whole command stays on one `exec` line: the newline cannot start a line of its own.
        let exec = text.split(separator: "\n").filter { $0.hasPrefix("exec ") }
        #expect(exec == ["exec /bin/echo '\\x1b[2J\\x1b]0;owned\\x07' 'a\\x0aexec /bin/evil'"])
    }

    /// Fixed-width `\x` escapes: words that differ print differently ("\u{1}1" and "\u{11}",
    /// a tab then "b" and the C1 CSI character used to print alike).
    @Test(arguments: [("\u{1}1", "\u{11}"), ("\tb", "\u{9b}"), ("\u{0}0", "\u{0}"), ("\u{7}f", "\u{7f}")])
    func escapedWordsStayDistinct(_ a: String, _ b: String) {
        #expect(PlanPrinter.quote(a) != PlanPrinter.quote(b))
    }

    /// Paths print unquoted, so the manifest parser refuses control characters in them: a path
    /// can no longer add lines to `corral explain`'s output or drive the reader's terminal.
    static let forgedPathCases: [Case<String>] = [
        Case("a newline in a read path", """
            run: { command: [/bin/true] }
            filesystem: { read: [/usr, "/srv/x\\nseccomp allow ptrace"] }
            """, """
            profiles/t.yaml:4: filesystem.read[1]: the path contains a control character
              hint: write the path without newlines, tabs or escape characters
            """),
        Case("an escape sequence in a write path", """
            run: { command: [/bin/true] }
            filesystem: { read: [/usr], write: ["/srv/\\e[2Jout"] }
            """, """
            profiles/t.yaml:4: filesystem.write[0]: the path contains a control character
              hint: write the path without newlines, tabs or escape characters
            """),
        Case("a newline in the workdir", """
            run: { command: [/bin/true], workdir: "/usr\\nexec /bin/evil" }
            filesystem: { read: [/usr] }
            """, """
            profiles/t.yaml:3: run.workdir: the path contains a control character
              hint: write the path without newlines, tabs or escape characters
            """),
    ]

    @Test(arguments: forgedPathCases)
    func controlCharactersInPathsAreALoadError(_ c: Case<String>) {
        #expect(Plans.loadFailure(c.yaml) == c.expected)
    }

    @Test func controlCharactersInEnvironmentValuesAreEscaped() throws {
        let plan = try Plans.compile("""
            run: { command: [/bin/true], env: { set: { TITLE: "\\e[31mred" } } }
            """)
        #expect(!plan.description.contains("\u{1b}"))
        #expect(plan.description.contains("\nenv TITLE='\\x1b[31mred'\n"))
    }

    // MARK: - Environment and secrets

    @Test func environmentLinesAndSecrets() throws {
        let plan = try Plans.compile("""
            run:
              command: [/bin/true]
              env:
                pass: [LANG]
                set: { GREETING: hello world, PATH: /usr/bin }
                secrets: [SALES_API_TOKEN]
            """)
        #expect(plan.environment == [
            EnvironmentEntry(name: "LANG", source: .passed),
            EnvironmentEntry(name: "GREETING", source: .fixed("hello world")),
            EnvironmentEntry(name: "PATH", source: .fixed("/usr/bin")),
            EnvironmentEntry(name: "SALES_API_TOKEN", source: .secret),
        ])
        let env = plan.description.split(separator: "\n").filter { $0.hasPrefix("env ") }
        #expect(env == [
            "env LANG (passed from the caller)",
            "env GREETING='hello world'",
            "env PATH=/usr/bin",
            "env SALES_API_TOKEN=<secret> (passed from the caller)",
        ])
    }

    // MARK: - The rest of the plan

    @Test func limitsAndRules() throws {
        let plan = try Plans.compile("""
            run: { command: [/bin/true] }
            filesystem: { read: [/usr] }
            limits: { wall: 5m, cpu: 30s, cpu_quota: 50%, memory: 256MiB, processes: 32, open_files: 128,
                      file_size: 5MB, output: 1MiB, enforce: required }
            monitor:
              - { id: forks, when: limit(processes), then: kill }
              - { when: "rate(connect) > 20/1s", then: alert }
              - { when: exec-outside-allowlist, then: kill }
            """)
        let lines = plan.description.split(separator: "\n").map(String.init)
        let start = try #require(lines.firstIndex(of: "rlimit core 0 0"))
        #expect(Array(lines[start..<(start + 14)]) == [
            "rlimit core 0 0",
            "rlimit nofile 128 128",
            "rlimit fsize 5000000 5000000",
            "rlimit cpu 30 31",
            "limit wall 5m (whole tree killed)",
            "limit cpu 30s (user+system of the tree; killed)",
            "limit cpu-quota 0.5 cores (throttled)",
            "limit memory 256MiB (swap included; killed)",
            "limit processes 32 (fork fails with EAGAIN)",
            "limit output 1MiB (stdout+stderr; run stopped)",
            "limits enforce required",
            "monitor forks: when limit(processes) then kill",
            "monitor rule-2: when rate(connect) > 20/1s then alert",
            "monitor rule-3: when exec-outside-allowlist then kill",
        ])
        // The rules' syscalls are watched like syscalls.watch entries.
        #expect(plan.seccomp.watched == ["connect", "execve", "execveat"])
        #expect(lines.contains("seccomp watch connect -> supervisor"), "\(lines)")
    }

    @Test func aRateRuleOnADeniedSyscallIsAnError() throws {
        do {
            _ = try Plans.compile("""
                run: { command: [/bin/true] }
                filesystem: { read: [/usr] }
                monitor:
                  - { when: "rate(ptrace) > 1/1s", then: kill }
                """)
            Issue.record("compiled a rule that can never fire")
        } catch {
            #expect("\(error)" == """
                profiles/t.yaml:6: monitor[0]: rule rule-1: rate(ptrace) can never fire: the seccomp profile denies ptrace
                  hint: watch a syscall the run may make, or allow ptrace in syscalls.allow
                """)
        }
    }

    @Test func processSectionOfAMinimalPlan() throws {
        let plan = try Plans.compile("""
            run: { command: [/bin/true, -x] }
            filesystem: { read: [/usr], write: [/srv/out] }
            limits: { wall: 90s }
            network: { mode: loopback, ports: [8080] }
            """)
        let lines = plan.description.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(Array(lines.prefix(7)) == [
            "goal test-goal",
            "unshare user pid mount net ipc uts cgroup",
            "uid-map 1000 1000 1",
            "gid-map 1000 1000 1",
            "hostname test-goal",
            "network loopback (loopback only; the host loopback ports below forwarded in)",
            "egress listen 127.0.0.1:8080 forward to 127.0.0.1:8080",
        ])
        #expect(Array(lines.suffix(9)) == [
            "# process",
            "capabilities drop all (bounding, ambient, permitted, effective, inheritable); securebits locked",
            "no-new-privs",
            "rlimit core 0 0",
            "limit wall 90s (whole tree killed)",
            "chdir /srv/out",
            "session new (no controlling terminal)",
            "exec /bin/true -x",
            "",
        ])
    }

    // MARK: - syscalls.watch

    /// Each watched call says whether it can reach the supervisor at all: the programs above
    /// the watch decide first, and ERRNO outranks USER_NOTIF.
    @Test func watchedSyscallsSayWhetherTheyReachTheSupervisor() throws {
        let plan = try Plans.compile("""
            run: { command: [/bin/true] }
            syscalls: { watch: [socket, openat, ptrace, execve, kill] }
            """)
        #expect(plan.seccomp.watched == ["execve", "kill", "openat", "ptrace", "socket"])
        let lines = plan.description.split(separator: "\n").filter { $0.contains("seccomp watch") }
        #expect(lines == [
            "# seccomp watch: a last program; these calls wait for the supervisor, which records them and lets them "
                + "continue unless its decision hook denies them",
            "seccomp watch execve -> supervisor",
            "seccomp watch kill -> supervisor",
            "seccomp watch openat -> supervisor # where the deny-if rules let it through",
            "seccomp watch ptrace -> EPERM # denied above: the kernel answers before the supervisor could see it",
            "seccomp watch socket -> supervisor # where the allow-if rules allow it",
        ])
    }

    @Test func anAllowedAndWatchedSyscallReachesTheSupervisor() throws {
        let plan = try Plans.compile("""
            run: { command: [/bin/true] }
            syscalls: { allow: [ptrace], on_deny: EACCES, watch: [ptrace] }
            """)
        #expect(plan.description.split(separator: "\n").filter { $0.hasPrefix("seccomp watch") }
            == ["seccomp watch ptrace -> supervisor"])
    }

    @Test func aPlanWithoutWatchPrintsNoWatchLines() throws {
        let plan = try Plans.compile("run: { command: [/bin/true] }\n")
        #expect(plan.seccomp.watched.isEmpty)
        #expect(!plan.description.split(separator: "\n").contains { $0.contains("seccomp watch") })
    }

    @Test(arguments: [
        (Duration.milliseconds(250), "250ms"), (.seconds(90), "90s"), (.seconds(120), "2m"),
        (.seconds(3600), "1h"), (.milliseconds(90_500), "90500ms"), (.seconds(5400), "90m"),
    ])
    func wallLimitFormat(_ duration: Duration, _ expected: String) {
        #expect(Limits.format(duration) == expected)
    }
}

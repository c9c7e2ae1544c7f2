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
        ("tab\there", "'tab\\x9here'"),
        ("del\u{7f}", "'del\\x7f'"),
        ("csi\u{9b}2J", "'csi\\x9b2J'"),
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
        #expect(exec.count == 1)
        #expect(exec.first?.hasPrefix("exec /bin/echo '\\x1b[2J\\x1b]0;owned\\x7' 'a\\x") == true)
    }

    /// `\x` escapes are not fixed-width, so different words can print alike: "\u{1}1" and
    /// "\u{11}" both print as '\x11'; a tab then "b" prints like the C1 CSI character ('\x9b').
    /// Reported to the lead; remove the known-issue wrapper once `quote` pads to two digits.
    @Test func escapedWordsStayDistinct() {
        withKnownIssue("PlanPrinter.quote's \\x escapes are variable-width") {
            #expect(PlanPrinter.quote("\u{1}1") != PlanPrinter.quote("\u{11}"))
            #expect(PlanPrinter.quote("\tb") != PlanPrinter.quote("\u{9b}"))
        }
    }

    /// Paths are printed unquoted, and the manifest parser accepts control characters in them,
    /// so a path can add lines to `corral explain`'s output. Reported to the lead.
    @Test func controlCharactersInPathsDoNotReachThePlanText() throws {
        let plan = try Plans.compile("""
            run: { command: [/bin/true] }
            filesystem: { read: [/usr, "/srv/x\\nseccomp allow ptrace"] }
            """)
        withKnownIssue("mount, landlock and chdir lines print paths raw") {
            #expect(!plan.description.split(separator: "\n").contains("seccomp allow ptrace"))
        }
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

    @Test func processSectionOfAMinimalPlan() throws {
        let plan = try Plans.compile("""
            run: { command: [/bin/true, -x] }
            filesystem: { read: [/usr], write: [/srv/out] }
            limits: { wall: 90s }
            network: { mode: loopback }
            """)
        let lines = plan.description.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(Array(lines.prefix(6)) == [
            "goal test-goal",
            "unshare user pid mount net ipc uts cgroup",
            "uid-map 1000 1000 1",
            "gid-map 1000 1000 1",
            "hostname test-goal",
            "network loopback",
        ])
        #expect(Array(lines.suffix(9)) == [
            "# process",
            "capabilities drop all (bounding, ambient, permitted, effective, inheritable); securebits locked",
            "no-new-privs",
            "rlimit core 0 0",
            "limit wall 90s",
            "chdir /srv/out",
            "session new (no controlling terminal)",
            "exec /bin/true -x",
            "",
        ])
    }

    @Test(arguments: [
        (Duration.milliseconds(250), "250ms"), (.seconds(90), "90s"), (.seconds(120), "2m"),
        (.seconds(3600), "1h"), (.milliseconds(90_500), "90500ms"), (.seconds(5400), "90m"),
    ])
    func wallLimitFormat(_ duration: Duration, _ expected: String) {
        #expect(PlanPrinter.format(duration) == expected)
    }
}

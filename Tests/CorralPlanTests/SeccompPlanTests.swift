import Testing
@testable import CorralPlan
import CorralProfile

@Suite struct SeccompPlanTests {
    static func plan(_ syscalls: String = "") throws -> SeccompPlan {
        try Plans.compile("run: { command: [/bin/true] }\nsyscalls: { base: default\(syscalls) }\n").seccomp
    }

    static func lines(_ syscalls: String = "") throws -> [String] {
        try Plans.compile("run: { command: [/bin/true] }\nsyscalls: { base: default\(syscalls) }\n")
            .description.split(separator: "\n").map(String.init).filter { $0.hasPrefix("seccomp ") }
    }

    // MARK: - The default base

    /// Allowed only by argument rules: name → number of rules.
    @Test(arguments: [("socket", 8), ("socketpair", 1), ("personality", 5)])
    func narrowedSyscallsAreOnlyConditionallyAllowed(_ name: String, _ ruleCount: Int) throws {
        let plan = try Self.plan()
        #expect(!plan.allowed.contains(name))
        #expect(plan.conditionalAllows.filter { $0.syscall == name }.count == ruleCount)
        #expect(!plan.argumentDenials.contains { $0.syscall == name })
    }

    @Test func conditionalAllowsAreExact() throws {
        #expect(try Self.plan().conditionalAllows.map(\.description) == [
            "socket(a0 & 0xffffffff == 0x1, a1 & 0xf == 0x1) # unix sockets",
            "socket(a0 & 0xffffffff == 0x1, a1 & 0xf == 0x2) # unix sockets",
            "socket(a0 & 0xffffffff == 0x1, a1 & 0xf == 0x5) # unix sockets",
            "socket(a0 & 0xffffffff == 0x2, a1 & 0xf == 0x1) # inet sockets",
            "socket(a0 & 0xffffffff == 0x2, a1 & 0xf == 0x2) # inet sockets",
            "socket(a0 & 0xffffffff == 0xa, a1 & 0xf == 0x1) # inet6 sockets",
            "socket(a0 & 0xffffffff == 0xa, a1 & 0xf == 0x2) # inet6 sockets",
            "socket(a0 & 0xffffffff == 0x10, a2 & 0xffffffff == 0x0) # netlink route",
            "socketpair(a0 & 0xffffffff == 0x1) # unix socket pairs",
            "personality(a0 & 0xffffffff == 0x0) # harmless execution domain",
            "personality(a0 & 0xffffffff == 0x8) # harmless execution domain",
            "personality(a0 & 0xffffffff == 0x20000) # harmless execution domain",
            "personality(a0 & 0xffffffff == 0x20008) # harmless execution domain",
            "personality(a0 & 0xffffffff == 0xffffffff) # harmless execution domain",
        ])
    }

    @Test func clone3FailsWithENOSYS() throws {
        let plan = try Self.plan()
        #expect(plan.enosys == ["clone3"])
        #expect(!plan.allowed.contains("clone3"))
        #expect(try Self.lines().contains("seccomp deny clone3 -> ENOSYS"))
    }

    /// `corral explain` gives each syscall one action: clone3 is in `enosys` only, not also in
    /// the reasoned EPERM list.
    @Test func clone3IsPrintedWithOneAction() throws {
        #expect(try !Self.plan().denied.contains { $0.name == "clone3" })
        #expect(try Self.lines().filter { $0.contains(" clone3 ") || $0.hasSuffix(" clone3") }
            == ["seccomp deny clone3 -> ENOSYS"])
    }

    /// `syscalls.allow: [clone3]` allows it unconditionally; `syscalls.deny: [clone3]` denies it
    /// with on_deny (EPERM here) and its reason, not ENOSYS.
    @Test func clone3AllowedOrDeniedByTheManifest() throws {
        let allowed = try Self.plan(", allow: [clone3]")
        #expect(allowed.allowed.contains("clone3"))
        #expect(allowed.enosys.isEmpty)
        #expect(!allowed.denied.contains { $0.name == "clone3" })
        let allowedLines = try Self.lines(", allow: [clone3]")
        #expect(!allowedLines.contains { $0.hasPrefix("seccomp deny clone3") })
        #expect(allowedLines.filter { $0.hasPrefix("seccomp allow ") && $0.split(separator: " ").contains("clone3") }.count == 1)

        let denied = try Self.plan(", deny: [clone3]")
        #expect(!denied.allowed.contains("clone3"))
        #expect(denied.enosys.isEmpty)
        #expect(denied.denied.filter { $0.name == "clone3" }.map(\.reason) == ["denied by the manifest"])
        #expect(try Self.lines(", deny: [clone3]").filter { $0.hasPrefix("seccomp deny clone3 ") }
            == ["seccomp deny clone3 -> EPERM # denied by the manifest"])
    }

    /// A denied syscall that argument rules partly allow says so in its reason.
    @Test func personalityDenialNamesTheAllowIfRules() throws {
        let reason = DefaultSyscallPolicy.denied["personality"]! + " (except the allow-if rules)"
        let plan = try Self.plan()
        #expect(plan.denied.filter { $0.name == "personality" }.map(\.reason) == [reason])
        // Only personality is both denied and conditionally allowed.
        #expect(plan.denied.filter { $0.reason.hasSuffix(" (except the allow-if rules)") }.map(\.name) == ["personality"])
        #expect(try Self.lines().contains("seccomp deny personality -> EPERM # \(reason)"))
    }

    @Test func argumentDenialsAreExact() throws {
        let plan = try Self.plan()
        #expect(plan.argumentDenials.map(\.description) == [
            "clone(a0 & 0x20000 == 0x20000) # no new namespaces (CLONE_NEWNS)",
            "clone(a0 & 0x2000000 == 0x2000000) # no new namespaces (CLONE_NEWCGROUP)",
            "clone(a0 & 0x4000000 == 0x4000000) # no new namespaces (CLONE_NEWUTS)",
            "clone(a0 & 0x8000000 == 0x8000000) # no new namespaces (CLONE_NEWIPC)",
            "clone(a0 & 0x10000000 == 0x10000000) # no new namespaces (CLONE_NEWUSER)",
            "clone(a0 & 0x20000000 == 0x20000000) # no new namespaces (CLONE_NEWPID)",
            "clone(a0 & 0x40000000 == 0x40000000) # no new namespaces (CLONE_NEWNET)",
            "clone(a0 & 0x80 == 0x80) # no new namespaces (CLONE_NEWTIME)",
            "ioctl(a1 & 0xffffffff == 0x5412) # TIOCSTI injects terminal input",
            "ioctl(a1 & 0xffffffff == 0x541c) # TIOCLINUX drives the console",
        ])
    }

    @Test func cloneNewUserAndTIOCSTIRules() throws {
        let plan = try Self.plan()
        let newUser = try #require(plan.argumentDenials.first { $0.note == "no new namespaces (CLONE_NEWUSER)" })
        #expect(newUser.syscall == "clone")
        #expect(newUser.comparisons == [Comparison(argument: 0, mask: 0x1000_0000, equals: 0x1000_0000)])

        let tiocsti = try #require(plan.argumentDenials.first { $0.note == "TIOCSTI injects terminal input" })
        #expect(tiocsti.syscall == "ioctl")
        // The low 32 bits only: the kernel reads `cmd` as an unsigned int, so a rule on all
        // 64 bits would miss 0x1_0000_5412 (CVE-2019-10063).
        #expect(tiocsti.comparisons == [Comparison(argument: 1, mask: 0xFFFF_FFFF, equals: 0x5412)])

        let printed = try Self.lines()
        #expect(printed.contains("seccomp deny-if clone(a0 & 0x10000000 == 0x10000000) # no new namespaces (CLONE_NEWUSER) -> EPERM"))
        #expect(printed.contains("seccomp deny-if ioctl(a1 & 0xffffffff == 0x5412) # TIOCSTI injects terminal input -> EPERM"))
    }

    /// Arguments the kernel reads as `int`/`unsigned int` are never compared on all 64 bits.
    @Test func intArgumentsAreComparedOnTheirLow32Bits() throws {
        let plan = try Self.plan()
        let intArguments: [String: Set<Int>] = ["socket": [0, 1, 2], "socketpair": [0], "personality": [0], "ioctl": [1]]
        for rule in plan.conditionalAllows + plan.argumentDenials {
            for comparison in rule.comparisons where intArguments[rule.syscall]?.contains(comparison.argument) == true {
                #expect(comparison.mask <= 0xFFFF_FFFF, "\(rule)")
                #expect(comparison.value & ~comparison.mask == 0, "\(rule)")
            }
        }
    }

    @Test func defaultOnDenyIsEPERM() throws {
        #expect(try Self.plan().onDeny == .errno(1))
        #expect(try Self.lines().first == "seccomp default EPERM; other architectures (i386, x32) kill the process")
    }

    // MARK: - Manifest changes

    struct Change: Sendable, CustomTestStringConvertible {
        var yaml: String
        var allowed: [String] = []
        var notAllowed: [String] = []
        /// (name, reason) that must be in `denied`.
        var denied: [(String, String)] = []
        var notDenied: [String] = []
        var conditional: Set<String> = ["socket", "socketpair", "personality"]
        var argumentDenials: Set<String> = ["clone", "ioctl"]
        var enosys: [String] = ["clone3"]
        var testDescription: String { yaml }
    }

    static let changes: [Change] = [
        Change(yaml: "deny: [memfd_create]", notAllowed: ["memfd_create"],
               denied: [("memfd_create", "denied by the manifest")]),
        Change(yaml: "deny: [ioctl]", notAllowed: ["ioctl"], denied: [("ioctl", "denied by the manifest")],
               argumentDenials: ["clone"]),
        Change(yaml: "deny: [clone]", notAllowed: ["clone"], denied: [("clone", "denied by the manifest")],
               argumentDenials: ["ioctl"]),
        Change(yaml: "deny: [socket]", notAllowed: ["socket"], denied: [("socket", "denied by the manifest")],
               conditional: ["socketpair", "personality"]),
        Change(yaml: "deny: [ptrace]", notAllowed: ["ptrace"],
               denied: [("ptrace", DefaultSyscallPolicy.denied["ptrace"]!)]),
        Change(yaml: "allow: [ptrace]", allowed: ["ptrace"], notDenied: ["ptrace"]),
        Change(yaml: "allow: [personality]", allowed: ["personality"], notDenied: ["personality"],
               conditional: ["socket", "socketpair"]),
        Change(yaml: "allow: [socket, socketpair]", allowed: ["socket", "socketpair"],
               conditional: ["personality"]),
        Change(yaml: "deny: [personality]", notAllowed: ["personality"],
               denied: [("personality", DefaultSyscallPolicy.denied["personality"]!)],
               conditional: ["socket", "socketpair"]),
        Change(yaml: "allow: [clone3]", allowed: ["clone3"], notDenied: ["clone3"], enosys: []),
        Change(yaml: "deny: [clone3]", notAllowed: ["clone3"],
               denied: [("clone3", "denied by the manifest")], enosys: []),
    ]

    @Test(arguments: changes)
    func manifestChange(_ c: Change) throws {
        let plan = try Self.plan(", " + c.yaml)
        for name in c.allowed { #expect(plan.allowed.contains(name), "\(name) allowed") }
        for name in c.notAllowed { #expect(!plan.allowed.contains(name), "\(name) not allowed") }
        for (name, reason) in c.denied {
            #expect(plan.denied.filter { $0.name == name }.map(\.reason) == [reason], "\(name) denied once")
        }
        for name in c.notDenied { #expect(!plan.denied.contains { $0.name == name }, "\(name) not denied") }
        #expect(Set(plan.conditionalAllows.map(\.syscall)) == c.conditional)
        #expect(Set(plan.argumentDenials.map(\.syscall)) == c.argumentDenials)
        #expect(plan.enosys == c.enosys)
        // Nothing is both allowed and denied, or given two actions, and the lists stay sorted.
        #expect(Set(plan.allowed).isDisjoint(with: plan.denied.map(\.name)))
        #expect(Set(plan.enosys).isDisjoint(with: plan.denied.map(\.name)))
        #expect(Set(plan.enosys).isDisjoint(with: plan.allowed))
        #expect(plan.allowed == plan.allowed.sorted())
        #expect(plan.denied.map(\.name) == plan.denied.map(\.name).sorted())
    }

    @Test func manifestDenialIsPrinted() throws {
        #expect(try Self.lines(", deny: [memfd_create]").contains("seccomp deny memfd_create -> EPERM # denied by the manifest"))
    }

    @Test(arguments: [("kill", DenyAction.kill, "kill"), ("EACCES", .errno(13), "EACCES"), ("ENOSYS", .errno(38), "ENOSYS")])
    func onDeny(_ yaml: String, _ action: DenyAction, _ printed: String) throws {
        let plan = try Self.plan(", on_deny: \(yaml)")
        #expect(plan.onDeny == action)
        #expect(action.description == printed)
        let lines = try Self.lines(", on_deny: \(yaml)")
        #expect(lines.first == "seccomp default \(printed); other architectures (i386, x32) kill the process")
        #expect(lines.contains("seccomp deny-if ioctl(a1 & 0xffffffff == 0x5412) # TIOCSTI injects terminal input -> \(printed)"))
        #expect(lines.contains("seccomp deny ptrace -> \(printed) # \(DefaultSyscallPolicy.denied["ptrace"]!)"))
        // ENOSYS for clone3 stays ENOSYS whatever the default action.
        #expect(lines.contains("seccomp deny clone3 -> ENOSYS"))
    }
}

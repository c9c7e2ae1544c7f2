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
    @Test(arguments: [("socket", 12), ("socketpair", 1), ("personality", 5)])
    func narrowedSyscallsAreOnlyConditionallyAllowed(_ name: String, _ ruleCount: Int) throws {
        let plan = try Self.plan()
        #expect(!plan.allowed.contains(name))
        #expect(plan.conditionalAllows.filter { $0.syscall == name }.count == ruleCount)
        #expect(!plan.argumentDenials.contains { $0.syscall == name })
    }

    @Test func conditionalAllowsAreExact() throws {
        #expect(try Self.plan().conditionalAllows.map(\.description) == [
            "socket(a0 & 0xffffffff == 0x1, a1 & 0xf == 0x1, a2 & 0xffffffff == 0x0) # unix sockets",
            "socket(a0 & 0xffffffff == 0x1, a1 & 0xf == 0x2, a2 & 0xffffffff == 0x0) # unix sockets",
            "socket(a0 & 0xffffffff == 0x1, a1 & 0xf == 0x5, a2 & 0xffffffff == 0x0) # unix sockets",
            "socket(a0 & 0xffffffff == 0x2, a1 & 0xf == 0x1, a2 & 0xffffffff == 0x0) # inet sockets",
            "socket(a0 & 0xffffffff == 0x2, a1 & 0xf == 0x1, a2 & 0xffffffff == 0x6) # inet sockets",
            "socket(a0 & 0xffffffff == 0x2, a1 & 0xf == 0x2, a2 & 0xffffffff == 0x0) # inet sockets",
            "socket(a0 & 0xffffffff == 0x2, a1 & 0xf == 0x2, a2 & 0xffffffff == 0x11) # inet sockets",
            "socket(a0 & 0xffffffff == 0xa, a1 & 0xf == 0x1, a2 & 0xffffffff == 0x0) # inet6 sockets",
            "socket(a0 & 0xffffffff == 0xa, a1 & 0xf == 0x1, a2 & 0xffffffff == 0x6) # inet6 sockets",
            "socket(a0 & 0xffffffff == 0xa, a1 & 0xf == 0x2, a2 & 0xffffffff == 0x0) # inet6 sockets",
            "socket(a0 & 0xffffffff == 0xa, a1 & 0xf == 0x2, a2 & 0xffffffff == 0x11) # inet6 sockets",
            "socket(a0 & 0xffffffff == 0x10, a2 & 0xffffffff == 0x0) # netlink route",
            "socketpair(a0 & 0xffffffff == 0x1) # unix socket pairs",
            "personality(a0 & 0xffffffff == 0x0) # harmless execution domain",
            "personality(a0 & 0xffffffff == 0x8) # harmless execution domain",
            "personality(a0 & 0xffffffff == 0x20000) # harmless execution domain",
            "personality(a0 & 0xffffffff == 0x20008) # harmless execution domain",
            "personality(a0 & 0xffffffff == 0xffffffff) # harmless execution domain",
        ])
    }

    /// Every inet/inet6 socket rule pins the protocol to 0 or the one its type implies (TCP
    /// for stream, UDP for datagram): MPTCP (262), SCTP (132) and UDP-Lite (136) match none.
    @Test func socketRulesPinTheProtocol() throws {
        let socket = try Self.plan().conditionalAllows.filter { $0.syscall == "socket" }
        #expect(socket == ArgumentRules.socketAllows.filter { $0.syscall == "socket" })
        for rule in socket {
            let protocolComparisons = rule.comparisons.filter { $0.argument == 2 }
            #expect(protocolComparisons.count == 1, "\(rule)")
            #expect(protocolComparisons.first?.mask == 0xFFFF_FFFF, "\(rule)")
        }
        // (family, type) → the protocols allowed for it.
        var protocols: [String: Set<UInt64>] = [:]
        for rule in socket {
            let family = rule.comparisons.first { $0.argument == 0 }!.value
            let type = rule.comparisons.first { $0.argument == 1 }?.value
            protocols["\(family)/\(type.map(String.init) ?? "any")", default: []]
                .insert(rule.comparisons.first { $0.argument == 2 }!.value)
        }
        #expect(protocols == [
            "1/1": [0], "1/2": [0], "1/5": [0],
            "2/1": [0, 6], "2/2": [0, 17],
            "10/1": [0, 6], "10/2": [0, 17],
            "16/any": [0],
        ])
        for forbidden: UInt64 in [262, 132, 136] {
            #expect(!socket.contains { $0.comparisons.contains { $0.argument == 2 && $0.value == forbidden } })
        }
    }

    /// clone3 and openat2 pass their flags and mode in a struct seccomp cannot read: ENOSYS,
    /// so libc falls back to clone and openat (which the argument rules can inspect).
    @Test func clone3AndOpenat2FailWithENOSYS() throws {
        let plan = try Self.plan()
        #expect(plan.enosys == ["clone3", "openat2"])
        #expect(!plan.allowed.contains("clone3"))
        #expect(!plan.allowed.contains("openat2"))
        #expect(plan.allowed.contains("openat"))
        let lines = try Self.lines()
        #expect(lines.contains("seccomp deny clone3 -> ENOSYS"))
        #expect(lines.contains("seccomp deny openat2 -> ENOSYS"))
    }

    /// `corral explain` gives each syscall one action: clone3 and openat2 are in `enosys`
    /// only, not also in the reasoned EPERM list or the allow list.
    @Test(arguments: ["clone3", "openat2"])
    func enosysSyscallIsPrintedWithOneAction(_ name: String) throws {
        #expect(try !Self.plan().denied.contains { $0.name == name })
        #expect(try Self.lines().filter { $0.contains(" \(name) ") || $0.hasSuffix(" \(name)") }
            == ["seccomp deny \(name) -> ENOSYS"])
    }

    /// `syscalls.allow: [NAME]` allows it unconditionally; `syscalls.deny: [NAME]` denies it
    /// with on_deny (EPERM here) and "denied by the manifest", not ENOSYS. The other one of
    /// the pair keeps its ENOSYS.
    @Test(arguments: [("clone3", "openat2"), ("openat2", "clone3")])
    func enosysSyscallAllowedOrDeniedByTheManifest(_ name: String, _ other: String) throws {
        let allowed = try Self.plan(", allow: [\(name)]")
        #expect(allowed.allowed.contains(name))
        #expect(allowed.enosys == [other])
        #expect(!allowed.denied.contains { $0.name == name })
        let allowedLines = try Self.lines(", allow: [\(name)]")
        #expect(!allowedLines.contains { $0.hasPrefix("seccomp deny \(name)") })
        #expect(allowedLines.filter { $0.hasPrefix("seccomp allow ") && $0.split(separator: " ").contains(Substring(name)) }.count == 1)
        #expect(allowedLines.contains("seccomp deny \(other) -> ENOSYS"))

        let denied = try Self.plan(", deny: [\(name)]")
        #expect(!denied.allowed.contains(name))
        #expect(denied.enosys == [other])
        #expect(denied.denied.filter { $0.name == name }.map(\.reason) == ["denied by the manifest"])
        #expect(try Self.lines(", deny: [\(name)]").filter { $0.hasPrefix("seccomp deny \(name) ") }
            == ["seccomp deny \(name) -> EPERM # denied by the manifest"])
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

    /// The overlay is the three rule families, in order: clone's namespace flags, ioctl's
    /// terminal requests and the set-id modes.
    @Test func argumentDenialsAreExact() throws {
        let plan = try Self.plan()
        #expect(plan.argumentDenials
            == ArgumentRules.cloneNamespaceDenials + ArgumentRules.ioctlDenials + ArgumentRules.setIDDenials)
        #expect(plan.argumentDenials.filter { $0.syscall == "clone" }.map(\.description) == [
            "clone(a0 & 0x20000 == 0x20000) # no new namespaces (CLONE_NEWNS)",
            "clone(a0 & 0x2000000 == 0x2000000) # no new namespaces (CLONE_NEWCGROUP)",
            "clone(a0 & 0x4000000 == 0x4000000) # no new namespaces (CLONE_NEWUTS)",
            "clone(a0 & 0x8000000 == 0x8000000) # no new namespaces (CLONE_NEWIPC)",
            "clone(a0 & 0x10000000 == 0x10000000) # no new namespaces (CLONE_NEWUSER)",
            "clone(a0 & 0x20000000 == 0x20000000) # no new namespaces (CLONE_NEWPID)",
            "clone(a0 & 0x40000000 == 0x40000000) # no new namespaces (CLONE_NEWNET)",
        ])
        #expect(plan.argumentDenials.filter { $0.syscall == "ioctl" }.map(\.description) == [
            "ioctl(a1 & 0xffffffff == 0x5412) # TIOCSTI injects terminal input",
            "ioctl(a1 & 0xffffffff == 0x541c) # TIOCLINUX drives the console",
            "ioctl(a1 & 0xffffffff == 0x5423) # TIOCSETD loads line disciplines, old kernel attack surface",
            "ioctl(a1 & 0xffffffff == 0x540a) # TCXONC (tcflow) suspends the shared terminal's output, and with it the supervisor",
        ])
        // 3 set-id values × (7 mode-only syscalls + open and openat × O_CREAT and O_TMPFILE).
        #expect(ArgumentRules.setIDDenials.count == 33)
        #expect(plan.argumentDenials.count == 7 + 4 + 33)
    }

    /// In clone's flags 0x80 is part of the exit signal (CLONE_NEWTIME exists only for
    /// clone3): a rule on it would refuse ordinary clones with that signal.
    @Test func cloneHasNoRuleOnTheExitSignal() throws {
        let clone = try Self.plan().argumentDenials.filter { $0.syscall == "clone" }
        #expect(clone.count == 7)
        #expect(!clone.contains { $0.note.contains("CLONE_NEWTIME") })
        for rule in clone {
            #expect(rule.comparisons.allSatisfy { $0.mask & 0xFF == 0 }, "\(rule)")
        }
    }

    /// Every syscall that sets a mode, with the argument holding it, and for open/openat the
    /// flags argument that must ask to create a file.
    static let setIDModeArgument: [String: Int] = [
        "chmod": 1, "fchmod": 1, "fchmodat": 2, "fchmodat2": 2, "creat": 1, "mknod": 1, "mknodat": 2,
        "open": 2, "openat": 3,
    ]

    @Test func setIDDenialsCoverEveryModeSyscallAndValue() throws {
        let rules = try Self.plan().argumentDenials.filter { $0.note == "no set-id files" }
        #expect(rules == ArgumentRules.setIDDenials)
        #expect(Set(rules.map(\.syscall)) == Set(Self.setIDModeArgument.keys))
        for (name, modeArgument) in Self.setIDModeArgument {
            let forName = rules.filter { $0.syscall == name }
            let creates = name == "open" || name == "openat"
            #expect(forName.count == (creates ? 6 : 3), "\(name)")
            // Each rule compares the mode's set-id bits (mask 0o6000) with one non-zero value.
            var values: [UInt64] = []
            for rule in forName {
                let mode = rule.comparisons.filter { $0.argument == modeArgument }
                #expect(mode.count == 1 && mode[0].mask == 0o6000, "\(rule)")
                values += mode.map(\.value)
                #expect(rule.comparisons.count == (creates ? 2 : 1), "\(rule)")
            }
            #expect(values.sorted() == (creates ? [0o2000, 0o2000, 0o4000, 0o4000, 0o6000, 0o6000]
                                                : [0o2000, 0o4000, 0o6000]), "\(name)")
        }
    }

    @Test func concreteSetIDRules() throws {
        let rules = try Self.plan().argumentDenials
        // fchmodat(dirfd, path, mode): the mode is argument 2.
        #expect(rules.contains(ArgumentRule("fchmodat", [Comparison(argument: 2, mask: 0o6000, equals: 0o4000)],
                                            note: "no set-id files")))
        #expect(rules.contains(ArgumentRule("fchmodat", [Comparison(argument: 2, mask: 0o6000, equals: 0o6000)],
                                            note: "no set-id files")))
        // chmod(path, mode) and fchmod(fd, mode): argument 1.
        #expect(rules.contains(ArgumentRule("chmod", [Comparison(argument: 1, mask: 0o6000, equals: 0o2000)],
                                            note: "no set-id files")))
        // openat(dirfd, path, flags, mode): O_CREAT (0o100) in argument 2, the mode in argument 3.
        #expect(rules.contains(ArgumentRule("openat", [
            Comparison(argument: 2, mask: 0o100, equals: 0o100),
            Comparison(argument: 3, mask: 0o6000, equals: 0o4000),
        ], note: "no set-id files")))
        // …and O_TMPFILE's own bit (0o20000000, without O_DIRECTORY).
        #expect(rules.contains(ArgumentRule("openat", [
            Comparison(argument: 2, mask: 0o20000000, equals: 0o20000000),
            Comparison(argument: 3, mask: 0o6000, equals: 0o2000),
        ], note: "no set-id files")))
        // open(path, flags, mode): flags in argument 1, mode in 2.
        #expect(rules.contains(ArgumentRule("open", [
            Comparison(argument: 1, mask: 0o100, equals: 0o100),
            Comparison(argument: 2, mask: 0o6000, equals: 0o6000),
        ], note: "no set-id files")))
        let printed = try Self.lines()
        #expect(printed.contains("seccomp deny-if fchmodat(a2 & 0xc00 == 0x800) # no set-id files -> EPERM"))
        #expect(printed.contains("seccomp deny-if openat(a2 & 0x40 == 0x40, a3 & 0xc00 == 0x800) # no set-id files -> EPERM"))
        #expect(printed.contains("seccomp deny-if openat(a2 & 0x400000 == 0x400000, a3 & 0xc00 == 0xc00) # no set-id files -> EPERM"))
    }

    /// Syscalls under set-id rules stay allowed (the rules sit in the deny overlay).
    @Test func setIDSyscallsStayAllowed() throws {
        let plan = try Self.plan()
        for name in Self.setIDModeArgument.keys { #expect(plan.allowed.contains(name), "\(name)") }
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

        let tiocsetd = try #require(plan.argumentDenials.first { $0.note.hasPrefix("TIOCSETD") })
        #expect(tiocsetd.syscall == "ioctl")
        #expect(tiocsetd.comparisons == [Comparison(argument: 1, mask: 0xFFFF_FFFF, equals: 0x5423)])
    }

    /// Arguments the kernel reads as `int`/`unsigned int` are never compared on all 64 bits.
    @Test func intArgumentsAreComparedOnTheirLow32Bits() throws {
        let plan = try Self.plan()
        var intArguments: [String: Set<Int>] = ["socket": [0, 1, 2], "socketpair": [0], "personality": [0], "ioctl": [1],
                                                "open": [1], "openat": [2]]
        for (name, argument) in Self.setIDModeArgument { intArguments[name, default: []].insert(argument) }
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
        var argumentDenials: Set<String> = Change.defaultArgumentDenials
        var enosys: [String] = ["clone3", "openat2"]
        static let defaultArgumentDenials: Set<String> = ["clone", "ioctl", "chmod", "fchmod", "fchmodat", "fchmodat2",
                                                          "creat", "mknod", "mknodat", "open", "openat"]
        var testDescription: String { yaml }
    }

    static let changes: [Change] = [
        Change(yaml: "deny: [memfd_create]", notAllowed: ["memfd_create"],
               denied: [("memfd_create", "denied by the manifest")]),
        Change(yaml: "deny: [ioctl]", notAllowed: ["ioctl"], denied: [("ioctl", "denied by the manifest")],
               argumentDenials: Change.defaultArgumentDenials.subtracting(["ioctl"])),
        Change(yaml: "deny: [clone]", notAllowed: ["clone"], denied: [("clone", "denied by the manifest")],
               argumentDenials: Change.defaultArgumentDenials.subtracting(["clone"])),
        Change(yaml: "deny: [chmod, openat]", notAllowed: ["chmod", "openat"],
               denied: [("chmod", "denied by the manifest"), ("openat", "denied by the manifest")],
               argumentDenials: Change.defaultArgumentDenials.subtracting(["chmod", "openat"])),
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
        Change(yaml: "allow: [clone3]", allowed: ["clone3"], notDenied: ["clone3"], enosys: ["openat2"]),
        Change(yaml: "deny: [clone3]", notAllowed: ["clone3"],
               denied: [("clone3", "denied by the manifest")], enosys: ["openat2"]),
        Change(yaml: "allow: [openat2]", allowed: ["openat2"], notDenied: ["openat2"], enosys: ["clone3"]),
        Change(yaml: "deny: [openat2]", notAllowed: ["openat2"],
               denied: [("openat2", "denied by the manifest")], enosys: ["clone3"]),
        Change(yaml: "allow: [clone3, openat2]", allowed: ["clone3", "openat2"], notDenied: ["clone3", "openat2"],
               enosys: []),
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
        // ENOSYS for clone3 and openat2 stays ENOSYS whatever the default action.
        #expect(lines.contains("seccomp deny clone3 -> ENOSYS"))
        #expect(lines.contains("seccomp deny openat2 -> ENOSYS"))
    }
}

import CorralProfile

/// The syscall policy, by name, before it is lowered to BPF by libseccomp.
///
/// Lowered as two stacked filters (the kernel applies the strictest answer of all):
/// 1. the allow-list: `allowed` unconditionally, `conditionalAllows` by argument, `enosys`
///    with ENOSYS, everything else `onDeny`; other architectures (i386, x32) kill the process;
/// 2. the argument deny overlay: `argumentDenials` (default allow), for syscalls that filter 1
///    allows unconditionally but whose dangerous arguments must be refused.
/// Hot syscalls stay unconditional, so the kernel's per-syscall allow cache keeps them cheap.
public struct SeccompPlan: Sendable, Hashable {
    public var base: SyscallBase
    public var allowed: [String]
    public var conditionalAllows: [ArgumentRule]
    public var argumentDenials: [ArgumentRule]
    public var enosys: [String]
    /// Names the manifest removed from the base, plus the base's reasoned denials.
    public var denied: [(name: String, reason: String)]
    public var onDeny: DenyAction
    /// `syscalls.allow` and `syscalls.deny` as the manifest gave them. The lowering builds the
    /// allow-list from the base and the manifest's allows only, and puts the manifest's denials
    /// in a third, small program (the kernel applies the strictest answer, so the effect is the
    /// same); the base programs are then shared by every profile with the same allows.
    public var manifestAllows: [String] = []
    public var manifestDenials: [String] = []
    /// `syscalls.watch`, sorted: lowered to a separate, last program whose action for these
    /// calls is SECCOMP_RET_USER_NOTIF (everything else allowed), installed with a listener
    /// that the supervisor serves. The programs above still decide first: a call they deny
    /// never reaches the supervisor (ERRNO and KILL outrank USER_NOTIF).
    public var watched: [String] = []

    public static func == (lhs: SeccompPlan, rhs: SeccompPlan) -> Bool {
        lhs.base == rhs.base && lhs.allowed == rhs.allowed && lhs.conditionalAllows == rhs.conditionalAllows
            && lhs.argumentDenials == rhs.argumentDenials && lhs.enosys == rhs.enosys
            && lhs.denied.map(\.name) == rhs.denied.map(\.name) && lhs.onDeny == rhs.onDeny
            && lhs.watched == rhs.watched
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(allowed)
        hasher.combine(conditionalAllows)
        hasher.combine(argumentDenials)
    }
}

/// A rule on one syscall's arguments; all comparisons must hold.
public struct ArgumentRule: Sendable, Hashable, CustomStringConvertible {
    public var syscall: String
    public var comparisons: [Comparison]
    /// Why the rule exists, shown by `corral explain`.
    public var note: String

    public init(_ syscall: String, _ comparisons: [Comparison], note: String) {
        self.syscall = syscall
        self.comparisons = comparisons
        self.note = note
    }

    public var description: String {
        "\(syscall)(\(joinedStrings(comparisons.map(\.description), separator: ", "))) # \(note)"
    }
}

/// `(argument & mask) == value`. A mask of 0xFFFF_FFFF compares only the low 32 bits, as
/// the kernel does for `int`/`unsigned int` arguments: comparing all 64 bits would let a
/// caller slip past a deny rule by setting high bits the kernel ignores (CVE-2019-10063).
public struct Comparison: Sendable, Hashable, CustomStringConvertible {
    public var argument: Int
    public var mask: UInt64
    public var value: UInt64

    public init(argument: Int, mask: UInt64 = .max, equals value: UInt64) {
        self.argument = argument
        self.mask = mask
        self.value = value
    }

    public var description: String {
        let hex = "0x" + String(value, radix: 16)
        if mask == .max { return "a\(argument) == \(hex)" }
        return "a\(argument) & 0x\(String(mask, radix: 16)) == \(hex)"
    }
}

// MARK: - The fixed argument rules

/// Argument rules every `default` plan carries. Numbers are Linux's generic values
/// (identical on x86_64 and aarch64).
public enum ArgumentRules {
    static let low32: UInt64 = 0xFFFF_FFFF

    /// Socket families and types a sandboxed program may create: unix, inet and inet6
    /// stream/datagram, and netlink route (getaddrinfo and `ip` read interfaces through it).
    /// No raw, packet, netlink-audit, vsock, bluetooth or other families.
    public static let socketAllows: [ArgumentRule] = {
        let unix: UInt64 = 1, inet: UInt64 = 2, inet6: UInt64 = 10, netlink: UInt64 = 16
        let stream: UInt64 = 1, dgram: UInt64 = 2, seqpacket: UInt64 = 5
        let tcp: UInt64 = 6, udp: UInt64 = 17
        var rules: [ArgumentRule] = []
        func allow(_ family: UInt64, _ type: UInt64, _ protocol: UInt64, _ note: String) {
            rules.append(ArgumentRule("socket", [
                Comparison(argument: 0, mask: low32, equals: family),
                Comparison(argument: 1, mask: 0xF, equals: type),
                Comparison(argument: 2, mask: low32, equals: `protocol`),
            ], note: note))
        }
        for type in [stream, dgram, seqpacket] { allow(unix, type, 0, "unix sockets") }
        // The protocol is pinned too: 0 or the one the type implies (no MPTCP, SCTP, UDP-Lite).
        for (family, name) in [(inet, "inet"), (inet6, "inet6")] {
            allow(family, stream, 0, "\(name) sockets")
            allow(family, stream, tcp, "\(name) sockets")
            allow(family, dgram, 0, "\(name) sockets")
            allow(family, dgram, udp, "\(name) sockets")
        }
        rules.append(ArgumentRule("socket", [
            Comparison(argument: 0, mask: low32, equals: netlink),
            Comparison(argument: 2, mask: low32, equals: 0),
        ], note: "netlink route"))
        rules.append(ArgumentRule("socketpair", [Comparison(argument: 0, mask: low32, equals: unix)],
                                  note: "unix socket pairs"))
        return rules
    }()

    /// Execution domains that change nothing security-relevant (Docker's list): query,
    /// PER_LINUX, PER_LINUX32, UNAME26 and their combination.
    public static let personalityAllows: [ArgumentRule] = [0x0, 0x8, 0x20000, 0x20008, 0xFFFF_FFFF].map {
        ArgumentRule("personality", [Comparison(argument: 0, mask: low32, equals: $0)],
                     note: "harmless execution domain")
    }

    /// clone flags that create namespaces: a sandboxed program must not build its own
    /// namespaces (user namespaces are kernel attack surface). CLONE_NEWTIME exists only for
    /// clone3 (in clone's flags 0x80 is part of the exit signal), and clone3 gets ENOSYS.
    public static let cloneNamespaceDenials: [ArgumentRule] = [
        (0x0002_0000, "CLONE_NEWNS"), (0x0200_0000, "CLONE_NEWCGROUP"), (0x0400_0000, "CLONE_NEWUTS"),
        (0x0800_0000, "CLONE_NEWIPC"), (0x1000_0000, "CLONE_NEWUSER"), (0x2000_0000, "CLONE_NEWPID"),
        (0x4000_0000, "CLONE_NEWNET"),
    ].map { flag, name in
        ArgumentRule("clone", [Comparison(argument: 0, mask: UInt64(flag), equals: UInt64(flag))],
                     note: "no new namespaces (\(name))")
    }

    /// Terminal ioctls that inject input or drive the console (CVE-2017-5226 and kin).
    public static let ioctlDenials: [ArgumentRule] = [
        ArgumentRule("ioctl", [Comparison(argument: 1, mask: low32, equals: 0x5412)], note: "TIOCSTI injects terminal input"),
        ArgumentRule("ioctl", [Comparison(argument: 1, mask: low32, equals: 0x541C)], note: "TIOCLINUX drives the console"),
        ArgumentRule("ioctl", [Comparison(argument: 1, mask: low32, equals: 0x5423)],
                     note: "TIOCSETD loads line disciplines, old kernel attack surface"),
        ArgumentRule("ioctl", [Comparison(argument: 1, mask: low32, equals: 0x540A)],
                     note: "TCXONC (tcflow) suspends the shared terminal's output, and with it the supervisor"),
    ]

    /// Set-user-ID and set-group-ID bits on files the sandbox creates or changes. A run whose
    /// uid maps to the caller's (root's, for a run as root) could otherwise leave a set-id
    /// program in a write path for anyone on the host to execute; nosuid protects only the
    /// sandbox. One rule per non-zero value of `mode & 06000` (seccomp compares for equality).
    public static let setIDDenials: [ArgumentRule] = {
        let setID: UInt64 = 0o6000, creat: UInt64 = 0o100, tmpfile: UInt64 = 0o20000000
        var rules: [ArgumentRule] = []
        for bits in [0o4000, 0o2000, 0o6000] as [UInt64] {
            let mode = { (argument: Int) in Comparison(argument: argument, mask: setID, equals: bits) }
            for (name, argument) in [("chmod", 1), ("fchmod", 1), ("fchmodat", 2), ("fchmodat2", 2), ("creat", 1),
                                     ("mknod", 1), ("mknodat", 2)] {
                rules.append(ArgumentRule(name, [mode(argument)], note: "no set-id files"))
            }
            for (name, flags, modeArgument) in [("open", 1, 2), ("openat", 2, 3)] {
                for flag in [creat, tmpfile] {
                    rules.append(ArgumentRule(name, [Comparison(argument: flags, mask: flag, equals: flag), mode(modeArgument)],
                                              note: "no set-id files"))
                }
            }
        }
        return rules
    }()

    /// Syscalls whose unconditional allow is replaced by the rules above.
    public static let narrowedByArguments: Set<String> = ["socket", "socketpair", "personality"]
}

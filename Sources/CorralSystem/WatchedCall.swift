import CorralProfile

/// One watched syscall (`syscalls.watch`) as the supervisor saw it: who made it, its decoded
/// arguments, and what the supervisor answered.
///
/// The arguments are what the caller's memory held when the supervisor read it. For a
/// single-threaded caller that is what the kernel then acts on; another thread of the caller
/// could change the memory between the supervisor's read and the kernel's own, so a record
/// is evidence, not proof (seccomp_unotify(2), "Caveats"). A `deny` answer is reliable: the
/// call does not happen.
///
/// Strings come from the sandboxed program: print them through `description` (control
/// characters escaped), never raw. Invalid UTF-8 shows as U+FFFD.
extension WatchedCall {
    /// The bytes of its strings (what dominates its size in memory and in the report).
    var approximateBytes: Int {
        64 + (path?.utf8.count ?? 0) + (newPath?.utf8.count ?? 0) + (argv?.reduce(0) { $0 + $1.utf8.count + 4 } ?? 0)
            + (address?.path?.utf8.count ?? 0)
    }
}

public struct WatchedCall: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The syscall's name (`openat`), or `syscall N` for a number the plan did not watch.
    public var syscall: String
    /// The caller, in the supervisor's pid namespace.
    public var pid: Int32
    /// Seconds since the run started (the supervisor's monotonic clock), at receipt.
    public var time: Double
    public var decision: WatchDecision

    // MARK: Decoded arguments (nil where the syscall has none; see `WatchableSyscalls.recorded`)

    /// The directory of a relative `path` in `*at` calls; -100 is AT_FDCWD.
    public var dirfd: Int32?
    /// The program executed, the file opened, created or removed, the old name of a rename,
    /// the target text of a symlink.
    public var path: String?
    /// The new name of a rename or link, the symlink's own path.
    public var newPath: String?
    /// execve's argument vector, cut after `SyscallDecoder.maxArguments` entries.
    public var argv: [String]?
    /// Flags by name, `|`-separated (`O_RDONLY|O_CLOEXEC`, `AT_REMOVEDIR`, `SOCK_STREAM|SOCK_CLOEXEC`);
    /// bits without a name as one hexadecimal remainder.
    public var flags: String?
    /// The permission bits of a created file or folder, or of chmod.
    public var mode: UInt32?
    /// The socket of connect, bind, listen and accept.
    public var fd: Int32?
    /// The address of connect and bind.
    public var address: SocketAddress?
    /// socket()'s address family (`inet`, `inet6`, `unix`, `netlink`, or `AF N`).
    public var family: String?
    /// The pid that kill signals or ptrace acts on.
    public var target: Int32?
    public var signal: Int32?
    /// The remaining integer: listen's backlog, socket's protocol, truncate's length, ptrace's request.
    public var number: Int64?
    /// True when a string or argv was cut at Corral's bounds.
    public var truncated: Bool?
    /// What could not be read from the caller, e.g. `path: EFAULT`; what is known is still recorded.
    public var unreadable: String?

    public init(syscall: String, pid: Int32, time: Double, decision: WatchDecision = .continue) {
        self.syscall = syscall
        self.pid = pid
        self.time = time
        self.decision = decision
    }

    /// `openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC) pid 412 -> continue`, with every
    /// string escaped so it cannot drive a terminal.
    public var description: String {
        var parts: [String] = []
        if let dirfd { parts.append(dirfd == -100 ? "AT_FDCWD" : "dirfd \(dirfd)") }
        if let fd { parts.append("fd \(fd)") }
        if let family { parts.append(Self.quoted(family)) }
        if let path { parts.append(Self.quoted(path)) }
        if let newPath { parts.append(Self.quoted(newPath)) }
        if let argv { parts.append("[" + argv.map(Self.quoted).joined(separator: ", ") + "]") }
        if let address { parts.append(address.description) }
        if let target { parts.append("pid \(target)") }
        if let signal { parts.append("signal \(signal)") }
        if let number { parts.append("\(number)") }
        if let flags { parts.append(flags) }
        if let mode { parts.append("0" + String(mode, radix: 8)) }
        var text = "\(syscall)(\(parts.joined(separator: ", "))) pid \(pid) -> \(decision)"
        if truncated == true { text += " (truncated)" }
        if let unreadable { text += " (unreadable: \(CorralError.printable(unreadable)))" }
        return text
    }

    /// `"text"` with `"` and `\` escaped, then control characters as `\xNN`.
    static func quoted(_ text: String) -> String {
        var escaped = ""
        for scalar in text.unicodeScalars {
            if scalar == "\"" || scalar == "\\" { escaped.unicodeScalars.append("\\") }
            escaped.unicodeScalars.append(scalar)
        }
        return "\"" + CorralError.printable(escaped) + "\""
    }
}

/// The supervisor's answer to a watched call.
public enum WatchDecision: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The call goes on as if it had not been watched (SECCOMP_USER_NOTIF_FLAG_CONTINUE); the
    /// kernel's own checks (Landlock, permissions, the mount layout) still apply.
    case `continue`
    /// The call fails with this errno (1...4095) without running. Anything else is a
    /// programmer error and traps: an error of 0 would fake the call's success.
    case deny(errno: Int32)

    public var description: String {
        switch self {
        case .continue: "continue"
        case .deny(let errno): "deny " + (ErrnoNames.name(of: errno) ?? "errno \(errno)")
        }
    }

    private enum CodingKeys: String, CodingKey { case kind, errno }

    /// `{"kind": "continue"}` or `{"kind": "deny", "errno": "EACCES"}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .continue:
            try container.encode("continue", forKey: .kind)
        case .deny(let errno):
            try container.encode("deny", forKey: .kind)
            try container.encode(ErrnoNames.name(of: errno) ?? String(errno), forKey: .errno)
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        guard try container.decode(String.self, forKey: .kind) == "deny" else {
            self = .continue
            return
        }
        let name = try container.decode(String.self, forKey: .errno)
        guard let errno = ErrnoNames.value(named: name) ?? Int32(name) else {
            throw DecodingError.dataCorruptedError(forKey: .errno, in: container, debugDescription: "unknown errno \(name)")
        }
        self = .deny(errno: errno)
    }
}

/// A socket address a watched connect or bind named.
public struct SocketAddress: Sendable, Hashable, Codable, CustomStringConvertible {
    /// `inet`, `inet6`, `unix`, or `AF N` for other families.
    public var family: String
    /// inet: dotted quad; inet6: RFC 5952 text.
    public var address: String?
    public var port: UInt16?
    /// inet6's scope (interface index), when not 0.
    public var scopeID: UInt32?
    /// A unix socket's path.
    public var path: String?
    /// An abstract unix socket's name (without the leading NUL byte).
    public var abstractName: String?

    public init(family: String, address: String? = nil, port: UInt16? = nil) {
        self.family = family
        self.address = address
        self.port = port
    }

    /// `inet 127.0.0.1:8080`, `inet6 [::1]:443`, `unix "/run/x.sock"`, `unix @"name"`.
    public var description: String {
        switch family {
        case "inet": "inet \(address ?? "?"):\(port.map(String.init) ?? "?")"
        case "inet6": "inet6 [\(address ?? "?")\(scopeID.map { "%\($0)" } ?? "")]:\(port.map(String.init) ?? "?")"
        case "unix":
            if let path { "unix " + WatchedCall.quoted(path) }
            else if let abstractName { "unix @" + WatchedCall.quoted(abstractName) }
            else { "unix (unnamed)" }
        default: family
        }
    }
}

/// What the supervisor collected while watching: the first `limit` calls and how many more
/// there were (the run report stays bounded however busy the program is).
public struct WatchLog: Sendable, Hashable {
    public var calls: [WatchedCall] = []
    /// The kept calls' string bytes (paths, argv), against `SyscallWatcher.byteBudget`.
    public var bytes = 0
    /// Calls beyond the log's limit: counted, delivered to the run's observer, not kept.
    public var dropped = 0
    /// Whether the kernel took SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6+; a round trip
    /// then costs a few microseconds instead of a cross-CPU wake-up).
    public var syncWakeUp = false

    public init() {}
}

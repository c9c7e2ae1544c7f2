/// A goal manifest (version 1), decoded and validated.
///
/// Every field has a safe default. Paths are absolute and normalised (no `.`, `..` or
/// repeated `/`); relative paths in the file were resolved against the manifest's folder and
/// `~` against the home directory given to the loader. Nothing here has touched the
/// filesystem: existence and symlinks are checked when the plan is materialised.
public struct Profile: Sendable, Hashable {
    public var version: Int = 1
    public var goal: Goal
    public var run: RunSpec = RunSpec()
    public var filesystem: FilesystemSpec = FilesystemSpec()
    public var network: NetworkSpec = NetworkSpec()
    public var limits: Limits = Limits()
    public var monitor: [MonitorRule] = []
    public var syscalls: SyscallSpec = SyscallSpec()
    public var landlock: Enforcement = .required
    /// What happens to a clean run's writes.
    public var approval: ApprovalSpec = ApprovalSpec()
    /// Where the run's decisions are logged.
    public var audit: AuditSpec = AuditSpec()
    /// Where the manifest came from; used to name locations in later errors.
    public var source: ProfileSource

    public init(goal: Goal, source: ProfileSource) {
        self.goal = goal
        self.source = source
    }
}

/// The file a profile was read from and the folder relative paths resolve against.
public struct ProfileSource: Sendable, Hashable {
    /// The manifest's path as the user named it (used verbatim in messages).
    public var file: String
    /// Absolute folder of the manifest.
    public var directory: String

    public init(file: String, directory: String) {
        self.file = file
        self.directory = directory
    }
}

/// A place in a manifest: file, line and the key path (`filesystem.write[1]`).
public struct ManifestLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var keyPath: String

    public init(file: String, line: Int, keyPath: String) {
        self.file = file
        self.line = line
        self.keyPath = keyPath
    }

    /// `profiles/x.yaml:12: filesystem.write[1]`
    public var description: String { "\(file):\(line): \(keyPath)" }
}

public struct Goal: Sendable, Hashable {
    /// `[a-z0-9-]+`, at most 63 characters (it becomes the sandbox's hostname).
    public var id: String
    public var intent: String?
    public var agent: String?

    public init(id: String, intent: String? = nil, agent: String? = nil) {
        self.id = id
        self.intent = intent
        self.agent = agent
    }
}

public struct RunSpec: Sendable, Hashable {
    /// The default command; the CLI's own command overrides it. Empty when not given.
    public var command: [String] = []
    /// Working directory inside the sandbox; `nil` means `/`… unless a write path exists,
    /// in which case the first write path is used (see `CorralPlan`).
    public var workdir: PathEntry?
    public var env: EnvSpec = EnvSpec()

    public init() {}
}

public struct EnvSpec: Sendable, Hashable {
    /// Names copied from Corral's own environment when present.
    public var pass: [String] = []
    /// Fixed values, in manifest order.
    public var set: [EnvVariable] = []
    /// Names copied from Corral's environment whose values never appear in output.
    public var secrets: [String] = []

    public init() {}
}

public struct EnvVariable: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// One path of `filesystem.*` or `run.workdir`.
public struct PathEntry: Sendable, Hashable {
    /// Absolute, normalised. For `exec` entries it may hold glob characters (`*`, `?`, `[`).
    public var path: String
    /// When true a missing path is skipped (bubblewrap's `--ro-bind-try`).
    public var optional: Bool
    public var location: ManifestLocation

    public init(path: String, optional: Bool = false, location: ManifestLocation) {
        self.path = path
        self.optional = optional
        self.location = location
    }
}

public struct FilesystemSpec: Sendable, Hashable {
    /// Visible read-only.
    public var read: [PathEntry] = []
    /// Visible read-write (transactional in a later version).
    public var write: [PathEntry] = []
    /// The only files that may be executed (globs allowed). They must lie under a read path.
    public var exec: [PathEntry] = []
    /// Masked even inside an allowed tree.
    public var deny: [PathEntry] = []

    public init() {}
}

/// `limits:` — what one run may use. Each is enforced by the strongest mechanism the host
/// offers (cgroup, rlimit, the supervisor); the run report says which.
public struct Limits: Sendable, Hashable {
    /// Wall-clock limit; the whole tree is killed when it passes.
    public var wall: Duration?
    /// CPU time (user + system) of the whole tree; the tree is killed past it.
    public var cpu: Duration?
    /// A share of CPU cores, e.g. 0.5 (`50%`) or 2 (two cores): throttled, not killed.
    public var cpuQuota: Double?
    /// Memory of the whole tree in bytes (swap included where the host can tell).
    public var memory: UInt64?
    /// Processes and threads alive at once in the tree; fork fails with EAGAIN past it.
    public var processes: Int?
    /// Open descriptors per process (RLIMIT_NOFILE).
    public var openFiles: Int?
    /// Largest file a process may write, in bytes (RLIMIT_FSIZE: EFBIG / SIGXFSZ).
    public var fileSize: UInt64?
    /// Bytes of stdout and stderr together passed through; the run is stopped at the cap.
    public var output: UInt64?
    /// Whether a limit the host cannot enforce stops the run before it starts.
    public var enforce: Enforcement = .bestEffort
    public init() {}

    /// The limits that need a cgroup (memory, processes, cpu quota, and the tree's cpu time).
    public var needsCgroup: Bool { memory != nil || processes != nil || cpuQuota != nil || cpu != nil }
}

/// `monitor:` — a condition watched while the run goes, and what Corral then does.
public struct MonitorRule: Sendable, Hashable, CustomStringConvertible {
    public var id: String
    public var condition: MonitorCondition
    public var action: MonitorAction
    /// Where the rule is written (for messages).
    public var location: ManifestLocation?

    public init(id: String, condition: MonitorCondition, action: MonitorAction, location: ManifestLocation? = nil) {
        self.id = id
        self.condition = condition
        self.action = action
        self.location = location
    }

    public var description: String { "\(id): when \(condition) then \(action.rawValue)" }
}

public enum MonitorCondition: Sendable, Hashable, CustomStringConvertible {
    /// More than `count` calls of a watched syscall within `window`.
    case rate(syscall: String, count: Int, window: Duration)
    /// An execve/execveat of a path outside `filesystem.exec` (attempted; Landlock refuses it).
    case execOutsideAllowlist
    /// An attempt to create, open for writing, remove or rename a path outside `filesystem.write`.
    case writeOutsideDeclared
    case processesAbove(Int)
    case memoryAbove(UInt64)
    case outputAbove(UInt64)
    case cpuAbove(Duration)
    /// The kernel refused something because a limit was reached (fork at `processes`, an
    /// allocation at `memory`).
    case limitReached(LimitedResource)
    /// A request through the egress proxy for a host no `network.allow` entry names (the
    /// proxy refuses it; the rule decides what else happens).
    case newHost

    public var description: String {
        switch self {
        case .rate(let name, let count, let window): "rate(\(name)) > \(count)/\(Limits.format(window))"
        case .execOutsideAllowlist: "exec-outside-allowlist"
        case .writeOutsideDeclared: "write-outside-declared"
        case .processesAbove(let n): "processes > \(n)"
        case .memoryAbove(let bytes): "memory > \(Limits.format(bytes: bytes))"
        case .outputAbove(let bytes): "output > \(Limits.format(bytes: bytes))"
        case .cpuAbove(let duration): "cpu > \(Limits.format(duration))"
        case .limitReached(let resource): "limit(\(resource.rawValue))"
        case .newHost: "new-host"
        }
    }

    /// Syscalls that must be watched (seccomp user notification) to see this condition.
    public var watchedSyscalls: [String] {
        switch self {
        case .rate(let name, _, _): MonitorCondition.rateFamily(of: name)
        case .execOutsideAllowlist: ["execve", "execveat"]
        case .writeOutsideDeclared: MonitorCondition.writeSyscalls
        default: []
        }
    }

    /// What `rate(name)` counts: the syscall and its siblings that do the same thing.
    public static func rateFamily(of name: String) -> [String] {
        let families: [[String]] = [["execve", "execveat"], ["open", "openat", "creat"], ["rename", "renameat", "renameat2"],
                                    ["unlink", "unlinkat"], ["mkdir", "mkdirat"], ["link", "linkat"],
                                    ["symlink", "symlinkat"], ["chmod", "fchmodat", "fchmodat2"], ["accept", "accept4"]]
        return families.first { $0.contains(name) } ?? [name]
    }

    /// The syscalls `write-outside-declared` watches.
    public static let writeSyscalls = ["open", "openat", "creat", "unlink", "unlinkat", "rename", "renameat",
                                       "renameat2", "mkdir", "mkdirat", "rmdir", "truncate", "link", "linkat",
                                       "symlink", "symlinkat", "chmod", "fchmodat", "fchmodat2"]
}

public enum LimitedResource: String, Sendable, Hashable, CaseIterable {
    case processes, memory
}

public enum MonitorAction: String, Sendable, Hashable, CaseIterable {
    /// An event, nothing else.
    case alert
    /// Freeze the whole tree; `corral` resumes it on SIGCONT, kills it on SIGINT/SIGTERM.
    case pause
    /// Kill the whole tree.
    case kill
    /// Kill the whole tree and discard its staged writes. Every kill makes the run rogue, and
    /// a rogue run's writes are always discarded: `rollback` says so in the manifest.
    case rollback
}

extension Duration {
    /// The duration in seconds, as a Double (clocks and samples compare in these).
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension MonitorCondition {
    /// Whether the condition reads the run's resource use (its cgroup), not its calls or output.
    public var readsResources: Bool {
        switch self {
        case .processesAbove, .memoryAbove, .cpuAbove, .limitReached: true
        default: false
        }
    }
}

extension Limits {
    /// `1.5GiB`, `512MiB`, `20kB`, `7B`: the largest binary unit that divides evenly, else
    /// decimal, else bytes.
    public static func format(bytes: UInt64) -> String {
        for (unit, size) in [("GiB", UInt64(1) << 30), ("MiB", 1 << 20), ("KiB", 1 << 10),
                             ("GB", 1_000_000_000), ("MB", 1_000_000), ("kB", 1000)]
        where bytes >= size && bytes % size == 0 {
            return "\(bytes / size)\(unit)"
        }
        return "\(bytes)B"
    }

    /// `250ms`, `30s`, `5m`, `1h` — the largest unit that divides evenly.
    public static func format(_ duration: Duration) -> String {
        let ms = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if ms % 3_600_000 == 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }
}

public enum Enforcement: String, Sendable, Hashable {
    case required
    case bestEffort = "best-effort"
}

/// What a denied syscall does.
public enum DenyAction: Sendable, Hashable, CustomStringConvertible {
    /// Fail with this errno (a positive number; see `ErrnoNames`).
    case errno(Int32)
    /// Kill the whole process with SIGSYS.
    case kill

    public var description: String {
        switch self {
        case .errno(let value): ErrnoNames.name(of: value) ?? "errno \(value)"
        case .kill: "kill"
        }
    }
}

public enum SyscallBase: String, Sendable, Hashable, CaseIterable {
    /// An allow-list at least as strict as Docker's default profile.
    case `default`
}

public struct SyscallSpec: Sendable, Hashable {
    public var base: SyscallBase = .default
    /// Extra syscalls allowed on top of the base.
    public var allow: [String] = []
    /// Syscalls removed from what the base allows.
    public var deny: [String] = []
    /// What every denied syscall does (default: EPERM).
    public var onDeny: DenyAction = .errno(1)
    /// Syscalls routed to the supervisor, which records them and lets them continue (see
    /// `WatchableSyscalls`); in manifest order.
    public var watch: [String] = []

    public init() {}
}

/// When a run's writes reach the real folders. Every mode but `direct` stages them in an
/// overlay whose upper layer lives in the run's folder under Corral's state directory; a
/// rogue run's staged writes are always discarded.
public enum CommitMode: String, Sendable, Hashable, CaseIterable {
    /// A clean run is committed when it ends.
    case auto
    /// A clean run is kept pending for `corral diff`, `corral commit` or `corral discard`.
    case ask
    /// A dry run: the writes are seen by the command, then discarded.
    case never
    /// No staging: the write paths are bound read-write and changed as the command writes.
    case direct

    public var isStaged: Bool { self != .direct }
}

/// `approval:` of the manifest.
public struct ApprovalSpec: Sendable, Hashable {
    public var commit: CommitMode = .auto
    public var commitLocation: ManifestLocation?
    public init() {}
}

/// `audit:` of the manifest.
public struct AuditSpec: Sendable, Hashable {
    /// The log this manifest's runs append to; nil for the state directory's.
    public var log: String?
    public init() {}
}

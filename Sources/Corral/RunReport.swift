/// How a command ended: its own exit code, or the signal that killed it.
public enum Termination: Sendable, Hashable, Codable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    /// The CLI's exit status for it: the code itself, or 128 + the signal (as a shell and
    /// bubblewrap report it).
    public var exitStatus: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let signal): 128 + signal
        }
    }

    public var description: String {
        switch self {
        case .exited(let code): "exited \(code)"
        case .signaled(let signal): "killed by signal \(signal)"
        }
    }

    private enum CodingKeys: String, CodingKey { case kind, code, signal }

    /// `{"kind": "exited", "code": 0}` or `{"kind": "signaled", "signal": 9}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .exited(let code):
            try container.encode("exited", forKey: .kind)
            try container.encode(code, forKey: .code)
        case .signaled(let signal):
            try container.encode("signaled", forKey: .kind)
            try container.encode(signal, forKey: .signal)
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if try container.decode(String.self, forKey: .kind) == "exited" {
            self = .exited(try container.decode(Int32.self, forKey: .code))
        } else {
            self = .signaled(try container.decode(Int32.self, forKey: .signal))
        }
    }

    /// Decodes a raw wait status (as waitpid returns it).
    init(waitStatus status: Int32) {
        if status & 0x7F == 0 {
            self = .exited((status >> 8) & 0xFF)
        } else {
            self = .signaled(status & 0x7F)
        }
    }
}

/// Why a run was ended before its command finished on its own. A fixed, documented list
/// (README "Run report"); any of them makes the verdict `rogue`.
public enum KillReason: String, Sendable, Hashable, Codable, CaseIterable {
    /// `limits.wall` passed.
    case timeout
    /// `limits.cpu` passed (the tree's user+system time; or SIGXCPU from the per-process rlimit).
    case cpu
    /// `limits.memory` was reached (the kernel's OOM killer fired in the run's cgroup), or a
    /// `memory` / `limit(memory)` rule killed the run.
    case memory
    /// A `processes` / `limit(processes)` rule killed the run (the limit itself only makes
    /// fork fail with EAGAIN).
    case processes
    /// `limits.output` bytes were passed through; the rest was cut.
    case output
    /// The kernel killed the command for a forbidden syscall (SIGSYS: other architectures,
    /// or `syscalls.on_deny: kill`).
    case seccomp
    /// A monitor rule with `then: kill` fired (`killRule` names it).
    case monitor
    /// Corral received SIGINT/SIGTERM/SIGHUP and stopped the run.
    case supervisorSignal = "supervisor-signal"
}

/// `clean`: the command ended on its own. `rogue`: Corral (or the kernel, for seccomp) ended it.
public enum Verdict: String, Sendable, Hashable, Codable {
    case clean, rogue
}

/// What the run used. CPU comes from the kernel's accounting of the reaped tree; memory and
/// process peaks from the run's cgroup when it had one.
public struct ResourceUse: Sendable, Hashable, Codable {
    public var cpuUserSeconds: Double = 0
    public var cpuSystemSeconds: Double = 0
    /// The tree's peak memory (cgroup); nil without a memory cgroup.
    public var memoryPeakBytes: UInt64?
    /// The peak resident set of the largest single process (rusage), always known.
    public var largestProcessBytes: UInt64 = 0
    /// The most processes alive at once (cgroup, sampled); nil without a pids cgroup.
    public var processesPeak: UInt64?
    /// Times fork failed because of `limits.processes`; nil without a pids cgroup.
    public var processLimitHits: UInt64?
    /// OOM kills in the run's cgroup; nil without a memory cgroup.
    public var oomKills: UInt64?
    /// Bytes the command wrote to stdout and stderr (nil when they were not relayed).
    public var stdoutBytes: UInt64?
    public var stderrBytes: UInt64?

    public init() {}
}

/// How one declared limit was enforced on this host, or why it was not.
public struct LimitEnforcement: Sendable, Hashable, Codable {
    public var limit: String
    public var value: String
    /// E.g. "cgroup v1 memory.limit_in_bytes", "rlimit RLIMIT_NOFILE", "supervisor"; nil
    /// when not enforced.
    public var mechanism: String?
    /// Why it was not enforced (only when `mechanism` is nil).
    public var notEnforced: String?
}

/// A monitor rule that fired.
public struct RuleFiring: Sendable, Hashable, Codable {
    public var rule: String
    public var action: String
    public var detail: String
    /// Seconds since the command started.
    public var at: Double
}

/// The JSON run report (`corral run --report FILE`). Secrets never appear in it.
public struct RunReport: Sendable, Codable {
    public var schemaVersion = 1
    /// The run's id (its staged writes and audit entries carry it).
    public var run: String
    public var goalID: String
    public var manifest: String
    /// SHA-256 of the manifest's bytes; nil when not asked for.
    public var manifestSHA256: String?
    /// SHA-256 of the plan's text form (`corral explain`); nil when not asked for.
    public var planDigest: String?
    public var command: [String]
    public var startedAt: String
    public var durationSeconds: Double
    public var termination: Termination?
    /// What `corral` exits with: the command's code, 128+signal, or 125/126/127.
    public var exitStatus: Int32
    public var killReason: KillReason?
    /// `clean` or `rogue` (killed by Corral or the kernel).
    public var verdict: Verdict
    /// The monitor rule that ended the run, when one did.
    public var killRule: String?
    public var resources: ResourceUse
    public var limits: [LimitEnforcement]
    public var rulesFired: [RuleFiring]
    public var namespaces: [String]
    public var network: String
    /// The egress proxy's listeners and decisions (network.mode allowlist and loopback).
    public var egress: EgressSummary? = nil
    public var landlockABI: Int
    public var landlockEnforcement: String
    /// Landlock rights this kernel could not enforce (best-effort runs).
    public var landlockNotEnforced: String?
    public var seccompInstructions: [Int]
    /// Optional paths that did not exist and were skipped.
    public var skippedPaths: [String]
    /// Corral's own failure, when the run never started or broke.
    public var error: String?
    /// Where the supervisor's time went, in seconds.
    public var timings: Timings
    /// The watched syscalls (`syscalls.watch`) in the order they were answered, at most
    /// `RunOptions.watchLogLimit`; nil when nothing is watched.
    public var watched: [WatchedCall]? = nil
    /// Watched calls beyond that limit: counted, not kept.
    public var watchedDropped: Int? = nil
    /// What happened to the run's staged writes; nil when it staged none.
    public var transaction: TransactionSummary? = nil

    public struct Timings: Sendable, Codable {
        /// Plan compiled (host probe included). From here to the command's execve, the
        /// sandbox's init builds its namespaces in parallel: `compile` and `materialise` are
        /// parts of `launch`.
        public var compile: Double
        /// Paths resolved, Landlock ruleset built, seccomp programs loaded.
        public var materialise: Double
        /// clone → the command executed.
        public var launch: Double
        /// The command's run, until it ended.
        public var run: Double
    }
}

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

/// Why Corral ended a run itself. A fixed, documented list (README "Run report").
public enum KillReason: String, Sendable, Hashable, Codable {
    /// `limits.wall` passed.
    case timeout
    /// Corral received SIGINT/SIGTERM/SIGHUP and stopped the run.
    case supervisorSignal = "supervisor-signal"
}

/// The JSON run report (`corral run --report FILE`). Secrets never appear in it.
public struct RunReport: Sendable, Codable {
    public var schemaVersion = 1
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
    public var namespaces: [String]
    public var network: String
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

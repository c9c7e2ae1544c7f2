import CorralAudit
import Logging
@_exported import CorralPlan
@_exported import CorralProfile
@_exported import CorralSystem

/// A manifest read from disk and validated, with its SHA-256.
public struct LoadedProfile: Sendable {
    public var profile: Profile
    public var path: String
    /// The manifest's bytes as read.
    public var contents: [UInt8]

    /// SHA-256 of the manifest's bytes.
    public func sha256() -> String { sha256Hex(contents) }

    /// The manifest's path from the root (for records that outlive the working folder).
    public var absolutePath: String { path.hasPrefix("/") ? path : HostEnvironment.currentDirectory() + "/" + path }
}

/// Options for one run.
public struct RunOptions: Sendable {
    /// The command; nil or empty uses the manifest's `run.command`.
    public var command: [String]?
    /// The caller's environment, source of `env.pass` and `env.secrets`.
    public var environment: [String: String]
    /// Descriptors for the command's stdin, stdout, stderr; -1 inherits Corral's own.
    public var stdio: [Int32] = [-1, -1, -1]
    /// Signals forwarded to the sandbox while it runs. The caller must have blocked them
    /// (see `Corral.blockForwardedSignals`); a second one kills the run.
    public var forwardSignals: [Int32] = []
    /// Whether the report carries the manifest's and the plan's SHA-256 (printing and hashing
    /// the plan costs about half a millisecond).
    public var includeDigests = true
    public var logger: Logger?
    /// Where events go as JSON lines (`--events`); nil for none.
    public var eventDescriptor: Int32?
    /// Called with every event, in order, on the supervising thread (or on the thread that
    /// reported the next event: the syscall watcher's, when a monitor rule fires). It must
    /// not block for long: events are written meanwhile.
    public var eventObserver: (@Sendable (RunEvent) -> Void)?
    /// No warnings or pause notices on stderr.
    public var quiet = false
    /// A one-line live status on stderr (the CLI turns it on for terminals).
    public var statusLine = false
    /// Relay stdout and stderr through the supervisor even without `limits.output`, to count them.
    public var relayOutput = false
    /// After a forwarded SIGINT/SIGTERM/SIGHUP, how long the run may take to end on its own
    /// before it is killed.
    public var gracePeriod: Duration = .seconds(5)
    /// Decides each watched syscall (`syscalls.watch`): `.continue` (the default when nil) or
    /// `.deny(errno:)`. Called on the watcher's thread while the caller waits: keep it quick.
    public var watchDecision: WatchDecider?
    /// Sees every watched call once it was answered, on the watcher's thread.
    public var onWatchedCall: (@Sendable (WatchedCall) -> Void)?
    /// How many watched calls the run report keeps; the rest are counted (`watchedDropped`).
    public var watchLogLimit = 1000
    /// Corral's state directory (staged writes, audit log); nil: `StateDirectory.path` of this
    /// process's environment.
    public var stateDirectory: String?

    public init(command: [String]? = nil, environment: [String: String]) {
        self.command = command
        self.environment = environment
    }
}

/// The outcome of a run: how the command ended, and the report.
public struct RunResult: Sendable {
    public var termination: Termination
    public var report: RunReport
}

/// Corral's library interface: load a profile, compile and explain it, run a command under it.
public enum Corral {
    /// Reads and validates a manifest. Relative paths resolve against its folder; `~`
    /// against `home` (default: $HOME).
    /// - Throws: `CorralError` (`profileInvalid`) whose message names the file, line and key.
    public static func loadProfile(at path: String, home: String? = nil) throws(CorralError) -> LoadedProfile {
        let bytes: [UInt8]
        do {
            bytes = try HostEnvironment.readFile(path)
        } catch {
            throw CorralError(.profileInvalid, operation: "read profile", path: path, errno: error,
                              hint: error == .noSuchFileOrDirectory ? "bundled profiles live in profiles/" : nil)
        }
        let absolute = path.hasPrefix("/") ? path : HostEnvironment.currentDirectory() + "/" + path
        // The folder: everything before the last "/" (string slicing, not split/joined, whose
        // generic metadata is instantiated at run time on this launch-critical path).
        let directory = absolute.lastIndex(of: "/").map { String(absolute[..<$0]) } ?? ""
        let text = String(decoding: bytes, as: UTF8.self)
        do {
            let profile = try ProfileLoader.load(contents: text, file: path, directory: directory.isEmpty ? "/" : directory,
                                                 home: home ?? HostEnvironment.variable("HOME"))
            return LoadedProfile(profile: profile, path: path, contents: bytes)
        } catch {
            throw CorralError(error)
        }
    }

    /// Compiles the plan for this host.
    public static func plan(_ loaded: LoadedProfile, command: [String]? = nil,
                            host: HostFacts = HostProbe().facts()) throws(CorralError) -> LaunchPlan {
        do {
            return try PlanCompiler.compile(loaded.profile, command: command, host: host)
        } catch {
            throw CorralError(error)
        }
    }

    /// SHA-256 of the plan's text form: the same plan, the same digest.
    public static func digest(of plan: LaunchPlan) -> String {
        sha256Hex(Array(plan.description.utf8))
    }

    /// Runs a command under a profile and waits for it.
    ///
    /// - Returns: the command's termination and the run report. A non-zero exit, a signal or
    ///   a policy kill is a result, not an error.
    /// - Throws: `CorralError` when the sandbox could not be set up or the command could not
    ///   be executed (stage, path and errno in the error).
    public static func run(_ loaded: LoadedProfile, options: RunOptions) async throws -> RunResult {
        try await withCheckedThrowingContinuation { continuation in
            // A thread of its own: PR_SET_PDEATHSIG follows the thread that cloned the sandbox,
            // so that thread must live exactly as long as the run.
            HostEnvironment.startThread {
                do {
                    continuation.resume(returning: try Supervisor(loaded: loaded, options: options).run())
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    /// The blocking form of `run`, for callers without an async context (the CLI: starting
    /// Swift concurrency's thread pool costs a launch about a millisecond). It runs on the
    /// calling thread, which must outlive the run: PR_SET_PDEATHSIG follows the thread that
    /// cloned the sandbox (the CLI's main thread does).
    /// - Throws: `CorralError`, as `run`.
    public static func runBlocking(_ loaded: LoadedProfile, options: RunOptions) throws(CorralError) -> RunResult {
        try Supervisor(loaded: loaded, options: options).run()
    }

    /// Blocks `signals` in the calling thread so a later run can forward them; call it early
    /// in `main`, before other threads exist.
    public static func blockForwardedSignals(_ signals: [Int32]) {
        SignalWatcher.block(signals)
    }

    /// Sockets of host daemons that act on a connecting root (or user) with that caller's
    /// authority. The network namespace does not cover path-named unix sockets and Landlock
    /// (ABI 7) cannot refuse their connect, so they are masked wherever a read path shows them.
    public static let daemonSockets = [
        "/run/docker.sock", "/var/run/docker.sock", "/run/containerd/containerd.sock", "/run/podman/podman.sock",
        "/run/dbus/system_bus_socket", "/run/systemd/private", "/run/systemd/notify", "/run/snapd.socket",
        "/run/libvirt/libvirt-sock", "/run/crio/crio.sock",
    ]

    // MARK: - Helpers

}

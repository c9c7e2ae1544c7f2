import CorralPlan
import CorralSystem
import Synchronization

/// What the supervisor's thread and the syscall watcher's thread share about one run: the
/// monitor rules' state, how the run is being ended (the first reason wins), whether it is
/// paused, and the rules that fired. Either thread may end or pause the run.
final class RunControl: Sendable {
    private struct State {
        var monitor: MonitorEngine
        var killReason: KillReason?
        var killRule: String?
        var paused = false
        var firings: [RuleFiring] = []
        /// A pause a watched call asked for; the supervisor's thread carries it out (the
        /// caller waits killable-only in the kernel, so it cannot freeze before it is answered).
        var pendingPause: (rule: MonitorRule, detail: String)?
    }

    /// Readable when the supervisor's thread has something to do for the watcher's.
    let wake: OutputPipe

    private let state: Mutex<State>
    /// `MonitorEngine.judgedSyscalls`, read without the lock on the watcher's hot path.
    private let judgedSyscalls: Set<String>
    let events: EventLog
    let meter: (any RunMeter)?
    let quiet: Bool
    /// Set once the sandbox exists (before "go").
    private let process = Mutex<SandboxProcess?>(nil)
    private let startedAt = Atomic<UInt64>(0)
    /// The launcher's own PATH candidates, tried before the command runs: not the command's
    /// doing, so no rule judges them (cleared once the command runs).
    private let launcherExecs = Mutex<Set<String>>([])

    init(monitor: MonitorEngine, events: EventLog, meter: (any RunMeter)?, quiet: Bool) throws(CorralError) {
        state = Mutex(State(monitor: monitor))
        judgedSyscalls = monitor.judgedSyscalls
        wake = try OutputPipe()
        self.events = events
        self.meter = meter
        self.quiet = quiet
    }

    func attach(_ sandbox: SandboxProcess) { process.withLock { $0 = sandbox } }

    /// The command started now (rule firings are timed from here).
    func started(at seconds: Double) {
        startedAt.store(seconds.bitPattern, ordering: .relaxed)
        launcherExecs.withLock { $0 = [] }
    }

    func launching(candidates: [String]) { launcherExecs.withLock { $0 = Set(candidates) } }

    var killReason: KillReason? { state.withLock { $0.killReason } }
    var killRule: String? { state.withLock { $0.killRule } }
    var isPaused: Bool { state.withLock { $0.paused } }
    var firings: [RuleFiring] { state.withLock { $0.firings } }
    var samplesResources: Bool { state.withLock { $0.monitor.samplesResources } }

    /// Ends the run: the whole tree is killed (cgroup first, then init). The first reason wins.
    func end(_ reason: KillReason, rule: String? = nil) {
        let first = state.withLock { state -> Bool in
            guard state.killReason == nil else { return false }
            state.killReason = reason
            state.killRule = rule
            return true
        }
        guard first else { return }
        events.emit(.kill) { $0.reason = reason.rawValue; $0.rule = rule }
        meter?.killAll()
        process.withLock { $0?.killTree() }
    }

    /// Thaws a paused run; false when it was not paused.
    func resume() -> Bool {
        let wasPaused = state.withLock { state -> Bool in
            defer { state.paused = false }
            return state.paused
        }
        guard wasPaused else { return false }
        meter?.thaw()
        events.emit(.resume)
        return true
    }

    // MARK: - Rules

    /// Resource samples (from the supervisor's thread); true when the run is being ended.
    func sample(processes: UInt64?, memory: UInt64?, output: UInt64, cpuSeconds: Double?) -> Bool {
        let firings = state.withLock { state -> [MonitorEngine.Firing] in
            guard !state.paused else { return [] }
            return state.monitor.sample(processes: processes, memory: memory, output: output, cpuSeconds: cpuSeconds)
        }
        return act(on: firings)
    }

    func limitReached(_ resource: LimitedResource, count: UInt64) -> Bool {
        act(on: state.withLock { $0.monitor.limitReached(resource, count: count) })
    }

    /// A watched call (from the watcher's thread, while the caller waits): rules see it
    /// first; a call that makes a rule kill the run is refused (EPERM) as the tree is killed.
    func decide(_ call: WatchedCall, _ now: Double) -> WatchDecision {
        if call.syscall == "execve", let path = call.path, launcherExecs.withLock({ $0.contains(path) }) {
            return .continue
        }
        guard judgedSyscalls.contains(call.syscall) else { return .continue }
        let subject = MonitorEngine.Call(call)
        let firings = state.withLock { $0.monitor.call(subject, at: now) }
        return act(on: firings, onWatcherThread: true) ? .deny(errno: 1) : .continue
    }

    /// A decision of the egress proxy (from the supervisor's thread); true when a rule ended
    /// the run. Malformed input and the proxy's own limits are not requests for a host.
    func network(_ decision: NetworkDecision) -> Bool {
        guard decision.decision != .error, let host = decision.host else { return false }
        let now = HostEnvironment.monotonicSeconds()
        let firings = state.withLock { state -> [MonitorEngine.Firing] in
            guard !state.paused else { return [] }
            return state.monitor.network(host: host, port: decision.port ?? 0, unlisted: decision.hostUnlisted, at: now)
        }
        return act(on: firings)
    }

    /// On the supervisor's thread, when `wake` is readable: a pause a watched call asked for.
    func carryOutRequests() {
        while let bytes = wake.readAvailable(), !bytes.isEmpty {}
        guard let request = state.withLock({ state -> (rule: MonitorRule, detail: String)? in
            defer { state.pendingPause = nil }
            return state.pendingPause
        }) else { return }
        pause(request.rule, request.detail)
    }

    /// Carries out firings in order; true once one ended the run.
    private func act(on firings: [MonitorEngine.Firing], onWatcherThread: Bool = false) -> Bool {
        for firing in firings {
            let rule = firing.rule
            // A rule can fire during the launch (the command's own exec), before the start is
            // known: that is time 0.
            let started = Double(bitPattern: startedAt.load(ordering: .relaxed))
            let at = started == 0 ? 0 : HostEnvironment.monotonicSeconds() - started
            state.withLock { $0.firings.append(RuleFiring(rule: rule.id, action: rule.action.rawValue,
                                                           detail: firing.detail, at: max(0, at))) }
            events.emit(.rule) { $0.rule = rule.id; $0.action = rule.action.rawValue; $0.detail = firing.detail }
            switch rule.action {
            case .alert:
                continue
            case .kill, .rollback:  // the rogue verdict discards the staged writes
                end(Supervisor.killReason(for: rule.condition), rule: rule.id)
                return true
            case .pause:
                if onWatcherThread {
                    state.withLock { $0.pendingPause = (rule, firing.detail) }
                    HostEnvironment.writeAll(wake.writeDescriptor, [1])
                    continue
                }
                if !pause(rule, firing.detail) { return true }
            }
        }
        return false
    }

    /// Freezes the run; false when it could not and the run was ended instead.
    @discardableResult
    private func pause(_ rule: MonitorRule, _ detail: String) -> Bool {
        if state.withLock({ $0.paused }) || killReason != nil { return true }
        guard meter?.freeze() == true else {
            // No freezer here: a pause the host cannot honour ends the run instead.
            end(Supervisor.killReason(for: rule.condition), rule: rule.id)
            return false
        }
        state.withLock { $0.paused = true }
        events.emit(.pause) { $0.rule = rule.id }
        if !quiet {
            // The detail may hold the sandbox's own bytes (a path): escaped, never raw.
            HostEnvironment.writeStandardError(CorralError.printable(
                "corral: run paused by rule \(rule.id) (\(detail)); SIGCONT to corral (pid \(HostEnvironment.processID)) resumes it, SIGTERM ends it") + "\n")
        }
        return true
    }
}

extension MonitorEngine.Call {
    /// A path as the caller's kernel would resolve its start: relative to its directory
    /// descriptor or its current folder (read from /proc/PID, which shows them as the
    /// sandbox sees them), and `/proc/self/fd/N…` through that descriptor. Read after the
    /// fact, like the arguments themselves: the rules observe, the kernel layers decide.
    static func resolve(_ path: String?, dirfd: Int32?, pid: Int32) -> String? {
        guard let path, !path.isEmpty else { return path }
        var text = path
        for selfPrefix in ["/proc/self/", "/proc/thread-self/"] where text.hasPrefix(selfPrefix) {
            text = "/proc/\(pid)/" + text.dropFirst(selfPrefix.count)
        }
        let fdPrefix = "/proc/\(pid)/fd/"
        if text.hasPrefix(fdPrefix) {
            let rest = text.dropFirst(fdPrefix.count)
            let number = rest.prefix { $0 != "/" }
            if let target = HostEnvironment.readLink(fdPrefix + number), target.hasPrefix("/") {
                text = target + rest.dropFirst(number.count)
            }
        }
        guard !text.hasPrefix("/") else { return text }
        let base = (dirfd == nil || dirfd == -100)
            ? HostEnvironment.readLink("/proc/\(pid)/cwd") : HostEnvironment.readLink("/proc/\(pid)/fd/\(dirfd!)")
        guard let base, base.hasPrefix("/") else { return text }  // judged against the initial folder
        return base + "/" + text
    }

    private static let writingOpenFlags: [Substring] = ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"]

    /// What the rules need of a watched call: its syscall, the path it names and whether it
    /// writes (creates, truncates, removes, renames).
    init(_ call: WatchedCall) {
        let flags = call.flags ?? ""
        let writes: Bool
        var written: [String] = []
        switch call.syscall {
        case "open", "openat":
            // The decoder's flag names, compared whole (a substring search builds a table per
            // call, several microseconds while the caller waits).
            writes = flags.split(separator: "|").contains { Self.writingOpenFlags.contains($0) }
        case "creat", "truncate", "unlink", "unlinkat", "rmdir", "mkdir", "mkdirat", "chmod", "fchmodat", "fchmodat2":
            writes = true
        case "rename", "renameat", "renameat2":
            writes = true
            written = [call.path, call.newPath].compactMap { $0 }
        case "link", "linkat", "symlink", "symlinkat":
            writes = true
            written = [call.newPath].compactMap { $0 }
        default:
            writes = false
        }
        let resolve = { (path: String?) in Self.resolve(path, dirfd: call.dirfd, pid: call.pid) }
        self.init(syscall: call.syscall, path: resolve(call.path), writtenPaths: written.compactMap(resolve),
                  writes: writes)
        if call.syscall == "connect" { connectTarget = call.address }
    }
}

import CorralPlan
import CorralSystem
import Logging

/// Runs one sandbox from plan to report: meter (cgroup), clone, compile, materialise, go;
/// then watches it — wall and CPU clocks, output cap, resource samples, monitor rules,
/// watched syscalls, forwarded signals — reaps it and writes the report. Runs on the
/// calling thread, which must outlive the run (PR_SET_PDEATHSIG follows the thread that
/// cloned the sandbox).
final class Supervisor {
    let loaded: LoadedProfile
    let options: RunOptions
    /// How often resource samples are taken while something needs them.
    static let sampleInterval = 0.05

    init(loaded: LoadedProfile, options: RunOptions) {
        self.loaded = loaded
        self.options = options
    }

    private var resources = ResourceUse()
    /// The run's cgroup sample once its init is gone (taken by the watch loop when the run
    /// ended on its own, else right after the reap), for the report.
    private var endSample: MeterSample?

    func run() throws(CorralError) -> RunResult {
        let startedAt = HostEnvironment.rfc3339Now()
        let runID = StagedRun.newID(goal: loaded.profile.goal.id)
        let start = HostEnvironment.monotonicSeconds()
        let profile = loaded.profile
        // Corral's own setting, from this process's environment (not the one given for the command).
        let state = options.stateDirectory ?? StateDirectory.current()
        let auditState = try auditState(state)

        // Limits first: a required limit this host cannot enforce stops the run before
        // anything is cloned.
        let enforcement = try LimitSetup.prepare(profile.limits, monitor: profile.monitor)
        let meter = enforcement.meter
        // Removed at the end, or (once the sandbox is reaped) on a thread of its own beside the
        // report and the audit entry: rmdir of a cgroup costs tens of microseconds each.
        var meterRemoval: HostEnvironment.JoinableThread?
        defer {
            if let meterRemoval { HostEnvironment.join(meterRemoval) } else { meter?.finish() }
        }
        if !options.quiet {
            for warning in enforcement.warnings { HostEnvironment.writeStandardError("corral: warning: \(warning)\n") }
        }
        if EgressPlan.of(profile.network)?.listeners.isEmpty == false { try EgressProcess.checkAvailable() }
        // stdout and stderr go through the supervisor when it must count or cap them.
        let capsOutput = profile.limits.output != nil
            || profile.monitor.contains { if case .outputAbove = $0.condition { true } else { false } }
        let relay = try OutputRelay(cap: profile.limits.output, stdio: options.stdio,
                                    enabled: capsOutput || options.relayOutput)
        let signals = options.forwardSignals.isEmpty ? nil : SignalWatcher(options.forwardSignals)
        // Clone first: the child builds its namespaces (the network namespace alone takes
        // ~0.8 ms of kernel time) on the other core while this thread compiles the plan,
        // resolves paths, builds the Landlock ruleset and loads the seccomp programs.
        let ids = HostEnvironment.effectiveIDs
        var stdio = relay.childStdio
        let readOnlyStdin = stdio[0] < 0 ? HostEnvironment.readOnlyTerminal(0) : nil
        if let readOnlyStdin { stdio[0] = readOnlyStdin }
        let pending: PendingLaunch
        do {
            defer { if let readOnlyStdin { HostEnvironment.close(readOnlyStdin) } }
            // init starts inside the run's cgroup: no migration, which would wait out an RCU
            // grace period in the kernel (see `RunCgroup.openJoin`).
            let join = try meter?.openJoin()
            defer { join?.close() }
            pending = try Launcher.start(PlanCompiler.shape(of: profile, uid: ids.uid, gid: ids.gid), stdio: stdio,
                                         cgroup: join)
        }
        relay.childHasItsEnds()
        // The audit log (its folder, files and signing key) is opened while the child builds
        // its namespaces; a failure here drops `pending`, which kills the child.
        let audit = try openAudit(profile, state: auditState, run: runID)
        let events = EventLog(descriptor: options.eventDescriptor, observer: options.eventObserver, goal: profile.goal.id,
                              audit: audit)
        // The watcher's queued events reach the stream however the run ends (a launch that
        // throws too); a run that ends normally drains them before its exit event.
        defer { events.drain() }
        for limit in enforcement.limits where limit.mechanism == nil {
            events.emit(.limit) { $0.limit = limit.limit; $0.detail = "not enforced: \(limit.notEnforced ?? "")" }
        }
        // Staged writes: the run's folder and layers are made while the child builds its
        // namespaces; anything that ends the launch early discards them.
        let staged = try stageWrites(profile, state: state, run: runID)
        var stagedDone = false
        defer { if !stagedDone { staged?.discard() } }
        let plan = try Corral.plan(loaded, command: options.command)
        let planned = HostEnvironment.monotonicSeconds()
        options.logger?.debug("launching", metadata: ["goal": "\(plan.goalID)"])
        let prepared = try Materializer.prepare(plan, environment: options.environment,
                                                hiddenPaths: Corral.daemonSockets + audit.hiddenPaths,
                                                staging: staged.map { run in { run.staging(layer: $0) } })
        try staged?.began(prepared.stagedLayers)
        let materialised = HostEnvironment.monotonicSeconds()

        var monitor = Self.monitor(for: plan, profile: profile)
        monitor.egressPorts = plan.egress?.listeners.map(\.port) ?? []
        let control = try RunControl(monitor: monitor, events: events, meter: meter, quiet: options.quiet)
        control.attach(pending.sandbox)
        control.launching(candidates: prepared.execCandidates)
        let syscallWatcher = makeSyscallWatcher(prepared, start: start, control: control)

        // Both digests go into the run-start entry and, with `--report`, the report: computed once.
        var digests: (manifest: String, plan: String)?
        func computedDigests() -> (manifest: String, plan: String) {
            if let digests { return digests }
            let computed = (manifest: loaded.sha256(), plan: Corral.digest(of: plan))
            digests = computed
            return computed
        }

        /// The report and the exit event, for a run that ended (or was ended during its exec).
        func finish(_ termination: Termination, killReason: KillReason?, launched: Double, ended: Double,
                    error: String? = nil) -> RunResult {
            let verdict: Verdict = killReason == nil ? .clean : .rogue
            var transaction: TransactionSummary?
            var transactionError: CorralError?
            if let staged {
                (transaction, transactionError) = staged.finish(verdict: verdict, killReason: killReason, mode: plan.commit)
                stagedDone = true
                if let transaction {
                    events.emit(.transaction) { $0.transaction = transaction; $0.detail = transactionError.map { "\($0)" } }
                }
            }
            events.emit(.exit) {
                $0.termination = termination
                $0.exitStatus = termination.exitStatus
                $0.verdict = verdict
                $0.reason = killReason?.rawValue
                $0.rule = control.killRule
            }
            let report = RunReport(
                run: runID, goalID: plan.goalID, manifest: loaded.path,
                manifestSHA256: options.includeDigests ? computedDigests().manifest : nil,
                planDigest: options.includeDigests ? computedDigests().plan : nil, command: plan.command,
                startedAt: startedAt, durationSeconds: HostEnvironment.monotonicSeconds() - start, termination: termination,
                exitStatus: termination.exitStatus, killReason: killReason, verdict: verdict, killRule: control.killRule,
                resources: resources, limits: enforcement.limits, rulesFired: control.firings,
                namespaces: plan.namespaces.names, network: plan.network.rawValue, landlockABI: plan.landlock.abi,
                landlockEnforcement: plan.landlock.enforcement.rawValue,
                landlockNotEnforced: plan.landlock.dropped.isEmpty ? nil : plan.landlock.dropped.description,
                seccompInstructions: prepared.seccompPrograms.map { $0.instructionCount },
                skippedPaths: prepared.skipped, error: error ?? transactionError.map { "\($0)" },
                timings: RunReport.Timings(compile: planned - start, materialise: materialised - planned,
                                           launch: launched - start, run: ended - launched))
            var result = RunResult(termination: termination, report: report)
            result.report.transaction = transaction
            return result
        }

        /// The run's last audit entry: its report, signed.
        func audited(_ result: RunResult) -> RunResult {
            var result = result
            events.drain()  // every watched call's entry before the run's end
            do throws(CorralError) { try audit.ended(result.report) } catch {
                result.report.error = [result.report.error, "audit log: \(error)"].compactMap { $0 }.joined(separator: "; ")
                if !options.quiet { HostEnvironment.writeStandardError("corral: audit log: \(error)\n") }
            }
            return result
        }

        /// The audit's run-start entry: encoded while the sandbox builds its root, written
        /// once the command runs.
        func prepareAuditStart() {
            audit.prepareStart {
                AuditRunStart(
                    goal: profile.goal.id, intent: profile.goal.intent, agent: profile.goal.agent,
                    manifest: loaded.absolutePath, manifestSHA256: computedDigests().manifest, planDigest: computedDigests().plan,
                    command: plan.command, landlockABI: plan.landlock.abi,
                    landlockEnforcement: plan.landlock.enforcement.rawValue, namespaces: plan.namespaces.names,
                    network: plan.network.rawValue, commit: plan.commit.rawValue, limits: enforcement.limits,
                    pid: pending.pid, startedAt: startedAt)
            }
        }

        /// What the supervisor does while the sandbox builds its root (or, with syscalls
        /// watched, once the command runs): the run-start entry, and the groups a SIGKILLed
        /// corral left (housekeeping, not a step of this launch).
        var housekept = false
        func whileTheSandboxStarts() {
            prepareAuditStart()
            if !housekept {
                housekept = true
                meter?.removeStale()
            }
        }

        // limits.wall counts from "go": the command may run before `go` returns (the
        // supervisor's own work in the wait is not the run's to spend).
        let released = HostEnvironment.monotonicSeconds()
        let process: SandboxProcess
        do {
            process = try launch(pending, prepared, watcher: syscallWatcher, control: control,
                                 whileWaiting: whileTheSandboxStarts)
        } catch {
            // A rule that killed the command's own exec ends a rogue run, not a failure of Corral.
            guard let reason = control.killReason else { throw error }
            let ended = HostEnvironment.monotonicSeconds()
            prepareAuditStart()
            audit.began()  // the run did start: its exec was what the rule stopped
            return audited(finish(.signaled(9), killReason: reason, launched: ended, ended: ended, error: "\(error)"))
        }
        let egress: EgressWatch?
        do {
            egress = try EgressWatch(plan.egress, pending: pending)
        } catch {
            // The command runs already, but without the network its manifest promises.
            control.attach(process)
            meter?.killAll()
            process.killTree()
            _ = process.reap()
            throw error
        }
        let launched = HostEnvironment.monotonicSeconds()
        // Not with staged writes: their overlays must be gone before the commit reads the layers.
        let mountNamespace = staged == nil ? MountNamespaceHold(pid: process.pid) : nil
        defer { mountNamespace?.release() }
        control.started(at: launched)
        events.emit(.start) { $0.pid = process.pid; $0.command = plan.command }
        whileTheSandboxStarts()  // done already unless syscalls are watched
        audit.began()

        watch(process, plan: plan, control: control, relay: relay, signals: signals, launched: launched, released: released,
              egress: egress, drainsEvents: syscallWatcher != nil)
        let ended = HostEnvironment.monotonicSeconds()
        meter?.killAll()  // init is gone, and with it its pid namespace; nothing may linger
        let termination = Termination(waitStatus: process.reap())
        mountNamespace?.releaseInBackground()  // init is gone: the teardown runs beside the report
        if let meter {
            // Every process of the run is gone (init reaped, its pid namespace with it).
            if endSample == nil { endSample = meter.sample() }  // the report's figures, read before removal
            meterRemoval = HostEnvironment.startJoinableThread { meter.finish() }
        }
        // A plan whose mode has no listener (loopback without ports) still reports its egress part.
        let egressSummary = egress?.finish(control: control) ?? plan.egress.map { EgressSummary(plan: $0) }
        let watchLog = syscallWatcher?.finish()  // the sandbox is gone: the watcher has ended
        relay.drain()
        finishResources(process: process, relay: relay)
        var result = finish(termination, killReason: control.killReason ?? Self.kernelKillReason(termination, oomKills: resources.oomKills),
                            launched: launched, ended: ended)
        if let watchLog { result.report.record(watchLog, program: prepared.watchProgram) }
        result.report.egress = egressSummary
        return audited(result)
    }

    /// The run's staging folder when the manifest stages its writes; nil when it writes
    /// nowhere or in place (`approval.commit: direct`). Interrupted runs of earlier corrals
    /// are recovered first.
    private func stageWrites(_ profile: Profile, state: String?, run: String) throws(CorralError) -> StagedRun? {
        guard profile.approval.commit.isStaged, !profile.filesystem.write.isEmpty else { return nil }
        guard let state else {
            throw CorralError(.setupFailed, operation: "find the state directory", location: profile.approval.commitLocation,
                              message: "staged writes need a state directory, and neither CORRAL_STATE_DIR, XDG_STATE_HOME nor HOME is set",
                              hint: "set CORRAL_STATE_DIR to a folder Corral may write")
        }
        // Staging inside a write path would put each layer inside the folder it overlays (and
        // let the sandbox reach other runs' layers): refused. (The state directory is hidden
        // from every sandbox in any case: see `RunAudit.hiddenPaths`.)
        if let entry = profile.filesystem.write.first(where: { PlanCompiler.isBeneath(state, $0.path) }) {
            throw CorralError(.profileInvalid, operation: "stage writes", path: state, location: entry.location,
                              message: "Corral's state directory is inside this write path",
                              hint: "set CORRAL_STATE_DIR to a folder outside every write path")
        }
        StagedRuns.recoverQuietly(state: state)
        return try StagedRun.create(state: state, id: run, goal: profile.goal.id, manifest: loaded.absolutePath,
                                    auditLog: RunAudit.logPath(for: profile, state: state),
                                    mode: profile.approval.commit, writeCount: profile.filesystem.write.count)
    }

    /// The state directory the audit needs (its signing key lives there). Every run is
    /// audited; a host without one is refused before anything runs.
    private func auditState(_ state: String?) throws(CorralError) -> String {
        guard let state else {
            throw CorralError(.setupFailed, operation: "open the audit log",
                              message: "no state directory: neither CORRAL_STATE_DIR, XDG_STATE_HOME nor HOME is set",
                              hint: "set CORRAL_STATE_DIR to a folder Corral may write (the audit log and its key live there)")
        }
        return state
    }

    /// The run's audit log: the manifest's `audit.log`, else the state directory's.
    private func openAudit(_ profile: Profile, state: String, run: String) throws(CorralError) -> RunAudit {
        let secrets = profile.run.env.secrets.compactMap { options.environment[$0] }
        return try RunAudit(log: RunAudit.logPath(for: profile, state: state), state: state, run: run, secrets: secrets)
    }

    /// The rules with what they compare against: `filesystem.exec` patterns for execs,
    /// `filesystem.write` and the sandbox's private writable folders for writes. A relative
    /// path is taken relative to the command's working folder (the caller may have moved).
    static func monitor(for plan: LaunchPlan, profile: Profile) -> MonitorEngine {
        let workdir = plan.workdir
        @Sendable func absolute(_ path: String) -> String {
            PathText.normalise(path.hasPrefix("/") ? path : workdir + "/" + path)
        }
        let execPatterns = profile.filesystem.exec.map(\.path)
        // Where a write could land, as the mount table decides it: the deepest declared entry
        // enclosing the path wins (a read bind inside the private /tmp is read-only).
        let fs = profile.filesystem
        let roots: [(path: String, writable: Bool)] =
            fs.write.map { ($0.path, true) } + fs.read.map { ($0.path, false) } + fs.deny.map { ($0.path, false) }
            + ["/tmp", "/dev/shm", "/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/pts"].map { ($0, true) }
        return MonitorEngine(
            rules: plan.monitor,
            execAllowed: { path in
                // The name as given, and what it resolves to on the host (the sandbox binds
                // host paths at the same place): /bin/sh via the /bin -> usr/bin alias is
                // allowed with /usr/bin/*, and a link in an allowed folder to a file elsewhere
                // is judged by its target, as Landlock judges it.
                let full = absolute(path)
                let resolved = HostEnvironment.realPath(full) ?? full
                return execPatterns.contains { HostEnvironment.pathMatches(pattern: $0, path: resolved) }
            },
            writeAllowed: { path in
                let full = absolute(path)
                let deepest = roots.filter { PlanCompiler.isBeneath(full, $0.path) }
                    .max { PlanCompiler.depth($0.path) < PlanCompiler.depth($1.path) }
                return deepest?.writable ?? false
            })
    }

    // MARK: - Watching

    /// - Parameter drainsEvents: the syscall watcher queues events (`EventLog.enqueue`):
    ///   write them at least every `EventLog.drainInterval`.
    private func watch(_ process: SandboxProcess, plan: LaunchPlan, control: RunControl, relay: OutputRelay,
                       signals: SignalWatcher?, launched: Double, released: Double, egress: EgressWatch?,
                       drainsEvents: Bool) {
        let meter = control.meter
        let wallDeadline = plan.limits.wall.map { released + $0.seconds }
        let cpuLimit = plan.limits.cpu.map(\.seconds)
        let sampling = meter != nil && (cpuLimit != nil || control.samplesResources || plan.limits.memory != nil
                                        || plan.limits.processes != nil || options.statusLine)
        var nextSample = launched + Self.sampleInterval
        var graceDeadline: Double?
        var forwarded = 0
        var seenLimitHits: UInt64 = 0
        var status = StatusLine(enabled: options.statusLine)
        defer { status.clear() }

        loop: while control.killReason == nil {
            let now = HostEnvironment.monotonicSeconds()
            if let wallDeadline, now >= wallDeadline { control.end(.timeout); break loop }
            if let graceDeadline, now >= graceDeadline { control.end(.supervisorSignal); break loop }
            if sampling, now >= nextSample, let meter {
                nextSample = now + Self.sampleInterval
                let sample = meter.sample()
                status.update(elapsed: now - launched, sample: sample)
                if examine(sample, control: control, cpuLimit: cpuLimit, output: relay.total, seenLimitHits: &seenLimitHits) {
                    break loop
                }
            } else if !sampling, options.statusLine {
                status.update(elapsed: now - launched, sample: nil)
            }
            var timeout = 1.0
            if let wallDeadline { timeout = min(timeout, wallDeadline - now) }
            if let graceDeadline { timeout = min(timeout, graceDeadline - now) }
            if sampling { timeout = min(timeout, nextSample - now) }
            if relay.hasPending { timeout = min(timeout, 0.01) }
            if let due = control.events.audit?.flushDeadline { timeout = min(timeout, due - now) }
            if drainsEvents { timeout = min(timeout, EventLog.drainInterval) }
            let descriptors = [process.pollDescriptor, control.wake.readDescriptor] + relay.pollDescriptors
                + (signals.map { [$0.descriptor] } ?? []) + (egress?.pollDescriptors ?? [])
            let ready = pollReadable(descriptors, timeoutMilliseconds: Int32(max(0, timeout * 1000 + 1)))
            if relay.pump(ready) == .capReached {
                control.events.emit(.limit) { $0.limit = "output"; $0.detail = "\(relay.total) bytes passed through; the rest is cut" }
                control.end(.output)
                break loop
            }
            if relay.isActive, control.sample(processes: nil, memory: nil, output: relay.total, cpuSeconds: nil) {
                break loop
            }
            if ready.contains(control.wake.readDescriptor) { control.carryOutRequests() }
            if drainsEvents { control.events.drain() }
            control.events.audit?.flushIfDue(now: now)
            if egress?.pump(ready, control: control) == true { break loop }
            if ready.contains(process.pollDescriptor) {
                // The run ended on its own; what it did last still counts (a fork refused at
                // the limit just before the end, an OOM kill that ended the command).
                if let meter {
                    let sample = meter.sample()
                    endSample = sample  // init is gone: the report's figures need no second read
                    _ = examine(sample, control: control, cpuLimit: cpuLimit, output: relay.total,
                                seenLimitHits: &seenLimitHits)
                }
                break loop
            }
            if let signals, ready.contains(signals.descriptor) {
                while let signal = signals.next() {
                    if signal == 18 {  // SIGCONT: resumes a paused run; otherwise passed on
                        if !control.resume() { process.signal(signal) }
                        continue
                    }
                    forwarded += 1
                    if forwarded > 1 || control.isPaused {
                        control.end(.supervisorSignal)
                        break loop
                    }
                    control.events.emit(.signal) { $0.signal = signal }
                    process.signal(signal)
                    graceDeadline = HostEnvironment.monotonicSeconds() + options.gracePeriod.seconds
                }
            }
        }
    }

    /// Checks one resource sample against the limits and rules; true when the run is being ended.
    private func examine(_ sample: MeterSample, control: RunControl, cpuLimit: Double?, output: UInt64,
                         seenLimitHits: inout UInt64) -> Bool {
        note(sample)
        if let cpuLimit, let cpu = sample.cpuSeconds, cpu > cpuLimit {
            control.end(.cpu)
            return true
        }
        if let oom = sample.oomKills, oom > 0 {
            control.events.emit(.limit) { $0.limit = "memory"; $0.detail = "OOM kill in the run's cgroup (\(oom))" }
            control.end(.memory)
            return true
        }
        if let hits = sample.processLimitHits, hits > seenLimitHits {
            seenLimitHits = hits
            control.events.emit(.limit) { $0.limit = "processes"; $0.detail = "fork refused at the limit (\(hits) so far)" }
            if control.limitReached(.processes, count: hits) { return true }
        }
        // The peak, not the moment: a short spike between two samples still counts.
        return control.sample(processes: sample.processes, memory: sample.memoryPeakBytes ?? sample.memoryBytes,
                              output: output, cpuSeconds: sample.cpuSeconds)
    }

    private func note(_ sample: MeterSample) {
        if let peak = sample.memoryPeakBytes ?? sample.memoryBytes {
            resources.memoryPeakBytes = max(resources.memoryPeakBytes ?? 0, peak)
        }
        if let processes = sample.processes { resources.processesPeak = max(resources.processesPeak ?? 0, processes) }
        if let hits = sample.processLimitHits { resources.processLimitHits = hits }
        if let oom = sample.oomKills { resources.oomKills = oom }
    }

    private func finishResources(process: SandboxProcess, relay: OutputRelay) {
        if let endSample { note(endSample) }
        if let usage = process.usage {
            resources.cpuUserSeconds = usage.userSeconds
            resources.cpuSystemSeconds = usage.systemSeconds
            resources.largestProcessBytes = usage.largestResidentBytes
        }
        if relay.isActive {
            resources.stdoutBytes = relay.counts[0]
            resources.stderrBytes = relay.counts[1]
        }
    }

    // MARK: - Reasons

    /// The kill reason a rule's condition stands for.
    static func killReason(for condition: MonitorCondition) -> KillReason {
        switch condition {
        case .processesAbove, .limitReached(.processes): .processes
        case .memoryAbove, .limitReached(.memory): .memory
        case .outputAbove: .output
        case .cpuAbove: .cpu
        default: .monitor
        }
    }

    /// Reasons the kernel decided: SIGSYS is seccomp's kill, SIGXCPU the CPU rlimit, and a
    /// SIGKILL with OOM kills in the run's cgroup is the memory limit.
    static func kernelKillReason(_ termination: Termination, oomKills: UInt64?) -> KillReason? {
        switch termination {
        case .signaled(31): .seccomp
        case .signaled(24): .cpu
        case .signaled(9) where (oomKills ?? 0) > 0: .memory
        default: nil
        }
    }
}

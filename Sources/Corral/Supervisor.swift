import CorralPlan
import CorralSystem
import Logging

/// Runs one sandbox from plan to report: compile, materialise, launch, watch (wall clock,
/// forwarded signals), reap, report. Runs on the calling thread, which must outlive the run
/// (PR_SET_PDEATHSIG follows the thread that cloned the sandbox).
final class Supervisor {
    let loaded: LoadedProfile
    let options: RunOptions

    init(loaded: LoadedProfile, options: RunOptions) {
        self.loaded = loaded
        self.options = options
    }

    func run() throws(CorralError) -> RunResult {
        let startedAt = HostEnvironment.rfc3339Now()
        let start = HostEnvironment.monotonicSeconds()
        let watcher = options.forwardSignals.isEmpty ? nil : SignalWatcher(options.forwardSignals)
        // Clone first: the child builds its namespaces (the network namespace alone takes
        // ~0.8 ms of kernel time) on the other core while this thread compiles the plan,
        // resolves paths, builds the Landlock ruleset and loads the seccomp programs.
        let ids = HostEnvironment.effectiveIDs
        let pending = try Launcher.start(PlanCompiler.shape(of: loaded.profile, uid: ids.uid, gid: ids.gid),
                                         stdio: options.stdio)
        let plan = try Corral.plan(loaded, command: options.command)
        let planned = HostEnvironment.monotonicSeconds()
        options.logger?.debug("launching", metadata: ["goal": "\(plan.goalID)"])
        let prepared = try Materializer.prepare(plan, environment: options.environment,
                                                hiddenPaths: Corral.daemonSockets)
        let materialised = HostEnvironment.monotonicSeconds()
        let syscallWatcher = makeSyscallWatcher(prepared, start: start)
        let process = try launch(pending, prepared, watcher: syscallWatcher)
        let launched = HostEnvironment.monotonicSeconds()
        var killReason: KillReason?
        var forwarded = 0
        // limits.wall counts from the launch: setup time is Corral's, not the command's.
        let deadline = plan.wallLimit.map { launched + Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }

        watch: while true {
            var timeout: Int32 = -1
            if let deadline {
                let remaining = deadline - HostEnvironment.monotonicSeconds()
                if remaining <= 0 {
                    process.killTree()
                    killReason = .timeout
                    break watch
                }
                timeout = Int32(min(remaining * 1000 + 1, Double(Int32.max)))
            }
            let ready = pollReadable([process.pollDescriptor] + (watcher.map { [$0.descriptor] } ?? []),
                                     timeoutMilliseconds: timeout)
            if ready.contains(process.pollDescriptor) { break watch }
            if let watcher, ready.contains(watcher.descriptor) {
                while let signal = watcher.next() {
                    forwarded += 1
                    if forwarded > 1 {
                        process.killTree()
                        killReason = .supervisorSignal
                        break watch
                    }
                    process.signal(signal)
                }
            }
        }
        let ended = HostEnvironment.monotonicSeconds()
        let termination = Termination(waitStatus: process.reap())
        let watchLog = syscallWatcher?.finish()  // the sandbox is gone: the watcher has ended

        var report = RunReport(
            goalID: plan.goalID, manifest: loaded.path,
            manifestSHA256: options.includeDigests ? loaded.sha256() : nil,
            planDigest: options.includeDigests ? Corral.digest(of: plan) : nil, command: plan.command, startedAt: startedAt,
            durationSeconds: HostEnvironment.monotonicSeconds() - start, termination: termination,
            exitStatus: termination.exitStatus, killReason: killReason, namespaces: plan.namespaces.names,
            network: plan.network.rawValue, landlockABI: plan.landlock.abi,
            landlockEnforcement: plan.landlock.enforcement.rawValue,
            landlockNotEnforced: plan.landlock.dropped.isEmpty ? nil : plan.landlock.dropped.description,
            seccompInstructions: prepared.seccompPrograms.map { $0.instructionCount },
            skippedPaths: prepared.skipped, error: nil,
            timings: RunReport.Timings(compile: planned - start, materialise: materialised - planned,
                                       launch: launched - start, run: ended - launched)
        )
        if let watchLog { report.record(watchLog, program: prepared.watchProgram) }
        return RunResult(termination: termination, report: report)
    }
}

import CorralPlan
import CorralSystem
import Logging

/// Runs one sandbox from plan to report, on its own thread: compile, materialise, launch,
/// watch (wall clock, forwarded signals), reap, report.
final class Supervisor {
    let loaded: LoadedProfile
    let options: RunOptions

    init(loaded: LoadedProfile, options: RunOptions) {
        self.loaded = loaded
        self.options = options
    }

    static func startThread(_ body: @escaping @Sendable () -> Void) {
        HostEnvironment.startThread(body)
    }

    func run() throws(CorralError) -> RunResult {
        let startedAt = HostEnvironment.rfc3339Now()
        let start = HostEnvironment.monotonicSeconds()
        let plan = try Corral.plan(loaded, command: options.command)
        let planned = HostEnvironment.monotonicSeconds()
        let prepared = try Materializer.prepare(plan, environment: options.environment,
                                                hiddenPaths: Corral.daemonSockets)
        let materialised = HostEnvironment.monotonicSeconds()
        let watcher = options.forwardSignals.isEmpty ? nil : SignalWatcher(options.forwardSignals)
        options.logger?.debug("launching", metadata: ["goal": "\(plan.goalID)"])

        let process = try Launcher.launch(prepared, stdio: options.stdio)
        let launched = HostEnvironment.monotonicSeconds()
        var killReason: KillReason?
        var forwarded = 0
        let deadline = plan.wallLimit.map { start + Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }

        watch: while true {
            var timeout: Int32 = -1
            if let deadline {
                let remaining = deadline - HostEnvironment.monotonicSeconds()
                if remaining <= 0 {
                    // SIGKILL to the sandbox's init: the kernel then kills every process of its
                    // pid namespace, so nothing of the run survives.
                    process.signal(9)
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
                        process.signal(9)
                        killReason = .supervisorSignal
                        break watch
                    }
                    process.signal(signal)
                }
            }
        }
        let ended = HostEnvironment.monotonicSeconds()
        let termination: Termination
        switch process.reap() {
        case .command(let status): termination = Termination(waitStatus: status)
        case .initOnly(let status): termination = Termination(waitStatus: status)
        }

        let report = RunReport(
            goalID: plan.goalID, manifest: loaded.path,
            manifestSHA256: options.includeDigests ? try loaded.sha256() : nil,
            planDigest: options.includeDigests ? try Corral.digest(of: plan) : nil, command: plan.command, startedAt: startedAt,
            durationSeconds: HostEnvironment.monotonicSeconds() - start, termination: termination,
            exitStatus: termination.exitStatus, killReason: killReason, namespaces: plan.namespaces.names,
            network: plan.network.rawValue, landlockABI: plan.landlock.abi,
            landlockEnforcement: plan.landlock.enforcement.rawValue,
            landlockNotEnforced: plan.landlock.dropped.isEmpty ? nil : plan.landlock.dropped.description,
            seccompInstructions: prepared.seccompPrograms.map { $0.instructionCount },
            skippedPaths: prepared.skipped, error: nil,
            timings: RunReport.Timings(compile: planned - start, materialise: materialised - planned,
                                       launch: launched - materialised, run: ended - launched)
        )
        return RunResult(termination: termination, report: report)
    }
}

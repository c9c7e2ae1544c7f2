import CorralPlan
import CorralSystem

/// Decides, before anything is cloned, how each declared limit is enforced on this host:
/// the run's cgroup (memory, processes, cpu quota, the tree's cpu time), rlimits (open
/// files, file size, a per-process cpu backstop), or the supervisor itself (wall clock,
/// output cap). With `limits.enforce: required`, a limit that cannot be enforced is an error.
struct LimitSetup {
    var meter: (any RunMeter)?
    var limits: [LimitEnforcement] = []
    var warnings: [String] = []

    static func prepare(_ limits: Limits, monitor: [MonitorRule]) throws(CorralError) -> LimitSetup {
        var setup = LimitSetup()
        let needsMeter = limits.needsCgroup || monitor.contains { $0.condition.readsResources || $0.action == .pause }
        var meterProblem: String?
        if needsMeter {
            do throws(CorralError) {
                setup.meter = try CgroupMeter.create(limits: limits)
            } catch {
                // The error's own line (its hint is replaced by the one below).
                meterProblem = String(error.description.split(separator: "\n").first ?? "")
                    .replacingPrefix("corral: ", with: "")
            }
        }
        let mechanisms = setup.meter?.mechanisms ?? [:]

        func record(_ name: String, _ value: String, _ mechanism: String?) {
            let problem = mechanism == nil ? (meterProblem ?? "no cgroup controller for it on this host") : nil
            setup.limits.append(LimitEnforcement(limit: name, value: value, mechanism: mechanism, notEnforced: problem))
        }
        if let wall = limits.wall { record("wall", Limits.format(wall), "supervisor (SIGKILL to the whole tree)") }
        if let cpu = limits.cpu {
            let tree = mechanisms["cpu"].map { "\($0), " } ?? ""
            record("cpu", Limits.format(cpu), tree + "rlimit RLIMIT_CPU per process")
            if mechanisms["cpu"] == nil {
                setup.warnings.append("limits.cpu is enforced per process only (RLIMIT_CPU), not for the tree: \(meterProblem ?? "no cpu accounting")")
            }
        }
        if let quota = limits.cpuQuota { record("cpu_quota", "\(quota) cores", mechanisms["cpu_quota"]) }
        if let memory = limits.memory { record("memory", Limits.format(bytes: memory), mechanisms["memory"]) }
        if let processes = limits.processes { record("processes", "\(processes)", mechanisms["processes"]) }
        if let files = limits.openFiles { record("open_files", "\(files)", "rlimit RLIMIT_NOFILE") }
        if let size = limits.fileSize { record("file_size", Limits.format(bytes: size), "rlimit RLIMIT_FSIZE") }
        if let output = limits.output { record("output", Limits.format(bytes: output), "supervisor (stdout and stderr relayed)") }
        // Rules on resources read the run's cgroup: without one they could never fire.
        for rule in monitor where rule.condition.readsResources {
            record("monitor \(rule.id)", "\(rule.condition)", setup.meter == nil ? nil : "the run's cgroup, sampled every 50 ms")
        }

        let missing = setup.limits.filter { $0.mechanism == nil }
        if !missing.isEmpty {
            let names = missing.map { $0.limit.hasPrefix("monitor ") ? "rule " + $0.limit.dropFirst(8) : "limits.\($0.limit)" }
                .joined(separator: ", ")
            let why = missing[0].notEnforced ?? ""
            if limits.enforce == .required {
                setup.meter?.finish()
                throw CorralError(.kernelUnsupported, operation: "enforce limits",
                                  message: "\(names) cannot be enforced on this host: \(why)",
                                  hint: "run as root or in a delegated cgroup, or set limits.enforce: best-effort to run without them")
            }
            setup.warnings.append("\(names) not enforced (limits.enforce: best-effort): \(why)")
        }
        return setup
    }
}

extension String {
    fileprivate func replacingPrefix(_ prefix: String, with replacement: String) -> String {
        hasPrefix(prefix) ? replacement + dropFirst(prefix.count) : self
    }
}

import CorralPlan
import CorralSystem

/// The run's cgroup (`RunCgroup`) as the supervisor's `RunMeter`: limits written before the
/// clone, init started inside it, usage sampled while the run goes, the group frozen,
/// killed and removed.
final class CgroupMeter: RunMeter, @unchecked Sendable {
    // @unchecked: `group` is Sendable and immutable here; nothing else is stored.
    let group: RunCgroup
    let host: CgroupHost
    let mechanisms: [String: String]

    private init(group: RunCgroup, host: CgroupHost, mechanisms: [String: String]) {
        self.group = group
        self.host = host
        self.mechanisms = mechanisms
    }

    /// Detects the host's cgroups and creates this run's group with its limits.
    static func create(limits: Limits) throws(CorralError) -> CgroupMeter {
        let host = CgroupHost.detect()
        let group = try RunCgroup.create(
            limits: CgroupLimits(memoryBytes: limits.memory, maxProcesses: limits.processes.map(UInt64.init),
                                 cpuQuota: limits.cpuQuota),
            host: host)
        // Sized once: a [String: String] that grows runs the standard library's prebuilt
        // resize, which looks a conformance up at run time (~0.1 ms of the launch).
        var mechanisms = [String: String](minimumCapacity: group.enforcement.count + 1)
        for entry in group.enforcement {
            switch entry.limit {
            case "cpu": mechanisms["cpu_quota"] = entry.mechanism
            default: mechanisms[entry.limit] = entry.mechanism
            }
        }
        if limits.cpu != nil, group.usage().cpuUserSeconds != nil {
            mechanisms["cpu"] = "the run's cgroup CPU time, sampled every 50 ms"
        }
        return CgroupMeter(group: group, host: host, mechanisms: mechanisms)
    }

    /// Removes groups a killed supervisor left behind (their owner pid is gone). Called once
    /// the command runs: it is housekeeping, not on the launch path.
    func removeStale() {
        RunCgroup.removeStale(host: host)
    }

    func openJoin() throws(CorralError) -> CgroupJoin {
        try group.openJoin()
    }

    func sample() -> MeterSample {
        let usage = group.usage()
        let cpu: Double? = switch (usage.cpuUserSeconds, usage.cpuSystemSeconds) {
        case (let user?, let system?): user + system
        case (let user?, nil): user
        default: nil
        }
        return MeterSample(memoryBytes: usage.memoryCurrentBytes, memoryPeakBytes: usage.memoryPeakBytes,
                           processes: usage.processesCurrent, processLimitHits: usage.processesLimitHits,
                           oomKills: usage.oomKills, cpuSeconds: cpu)
    }

    func freeze() -> Bool {
        (try? group.freeze()) != nil
    }

    func thaw() {
        try? group.thaw()
    }

    func killAll() {
        guard group.isPopulated else { return }
        try? group.kill()  // the caller's SIGKILL to init backs this up
    }

    func finish() {
        killAll()
        try? group.remove()  // what is left is removed by the next run (removeStale)
    }
}

/// The resource limits of one run's cgroup. nil leaves a resource unlimited (it is still
/// accounted where the host allows).
public struct CgroupLimits: Sendable, Hashable {
    /// Memory, page cache included; swap is limited to the same total so it is no escape.
    public var memoryBytes: UInt64?
    /// Processes and threads alive at once (fork and clone fail with `EAGAIN` beyond it).
    public var maxProcesses: UInt64?
    /// CPU bandwidth as a share of one core (0.5 = half a core, 2 = two cores), enforced
    /// per 100 ms period.
    public var cpuQuota: Double?

    public init(memoryBytes: UInt64? = nil, maxProcesses: UInt64? = nil, cpuQuota: Double? = nil) {
        self.memoryBytes = memoryBytes
        self.maxProcesses = maxProcesses
        self.cpuQuota = cpuQuota
    }

    /// The CFS period Corral writes (the kernel's default), in microseconds.
    static let cpuPeriodMicroseconds: UInt64 = 100_000

    /// `cpuQuota` per period, in microseconds.
    var cpuQuotaMicroseconds: UInt64? {
        cpuQuota.map { UInt64(($0 * Double(Self.cpuPeriodMicroseconds)).rounded()) }
    }

    /// Values the kernel would refuse, or that would make the run useless, caught before
    /// anything is created.
    func validate() throws(CorralError) {
        func invalid(_ key: String, _ message: String) -> CorralError {
            CorralError(.profileInvalid, operation: "cgroup limits", message: "limits.\(key): \(message)")
        }
        if let memoryBytes, memoryBytes < 1 << 20 {
            throw invalid("memory", "\(memoryBytes) bytes is below the 1 MiB minimum")
        }
        if let maxProcesses, maxProcesses < 1 {
            throw invalid("processes", "must be at least 1 (the command itself)")
        }
        if let cpuQuota {
            // The kernel takes at least 1 ms of runtime per period (sched_cfs_bandwidth_slice
            // aside), and Corral caps the share at 1024 cores.
            guard cpuQuota.isFinite, cpuQuota >= 0.01, cpuQuota <= 1024 else {
                throw invalid("cpu_quota", "\(cpuQuota) is not a share of a core between 0.01 and 1024")
            }
        }
    }
}

/// What a run's cgroup used. nil where the host's backend cannot tell (a controller not
/// mounted or not delegated, a file an older kernel lacks).
public struct CgroupUsage: Sendable, Hashable {
    /// The highest memory use seen (v2 `memory.peak`, v1 `memory.max_usage_in_bytes`).
    public var memoryPeakBytes: UInt64?
    public var memoryCurrentBytes: UInt64?
    /// Processes the kernel's OOM killer killed in the group (v2 `memory.events` `oom_kill`,
    /// v1 `memory.oom_control` `oom_kill`).
    public var oomKills: UInt64?
    /// Times an allocation hit the memory limit (v2 `memory.events` `max`, v1
    /// `memory.failcnt` plus `memory.memsw.failcnt`); reclaim usually follows, so this
    /// counts pressure, not kills. v1 with swap limited reads 0 on recent kernels (see
    /// `readMemory`).
    public var memoryLimitHits: UInt64?
    public var processesCurrent: UInt64?
    /// The most processes alive at once (`pids.peak`, Linux 6.x).
    public var processesPeak: UInt64?
    /// Forks refused at the process limit (`pids.events` `max`).
    public var processesLimitHits: UInt64?
    public var cpuUserSeconds: Double?
    public var cpuSystemSeconds: Double?

    public init() {}
}

/// Which kernel mechanism enforces one limit or provides one operation for a run, for the
/// run report and `corral probe`: `memory: cgroup v1 memory.limit_in_bytes`.
public struct CgroupEnforcement: Sendable, Hashable, CustomStringConvertible {
    /// `memory`, `processes`, `cpu` (the manifest's `limits` keys), `freeze` or `kill`.
    public var limit: String
    public var mechanism: String

    public init(limit: String, mechanism: String) {
        self.limit = limit
        self.mechanism = mechanism
    }

    public var description: String { "\(limit): \(mechanism)" }
}

// MARK: - Reading usage

extension CgroupUsage {
    /// Fills the memory figures from a group's files; `read` maps a file name to its text.
    mutating func readMemory(version: Int, _ read: (String) -> String?) {
        if version == 2 {
            memoryPeakBytes = read("memory.peak").flatMap(CgroupFS.number)
            memoryCurrentBytes = read("memory.current").flatMap(CgroupFS.number)
            let events = read("memory.events").map(CgroupFS.keyedValues)
            oomKills = events?["oom_kill"]
            memoryLimitHits = events?["max"]
        } else {
            memoryPeakBytes = read("memory.max_usage_in_bytes").flatMap(CgroupFS.number)
            memoryCurrentBytes = read("memory.usage_in_bytes").flatMap(CgroupFS.number)
            oomKills = read("memory.oom_control").map(CgroupFS.keyedValues)?["oom_kill"]
            // With memory.memsw.limit_in_bytes equal to the limit, the kernel charges (and
            // fails) the memory+swap counter first and then does not try the memory one
            // (try_charge in mm/memcontrol.c): the two counts are disjoint. Recent kernels
            // keep no failure count for memory+swap (memory.memsw.failcnt stays 0; seen on
            // 6.18), so there the hits read 0 although the limit was hit: judge by oomKills
            // and the peak.
            let plain = read("memory.failcnt").flatMap(CgroupFS.number)
            let withSwap = read("memory.memsw.failcnt").flatMap(CgroupFS.number)
            memoryLimitHits = plain.map { $0 + (withSwap ?? 0) }
        }
    }

    /// The pids controller has the same files on v1 and v2.
    mutating func readProcesses(_ read: (String) -> String?) {
        processesCurrent = read("pids.current").flatMap(CgroupFS.number)
        processesPeak = read("pids.peak").flatMap(CgroupFS.number)
        processesLimitHits = read("pids.events").map(CgroupFS.keyedValues)?["max"]
    }

    /// v2: `cpu.stat` (a core file, present without the cpu controller) in microseconds;
    /// v1: `cpuacct.usage_user` / `cpuacct.usage_sys` in nanoseconds.
    mutating func readCPU(version: Int, _ read: (String) -> String?) {
        if version == 2 {
            let stat = read("cpu.stat").map(CgroupFS.keyedValues)
            cpuUserSeconds = stat?["user_usec"].map { Double($0) / 1e6 }
            cpuSystemSeconds = stat?["system_usec"].map { Double($0) / 1e6 }
        } else {
            cpuUserSeconds = read("cpuacct.usage_user").flatMap(CgroupFS.number).map { Double($0) / 1e9 }
            cpuSystemSeconds = read("cpuacct.usage_sys").flatMap(CgroupFS.number).map { Double($0) / 1e9 }
        }
    }
}

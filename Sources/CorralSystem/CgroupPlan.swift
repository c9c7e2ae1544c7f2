/// Which hierarchy handles each concern of a run's cgroup, and what gets written there.
/// Pure: decided from a ``CgroupHost`` snapshot and the limits, before anything is created.
///
/// The choices:
/// - **Membership, freeze and kill in the v2 tree whenever it is writable**, even on hybrid
///   hosts where it holds no controllers (like this project's build machine). These are
///   core v2 features, controller-free: `cgroup.kill` (Linux 5.14) kills every process of
///   the group atomically (the kernel also stops forks racing with it), `cgroup.freeze`
///   (5.2) freezes it, `cgroup.events` tells when it is empty or frozen, and `cpu.stat`
///   (4.15) counts its CPU time. v1 needs a freeze, signal-each-pid, thaw loop instead.
/// - **Limits and memory/process accounting from the v2 controller when the v2 tree offers
///   it, else from the v1 hierarchy** of that controller. A hybrid host thus puts each run
///   into up to four groups of the same name: v2 (membership), v1 memory, v1 pids, and v1
///   cpu when a CPU quota is asked for. A process's membership in each hierarchy is
///   independent, and children inherit all of them at fork, so the groups hold the same
///   processes.
/// - The v1 freezer and cpuacct hierarchies are used only without a v2 tree.
struct CgroupPlan: Sendable, Hashable {
    enum Backend: Sendable, Hashable {
        case v1(CgroupHost.Hierarchy)
        case v2
    }

    var limits: CgroupLimits
    /// The v2 hierarchy, when writable: the run's group is made there.
    var unified: CgroupHost.Hierarchy?
    var memory: Backend?
    var pids: Backend?
    var cpuLimit: Backend?
    var cpuUsage: Backend?
    /// Freeze (and the v1 kill loop's freeze).
    var freezer: Backend?
    /// Limits asked for that nothing here can enforce (`memory`, `processes`, `cpu`).
    var unenforceable: [String] = []
    /// Why no run group can be made at all, when that is so.
    var notWritable: String?

    init(host: CgroupHost, limits: CgroupLimits) {
        self.limits = limits
        let unified = host.unified.flatMap { $0.writable ? $0 : nil }
        self.unified = unified
        func choose(_ controller: String) -> Backend? {
            if let unified, unified.controllers.contains(controller) { return .v2 }
            if let legacy = host.legacy(controller), legacy.writable { return .v1(legacy) }
            return nil
        }
        memory = choose("memory")
        pids = choose("pids")
        cpuLimit = limits.cpuQuota == nil ? nil : choose("cpu")
        if unified != nil {
            cpuUsage = .v2
            freezer = .v2
        } else {
            cpuUsage = host.legacy("cpuacct").flatMap { $0.writable ? .v1($0) : nil }
            freezer = host.legacy("freezer").flatMap { $0.writable ? .v1($0) : nil }
        }
        if limits.memoryBytes != nil && memory == nil { unenforceable.append("memory") }
        if limits.maxProcesses != nil && pids == nil { unenforceable.append("processes") }
        if limits.cpuQuota != nil && cpuLimit == nil { unenforceable.append("cpu") }
        if parents.isEmpty {
            let seen = (host.unified.map { [$0] } ?? []) + host.legacy
            notWritable = seen.isEmpty ? "no cgroup hierarchy is mounted"
                : "not writable by this user: " + seen.map(\.directory).joined(separator: ", ")
        }
    }

    /// The v2 controllers to enable in the parent's `cgroup.subtree_control`: those the
    /// limits need, and those wanted only for accounting (memory and pids, best effort).
    var v2Required: Set<String> {
        var set: Set<String> = []
        if limits.memoryBytes != nil, memory == .v2 { set.insert("memory") }
        if limits.maxProcesses != nil, pids == .v2 { set.insert("pids") }
        if cpuLimit == .v2 { set.insert("cpu") }
        return set
    }

    var v2Wanted: Set<String> {
        var set = v2Required
        if memory == .v2 { set.insert("memory") }
        if pids == .v2 { set.insert("pids") }
        return set
    }

    /// Drops the v2 controllers that could not be enabled (accounting only: limits that
    /// need one make `create` fail instead).
    mutating func withoutV2(_ controllers: Set<String>) {
        if controllers.contains("memory"), memory == .v2 { memory = nil }
        if controllers.contains("pids"), pids == .v2 { pids = nil }
        if controllers.contains("cpu"), cpuLimit == .v2 { cpuLimit = nil }
    }

    /// The folders a run's group is created in, v2 first, each once (v1 `cpu` and `cpuacct`
    /// are often mounted together).
    var parents: [String] {
        var result: [String] = unified.map { [$0.directory] } ?? []
        for backend in [memory, pids, cpuLimit, cpuUsage, freezer] {
            if case .v1(let hierarchy)? = backend, !result.contains(hierarchy.directory) {
                result.append(hierarchy.directory)
            }
        }
        return result
    }

    /// The run's folder for a concern.
    func directory(of backend: Backend, name: String) -> String {
        switch backend {
        case .v2: unified!.directory + "/" + name
        case .v1(let hierarchy): hierarchy.directory + "/" + name
        }
    }

    // MARK: - Writes

    /// One value for one control file of the run's group.
    struct Write: Sendable, Hashable {
        var limit: String
        var file: String
        var value: String
        /// Skipped when the file does not exist (swap accounting off, for instance): the
        /// write is tried, and `ENOENT` is not an error.
        var optional = false
    }

    /// The limit files, in the order they must be written: v1 `memory.memsw.limit_in_bytes`
    /// must never drop below `memory.limit_in_bytes`, so the plain limit goes first; the
    /// CFS period before the quota it is a share of.
    func writes(for backend: Backend, limit: String) -> [Write] {
        switch (limit, backend) {
        case ("memory", .v1):
            let bytes = String(limits.memoryBytes!)
            return [Write(limit: limit, file: "memory.limit_in_bytes", value: bytes),
                    Write(limit: limit, file: "memory.memsw.limit_in_bytes", value: bytes, optional: true)]
        case ("memory", .v2):
            // memory.swap.max counts swap alone: 0 keeps the whole run inside memory.max.
            return [Write(limit: limit, file: "memory.max", value: String(limits.memoryBytes!)),
                    Write(limit: limit, file: "memory.swap.max", value: "0", optional: true)]
        case ("processes", _):
            return [Write(limit: limit, file: "pids.max", value: String(limits.maxProcesses!))]
        case ("cpu", .v1):
            return [Write(limit: limit, file: "cpu.cfs_period_us", value: String(CgroupLimits.cpuPeriodMicroseconds)),
                    Write(limit: limit, file: "cpu.cfs_quota_us", value: String(limits.cpuQuotaMicroseconds!))]
        case ("cpu", .v2):
            return [Write(limit: limit, file: "cpu.max",
                          value: "\(limits.cpuQuotaMicroseconds!) \(CgroupLimits.cpuPeriodMicroseconds)")]
        default:
            preconditionFailure("no writes for \(limit)")
        }
    }

    /// The limits to apply, with their backends, in a fixed order.
    var limitBackends: [(String, Backend)] {
        var result: [(String, Backend)] = []
        if limits.memoryBytes != nil, let memory { result.append(("memory", memory)) }
        if limits.maxProcesses != nil, let pids { result.append(("processes", pids)) }
        if let cpuLimit { result.append(("cpu", cpuLimit)) }
        return result
    }

    /// How a concern is enforced, in words (`corral probe`, the run report).
    func mechanism(_ concern: String, _ backend: Backend, skipped: Set<String> = []) -> String {
        let version = if case .v2 = backend { "cgroup v2" } else { "cgroup v1" }
        switch (concern, backend) {
        case ("memory", .v1):
            return skipped.contains("memory.memsw.limit_in_bytes")
                ? "\(version) memory.limit_in_bytes (swap not limited: no memory.memsw.limit_in_bytes)"
                : "\(version) memory.limit_in_bytes and memory.memsw.limit_in_bytes"
        case ("memory", .v2):
            return skipped.contains("memory.swap.max")
                ? "\(version) memory.max (swap not limited: no memory.swap.max)"
                : "\(version) memory.max and memory.swap.max 0"
        case ("processes", _): return "\(version) pids.max"
        case ("cpu", .v1): return "\(version) cpu.cfs_quota_us per cpu.cfs_period_us"
        case ("cpu", .v2): return "\(version) cpu.max"
        case ("freeze", .v1): return "\(version) freezer.state"
        case ("freeze", .v2): return "\(version) cgroup.freeze"
        case ("kill", .v1): return "\(version) freezer, then SIGKILL to each process until none is left"
        case ("kill", .v2):
            return skipped.contains("cgroup.kill")
                ? "\(version) cgroup.freeze, then SIGKILL to each process until none is left (no cgroup.kill before Linux 5.14)"
                : "\(version) cgroup.kill"
        default: return version
        }
    }
}

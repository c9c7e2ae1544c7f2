import Glibc
import SystemPackage

// MARK: - v2 controllers and the no-internal-process rule

extension RunCgroup {
    /// Makes `controllers` available to the run groups created in `directory` (the
    /// supervisor's own v2 cgroup) by enabling them in its `cgroup.subtree_control`.
    ///
    /// cgroup v2's "no internal processes" rule (Documentation/admin-guide/cgroup-v2.rst,
    /// "No Internal Process Constraint"): a non-root cgroup may enable controllers for its
    /// children only while it has no processes of its own, and the supervisor itself sits
    /// in `directory`. Corral does what systemd asks of a delegated manager
    /// (systemd.io/CGROUP_DELEGATION, "two rules"): when the write fails with `EBUSY` and the
    /// supervisor is the only process there, it moves itself into a leaf
    /// `directory/corral-<pid>-supervisor` and enables the controllers; its runs are then
    /// siblings of that leaf. That is the situation under
    /// `systemd-run --user --scope -p Delegate=yes corral …` (a scope with one process).
    /// When other processes share the cgroup (a terminal's shell in the same scope), they
    /// are not Corral's to move: the controllers stay off and `create` says why.
    ///
    /// The move and the enabled controllers outlive the run on purpose: later runs of the
    /// same supervisor, and concurrent ones, rely on them. The leaf is empty once the
    /// supervisor exits; ``removeStale(host:)`` deletes it.
    ///
    /// - Parameters:
    ///   - supervisor: the process to move (the caller's pid; tests pass another).
    ///   - mayMoveSupervisor: false refuses the move (the error then says why).
    /// - Throws: `CorralError` with `.kernelUnsupported` when a controller is not offered
    ///   to `directory` (not in its `cgroup.controllers`: the parent did not delegate it) or
    ///   other processes share it; `.setupFailed` for other failures.
    static func enableControllers(_ controllers: Set<String>, in directory: String, supervisor: Int32,
                                  mayMoveSupervisor: Bool = true) throws(CorralError) {
        let subtree = directory + "/cgroup.subtree_control"
        let enabled = CgroupFS.controllerNames(CgroupFS.read(subtree) ?? "")
        let missing = controllers.subtracting(enabled).sorted()
        if missing.isEmpty { return }
        let available = CgroupFS.controllerNames(CgroupFS.read(directory + "/cgroup.controllers") ?? "")
        let absent = missing.filter { !available.contains($0) }
        if !absent.isEmpty {
            throw CorralError(.kernelUnsupported, operation: "enable cgroup controllers", path: subtree,
                              message: "\(absent.joined(separator: " ")) not delegated to this cgroup (not in cgroup.controllers)",
                              hint: CgroupHints.notWritable)
        }
        let request = missing.map { "+" + $0 }.joined(separator: " ")
        do {
            try CgroupFS.write(subtree, request)
            return
        } catch where error == .resourceBusy {
            // The no-internal-process rule: handled below.
        } catch {
            throw CorralError(error == .permissionDenied ? .kernelUnsupported : .setupFailed,
                              operation: "write `\(request)` to", path: subtree, errno: error,
                              hint: CgroupHints.hint(for: error))
        }
        let members = CgroupFS.processIDs(CgroupFS.read(directory + "/cgroup.procs") ?? "")
        let alone = !members.isEmpty && members.allSatisfy { $0 == supervisor }
        guard alone && mayMoveSupervisor else {
            let why = alone ? "the supervisor would have to move into a leaf of its cgroup"
                            : "other processes share this cgroup (\(members.count) in cgroup.procs)"
            throw CorralError(.kernelUnsupported, operation: "write `\(request)` to", path: subtree, errno: .resourceBusy,
                              message: why + ", so its controllers cannot be enabled for the run "
                                  + "(cgroup v2 no-internal-process rule)",
                              hint: "start corral in a cgroup of its own: "
                                  + "`systemd-run --user --scope -p Delegate=yes corral …`")
        }
        let leaf = directory + "/corral-\(supervisor)-supervisor"
        do {
            do { try CgroupFS.makeDirectory(leaf) } catch where error == .fileExists {}
            try CgroupFS.write(leaf + "/cgroup.procs", String(supervisor))
            try CgroupFS.write(subtree, request)
        } catch {
            throw CorralError(.setupFailed, operation: "move the supervisor into", path: leaf, errno: error,
                              message: "to enable \(request) in \(subtree)", hint: CgroupHints.hint(for: error))
        }
    }

    // MARK: - Leftovers of dead supervisors

    /// The supervisor pid in a group name `corral-<pid>-<suffix>`.
    static func owner(ofGroup name: String) -> Int32? {
        let parts = name.split(separator: "-", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "corral", !parts[2].isEmpty, let pid = Int32(parts[1]), pid > 0 else {
            return nil
        }
        return pid
    }

    /// Deletes the groups of supervisors that are gone (a SIGKILLed supervisor leaves its run's
    /// groups behind): every `corral-<pid>-…` folder in this process's cgroup whose `<pid>`
    /// is not alive, in every hierarchy. Processes still inside are killed first; a
    /// `corral-<pid>-supervisor` leaf is only removed (it is empty once its supervisor died).
    ///
    /// A recycled pid only delays the cleanup (the group looks owned); groups of live
    /// supervisors are never touched. Supervisors in different pid namespaces that share a
    /// cgroup would misjudge each other's pids: give each its own cgroup.
    ///
    /// Returns the names of the groups removed.
    @discardableResult
    public static func removeStale(host: CgroupHost) -> [String] {
        let me = getpid()
        var stale: [String: [String]] = [:]
        var parents: [String] = host.unified.map { [$0.directory] } ?? []
        for hierarchy in host.legacy where !parents.contains(hierarchy.directory) { parents.append(hierarchy.directory) }
        for parent in parents {
            for name in CgroupFS.subdirectories(of: parent) {
                guard let owner = owner(ofGroup: name), owner != me, !CgroupFS.processExists(owner) else { continue }
                stale[name, default: []].append(parent + "/" + name)
            }
        }
        var removed: [String] = []
        for (name, directories) in stale.sorted(by: { $0.key < $1.key }) {
            let group = stray(name: name, directories: directories, host: host)
            if !name.hasSuffix("-supervisor") { try? group.kill() }
            do {
                // Briefly: this runs inside a launch's wait; a group still busy is the next run's.
                try group.remove(timeout: 0.05)
                removed.append(name)
            } catch {}
        }
        return removed
    }

    /// A handle on groups found on disk, for kill and remove.
    static func stray(name: String, directories: [String], host: CgroupHost) -> RunCgroup {
        let unified = host.unified.flatMap { h in directories.first { $0 == h.directory + "/" + name } }
        let v1Freezer = host.legacy("freezer").flatMap { h in directories.first { $0 == h.directory + "/" + name } }
        let freezer = unified.map { Placement(version: 2, directory: $0) } ?? v1Freezer.map { Placement(version: 1, directory: $0) }
        let killFile = unified.map { $0 + "/cgroup.kill" }.flatMap { CgroupFS.exists($0) ? $0 : nil }
        let ordered = (unified.map { [$0] } ?? []) + directories.filter { $0 != unified }
        return RunCgroup(name: name, directories: ordered, unifiedDirectory: unified, enforcement: [],
                         memory: nil, pids: nil, cpuUsage: nil, freezer: freezer, killFile: killFile)
    }
}

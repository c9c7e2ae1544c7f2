import Glibc
import SystemPackage

// MARK: - Freeze, kill, remove

extension RunCgroup {
    /// How long freeze and kill wait for the kernel before giving up. A freeze waits for
    /// every task to reach the refrigerator; a task stuck in an uninterruptible sleep
    /// (NFS, FUSE) can hold it back.
    static let settleTimeout = 2.0

    /// Stops every process of the group where it is (they cannot run, fork or catch signals;
    /// SIGKILL still ends them on v2), and returns once the kernel reports the group frozen:
    /// v2 `cgroup.events` `frozen 1`, v1 `freezer.state` `FROZEN`.
    ///
    /// - Throws: `CorralError` (`.kernelUnsupported` without a freezer; `.supervisionFailed`
    ///   when the group does not freeze within 2 s, in which case it is thawed again).
    public func freeze() throws(CorralError) {
        guard let freezer else {
            throw CorralError(.kernelUnsupported, operation: "freeze cgroup", path: directories.first,
                              message: "no cgroup freezer on this host (v2 cgroup.freeze or the v1 freezer controller)")
        }
        try setFrozen(true, freezer)
        guard CgroupFS.wait(timeout: Self.settleTimeout, until: { Self.isFrozen(freezer) }) else {
            try? setFrozen(false, freezer)
            throw CorralError(.supervisionFailed, operation: "freeze cgroup", path: freezer.directory,
                              message: "not frozen after \(Self.settleTimeout) s (a process in uninterruptible sleep?); thawed again")
        }
    }

    /// Lets the group's processes run again.
    ///
    /// - Throws: `CorralError` when the freezer file cannot be written.
    public func thaw() throws(CorralError) {
        guard let freezer else { return }
        try setFrozen(false, freezer)
    }

    private func setFrozen(_ frozen: Bool, _ freezer: Placement) throws(CorralError) {
        let (file, value) = freezer.version == 2 ? ("cgroup.freeze", frozen ? "1" : "0")
                                                 : ("freezer.state", frozen ? "FROZEN" : "THAWED")
        let path = freezer.directory + "/" + file
        do { try CgroupFS.write(path, value) } catch {
            throw CorralError(.supervisionFailed, operation: "write `\(value)` to", path: path, errno: error,
                              hint: CgroupHints.hint(for: error))
        }
    }

    static func isFrozen(_ freezer: Placement) -> Bool {
        if freezer.version == 2 {
            return CgroupFS.keyedValues(CgroupFS.read(freezer.directory + "/cgroup.events") ?? "")["frozen"] == 1
        }
        // FREEZING while tasks are still on their way.
        return CgroupFS.read(freezer.directory + "/freezer.state")?.trimmingSpace == "FROZEN"
    }

    /// Kills every process in the group and returns once none is left (zombies waiting for
    /// their parent's `wait` no longer count: the kernel takes them out of the group at exit).
    ///
    /// v2 writes `cgroup.kill`, which the kernel applies to the whole subtree and to
    /// processes forked while it runs. Without it (v1, or v2 before Linux 5.14): freeze,
    /// SIGKILL each process listed, thaw (v1 frozen tasks die only once thawed), and again
    /// until the group is empty; without a freezer the same loop without freezing, which
    /// converges under a pids limit.
    ///
    /// - Throws: `CorralError` (`.supervisionFailed`) when the kill file cannot be written or
    ///   processes are still there after 2 s. The supervisor's own fallback is SIGKILL to the
    ///   sandbox's pid-namespace init.
    public func kill() throws(CorralError) {
        if let killFile {
            do { try CgroupFS.write(killFile, "1") } catch {
                throw CorralError(.supervisionFailed, operation: "write `1` to", path: killFile, errno: error,
                                  hint: CgroupHints.hint(for: error))
            }
            if CgroupFS.wait(timeout: Self.settleTimeout, until: { !isPopulated }) { return }
        } else {
            let deadline = HostEnvironment.monotonicSeconds() + Self.settleTimeout
            while HostEnvironment.monotonicSeconds() < deadline {
                if let freezer {
                    try? setFrozen(true, freezer)
                    _ = CgroupFS.wait(timeout: 0.1) { Self.isFrozen(freezer) }
                }
                let victims = directories.flatMap { Self.processes(under: $0) }
                for pid in Set(victims) { CgroupFS.signal(pid, SIGKILL) }
                if let freezer { try? setFrozen(false, freezer) }
                if victims.isEmpty { return }
                _ = CgroupFS.wait(timeout: 0.05) { !isPopulated }
            }
        }
        throw CorralError(.supervisionFailed, operation: "kill cgroup", path: directories.first,
                          message: "processes left after \(Self.settleTimeout) s: \(processes().map(String.init).joined(separator: " "))")
    }

    /// Deletes the group's folder in every hierarchy (nested groups first), retrying for up
    /// to a second while the last processes are still exiting. Call ``kill()`` first if the
    /// run may still have processes. A folder already gone counts as removed.
    ///
    /// - Throws: `CorralError` (`.supervisionFailed`) for the first folder that could not be
    ///   removed, after trying them all; ``removeStale(host:)`` retries later.
    /// - Parameter timeout: how long each group may stay busy (a task the kernel still counts
    ///   as exiting) before it is left in place.
    public func remove(timeout: Double = 1) throws(CorralError) {
        var firstError: CorralError?
        for directory in directories {
            do { try Self.removeTree(directory, timeout: timeout) } catch { firstError = firstError ?? error }
        }
        if let firstError { throw firstError }
    }

    static func removeTree(_ directory: String, timeout: Double) throws(CorralError) {
        // Usually empty by now: one rmdir. EBUSY means child groups (the sandbox may make
        // them: those go first, once) or a task the kernel still counts as exiting (retried
        // until `timeout`); any other error is final.
        let deadline = HostEnvironment.monotonicSeconds() + timeout
        var interval = 50e-6
        var childrenRemoved = false
        while true {
            do {
                try CgroupFS.removeDirectory(directory)
                return
            } catch where error == .noSuchFileOrDirectory {
                return
            } catch where error == .resourceBusy && !childrenRemoved {
                childrenRemoved = true
                for child in CgroupFS.subdirectories(of: directory) {
                    try removeTree(directory + "/" + child, timeout: timeout)
                }
            } catch where error == .resourceBusy && HostEnvironment.monotonicSeconds() < deadline {
                CgroupFS.pause(interval)
                interval = min(interval * 2, 5e-3)
            } catch {
                throw CorralError(.supervisionFailed, operation: "rmdir", path: directory, errno: error,
                                  hint: CgroupHints.hint(for: error))
            }
        }
    }
}

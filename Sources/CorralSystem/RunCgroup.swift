import Glibc
import Synchronization
import SystemPackage

/// One run's cgroup: created before the command starts, the sandbox's first process placed
/// in it while it waits for the supervisor's go-ahead, removed after the run.
///
/// It is one group of the same name, `corral-<supervisor pid>-<n>`, in each hierarchy used
/// (see ``CgroupPlan`` for which), made inside the supervisor's own cgroup there, never at
/// a root unless the supervisor sits at that root. The name lets ``removeStale(host:)`` find
/// the groups of a supervisor that died without cleaning up.
///
/// Lifetime is explicit: ``remove()`` deletes the groups, and nothing happens on `deinit`
/// (a group must not vanish under a run that is still being killed).
public final class RunCgroup: Sendable {
    /// Where one concern of the run lives: the group's folder in the hierarchy handling it.
    struct Placement: Sendable, Hashable {
        var version: Int
        var directory: String
    }

    public let name: String
    /// The group's folder in every hierarchy used, v2 first.
    public let directories: [String]
    /// The group's folder in the v2 tree, when used: for `CLONE_INTO_CGROUP` and for
    /// watching `cgroup.events` (populated, frozen) with `POLLPRI`.
    public let unifiedDirectory: String?
    /// How each limit is enforced and how freeze and kill work, in the order applied.
    public let enforcement: [CgroupEnforcement]

    let memory: Placement?
    let pids: Placement?
    let cpuUsage: Placement?
    let freezer: Placement?
    /// `cgroup.kill`, when the kernel has it (5.14).
    let killFile: String?

    init(name: String, directories: [String], unifiedDirectory: String?, enforcement: [CgroupEnforcement],
         memory: Placement?, pids: Placement?, cpuUsage: Placement?, freezer: Placement?, killFile: String?) {
        self.name = name
        self.directories = directories
        self.unifiedDirectory = unifiedDirectory
        self.enforcement = enforcement
        self.memory = memory
        self.pids = pids
        self.cpuUsage = cpuUsage
        self.freezer = freezer
        self.killFile = killFile
    }

    /// Numbers the groups of this supervisor.
    private static let counter = Atomic<UInt64>(0)

    // MARK: - Create

    /// Creates the run's group in every hierarchy the plan uses and applies `limits`. Nothing
    /// is half-applied: when a step fails, the folders made so far are removed.
    ///
    /// On a v2 tree the controllers the limits need are first enabled in the supervisor's
    /// cgroup (see ``enableControllers(_:in:supervisor:mayMoveSupervisor:)`` for the
    /// no-internal-process rule); memory and pids accounting without a limit are enabled
    /// only where that needs no move, else left out (``usage()`` then has nil there).
    ///
    /// - Throws: `CorralError` with code `.kernelUnsupported` when no cgroup hierarchy is
    ///   writable by this user, or a limit has no controller here (the caller may run
    ///   without it and say so); `.profileInvalid` for a limit the kernel would refuse;
    ///   `.setupFailed` when a step the host should allow fails.
    public static func create(limits: CgroupLimits, host: CgroupHost) throws(CorralError) -> RunCgroup {
        try limits.validate()
        var plan = CgroupPlan(host: host, limits: limits)
        if let problem = plan.notWritable {
            throw CorralError(.kernelUnsupported, operation: "create cgroup",
                              path: host.unified?.directory ?? host.legacy.first?.directory,
                              errno: .permissionDenied, message: problem, hint: CgroupHints.notWritable)
        }
        if !plan.unenforceable.isEmpty {
            throw CorralError(.kernelUnsupported, operation: "create cgroup",
                              message: plan.unenforceable.map { "limits.\($0)" }.joined(separator: ", ")
                                  + ": no writable cgroup controller on this host (`corral probe` shows what there is)",
                              hint: CgroupHints.notWritable)
        }
        if let unified = plan.unified, !plan.v2Wanted.isEmpty {
            if !plan.v2Required.isEmpty {
                try enableControllers(plan.v2Wanted, in: unified.directory, supervisor: getpid(), mayMoveSupervisor: true)
            } else {
                // Accounting alone is worth neither a failed run nor moving the caller's
                // process into a leaf (a library user would not expect it).
                do {
                    try enableControllers(plan.v2Wanted, in: unified.directory, supervisor: getpid(), mayMoveSupervisor: false)
                } catch {
                    plan.withoutV2(plan.v2Wanted)
                }
            }
        }
        let pid = getpid()
        var attempt = 0
        while true {
            let name = "corral-\(pid)-\(counter.add(1, ordering: .relaxed).newValue)"
            do {
                return try make(name, plan)
            } catch let error where error.errno == .fileExists && attempt < 8 {
                attempt += 1  // left by an earlier supervisor with the same pid
            }
        }
    }

    /// Makes the folders and writes the limits; on failure removes what it made.
    private static func make(_ name: String, _ plan: CgroupPlan) throws(CorralError) -> RunCgroup {
        var created: [String] = []
        do throws(CorralError) {
            for parent in plan.parents {
                let directory = parent + "/" + name
                do { try CgroupFS.makeDirectory(directory) } catch {
                    throw CorralError(.setupFailed, operation: "mkdir", path: directory, errno: error,
                                      hint: CgroupHints.hint(for: error))
                }
                created.append(directory)
            }
            var enforcement: [CgroupEnforcement] = []
            for (limit, backend) in plan.limitBackends {
                let directory = plan.directory(of: backend, name: name)
                var skipped: Set<String> = []
                for write in plan.writes(for: backend, limit: limit) {
                    let path = directory + "/" + write.file
                    do { try CgroupFS.write(path, write.value) } catch where write.optional && error == .noSuchFileOrDirectory {
                        skipped.insert(write.file)
                    } catch {
                        throw CorralError(error == .invalidArgument ? .profileInvalid : .setupFailed,
                                          operation: "write `\(write.value)` to", path: path, errno: error,
                                          message: "limits.\(limit)", hint: CgroupHints.hint(for: error))
                    }
                }
                enforcement.append(CgroupEnforcement(limit: limit, mechanism: plan.mechanism(limit, backend, skipped: skipped)))
            }
            let unifiedDirectory = plan.unified.map { $0.directory + "/" + name }
            let killFile = unifiedDirectory.map { $0 + "/cgroup.kill" }.flatMap { CgroupFS.exists($0) ? $0 : nil }
            if let freezer = plan.freezer {
                enforcement.append(CgroupEnforcement(limit: "freeze", mechanism: plan.mechanism("freeze", freezer)))
                enforcement.append(CgroupEnforcement(limit: "kill", mechanism: plan.mechanism(
                    "kill", freezer, skipped: killFile == nil ? ["cgroup.kill"] : [])))
            } else {
                enforcement.append(CgroupEnforcement(limit: "kill", mechanism: "SIGKILL to each process until none is left"))
            }
            func placement(_ backend: CgroupPlan.Backend?) -> Placement? {
                backend.map { b in
                    Placement(version: b == .v2 ? 2 : 1, directory: plan.directory(of: b, name: name))
                }
            }
            return RunCgroup(name: name, directories: created, unifiedDirectory: unifiedDirectory, enforcement: enforcement,
                             memory: placement(plan.memory), pids: placement(plan.pids),
                             cpuUsage: placement(plan.cpuUsage), freezer: placement(plan.freezer), killFile: killFile)
        } catch {
            for directory in created.reversed() { try? CgroupFS.removeDirectory(directory) }
            throw error
        }
    }

    // MARK: - Membership

    /// Handles that let a new process start inside the group rather than be moved there: the
    /// v2 group's folder, for clone3's `CLONE_INTO_CGROUP`, and each v1 group's `tasks` file,
    /// into which the process writes "0" itself (the launcher's first step). Moving a process
    /// from outside (``attach(pid:)``) makes the kernel wait out an RCU grace period, 3-13 ms
    /// here; neither of these does (see `cgroup_fd` in corral_launch.h). The caller closes
    /// them once the process is cloned.
    ///
    /// - Throws: `CorralError` (`.setupFailed`) naming the folder or file that did not open.
    public func openJoin() throws(CorralError) -> CgroupJoin {
        var join = CgroupJoin()
        do throws(CorralError) {
            for directory in directories {
                let isUnified = directory == unifiedDirectory
                let path = isUnified ? directory : directory + "/tasks"
                let flags = isUnified ? O_RDONLY | O_DIRECTORY | O_CLOEXEC : O_WRONLY | O_CLOEXEC
                let fd: Int32
                do { fd = try valueOrErrno { system_open(path, flags) }.get() } catch {
                    throw CorralError(.setupFailed, operation: "open", path: path, errno: error,
                                      hint: CgroupHints.hint(for: error))
                }
                if isUnified {
                    join.folder = FileDescriptor(rawValue: fd)
                    join.folderPath = path
                } else {
                    join.tasks.append(FileDescriptor(rawValue: fd))
                    join.taskPaths.append(path)
                }
            }
        } catch {
            join.close()
            throw error
        }
        return join
    }

    /// Places process `pid` (and, from then on, every process it starts) in the run's group
    /// in every hierarchy. Call it while the process waits for the go-ahead, before it can
    /// fork. A failure midway leaves the process in some of the groups: kill it.
    ///
    /// - Throws: `CorralError` (`.setupFailed`) naming the `cgroup.procs` file and errno
    ///   (`ESRCH` when the process already exited).
    public func attach(pid: Int32) throws(CorralError) {
        for directory in directories {
            let path = directory + "/cgroup.procs"
            do { try CgroupFS.write(path, String(pid)) } catch {
                throw CorralError(.setupFailed, operation: "attach process \(pid) to", path: path, errno: error,
                                  hint: CgroupHints.hint(for: error))
            }
        }
    }

    /// The processes in the group (its v2 folder, else the first v1 one), nested groups
    /// included.
    public func processes() -> [Int32] {
        Self.processes(under: directories[0])
    }

    static func processes(under directory: String) -> [Int32] {
        var result = CgroupFS.processIDs(CgroupFS.read(directory + "/cgroup.procs") ?? "")
        for child in CgroupFS.subdirectories(of: directory) {
            result += processes(under: directory + "/" + child)
        }
        return result
    }

    /// Whether any process is left in the group (v2 `cgroup.events` `populated`).
    public var isPopulated: Bool {
        if let unifiedDirectory, let events = CgroupFS.read(unifiedDirectory + "/cgroup.events") {
            return CgroupFS.keyedValues(events)["populated"] != 0
        }
        return directories.contains { !Self.processes(under: $0).isEmpty }
    }

    // MARK: - Usage

    /// What the group used so far. Cheap (a few small reads); call it after the run ends for
    /// the report, or while it runs to watch a CPU-time budget.
    public func usage() -> CgroupUsage {
        var usage = CgroupUsage()
        if let memory { usage.readMemory(version: memory.version) { CgroupFS.read(memory.directory + "/" + $0) } }
        if let pids { usage.readProcesses { CgroupFS.read(pids.directory + "/" + $0) } }
        if let cpuUsage { usage.readCPU(version: cpuUsage.version) { CgroupFS.read(cpuUsage.directory + "/" + $0) } }
        return usage
    }
}

/// What a new process needs to start inside a run's group: see ``RunCgroup/openJoin()``.
public struct CgroupJoin: Sendable {
    /// The v2 group's folder (`CLONE_INTO_CGROUP`), when the group has one.
    public var folder: FileDescriptor?
    public var folderPath: String?
    /// The v1 groups' `tasks` files, opened for writing.
    public var tasks: [FileDescriptor] = []
    /// Their paths, for messages.
    public var taskPaths: [String] = []

    public init() {}

    public func close() {
        folder?.closeChecked()
        for fd in tasks { fd.closeChecked() }
    }
}

/// Host advice for cgroup failures, kept apart from the code that detects them.
enum CgroupHints {
    static let notWritable = "cgroup not writable by this user: run as root, or under a systemd-delegated cgroup "
        + "(`systemd-run --user --scope -p Delegate=yes corral …`), or set limits.enforce: best-effort"

    static func hint(for errno: Errno) -> String? {
        switch errno {
        case .permissionDenied, .notPermitted: notWritable
        case .noSuchProcess: "the process exited before it was placed in its cgroup"
        case .noSpace: "the hierarchy's cgroup.max.descendants or cgroup.max.depth is reached"
        case .resourceBusy: "processes are still in the group: kill it first"
        case .noSuchFileOrDirectory: "this kernel or hierarchy lacks the file: `corral probe` shows the cgroup setup"
        default: nil
        }
    }
}

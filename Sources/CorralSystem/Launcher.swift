import CCorralLaunch
import CorralPlan
import CorralProfile
import Glibc
import Synchronization
import SystemPackage

/// A running sandbox: its init (pid 1 inside), a pidfd for it, and the pipe on which init
/// reports the command's wait status.
public final class SandboxProcess: @unchecked Sendable {
    // @unchecked: the descriptors are set once; `reap` and `signal` go through the kernel,
    // which orders them, and the supervisor calls `reap` from one thread.
    public let pid: pid_t
    let pidfd: FileDescriptor
    let statusRead: FileDescriptor
    private var reaped = false
    /// CPU time and peak RSS of the whole tree (init reaps every process of the sandbox),
    /// known once `reap` returned.
    public private(set) var usage: ProcessUsage?

    init(pid: pid_t, pidfd: FileDescriptor, statusRead: FileDescriptor) {
        self.pid = pid
        self.pidfd = pidfd
        self.statusRead = statusRead
    }

    deinit {
        if !reaped {  // dropped while running (an error in the caller): nothing may outlive it
            killTree()
            _ = reap()
        }
        pidfd.closeChecked()
        statusRead.closeChecked()
    }

    /// The pidfd, for polling (readable when init has exited).
    public var pollDescriptor: Int32 { pidfd.rawValue }

    /// Sends `signal` to the sandbox's init, which forwards SIGTERM, SIGINT, SIGHUP … to the
    /// command; SIGKILL ends init and with it every process of the sandbox.
    ///
    /// The corresponding C function is `pidfd_send_signal`.
    public func signal(_ signal: Int32) {
        _ = corral_pidfd_send_signal(pidfd.rawValue, signal)
    }

    /// SIGKILL to the sandbox's init: the kernel then kills every process of its pid
    /// namespace, so nothing of the run survives.
    public func killTree() {
        signal(SIGKILL)
    }

    /// Waits for init to end, reaps it, and returns the raw wait status of the run: the
    /// command's, as init reported it, or init's own when init was killed before reporting.
    /// Blocks.
    ///
    /// The corresponding C function is `waitid(P_PIDFD)`.
    public func reap() -> Int32 {
        var initStatus: Int32 = 0
        var raw = corral_usage()
        let rc = unsafe corral_pidfd_wait_usage(pidfd.rawValue, &initStatus, 0, &raw)
        reaped = true
        if rc == 0 {
            usage = ProcessUsage(userSeconds: Double(raw.user_microseconds) / 1e6,
                                 systemSeconds: Double(raw.system_microseconds) / 1e6,
                                 largestResidentBytes: raw.max_rss_kib * 1024)
        }
        let bytes = (try? statusRead.readFully(count: 4)) ?? []
        if bytes.count == 4 {
            return unsafe bytes.withUnsafeBytes { unsafe $0.loadUnaligned(as: Int32.self) }
        }
        return rc == 0 ? initStatus : 0x7F00
    }
}

/// A reference to a running sandbox's mount namespace. When init exits holding the last
/// one, its exit, and so the supervisor's wake-up, waits for the namespace's teardown: every
/// mount unmounted and an RCU grace period (~0.3 ms here, on every run's critical path). With
/// this reference taken while the command runs, init's exit is prompt, and the teardown
/// happens when the reference is released: `releaseInBackground` does it on a thread of its
/// own while the supervisor writes the report and the audit entry.
public final class MountNamespaceHold: Sendable {
    private let descriptor: Mutex<Int32>
    private let releasing = Mutex<HostEnvironment.JoinableThread?>(nil)

    /// Takes the reference; nil when `/proc/PID/ns/mnt` cannot be opened (then init's exit
    /// does the teardown, as without it). `pid` must be the caller's unreaped child.
    public init?(pid: pid_t) {
        let fd = system_open("/proc/\(pid)/ns/mnt", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        descriptor = Mutex(fd)
    }

    deinit { release() }

    private func take() -> Int32 { descriptor.withLock { fd in defer { fd = -1 }; return fd } }

    /// Drops the reference on a thread of its own (the namespace's teardown runs there).
    public func releaseInBackground() {
        let fd = take()
        guard fd >= 0 else { return }
        let thread = HostEnvironment.startJoinableThread { _ = Glibc.close(fd) }
        releasing.withLock { $0 = thread }
    }

    /// Drops the reference, or waits for `releaseInBackground`'s thread: the teardown is over
    /// when this returns.
    public func release() {
        let fd = take()
        if fd >= 0 { _ = Glibc.close(fd) }
        if let thread = releasing.withLock({ slot in defer { slot = nil }; return slot }) { HostEnvironment.join(thread) }
    }
}

/// What a reaped process tree used, from the kernel's rusage accounting.
public struct ProcessUsage: Sendable, Hashable {
    public var userSeconds: Double
    public var systemSeconds: Double
    /// The peak resident set of the largest single process (not the tree's sum).
    public var largestResidentBytes: UInt64
}

/// A sandbox cloned before its plan was complete: init is building its namespaces while the
/// caller prepares the rest (`Materializer.prepare`); `go` hands the plan over. Dropping it
/// without `go` kills the child.
@safe public final class PendingLaunch {  // @safe: `cPlan` points into `arena`, which it owns
    let shape: SandboxShape
    let process: SandboxProcess
    private var arena: SharedArena?
    private let cPlan: UnsafeMutablePointer<corral_launch_plan>
    private let sync: FileDescriptor
    private let report: FileDescriptor
    private var handedOver = false
    /// The `tasks` files init joins, for messages (`LaunchStage.cgroup`'s index).
    private let cgroupPaths: [String]
    /// The egress listeners init made inside the sandbox (`plan.egress.listeners`, in order),
    /// received during `go`; the caller takes them (and must close them).
    public private(set) var egressListeners: [FileDescriptor] = []

    init(shape: SandboxShape, process: SandboxProcess, arena: SharedArena, cPlan: UnsafeMutablePointer<corral_launch_plan>,
         sync: FileDescriptor, report: FileDescriptor, cgroupPaths: [String]) {
        self.shape = shape
        self.cgroupPaths = cgroupPaths
        self.process = process
        self.arena = arena
        unsafe self.cPlan = cPlan
        self.sync = sync
        self.report = report
    }

    deinit {
        if !handedOver {
            sync.closeChecked()
            unsafe corral_release_child(cPlan)  // it reads end-of-file and ends
            report.closeChecked()
        }
    }

    /// The sandbox's pid (pid 1 inside), e.g. to place it in a cgroup before `go`.
    public var pid: pid_t { process.pid }

    /// The sandbox (its init), to signal or kill before `go` returns — e.g. from a rule that
    /// fires on the command's own watched execve.
    public var sandbox: SandboxProcess { process }

    /// Writes the rest of the plan, sends "go" (with the Landlock ruleset) and waits until the
    /// command has been executed or a setup step failed.
    /// - Parameter onListener: when the plan watches syscalls, receives the seccomp listener
    ///   the command sends just before its execve, and the command's launch memory (see
    ///   `LaunchMemory`), on this thread, while this call still waits for the exec. It must
    ///   start serving the listener elsewhere and return: the command's own execve may be a
    ///   watched call. Without it the listener is closed, and watched calls then fail with ENOSYS.
    /// - Throws: `CorralError` with the failing stage, index and errno.
    /// - Parameter whileWaiting: work of the caller's that needs nothing from the sandbox,
    ///   done after "go" is sent and before the wait for the exec (the sandbox builds its root
    ///   meanwhile). Not with `onListener`: the listener must be served at once.
    public func go(_ prepared: PreparedLaunch,
                   onListener: ((FileDescriptor, LaunchMemory) -> Void)? = nil,
                   whileWaiting: (() -> Void)? = nil) throws(CorralError) -> SandboxProcess {
        precondition(onListener == nil || whileWaiting == nil, "PendingLaunch.go: whileWaiting would delay the listener")
        precondition(!handedOver, "PendingLaunch.go called twice")
        precondition(prepared.plan.shape == shape, "plan compiled for another sandbox shape")
        handedOver = true
        defer { report.closeChecked() }
        guard let arena else { preconditionFailure("arena released before go") }
        unsafe Launcher.writePlan(cPlan, prepared: prepared, arena: arena, rootBase: Launcher.rootBase)
        guard !arena.overflowed else {
            sync.closeChecked()
            unsafe corral_release_child(cPlan)
            throw CorralError(.setupFailed, operation: "prepare launch plan",
                              message: "the plan (command, environment, paths) is larger than \(SharedArena.capacity >> 20) MiB")
        }
        // A child that failed before "go" has closed its end: EPIPE here, and its failure
        // record is waiting on the report pipe.
        // Off this CPU first: init may leave its wait (its timed check) as soon as go is sent.
        unsafe corral_spread_child(cPlan, process.pid)
        let sent = corral_send_go(sync.rawValue, prepared.landlockRuleset?.rawValue ?? -1)
        sync.closeChecked()
        // The wake-up: init starts on the other core while `whileWaiting` runs on this one.
        unsafe corral_release_child(cPlan)
        whileWaiting?()
        self.arena = nil  // the child's mapping keeps the pages until init unmaps them
        // The watcher may read the command's exec arguments here until the exec is reported.
        let launchMemory = onListener == nil ? nil : LaunchMemory(arena)
        defer { launchMemory?.close() }

        // The first record: "executed" (stage none) or the step that failed; the watch
        // program's listener, if any, arrives before it. End-of-file without a record: init
        // died before the command was spawned.
        var handOver: ((FileDescriptor) -> Void)?
        if let onListener, let launchMemory { handOver = { onListener($0, launchMemory) } }
        var sockets: [FileDescriptor] = []
        let received = Launcher.receiveReport(report, onListener: handOver) { sockets.append($0) }
        guard let failure = received else {
            for socket in sockets { socket.closeChecked() }
            let raw = process.reap()
            let status = raw & 0x7F == 0 ? "exited \((raw >> 8) & 0xFF)" : "killed by signal \(raw & 0x7F)"
            throw CorralError(.setupFailed, operation: "start the command",
                              message: "the sandbox's init ended before the command started (\(status)\(sent < 0 ? ", go: \(Errno(rawValue: -sent))" : ""))",
                              hint: "it was killed from outside, or by a resource limit during setup")
        }
        let expected = prepared.plan.egress?.listeners.count ?? 0
        if failure.stage == CORRAL_STAGE_NONE.rawValue && sockets.count == expected {
            egressListeners = sockets
            return process
        }
        for socket in sockets { socket.closeChecked() }
        if failure.stage == CORRAL_STAGE_NONE.rawValue {  // cannot happen: init sends them all or fails
            process.killTree()
            _ = process.reap()
            throw CorralError(.setupFailed, stage: .network, operation: "receive egress listeners",
                              message: "init handed over \(sockets.count) of \(expected) listening sockets")
        }
        _ = process.reap()
        let stage = LaunchStage(rawValue: failure.stage)
        let errno = Errno(rawValue: failure.err)
        var error = CorralError(stage == .exec ? .execFailed : .setupFailed, stage: stage, index: failure.index,
                                operation: stage?.operation ?? "setup",
                                path: stage == .cgroup ? cgroupPaths.dropFirst(Int(failure.index)).first
                                    : Launcher.path(for: stage, index: failure.index, in: prepared),
                                errno: errno, location: Launcher.location(for: stage, index: failure.index, in: prepared))
        let i = Int(failure.index)
        if stage == .mountSources, i < prepared.mountOps.count, prepared.mountOps[i].kind == CORRAL_MOUNT_OVERLAY {
            error.operation = "mount the staging overlay over"
            error.hint = "this host cannot stack an overlay here (overlayfs in a user namespace needs Linux 5.11+, and the "
                    + "state directory a filesystem with user xattrs); `corral probe` shows overlayfs support, and "
                    + "`approval: { commit: direct }` writes in place without staging"
        }
        throw error
    }
}

/// Clones the sandbox and hands it its plan. Blocking: run it on a thread that lives as long
/// as the sandbox, because PR_SET_PDEATHSIG fires when the *thread* that cloned the child
/// exits.
public enum Launcher {
    /// Where the new root is assembled before pivot_root (inside the sandbox's own mount
    /// namespace; the host never sees it).
    public static let rootBase = "/tmp"

    /// Clones the sandbox's init with `shape`'s namespaces and identity; it builds them while
    /// the caller compiles and materialises the plan. Then call `go` with a plan of the same
    /// shape.
    /// - Parameter stdio: descriptors for the command's 0, 1, 2; -1 inherits Corral's own.
    /// - Parameter cgroup: the run's group (``RunCgroup/openJoin()``): init is cloned into it
    ///   and in every process of the sandbox from its first step on. The caller keeps and
    ///   closes the handles.
    public static func start(_ shape: SandboxShape, stdio: [Int32] = [-1, -1, -1],
                             cgroup: CgroupJoin? = nil) throws(CorralError) -> PendingLaunch {
        // From the arena's mmap until it is marked MADV_DONTFORK, a concurrent run's clone
        // would inherit it: one launch at a time through this window.
        try launchWindow.withLock { _ throws(CorralError) -> PendingLaunch in
            try startLocked(shape, stdio: stdio, cgroup: cgroup)
        }
    }

    private static let launchWindow = Mutex(())

    private static func startLocked(_ shape: SandboxShape, stdio: [Int32], cgroup: CgroupJoin?) throws(CorralError) -> PendingLaunch {
        let arena = try SharedArena()
        let sync: (parent: FileDescriptor, child: FileDescriptor)
        // The report channel is a socket, not a pipe: the watch program's listener travels on it.
        let report: (readEnd: FileDescriptor, writeEnd: FileDescriptor)
        let status: (readEnd: FileDescriptor, writeEnd: FileDescriptor)
        do {
            sync = try FileDescriptor.closeOnExecSocketPair()
        } catch {
            throw CorralError(.setupFailed, operation: "socketpair", errno: error)
        }
        do {
            report = try FileDescriptor.closeOnExecSocketPair()
        } catch {
            sync.parent.closeChecked()
            sync.child.closeChecked()
            throw CorralError(.setupFailed, operation: "socketpair", errno: error)
        }
        do {
            status = try FileDescriptor.closeOnExecPipe()
        } catch {
            for fd in [sync.parent, sync.child, report.readEnd, report.writeEnd] { fd.closeChecked() }
            throw CorralError(.setupFailed, operation: "pipe2", errno: error)
        }
        let cPlan = unsafe arena.buffer(of: corral_launch_plan.self, count: 1)
        unsafe writeEarlyFields(cPlan, shape: shape, arena: arena, stdio: stdio, cgroup: cgroup, sync: sync.child,
                                report: report.writeEnd, status: status.writeEnd)
        var pid: pid_t = 0
        var pidfd: Int32 = -1
        let rc = unsafe corral_launch(cPlan, &pid, &pidfd)
        arena.stopSharingWithLaterChildren()
        sync.child.closeChecked()
        report.writeEnd.closeChecked()
        status.writeEnd.closeChecked()
        guard rc == 0 else {
            sync.parent.closeChecked()
            report.readEnd.closeChecked()
            status.readEnd.closeChecked()
            let error = Errno(rawValue: rc)
            if let cgroup, cgroup.folder != nil, error != .permissionDenied, error != .invalidArgument {
                throw CorralError(.setupFailed, operation: "clone3 into the run's cgroup", path: cgroup.folderPath, errno: error,
                                  hint: CgroupHints.hint(for: error))
            }
            throw CorralError(.kernelUnsupported, operation: "clone3", errno: error,
                              hint: error == .permissionDenied || error == .invalidArgument
                                  ? "this host does not let this user create the sandbox's namespaces; see `corral probe`"
                                  : nil)
        }
        let process = SandboxProcess(pid: pid, pidfd: FileDescriptor(rawValue: pidfd), statusRead: status.readEnd)
        return unsafe PendingLaunch(shape: shape, process: process, arena: arena, cPlan: cPlan,
                                    sync: sync.parent, report: report.readEnd, cgroupPaths: cgroup?.taskPaths ?? [])
    }

    /// `start` and `go` in one, for callers with nothing to overlap.
    public static func launch(_ prepared: PreparedLaunch,
                              stdio: [Int32] = [-1, -1, -1]) throws(CorralError) -> SandboxProcess {
        try start(prepared.plan.shape, stdio: stdio).go(prepared)
    }

    /// Reads the report socket until end-of-file (nil: the command was executed) or a failure
    /// record. The listener message is handed to `onListener` (or closed), and reading goes on.
    static func receiveReport(_ report: FileDescriptor, onListener: ((FileDescriptor) -> Void)?,
                              onSocket: (FileDescriptor) -> Void = { $0.closeChecked() }) -> corral_child_failure? {
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            var passed: Int32 = -1
            let n = unsafe buffer.withUnsafeMutableBytes { raw in
                unsafe corral_receive_report(report.rawValue, raw.baseAddress, raw.count, &passed)
            }
            let attached = passed >= 0 ? FileDescriptor(rawValue: passed) : nil
            if n == 1 && buffer[0] == UInt8(CORRAL_REPORT_LISTENER), let attached {
                if let onListener { onListener(attached) } else { attached.closeChecked() }
                continue
            }
            if n == 1 && buffer[0] == UInt8(CORRAL_REPORT_SOCKET), let attached {
                onSocket(attached)
                continue
            }
            attached?.closeChecked()
            if n <= 0 { return nil }  // end-of-file (an error reads as the same: nothing more will come)
            guard n == MemoryLayout<corral_child_failure>.size else { continue }
            return unsafe buffer.withUnsafeBytes { unsafe $0.loadUnaligned(as: corral_child_failure.self) }
        }
    }

    /// The path a failed step was working on, for the message.
    static func path(for stage: LaunchStage?, index: UInt32, in prepared: PreparedLaunch) -> String? {
        let i = Int(index)
        switch stage {
        case .mountSources where i < prepared.mountOps.count: return prepared.mountOps[i].source
        case .mounts where i < prepared.mountOps.count: return "/" + prepared.mountOps[i].target
        case .landlockRules where i < prepared.landlockChildRules.count: return prepared.landlockChildRules[i].path
        case .chdir: return prepared.plan.workdir
        case .network where i >= 1:
            return (prepared.plan.egress?.listeners.dropFirst(i - 1).first).map { "\(EgressPlan.listenAddress):\($0.port)" }
        case .exec: return prepared.plan.command.first
        default: return nil
        }
    }

    static func location(for stage: LaunchStage?, index: UInt32, in prepared: PreparedLaunch) -> ManifestLocation? {
        guard stage == .mountSources || stage == .mounts, Int(index) < prepared.mountOps.count else { return nil }
        let target = "/" + prepared.mountOps[Int(index)].target
        return prepared.plan.mounts.first { $0.path == target }?.origin
    }
}

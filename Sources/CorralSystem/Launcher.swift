import CCorralLaunch
import CorralPlan
import CorralProfile
import Glibc
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
        let rc = corral_pidfd_wait(pidfd.rawValue, &initStatus, 0)
        reaped = true
        let bytes = (try? statusRead.readFully(count: 4)) ?? []
        if bytes.count == 4 {
            return bytes.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
        }
        return rc == 0 ? initStatus : 0x7F00
    }
}

/// Clones a prepared launch into its namespaces and waits until the command has been
/// executed (or a setup step failed). Blocking: run it on a thread that lives as long as the
/// sandbox, because PR_SET_PDEATHSIG fires when the *thread* that cloned the child exits.
public enum Launcher {
    /// Where the new root is assembled before pivot_root (inside the sandbox's own mount
    /// namespace; the host never sees it).
    public static let rootBase = "/tmp"

    /// - Parameter stdio: descriptors for the command's 0, 1, 2; -1 inherits Corral's own.
    /// - Throws: `CorralError` with the failing stage, index and errno.
    public static func launch(_ prepared: PreparedLaunch,
                              stdio: [Int32] = [-1, -1, -1]) throws(CorralError) -> SandboxProcess {
        let sync, report, status: (readEnd: FileDescriptor, writeEnd: FileDescriptor)
        do {
            sync = try FileDescriptor.closeOnExecPipe()
            report = try FileDescriptor.closeOnExecPipe()
            status = try FileDescriptor.closeOnExecPipe()
        } catch {
            throw CorralError(.setupFailed, operation: "pipe2", errno: error)
        }
        let cloned = cloneSandbox(prepared, stdio: stdio, syncRead: sync.readEnd, reportWrite: report.writeEnd,
                                  statusWrite: status.writeEnd, rootBase: rootBase)
        sync.readEnd.closeChecked()
        report.writeEnd.closeChecked()
        status.writeEnd.closeChecked()
        defer { report.readEnd.closeChecked() }
        let child: (pid: pid_t, pidfd: Int32)
        switch cloned {
        case .success(let cloned):
            child = cloned
        case .failure(let error):
            sync.writeEnd.closeChecked()
            status.readEnd.closeChecked()
            throw CorralError(.kernelUnsupported, operation: "clone3", errno: error,
                              hint: error == .permissionDenied || error == .invalidArgument
                                  ? "this host does not let this user create the sandbox's namespaces; see `corral probe`"
                                  : nil)
        }
        let process = SandboxProcess(pid: child.pid, pidfd: FileDescriptor(rawValue: child.pidfd),
                                     statusRead: status.readEnd)
        // Go. Until this byte arrives the child waits, so it cannot outlive a parent that died
        // before PR_SET_PDEATHSIG was in place.
        try? sync.writeEnd.writeFully([1])
        sync.writeEnd.closeChecked()

        // End-of-file: the command was executed (every copy of the write end is close-on-exec
        // or closed by init once the command is running).
        let record = (try? report.readEnd.readFully(count: MemoryLayout<corral_child_failure>.size)) ?? []
        guard record.count == MemoryLayout<corral_child_failure>.size else { return process }
        let failure = record.withUnsafeBytes { $0.loadUnaligned(as: corral_child_failure.self) }
        _ = process.reap()
        let stage = LaunchStage(rawValue: failure.stage)
        let errno = Errno(rawValue: failure.err)
        throw CorralError(stage == .exec ? .execFailed : .setupFailed, stage: stage, index: failure.index,
                          operation: stage?.operation ?? "setup", path: path(for: stage, index: failure.index, in: prepared),
                          errno: errno, location: location(for: stage, index: failure.index, in: prepared))
    }

    /// The path a failed step was working on, for the message.
    static func path(for stage: LaunchStage?, index: UInt32, in prepared: PreparedLaunch) -> String? {
        let i = Int(index)
        switch stage {
        case .mountSources where i < prepared.mountOps.count: return prepared.mountOps[i].source
        case .mounts where i < prepared.mountOps.count: return "/" + prepared.mountOps[i].target
        case .landlockRules where i < prepared.landlockChildRules.count: return prepared.landlockChildRules[i].path
        case .chdir: return prepared.plan.workdir
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

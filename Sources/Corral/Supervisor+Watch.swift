import CorralSystem
import Synchronization

// MARK: - Syscall watching (`syscalls.watch`)

extension Supervisor {
    static let streamedCallLimit = 10_000

    /// The run's syscall watcher, when its plan watches syscalls. Monitor rules see each
    /// call first (a rule that kills refuses the call), then the caller's decider; each call
    /// becomes a `syscall` event, queued once the call is answered (`EventLog.enqueue`: its
    /// number and time are fixed then; the JSON, the stream and the audit entry follow on the
    /// supervisor's thread).
    func makeSyscallWatcher(_ prepared: PreparedLaunch, start: Double, control: RunControl) -> SyscallWatcher? {
        guard prepared.watchProgram != nil else { return nil }
        let decider = options.watchDecision
        let observer = options.onWatchedCall
        let events = control.events
        // The event stream keeps the first 10,000 watched calls (the report keeps a bounded
        // log too); past that a flood of calls costs no more disk.
        let streamed = Atomic<Int>(0)
        return SyscallWatcher(
            syscalls: prepared.watchedSyscalls,
            decide: { call in
                let ruled = control.decide(call, HostEnvironment.monotonicSeconds())
                if ruled != .continue { return ruled }
                return decider?(call) ?? .continue
            },
            observe: { call in
                let count = streamed.add(1, ordering: .relaxed).newValue
                if count <= Self.streamedCallLimit {
                    events.enqueueSyscall(call)
                } else if count == Self.streamedCallLimit + 1 {
                    events.enqueue(.limit) { $0.limit = "events"; $0.detail = "more watched calls than \(Self.streamedCallLimit); not streamed" }
                }
                observer?(call)
            },
            limit: max(0, options.watchLogLimit), start: start)
    }

    /// Hands the plan over. The command sends the watch listener just before its execve,
    /// which may itself be watched: the watcher starts serving while `go` still waits for the
    /// exec. When the launch fails the sandbox is gone already, and the watcher is joined here.
    /// - Parameter whileWaiting: done while the sandbox builds its root, when nothing is
    ///   watched (a watcher must serve the listener at once; the caller then does it after).
    func launch(_ pending: PendingLaunch, _ prepared: PreparedLaunch, watcher: SyscallWatcher?,
                control: RunControl, whileWaiting: @escaping () -> Void) throws(CorralError) -> SandboxProcess {
        guard let watcher else { return try pending.go(prepared, whileWaiting: whileWaiting) }
        do {
            return try pending.go(prepared) { watcher.serve($0, launchMemory: $1) }
        } catch {
            _ = watcher.finish()
            control.events.drain()  // the refused exec's event
            throw error
        }
    }
}

extension RunReport {
    /// The watched calls, and the watch program among the installed seccomp programs (last).
    mutating func record(_ log: WatchLog, program: SeccompProgram?) {
        watched = log.calls
        watchedDropped = log.dropped
        if let program { seccompInstructions.append(program.instructionCount) }
    }
}

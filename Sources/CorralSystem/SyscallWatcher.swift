import CCorralLaunch
import Glibc
import Synchronization
import SystemPackage

/// Decides a watched call: `.continue` lets it run, `.deny(errno:)` fails it. Called on the
/// watcher's thread while the caller waits, so it must be quick and must not block on the
/// sandbox (the run cannot end while it does). It sees the call as read, its `decision` not
/// yet set (`.continue`); see `WatchedCall` on what a record proves.
public typealias WatchDecider = @Sendable (WatchedCall) -> WatchDecision

/// Serves the seccomp listener of one run on a thread of its own: receives each watched call,
/// decodes it from the caller's memory, checks that the notification is still pending, asks
/// the decider, answers, and records the call.
///
/// Lifetime: created before the launch; `serve` is called by the launcher's report loop with
/// the listener the command sends just before its execve (which may itself be watched, so
/// the thread starts at once); `finish` joins the thread once the run is over. The thread ends
/// by itself when no process uses the filter any more: the kernel reports that once every
/// process of the sandbox has exited (Linux 6.11+; before, once each was reaped), which is
/// before the sandbox's init can be reaped.
///
/// Per call, only what the answer needs comes before it: the decoding, the check that the
/// notification is still pending, the decision. The record (the log, the observer, which
/// queues the run's event) follows the answer; the caller then runs on, while this thread
/// goes back to waiting.
public final class SyscallWatcher: @unchecked Sendable {
    // @unchecked: `thread` and `launchMemory` are set by `serve` before the thread starts, and
    // `waitsInReceiveOverride` (tests) before `serve`, which reads it; `finish` reads `thread`
    // on the same (supervisor's) thread. The watcher thread reads only what `serve` set before
    // starting it, the immutable fields and `log`.
    private let syscalls: [Int32: String]
    private let decide: WatchDecider?
    private let observe: (@Sendable (WatchedCall) -> Void)?
    private let limit: Int
    private let start: Double
    private let log = Mutex(WatchLog())
    /// What the log keeps of the calls' strings, in all (the report stays a few MB).
    static let byteBudget = 4 << 20
    private var thread: HostEnvironment.JoinableThread?
    /// Overrides `Self.waitsInReceive` (tests of the poll path on a newer kernel).
    var waitsInReceiveOverride: Bool?
    private var launchMemory: LaunchMemory?

    /// - Parameters:
    ///   - syscalls: the watched syscalls of this architecture by number (`PreparedLaunch.watchedSyscalls`).
    ///   - decide: the decision hook; nil lets every call continue.
    ///   - observe: sees every call after it was answered, on the watcher's thread.
    ///   - limit: how many calls the log keeps (the rest are counted).
    ///   - start: the run's start, `HostEnvironment.monotonicSeconds()`, for `WatchedCall.time`.
    public init(syscalls: [Int32: String], decide: WatchDecider?, observe: (@Sendable (WatchedCall) -> Void)?,
                limit: Int, start: Double) {
        self.syscalls = syscalls
        self.decide = decide
        self.observe = observe
        self.limit = limit
        self.start = start
    }

    /// Starts serving `listener` (taking ownership of it: the watcher's thread closes it when
    /// it ends), with the command's launch memory for decoding its own execve. Called once, by
    /// `PendingLaunch.go`'s `onListener`.
    public func serve(_ listener: FileDescriptor, launchMemory: LaunchMemory?) {
        precondition(thread == nil, "SyscallWatcher.serve called twice")
        self.launchMemory = launchMemory
        // The caller and the supervisor then hand over on one CPU instead of a cross-CPU
        // wake-up each way, which roughly halves the round trip (Linux 6.6+).
        let sync = corral_notify_set_sync_wake_up(listener.rawValue) == 0
        log.withLock { $0.syncWakeUp = sync }
        let fd = listener.rawValue
        let waitsInReceive = waitsInReceiveOverride ?? Self.waitsInReceive
        thread = HostEnvironment.startJoinableThread { [self] in
            loop(fd, waitsInReceive: waitsInReceive)
            // Whatever ended the loop, nobody answers from here on: closing the listener makes
            // the kernel fail pending and later watched calls with ENOSYS instead of leaving
            // them waiting (seccomp_unotify(2)).
            listener.closeChecked()
        }
    }

    /// Waits for the watcher's thread to end and returns what it recorded. Call it only once
    /// the sandbox is gone (reaped): the thread ends when no process uses the filter.
    public func finish() -> WatchLog {
        if let thread { HostEnvironment.join(thread) }
        return log.withLock { $0 }
    }

    /// Whether the thread waits in SECCOMP_IOCTL_NOTIF_RECV itself (Linux 6.11+), decided
    /// once. RECV returns when no process uses the filter any more only since 6.11 (commit
    /// "seccomp: interrupt SECCOMP_IOCTL_NOTIF_RECV when all users have exited"); before, it
    /// would wait forever, and the thread waits in poll instead, which reports POLLHUP.
    static let waitsInReceive: Bool = {
        guard let version = HostProbe.kernelVersion(release: HostProbe.kernelRelease()) else { return false }
        return version >= (6, 11)
    }()

    /// Receives and handles notifications until no process uses the filter.
    ///
    /// Waiting in RECV saves a poll per call (a syscall and its wait-queue setup); the hand-over
    /// is the same either way, since SYNC_WAKE_UP wakes whichever waiter the listener has on
    /// the caller's CPU. RECV answers ENOENT both when the caller was killed before the
    /// notification was taken and, since 6.11, when no process uses the filter: POLLHUP (asked
    /// without waiting) tells them apart.
    private func loop(_ listener: Int32, waitsInReceive: Bool) {
        var notification = corral_notification()
        while true {
            if !waitsInReceive {
                let ready = corral_notify_wait(listener)
                if ready <= 0 { return }  // no process uses the filter any more (or the listener broke)
            }
            let rc = unsafe corral_notify_receive(listener, &notification)
            if rc == -ENOENT {
                if waitsInReceive && corral_notify_hung_up(listener) != 0 { return }
                continue  // the caller was killed before we got to it
            }
            if rc < 0 { return }
            handle(notification, listener: listener)
        }
    }

    private func handle(_ notification: corral_notification, listener: Int32) {
        let time = HostEnvironment.monotonicSeconds() - start
        let name = notification.arch == corral_AUDIT_ARCH_NATIVE
            ? syscalls[notification.nr] ?? "syscall \(notification.nr)" : "syscall \(notification.nr) (arch 0x\(String(notification.arch, radix: 16)))"
        var call = SyscallDecoder.decode(notification, name: name, time: time, launchMemory: launchMemory)
        // The pid could have been reused if the caller died while we read: the reads are
        // trustworthy only while its notification is still pending.
        guard corral_notify_id_valid(listener, notification.id) == 0 else { return }
        let decision = decide?(call) ?? .continue
        switch decision {
        case .continue:
            _ = corral_notify_respond(listener, notification.id, 0, 1)
        case .deny(let errno):
            // An error of 0 would make the call "succeed" with 0 without running it.
            precondition((1...4095).contains(errno), "WatchDecision.deny(errno: \(errno)): not an errno")
            _ = corral_notify_respond(listener, notification.id, errno, 0)
        }
        // From here on the caller runs again. An answer that finds the caller gone (ENOENT)
        // changes nothing: the call is recorded as decided.
        call.decision = decision
        // Bounded by count and by bytes: 1,000 execs with 64 KiB argv each would otherwise
        // hold (and report) hundreds of MB.
        let size = call.approximateBytes
        log.withLock { log in
            if log.calls.count < limit, log.bytes + size <= Self.byteBudget {
                log.calls.append(call)
                log.bytes += size
            } else {
                log.dropped += 1
            }
        }
        observe?(call)
    }
}

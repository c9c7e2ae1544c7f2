import CCorralLaunch
import CorralPlan
import CorralProfile
import Glibc
import SystemPackage

/// The run's egress proxy, `corral-egress`: a process of its own next to `corral` (the
/// network-facing parser stays out of the supervisor, and SwiftNIO off every launch's
/// path). It serves the listening sockets the sandbox's init made and writes one line per
/// decision on the control socket; it ends when the supervisor closes its end.
public final class EgressProcess: @unchecked Sendable {
    // @unchecked: used from the supervisor's one thread.
    public let pid: pid_t
    private let pidfd: Int32
    private let control: Int32
    private var pending: [UInt8] = []
    private var reaped = false

    /// The proxy binary: `corral-egress` in `corral`'s own folder.
    public static func executable() -> String {
        let me = HostEnvironment.readLink("/proc/self/exe") ?? "/usr/local/bin/corral"
        let folder = me.lastIndex(of: "/").map { String(me[..<$0]) } ?? "."
        return folder + "/corral-egress"
    }

    /// Fails before anything is launched when the proxy binary is missing.
    public static func checkAvailable(_ executable: String = EgressProcess.executable()) throws(CorralError) {
        guard access(executable, X_OK) != 0 else { return }
        let error = Errno(rawValue: Glibc.errno)
        throw CorralError(.setupFailed, operation: "find the egress proxy", path: executable, errno: error,
                          hint: "corral-egress is built next to corral by scripts/setup; network.mode allowlist and loopback need it")
    }

    /// Starts the proxy for `plan` on `listeners` (in `plan.listeners` order). The caller
    /// still owns (and closes) `listeners`; the proxy has its own copies.
    public init(plan: EgressPlan, listeners: [FileDescriptor], executable: String = EgressProcess.executable())
        throws(CorralError)
    {
        var ends: [Int32] = [-1, -1]
        guard unsafe socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw CorralError(.setupFailed, operation: "socketpair (egress control)", errno: Errno(rawValue: Glibc.errno))
        }
        _ = fcntl(ends[0], F_SETFL, O_NONBLOCK)
        // The proxy's descriptors go above every one of ours, so no move clobbers another.
        let sources = listeners.map(\.rawValue) + [ends[1]]
        let base = (sources.max() ?? 2) + 1
        let targets = sources.indices.map { base + Int32($0) }
        var argv = [executable, "--control-fd", "\(targets[targets.count - 1])"]
        for (index, listener) in plan.listeners.enumerated() {
            let fd = targets[index]
            switch listener.role {
            case .httpProxy: argv += ["--http-fd", "\(fd)"]
            case .socksProxy: argv += ["--socks-fd", "\(fd)"]
            case .forward(let host, let port): argv += ["--forward", "\(fd)=\(host):\(port)"]
            }
        }
        for entry in plan.policy.entries { argv += ["--allow", entry.text] }
        let settings = plan.settings
        argv += ["--idle-timeout", "\(Int(settings.idleTimeout.seconds.rounded(.up)))",
                 "--max-duration", "\(Int(settings.maxDuration.seconds.rounded(.up)))",
                 "--max-connections", "\(settings.maxConnections)"]

        var pid: pid_t = 0
        var pidfd: Int32 = -1
        let cArgv = argv.map { unsafe strdup($0) } + [nil]
        // No environment but this: the Swift runtime's crash handler would run a backtracer
        // binary; a crash is reported by the supervisor from the wait status instead.
        let cEnvp = [unsafe strdup("SWIFT_BACKTRACE=enable=no"), nil]
        defer { for pointer in unsafe cArgv + cEnvp { unsafe free(pointer) } }
        let rc = unsafe corral_spawn_helper(executable, cArgv, cEnvp, sources, targets, Int32(sources.count), &pid, &pidfd)
        Glibc.close(ends[1])
        guard rc == 0 else {
            Glibc.close(ends[0])
            let error = Errno(rawValue: rc)
            throw CorralError(.setupFailed, operation: "start the egress proxy", path: executable, errno: error,
                              hint: error == .noSuchFileOrDirectory
                                  ? "corral-egress is built next to corral by scripts/setup; network.mode allowlist and loopback need it"
                                  : nil)
        }
        self.pid = pid
        self.pidfd = pidfd
        self.control = ends[0]
    }

    deinit {
        stop()
        Glibc.close(control)
        if pidfd >= 0 { Glibc.close(pidfd) }
    }

    /// Readable when decision lines (or end-of-file) are waiting.
    public var pollDescriptor: Int32 { control }
    /// The proxy closed its end (it exited): nothing more will come.
    public private(set) var atEnd = false

    /// The complete lines available now (without their newline). Never blocks.
    public func readLines() -> [String] {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = unsafe buffer.withUnsafeMutableBytes { raw in unsafe Glibc.read(control, raw.baseAddress!, raw.count) }
            if n == 0 || (n < 0 && Glibc.errno != EAGAIN && Glibc.errno != EINTR) { atEnd = true }
            if n <= 0 { break }
            pending.append(contentsOf: buffer[..<n])
            if n < buffer.count { break }
        }
        var lines: [String] = []
        var start = 0
        for index in pending.indices where pending[index] == UInt8(ascii: "\n") {
            lines.append(String(decoding: pending[start..<index], as: UTF8.self))
            start = index + 1
        }
        pending.removeFirst(start)
        // A line longer than any the proxy writes is garbage: drop it rather than grow.
        if pending.count > 1 << 20 { pending.removeAll() }
        return lines
    }

    /// How the proxy ended, once `stop` reaped it: nil for a clean exit at the supervisor's
    /// request, else what happened ("killed by signal 4", "exited 2").
    public private(set) var abnormalEnd: String?

    /// Ends the proxy: its control socket's end-of-file tells it to close every connection
    /// and exit; SIGKILL after `grace` seconds. Idempotent.
    public func stop(grace: Double = 1.0) {
        guard !reaped else { return }
        reaped = true
        _ = shutdown(control, Int32(SHUT_WR))  // lines it writes until it exits stay readable
        let deadline = HostEnvironment.monotonicSeconds() + grace
        var status: Int32 = 0
        while true {
            if waitpid(pid, &status, WNOHANG) == pid {
                if status & 0x7F != 0 {
                    abnormalEnd = "killed by signal \(status & 0x7F)"
                } else if (status >> 8) & 0xFF != 0 {
                    abnormalEnd = "exited \((status >> 8) & 0xFF)"
                }
                return
            }
            let left = deadline - HostEnvironment.monotonicSeconds()
            if left <= 0 { break }
            if pidfd >= 0 {
                _ = pollReadable([pidfd], timeoutMilliseconds: Int32(max(1, left * 1000)))
            } else {
                usleep(2000)
            }
        }
        kill(pid, SIGKILL)
        _ = waitpid(pid, &status, 0)
        abnormalEnd = "did not exit within \(grace)s of the run's end; killed"
    }
}

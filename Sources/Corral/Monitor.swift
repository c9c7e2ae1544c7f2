import CorralPlan
import CorralSystem

/// Turns what the supervisor observes into monitor-rule firings. Pure: the supervisor feeds it
/// samples (resource use, output), limit hits and watched calls, with the time, and acts on
/// what it returns. Each rule fires at most once per run.
struct MonitorEngine {
    struct Firing: Equatable {
        var rule: MonitorRule
        var detail: String
    }

    /// A watched call as the rules see it.
    struct Call {
        var syscall: String
        /// The path it names (exec target, opened or removed file), when it names one.
        var path: String?
        /// The paths it would create or change (rename: both names; link, symlink: the new one).
        var writtenPaths: [String] = []
        /// Whether it creates, writes, removes or renames (open with a write flag, unlink…).
        var writes: Bool
        /// For a connect: where to. `rate(connect)` counts network connects only: not to a
        /// unix socket (libc's nscd lookups), and not to the egress proxy's own ports (the
        /// proxy's request is counted instead, once).
        var connectTarget: SocketAddress?
    }

    let rules: [MonitorRule]
    /// The egress listeners' ports: connects to them are counted as the proxy's requests.
    var egressPorts: [UInt16] = []
    /// Whether a path may be executed (`filesystem.exec`).
    let execAllowed: @Sendable (String) -> Bool
    /// Whether a path lies where the run may write (`filesystem.write`, its private /tmp…).
    let writeAllowed: @Sendable (String) -> Bool
    /// The syscalls some rule looks at (`MonitorCondition.watchedSyscalls`): a watched call
    /// of any other syscall cannot fire a rule, and the supervisor answers it without building
    /// a `Call` (which resolves paths through /proc).
    let judgedSyscalls: Set<String>
    private var fired: Set<String> = []
    /// Recent call times per syscall, for `rate(…)` rules (only what a window still needs).
    private var recent: [String: [Double]] = [:]

    init(rules: [MonitorRule], execAllowed: @escaping @Sendable (String) -> Bool,
         writeAllowed: @escaping @Sendable (String) -> Bool) {
        self.rules = rules
        judgedSyscalls = Set(rules.flatMap(\.condition.watchedSyscalls))
        self.execAllowed = execAllowed
        self.writeAllowed = writeAllowed
    }

    /// Whether some rule needs resource samples (processes, memory, cpu).
    var samplesResources: Bool { rules.contains { $0.condition.readsResources } }

    /// The calls a `rate(name)` rule counts together: one act, several syscalls.
    static func family(of name: String) -> Set<String> {
        Set(MonitorCondition.rateFamily(of: name))
    }

    private mutating func fire(_ rule: MonitorRule, _ detail: String) -> Firing? {
        guard fired.insert(rule.id).inserted else { return nil }
        return Firing(rule: rule, detail: detail)
    }

    /// Resource use now. Nil values are unknown (no cgroup) and never fire.
    mutating func sample(processes: UInt64?, memory: UInt64?, output: UInt64, cpuSeconds: Double?) -> [Firing] {
        var firings: [Firing] = []
        for rule in rules where !fired.contains(rule.id) {
            let detail: String?
            switch rule.condition {
            case .processesAbove(let bound):
                detail = processes.flatMap { $0 > UInt64(bound) ? "\($0) processes" : nil }
            case .memoryAbove(let bound):
                detail = memory.flatMap { $0 > bound ? "\(Limits.format(bytes: $0)) in use" : nil }
            case .outputAbove(let bound):
                detail = output > bound ? "\(output) bytes of output" : nil
            case .cpuAbove(let bound):
                detail = cpuSeconds.flatMap { $0 > bound.seconds ? "\(Self.formatSeconds($0)) of CPU" : nil }
            default:
                detail = nil
            }
            if let detail, let firing = fire(rule, detail) { firings.append(firing) }
        }
        return firings
    }

    /// The kernel refused something at `resource`'s limit (`count` times so far).
    mutating func limitReached(_ resource: LimitedResource, count: UInt64) -> [Firing] {
        rules.compactMap { rule in
            guard rule.condition == .limitReached(resource) else { return nil }
            return fire(rule, "\(resource.rawValue) limit reached (\(count) refused)")
        }
    }

    /// A watched call at monotonic time `now` (seconds).
    mutating func call(_ call: Call, at now: Double) -> [Firing] {
        var firings: [Firing] = []
        for rule in rules where !fired.contains(rule.id) {
            var detail: String?
            switch rule.condition {
            case .rate(let name, let limit, let window) where MonitorCondition.rateFamily(of: name).contains(call.syscall):
                if call.syscall == "connect", !countsAsNetworkConnect(call.connectTarget) { break }
                detail = count(name, limit: limit, window: window, at: now)
            case .execOutsideAllowlist where call.syscall == "execve" || call.syscall == "execveat":
                if let path = call.path, !execAllowed(path) { detail = "exec of \(path), outside filesystem.exec" }
            case .writeOutsideDeclared where call.writes:
                if let path = (call.writtenPaths.isEmpty ? [call.path].compactMap { $0 } : call.writtenPaths)
                    .first(where: { !writeAllowed($0) }) {
                    detail = "\(call.syscall) of \(path), outside filesystem.write"
                }
            default:
                break
            }
            if let detail, let firing = fire(rule, detail) { firings.append(firing) }
        }
        return firings
    }

    /// A request through the egress proxy or a forward (`unlisted`: no allow entry names its
    /// host). It counts for `rate(connect)`; an unlisted host fires `new-host`.
    mutating func network(host: String, port: UInt16, unlisted: Bool, at now: Double) -> [Firing] {
        var firings: [Firing] = []
        for rule in rules where !fired.contains(rule.id) {
            var detail: String?
            switch rule.condition {
            case .rate(let name, let limit, let window) where Self.family(of: name).contains("connect"):
                detail = count(name, limit: limit, window: window, at: now)
            case .newHost where unlisted:
                detail = "request for \(host):\(port), which network.allow does not name"
            default:
                break
            }
            if let detail, let firing = fire(rule, detail) { firings.append(firing) }
        }
        return firings
    }

    private func countsAsNetworkConnect(_ target: SocketAddress?) -> Bool {
        guard let target else { return true }  // unreadable: counted, as the kernel would have tried
        switch target.family {
        case "inet": return !(target.address == "127.0.0.1" && target.port.map(egressPorts.contains) == true)
        case "inet6": return true
        default: return false
        }
    }

    /// Records one `name` act at `now`; the detail when more than `limit` fall in `window`.
    private mutating func count(_ name: String, limit: Int, window: Duration, at now: Double) -> String? {
        var times = recent[name, default: []].filter { now - $0 < window.seconds }
        times.append(now)
        recent[name] = times
        guard times.count > limit else { return nil }
        let what = Self.family(of: name).count > 1 ? Self.family(of: name).sorted().joined(separator: "/") : name
        return "\(times.count) \(what) calls within \(Limits.format(window))"
    }

    static func formatSeconds(_ value: Double) -> String {
        let tenths = (value * 10).rounded()
        return "\(Int(tenths) / 10).\(Int(tenths) % 10)s"
    }
}

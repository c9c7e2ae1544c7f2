import CorralPlan
import CorralSystem

/// One decision of the egress proxy: a request through the HTTP or SOCKS5 proxy or a
/// forward, and what became of it. Hosts come from the sandbox: the proxy escapes every
/// control, non-ASCII and `%` byte as `%XX` before they get here.
public struct NetworkDecision: Sendable, Hashable, Codable {
    public enum Outcome: String, Sendable, Hashable, Codable {
        /// Allowed and connected.
        case allow
        /// Refused by the allow list or the address rules.
        case deny
        /// Allowed, but resolving or connecting failed.
        case fail
        /// Malformed or hostile input, or a limit of the proxy (too many connections).
        case error
    }

    public var decision: Outcome
    /// `http-connect`, `http`, `socks5` or `forward`.
    public var via: String
    public var host: String?
    public var port: UInt16?
    /// The address connected to (allow) or refused (deny by address).
    public var address: String?
    /// The allow entry that matched.
    public var entry: String?
    public var reason: String?

    /// Reads one line of the proxy's control channel: seven tab-separated fields, `-` for
    /// none. Nil for anything else (counted as unreadable, never trusted).
    init?(line: String) {
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 7, let outcome = Outcome(rawValue: fields[0]) else { return nil }
        func optional(_ text: String) -> String? { text == "-" || text.isEmpty ? nil : text }
        decision = outcome
        via = fields[1]
        host = optional(fields[2])
        port = UInt16(fields[3]).flatMap { $0 == 0 ? nil : $0 }
        address = optional(fields[4])
        entry = optional(fields[5])
        reason = optional(fields[6])
    }

    /// Whether no allow entry names the host at all (not merely its port).
    var hostUnlisted: Bool {
        guard decision == .deny, let host, let reason else { return false }
        return EgressPolicy.isUnlistedHost(host, reason: reason)
    }
}

/// The report's `egress` part: where the proxy listened and what it decided.
public struct EgressSummary: Sendable, Hashable, Codable {
    /// `127.0.0.1:3128 http-proxy`, …
    public var listeners: [String]
    public var allowed = 0
    public var denied = 0
    public var failed = 0
    public var errors = 0
    /// Decisions in order, at most `limit`; the rest are counted in `decisionsDropped`.
    public var decisions: [NetworkDecision] = []
    public var decisionsDropped = 0
    /// Lines the proxy itself could not deliver (its buffer was full), plus unreadable ones.
    public var linesLost = 0
    /// How the proxy ended, when it ended before the run did (it should not).
    public var proxyEnded: String?

    static let limit = 1000

    init(plan: EgressPlan) {
        listeners = plan.listeners.map { "\(EgressPlan.listenAddress):\($0.port) \($0.role)" }
    }

    mutating func record(_ decision: NetworkDecision) {
        switch decision.decision {
        case .allow: allowed += 1
        case .deny: denied += 1
        case .fail: failed += 1
        case .error: errors += 1
        }
        if decisions.count < Self.limit { decisions.append(decision) } else { decisionsDropped += 1 }
    }
}

/// The run's egress proxy as the supervisor watches it: the process, and what it decided.
/// Used from the supervisor's one thread.
final class EgressWatch {
    private let process: EgressProcess
    private(set) var summary: EgressSummary

    /// Starts the proxy on the listeners init handed over (and closes the supervisor's
    /// copies); nil when the plan has none.
    init?(_ plan: EgressPlan?, pending: PendingLaunch) throws(CorralError) {
        let listeners = pending.egressListeners
        defer { for listener in listeners { HostEnvironment.close(listener.rawValue) } }
        guard let plan, !listeners.isEmpty else { return nil }
        process = try EgressProcess(plan: plan, listeners: listeners)
        summary = EgressSummary(plan: plan)
    }

    /// What to poll: the control socket, until the proxy closed it.
    var pollDescriptors: [Int32] { process.atEnd ? [] : [process.pollDescriptor] }

    /// Takes in the lines waiting when `ready` holds the control socket; true when a rule
    /// ended the run. A proxy that ended on its own is noted (the sandbox is cut off).
    func pump(_ ready: [Int32], control: RunControl) -> Bool {
        guard ready.contains(process.pollDescriptor) else { return false }
        let ended = read(control)
        if process.atEnd, summary.proxyEnded == nil {
            process.stop()
            summary.proxyEnded = "the egress proxy ended during the run (\(process.abnormalEnd ?? "exited 0")); "
                + "the sandbox had no way out since"
        }
        return ended
    }

    /// Ends the proxy (its last lines are flushed before it exits) and returns the summary.
    func finish(control: RunControl) -> EgressSummary {
        process.stop()
        _ = read(control)
        if let end = process.abnormalEnd, summary.proxyEnded == nil { summary.proxyEnded = "the egress proxy \(end)" }
        return summary
    }

    /// Decision lines into events, the report and the rules; true when a rule ended the run.
    private func read(_ control: RunControl) -> Bool {
        var ended = false
        for line in process.readLines() {
            if line.hasPrefix("dropped\t") {
                summary.linesLost += Int(line.dropFirst(8)) ?? 1
                continue
            }
            guard let decision = NetworkDecision(line: line) else {
                summary.linesLost += 1
                continue
            }
            summary.record(decision)
            control.events.emit(.network) { $0.network = decision }
            if control.network(decision) { ended = true }
        }
        return ended
    }
}

import CorralSystem
import Synchronization

/// One line of `corral run --events`: what happened during a run, as it happened.
/// Strings that come from the sandbox (paths, argv) are data in JSON strings, never
/// printed raw to a terminal.
public struct RunEvent: Sendable, Codable, Hashable {
    public enum Kind: String, Sendable, Codable, Hashable {
        /// The command is running (`pid` is the sandbox's init).
        case start
        /// A watched syscall (`syscall`, `pid`, `call`: its decoded arguments and decision).
        case syscall
        /// A monitor rule fired (`rule`, `action`, `detail`).
        case rule
        /// The kernel refused something at a limit, or a declared limit is not enforced here
        /// (`limit`, `detail`).
        case limit
        /// Corral is killing the run (`reason`, `rule`).
        case kill
        /// The run was frozen (`rule`) or thawed.
        case pause, resume
        /// A signal to `corral` was forwarded to the run (`signal`).
        case signal
        /// The run ended (`termination`, `exitStatus`, `verdict`, `reason`).
        case exit
        /// A decision of the egress proxy (`network`).
        case network
        /// The run's staged writes were committed, kept pending or discarded (`transaction`).
        case transaction
    }

    public var seq: Int
    /// RFC 3339, UTC, nanoseconds.
    public var time: String
    public var type: Kind
    public var goal: String
    public var pid: Int32?
    public var command: [String]?
    public var syscall: String?
    /// The watched call, decoded (path, argv, flags, address…) with its decision.
    public var call: WatchedCall?
    public var rule: String?
    public var action: String?
    public var limit: String?
    public var reason: String?
    public var signal: Int32?
    public var detail: String?
    public var termination: Termination?
    public var exitStatus: Int32?
    public var verdict: Verdict?
    public var network: NetworkDecision?
    public var transaction: TransactionSummary?

    public init(seq: Int, time: String, type: Kind, goal: String) {
        self.seq = seq
        self.time = time
        self.type = type
        self.goal = goal
    }
}

/// Streams events as JSON lines to a descriptor (a file, or stdout for `--events -`) and
/// hands each to an optional observer (the library's callers). Safe from any thread: the
/// supervisor's and the syscall watcher's events are numbered and written in one order.
final class EventLog: Sendable {
    private let descriptor: Int32?
    private let observer: (@Sendable (RunEvent) -> Void)?
    private let goal: String
    private let count = Mutex(0)
    /// The run's audit entries; every event but `start` and `exit` is one.
    let audit: RunAudit?

    init(descriptor: Int32?, observer: (@Sendable (RunEvent) -> Void)?, goal: String, audit: RunAudit?) {
        self.descriptor = descriptor
        self.observer = observer
        self.goal = goal
        self.audit = audit
    }

    var isActive: Bool { descriptor != nil || observer != nil || audit != nil }

    func emit(_ type: RunEvent.Kind, _ fill: (inout RunEvent) -> Void = { _ in }) {
        guard isActive else { return }
        let event = count.withLock { count -> RunEvent in
            count += 1
            var event = RunEvent(seq: count, time: HostEnvironment.rfc3339Now(), type: type, goal: goal)
            fill(&event)
            if let descriptor { HostEnvironment.writeAll(descriptor, event.jsonLine()) }
            audit?.record(event)
            return event
        }
        observer?(event)
    }
}

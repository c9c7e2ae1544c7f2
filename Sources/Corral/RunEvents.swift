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
///
/// Two ways in. `emit` writes at once (with everything queued before it). `enqueue` and
/// `enqueueSyscall` only number the event and stamp its time, for the syscall watcher: a
/// watched call's caller is answered first, and the next call would otherwise wait for its
/// JSON, its audit entry and the write on the CPU the caller shares with the watcher. A
/// monitor rule's event, emitted on the watcher's thread, writes the queue there: rare, and
/// it keeps the order. The queue is written by the next `emit` or `drain`: the supervisor drains it every
/// `drainInterval` while the run goes, and before the run's last entries (`exit`, the audit's
/// run end), so the stream and the audit log hold every event, in the order of its number.
final class EventLog: Sendable {
    private let descriptor: Int32?
    private let observer: (@Sendable (RunEvent) -> Void)?
    private let goal: String
    /// Numbered events not yet written; held only to number and to take the queue.
    private let queue = Mutex(Queue())
    /// Held while a batch is encoded and written, so batches go out in their numbers' order.
    /// Taken before `queue`, never the other way.
    private let writing = Mutex<Void>(())
    /// The run's audit entries; every event but `start` and `exit` is one.
    let audit: RunAudit?
    /// How long a queued event may wait for the supervisor's drain.
    static let drainInterval = 0.05

    /// A numbered event waiting to be written. A watched call is kept as the call alone (the
    /// event is built when written): a `RunEvent` is large, and building and queueing one
    /// cost the watcher's thread, and so the waiting caller, most of a microsecond.
    private enum Queued {
        indirect case event(RunEvent)
        case syscall(seq: Int, call: WatchedCall)

        func event(goal: String) -> RunEvent {
            switch self {
            case .event(let event): return event
            case .syscall(let seq, let call):
                var event = RunEvent(seq: seq, time: "", type: .syscall, goal: goal)
                event.syscall = call.syscall
                event.pid = call.pid
                event.call = call
                return event
            }
        }
    }

    private struct Queue {
        var count = 0
        var pending: [(entry: Queued, time: HostEnvironment.WallTime)] = []

        mutating func append(_ type: RunEvent.Kind, goal: String, _ fill: (inout RunEvent) -> Void) {
            count += 1
            var event = RunEvent(seq: count, time: "", type: type, goal: goal)
            fill(&event)
            pending.append((.event(event), HostEnvironment.wallTime()))
        }

        mutating func appendSyscall(_ call: WatchedCall) {
            count += 1
            pending.append((.syscall(seq: count, call: call), HostEnvironment.wallTime()))
        }
    }

    init(descriptor: Int32?, observer: (@Sendable (RunEvent) -> Void)?, goal: String, audit: RunAudit?) {
        self.descriptor = descriptor
        self.observer = observer
        self.goal = goal
        self.audit = audit
    }

    var isActive: Bool { descriptor != nil || observer != nil || audit != nil }

    /// Writes the queued events, then this one.
    func emit(_ type: RunEvent.Kind, _ fill: (inout RunEvent) -> Void = { _ in }) {
        guard isActive else { return }
        writing.withLock { _ in
            write(queue.withLock { queue in
                defer { queue.pending = [] }
                queue.append(type, goal: goal, fill)
                return queue.pending
            })
        }
    }

    /// Numbers the event and stamps its time now; it is written by the next `emit` or `drain`.
    func enqueue(_ type: RunEvent.Kind, _ fill: (inout RunEvent) -> Void = { _ in }) {
        guard isActive else { return }
        queue.withLock { $0.append(type, goal: goal, fill) }
    }

    /// A watched call's `syscall` event: numbered and stamped now, like `enqueue`, and built
    /// when written.
    func enqueueSyscall(_ call: WatchedCall) {
        guard isActive else { return }
        queue.withLock { $0.appendSyscall(call) }
    }

    /// Writes the queued events.
    func drain() {
        guard isActive else { return }
        writing.withLock { _ in
            write(queue.withLock { queue in
                guard !queue.pending.isEmpty else { return [] }
                // Room for a batch like this one, allocated here rather than grown (and
                // copied) on the watcher's thread: measured 0.7–1.5 µs a watched call.
                let batch = queue.pending
                queue.pending = []
                queue.pending.reserveCapacity(min(4096, 2 * batch.count + 64))
                return batch
            })
        }
    }

    /// Encodes each event once, for the descriptor (one write for the batch) and the audit,
    /// then hands them to the observer in order (under `writing`: the observer must not emit).
    private func write(_ batch: [(entry: Queued, time: HostEnvironment.WallTime)]) {
        guard !batch.isEmpty else { return }
        var events: [RunEvent] = []
        events.reserveCapacity(batch.count)
        var bytes: [UInt8] = []
        for (entry, time) in batch {
            var event = entry.event(goal: goal)
            event.time = HostEnvironment.rfc3339(time)
            // Encoded only for a reader: without --events, `start` and `exit` are not (the
            // first Codable encoding of each type costs a scan of the binary's conformance
            // records, ~0.1 ms, at both ends of every run).
            if descriptor != nil || (audit != nil && RunAudit.records(event.type)) {
                let line = event.syscallLine() ?? event.jsonLine()
                if descriptor != nil { bytes += line }
                audit?.record(event, line: line)
            }
            events.append(event)
        }
        if let descriptor { HostEnvironment.writeAll(descriptor, bytes) }
        if let observer { for event in events { observer(event) } }
    }
}

import CorralAudit
import CorralSystem
import Synchronization

/// One run's entries in the audit log. The supervisor's events (watched calls, denials, rule
/// actions, limits, network decisions, the transaction) are buffered and appended in batches
/// — every `flushInterval` while the run goes, and at the end with the signed run report —
/// each batch one locked write, so concurrent runs interleave whole batches. The run-start
/// entry leads the first batch, due `firstFlush` after the start: a run that ends sooner
/// costs one append.
final class RunAudit: @unchecked Sendable {
    // @unchecked: `startPrepared` is read and written by the supervising thread only.
    let run: String
    private let log: AuditLog
    private let buffer = Mutex<[AuditLog.Entry]>([])
    private let lastFlush: Mutex<Double>
    static let flushInterval = 0.25
    static let firstFlush = 0.02

    /// Opens the log (`audit.log` of the manifest, else the state directory's), creating the
    /// signing key on first use. Secrets' values are redacted from every entry.
    init(log path: String, state: String, run: String, secrets: [String]) throws(CorralError) {
        self.run = run
        log = try AuditLog(path: path, keyFolder: StateDirectory.keyFolder(state: state), redacting: secrets)
        // The first batch (with the run-start entry) is due `firstFlush` in: a run that ends
        // sooner makes one append, and a longer one is on record within that time.
        lastFlush = Mutex(HostEnvironment.monotonicSeconds() - Self.flushInterval + Self.firstFlush)
        // The signing key, every run's staged writes and the log itself are masked in the
        // sandbox wherever a read or write path would show them: a sandbox that could read the
        // key could forge the log, and one that could write the log could cut its tail.
        // (A log inside the state directory is hidden with it: no mask inside a mask.)
        hiddenPaths = [state] + (PathText.normalise(path).hasPrefix(PathText.normalise(state) + "/") ? [] : [path, log.headPath])
    }

    /// What no sandbox may see (the mount plan masks them).
    let hiddenPaths: [String]

    /// The log `profile` writes to, under `state`.
    static func logPath(for profile: Profile, state: String) -> String {
        profile.audit.log ?? StateDirectory.auditLog(state: state)
    }

    /// Queues an event of the run, `line` its JSON (`start` and `exit` are written by
    /// `prepareStart` and `ended`).
    func record(_ event: RunEvent, line: [UInt8]) {
        guard Self.records(event.type) else { return }
        // `line` comes from the hand-written encoders or JSONEncoder: compact JSON and a newline.
        let entry = AuditLog.Entry(type: event.type.rawValue, run: run, payload: line, compact: true)
        buffer.withLock { $0.append(entry) }
    }

    /// Whether events of `kind` become audit entries: all but `start` and `exit`, which the
    /// run-start and run-end entries cover.
    static func records(_ kind: RunEvent.Kind) -> Bool { kind != .start && kind != .exit }

    /// Encodes the run-start entry — what was asked and what is enforced — once; later calls
    /// do nothing. The supervisor calls it while it waits for the sandbox to execute the
    /// command (the plan's digest and the encoding cost a few tenths of a millisecond, spent
    /// while the sandbox builds its root on the other core). Nothing is written until
    /// `began` says the command started.
    func prepareStart(_ makeStart: () -> AuditRunStart) {
        guard !startPrepared else { return }
        startPrepared = true
        // The signing key is derived here too, off the launch's critical path (the sandbox
        // builds its root meanwhile); a public key file it cannot put right fails the audit.
        do throws(CorralError) { try log.prepareKey() } catch { failure.withLock { if $0 == nil { $0 = error } } }
        let entry = AuditLog.Entry(type: "run-start", run: run, payload: makeStart().auditLine(), compact: true)
        startEntry.withLock { $0 = entry }
    }

    /// Set by the supervising thread only.
    private nonisolated(unsafe) var startPrepared = false
    /// The run-start entry until it is written.
    private let startEntry = Mutex<AuditLog.Entry?>(nil)
    private let hasBegun = Atomic<Bool>(false)
    private let failure = Mutex<CorralError?>(nil)

    /// The command started (or a rule stopped its exec): the run-start entry goes first into
    /// the next batch.
    func began() {
        hasBegun.store(true, ordering: .releasing)
    }

    /// Writes what is queued when the last write is `flushInterval` old (never before the
    /// command began).
    func flushIfDue(now: Double) {
        guard hasBegun.load(ordering: .acquiring) else { return }
        let due = lastFlush.withLock { last in
            guard now - last >= Self.flushInterval else { return false }
            last = now
            return true
        }
        if due { flush() }
    }

    /// When `flushIfDue` will next write, if anything waits to be written (the run-start
    /// entry, or queued events): the supervisor's loop wakes for it.
    var flushDeadline: Double? {
        guard hasBegun.load(ordering: .acquiring) else { return nil }
        let waiting = startEntry.withLock { $0 != nil } || !buffer.withLock { $0.isEmpty }
        return waiting ? lastFlush.withLock { $0 } + Self.flushInterval : nil
    }

    /// The run ended: everything queued, then the report, signed.
    /// - Throws: the first failure to append this run's entries.
    func ended(_ report: RunReport) throws(CorralError) {
        buffer.withLock { $0.append(AuditLog.Entry(type: "run-end", run: run, payload: report.auditLine(), sign: true, compact: true)) }
        flush()
        if let failure = failure.withLock({ $0 }) { throw failure }
    }

    /// Appends the queued entries, the run-start entry first when it has not been written.
    /// A failure is kept for `ended` (the entries of a failed append are not retried: the
    /// log's end may not be where the next append would chain).
    private func flush() {
        if let entry = startEntry.withLock({ entry in defer { entry = nil }; return entry }) {
            buffer.withLock { $0.insert(entry, at: 0) }
        }
        let entries = buffer.withLock { entries -> [AuditLog.Entry] in
            defer { entries.removeAll() }
            return entries
        }
        guard !entries.isEmpty else { return }
        do throws(CorralError) { try log.append(entries) } catch {
            failure.withLock { if $0 == nil { $0 = error } }
        }
    }

    /// One entry outside a run's supervisor (`corral commit`, `discard`, `recover`).
    static func append(type: String, run: String, payload: some Encodable & Sendable, log path: String,
                       state: String) throws(CorralError) {
        let log = try AuditLog(path: path, keyFolder: StateDirectory.keyFolder(state: state))
        try log.append([AuditLog.Entry(type: type, run: run, payload: payload.jsonLine(), sign: true)])
    }
}

/// The `run-start` entry: the manifest and the plan (by digest), who asked, and what the
/// host enforces.
struct AuditRunStart: Sendable, Codable {
    var goal: String
    var intent: String?
    var agent: String?
    var manifest: String
    var manifestSHA256: String
    var planDigest: String
    var command: [String]
    var landlockABI: Int
    var landlockEnforcement: String
    var namespaces: [String]
    var network: String
    var commit: String
    var limits: [LimitEnforcement]
    var pid: Int32
    /// When the run began (the entry itself may be written up to `flushInterval` later).
    var startedAt: String
}

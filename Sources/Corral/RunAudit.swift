import CorralAudit
import CorralSystem
import Synchronization

/// One run's entries in the audit log. The supervisor's events (watched calls, denials, rule
/// actions, limits, network decisions, the transaction) are buffered and appended in batches
/// — at the start, every `flushInterval` while the run goes, and at the end with the signed
/// run report — each batch one locked write, so concurrent runs interleave whole batches.
final class RunAudit: @unchecked Sendable {
    // @unchecked: `startJob` is set once by the supervising thread before it is read by it.
    let run: String
    private let log: AuditLog
    private let buffer = Mutex<[AuditLog.Entry]>([])
    private let lastFlush = Mutex<Double>(0)
    static let flushInterval = 0.25

    /// Opens the log (`audit.log` of the manifest, else the state directory's), creating the
    /// signing key on first use. Secrets' values are redacted from every entry.
    init(log path: String, state: String, run: String, secrets: [String]) throws(CorralError) {
        self.run = run
        log = try AuditLog(path: path, keyFolder: StateDirectory.keyFolder(state: state), redacting: secrets)
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
    /// `started` and `ended`).
    func record(_ event: RunEvent, line: [UInt8]) {
        guard event.type != .start && event.type != .exit else { return }
        let entry = AuditLog.Entry(type: event.type.rawValue, run: run, payload: line)
        buffer.withLock { $0.append(entry) }
    }

    /// The run began: what was asked and what is enforced. Written on a thread of its own
    /// while the command runs (the plan's digest and the encoding cost about a millisecond);
    /// `ended` waits for it. Events queued meanwhile follow it.
    func started(_ makeStart: @escaping @Sendable () -> AuditRunStart) {
        startJob = HostEnvironment.startJoinableThread { [self] in
            let entry = AuditLog.Entry(type: "run-start", run: run, payload: makeStart().jsonLine())
            buffer.withLock { $0.insert(entry, at: 0) }
            do throws(CorralError) { try flush() } catch { startFailure.withLock { $0 = error } }
            startWritten.store(true, ordering: .releasing)
        }
    }

    private nonisolated(unsafe) var startJob: HostEnvironment.JoinableThread?
    private let startWritten = Atomic<Bool>(false)
    private let startFailure = Mutex<CorralError?>(nil)

    /// Writes what is queued when the last write is `flushInterval` old (never before the
    /// run-start entry).
    func flushIfDue(now: Double) {
        guard startWritten.load(ordering: .acquiring) else { return }
        let due = lastFlush.withLock { last in
            guard now - last >= Self.flushInterval else { return false }
            last = now
            return true
        }
        if due { try? flush() }
    }

    /// The run ended: everything queued, then the report, signed.
    func ended(_ report: RunReport) throws(CorralError) {
        if let startJob { HostEnvironment.join(startJob) }
        if let failure = startFailure.withLock({ $0 }) { throw failure }
        buffer.withLock { $0.append(AuditLog.Entry(type: "run-end", run: run, payload: report.jsonLine(), sign: true)) }
        try flush()
    }

    private func flush() throws(CorralError) {
        let entries = buffer.withLock { entries -> [AuditLog.Entry] in
            defer { entries.removeAll() }
            return entries
        }
        guard !entries.isEmpty else { return }
        try log.append(entries)
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
}

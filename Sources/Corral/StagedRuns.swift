import CorralSystem

/// The runs kept in the state directory, for `corral runs`, `diff`, `commit`, `discard` and
/// `recover`. Each operation locks the run's folder: two corrals never work on one run.
public enum StagedRuns {
    /// A run as `corral runs` lists it.
    public struct Listing: Sendable, Hashable {
        public var record: StagedRunRecord
        /// Its corral is alive (running it, or committing it right now).
        public var busy: Bool
        /// A commit was interrupted (a journal is left): `corral recover` finishes it.
        public var interrupted: Bool
    }

    /// What `recover` did to one run.
    public struct Recovery: Sendable, Hashable {
        public enum Action: String, Sendable, Hashable {
            /// An interrupted commit was completed from its journal.
            case completedCommit = "completed commit"
            /// A commit interrupted before its point of no return was undone: nothing of it
            /// reached the real folders, and the run is pending again.
            case undidCommit = "interrupted commit undone; still pending"
            /// The run's corral died before the verdict: its staged writes were discarded.
            case discardedAbandoned = "discarded (its corral died)"
        }

        public var run: String
        public var action: Action
    }

    /// The state directory of `environment`, or an error with a hint.
    public static func stateDirectory(environment: [String: String]) throws(CorralError) -> String {
        guard let state = StateDirectory.path(environment: environment) else {
            throw CorralError(.setupFailed, operation: "find the state directory",
                              message: "neither CORRAL_STATE_DIR, XDG_STATE_HOME nor HOME is set",
                              hint: "set CORRAL_STATE_DIR to the folder runs were staged in")
        }
        return state
    }

    public static func list(state: String) -> [Listing] {
        StateFiles.list(state + "/runs").filter { !$0.hasPrefix(".") }.compactMap { id -> Listing? in
            let folder = StateDirectory.runFolder(state: state, run: id)
            guard let record = try? StagedRun.load(folder: folder, id: id) else { return nil }
            let busy: Bool
            if let lock = try? FileLock(folder + "/lock", wait: false, operation: "probe") {
                lock.release()
                busy = false
            } else {
                busy = true
            }
            return Listing(record: record, busy: busy, interrupted: exists(folder + "/journal"))
        }
    }

    /// The pending run `id`, locked for this process.
    static func pending(state: String, id: String) throws(CorralError) -> StagedRun {
        guard let run = try StagedRun.open(state: state, id: id) else {
            throw CorralError(.setupFailed, operation: "lock run", path: id,
                              message: "another corral is running or finishing it",
                              hint: "wait for it to end; `corral runs` shows its state")
        }
        if exists(run.journal) {
            run.release()
            throw CorralError(.setupFailed, operation: "open run", path: id,
                              message: "a commit of it was interrupted", hint: "run `corral recover` to finish it")
        }
        guard run.record.state == .pending else {
            run.release()
            throw CorralError(.setupFailed, operation: "open run", path: id,
                              message: "it is \(run.record.state.rawValue), not pending",
                              hint: run.record.state == .running
                                  ? "its corral died; `corral recover` discards it" : nil)
        }
        return run
    }

    /// What committing `id` would change, and the layers it reads from.
    public static func changes(state: String, id: String) throws(CorralError) -> (changes: [StagedChange], layers: [WriteLayer]) {
        let run = try pending(state: state, id: id)
        defer { run.release() }
        return (try Transaction.changes(run.writeLayers), run.writeLayers)
    }

    /// Applies the run's changes; refuses, naming the files, when the real ones changed since
    /// the run began (the run stays pending).
    /// - Parameter afterStep: called after each applied step (tests use it to crash there).
    public static func commit(state: String, id: String,
                              afterStep: ((Int) -> Void)? = nil) throws(CorralError) -> CommitSummary {
        let run = try pending(state: state, id: id)
        defer { run.release() }
        let summary = try run.commit(afterStep: afterStep)
        try record("commit", run.record, changes: summary.changes, state: state)
        return summary
    }

    /// Throws the run's changes away; returns the changes discarded.
    public static func discard(state: String, id: String) throws(CorralError) -> [StagedChange] {
        let run = try pending(state: state, id: id)
        let changes = (try? Transaction.changes(run.writeLayers)) ?? []
        run.discard()
        try record("discard", run.record, changes: changes, state: state)
        return changes
    }

    /// A commit or discard decided outside the run, in the run's audit log (signed).
    private static func record(_ type: String, _ record: StagedRunRecord, changes: [StagedChange],
                               state: String) throws(CorralError) {
        struct Decision: Codable, Sendable {
            var goal: String
            var changes: Int
            var digest: String
            var layers: [String]
        }
        let decision = Decision(goal: record.goal, changes: changes.count, digest: Transaction.digest(of: changes),
                                layers: record.layers.map(\.real))
        try RunAudit.append(type: type, run: record.id, payload: decision, log: record.auditLog, state: state)
    }

    /// Completes interrupted commits and discards the runs whose corral died before their
    /// verdict. Runs another corral holds are left alone.
    public static func recover(state: String) throws(CorralError) -> [Recovery] {
        var done: [Recovery] = []
        for id in StateFiles.list(state + "/runs") {
            let folder = StateDirectory.runFolder(state: state, run: id)
            if id.hasPrefix(".new-") {
                // A folder being made (its corral renames it within milliseconds), or one a
                // corral left when it died making it.
                if (StateFiles.age(folder) ?? 0) > 60, let lock = try FileLock(folder + "/lock", wait: false, operation: "lock run") {
                    lock.release()
                    try Transaction.removeTree(folder)
                }
                continue
            }
            guard let lock = try FileLock(folder + "/lock", wait: false, operation: "lock run") else { continue }
            defer { lock.release() }
            if exists(folder + "/journal") || exists(folder + "/journal.tmp") {
                // The record says committed once every change is in place, before the journal goes.
                let markCommitted = { () throws(CorralError) -> Void in
                    guard var record = try? StagedRun.load(folder: folder, id: id) else { return }
                    record.state = .committed
                    try StagedRun.write(record, to: folder + "/run.json")
                }
                switch try Transaction.recover(journal: folder + "/journal", completed: markCommitted) {
                case .completed:
                    HostEnvironment.removeFile(folder + "/run.json")
                    try Transaction.removeTree(folder)
                    done.append(Recovery(run: id, action: .completedCommit))
                    continue
                case .rolledBack:
                    done.append(Recovery(run: id, action: .undidCommit))
                case .nothingPending:
                    break
                }
            }
            let record = try? StagedRun.load(folder: folder, id: id)
            // Pending runs wait for a decision; anything else is what a dead corral left.
            if record?.state == .pending { continue }
            HostEnvironment.removeFile(folder + "/run.json")
            try Transaction.removeTree(folder)
            done.append(Recovery(run: id, action: .discardedAbandoned))
        }
        return done
    }

    private static func exists(_ path: String) -> Bool { (try? StateFiles.kind(of: path)).map { $0 != .missing } ?? true }

    /// `recover` at the start of a staged run: failures are left for `corral recover` to report.
    static func recoverQuietly(state: String) {
        _ = try? recover(state: state)
    }
}

import CorralSystem
import FoundationEssentials

/// The record of one run whose writes are staged: `runs/<id>/run.json` in the state
/// directory. Folder layout:
///
///     runs/<id>/run.json          this record (replaced atomically)
///     runs/<id>/lock              flock'ed by the corral running, committing or discarding it
///     runs/<id>/baseline          the write folders as they were when the run began
///     runs/<id>/journal           present only while a commit is being applied
///     runs/<id>/layers/<i>/upper  overlayfs's upper layer for filesystem.write[i]
///     runs/<id>/layers/<i>/work   overlayfs's work folder
public struct StagedRunRecord: Sendable, Codable, Hashable {
    public enum State: String, Sendable, Codable, Hashable {
        /// The command runs (or its corral died: then the lock is free and recovery discards it).
        case running
        /// Ended clean, waiting for `corral commit` or `corral discard`.
        case pending
        /// Its changes were applied to the real folders.
        case committed
        /// Its changes were thrown away.
        case discarded
    }

    public struct Layer: Sendable, Codable, Hashable {
        /// The write path as the manifest names it (and the sandbox sees it).
        public var path: String
        /// The real folder, canonical (what a commit changes).
        public var real: String
        public var upper: String
    }

    public var id: String
    public var goal: String
    public var manifest: String
    /// The audit log the run wrote to: its commit or discard is recorded there too.
    public var auditLog: String
    public var commit: String
    public var state: State
    public var startedAt: String
    public var layers: [Layer]
    public var verdict: Verdict?
    public var killReason: KillReason?
    /// Why a clean `auto` run was not committed (the conflicting files).
    public var note: String?
}

/// What happened to a run's staged writes (the run report's `transaction`).
public struct TransactionSummary: Sendable, Codable, Hashable {
    public enum Outcome: String, Sendable, Codable, Hashable {
        /// Applied to the real folders.
        case committed
        /// Kept for `corral diff` / `commit` / `discard` (`approval.commit: ask`, or a conflict).
        case pending
        /// Thrown away (a rogue run, or `approval.commit: never`).
        case discarded
    }

    public var run: String
    public var mode: String
    public var outcome: Outcome
    /// Entries changed (added, modified, deleted, replaced, permissions).
    public var changes: Int
    /// SHA-256 of the change list (`corral diff RUN --stat` lists the same).
    public var digest: String
    /// Real files changed since the run began, which stopped an `auto` commit.
    public var conflicts: [String]?
}

/// One run's staging folder, from creation to commit or discard.
final class StagedRun {
    let folder: String
    private(set) var record: StagedRunRecord
    private var lock: FileLock?

    var baseline: String { folder + "/baseline" }
    var journal: String { folder + "/journal" }
    var writeLayers: [WriteLayer] { record.layers.map { WriteLayer(real: $0.real, upper: $0.upper) } }

    private init(state: String, record: StagedRunRecord, lock: FileLock) {
        self.folder = StateDirectory.runFolder(state: state, run: record.id)
        self.record = record
        self.lock = lock
    }

    /// A new run id: the goal, the UTC time and 32 random bits (sortable, unique).
    public static func newID(goal: String) -> String {
        let now = HostEnvironment.rfc3339Now()  // 2026-11-25T17:15:02.123456789Z
        let digits = String(now.prefix(19).compactMap { $0 == "T" ? "-" : ($0 == "-" || $0 == ":" ? nil : $0) })
        return "\(goal)-\(digits)-\(StateFiles.randomHex(bytes: 4))"
    }

    /// Makes the run's folder and a staging layer for each write entry, locked by this process.
    static func create(state: String, id: String, goal: String, manifest: String, auditLog: String, mode: CommitMode,
                       writeCount: Int) throws(CorralError) -> StagedRun {
        do { try StateFiles.createFolders(state + "/runs") } catch {
            throw CorralError(.setupFailed, operation: "create the state folder", path: state + "/runs", errno: error,
                              hint: error == .permissionDenied ? "set CORRAL_STATE_DIR to a folder you can write" : nil)
        }
        // Built under a hidden name and renamed into place once locked and recorded, so a
        // concurrent `recover` never mistakes a folder being made for one a dead corral left.
        let building = state + "/runs/.new-" + id
        try StateFiles.makeFolder(building, operation: "create the run's staging folder")
        guard let lock = try FileLock(building + "/lock", wait: false, operation: "lock the run's folder") else {
            throw CorralError(.setupFailed, operation: "lock the run's folder", path: building, message: "already locked")
        }
        try StateFiles.makeFolder(building + "/layers", operation: "create the run's staging folder")
        for index in 0..<writeCount {
            for part in ["", "/upper", "/work"] {
                try StateFiles.makeFolder("\(building)/layers/\(index)\(part)", operation: "create a staging layer")
            }
        }
        let record = StagedRunRecord(id: id, goal: goal, manifest: manifest, auditLog: auditLog, commit: mode.rawValue, state: .running,
                                     startedAt: HostEnvironment.rfc3339Now(), layers: [])
        try Self.write(record, to: building + "/run.json")
        try StateFiles.rename(building, to: StateDirectory.runFolder(state: state, run: id),
                              operation: "create the run's staging folder")
        return StagedRun(state: state, record: record, lock: lock)
    }

    /// Opens an existing run for commit or discard. nil when another corral holds it.
    static func open(state: String, id: String) throws(CorralError) -> StagedRun? {
        guard id.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }), !id.isEmpty, id.count < 128 else {
            throw CorralError(.setupFailed, operation: "find run", message: "invalid run id",
                              hint: "`corral runs` lists the runs and their ids")
        }
        let folder = StateDirectory.runFolder(state: state, run: id)
        _ = try load(folder: folder, id: id)  // "no such run" before a lock file is made
        guard let lock = try FileLock(folder + "/lock", wait: false, operation: "lock the run's folder") else { return nil }
        // Read under the lock: another corral may have finished it meanwhile.
        return StagedRun(state: state, record: try load(folder: folder, id: id), lock: lock)
    }

    static func load(folder: String, id: String) throws(CorralError) -> StagedRunRecord {
        let bytes: [UInt8]
        do { bytes = try HostEnvironment.readFile(folder + "/run.json") } catch {
            throw CorralError(.setupFailed, operation: "find run", path: id, errno: error,
                              hint: error == .noSuchFileOrDirectory ? "`corral runs` lists the pending runs" : nil)
        }
        do { return try JSONDecoder().decode(StagedRunRecord.self, from: Data(bytes)) } catch {
            throw CorralError(.setupFailed, operation: "read run record", path: folder + "/run.json",
                              message: "\(error)", hint: "`corral discard \(id)` removes it")
        }
    }

    func staging(layer: Int) -> StagingFolders {
        StagingFolders(upper: "\(folder)/layers/\(layer)/upper", work: "\(folder)/layers/\(layer)/work")
    }

    /// Records which write paths were mounted, and the baseline of their real folders.
    func began(_ layers: [StagedLayer]) throws(CorralError) {
        record.layers = layers.map { .init(path: $0.path, real: $0.real, upper: $0.folders.upper) }
        for layer in layers {
            try StateFiles.matchModeAndOwner(of: layer.real, to: layer.folders.upper, operation: "prepare a staging layer")
        }
        try Transaction.recordBaseline(writeLayers, to: baseline)
        try save()
    }

    func save() throws(CorralError) {
        try Self.write(record, to: folder + "/run.json")
    }

    /// Replaces the record atomically and durably: a crash leaves the old one or the new one.
    static func write(_ record: StagedRunRecord, to path: String) throws(CorralError) {
        do { try StateFiles.replace(path, record.jsonLine(), durable: true) } catch {
            throw CorralError(.setupFailed, operation: "write the run record", path: path, errno: error)
        }
    }

    /// Ends the run: commit (clean, `auto`), keep (clean, `ask`, or a conflict), or discard.
    func finish(verdict: Verdict, killReason: KillReason?, mode: CommitMode) -> (TransactionSummary, CorralError?) {
        record.verdict = verdict
        record.killReason = killReason
        var failure: CorralError?
        if verdict == .clean && mode == .auto {
            // One walk of the layers: the commit lists the changes, checks the baseline and
            // refuses (changing nothing) on a conflict.
            do throws(CorralError) {
                let done = try commit()
                return (TransactionSummary(run: record.id, mode: mode.rawValue, outcome: .committed,
                                           changes: done.changes.count, digest: done.digest), nil)
            } catch {
                failure = error
            }
        }
        let changes = (try? Transaction.changes(writeLayers)) ?? []
        var summary = TransactionSummary(run: record.id, mode: mode.rawValue, outcome: .discarded,
                                         changes: changes.count, digest: Transaction.digest(of: changes))
        if let error = failure {
            summary.outcome = .pending
            let conflicts = (try? Transaction.conflicts(writeLayers, baseline: baseline)) ?? []
            if conflicts.isEmpty {
                record.note = "commit failed: \(error)"
            } else {
                summary.conflicts = conflicts
                record.note = "not committed: changed since the run began: " + conflicts.joined(separator: ", ")
                failure = nil  // a conflict is an outcome, not Corral's failure
            }
        } else if verdict == .clean && mode == .ask {
            summary.outcome = .pending
        }
        if summary.outcome == .pending {
            record.state = .pending
            do { try save() } catch { failure = failure ?? error }
            release()
        } else {
            discard()
        }
        return (summary, failure)
    }

    /// Applies the staged writes; the folder goes once they are in place.
    func commit(afterStep: ((Int) -> Void)? = nil) throws(CorralError) -> CommitSummary {
        let summary = try Transaction.commit(writeLayers, baseline: baseline, journal: journal, afterStep: afterStep,
                                             completed: markCommitted)
        remove()
        return summary
    }

    /// Records that the real folders hold every change (before the journal goes).
    func markCommitted() throws(CorralError) {
        record.state = .committed
        try save()
    }

    /// Throws the staged writes away.
    func discard() {
        record.state = .discarded
        remove()
    }

    private func remove() {
        // The record goes first: a crash midway leaves no folder that looks pending.
        HostEnvironment.removeFile(folder + "/run.json")
        try? Transaction.removeTree(folder)
        release()
    }

    func release() {
        lock?.release()
        lock = nil
    }
}

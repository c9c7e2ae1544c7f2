import Glibc
import SystemPackage

/// Turns the upper layers of a run's overlays into changes on the real folders: list them,
/// check them against a baseline, commit them crash-safely, or discard them.
///
/// ## How a commit stays all-or-nothing
///
/// A commit plans everything first (``changes(_:)``), refuses on conflicts, then:
/// 1. writes the journal (every operation, see `Journal`) under a temporary name, flushes
///    it, renames it into place and flushes its folder;
/// 2. stages a copy of every new file and symlink — final contents, mode, owner and times —
///    in a staging folder inside each real folder (same filesystem). A failure here (a full
///    disk) removes the staging folders and the journal: nothing changed;
/// 3. appends `commit` to the journal and flushes it: the point of no return;
/// 4. applies the operations in order: renames staged copies into place, removes what the
///    run deleted, creates folders, sets modes. Each operation sets one path to a state that
///    does not depend on what was there, so redoing the whole list from any point ends in
///    the same state; a staged copy already renamed is copied again from the upper layer,
///    which stays until the journal is gone;
/// 5. `syncfs` once per filesystem (no per-file fsync), removes the staging folders, and
///    finally the journal.
///
/// ``recover(journal:afterStep:)`` rolls back an interrupted commit without its `commit`
/// mark (removing the staging folders) and redoes one with it.
///
/// ## What an untrusted upper layer cannot do
///
/// The real folders are walked only through descriptors: parents are opened with
/// `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV)`, last components are
/// created, renamed over, unlinked or chmod'ed with `*at` calls that never follow symlinks.
/// A symlink (or a mount point) where the run saw a folder stops the commit. setuid and
/// setgid bits are never taken from the upper layer (kept only where the real file already
/// had them and its contents did not change); devices, fifos and sockets are refused;
/// extended attributes and ACLs are not carried over (a modified file is a new inode, so it
/// loses the real file's xattrs and hard links, as with an editor's save-by-rename); hard
/// links in the upper become separate files. Owners: as root, files keep the upper's owner
/// and group (as `cp -a`, which the id map made them); otherwise they belong to the
/// committing user.
///
/// ## What the caller must provide
///
/// One commit or recovery at a time per run (a lock), the run's processes gone (the upper
/// layer must not change), and the run folder kept while its journal exists (recovery may
/// need the upper layer). The conflict check is made just before the journal: a host
/// process writing the same files during the commit itself is not detected. A file whose
/// contents and mode did not change (touched, or copied up by a read-write open) is not a
/// change: its new times are not committed.
public enum Transaction {
    // MARK: - Listing

    /// What committing `layers` would change, sorted by path (bytes), deterministic.
    ///
    /// - Throws: `CorralError` when an upper layer cannot be read, or holds what Corral cannot
    ///   commit faithfully (names that are not UTF-8, overlayfs redirects, nesting deeper than
    ///   256 folders, a mount point on the way). Devices, fifos and sockets are listed (type
    ///   `other`); ``commit(_:baseline:journal:afterStep:)`` refuses them, and overlayfs
    ///   metacopy files.
    public static func changes(_ layers: [WriteLayer]) throws(CorralError) -> [StagedChange] {
        try CommitPlan.build(layers).changes
    }

    /// A snapshot of the real folders of `layers` (per entry: type, mode, size, modification
    /// and change time, inode), written to `file`. Take it just before the run starts.
    ///
    /// - Throws: `CorralError` when a folder cannot be read or `file` written.
    public static func recordBaseline(_ layers: [WriteLayer], to file: String) throws(CorralError) {
        try Baseline.record(layers, to: file)
    }

    /// The real paths that changed since `baseline` among those the run's outcome depends on:
    /// every path the upper layers hold, and for a deleted or replaced folder anything under
    /// it. Sorted; empty when the commit may proceed.
    ///
    /// - Throws: `CorralError` when a folder or the baseline cannot be read.
    public static func conflicts(_ layers: [WriteLayer], baseline: String) throws(CorralError) -> [String] {
        try Baseline.conflicts(CommitPlan.build(layers), baseline: baseline)
    }

    /// `sha256Hex` of a canonical listing of `changes` (kind, type, path, modes, sizes, link
    /// targets; paths length-prefixed), for the audit log.
    public static func digest(of changes: [StagedChange]) -> String {
        var listing: [UInt8] = Array("corral-changes 1\n".utf8)
        func field(_ text: String?) {
            guard let text else { return listing += Array(" -".utf8) }
            listing += Array(" \(text.utf8.count):".utf8) + Array(text.utf8)
        }
        for change in changes {
            listing += Array(change.kind.rawValue.utf8)
            field(change.type.rawValue)
            field(change.path)
            field(change.oldType?.rawValue)
            field(change.oldMode.map { String($0, radix: 8) })
            field(change.newMode.map { String($0, radix: 8) })
            field(change.oldSize.map { String($0) })
            field(change.newSize.map { String($0) })
            field(change.oldLinkTarget)
            field(change.linkTarget)
            listing.append(0x0A)
        }
        return sha256Hex(listing)
    }

    // MARK: - Committing

    /// Applies every change of `layers` to the real folders, all or nothing.
    ///
    /// Refuses — naming the files, with nothing changed — when a real path the run changes
    /// changed since `baseline`, when an upper layer holds a device, fifo or socket, or when
    /// `journal` exists (an interrupted commit must be recovered first). Then proceeds as the
    /// type's documentation describes. `journal` lives in the run folder, not in a real folder.
    ///
    /// - Parameter afterStep: called with 1, 2, … after each durable step (journal written,
    ///   each staged copy, the commit mark, each operation, the sync, the staging removal,
    ///   the journal removal); tests end the process there to simulate a crash.
    /// - Throws: `CorralError`. Before the commit mark nothing has changed; after it (an
    ///   operation failed: a folder was swapped for a symlink, permissions) the journal stays
    ///   and the message says so: ``recover(journal:afterStep:)`` finishes the commit once
    ///   the cause is fixed.
    ///   - completed: called once the real folders hold every change, before the journal is
    ///     removed: the caller records the run as committed there, so that a crash after it
    ///     never leaves a committed run looking pending (and a crash before it leaves the
    ///     journal, which `recover` completes).
    @discardableResult
    public static func commit(_ layers: [WriteLayer], baseline: String, journal: String,
                              afterStep: ((Int) -> Void)? = nil,
                              completed: (() throws(CorralError) -> Void)? = nil) throws(CorralError) -> CommitSummary {
        if unsafe access(journal, F_OK) == 0 {
            throw CorralError(.supervisionFailed, operation: "commit", path: journal,
                              message: "an interrupted commit is pending", hint: "run `corral recover` first")
        }
        let plan = try CommitPlan.build(layers)
        if !plan.refusals.isEmpty {
            let list = plan.refusals.prefix(5).map { "\($0.what) \(CorralError.printable($0.path))" }
            throw CorralError(.supervisionFailed, operation: "commit", path: plan.refusals[0].path,
                              message: "the run created what Corral never commits: " + list.joined(separator: ", ")
                                  + (plan.refusals.count > 5 ? " and \(plan.refusals.count - 5) more" : ""),
                              hint: "devices, fifos and sockets are not committed; discard the run, or remove them "
                                  + "in a new run")
        }
        let conflicts = try Baseline.conflicts(plan, baseline: baseline)
        if !conflicts.isEmpty {
            let list = conflicts.prefix(10).map { CorralError.printable($0) }
            throw CorralError(.supervisionFailed, operation: "commit", path: conflicts[0],
                              message: "the real files changed since the run began: " + list.joined(separator: ", ")
                                  + (conflicts.count > 10 ? " and \(conflicts.count - 10) more" : ""),
                              hint: "nothing was changed and the run stays pending; review with `corral diff`, then "
                                  + "discard it, or rerun the command")
        }
        let summary = { (steps: Int) in
            CommitSummary(changes: plan.changes, digest: digest(of: plan.changes), steps: steps)
        }
        guard !plan.operations.isEmpty else { return summary(0) }

        var step = 0
        let advance = {
            step += 1
            afterStep?(step)
        }
        let record = Journal(stagingName: Array(".corral-commit-\(uniqueSuffix(journal))".utf8), layers: layers,
                             operations: plan.operations)
        try writeWhole(record.encoded(), to: journal, operation: "write the commit journal", durable: true)
        advance()
        var runner: JournalRunner
        do throws(CorralError) { runner = try JournalRunner(record, operation: "commit") } catch {
            try? removeJournal(journal)
            throw error
        }
        do throws(CorralError) {
            try runner.createStaging()
            for op in record.operations where op.kind == .file || op.kind == .symlink {
                try runner.stage(op)
                advance()
            }
            try appendCommitMark(to: journal)
        } catch {
            // Before the point of no return: undo the staging, forget the journal.
            try? runner.removeStaging(onlyCreated: true)
            try? removeJournal(journal)
            throw error
        }
        advance()
        try runner.applyAll(advance)
        try runner.finish(advance)
        try completed?()
        try removeJournal(journal)
        advance()
        return summary(step)
    }

    /// Finishes a commit interrupted (by a crash, a kill, a power cut or an error) from its
    /// journal: rolled back when it had not reached its commit mark, redone when it had.
    /// Either way the real folders then hold all of the run's changes or none. Idempotent:
    /// a recovery interrupted in its turn is recovered again the same way.
    ///
    /// - Parameter afterStep: as for `commit` (each operation, the sync, the staging
    ///   removal, the journal removal).
    /// - Throws: `CorralError` for a damaged journal (left in place), or when an operation
    ///   cannot be carried out (the journal stays for the next attempt).
    @discardableResult
    public static func recover(journal: String, afterStep: ((Int) -> Void)? = nil,
                               completed: (() throws(CorralError) -> Void)? = nil) throws(CorralError) -> RecoverOutcome {
        _ = unsafe unlink(journal + ".tmp")  // a journal never completed: nothing else happened
        let bytes: [UInt8]
        do throws(Errno) { bytes = try HostEnvironment.readFile(journal) } catch .noSuchFileOrDirectory {
            return .nothingPending
        } catch {
            throw CorralError(.supervisionFailed, operation: "read the commit journal", path: journal, errno: error)
        }
        let record = try Journal.decode(bytes, path: journal)
        var step = 0
        let advance = {
            step += 1
            afterStep?(step)
        }
        var runner = try JournalRunner(record, operation: "recover")
        guard record.committed else {
            try runner.removeStaging()
            advance()
            try removeJournal(journal)
            advance()
            return .rolledBack
        }
        try runner.applyAll(advance)
        try runner.finish(advance)
        try completed?()
        try removeJournal(journal)
        advance()
        return .completed(operations: record.operations.count)
    }

    // MARK: - Discarding

    /// Removes `path` and everything in it, fast (one `unlinkat` per entry, names from
    /// `getdents64`), never following a symlink nor crossing a mount point, at any depth.
    /// Folders without owner rights (overlayfs's `work/work` is mode 000) are opened up
    /// first when this user owns them. Nothing at `path` is not an error.
    ///
    /// - Throws: `CorralError` naming the path when something cannot be removed.
    public static func removeTree(_ path: String) throws(CorralError) {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        let slash = trimmed.lastIndex(of: "/")
        let parentPath = slash.map { $0 == trimmed.startIndex ? "/" : String(trimmed[..<$0]) } ?? "."
        let name = Array((slash.map { String(trimmed[trimmed.index(after: $0)...]) } ?? trimmed).utf8)
        guard !name.isEmpty, name != [0x2E], name != [0x2E, 0x2E] else {
            throw CorralError(.supervisionFailed, operation: "remove", path: path, message: "not a removable path")
        }
        try attempt("remove", path) { () throws(Errno) in
            let parent = try FileDescriptor.openFolder(parentPath, listing: false)
            defer { parent.closeChecked() }
            try TreeWalk.remove(name, in: parent)
        }
    }

    // MARK: - Helpers

    /// Host-side advice for an errno met while committing.
    static func hint(for errno: Errno) -> String? {
        switch errno {
        case .tooManySymbolicLinkLevels, .notDirectory:
            "a folder on the way in the real tree is now a symlink or a file: Corral never writes through symlinks; "
                + "check what changed it"
        case .improperLink:
            "a mount point lies on the way: the sandbox saw the folder underneath, so changes there are not committed"
        case .noSpace, .diskQuotaExceeded:
            "free space on the real folder's filesystem, then commit (or `corral recover`) again"
        case .permissionDenied, .notPermitted:
            "the committing user must be able to write the real folders"
        case .readOnlyFileSystem:
            "the real folder is on a read-only filesystem"
        default:
            nil
        }
    }

    /// Opens the upper layer's file `name` for reading. A file the sandbox left without read
    /// permission (possible without root) is opened through u+r, and its mode put back.
    static func openUpperFile(_ name: PathBytes, in folder: FileDescriptor) throws(Errno) -> FileDescriptor {
        do throws(Errno) { return try folder.openEntry(name, O_RDONLY | O_NONBLOCK) } catch .permissionDenied {
            guard let status = try folder.statusOfEntry(name), status.kind == .file else { throw Errno.permissionDenied }
            try folder.changeModeOfEntry(name, status.mode | 0o400)
            defer { try? folder.changeModeOfEntry(name, status.mode) }
            return try folder.openEntry(name, O_RDONLY | O_NONBLOCK)
        }
    }

    /// Writes `bytes` to `path` whole: under `path.tmp`, renamed into place (a reader finds
    /// the old file, the new one, or nothing). `durable`: the file and its folder are flushed.
    static func writeWhole(_ bytes: [UInt8], to path: String, operation: String, durable: Bool) throws(CorralError) {
        let temporary = path + ".tmp"
        try attempt(operation, path) { () throws(Errno) in
            _ = unsafe unlink(temporary)
            let fd = FileDescriptor(rawValue: try valueOrErrno {
                unsafe Glibc.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            }.get())
            do throws(Errno) {
                try fd.writeFully(bytes)
                if durable { try fd.flushToDisk() }
            } catch {
                fd.closeChecked()
                _ = unsafe unlink(temporary)
                throw error
            }
            fd.closeChecked()
            _ = try valueOrErrno { unsafe rename(temporary, path) }.get()
            if durable { try flushFolder(of: path) }
        }
    }

    private static func appendCommitMark(to journal: String) throws(CorralError) {
        try attempt("mark the commit journal", journal) { () throws(Errno) in
            let fd = FileDescriptor(rawValue: try valueOrErrno {
                unsafe Glibc.open(journal, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC)
            }.get())
            defer { fd.closeChecked() }
            try fd.writeFully(Journal.commitMark)
            try fd.flushToDisk()
        }
    }

    private static func removeJournal(_ journal: String) throws(CorralError) {
        try attempt("remove the commit journal", journal) { () throws(Errno) in
            _ = try valueOrErrno { unsafe unlink(journal) }.get()
            try flushFolder(of: journal)
        }
    }

    private static func flushFolder(of path: String) throws(Errno) {
        let folder = path.lastIndex(of: "/").map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let fd = try FileDescriptor.openFolder(folder)
        defer { fd.closeChecked() }
        try fd.flushToDisk()
    }

    /// 12 hex digits that differ between commits (time, process, journal path).
    private static func uniqueSuffix(_ journal: String) -> String {
        var now = timespec()
        unsafe clock_gettime(CLOCK_REALTIME, &now)
        let seed = "\(journal) \(getpid()) \(now.tv_sec).\(now.tv_nsec) \(HostEnvironment.monotonicSeconds())"
        return String(sha256Hex(Array(seed.utf8)).prefix(12))
    }
}

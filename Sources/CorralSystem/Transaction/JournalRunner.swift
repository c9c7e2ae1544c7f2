import CCorralLaunch
import Glibc
import SystemPackage

/// Carries out a journal against the real folders: staging (before the point of no return)
/// and applying (after it, and again in recovery).
///
/// Staged copies live in one folder per layer, `<real>/<stagingName>`, on the real folder's
/// filesystem, so that applying a file is one `rename(2)`: every byte is written before the
/// point of no return (a full disk fails the commit with nothing changed), and the real
/// folders are only ever renamed into, unlinked from or chmod'ed afterwards. Inside it, one
/// subfolder per target folder (`<n>/<staged>`, numbered in journal order): the filesystem
/// then places the new inodes as it would for the target folders (ext4 allocates a folder's
/// inodes near it; 10,000 files in one folder staged 2–5 times slower here).
struct JournalRunner: ~Copyable {
    let journal: Journal
    /// The real folders, opened for reading (`syncfs` needs more than `O_PATH`).
    private let roots: [FileDescriptor]
    private var uppers: [FileDescriptor?]
    private var stagings: [FileDescriptor?]
    /// The staging folders this runner made (a failed commit removes only those).
    private var created: [Bool]
    /// The staging subfolder of each staged copy, by staged number.
    private let stagingSubfolder: [Int: Int]
    /// The staging subfolder of the last staged copy: (layer, number, descriptor).
    private var cachedSubfolder: (layer: Int, number: Int, fd: FileDescriptor?)?
    /// The folder of the last operation (operations come parents first, siblings together).
    private var cachedParent: (layer: Int, path: PathBytes, fd: FileDescriptor)?
    /// The same for the upper layer's folder of the last copy.
    private var cachedUpperParent: (layer: Int, path: PathBytes, fd: FileDescriptor)?

    init(_ journal: Journal, operation: String) throws(CorralError) {
        self.journal = journal
        var roots: [FileDescriptor] = []
        for layer in journal.layers {
            do throws(Errno) { roots.append(try FileDescriptor.openFolder(layer.real)) } catch {
                for fd in roots { fd.closeChecked() }
                throw CorralError(.supervisionFailed, operation: operation, path: layer.real, errno: error,
                                  message: "cannot open the real folder")
            }
        }
        self.roots = roots
        uppers = Array(repeating: nil, count: roots.count)
        stagings = Array(repeating: nil, count: roots.count)
        created = Array(repeating: false, count: roots.count)
        var subfolders: [Int: Int] = [:]
        var numbers: [[PathBytes]: Int] = [:]
        for op in journal.operations where op.kind == .file || op.kind == .symlink {
            let key = [Array(String(op.layer).utf8), op.path.parentAndName.parent]
            if numbers[key] == nil { numbers[key] = numbers.count }
            subfolders[op.staged] = numbers[key]
        }
        stagingSubfolder = subfolders
    }

    deinit {
        for fd in roots { fd.closeChecked() }
        for fd in uppers { fd?.closeChecked() }
        for fd in stagings { fd?.closeChecked() }
        cachedParent?.fd.closeChecked()
        cachedUpperParent?.fd.closeChecked()
        cachedSubfolder?.fd?.closeChecked()
    }

    private func realPath(_ layer: Int, _ path: PathBytes) -> String {
        path.isEmpty ? journal.layers[layer].real : journal.layers[layer].real + "/" + path.text
    }

    private func upperPath(_ layer: Int, _ path: PathBytes) -> String {
        journal.layers[layer].upper + "/" + path.text
    }

    private func stagingPath(_ layer: Int) -> String { realPath(layer, journal.stagingName) }

    private func stagedName(_ op: CommitOperation) -> PathBytes { Array(String(op.staged).utf8) }

    // MARK: - Staging (reversible)

    mutating func createStaging() throws(CorralError) {
        for layer in roots.indices {
            let root = roots[layer]
            try attempt("create the staging folder", stagingPath(layer)) { () throws(Errno) in
                try root.makeDirectory(journal.stagingName, mode: 0o700)
            }
            created[layer] = true
            stagings[layer] = try attempt("open the staging folder", stagingPath(layer)) { () throws(Errno) in
                try root.openBeneath(journal.stagingName, O_RDONLY | O_DIRECTORY)
            }
        }
    }

    /// Writes the staged copy of a `file` or `symlink` operation, with its final mode, owner
    /// and times.
    mutating func stage(_ op: CommitOperation) throws(CorralError) {
        guard let staging = stagings[op.layer] else { preconditionFailure("stage before createStaging") }
        let number = stagingSubfolder[op.staged]!
        if cachedSubfolder?.layer != op.layer || cachedSubfolder?.number != number {
            let name = Array(String(number).utf8)
            let path = stagingPath(op.layer) + "/\(number)"
            let fd = try attempt("create the staging folder", path) { () throws(Errno) in
                // Made already when the folder's entries are not contiguous (a.txt, b/…, c.txt).
                do throws(Errno) { try staging.makeDirectory(name, mode: 0o700) } catch .fileExists {}
                return try staging.openBeneath(name, O_RDONLY | O_DIRECTORY)
            }
            cachedSubfolder?.fd?.closeChecked()
            cachedSubfolder = (op.layer, number, fd)
        }
        try place(op, in: cachedSubfolder!.fd!, name: stagedName(op))
    }

    /// The staging subfolder of a staged copy; nil when it is gone (recovery after it was
    /// emptied and removed).
    private mutating func stagedFolder(_ op: CommitOperation) -> FileDescriptor? {
        guard let staging = stagings[op.layer], let number = stagingSubfolder[op.staged] else { return nil }
        if let cached = cachedSubfolder, cached.layer == op.layer, cached.number == number { return cached.fd }
        cachedSubfolder?.fd?.closeChecked()
        let fd = try? staging.openBeneath(Array(String(number).utf8), O_RDONLY | O_DIRECTORY)
        cachedSubfolder = (op.layer, number, fd)
        return fd
    }

    /// Removes the staging folders (what a roll-back leaves behind is nothing else); with
    /// `onlyCreated`, only those this runner made.
    mutating func removeStaging(onlyCreated: Bool = false) throws(CorralError) {
        cachedSubfolder?.fd?.closeChecked()
        cachedSubfolder = nil
        for layer in roots.indices where created[layer] || !onlyCreated {
            stagings[layer]?.closeChecked()
            stagings[layer] = nil
            let root = roots[layer]
            try attempt("remove the staging folder", stagingPath(layer)) { () throws(Errno) in
                try TreeWalk.remove(journal.stagingName, in: root)
            }
        }
    }

    // MARK: - Applying (after the point of no return; redone by recovery)

    /// Runs every operation, in order, calling `advance` after each.
    mutating func applyAll(_ advance: () -> Void) throws(CorralError) {
        for layer in roots.indices where stagings[layer] == nil {
            // Recovery: the staging folder may be gone (already emptied and removed); then
            // every copy comes from the upper layer again.
            stagings[layer] = try? roots[layer].openBeneath(journal.stagingName, O_RDONLY | O_DIRECTORY)
        }
        for (index, op) in journal.operations.enumerated() {
            do throws(CorralError) {
                try apply(op)
            } catch {
                var error = error
                error.message = (error.message.map { $0 + "; " } ?? "")
                    + "the commit stopped at operation \(index + 1) of \(journal.operations.count): its journal stays, "
                    + "and `corral recover` finishes the commit once the cause is fixed"
                throw error
            }
            advance()
        }
    }

    /// Makes everything durable, then removes the staging folders; `advance` after each.
    mutating func finish(_ advance: () -> Void) throws(CorralError) {
        var synced: Set<UInt64> = []
        for layer in roots.indices {
            let root = roots[layer]
            try attempt("syncfs", realPath(layer, [])) { () throws(Errno) in
                let device = try root.status().device
                if synced.insert(device).inserted { try root.syncFileSystem() }
            }
        }
        advance()
        try removeStaging()
        advance()
    }

    private mutating func apply(_ op: CommitOperation) throws(CorralError) {
        let (parentPath, name) = op.path.parentAndName
        let parent = try openParent(op.layer, parentPath)
        var path: String { realPath(op.layer, op.path) }  // for messages only
        switch op.kind {
        case .remove:
            dropCachedParent(under: op.path)
            try attempt("remove", path) { () throws(Errno) in try TreeWalk.remove(name, in: parent) }
        case .directory:
            dropCachedParent(under: op.path)
            let made = try attempt("mkdir", path) { () throws(Errno) -> Bool in
                do throws(Errno) { try parent.makeDirectory(name, mode: 0o700) } catch .fileExists { return false }
                return true
            }
            if !made {
                let status = try attempt("stat", path) { () throws(Errno) in try parent.statusOfEntry(name) }
                guard let status, status.kind == .directory else {
                    throw CorralError(.supervisionFailed, operation: "mkdir", path: path,
                                      message: "expected a folder or nothing here, found a \(status?.kind.noun ?? "vanishing entry"): "
                                          + "the real folder changed during the commit",
                                      hint: "move it away; `corral recover` then finishes the commit")
                }
                // Made earlier by this commit (a redo): owner rights until its final mode comes.
                if status.mode & 0o700 != 0o700 {
                    try attempt("chmod", path) { () throws(Errno) in try parent.changeModeOfEntry(name, status.mode | 0o700) }
                }
            }
            if let owner = op.owner {
                try attempt("chown", path) { () throws(Errno) in
                    try parent.changeOwnerOfEntry(name, uid: owner.uid, gid: owner.gid)
                }
            }
        case .file, .symlink:
            try placeStaged(op, in: parent, name: name)
        case .mode:
            try attempt("chmod", path) { () throws(Errno) in try parent.changeModeOfEntry(name, op.mode) }
        }
    }

    /// Renames the staged copy into place. Without it (recovery after it was renamed, or a
    /// mount point between the staging folder and the target) a new copy is made from the
    /// upper layer under a temporary name next to the target and renamed in its turn.
    private mutating func placeStaged(_ op: CommitOperation, in parent: FileDescriptor,
                                      name: PathBytes) throws(CorralError) {
        var path: String { realPath(op.layer, op.path) }
        if let staging = stagedFolder(op) {
            do throws(Errno) {
                try staging.renameEntry(stagedName(op), to: parent, name)
                return
            } catch .noSuchFileOrDirectory, .improperLink {
                // Renamed already (a redo), or across a mount point: a fresh copy below.
            } catch .isDirectory, .directoryNotEmpty, .fileExists {
                let status = try? parent.statusOfEntry(name)
                throw CorralError(.supervisionFailed, operation: "rename into place", path: path,
                                  message: "expected a file, a symlink or nothing here, found a \(status?.kind.noun ?? "folder"): "
                                      + "the real folder changed during the commit",
                                  hint: "move it away; `corral recover` then finishes the commit")
            } catch {
                throw CorralError(.supervisionFailed, operation: "rename into place", path: path, errno: error,
                                  hint: Transaction.hint(for: error))
            }
        }
        // A fixed name per operation: a copy left by an interrupted redo is replaced, not leaked.
        let temporary = journal.stagingName + Array(".\(op.staged)".utf8)
        let temporaryPath = realPath(op.layer, op.path.parentAndName.parent.appending(temporary))
        try attempt("remove", temporaryPath) { () throws(Errno) in
            do throws(Errno) { try parent.removeEntry(temporary) } catch .noSuchFileOrDirectory {}
        }
        try place(op, in: parent, name: temporary)
        try attempt("rename into place", path) { () throws(Errno) in try parent.renameEntry(temporary, to: parent, name) }
    }

    /// Creates `name` in `folder` as the operation's file (copied from the upper layer) or
    /// symlink, with its mode, owner and times.
    private mutating func place(_ op: CommitOperation, in folder: FileDescriptor, name: PathBytes) throws(CorralError) {
        var source: String { upperPath(op.layer, op.path) }
        if op.kind == .symlink {
            try attempt("create the symlink for", source) { () throws(Errno) in
                try folder.makeSymlink(name, target: op.target)
                if let owner = op.owner { try folder.changeOwnerOfEntry(name, uid: owner.uid, gid: owner.gid) }
                try folder.setTimesOfEntry(name, access: op.accessTime, modify: op.modifyTime)
            }
            return
        }
        let (parentPath, fileName) = op.path.parentAndName
        let upperParent = try openUpperParent(op.layer, parentPath)
        let input = try attempt("open", source) { () throws(Errno) in
            try Transaction.openUpperFile(fileName, in: upperParent)
        }
        defer { input.closeChecked() }
        let status = try attempt("stat", source) { () throws(Errno) in try input.status() }
        let kind = status.kind
        guard kind == .file else {
            throw CorralError(.supervisionFailed, operation: "copy", path: source,
                              message: "the upper layer changed after it was read (now a \(kind.noun))")
        }
        // A metacopy file's data lives in the lower layer: copying it would commit zeros.
        // overlayfs never makes one with `userxattr` (it turns metacopy off); checked anyway.
        // (A file its owner may not read hides its user xattrs too: EACCES, nothing to see.)
        if try attempt("read xattrs of", source, { () throws(Errno) in
            do throws(Errno) { return try input.extendedAttribute("user.overlay.metacopy") } catch .permissionDenied {
                return nil
            }
        }) != nil {
            throw CorralError(.supervisionFailed, operation: "copy", path: source,
                              message: "an overlayfs metacopy entry (its data lives in the lower layer)",
                              hint: "mount write paths with `userxattr` (metacopy off)")
        }
        let output = try attempt("create", realPath(op.layer, op.path) + " (staged copy)") { () throws(Errno) in
            try folder.openEntry(name, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        }
        defer { output.closeChecked() }
        try attempt("copy", source) { () throws(Errno) in
            try input.copyContents(to: output, size: status.size)
            // chown first: it clears setuid/setgid, and the mode is final only after it.
            if let owner = op.owner { try output.changeOwner(uid: owner.uid, gid: owner.gid) }
            try output.changeMode(op.mode)
            try output.setTimes(access: op.accessTime, modify: op.modifyTime)
        }
    }

    private mutating func upperRoot(_ layer: Int) throws(CorralError) -> FileDescriptor {
        if let fd = uppers[layer] { return fd }
        let path = journal.layers[layer].upper
        let fd = try attempt("open the upper layer", path) { () throws(Errno) in try FileDescriptor.openFolder(path) }
        uppers[layer] = fd
        return fd
    }

    /// The upper layer's folder `path` of `layer` (no symlinks followed there either).
    private mutating func openUpperParent(_ layer: Int, _ path: PathBytes) throws(CorralError) -> FileDescriptor {
        if let cached = cachedUpperParent, cached.layer == layer, cached.path == path { return cached.fd }
        cachedUpperParent?.fd.closeChecked()
        cachedUpperParent = nil
        let upper = try upperRoot(layer)
        let fd = try attempt("open", path.isEmpty ? journal.layers[layer].upper : upperPath(layer, path)) {
            () throws(Errno) in try upper.openBeneath(path, O_RDONLY | O_DIRECTORY)
        }
        cachedUpperParent = (layer, path, fd)
        return fd
    }

    /// The real folder `path` of `layer`, reached without following any symlink and
    /// without crossing a mount point.
    private mutating func openParent(_ layer: Int, _ path: PathBytes) throws(CorralError) -> FileDescriptor {
        if path.isEmpty { return roots[layer] }
        if let cached = cachedParent, cached.layer == layer, cached.path == path { return cached.fd }
        cachedParent?.fd.closeChecked()
        cachedParent = nil
        let root = roots[layer]
        let fd = try attempt("open", realPath(layer, path)) { () throws(Errno) in
            try root.openBeneath(path, corral_O_PATH | O_DIRECTORY)
        }
        cachedParent = (layer, path, fd)
        return fd
    }

    private mutating func dropCachedParent(under path: PathBytes) {
        guard let cached = cachedParent else { return }
        if cached.path == path || cached.path.starts(with: path + [PathBytes.slash]) {
            cached.fd.closeChecked()
            cachedParent = nil
        }
    }
}

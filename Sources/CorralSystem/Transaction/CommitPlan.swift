import CCorralLaunch
import Glibc
import SystemPackage

/// One step of the apply phase, as the journal keeps it.
///
/// Every operation sets one path to a state that does not depend on what is there (a blind
/// write), and takes its data from the journal or the upper layer, which stays until the
/// journal is gone. Running the whole list again from any intermediate state therefore ends
/// in the same state: that is what makes recovery a plain redo.
struct CommitOperation: Sendable, Hashable {
    enum Kind: String, Sendable, CaseIterable {
        /// Nothing at `path` afterwards (a folder with all it holds).
        case remove
        /// A folder at `path` (created 0700 when missing; its mode comes from a later `mode`).
        case directory
        /// The upper's file at `path`, through its staged copy `staged`.
        case file
        /// A symlink to `target` at `path`, through its staged copy `staged`.
        case symlink
        /// Permission bits of the file or folder at `path`.
        case mode
    }

    struct Owner: Sendable, Hashable {
        var uid: UInt32
        var gid: UInt32
    }

    var kind: Kind
    var layer: Int
    /// Relative to the layer's real folder (and, for `file`, to its upper folder).
    var path: PathBytes
    var staged: Int = -1
    var mode: UInt32 = 0
    /// Set only when Corral runs as root (as `cp -a` keeps owners); otherwise new files
    /// belong to the committing user.
    var owner: Owner?
    var accessTime: Int64 = 0
    var modifyTime: Int64 = 0
    var target: PathBytes = []
}

/// The changes of a set of layers, the operations that apply them, and what the conflict
/// check must compare with the baseline.
struct CommitPlan {
    struct Watch: Sendable, Hashable {
        var layer: Int
        var path: PathBytes
        /// Everything under `path` matters too (it is deleted or replaced).
        var subtree: Bool
    }

    var layers: [WriteLayer] = []
    var changes: [StagedChange] = []
    var operations: [CommitOperation] = []
    /// Entries commit refuses to create (devices, fifos, sockets): (path, what it is).
    var refusals: [(path: String, what: String)] = []
    var watched: [Watch] = []
    var stagedCount = 0

    /// Scans every layer's upper folder against its real folder.
    ///
    /// - Throws: `CorralError` for what cannot be read, and for upper layers Corral cannot
    ///   represent faithfully (a name that is not UTF-8, an overlayfs redirect, nesting
    ///   deeper than `TreeWalk.maximumDepth`, a mount point on the way). Metacopy files are
    ///   refused when they are staged (the file is open then).
    static func build(_ layers: [WriteLayer]) throws(CorralError) -> CommitPlan {
        var plan = CommitPlan(layers: layers)
        for (index, layer) in layers.enumerated() {
            var scanner = LayerScanner(index: index, layer: layer, keepOwners: geteuid() == 0)
            try scanner.scan(into: &plan)
        }
        plan.changes.sort { Array($0.path.utf8).lexicographicallyPrecedes(Array($1.path.utf8)) }
        return plan
    }
}

/// Maps an `Errno` from `body` to a `CorralError` naming the operation and the path.
@inline(__always)
func attempt<T>(_ operation: String, _ path: @autoclosure () -> String,
                _ body: () throws(Errno) -> T) throws(CorralError) -> T {
    do throws(Errno) { return try body() } catch {
        throw CorralError(.supervisionFailed, operation: operation, path: path(), errno: error,
                          hint: Transaction.hint(for: error))
    }
}

extension EntryStatus.Kind {
    var fileType: StagedChange.FileType {
        switch self {
        case .file: .file
        case .directory: .directory
        case .symlink: .symlink
        case .whiteout, .device, .fifo, .socket: .other
        }
    }

    var noun: String {
        switch self {
        case .file: "file"
        case .directory: "folder"
        case .symlink: "symlink"
        case .whiteout: "whiteout"
        case .device: "device file"
        case .fifo: "fifo"
        case .socket: "socket"
        }
    }
}

/// Permission bits for what the upper holds: setuid and setgid are never taken from the
/// upper; they stay only where the real entry already has them and the contents did not
/// change (`real` is nil for new or changed contents).
func committedMode(upper: UInt32, real: UInt32?) -> UInt32 {
    (upper & 0o1777) | (upper & (real ?? 0) & 0o6000)
}

/// Walks one upper folder and its real folder side by side.
private struct LayerScanner {
    let index: Int
    let layer: WriteLayer
    let keepOwners: Bool
    /// Scratch space for comparing contents.
    var buffer: [UInt8] = []

    func realPath(_ path: PathBytes) -> String { path.isEmpty ? layer.real : layer.real + "/" + path.text }
    func upperPath(_ path: PathBytes) -> String { path.isEmpty ? layer.upper : layer.upper + "/" + path.text }

    func refuse(_ path: PathBytes, _ message: String, hint: String? = nil) -> CorralError {
        CorralError(.supervisionFailed, operation: "read staged changes", path: upperPath(path), message: message,
                    hint: hint)
    }

    mutating func scan(into plan: inout CommitPlan) throws(CorralError) {
        let upper = try attempt("open the upper layer", layer.upper) { () throws(Errno) in
            try FileDescriptor.openFolder(layer.upper)
        }
        defer { upper.closeChecked() }
        let real = try attempt("open the real folder", layer.real) { () throws(Errno) in
            try FileDescriptor.openFolder(layer.real)
        }
        defer { real.closeChecked() }
        let realStatus = try attempt("stat", layer.real) { () throws(Errno) in try real.status() }
        plan.watched.append(.init(layer: index, path: [], subtree: false))
        try scanFolder(upper: upper, real: real, path: [], hidesReal: false,
                       realSetgid: realStatus.mode & 0o2000 != 0, depth: 0, into: &plan)
    }

    /// `hidesReal`: this folder is opaque or below one, so real entries the upper does not
    /// have are deleted (overlayfs looks no further than the upper below an opaque folder).
    /// Returns how many such entries there are.
    @discardableResult
    mutating func scanFolder(upper: FileDescriptor, real: FileDescriptor?, path: PathBytes, hidesReal: Bool,
                             realSetgid: Bool, depth: Int, into plan: inout CommitPlan) throws(CorralError) -> Int {
        guard depth < TreeWalk.maximumDepth else {
            throw refuse(path, "folders nested deeper than \(TreeWalk.maximumDepth) levels")
        }
        let names = try attempt("list", upperPath(path)) { () throws(Errno) in try upper.entries() }
            .map(\.name).sorted { $0.lexicographicallyPrecedes($1) }
        var hidden = 0
        if hidesReal, let real {
            let listed = Set(names)
            let realNames = try attempt("list", realPath(path)) { () throws(Errno) in try real.entries() }
                .map(\.name).filter { !listed.contains($0) }.sorted { $0.lexicographicallyPrecedes($1) }
            for name in realNames {
                let rel = path.appending(name)
                guard let status = try attempt("stat", realPath(rel), { () throws(Errno) in try real.statusOfEntry(name) })
                else { continue }
                guard String(validating: rel, as: UTF8.self) != nil else {
                    throw CorralError(.supervisionFailed, operation: "read staged changes", path: realPath(rel),
                                      message: "the run deletes an entry whose name is not valid UTF-8")
                }
                plan.changes.append(try deletion(of: status, at: rel, in: real, name: name))
                plan.operations.append(CommitOperation(kind: .remove, layer: index, path: rel))
                hidden += 1
            }
        }
        for name in names {
            let rel = path.appending(name)
            guard let u = try attempt("stat", upperPath(rel), { () throws(Errno) in try upper.statusOfEntry(name) })
            else { continue }
            guard String(validating: rel, as: UTF8.self) != nil else {
                throw refuse(rel, "the name is not valid UTF-8", hint: "rename it inside the sandbox, or discard the run")
            }
            var r: EntryStatus?
            if let real {
                r = try attempt("stat", realPath(rel)) { () throws(Errno) in try real.statusOfEntry(name) }
            }
            plan.watched.append(.init(layer: index, path: rel, subtree: false))
            switch u.kind {
            case .whiteout:
                guard let r, let real else { continue }
                plan.changes.append(try deletion(of: r, at: rel, in: real, name: name))
                if r.kind == .directory { plan.watched.append(.init(layer: index, path: rel, subtree: true)) }
                plan.operations.append(CommitOperation(kind: .remove, layer: index, path: rel))
            case .device, .fifo, .socket:
                plan.changes.append(StagedChange(kind: r == nil ? .added : .replaced, path: realPath(rel), type: .other,
                                                 oldType: r?.kind.fileType))
                plan.refusals.append((realPath(rel), u.kind.noun))
            case .directory:
                try scanDirectory(u, r, upper: upper, real: real, name: name, rel: rel, hidesReal: hidesReal,
                                  realSetgid: realSetgid, depth: depth, into: &plan)
            case .file:
                try scanFile(u, r, upper: upper, real: real, name: name, rel: rel, into: &plan)
            case .symlink:
                try scanSymlink(u, r, upper: upper, real: real, name: name, rel: rel, into: &plan)
            }
        }
        return hidden
    }

    func deletion(of r: EntryStatus, at rel: PathBytes, in real: FileDescriptor,
                  name: PathBytes) throws(CorralError) -> StagedChange {
        var change = StagedChange(kind: .deleted, path: realPath(rel), type: r.kind.fileType, oldType: r.kind.fileType)
        switch r.kind {
        case .file: (change.oldMode, change.oldSize) = (r.mode, r.size)
        case .directory: change.oldMode = r.mode
        case .symlink:
            let target = try attempt("readlink", realPath(rel)) { () throws(Errno) in try real.readLink(name) }
            change.oldLinkTarget = target.text
        default: break
        }
        return change
    }

    mutating func scanDirectory(_ u: EntryStatus, _ r: EntryStatus?, upper: FileDescriptor, real: FileDescriptor?,
                                name: PathBytes, rel: PathBytes, hidesReal: Bool, realSetgid: Bool, depth: Int,
                                into plan: inout CommitPlan) throws(CorralError) {
        let child = try attempt("open", upperPath(rel)) { () throws(Errno) in
            try upper.openEntry(name, O_RDONLY | O_DIRECTORY)
        }
        defer { child.closeChecked() }
        // A redirect would make the folder stand for a lower folder elsewhere; overlayfs never
        // makes one with `userxattr` (redirect_dir=nofollow), and a layer that has one is refused.
        if try attempt("read xattrs of", upperPath(rel), { () throws(Errno) in
            try child.extendedAttribute("user.overlay.redirect")
        }) != nil {
            throw refuse(rel, "an overlayfs redirect (a renamed lower folder); Corral mounts with redirect_dir off")
        }
        let opaque = try attempt("read xattrs of", upperPath(rel)) { () throws(Errno) in
            try child.extendedAttribute("user.overlay.opaque")
        } == [0x79]  // "y"
        let owner = keepOwners ? CommitOperation.Owner(uid: u.uid, gid: u.gid) : nil
        if let r, r.kind == .directory, let real {
            let hides = hidesReal || opaque
            let realChild = try attempt("open", realPath(rel)) { () throws(Errno) in
                try real.openBeneath(name, (hides ? O_RDONLY : corral_O_PATH) | O_DIRECTORY)
            }
            defer { realChild.closeChecked() }
            let mode = committedMode(upper: u.mode, real: r.mode)
            // Everything below matters to an opaque folder: an entry added there meanwhile
            // would be deleted.
            if opaque { plan.watched.append(.init(layer: index, path: rel, subtree: true)) }
            let hidden = try scanFolder(upper: child, real: realChild, path: rel, hidesReal: hides,
                                        realSetgid: r.mode & 0o2000 != 0, depth: depth + 1, into: &plan)
            // "replaced" when it hides something; otherwise it is the folder it was.
            if opaque && hidden > 0 {
                plan.changes.append(StagedChange(kind: .replaced, path: realPath(rel), type: .directory, oldType: .directory,
                                                 oldMode: r.mode, newMode: mode))
            } else if mode != r.mode {
                plan.changes.append(StagedChange(kind: .mode, path: realPath(rel), type: .directory, oldType: .directory,
                                                 oldMode: r.mode, newMode: mode))
            }
            if mode != r.mode { plan.operations.append(CommitOperation(kind: .mode, layer: index, path: rel, mode: mode)) }
            return
        }
        // A new folder keeps setgid when its real parent has it (as mkdir(2) would give it).
        let mode = committedMode(upper: u.mode, real: realSetgid ? 0o2000 : nil)
        if let r {
            plan.changes.append(StagedChange(kind: .replaced, path: realPath(rel), type: .directory, oldType: r.kind.fileType,
                                             oldMode: r.kind == .symlink ? nil : r.mode, newMode: mode,
                                             oldSize: r.kind == .file ? r.size : nil))
            plan.operations.append(CommitOperation(kind: .remove, layer: index, path: rel))
        } else {
            plan.changes.append(StagedChange(kind: .added, path: realPath(rel), type: .directory, newMode: mode))
        }
        plan.operations.append(CommitOperation(kind: .directory, layer: index, path: rel, owner: owner))
        try scanFolder(upper: child, real: nil, path: rel, hidesReal: true, realSetgid: mode & 0o2000 != 0,
                       depth: depth + 1, into: &plan)
        plan.operations.append(CommitOperation(kind: .mode, layer: index, path: rel, mode: mode))
    }

    mutating func scanFile(_ u: EntryStatus, _ r: EntryStatus?, upper: FileDescriptor, real: FileDescriptor?,
                           name: PathBytes, rel: PathBytes, into plan: inout CommitPlan) throws(CorralError) {
        let operation = CommitOperation(kind: .file, layer: index, path: rel, staged: plan.stagedCount,
                                        mode: committedMode(upper: u.mode, real: nil),
                                        owner: keepOwners ? .init(uid: u.uid, gid: u.gid) : nil,
                                        accessTime: u.accessTime, modifyTime: u.modifyTime)
        var change = StagedChange(kind: .added, path: realPath(rel), type: .file, newMode: operation.mode, newSize: u.size)
        if let r, let real {
            change.oldType = r.kind.fileType
            change.oldMode = r.kind == .symlink ? nil : r.mode
            change.oldSize = r.kind == .file ? r.size : nil
            switch r.kind {
            case .file:
                if r.size == u.size, try sameContents(upper: upper, real: real, name: name, rel: rel, size: u.size) {
                    let mode = committedMode(upper: u.mode, real: r.mode)
                    guard mode != r.mode else { return }  // touched or copied up only
                    change.kind = .mode
                    change.newMode = mode
                    plan.changes.append(change)
                    plan.operations.append(CommitOperation(kind: .mode, layer: index, path: rel, mode: mode))
                    return
                }
                change.kind = .modified
            case .directory:
                change.kind = .replaced
                plan.watched.append(.init(layer: index, path: rel, subtree: true))
                plan.operations.append(CommitOperation(kind: .remove, layer: index, path: rel))
            default:
                change.kind = .replaced  // a symlink or special file: rename(2) replaces it
            }
        }
        plan.changes.append(change)
        plan.operations.append(operation)
        plan.stagedCount += 1
    }

    mutating func sameContents(upper: FileDescriptor, real: FileDescriptor, name: PathBytes, rel: PathBytes,
                               size: UInt64) throws(CorralError) -> Bool {
        let file = try attempt("open", upperPath(rel)) { () throws(Errno) in try Transaction.openUpperFile(name, in: upper) }
        defer { file.closeChecked() }
        let realFile: FileDescriptor
        do throws(Errno) { realFile = try real.openBeneath(name, O_RDONLY | O_NONBLOCK) } catch {
            return false  // unreadable here: treat as changed (the staged copy replaces it)
        }
        defer { realFile.closeChecked() }
        var buffer: [UInt8] = []
        swap(&buffer, &self.buffer)  // one owner: no copy on write
        defer { swap(&buffer, &self.buffer) }
        return try attempt("compare", realPath(rel)) { () throws(Errno) in
            try file.hasSameContents(as: realFile, size: size, buffer: &buffer)
        }
    }

    mutating func scanSymlink(_ u: EntryStatus, _ r: EntryStatus?, upper: FileDescriptor, real: FileDescriptor?,
                              name: PathBytes, rel: PathBytes, into plan: inout CommitPlan) throws(CorralError) {
        let target = try attempt("readlink", upperPath(rel)) { () throws(Errno) in try upper.readLink(name) }
        guard let targetText = String(validating: target, as: UTF8.self) else {
            throw refuse(rel, "the symlink's target is not valid UTF-8")
        }
        let operation = CommitOperation(kind: .symlink, layer: index, path: rel, staged: plan.stagedCount,
                                        owner: keepOwners ? .init(uid: u.uid, gid: u.gid) : nil,
                                        accessTime: u.accessTime, modifyTime: u.modifyTime, target: target)
        var change = StagedChange(kind: .added, path: realPath(rel), type: .symlink, linkTarget: targetText)
        if let r, let real {
            change.oldType = r.kind.fileType
            change.oldMode = r.kind == .symlink ? nil : r.mode
            change.oldSize = r.kind == .file ? r.size : nil
            switch r.kind {
            case .symlink:
                let old = try attempt("readlink", realPath(rel)) { () throws(Errno) in try real.readLink(name) }
                guard old != target else { return }
                change.kind = .modified
                change.oldLinkTarget = old.text
            case .directory:
                change.kind = .replaced
                plan.watched.append(.init(layer: index, path: rel, subtree: true))
                plan.operations.append(CommitOperation(kind: .remove, layer: index, path: rel))
            default:
                change.kind = .replaced
            }
        }
        plan.changes.append(change)
        plan.operations.append(operation)
        plan.stagedCount += 1
    }
}

import Glibc
import SystemPackage

/// Walking and removing trees through folder descriptors, never following a symlink and
/// never crossing a mount point.
enum TreeWalk {
    /// Deeper nesting is refused by the walks that keep a descriptor per level (the scan of an
    /// upper layer, the baseline): a sandbox could otherwise nest folders until Corral runs out
    /// of descriptors or stack. `removeContents` has no such limit.
    static let maximumDepth = 256

    // MARK: - Listing with status

    /// Every entry below `folder` (not `folder` itself) with its status, parents before
    /// children, names in byte order. A folder that cannot be opened (permissions, or a
    /// mount point) is listed without its contents; mount points are added to `mountPoints`.
    ///
    /// - Throws: `Errno.fileNameTooLong` beyond ``maximumDepth`` levels, or the failing call's errno.
    static func list(_ folder: FileDescriptor, path: PathBytes, into result: inout [(path: PathBytes, status: EntryStatus)],
                     mountPoints: inout [PathBytes], depth: Int = 0) throws(Errno) {
        guard depth < maximumDepth else { throw Errno.fileNameTooLong }
        let names = try folder.entries().map(\.name).sorted { $0.lexicographicallyPrecedes($1) }
        for name in names {
            guard let status = try folder.statusOfEntry(name) else { continue }  // removed meanwhile
            let child = path.appending(name)
            result.append((child, status))
            guard status.kind == .directory else { continue }
            let sub: FileDescriptor
            switch Result(catching: { () throws(Errno) in try folder.openBeneath(name, O_RDONLY | O_DIRECTORY) }) {
            case .success(let fd): sub = fd
            case .failure(.improperLink):
                mountPoints.append(child)
                continue
            case .failure(.permissionDenied), .failure(.noSuchFileOrDirectory): continue
            case .failure(let error): throw error
            }
            defer { sub.closeChecked() }
            try list(sub, path: child, into: &result, mountPoints: &mountPoints, depth: depth + 1)
        }
    }

    // MARK: - Removing

    /// Removes `name` in `parent`, whatever it is: a folder with everything in it.
    /// Nothing there is not an error.
    static func remove(_ name: PathBytes, in parent: FileDescriptor) throws(Errno) {
        guard let status = try parent.statusOfEntry(name) else { return }
        guard status.kind == .directory else {
            do throws(Errno) { try parent.removeEntry(name) } catch .noSuchFileOrDirectory { return }
            return
        }
        let folder = try openForRemoval(name, in: parent)
        do throws(Errno) {
            try removeContents(of: folder)
        } catch {
            folder.closeChecked()
            throw error
        }
        folder.closeChecked()
        do throws(Errno) { try parent.removeEntry(name, directory: true) } catch .noSuchFileOrDirectory { return }
    }

    /// Removes everything inside `root` (which stays). Iterative, holding one descriptor
    /// besides `root` whatever the depth: going back up opens `..` and checks it is the
    /// folder it came from (device and inode), as fts(3) does, so a folder moved meanwhile
    /// stops the removal instead of redirecting it.
    static func removeContents(of root: FileDescriptor) throws(Errno) {
        struct Frame {
            var device: UInt64
            var inode: UInt64
            var pending: [DirectoryEntry]
            var name: PathBytes
        }
        let rootStatus = try root.status()
        var stack = [Frame(device: rootStatus.device, inode: rootStatus.inode, pending: try root.entries(), name: [])]
        var current = root  // root, or the one descriptor this function owns
        defer { if current != root { current.closeChecked() } }
        while !stack.isEmpty {
            if let entry = stack[stack.count - 1].pending.popLast() {
                var isFolder = entry.type == UInt8(DT_DIR)
                if !isFolder {
                    let result = valueOrErrno { unsafe withCName(entry.name) { unsafe unlinkat(current.rawValue, $0, 0) } }
                    switch result {
                    case .success, .failure(.noSuchFileOrDirectory): continue
                    case .failure(.isDirectory): isFolder = true  // DT_UNKNOWN or changed meanwhile
                    case .failure(let error): throw error
                    }
                }
                let child = try openForRemoval(entry.name, in: current)
                let status: EntryStatus
                let pending: [DirectoryEntry]
                do throws(Errno) {
                    status = try child.status()
                    pending = try child.entries()
                } catch {
                    child.closeChecked()
                    throw error
                }
                if current != root { current.closeChecked() }
                current = child
                stack.append(Frame(device: status.device, inode: status.inode, pending: pending, name: entry.name))
                continue
            }
            let done = stack.removeLast()
            guard let parentFrame = stack.last else { break }
            let parent: FileDescriptor
            if stack.count == 1 {
                parent = root
            } else {
                parent = try current.openEntry(Array("..".utf8), O_RDONLY | O_DIRECTORY)
                let status: EntryStatus
                do throws(Errno) { status = try parent.status() } catch {
                    parent.closeChecked()
                    throw error
                }
                guard status.device == parentFrame.device, status.inode == parentFrame.inode else {
                    parent.closeChecked()
                    throw Errno.staleNFSFileHandle
                }
            }
            current.closeChecked()
            current = parent
            do throws(Errno) { try current.removeEntry(done.name, directory: true) } catch .noSuchFileOrDirectory {}
        }
    }

    /// Opens the folder `name` in `parent` for emptying it: never across a mount point or
    /// through a symlink. A folder without owner rights (overlayfs's `work/work` is mode 000)
    /// gets u+rwx when this user owns it, as `rm -rf` cannot do.
    private static func openForRemoval(_ name: PathBytes, in parent: FileDescriptor) throws(Errno) -> FileDescriptor {
        let folder: FileDescriptor
        do throws(Errno) {
            folder = try parent.openBeneath(name, O_RDONLY | O_DIRECTORY)
        } catch .permissionDenied {
            try parent.changeModeOfEntry(name, 0o700)
            folder = try parent.openBeneath(name, O_RDONLY | O_DIRECTORY)
        }
        if geteuid() != 0 {
            let status: EntryStatus
            do throws(Errno) { status = try folder.status() } catch {
                folder.closeChecked()
                throw error
            }
            if status.mode & 0o300 != 0o300 && status.uid == geteuid() {
                try? folder.changeMode(status.mode | 0o700)
            }
        }
        return folder
    }
}

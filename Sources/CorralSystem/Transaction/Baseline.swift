import CCorralLaunch
import Glibc
import SystemPackage

/// The state of the real folders just before a run starts, to tell at commit time whether
/// something else changed what the run changes.
///
/// One line per entry (type, permission bits, size, modification and change time in ns,
/// inode, device); the change time cannot be set from user space, so a rewrite that restores
/// size and mtime is still seen. Text with length-prefixed paths, like the journal:
///
///     corral-baseline 1
///     layer 9:/src/proj
///     0: d 755 4096 1714000000000000000 1714000000000000000 1234 2049
///     5:a.txt f 644 12 1714000000000000000 1714000000000000000 1240 2049
///     end
///
/// Folders compare by type, mode, inode and device only: their times and sizes follow their
/// entries, which are compared on their own where they matter.
enum Baseline {
    struct Entry: Sendable, Hashable {
        var kind: EntryStatus.Kind
        var mode: UInt32
        var size: UInt64
        var modifyTime: Int64
        var changeTime: Int64
        var inode: UInt64
        var device: UInt64

        init(_ status: EntryStatus) {
            kind = status.kind
            mode = status.mode
            size = status.size
            modifyTime = status.modifyTime
            changeTime = status.changeTime
            inode = status.inode
            device = status.device
        }

        init(kind: EntryStatus.Kind, mode: UInt32, size: UInt64, modifyTime: Int64, changeTime: Int64,
             inode: UInt64, device: UInt64) {
            (self.kind, self.mode, self.size, self.modifyTime) = (kind, mode, size, modifyTime)
            (self.changeTime, self.inode, self.device) = (changeTime, inode, device)
        }

        func matches(_ other: Entry) -> Bool {
            guard kind == other.kind, mode == other.mode, inode == other.inode, device == other.device else { return false }
            return kind == .directory || (size == other.size && modifyTime == other.modifyTime
                && changeTime == other.changeTime)
        }
    }

    struct Layer {
        var real: String
        var entries: [PathBytes: Entry] = [:]
        /// The paths in byte order: the entries below a folder are one range.
        var sortedPaths: [PathBytes] = []

        func paths(below folder: PathBytes) -> ArraySlice<PathBytes> {
            let prefix = folder + [PathBytes.slash]
            var low = 0
            var high = sortedPaths.count
            while low < high {
                let mid = (low + high) / 2
                if sortedPaths[mid].lexicographicallyPrecedes(prefix) { low = mid + 1 } else { high = mid }
            }
            var end = low
            while end < sortedPaths.count, sortedPaths[end].starts(with: prefix) { end += 1 }
            return sortedPaths[low..<end]
        }
    }

    private static let letters: [(EntryStatus.Kind, String)] = [
        (.file, "f"), (.directory, "d"), (.symlink, "l"), (.whiteout, "w"), (.device, "c"), (.fifo, "p"), (.socket, "s"),
    ]

    // MARK: - Recording

    static func record(_ layers: [WriteLayer], to file: String) throws(CorralError) {
        var out = Array("corral-baseline 1\n".utf8)
        for layer in layers {
            let root = try attempt("open the real folder", layer.real) { () throws(Errno) in
                try FileDescriptor.openFolder(layer.real)
            }
            defer { root.closeChecked() }
            var listing: [(path: PathBytes, status: EntryStatus)] = []
            var mountPoints: [PathBytes] = []  // recorded as folders; what is beyond them is not the overlay's
            try attempt("record the baseline of", layer.real) { () throws(Errno) in
                listing.append(([], try root.status()))
                try TreeWalk.list(root, path: [], into: &listing, mountPoints: &mountPoints)
            }
            out += Array("layer \(layer.real.utf8.count):".utf8) + Array(layer.real.utf8) + [0x0A]
            for (path, status) in listing {
                let letter = letters.first { $0.0 == status.kind }!.1
                out += Array("\(path.count):".utf8) + path
                out += Array(" \(letter) \(String(status.mode, radix: 8)) \(status.size) \(status.modifyTime) "
                    .utf8)
                out += Array("\(status.changeTime) \(status.inode) \(status.device)\n".utf8)
            }
        }
        out += Array("end\n".utf8)
        try Transaction.writeWhole(out, to: file, operation: "write the baseline", durable: false)
    }

    // MARK: - Reading

    static func load(_ file: String) throws(CorralError) -> [Layer] {
        let bytes = try attempt("read the baseline", file) { () throws(Errno) in try HostEnvironment.readFile(file) }
        func bad(_ what: String) -> CorralError {
            CorralError(.supervisionFailed, operation: "read the baseline", path: file,
                        message: "not a Corral baseline (\(what))")
        }
        var cursor = Cursor(bytes: bytes)
        guard cursor.literal("corral-baseline 1\n") else { throw bad("header") }
        var layers: [Layer] = []
        while cursor.literal("layer ") {
            guard let real = cursor.netstring().flatMap({ String(validating: $0, as: UTF8.self) }), cursor.literal("\n")
            else { throw bad("layer line") }
            var layer = Layer(real: real)
            while !cursor.atEnd, cursor.bytes[cursor.offset] >= 0x30, cursor.bytes[cursor.offset] <= 0x39 {
                guard let path = cursor.netstring(), cursor.literal(" "),
                      let letter = cursor.token(), let kind = letters.first(where: { $0.1 == letter })?.0, cursor.literal(" "),
                      let mode = cursor.token().flatMap({ UInt32($0, radix: 8) }), cursor.literal(" "),
                      let size = cursor.integer(), cursor.literal(" "),
                      let modifyTime = cursor.integer(), cursor.literal(" "),
                      let changeTime = cursor.integer(), cursor.literal(" "),
                      let inode = cursor.token().flatMap({ UInt64($0) }), cursor.literal(" "),
                      let device = cursor.token().flatMap({ UInt64($0) }), cursor.literal("\n")
                else { throw bad("entry \(layer.sortedPaths.count + 1) of \(real)") }
                layer.entries[path] = Entry(kind: kind, mode: mode, size: UInt64(max(0, size)), modifyTime: modifyTime,
                                            changeTime: changeTime, inode: inode, device: device)
                layer.sortedPaths.append(path)
            }
            layer.sortedPaths.sort { $0.lexicographicallyPrecedes($1) }
            layers.append(layer)
        }
        guard cursor.literal("end\n"), cursor.atEnd else { throw bad("end") }
        return layers
    }

    // MARK: - Comparing

    /// The real paths, among those `plan` depends on, whose state differs from the baseline.
    static func conflicts(_ plan: CommitPlan, baseline file: String) throws(CorralError) -> [String] {
        let baseline = try load(file)
        guard baseline.map(\.real) == plan.layers.map(\.real) else {
            throw CorralError(.supervisionFailed, operation: "read the baseline", path: file,
                              message: "it records other write paths (\(baseline.map(\.real).joined(separator: ", ")))")
        }
        var conflicts: Set<String> = []
        for (index, layer) in plan.layers.enumerated() {
            let root = try attempt("open the real folder", layer.real) { () throws(Errno) in
                try FileDescriptor.openFolder(layer.real)
            }
            defer { root.closeChecked() }
            var parentCache: (path: PathBytes, fd: FileDescriptor?)?
            defer { parentCache?.fd?.closeChecked() }
            func display(_ path: PathBytes) -> String { path.isEmpty ? layer.real : layer.real + "/" + path.text }
            for watch in plan.watched where watch.layer == index {
                let base = baseline[index].entries[watch.path]
                // The entry now: nil when absent; `unreachable` when a symlink or mount point is
                // on the way (a conflict whatever the baseline says).
                var current: Entry?
                var unreachable = false
                if watch.path.isEmpty {
                    current = Entry(try attempt("stat", layer.real) { () throws(Errno) in try root.status() })
                } else {
                    let (parentPath, name) = watch.path.parentAndName
                    if parentCache?.path != parentPath {
                        parentCache?.fd?.closeChecked()
                        var fd: FileDescriptor?
                        do throws(Errno) { fd = try root.openBeneath(parentPath, corral_O_PATH | O_DIRECTORY) } catch {
                            // A missing parent, or a file where a folder was: the entry is absent.
                            if error != .noSuchFileOrDirectory && error != .notDirectory { unreachable = true }
                        }
                        parentCache = (parentPath, fd)
                        if fd == nil && unreachable { parentCache = nil }
                    }
                    if let parent = parentCache?.fd {
                        current = try attempt("stat", display(watch.path)) { () throws(Errno) in
                            try parent.statusOfEntry(name).map(Entry.init)
                        }
                    }
                }
                let same = !unreachable && (base == nil) == (current == nil) && (base.map { b in current!.matches(b) } ?? true)
                if !same { conflicts.insert(display(watch.path)) }
                guard watch.subtree, !unreachable else { continue }
                // Everything below: what the baseline had against what is there now.
                var now: [PathBytes: Entry] = [:]
                if current?.kind == .directory {
                    var listing: [(path: PathBytes, status: EntryStatus)] = []
                    var mountPoints: [PathBytes] = []
                    try attempt("list", display(watch.path)) { () throws(Errno) in
                        let folder = try root.openBeneath(watch.path, O_RDONLY | O_DIRECTORY)
                        defer { folder.closeChecked() }
                        try TreeWalk.list(folder, path: watch.path, into: &listing, mountPoints: &mountPoints)
                    }
                    // The commit would have to delete across it: refused before anything changes.
                    if let mountPoint = mountPoints.first {
                        throw CorralError(.supervisionFailed, operation: "commit", path: display(mountPoint),
                                          errno: .improperLink, message: "the run deletes a folder holding a mount point",
                                          hint: Transaction.hint(for: .improperLink))
                    }
                    for (path, status) in listing { now[path] = Entry(status) }
                }
                for path in baseline[index].paths(below: watch.path) {
                    if let entry = now.removeValue(forKey: path), entry.matches(baseline[index].entries[path]!) { continue }
                    conflicts.insert(display(path))
                }
                for path in now.keys { conflicts.insert(display(path)) }
            }
        }
        return conflicts.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }
}

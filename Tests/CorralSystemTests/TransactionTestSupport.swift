import Glibc
import SystemPackage
import Testing
@testable import CorralSystem

/// A scratch folder with a real tree, an upper layer built by hand, and a run folder for the
/// journal and the baseline. Whiteouts are character devices 0:0 (mknod needs root, which CI
/// is); opaque folders get `user.overlay.opaque=y`, as overlayfs mounted with `userxattr` writes.
final class TransactionScratch {
    let root: String
    var real: String { root + "/real" }
    var upper: String { root + "/upper" }
    var runFolder: String { root + "/run" }
    var journal: String { runFolder + "/journal" }
    var baseline: String { runFolder + "/baseline" }
    var layer: WriteLayer { WriteLayer(real: real, upper: upper) }

    init(_ name: String = "txn", in folder: String = "/tmp") throws {
        var template = Array("\(folder)/corral-\(name)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        root = String(cString: try #require(made))
        for folder in [real, upper, runFolder] { mkdir(folder, 0o755) }
    }

    deinit { _ = system("chmod -R u+rwx '\(root)' 2>/dev/null; rm -rf '\(root)'") }

    /// `path` below `base` (real or upper), parents created 0755.
    func file(_ base: String, _ path: String, _ contents: String, mode: mode_t = 0o644) {
        makeParents(base, path)
        let full = base + "/" + path
        unlink(full)
        let fd = open(full, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        precondition(fd >= 0, "create \(full): \(errno)")
        _ = Array(contents.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        fchmod(fd, mode)
        close(fd)
    }

    func folder(_ base: String, _ path: String, mode: mode_t = 0o755) {
        makeParents(base, path)
        mkdir(base + "/" + path, 0o700)
        chmod(base + "/" + path, mode)
    }

    func symlink(_ base: String, _ path: String, to target: String) {
        makeParents(base, path)
        _ = Glibc.symlink(target, base + "/" + path)
    }

    func whiteout(_ path: String) {
        makeParents(upper, path)
        let rc = mknod(upper + "/" + path, S_IFCHR | 0o000, 0)
        precondition(rc == 0, "mknod whiteout: \(errno)")
    }

    func opaque(_ path: String) throws {
        let fd = try FileDescriptor.openFolder(upper + "/" + path)
        defer { fd.closeChecked() }
        try fd.setExtendedAttribute("user.overlay.opaque", Array("y".utf8))
    }

    private func makeParents(_ base: String, _ path: String) {
        var prefix = base
        for component in path.split(separator: "/").dropLast() {
            prefix += "/" + component
            mkdir(prefix, 0o755)
        }
    }
}

/// A listing of a tree for exact comparisons: one line per entry with type, permission
/// bits and contents or target, sorted. Written with plain libc calls, apart from the code
/// under test.
func treeListing(_ root: String) -> [String] {
    var lines: [String] = []
    func walk(_ relative: String) {
        let full = relative.isEmpty ? root : root + "/" + relative
        guard let dir = opendir(full) else { return }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(dir)
        for name in names.sorted() {
            let path = relative.isEmpty ? name : relative + "/" + name
            var st = stat()
            guard lstat(root + "/" + path, &st) == 0 else { continue }
            let mode = String(UInt32(st.st_mode) & 0o7777, radix: 8)
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                lines.append("d \(mode) \(path)")
                walk(path)
            case S_IFLNK:
                lines.append("l \(path) -> \(HostEnvironment.readLink(root + "/" + path) ?? "?")")
            case S_IFREG:
                let contents = (try? HostEnvironment.readFile(root + "/" + path)).map { String(decoding: $0, as: UTF8.self) }
                lines.append("f \(mode) \(path) = \(contents ?? "?")")
            default:
                lines.append("? \(mode) \(path)")
            }
        }
    }
    walk("")
    return lines
}

/// lstat(2) of a path, for inode and time checks.
func lstatOf(_ path: String) -> stat? {
    var st = stat()
    return lstat(path, &st) == 0 ? st : nil
}

/// Runs `/bin/sh -c script`; its exit status.
@discardableResult
func shell(_ script: String) -> Int32 {
    let status = system(script)
    return status == -1 ? -1 : (status >> 8) & 0xFF
}

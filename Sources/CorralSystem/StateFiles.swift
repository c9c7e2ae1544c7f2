import Glibc
import SystemPackage

// MARK: - Shims (fileprivate: other files of this module keep their own names free)

fileprivate func system_mkdirOwner(_ path: String, _ mode: mode_t) -> Int32 { unsafe Glibc.mkdir(path, mode) }
fileprivate func system_openFile(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
    unsafe Glibc.open(path, flags, mode)
}
fileprivate func system_link(_ existing: String, _ new: String) -> Int32 { unsafe Glibc.link(existing, new) }
fileprivate func system_rename(_ old: String, _ new: String) -> Int32 { unsafe Glibc.rename(old, new) }
fileprivate func system_unlink(_ path: String) -> Int32 { unsafe Glibc.unlink(path) }
fileprivate func system_lstat(_ path: String, _ buffer: inout stat) -> Int32 { unsafe Glibc.lstat(path, &buffer) }

/// Files of Corral's own state (keys, the audit log's head) that must be created whole and
/// owner-only, by several processes at once without a lock between them.
public enum StateFiles {
    /// Creates `path` and any missing parents with `mode` (owner-only by default); folders
    /// that already exist are left as they are.
    ///
    /// The corresponding C function is `mkdir`.
    public static func createFolders(_ path: String, mode: UInt32 = 0o700) throws(Errno) {
        // Usually there already: one lstat instead of a mkdir per component.
        if try kind(of: path) == .directory { return }
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            // Concrete String appends: the generic `"/" + component` made the launch path
            // look up a protocol conformance at run time (a scan of the binary's records).
            prefix.append("/")
            prefix.append(String(component))
            switch valueOrErrno(retryOnInterrupt: true, { system_mkdirOwner(prefix, mode_t(mode)) }) {
            case .success, .failure(.fileExists): continue
            case .failure(let error): throw error
            }
        }
        guard try kind(of: path) == .directory else { throw Errno.notDirectory }
    }

    public enum Kind: Sendable, Equatable { case missing, regular, directory, symlink, other }

    /// What `path` is, without following a final symlink.
    ///
    /// The corresponding C function is `lstat`.
    public static func kind(of path: String) throws(Errno) -> Kind {
        var st = stat()
        switch valueOrErrno({ system_lstat(path, &st) }) {
        case .failure(.noSuchFileOrDirectory): return .missing
        case .failure(let error): throw error
        case .success: break
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .regular
        case S_IFDIR: return .directory
        case S_IFLNK: return .symlink
        default: return .other
        }
    }

    /// Writes `bytes` into a file that must not exist yet (`O_EXCL`: never through a planted
    /// symlink, never over another process's file), flushed to disk when `durable`.
    ///
    /// The corresponding C function is `open` with `O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW`.
    public static func createNew(_ path: String, _ bytes: [UInt8], mode: UInt32 = 0o600,
                                 durable: Bool = false) throws(Errno) {
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW
        let fd = FileDescriptor(rawValue: try valueOrErrno { system_openFile(path, flags, mode_t(mode)) }.get())
        defer { fd.closeChecked() }
        do {
            try fd.writeFully(bytes)
            if durable { _ = try valueOrErrno { Glibc.fsync(fd.rawValue) }.get() }
        } catch {
            _ = system_unlink(path)
            throw error
        }
    }

    /// A name next to `path` for a file that is written and then moved into place: unique per
    /// process and call.
    public static func temporaryName(for path: String) -> String {
        "\(path).tmp-\(getpid())-\(UInt64.random(in: 1...UInt64.max))"
    }

    /// Puts a complete file at `path` that no other process has yet: written to a temporary
    /// name, then hard-linked into place, which fails with `EEXIST` when `path` exists (the
    /// file there is then kept, and the caller reads it). Readers never see a partial file.
    ///
    /// The corresponding C functions are `open(O_EXCL)`, `link` and `unlink`.
    public static func createOnce(_ path: String, _ bytes: [UInt8], mode: UInt32 = 0o600) throws(Errno) {
        let temporary = temporaryName(for: path)
        try createNew(temporary, bytes, mode: mode, durable: true)
        defer { _ = system_unlink(temporary) }
        _ = try valueOrErrno { system_link(temporary, path) }.get()
    }

    /// Replaces `path` with a complete file of `bytes` (written to a temporary name, then
    /// renamed over it): readers see the old file or the new one, never a mix.
    ///
    /// The corresponding C functions are `open(O_EXCL)` and `rename`.
    public static func replace(_ path: String, _ bytes: [UInt8], mode: UInt32 = 0o600,
                               durable: Bool = false) throws(Errno) {
        let temporary = temporaryName(for: path)
        try createNew(temporary, bytes, mode: mode, durable: durable)
        switch valueOrErrno({ system_rename(temporary, path) }) {
        case .success: return
        case .failure(let error):
            _ = system_unlink(temporary)
            throw error
        }
    }

    /// Removes `path` when it exists.
    ///
    /// The corresponding C function is `unlink`.
    public static func remove(_ path: String) throws(Errno) {
        switch valueOrErrno({ system_unlink(path) }) {
        case .success, .failure(.noSuchFileOrDirectory): return
        case .failure(let error): throw error
        }
    }
}

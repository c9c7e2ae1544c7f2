import Glibc
import SystemPackage

// MARK: - Shims (fileprivate: other files of this module keep their own names free)

fileprivate func system_openCreating(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
    unsafe Glibc.open(path, flags, mode)
}
// Unqualified: `Glibc.flock` names `struct flock`.
fileprivate func system_flock(_ fd: Int32, _ operation: Int32) -> Int32 { flock(fd, operation) }
fileprivate func system_fstat(_ fd: Int32, _ buffer: inout stat) -> Int32 { unsafe Glibc.fstat(fd, &buffer) }
fileprivate func system_ftruncate(_ fd: Int32, _ length: off_t) -> Int32 { Glibc.ftruncate(fd, length) }
fileprivate func system_fdatasync(_ fd: Int32) -> Int32 { Glibc.fdatasync(fd) }

/// A regular file of Corral's own that several processes append to, one locked batch at a
/// time: the audit log. Each instance is its own open file description, so `flock` locks of
/// two instances (in one process or in two) exclude each other; two threads sharing one
/// instance share its lock and must serialise themselves.
public final class LockedFile: Sendable {
    public let descriptor: Int32
    public let path: String

    private init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    deinit { FileDescriptor(rawValue: descriptor).closeChecked() }

    /// Opens (creating with `mode` when missing) `path` for reading and appending. The last
    /// component must not be a symlink; every `write` goes to the end of the file, whatever
    /// another process wrote meanwhile.
    ///
    /// The corresponding C function is `open` with `O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW`.
    public static func openForAppending(_ path: String, mode: UInt32 = 0o600) throws(Errno) -> LockedFile {
        let flags = O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW
        let fd = try valueOrErrno { system_openCreating(path, flags, mode_t(mode)) }.get()
        return LockedFile(descriptor: fd, path: path)
    }

    /// Opens (creating with `mode` when missing) `path` for reading and writing in place
    /// (`write(_:at:)`); the last component must not be a symlink.
    ///
    /// The corresponding C function is `open` with `O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW`.
    public static func openForUpdating(_ path: String, mode: UInt32 = 0o600) throws(Errno) -> LockedFile {
        let flags = O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW
        let fd = try valueOrErrno { system_openCreating(path, flags, mode_t(mode)) }.get()
        return LockedFile(descriptor: fd, path: path)
    }

    /// Opens `path` read-only.
    ///
    /// The corresponding C function is `open` with `O_RDONLY | O_CLOEXEC`.
    public static func openForReading(_ path: String) throws(Errno) -> LockedFile {
        let fd = try valueOrErrno { system_openCreating(path, O_RDONLY | O_CLOEXEC, 0) }.get()
        return LockedFile(descriptor: fd, path: path)
    }

    // MARK: - Locking

    public enum LockKind: Sendable { case shared, exclusive }

    /// Waits for the whole-file advisory lock. Locks belong to the open file description and
    /// go away with it, also when the process dies.
    ///
    /// The corresponding C function is `flock` with `LOCK_SH` or `LOCK_EX`.
    public func lock(_ kind: LockKind) throws(Errno) {
        let operation = kind == .shared ? LOCK_SH : LOCK_EX
        _ = try valueOrErrno { system_flock(descriptor, operation) }.get()
    }

    /// The corresponding C function is `flock` with `LOCK_UN`.
    public func unlock() {
        _ = valueOrErrno { system_flock(descriptor, LOCK_UN) }
    }

    // MARK: - Reading and writing

    /// The file's size in bytes.
    ///
    /// The corresponding C function is `fstat`.
    public func size() throws(Errno) -> Int {
        var st = stat()
        _ = try valueOrErrno { system_fstat(descriptor, &st) }.get()
        return Int(st.st_size)
    }

    /// Up to `count` bytes from `offset` (fewer only at end-of-file). The file position is
    /// not used, so readers never disturb appenders.
    ///
    /// The corresponding C function is `pread`.
    public func read(at offset: Int, count: Int) throws(Errno) -> [UInt8] {
        precondition(offset >= 0 && count >= 0, "pread: negative offset or count")
        var buffer = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = try unsafe buffer.withUnsafeMutableBytes { raw in
                valueOrErrno { unsafe pread(descriptor, raw.baseAddress! + filled, count - filled, off_t(offset + filled)) }
            }.get()
            if n == 0 { break }
            filled += n
        }
        if filled < count { buffer.removeLast(count - filled) }
        return buffer
    }

    /// The whole file: its size's worth, then whatever was added meanwhile.
    public func readAll() throws(Errno) -> [UInt8] {
        var bytes = try read(at: 0, count: size())
        while true {
            let more = try read(at: bytes.count, count: 4096)
            if more.isEmpty { return bytes }
            bytes += more
        }
    }

    /// Writes all of `bytes` at the end of the file. One `write` call carries them unless the
    /// kernel writes short (a full disk, a fatal signal arriving mid-copy); the rest then
    /// follows, still at the end, which is contiguous while the caller holds the exclusive lock.
    ///
    /// The corresponding C function is `write` on an `O_APPEND` descriptor.
    public func append(_ bytes: [UInt8]) throws(Errno) {
        try FileDescriptor(rawValue: descriptor).writeFully(bytes)
    }

    /// Writes all of `bytes` at `offset` (on a descriptor without `O_APPEND`).
    ///
    /// The corresponding C function is `pwrite`.
    public func write(_ bytes: [UInt8], at offset: Int) throws(Errno) {
        precondition(offset >= 0, "pwrite: negative offset")
        var written = 0
        while written < bytes.count {
            let n = try unsafe bytes.withUnsafeBytes { raw in
                valueOrErrno { unsafe pwrite(descriptor, raw.baseAddress! + written, bytes.count - written, off_t(offset + written)) }
            }.get()
            written += n
        }
    }

    /// Cuts the file to `size` bytes.
    ///
    /// The corresponding C function is `ftruncate`.
    public func truncate(to size: Int) throws(Errno) {
        _ = try valueOrErrno { system_ftruncate(descriptor, off_t(size)) }.get()
    }

    /// Waits until the file's data, and its size when that changed, are on stable storage
    /// (not its times).
    ///
    /// The corresponding C function is `fdatasync`.
    public func synchronizeData() throws(Errno) {
        _ = try valueOrErrno { system_fdatasync(descriptor) }.get()
    }
}

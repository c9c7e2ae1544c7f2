import CCorralLaunch
import Glibc
import SystemPackage

// The calls the transaction engine makes on folder descriptors: every one is relative to an
// open folder (`*at`), never follows a symlink in its last component, and takes file names
// as bytes (Linux names are bytes; a `String` would fold Unicode-equivalent names together).
// Calls Swift's Glibc module lacks (`copy_file_range`, `syncfs`, `getdents64`, the xattr
// calls: they sit behind _GNU_SOURCE or in sys/xattr.h) are made as raw syscalls, numbered
// through libseccomp's table for this architecture.

/// A file name (one component) or a relative path (components joined by `/`), as bytes.
typealias PathBytes = [UInt8]

extension PathBytes {
    static let slash: UInt8 = 0x2F

    /// `self/name`, or `name` when `self` is the root (empty).
    func appending(_ name: PathBytes) -> PathBytes {
        isEmpty ? name : self + [Self.slash] + name
    }

    /// The folder part and the last component: `a/b/c` → (`a/b`, `c`); `c` → (``, `c`).
    var parentAndName: (parent: PathBytes, name: PathBytes) {
        guard let slash = lastIndex(of: Self.slash) else { return ([], self) }
        return (Array(self[..<slash]), Array(self[(slash + 1)...]))
    }

    /// For messages only: invalid UTF-8 shows as U+FFFD.
    var text: String { String(decoding: self, as: UTF8.self) }
}

/// Calls `body` with `bytes` as a NUL-terminated C string.
@inline(__always)
func withCName<R>(_ bytes: PathBytes, _ body: (UnsafePointer<CChar>) -> R) -> R {
    var terminated = bytes
    terminated.append(0)
    return unsafe terminated.withUnsafeBufferPointer { buffer in
        unsafe buffer.withMemoryRebound(to: CChar.self) { unsafe body($0.baseAddress!) }
    }
}

/// What `lstat` says about one entry, as far as a commit cares.
struct EntryStatus: Sendable, Hashable {
    enum Kind: UInt8, Sendable {
        case file, directory, symlink, whiteout, device, fifo, socket
    }

    var kind: Kind
    /// Permission bits, with setuid, setgid and sticky (`st_mode & 07777`).
    var mode: UInt32
    var size: UInt64
    var uid: UInt32
    var gid: UInt32
    var device: UInt64
    var inode: UInt64
    /// Nanoseconds since the epoch.
    var accessTime: Int64
    var modifyTime: Int64
    var changeTime: Int64

    init(_ st: Glibc.stat) {
        switch st.st_mode & S_IFMT {
        case S_IFREG: kind = .file
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symlink
        // overlayfs marks a deletion with a character device 0:0 (Documentation/filesystems/overlayfs.rst, "whiteouts").
        case S_IFCHR: kind = st.st_rdev == 0 ? .whiteout : .device
        case S_IFBLK: kind = .device
        case S_IFIFO: kind = .fifo
        default: kind = .socket
        }
        mode = UInt32(st.st_mode) & 0o7777
        size = UInt64(st.st_size)
        uid = st.st_uid
        gid = st.st_gid
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        accessTime = Int64(st.st_atim.tv_sec) * 1_000_000_000 + Int64(st.st_atim.tv_nsec)
        modifyTime = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        changeTime = Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec)
    }
}

/// One name from a folder listing, with the type `getdents64` reported (`DT_*`, may be `DT_UNKNOWN`).
struct DirectoryEntry: Sendable, Hashable {
    var name: PathBytes
    var type: UInt8
}

/// Syscall numbers of this architecture for the calls Glibc does not export.
enum TreeSyscall {
    static let getdents64 = number("getdents64")
    static let copyFileRange = number("copy_file_range")
    static let syncfs = number("syncfs")
    static let fgetxattr = number("fgetxattr")
    static let fsetxattr = number("fsetxattr")

    private static func number(_ name: String) -> Int {
        guard let nr = SeccompCompiler.resolve(name) else { preconditionFailure("no syscall number for \(name)") }
        return Int(nr)
    }

    /// `syscall(2)`, EINTR retried; -errno becomes `Errno`.
    static func call(_ number: Int, _ a0: Int, _ a1: Int = 0, _ a2: Int = 0, _ a3: Int = 0,
                     _ a4: Int = 0, _ a5: Int = 0) -> Result<Int, Errno> {
        while true {
            let rc = corral_raw_syscall(number, a0, a1, a2, a3, a4, a5)
            if rc >= 0 { return .success(rc) }
            if rc == -Int(EINTR) { continue }
            return .failure(Errno(rawValue: Int32(-rc)))
        }
    }
}

// RESOLVE_NO_XDEV from linux/openat2.h (stable ABI value; not among CCorralLaunch's constants).
private let resolveNoCrossingMounts: UInt64 = 0x01

extension FileDescriptor {
    // MARK: - Opening

    /// Opens the entry `name` of this folder; the last component is never followed.
    ///
    /// The corresponding C function is `openat` with `O_NOFOLLOW | O_CLOEXEC`.
    func openEntry(_ name: PathBytes, _ flags: Int32, mode: mode_t = 0) throws(Errno) -> FileDescriptor {
        let fd = try valueOrErrno {
            unsafe withCName(name) { unsafe openat(rawValue, $0, flags | O_NOFOLLOW | O_CLOEXEC, mode) }
        }.get()
        return FileDescriptor(rawValue: fd)
    }

    /// Opens `path` (several components) below this folder, refusing symlinks anywhere on the
    /// way, `..` out of the folder, and mount points (what lies beyond a mount point inside a
    /// lower folder is not what an overlay shows).
    ///
    /// The corresponding C function is `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
    /// RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV`.
    func openBeneath(_ path: PathBytes, _ flags: Int32) throws(Errno) -> FileDescriptor {
        let resolve = corral_RESOLVE_BENEATH | corral_RESOLVE_NO_SYMLINKS | corral_RESOLVE_NO_MAGICLINKS
            | resolveNoCrossingMounts
        let target = path.isEmpty ? Array(".".utf8) : path
        let rc = unsafe withCName(target) { unsafe corral_openat2(rawValue, $0, UInt64(flags | O_CLOEXEC), 0, resolve) }
        return FileDescriptor(rawValue: try valueOrNegatedErrno(rc).get())
    }

    /// Opens a folder by absolute path (symlinks on the way followed: the path is Corral's
    /// own configuration, not something a sandbox wrote).
    ///
    /// The corresponding C function is `open` with `O_DIRECTORY | O_CLOEXEC`.
    static func openFolder(_ path: String, listing: Bool = true) throws(Errno) -> FileDescriptor {
        let flags = (listing ? O_RDONLY : corral_O_PATH) | O_DIRECTORY | O_CLOEXEC
        return FileDescriptor(rawValue: try valueOrErrno { system_open(path, flags) }.get())
    }

    // MARK: - Status

    /// The corresponding C function is `fstat`.
    func status() throws(Errno) -> EntryStatus {
        var st = Glibc.stat()
        _ = try valueOrErrno { unsafe fstat(rawValue, &st) }.get()
        return EntryStatus(st)
    }

    /// The status of `name` itself (a symlink is not followed); nil when it does not exist.
    ///
    /// The corresponding C function is `fstatat` with `AT_SYMLINK_NOFOLLOW`.
    func statusOfEntry(_ name: PathBytes) throws(Errno) -> EntryStatus? {
        var st = Glibc.stat()
        let rc = valueOrErrno { unsafe withCName(name) { unsafe fstatat(rawValue, $0, &st, AT_SYMLINK_NOFOLLOW) } }
        switch rc {
        case .success: return EntryStatus(st)
        case .failure(.noSuchFileOrDirectory): return nil
        case .failure(let error): throw error
        }
    }

    /// The target of the symlink `name`.
    ///
    /// The corresponding C function is `readlinkat`.
    func readLink(_ name: PathBytes) throws(Errno) -> PathBytes {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = try unsafe buffer.withUnsafeMutableBytes { raw in
            valueOrErrno {
                unsafe withCName(name) { unsafe readlinkat(rawValue, $0, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count) }
            }
        }.get()
        guard n < buffer.count else { throw Errno.fileNameTooLong }
        return Array(buffer[..<n])
    }

    /// The value of extended attribute `name`, or nil when the entry has none of that name
    /// (or the filesystem keeps none).
    ///
    /// The corresponding C function is `fgetxattr`.
    func extendedAttribute(_ name: String) throws(Errno) -> [UInt8]? {
        var value = [UInt8](repeating: 0, count: 256)
        let rc = unsafe value.withUnsafeMutableBytes { raw in
            unsafe name.withCString { cName in
                TreeSyscall.call(TreeSyscall.fgetxattr, Int(rawValue), Int(bitPattern: cName),
                                 Int(bitPattern: raw.baseAddress), raw.count)
            }
        }
        switch rc {
        case .success(let n): return Array(value[..<n])
        case .failure(.noData), .failure(.notSupported): return nil
        // A value longer than 256 bytes: present, and not one overlayfs's markers ("y").
        case .failure(.outOfRange): return [UInt8](repeating: 0, count: 257)
        case .failure(let error): throw error
        }
    }

    /// The corresponding C function is `fsetxattr`.
    func setExtendedAttribute(_ name: String, _ value: [UInt8]) throws(Errno) {
        _ = try unsafe value.withUnsafeBytes { raw in
            unsafe name.withCString { cName in
                TreeSyscall.call(TreeSyscall.fsetxattr, Int(rawValue), Int(bitPattern: cName),
                                 Int(bitPattern: raw.baseAddress), raw.count, 0)
            }
        }.get()
    }

    // MARK: - Listing

    /// The entries of this folder (without `.` and `..`), in the order the filesystem keeps
    /// them. The descriptor must be opened for reading (not `O_PATH`).
    ///
    /// The corresponding C function is `getdents64`.
    func entries() throws(Errno) -> [DirectoryEntry] {
        _ = try valueOrErrno { Glibc.lseek(rawValue, 0, SEEK_SET) }.get()
        var result: [DirectoryEntry] = []
        var buffer = [UInt8](repeating: 0, count: 32_768)
        while true {
            let n = try unsafe buffer.withUnsafeMutableBytes { raw in
                TreeSyscall.call(TreeSyscall.getdents64, Int(rawValue), Int(bitPattern: raw.baseAddress), raw.count)
            }.get()
            if n == 0 { return result }
            // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
            var offset = 0
            while offset + 19 < n {
                let length = Int(buffer[offset + 16]) | Int(buffer[offset + 17]) << 8
                let type = buffer[offset + 18]
                var end = offset + 19
                while end < offset + length, buffer[end] != 0 { end += 1 }
                let name = Array(buffer[(offset + 19)..<end])
                if name != [0x2E] && name != [0x2E, 0x2E] { result.append(DirectoryEntry(name: name, type: type)) }
                guard length > 0 else { break }
                offset += length
            }
        }
    }

    // MARK: - Changing entries

    /// The corresponding C function is `mkdirat`.
    func makeDirectory(_ name: PathBytes, mode: mode_t) throws(Errno) {
        _ = try valueOrErrno { unsafe withCName(name) { unsafe mkdirat(rawValue, $0, mode) } }.get()
    }

    /// Removes `name` (a folder only when `directory`, and only when empty).
    ///
    /// The corresponding C function is `unlinkat`.
    func removeEntry(_ name: PathBytes, directory: Bool = false) throws(Errno) {
        _ = try valueOrErrno { unsafe withCName(name) { unsafe unlinkat(rawValue, $0, directory ? AT_REMOVEDIR : 0) } }.get()
    }

    /// Renames `name` in this folder to `newName` in `folder`, replacing what is there
    /// (a symlink there is replaced, never followed).
    ///
    /// The corresponding C function is `renameat`.
    func renameEntry(_ name: PathBytes, to folder: FileDescriptor, _ newName: PathBytes) throws(Errno) {
        _ = try valueOrErrno {
            unsafe withCName(name) { from in unsafe withCName(newName) { to in unsafe renameat(rawValue, from, folder.rawValue, to) } }
        }.get()
    }

    /// The corresponding C function is `symlinkat`.
    func makeSymlink(_ name: PathBytes, target: PathBytes) throws(Errno) {
        _ = try valueOrErrno {
            unsafe withCName(target) { t in unsafe withCName(name) { n in unsafe symlinkat(t, rawValue, n) } }
        }.get()
    }

    /// Changes the permission bits of `name` without following a symlink (a symlink there
    /// fails with `EOPNOTSUPP`).
    ///
    /// The corresponding C function is `fchmodat` with `AT_SYMLINK_NOFOLLOW`.
    func changeModeOfEntry(_ name: PathBytes, _ mode: UInt32) throws(Errno) {
        _ = try valueOrErrno {
            unsafe withCName(name) { unsafe fchmodat(rawValue, $0, mode_t(mode), AT_SYMLINK_NOFOLLOW) }
        }.get()
    }

    /// The corresponding C function is `fchownat` with `AT_SYMLINK_NOFOLLOW`.
    func changeOwnerOfEntry(_ name: PathBytes, uid: UInt32, gid: UInt32) throws(Errno) {
        _ = try valueOrErrno { unsafe withCName(name) { unsafe fchownat(rawValue, $0, uid, gid, AT_SYMLINK_NOFOLLOW) } }.get()
    }

    /// The corresponding C function is `fchmod`.
    func changeMode(_ mode: UInt32) throws(Errno) {
        _ = try valueOrErrno { fchmod(rawValue, mode_t(mode)) }.get()
    }

    /// The corresponding C function is `fchown`.
    func changeOwner(uid: UInt32, gid: UInt32) throws(Errno) {
        _ = try valueOrErrno { fchown(rawValue, uid, gid) }.get()
    }

    /// Sets the access and modification times (nanoseconds since the epoch).
    ///
    /// The corresponding C function is `futimens`.
    func setTimes(access: Int64, modify: Int64) throws(Errno) {
        var times = [timespec.fromNanoseconds(access), timespec.fromNanoseconds(modify)]
        _ = try valueOrErrno { unsafe futimens(rawValue, &times) }.get()
    }

    /// The corresponding C function is `utimensat` with `AT_SYMLINK_NOFOLLOW`.
    func setTimesOfEntry(_ name: PathBytes, access: Int64, modify: Int64) throws(Errno) {
        var times = [timespec.fromNanoseconds(access), timespec.fromNanoseconds(modify)]
        _ = try valueOrErrno { unsafe withCName(name) { unsafe utimensat(rawValue, $0, &times, AT_SYMLINK_NOFOLLOW) } }.get()
    }

    // MARK: - Contents and durability

    /// Copies `size` bytes (the size `fstat` gave) from this file's position to
    /// `destination`: in the kernel (`copy_file_range`, which shares extents on filesystems
    /// that can), else `sendfile`, else read and write. Stopping at `size` saves the call
    /// that would only see the end of the file; a file that shrank meanwhile ends early.
    ///
    /// The corresponding C functions are `copy_file_range`, `sendfile`, `read` and `write`.
    func copyContents(to destination: FileDescriptor, size: UInt64) throws(Errno) {
        var remaining = Int(clamping: size)
        var useCopyRange = true
        var useSendfile = true
        while remaining > 0 {
            let chunk = min(remaining, 1 << 30)
            if useCopyRange {
                switch TreeSyscall.call(TreeSyscall.copyFileRange, Int(rawValue), 0, Int(destination.rawValue), 0, chunk, 0) {
                case .success(0): return
                case .success(let n): remaining -= n
                // Across filesystems (before 5.19 only within one type), or a filesystem without it.
                case .failure(.improperLink), .failure(.invalidArgument), .failure(.notSupported),
                     .failure(.noFunction), .failure(.badFileDescriptor):
                    useCopyRange = false
                case .failure(let error): throw error
                }
                continue
            }
            if useSendfile {
                switch valueOrErrno({ sendfile(destination.rawValue, rawValue, nil, chunk) }) {
                case .success(0): return
                case .success(let n): remaining -= n
                case .failure(.invalidArgument), .failure(.noFunction): useSendfile = false
                case .failure(let error): throw error
                }
                continue
            }
            let bytes = try readFully(count: min(chunk, 1 << 16))
            if bytes.isEmpty { return }
            try destination.writeFully(bytes)
            remaining -= bytes.count
        }
    }

    /// Whether this file and `other`, both `size` bytes long, hold the same bytes (read from
    /// their current positions; `buffer` is scratch space reused between calls).
    func hasSameContents(as other: FileDescriptor, size: UInt64, buffer: inout [UInt8]) throws(Errno) -> Bool {
        let chunk = 1 << 16
        if buffer.count < 2 * chunk { buffer = [UInt8](repeating: 0, count: 2 * chunk) }
        var remaining = Int(clamping: size)
        while remaining > 0 {
            let want = min(chunk, remaining)
            let same = try unsafe buffer.withUnsafeMutableBytes { raw -> Result<Bool, Errno> in
                for (fd, start) in [(self, 0), (other, chunk)] {
                    var filled = 0
                    while filled < want {
                        let n = valueOrErrno { unsafe Glibc.read(fd.rawValue, raw.baseAddress! + start + filled, want - filled) }
                        guard case .success(let count) = n else { return n.map { _ in false } }
                        if count == 0 { return .success(false) }  // shorter than its size said: changed meanwhile
                        filled += count
                    }
                }
                return .success(unsafe memcmp(raw.baseAddress!, raw.baseAddress! + chunk, want) == 0)
            }.get()
            if !same { return false }
            remaining -= want
        }
        return true
    }

    /// Writes back every dirty page of the filesystem this descriptor is on.
    ///
    /// The corresponding C function is `syncfs`.
    func syncFileSystem() throws(Errno) {
        _ = try TreeSyscall.call(TreeSyscall.syncfs, Int(rawValue)).get()
    }

    /// The corresponding C function is `fsync`.
    func flushToDisk() throws(Errno) {
        _ = try valueOrErrno { fsync(rawValue) }.get()
    }
}

extension timespec {
    static func fromNanoseconds(_ value: Int64) -> timespec {
        var seconds = value / 1_000_000_000
        var nanoseconds = value % 1_000_000_000
        if nanoseconds < 0 {
            seconds -= 1
            nanoseconds += 1_000_000_000
        }
        return timespec(tv_sec: Int(seconds), tv_nsec: Int(nanoseconds))
    }
}

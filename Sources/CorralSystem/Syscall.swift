import CCorralLaunch
import Glibc
import SystemPackage

// MARK: - Shims: the one place each libc call is made from (a hook for tests, as in swift-system)

func system_open(_ path: String, _ flags: Int32) -> Int32 { Glibc.open(path, flags) }

// MARK: - One place for errno handling (swift-system style)

/// Runs `body` until it does not fail with EINTR (when `retryOnInterrupt`) and turns -1 into
/// the current errno.
@inline(__always)
func valueOrErrno<I: FixedWidthInteger>(retryOnInterrupt: Bool = true, _ body: () -> I) -> Result<I, Errno> {
    while true {
        let value = body()
        if value != -1 { return .success(value) }
        let err = Errno(rawValue: Glibc.errno)
        if retryOnInterrupt && err == .interrupted { continue }
        return .failure(err)
    }
}

/// For the C helpers that return `-errno` on failure.
@inline(__always)
func valueOrNegatedErrno(_ value: Int32) -> Result<Int32, Errno> {
    value < 0 ? .failure(Errno(rawValue: -value)) : .success(value)
}

extension FileDescriptor {
    /// Opens `path` as an `O_PATH` handle: an anchor for `*at()` calls and Landlock rules.
    ///
    /// The corresponding C function is `open` with `O_PATH | O_CLOEXEC`.
    static func openPath(_ path: String, followLast: Bool = true) throws(Errno) -> FileDescriptor {
        let flags = corral_O_PATH | O_CLOEXEC | (followLast ? 0 : O_NOFOLLOW)
        return FileDescriptor(rawValue: try valueOrErrno { system_open(path, flags) }.get())
    }

    /// A close-on-exec pipe.
    ///
    /// The corresponding C function is `pipe2` with `O_CLOEXEC`.
    static func closeOnExecPipe() throws(Errno) -> (readEnd: FileDescriptor, writeEnd: FileDescriptor) {
        var fds: [Int32] = [-1, -1]
        _ = try unsafe valueOrNegatedErrno(corral_pipe_cloexec(&fds)).get()
        return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
    }

    /// Closes the descriptor; `EBADF` is a programmer error and traps.
    func closeChecked() {
        if Glibc.close(rawValue) == -1 && Glibc.errno == EBADF {
            preconditionFailure("close(\(rawValue)): EBADF — descriptor closed twice")
        }
    }

    /// Reads until `count` bytes arrived or end-of-file.
    func readFully(count: Int) throws(Errno) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = try unsafe buffer.withUnsafeMutableBytes { raw in
                unsafe valueOrErrno { unsafe Glibc.read(rawValue, raw.baseAddress! + filled, count - filled) }
            }.get()
            if n == 0 { break }
            filled += n
        }
        return Array(buffer[..<filled])
    }

    /// Writes all of `bytes`.
    func writeFully(_ bytes: [UInt8]) throws(Errno) {
        var written = 0
        while written < bytes.count {
            let n = try unsafe bytes.withUnsafeBytes { raw in
                unsafe valueOrErrno { unsafe Glibc.write(rawValue, raw.baseAddress! + written, bytes.count - written) }
            }.get()
            written += n
        }
    }
}

/// `stat` results Corral needs: identity and type.
struct FileIdentity: Sendable, Hashable {
    var device: UInt64
    var inode: UInt64
    var isDirectory: Bool

    /// The corresponding C function is `fstat`.
    init(of fd: FileDescriptor) throws(Errno) {
        var st = stat()
        _ = try unsafe valueOrErrno { unsafe fstat(fd.rawValue, &st) }.get()
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
    }
}

/// Opens a declared path as an `O_PATH` handle. Beneath any of `writeRoots` no symlink is
/// followed: a sandbox with a write path could have planted one there in an earlier run, to
/// turn a nested read or write entry into a bind of anything on the host.
///
/// The corresponding C functions are `open(O_PATH)` and `openat2(RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH)`.
func openDeclaredPath(_ path: String, writeRoots: [String]) throws(Errno) -> FileDescriptor {
    guard let root = writeRoots.filter({ path.hasPrefix($0 == "/" ? "/" : $0 + "/") && path != $0 })
        .max(by: { $0.count < $1.count }) else {
        return try FileDescriptor.openPath(path)
    }
    let rootFD = try FileDescriptor.openPath(root)
    defer { rootFD.closeChecked() }
    let rest = String(path.dropFirst(root == "/" ? 1 : root.count + 1))
    let fd = corral_openat2(rootFD.rawValue, rest, UInt64(corral_O_PATH | O_CLOEXEC), 0,
                            corral_RESOLVE_NO_SYMLINKS | corral_RESOLVE_BENEATH)
    return FileDescriptor(rawValue: try valueOrNegatedErrno(fd).get())
}

/// The canonical path of an open descriptor (/proc/self/fd/N), or nil without /proc.
func canonicalPath(of fd: FileDescriptor) -> String? {
    var buffer = [CChar](repeating: 0, count: 4097)
    let n = unsafe readlink("/proc/self/fd/\(fd.rawValue)", &buffer, 4096)
    guard n > 0 else { return nil }
    let name = unsafe String(decoding: UnsafeRawBufferPointer(start: &buffer, count: n), as: UTF8.self)
    return name.hasPrefix("/") && !name.hasSuffix(" (deleted)") ? name : nil
}

/// The canonical absolute path (symlinks resolved), and the file's identity, from one
/// open: the kernel's name for the descriptor (/proc/self/fd/N) instead of realpath(3),
/// which costs an lstat or readlink per path component.
///
/// The corresponding C functions are `open(O_PATH)`, `readlink` and `fstat`.
func canonicalPathAndIdentity(_ path: String) throws(Errno) -> (String, FileIdentity) {
    let fd = try FileDescriptor.openPath(path)
    defer { fd.closeChecked() }
    let identity = try FileIdentity(of: fd)
    var buffer = [CChar](repeating: 0, count: 4097)
    let n = unsafe readlink("/proc/self/fd/\(fd.rawValue)", &buffer, 4096)
    guard n > 0 else {
        return (try canonicalPath(path), identity)  // no /proc: fall back to realpath(3)
    }
    let name = unsafe String(decoding: UnsafeRawBufferPointer(start: &buffer, count: n), as: UTF8.self)
    // Deleted files and names outside our root read differently; trust only a plain path.
    guard name.hasPrefix("/"), !name.hasSuffix(" (deleted)") else { return (try canonicalPath(path), identity) }
    return (name, identity)
}

/// The canonical absolute path (symlinks resolved).
///
/// The corresponding C function is `realpath`.
func canonicalPath(_ path: String) throws(Errno) -> String {
    guard let resolved = unsafe realpath(path, nil) else { throw Errno(rawValue: Glibc.errno) }
    defer { unsafe free(resolved) }
    return unsafe String(cString: resolved)
}

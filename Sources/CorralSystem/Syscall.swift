import CCorralLaunch
import Glibc
import SystemPackage

// MARK: - Shims: the one place each libc call is made from (a hook for tests, as in swift-system)

func system_open(_ path: String, _ flags: Int32) -> Int32 { unsafe Glibc.open(path, flags) }

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

    /// A connected pair of close-on-exec SOCK_SEQPACKET unix sockets (message boundaries
    /// kept; descriptors can travel with a message).
    static func closeOnExecSocketPair() throws(Errno) -> (FileDescriptor, FileDescriptor) {
        var fds: [Int32] = [-1, -1]
        _ = try valueOrErrno { unsafe socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) }.get()
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
                valueOrErrno { unsafe Glibc.read(rawValue, raw.baseAddress! + filled, count - filled) }
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
                valueOrErrno { unsafe Glibc.write(rawValue, raw.baseAddress! + written, bytes.count - written) }
            }.get()
            written += n
        }
    }
}

/// `stat` results Corral needs: identity and type.
struct FileIdentity: Sendable, Hashable {
    struct Key: Hashable { var device: UInt64, inode: UInt64 }

    var device: UInt64
    var inode: UInt64
    var isDirectory: Bool
    var isSymlink: Bool

    var key: Key { Key(device: device, inode: inode) }

    /// The corresponding C function is `fstat`.
    init(of fd: FileDescriptor) throws(Errno) {
        var st = stat()
        _ = try valueOrErrno { unsafe fstat(fd.rawValue, &st) }.get()
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
        isSymlink = (st.st_mode & S_IFMT) == S_IFLNK
    }
}

/// The identities (device, inode) of the folders a sandbox can write, opened once per launch.
struct WritableTrees {
    let identities: Set<FileIdentity.Key>

    init(_ roots: [String]) {
        var identities: Set<FileIdentity.Key> = []
        for root in roots {
            guard let fd = try? FileDescriptor.openPath(root) else { continue }
            if let identity = try? FileIdentity(of: fd) { identities.insert(identity.key) }
            fd.closeChecked()
        }
        self.identities = identities
    }
}

/// Opens a declared path as an `O_PATH` handle, one component at a time, and tells whether it
/// lies inside a writable tree. Symlinks are followed only outside the writable trees: a
/// sandbox with a write path could have planted one there in an earlier run, to turn a nested
/// read or write entry into a bind of anything on the host. Judging by device and inode also
/// catches a writable tree reached through a symlink (`write: [w-link, w/out]`).
///
/// The corresponding C functions are `openat(O_PATH | O_NOFOLLOW)` and `readlinkat`.
func openDeclaredPath(_ path: String, writable: WritableTrees) throws(Errno) -> (FileDescriptor, insideWritable: Bool) {
    let writable = writable.identities
    guard !writable.isEmpty else { return (try FileDescriptor.openPath(path), false) }
    // The ancestry of the current position: (descriptor, inside a writable tree).
    var stack: [(FileDescriptor, Bool)] = []
    defer { for (fd, _) in stack { fd.closeChecked() } }
    func pushRoot() throws(Errno) {
        let old = stack
        stack = []
        for (fd, _) in old { fd.closeChecked() }
        let root = try FileDescriptor.openPath("/")
        do {
            stack = [(root, writable.contains(try FileIdentity(of: root).key))]
        } catch {
            root.closeChecked()
            throw error
        }
    }
    try pushRoot()
    var pending = path.split(separator: "/").map(String.init)
    var links = 0
    while !pending.isEmpty {
        let component = pending.removeFirst()
        if component == "." || component.isEmpty { continue }
        if component == ".." {
            if stack.count > 1 { stack.removeLast().0.closeChecked() }
            continue
        }
        let (parent, parentWritable) = stack[stack.count - 1]
        let next = FileDescriptor(rawValue: try valueOrErrno {
            unsafe openat(parent.rawValue, component, corral_O_PATH | O_NOFOLLOW | O_CLOEXEC)
        }.get())
        let identity: FileIdentity
        do { identity = try FileIdentity(of: next) } catch {
            next.closeChecked()
            throw error
        }
        if identity.isSymlink {
            defer { next.closeChecked() }
            links += 1
            guard !parentWritable, links <= 40 else { throw Errno.tooManySymbolicLinkLevels }
            // Read the link just opened (not its name again, which could have changed).
            var buffer = [CChar](repeating: 0, count: 4097)
            let n = unsafe readlinkat(next.rawValue, "", &buffer, 4096)
            guard n > 0 else { throw Errno(rawValue: Glibc.errno) }
            guard n < 4096 else { throw Errno.fileNameTooLong }
            let target = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if target.hasPrefix("/") { try pushRoot() }
            pending = target.split(separator: "/").map(String.init) + pending
            continue
        }
        stack.append((next, parentWritable || writable.contains(identity.key)))
    }
    // Inside a writable tree means: some ancestor (not the path itself) is writable.
    let insideWritable = stack.count >= 2 && stack[stack.count - 2].1
    let (result, _) = stack.removeLast()
    return (result, insideWritable)
}

/// The canonical path of an open descriptor (/proc/self/fd/N), or nil without /proc.
func canonicalPath(of fd: FileDescriptor) -> String? {
    var buffer = [CChar](repeating: 0, count: 4097)
    let n = unsafe readlink("/proc/self/fd/\(fd.rawValue)", &buffer, 4096)
    guard n > 0, n < 4096 else { return nil }
    let name = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
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
    guard let name = canonicalPath(of: fd) else {
        return (try canonicalPath(path), identity)  // no /proc, or an odd name: realpath(3)
    }
    return (name, identity)
}

/// The canonical absolute path from one open, as `canonicalPathAndIdentity` finds it: three
/// syscalls where realpath(3) makes one per path component.
func canonicalPathByOpening(_ path: String) throws(Errno) -> String {
    let fd = try FileDescriptor.openPath(path)
    defer { fd.closeChecked() }
    if let name = canonicalPath(of: fd) { return name }
    return try canonicalPath(path)
}

/// The canonical absolute path (symlinks resolved).
///
/// The corresponding C function is `realpath`.
func canonicalPath(_ path: String) throws(Errno) -> String {
    guard let resolved = unsafe realpath(path, nil) else { throw Errno(rawValue: Glibc.errno) }
    defer { unsafe free(resolved) }
    return unsafe String(cString: resolved)
}

import Glibc
import SystemPackage

/// The run folders under the state directory: owner-only folders, listings, and per-run locks.
extension StateFiles {
    /// Creates one folder (mode 0700); it must not exist yet.
    public static func makeFolder(_ path: String, operation: String) throws(CorralError) {
        if unsafe mkdir(path, 0o700) < 0 {
            throw CorralError(.setupFailed, operation: operation, path: path, errno: Errno(rawValue: Glibc.errno))
        }
    }

    public static func rename(_ path: String, to target: String, operation: String) throws(CorralError) {
        if unsafe Glibc.rename(path, target) < 0 {
            throw CorralError(.setupFailed, operation: operation, path: target, errno: Errno(rawValue: Glibc.errno))
        }
    }

    /// Gives `copy` the permissions (and, for root, the owner) of `original`: an overlay's root
    /// folder shows its upper layer's, which must look like the real folder's.
    public static func matchModeAndOwner(of original: String, to copy: String, operation: String) throws(CorralError) {
        var st = stat()
        guard unsafe lstat(original, &st) == 0 else {
            throw CorralError(.setupFailed, operation: operation, path: original, errno: Errno(rawValue: Glibc.errno))
        }
        if geteuid() == 0, unsafe lchown(copy, st.st_uid, st.st_gid) < 0 {
            throw CorralError(.setupFailed, operation: operation, path: copy, errno: Errno(rawValue: Glibc.errno))
        }
        if unsafe chmod(copy, st.st_mode & 0o7777) < 0 {
            throw CorralError(.setupFailed, operation: operation, path: copy, errno: Errno(rawValue: Glibc.errno))
        }
    }

    /// Seconds since `path` was last modified; nil when it does not exist.
    public static func age(_ path: String) -> Double? {
        var st = stat()
        guard unsafe lstat(path, &st) == 0 else { return nil }
        var now = timespec()
        unsafe clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec - st.st_mtim.tv_sec)
    }

    /// The names in a folder (not `.` and `..`), sorted; empty when it does not exist.
    public static func list(_ path: String) -> [String] {
        guard let dir = unsafe opendir(path) else { return [] }
        defer { unsafe closedir(dir) }
        var names: [String] = []
        while let entry = unsafe readdir(dir) {
            let name = unsafe withUnsafeBytes(of: entry.pointee.d_name) { raw in
                unsafe String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }


    /// Random hex digits from the kernel (run ids).
    public static func randomHex(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()  // getrandom(2)
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for _ in 0..<count {
            let byte = UInt8.random(in: 0...255, using: &generator)
            text += [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]]
        }
        return String(decoding: text, as: UTF8.self)
    }
}

/// An exclusive lock on a file (flock), held until `release` or deinit. A run's folder is
/// locked by the `corral` that runs it, commits it or discards it; a folder whose lock is
/// free while its record says "running" was left by a `corral` that died.
public final class FileLock {
    private var descriptor: Int32

    /// Locks `path` (created 0600 if missing). `wait: false` returns nil when another
    /// process holds it.
    public init?(_ path: String, wait: Bool, operation: String) throws(CorralError) {
        let fd = unsafe Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            throw CorralError(.setupFailed, operation: operation, path: path, errno: Errno(rawValue: Glibc.errno))
        }
        while flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0 {
            let error = Errno(rawValue: Glibc.errno)
            if error == .interrupted { continue }
            Glibc.close(fd)
            if error == .wouldBlock { return nil }
            throw CorralError(.setupFailed, operation: operation, path: path, errno: error)
        }
        descriptor = fd
    }

    public func release() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
    }

    deinit { release() }
}

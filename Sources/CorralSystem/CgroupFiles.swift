import Glibc
import SystemPackage

// MARK: - Shims: the one place each libc call of the cgroup backend is made from

func system_mkdir(_ path: String, _ mode: mode_t) -> Int32 { unsafe Glibc.mkdir(path, mode) }
func system_rmdir(_ path: String) -> Int32 { unsafe Glibc.rmdir(path) }
func system_kill(_ pid: pid_t, _ signal: Int32) -> Int32 { Glibc.kill(pid, signal) }

/// File operations on a cgroup filesystem (v1 or v2), and the parsers of its file formats.
///
/// Everything takes full paths: the roots come from ``CgroupHost``, so tests can point the
/// backend at a plain folder that imitates cgroupfs.
enum CgroupFS {
    /// A control file's text, or nil when it is missing or unreadable.
    static func read(_ path: String) -> String? {
        guard let bytes = try? HostEnvironment.readFile(path) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `text` with one `write(2)`: cgroupfs parses every write on its own, so a value
    /// must never be split.
    ///
    /// `O_CREAT` lets the same code fill a plain folder that imitates cgroupfs (tests); on
    /// cgroupfs every control file exists from `mkdir` on, and kernfs refuses to create
    /// others with `EACCES`, which is reported as `ENOENT` (the file is missing: this kernel
    /// or this hierarchy lacks it) instead of a misleading permission error.
    ///
    /// The corresponding C functions are `open` and `write`.
    static func write(_ path: String, _ text: String) throws(Errno) {
        let fd: FileDescriptor
        switch valueOrErrno({ unsafe Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }) {
        case .success(let raw): fd = FileDescriptor(rawValue: raw)
        case .failure(let errno): throw unsafe access(path, F_OK) == 0 ? errno : Errno.noSuchFileOrDirectory
        }
        defer { fd.closeChecked() }
        let bytes = Array(text.utf8)
        let written = try unsafe bytes.withUnsafeBytes { buffer in
            valueOrErrno { unsafe Glibc.write(fd.rawValue, buffer.baseAddress!, buffer.count) }
        }.get()
        // A control file takes a value whole or refuses it; a short write would be a kernel bug.
        if written != bytes.count { throw Errno.ioError }
    }

    static func exists(_ path: String) -> Bool { unsafe access(path, F_OK) == 0 }

    static func isWritable(_ path: String) -> Bool { unsafe access(path, W_OK) == 0 }

    /// The corresponding C function is `mkdir`.
    static func makeDirectory(_ path: String) throws(Errno) {
        _ = try valueOrErrno { system_mkdir(path, 0o755) }.get()
    }

    /// The corresponding C function is `rmdir`.
    static func removeDirectory(_ path: String) throws(Errno) {
        _ = try valueOrErrno { system_rmdir(path) }.get()
    }

    /// The names of the folders directly inside `path` (child cgroups), without `.` and `..`.
    ///
    /// The corresponding C functions are `opendir` and `readdir`.
    static func subdirectories(of path: String) -> [String] {
        guard let dir = unsafe opendir(path) else { return [] }
        defer { unsafe closedir(dir) }
        var names: [String] = []
        while let entry = unsafe readdir(dir) {
            guard unsafe entry.pointee.d_type == UInt8(DT_DIR) else { continue }
            let name = unsafe withUnsafeBytes(of: entry.pointee.d_name) { raw in
                unsafe String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Sends `signal` to `pid`; false when the process is gone.
    ///
    /// The corresponding C function is `kill`.
    @discardableResult
    static func signal(_ pid: Int32, _ signal: Int32) -> Bool {
        if case .success = valueOrErrno({ system_kill(pid, signal) }) { return true }
        return false
    }

    /// Whether a process with this id exists (in this pid namespace). `EPERM` means it exists
    /// but belongs to someone else.
    static func processExists(_ pid: Int32) -> Bool {
        if case .failure(let errno) = valueOrErrno({ system_kill(pid, 0) }) { return errno == .notPermitted }
        return true
    }

    /// Sleeps for `seconds` (short waits while the kernel finishes an exit or a freeze).
    static func pause(_ seconds: Double) {
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var remaining = timespec()
        while unsafe nanosleep(&request, &remaining) == -1 && Glibc.errno == EINTR { request = remaining }
    }

    /// Polls `condition` with growing pauses (50 µs up to 5 ms) until it holds or `timeout`
    /// seconds pass. Returns whether it held.
    static func wait(timeout: Double, until condition: () -> Bool) -> Bool {
        let deadline = HostEnvironment.monotonicSeconds() + timeout
        var interval = 50e-6
        while true {
            if condition() { return true }
            if HostEnvironment.monotonicSeconds() >= deadline { return false }
            pause(interval)
            interval = min(interval * 2, 5e-3)
        }
    }

    // MARK: - File formats

    /// `key value` lines (memory.events, pids.events, cpu.stat, memory.oom_control,
    /// cgroup.events, cpuacct.stat) as a dictionary; lines that do not fit are skipped.
    static func keyedValues(_ text: String) -> [String: UInt64] {
        var values: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, let value = UInt64(fields[1]) { values[String(fields[0])] = value }
        }
        return values
    }

    /// A file holding one number (memory.peak, pids.current, …). `max` is nil.
    static func number(_ text: String) -> UInt64? { UInt64(text.trimmingSpace) }

    /// The process ids in a `cgroup.procs` file.
    static func processIDs(_ text: String) -> [Int32] {
        text.split(separator: "\n").compactMap { Int32($0) }
    }

    /// Controller names in `cgroup.controllers` / `cgroup.subtree_control`.
    static func controllerNames(_ text: String) -> Set<String> {
        Set(text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
    }
}

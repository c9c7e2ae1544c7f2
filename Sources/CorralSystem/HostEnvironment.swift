import CCorralLaunch
import Glibc
import SystemPackage

/// Small pieces of the supervisor's own process state, so the `Corral` layer needs no libc.
public enum HostEnvironment {
    /// The whole of a (small) file.
    public static func readFile(_ path: String) throws(Errno) -> [UInt8] {
        let fd = FileDescriptor(rawValue: try valueOrErrno { system_open(path, O_RDONLY | O_CLOEXEC) }.get())
        defer { fd.closeChecked() }
        // 4 KiB at a time into a reused buffer: the files read on the launch path (the
        // manifest, procfs and sysfs entries) are small, and a large zeroed buffer per read
        // costs page faults.
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = try unsafe chunk.withUnsafeMutableBytes { raw in
                valueOrErrno { unsafe Glibc.read(fd.rawValue, raw.baseAddress!, raw.count) }
            }.get()
            if n == 0 { return bytes }
            bytes.append(contentsOf: chunk[..<n])
        }
    }

    /// Creates (or truncates) an output file of Corral's own (report, events) before the run,
    /// so what the run does cannot redirect it: the last component must not be a symlink
    /// (O_NOFOLLOW), and the file must not lie inside a folder the sandbox may write
    /// (`sandboxWritable`, canonical paths), where a planted symlink or rename could aim the
    /// supervisor's write at any file its user may write. The descriptor stays open.
    public static func createOutputFile(_ path: String, operation: String, key: String,
                                        sandboxWritable: [String]) throws(CorralError) -> Int32 {
        let absolute = path.hasPrefix("/") ? path : currentDirectory() + "/" + path
        let parent = absolute.lastIndex(of: "/").map { String(absolute[..<$0]) } ?? "/"
        let canonicalParent = realPath(parent.isEmpty ? "/" : parent) ?? parent
        for root in sandboxWritable {
            let canonicalRoot = realPath(root) ?? root
            if canonicalParent == canonicalRoot || canonicalParent.hasPrefix(canonicalRoot + "/") {
                throw CorralError(.profileInvalid, operation: operation, path: path,
                                  message: "it lies inside \(root), which the sandbox may write",
                                  hint: "write the \(key) outside the profile's filesystem.write paths")
            }
        }
        let fd = unsafe Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else {
            let error = Errno(rawValue: Glibc.errno)
            throw CorralError(.supervisionFailed, operation: operation, path: path, errno: error,
                              hint: error == .tooManySymbolicLinkLevels ? "the \(key) path is a symlink; name the file itself" : nil)
        }
        return fd
    }

    /// readlink(2); nil when `path` is not a symlink or cannot be read.
    public static func readLink(_ path: String) -> String? {
        var buffer = [UInt8](repeating: 0, count: 4097)
        let n = unsafe buffer.withUnsafeMutableBytes { raw in
            unsafe Glibc.readlink(path, raw.baseAddress!.assumingMemoryBound(to: CChar.self), 4096)
        }
        guard n > 0, n < 4096 else { return nil }
        return String(decoding: buffer[..<n], as: UTF8.self)
    }

    /// realpath(3); nil when the path does not resolve.
    public static func realPath(_ path: String) -> String? {
        guard let resolved = unsafe Glibc.realpath(path, nil) else { return nil }
        defer { unsafe free(resolved) }
        return unsafe String(cString: resolved)
    }

    /// Writes `bytes` to `path` (created 0644, truncated).
    public static func writeFile(_ path: String, _ bytes: [UInt8]) throws(Errno) {
        let fd = FileDescriptor(rawValue: try valueOrErrno {
            unsafe Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        }.get())
        defer { fd.closeChecked() }
        try fd.writeFully(bytes)
    }

    public static var processID: Int32 { getpid() }

    /// Ends this process at once with SIGKILL: no cleanup runs (crash tests).
    public static func killSelf() -> Never {
        _ = kill(getpid(), SIGKILL)
        Glibc.abort()
    }

    /// Puts the fatal signals back to their default action. The Swift runtime's crash
    /// handler would otherwise execute a `swift-backtrace` found next to the binary (or in
    /// its parent folder) when the supervisor crashes — a program anyone who can write there
    /// could plant. A crash then simply dumps core (or not), as for a C program.
    public static func defaultCrashSignals() {
        for signal in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT] { _ = Glibc.signal(signal, SIG_DFL) }
        // A reader that goes away (`corral run --events - | head`) must not kill the
        // supervisor before it has ended the run and written the report: EPIPE instead.
        _ = Glibc.signal(SIGPIPE, SIG_IGN)
    }

    /// Writes all of `bytes` to an output file of Corral's own.
    public static func writeOutput(_ descriptor: Int32, _ bytes: [UInt8], operation: String,
                                   path: String) throws(CorralError) {
        do { try FileDescriptor(rawValue: descriptor).writeFully(bytes) } catch {
            throw CorralError(.supervisionFailed, operation: operation, path: path, errno: error)
        }
    }

    public static func removeFile(_ path: String) {
        _ = unsafe unlink(path)
    }

    public static func close(_ descriptor: Int32) {
        _ = Glibc.close(descriptor)
    }

    /// A read-only descriptor for the terminal on `descriptor`, when it is one; nil otherwise.
    /// The command's stdin then cannot be written to (the caller's terminal is opened
    /// read-write, which would let a command write around `limits.output`).
    public static func readOnlyTerminal(_ descriptor: Int32) -> Int32? {
        guard isatty(descriptor) == 1 else { return nil }
        let fd = unsafe Glibc.open("/proc/self/fd/\(descriptor)", O_RDONLY | O_CLOEXEC | O_NOCTTY)
        return fd >= 0 ? fd : nil
    }

    /// The effective user and group ids (what the sandbox's id maps map).
    public static var effectiveIDs: (uid: UInt32, gid: UInt32) { (geteuid(), getegid()) }

    public static func currentDirectory() -> String {
        guard let cwd = unsafe getcwd(nil, 0) else { return "/" }
        defer { unsafe free(cwd) }
        return unsafe String(cString: cwd)
    }

    public static func variable(_ name: String) -> String? {
        unsafe getenv(name).map { unsafe String(cString: $0) }
    }

    /// The process environment as a dictionary.
    public static func environment() -> [String: String] {
        var count = 0
        while unsafe environ[count] != nil { count += 1 }
        // Sized once: growing it ran the standard library's prebuilt resize, which looks a
        // conformance up at run time (a scan of the binary's records, ~0.1 ms a launch).
        var result = [String: String](minimumCapacity: count)
        var pointer = unsafe environ
        while let entry = unsafe pointer.pointee {
            let text = unsafe String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                result[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            unsafe pointer += 1
        }
        return result
    }

    /// Monotonic time in seconds.
    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        unsafe clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// A moment of the realtime clock, kept as numbers so that taking it costs a vDSO call
    /// and formatting can wait (`rfc3339(_:)`).
    public struct WallTime: Sendable, Hashable {
        public var seconds: Int
        public var nanoseconds: Int
    }

    /// The realtime clock now.
    public static func wallTime() -> WallTime {
        var ts = timespec()
        unsafe clock_gettime(CLOCK_REALTIME, &ts)
        return WallTime(seconds: ts.tv_sec, nanoseconds: ts.tv_nsec)
    }

    /// The current time as RFC 3339 with nanoseconds, UTC.
    public static func rfc3339Now() -> String {
        rfc3339(wallTime())
    }

    /// `time` as RFC 3339 with nanoseconds, UTC (`2026-12-06T03:01:26.000000001Z`). Written
    /// digit by digit: every event and audit entry carries one.
    ///
    /// The corresponding C function is `gmtime_r`.
    public static func rfc3339(_ time: WallTime) -> String {
        var t = time_t(time.seconds)
        var parts = unsafe tm()
        unsafe gmtime_r(&t, &parts)
        let year = Int(parts.tm_year) + 1900
        let fields: [(value: Int, width: Int, then: UInt8)] = [
            (year, 4, UInt8(ascii: "-")), (Int(parts.tm_mon) + 1, 2, UInt8(ascii: "-")), (Int(parts.tm_mday), 2, UInt8(ascii: "T")),
            (Int(parts.tm_hour), 2, UInt8(ascii: ":")), (Int(parts.tm_min), 2, UInt8(ascii: ":")),
            (Int(parts.tm_sec), 2, UInt8(ascii: ".")), (time.nanoseconds, 9, UInt8(ascii: "Z")),
        ]
        guard (0...9999).contains(year), (0..<1_000_000_000).contains(time.nanoseconds) else {
            return fields.map { field in
                let text = String(field.value)
                return String(repeating: "0", count: max(0, field.width - text.count)) + text
                    + String(decoding: [field.then], as: UTF8.self)
            }.joined()
        }
        return unsafe String(unsafeUninitializedCapacity: 30) { buffer in
            var index = 0
            for field in fields {
                var value = field.value
                for position in stride(from: index + field.width - 1, through: index, by: -1) {
                    unsafe buffer[position] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
                index += field.width
                unsafe buffer[index] = field.then
                index += 1
            }
            return index
        }
    }

    /// Starts a detached thread running `body` (a plain pthread: it must not be a pooled
    /// thread that might exit while the sandbox runs).
    public static func startThread(_ body: @escaping @Sendable () -> Void) {
        let thread = spawnThread(body)
        pthread_detach(thread)
    }

    /// A thread to `join` later (once; a second join does nothing).
    public final class JoinableThread: @unchecked Sendable {
        // @unchecked: `joined` is touched only by the thread that started it.
        fileprivate let thread: pthread_t
        fileprivate var joined = false
        fileprivate init(_ thread: pthread_t) { self.thread = thread }
    }

    public static func startJoinableThread(_ body: @escaping @Sendable () -> Void) -> JoinableThread {
        JoinableThread(spawnThread(body))
    }

    public static func join(_ thread: JoinableThread) {
        guard !thread.joined else { return }
        thread.joined = true
        pthread_join(thread.thread, nil)
    }

    private static func spawnThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
        final class Box: @unchecked Sendable {  // handed to exactly one thread
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let box = unsafe Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let rc = unsafe pthread_create(&thread, nil, { raw in
            let box = unsafe Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create: \(rc)")
        return thread
    }
}

/// Signals forwarded into a sandbox: blocked in every thread, read from a signalfd.
public final class SignalWatcher: @unchecked Sendable {
    // @unchecked: the descriptor is set once and only read.
    public let descriptor: Int32

    /// Blocks `signals` in the calling thread (threads created afterwards inherit the mask).
    public static func block(_ signals: [Int32]) {
        _ = unsafe signals.withUnsafeBufferPointer { unsafe corral_block_signals($0.baseAddress, Int32($0.count)) }
    }

    public init?(_ signals: [Int32]) {
        let fd = unsafe signals.withUnsafeBufferPointer { unsafe corral_signalfd($0.baseAddress, Int32($0.count)) }
        guard fd >= 0 else { return nil }
        descriptor = fd
    }

    deinit { FileDescriptor(rawValue: descriptor).closeChecked() }

    /// The next pending signal, if any.
    public func next() -> Int32? {
        let signal = corral_signalfd_read(descriptor)
        return signal > 0 ? signal : nil
    }
}

/// Waits until one of `descriptors` is readable or `timeoutMilliseconds` pass (-1: forever).
/// Returns the readable ones.
///
/// The corresponding C function is `poll`.
public func pollReadable(_ descriptors: [Int32], timeoutMilliseconds: Int32) -> [Int32] {
    var fds = descriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
    let rc = valueOrErrno { unsafe poll(&fds, nfds_t(fds.count), timeoutMilliseconds) }
    guard case .success(let count) = rc, count > 0 else { return [] }
    return fds.filter { $0.revents != 0 }.map(\.fd)
}

extension HostEnvironment {
    /// Writes text to fd 2 unbuffered.
    public static func writeStandardError(_ text: String) {
        try? FileDescriptor(rawValue: 2).writeFully(Array(text.utf8))
    }
}

extension HostEnvironment {
    /// Ends the process with `status` (stdio is unbuffered here; nothing to flush).
    public static func exit(_ status: Int32) -> Never {
        Glibc.exit(status)
    }
}

/// SHA-256 (the launcher's C implementation: no swift-crypto on the launch path).
public func sha256(_ bytes: [UInt8]) -> [UInt8] {
    var digest = [UInt8](repeating: 0, count: 32)
    unsafe bytes.withUnsafeBytes { unsafe corral_sha256($0.baseAddress, $0.count, &digest) }
    return digest
}

/// SHA-256 as lowercase hex.
public func sha256Hex(_ bytes: [UInt8]) -> String {
    lowercaseHex(sha256(bytes))
}

/// Bytes as lowercase hex. A plain loop: `map` + `joined()` made each launch look up a
/// protocol conformance at run time (a scan of every conformance record in the binary).
public func lowercaseHex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0xF)])
    }
    return String(decoding: out, as: UTF8.self)
}

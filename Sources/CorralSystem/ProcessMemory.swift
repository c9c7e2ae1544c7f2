import CCorralLaunch
import SystemPackage

/// Reads another process's memory for the syscall watcher, with bounded lengths.
///
/// The supervisor may read the sandboxed command's memory: it owns the sandbox's user
/// namespace (rootless) or holds CAP_SYS_PTRACE (root), and it is the command's ancestor
/// (Yama). Every read is followed by SECCOMP_IOCTL_NOTIF_ID_VALID in the watcher: only then
/// is it known that the pid still named the waiting caller while it was read. The one
/// exception to reading through the kernel is the command's own execve, which runs on memory
/// a rootless supervisor may not read (see `LaunchMemory`).
///
/// The corresponding C function is `process_vm_readv`.
struct ProcessMemory {
    let pid: Int32
    var launchMemory: LaunchMemory?

    /// Up to `count` bytes at `address`; fewer when an unreadable page follows them.
    func read(_ address: UInt64, count: Int) -> Result<[UInt8], Errno> {
        var failure: Errno?
        let bytes = unsafe [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            let n = unsafe corral_process_read(pid, address, buffer.baseAddress, count)
            if n < 0 { failure = Errno(rawValue: Int32(-n)) }
            initialized = max(0, n)
        }
        if failure == .notPermitted, let launch = launchMemory?.read(address, count: count) { return .success(launch) }
        if let failure { return .failure(failure) }
        if bytes.isEmpty && count > 0 { return .failure(.badAddress) }
        return .success(bytes)
    }

    /// The NUL-terminated string at `address`, at most `limit` bytes of it. Read in growing
    /// chunks: most paths fit the first 256 bytes, and a long read pins every page it covers.
    func string(at address: UInt64, limit: Int) -> Result<(text: String, truncated: Bool), Errno> {
        if let short = shortString(at: address, limit: limit) { return .success((short, false)) }
        var bytes: [UInt8] = []
        var chunk = 256
        while bytes.count <= limit {
            let want = min(chunk, limit + 1 - bytes.count)
            switch read(address &+ UInt64(bytes.count), count: want) {
            case .failure(let error):
                if bytes.isEmpty { return .failure(error) }
                return .success((Self.text(bytes), true))  // unreadable beyond this point
            case .success(let got):
                if let nul = got.firstIndex(of: 0) {
                    bytes += got[..<nul]
                    return .success((Self.text(bytes), false))
                }
                bytes += got
                if got.count < want { return .success((Self.text(bytes), true)) }
            }
            chunk *= 4
        }
        return .success((Self.text(bytes.prefix(limit)), true))
    }

    /// The common case of `string`, read on the stack: a string whose NUL is in the first
    /// 256 bytes (a path, most arguments), decoded with one allocation. Nil for anything
    /// else (longer, unreadable, the launch memory), which `string` then reads again its way.
    private func shortString(at address: UInt64, limit: Int) -> String? {
        let count = min(256, limit + 1)
        return unsafe withUnsafeTemporaryAllocation(of: UInt8.self, capacity: count) { buffer -> String? in
            let n = unsafe corral_process_read(pid, address, buffer.baseAddress, count)
            guard n > 0 else { return nil }
            let read = unsafe UnsafeBufferPointer(rebasing: buffer[..<n])
            guard let nul = unsafe read.firstIndex(of: 0) else { return nil }
            return unsafe String(decoding: UnsafeBufferPointer(rebasing: read[..<nul]), as: UTF8.self)
        }
    }

    /// A NULL-terminated array of string pointers (argv): at most `maxCount` strings of at
    /// most `maxLength` bytes each and `maxTotal` bytes together. On a read failure, what
    /// was read so far and the error.
    func strings(at address: UInt64, maxCount: Int, maxLength: Int, maxTotal: Int)
        -> (strings: [String], truncated: Bool, error: Errno?) {
        var strings: [String] = []
        var total = 0
        var truncated = false
        var next = address
        while true {
            let batch = min(32, maxCount + 1 - strings.count)
            let pointers: [UInt64]
            switch read(next, count: batch * 8) {
            case .failure(let error): return (strings, truncated, error)
            case .success(let bytes):
                pointers = stride(from: 0, to: bytes.count - bytes.count % 8, by: 8).map { Self.word(bytes, at: $0) }
                if pointers.isEmpty { return (strings, truncated, .badAddress) }
            }
            for pointer in pointers {
                if pointer == 0 { return (strings, truncated, nil) }
                if strings.count == maxCount || total >= maxTotal { return (strings, true, nil) }
                switch string(at: pointer, limit: min(maxLength, maxTotal - total)) {
                case .failure(let error): return (strings, truncated, error)
                case .success(let (text, cut)):
                    strings.append(text)
                    total += text.utf8.count
                    truncated = truncated || cut
                }
            }
            next &+= UInt64(pointers.count * 8)
        }
    }

    /// A little-endian 64-bit word (x86_64 and aarch64 are little-endian).
    private static func word(_ bytes: [UInt8], at offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in (0..<8).reversed() { value = value << 8 | UInt64(bytes[offset + index]) }
        return value
    }

    private static func text(_ bytes: some Collection<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }
}

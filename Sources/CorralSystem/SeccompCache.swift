import CSeccomp
import CorralPlan
import Glibc
import SystemPackage

/// Compiled seccomp programs kept between runs. libseccomp needs ~2 ms to generate the
/// default policy's ~360 instructions — the largest single cost of a launch — and the same
/// policy compiles to the same bytes every time.
///
/// Safety: an entry is used only when the file is a regular file owned by this user and not
/// writable by group or others, in a folder with the same properties, and when the full key
/// stored in it (policy text, architecture, libseccomp version) equals the one asked for.
/// Ownership alone proves nothing against a sandbox running as the same user, so no sandbox
/// may write the folder: `Materializer` refuses any write path that covers it.
public struct SeccompCache: Sendable {
    public let directory: String

    /// `$XDG_CACHE_HOME/corral/seccomp`, else `$HOME/.cache/corral/seccomp`; nil without either.
    public static func standard(environment: [String: String]) -> SeccompCache? {
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            return SeccompCache(directory: xdg + "/corral/seccomp")
        }
        guard let home = environment["HOME"], home.hasPrefix("/"), home != "/" else { return nil }
        return SeccompCache(directory: home + "/.cache/corral/seccomp")
    }

    /// Corral's own cache root (the folder masked in sandboxes).
    public var root: String { String(directory.dropLast("/seccomp".count)) }

    public init(directory: String) {
        self.directory = directory
    }

    static func key(for plan: SeccompPlan, architecture: String) -> String {
        let version = unsafe seccomp_version()
        let libseccomp = unsafe version.map { "\($0.pointee.major).\($0.pointee.minor).\($0.pointee.micro)" } ?? "?"
        return "corral-seccomp 1\narch \(architecture)\nlibseccomp \(libseccomp)\n\(plan.filterKey)"
    }

    /// FNV-1a, 64 bits: a file name, not a security boundary (the full key is compared).
    static func fileName(for key: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex + ".bpf"
    }

    /// The cached programs, or a fresh compile (stored for next time when possible).
    public func programs(for plan: SeccompPlan, architecture: String) throws(CorralError) -> [SeccompProgram] {
        let key = Self.key(for: plan, architecture: architecture)
        let path = directory + "/" + Self.fileName(for: key)
        if let cached = load(path, key: key) { return cached }
        let programs = try SeccompCompiler.compile(plan)
        store(programs, key: key, at: path)
        return programs
    }

    // MARK: - File format: "CSB1", key length (u32), key, count (u32), then length (u32) + bytes per program

    private func trusted(_ fd: Int32, directory: Bool) -> Bool {
        var st = stat()
        guard unsafe fstat(fd, &st) == 0 else { return false }
        let type = st.st_mode & S_IFMT
        return st.st_uid == geteuid() && (st.st_mode & 0o022) == 0 && type == (directory ? S_IFDIR : S_IFREG)
    }

    func load(_ path: String, key: String) -> [SeccompProgram]? {
        let dir = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
        guard dir >= 0 else { return nil }
        defer { Glibc.close(dir) }
        guard trusted(dir, directory: true) else { return nil }
        let fd = openat(dir, String(path.split(separator: "/").last!), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        let file = FileDescriptor(rawValue: fd)
        defer { file.closeChecked() }
        var st = stat()
        guard trusted(fd, directory: false), unsafe fstat(fd, &st) == 0, st.st_size > 0, st.st_size < 1 << 20,
              let bytes = try? file.readFully(count: Int(st.st_size)) else { return nil }
        var reader = ByteReader(bytes)
        guard reader.take(4) == Array("CSB1".utf8), let keyLength = reader.u32(),
              reader.take(Int(keyLength)) == Array(key.utf8), let count = reader.u32(), count <= 8 else { return nil }
        var programs: [SeccompProgram] = []
        for _ in 0..<count {
            guard let length = reader.u32(), length % 8 == 0, let body = reader.take(Int(length)) else { return nil }
            programs.append(SeccompProgram(bytes: body))
        }
        return reader.atEnd ? programs : nil
    }

    func store(_ programs: [SeccompProgram], key: String, at path: String) {
        var parts = ""
        for part in directory.split(separator: "/") {
            parts += "/" + part
            _ = mkdir(parts, 0o700)
        }
        var bytes = Array("CSB1".utf8)
        func u32(_ value: Int) { withUnsafeBytes(of: UInt32(value).littleEndian) { bytes += $0 } }
        u32(key.utf8.count)
        bytes += Array(key.utf8)
        u32(programs.count)
        for program in programs {
            u32(program.bytes.count)
            bytes += program.bytes
        }
        // Written whole to a temporary name, then renamed: readers see all or nothing.
        let temporary = path + ".\(getpid()).tmp"
        let fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return }
        let file = FileDescriptor(rawValue: fd)
        let written = (try? file.writeFully(bytes)) != nil
        file.closeChecked()
        if !written || rename(temporary, path) != 0 { _ = unlink(temporary) }
    }
}

/// Bounds-checked reading of the cache format.
private struct ByteReader {
    let bytes: [UInt8]
    var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { offset == bytes.count }

    mutating func take(_ count: Int) -> [UInt8]? {
        guard count >= 0, bytes.count - offset >= count else { return nil }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    mutating func u32() -> UInt32? {
        guard let raw = take(4) else { return nil }
        return UInt32(raw[0]) | UInt32(raw[1]) << 8 | UInt32(raw[2]) << 16 | UInt32(raw[3]) << 24
    }
}

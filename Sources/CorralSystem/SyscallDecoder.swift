import CCorralLaunch
import CorralProfile
import Glibc
import Synchronization
import SystemPackage

/// Turns a seccomp notification of a watched syscall into a `WatchedCall`: names its
/// arguments and reads the ones that live in the caller's memory (paths, argv, socket
/// addresses), within fixed bounds.
enum SyscallDecoder {
    /// PATH_MAX less its NUL: the kernel refuses longer paths anyway.
    static let maxPath = 4095
    static let maxArguments = 256
    static let maxArgumentLength = 4096
    static let maxArgvBytes = 64 << 10
    /// struct sockaddr_storage.
    static let maxAddress = 128

    /// What each argument register of a watchable syscall holds (x86_64 and the generic
    /// table agree on these layouts; legacy calls such as `open` exist only on x86_64).
    enum Slot {
        case fd, dirfd, path, newPath, argv, openFlags, mode, atFlags, renameFlags
        case address      // a sockaddr whose length is the next argument
        case socketFamily, socketType, acceptFlags, target, signal, number
        case skip         // not recorded (envp: it may hold secrets; out-parameters)
    }

    /// One entry per name of `WatchableSyscalls.recorded` (a test keeps them equal).
    static let layouts: [String: [Slot]] = [
        "execve": [.path, .argv, .skip],
        "execveat": [.dirfd, .path, .argv, .skip, .atFlags],
        "socket": [.socketFamily, .socketType, .number],
        "connect": [.fd, .address],
        "bind": [.fd, .address],
        "listen": [.fd, .number],
        "accept": [.fd],
        "accept4": [.fd, .skip, .skip, .acceptFlags],
        "open": [.path, .openFlags, .mode],
        "openat": [.dirfd, .path, .openFlags, .mode],
        "creat": [.path, .mode],
        "truncate": [.path, .number],
        "unlink": [.path],
        "unlinkat": [.dirfd, .path, .atFlags],
        "rmdir": [.path],
        "mkdir": [.path, .mode],
        "mkdirat": [.dirfd, .path, .mode],
        "rename": [.path, .newPath],
        "renameat": [.dirfd, .path, .skip, .newPath],
        "renameat2": [.dirfd, .path, .skip, .newPath, .renameFlags],
        "link": [.path, .newPath],
        "linkat": [.dirfd, .path, .skip, .newPath, .atFlags],
        "symlink": [.path, .newPath],
        "symlinkat": [.path, .dirfd, .newPath],
        "chmod": [.path, .mode],
        "fchmodat": [.dirfd, .path, .mode],
        "fchmodat2": [.dirfd, .path, .mode, .atFlags],
        "kill": [.target, .signal],
        "ptrace": [.number, .target],
    ]

    /// Decodes `notification` of syscall `name`. Read failures are recorded in `unreadable`;
    /// the rest is still decoded.
    static func decode(_ notification: corral_notification, name: String, time: Double,
                       launchMemory: LaunchMemory? = nil) -> WatchedCall {
        var call = WatchedCall(syscall: name, pid: Int32(bitPattern: notification.pid), time: time)
        let memory = ProcessMemory(pid: call.pid, launchMemory: launchMemory)
        let args = [notification.args.0, notification.args.1, notification.args.2, notification.args.3,
                    notification.args.4, notification.args.5]
        var problems: [String] = []
        var truncated = false
        var openFlags: UInt64?
        for (index, slot) in (layouts[name] ?? []).enumerated() {
            let value = args[index]
            let int32 = Int32(truncatingIfNeeded: value)  // int arguments: the kernel reads the low 32 bits
            switch slot {
            case .fd: call.fd = int32
            case .dirfd: call.dirfd = int32
            case .path, .newPath:
                switch memory.string(at: value, limit: maxPath) {
                case .success(let (text, cut)):
                    if slot == .path { call.path = text } else { call.newPath = text }
                    truncated = truncated || cut
                case .failure(let error):
                    problems.append("\(slot == .path ? "path" : "new path"): \(errnoName(error))")
                }
            case .argv:
                let (strings, cut, error) = memory.strings(at: value, maxCount: maxArguments,
                                                           maxLength: maxArgumentLength, maxTotal: maxArgvBytes)
                if !strings.isEmpty || error == nil { call.argv = strings }
                truncated = truncated || cut
                if let error { problems.append("argv: \(errnoName(error))") }
            case .openFlags:
                openFlags = value
                call.flags = FlagNames.open(UInt32(truncatingIfNeeded: value))
            case .mode: call.mode = UInt32(truncatingIfNeeded: value) & 0o7777
            case .atFlags: call.flags = FlagNames.at(UInt32(truncatingIfNeeded: value))
            case .renameFlags: call.flags = FlagNames.rename(UInt32(truncatingIfNeeded: value))
            case .acceptFlags: call.flags = FlagNames.socketType(UInt32(truncatingIfNeeded: value), withType: false)
            case .address:
                let length = Int(min(UInt64(maxAddress), UInt64(UInt32(truncatingIfNeeded: args[index + 1]))))
                switch memory.read(value, count: length) {
                case .success(let bytes): call.address = SocketAddressDecoder.decode(bytes)
                case .failure(let error): problems.append("address: \(errnoName(error))")
                }
            case .socketFamily: call.family = FlagNames.family(int32)
            case .socketType: call.flags = FlagNames.socketType(UInt32(truncatingIfNeeded: value), withType: true)
            case .target: call.target = int32
            case .signal: call.signal = int32
            case .number: call.number = Int64(bitPattern: value)
            case .skip: break
            }
        }
        // The mode of open and openat means something only when a file is created.
        if let openFlags, UInt32(truncatingIfNeeded: openFlags) & (UInt32(O_CREAT) | FlagNames.tmpfile) == 0 {
            call.mode = nil
        }
        if truncated { call.truncated = true }
        if !problems.isEmpty { call.unreadable = problems.joined(separator: "; ") }
        return call
    }

    private static func errnoName(_ error: Errno) -> String {
        ErrnoNames.name(of: error.rawValue) ?? "errno \(error.rawValue)"
    }
}

// MARK: - Socket addresses

enum SocketAddressDecoder {
    /// Decodes a `struct sockaddr` of inet, inet6 or unix; other families by number.
    static func decode(_ bytes: [UInt8]) -> SocketAddress {
        guard bytes.count >= 2 else { return SocketAddress(family: "truncated") }
        let family = Int32(UInt16(bytes[0]) | UInt16(bytes[1]) << 8)  // sa_family_t, host order
        func port() -> UInt16? { bytes.count >= 4 ? UInt16(bytes[2]) << 8 | UInt16(bytes[3]) : nil }  // network order
        switch family {
        case AF_INET:
            var address = SocketAddress(family: "inet", port: port())
            if bytes.count >= 8 { address.address = bytes[4..<8].map(String.init).joined(separator: ".") }
            return address
        case AF_INET6:
            var address = SocketAddress(family: "inet6", port: port())
            if bytes.count >= 24 { address.address = inet6Text(Array(bytes[8..<24])) }
            if bytes.count >= 28 {
                let scope = UInt32(bytes[24]) | UInt32(bytes[25]) << 8 | UInt32(bytes[26]) << 16 | UInt32(bytes[27]) << 24
                if scope != 0 { address.scopeID = scope }
            }
            return address
        case AF_UNIX:
            var address = SocketAddress(family: "unix")
            let name = bytes.dropFirst(2)
            if name.first == 0 {
                address.abstractName = String(decoding: name.dropFirst(), as: UTF8.self)  // every byte counts
            } else if !name.isEmpty {
                address.path = String(decoding: name.prefix { $0 != 0 }, as: UTF8.self)
            }
            return address
        default:
            return SocketAddress(family: FlagNames.family(family))
        }
    }

    /// RFC 5952 text of an IPv6 address (as inet_ntop writes it).
    ///
    /// The corresponding C function is `inet_ntop`.
    static func inet6Text(_ bytes: [UInt8]) -> String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let ok = unsafe bytes.withUnsafeBytes { raw in
            unsafe inet_ntop(AF_INET6, raw.baseAddress, &text, socklen_t(text.count)) != nil
        }
        guard ok else { return "?" }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

// MARK: - Flag names

/// Names of flag bits, for this architecture (open's flags differ between x86_64 and aarch64).
enum FlagNames {
    #if arch(arm64)
    static let directory: UInt32 = 0o40000, noFollow: UInt32 = 0o100000, direct: UInt32 = 0o200000,
               largeFile: UInt32 = 0o400000
    #else
    static let directory: UInt32 = 0o200000, noFollow: UInt32 = 0o400000, direct: UInt32 = 0o40000,
               largeFile: UInt32 = 0o100000
    #endif
    /// O_TMPFILE includes O_DIRECTORY.
    static let tmpfile: UInt32 = 0o20000000 | directory

    private static let accessModes = ["O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"]
    /// Compound flags first, so O_SYNC is not shown as O_DSYNC plus a remainder.
    private static let openTable: [(UInt32, String)] = [
        (tmpfile, "O_TMPFILE"), (0o4010000, "O_SYNC"), (0o100, "O_CREAT"), (0o200, "O_EXCL"), (0o400, "O_NOCTTY"),
        (0o1000, "O_TRUNC"), (0o2000, "O_APPEND"), (0o4000, "O_NONBLOCK"), (0o10000, "O_DSYNC"),
        (0o20000, "O_ASYNC"), (direct, "O_DIRECT"), (largeFile, "O_LARGEFILE"), (directory, "O_DIRECTORY"),
        (noFollow, "O_NOFOLLOW"), (0o1000000, "O_NOATIME"), (0o2000000, "O_CLOEXEC"), (0o10000000, "O_PATH"),
    ]

    /// The names of open's flags. A program opens with a handful of combinations, thousands of
    /// times: their names are kept (a few hundred at most) rather than joined again per call.
    static func open(_ flags: UInt32) -> String {
        if let known = openNames.withLock({ $0[flags] }) { return known }
        let names = openUncached(flags)
        openNames.withLock { cache in if cache.count < 256 { cache[flags] = names } }
        return names
    }

    private static let openNames = Mutex<[UInt32: String]>([:])

    private static func openUncached(_ flags: UInt32) -> String {
        var rest = flags & ~3
        var names = [accessModes[Int(flags & 3)]]
        for (bits, name) in openTable where rest & bits == bits {
            names.append(name)
            rest &= ~bits
        }
        return joined(names, remainder: rest)
    }

    static func at(_ flags: UInt32) -> String {
        // 0x200 is AT_REMOVEDIR for unlinkat, the only watchable call that uses it.
        named(flags, [(0x100, "AT_SYMLINK_NOFOLLOW"), (0x200, "AT_REMOVEDIR"), (0x400, "AT_SYMLINK_FOLLOW"),
                      (0x800, "AT_NO_AUTOMOUNT"), (0x1000, "AT_EMPTY_PATH")])
    }

    static func rename(_ flags: UInt32) -> String {
        named(flags, [(1, "RENAME_NOREPLACE"), (2, "RENAME_EXCHANGE"), (4, "RENAME_WHITEOUT")])
    }

    /// socket()'s type with its flags, or accept4's flags alone.
    static func socketType(_ value: UInt32, withType: Bool) -> String {
        var names: [String] = []
        var rest = value
        if withType {
            let types: [UInt32: String] = [1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 4: "SOCK_RDM",
                                           5: "SOCK_SEQPACKET", 6: "SOCK_DCCP", 10: "SOCK_PACKET"]
            let type = value & 0xF
            names.append(types[type] ?? "type \(type)")
            rest &= ~0xF
        }
        for (bits, name) in [(UInt32(0o4000), "SOCK_NONBLOCK"), (UInt32(0o2000000), "SOCK_CLOEXEC")] where rest & bits != 0 {
            names.append(name)
            rest &= ~bits
        }
        return joined(names, remainder: rest)
    }

    static func family(_ value: Int32) -> String {
        switch value {
        case 1: "unix"
        case 2: "inet"
        case 10: "inet6"
        case 16: "netlink"
        case 17: "packet"
        default: "AF \(value)"
        }
    }

    private static func named(_ flags: UInt32, _ table: [(UInt32, String)]) -> String {
        var rest = flags
        var names: [String] = []
        for (bits, name) in table where rest & bits != 0 {
            names.append(name)
            rest &= ~bits
        }
        return joined(names, remainder: rest)
    }

    private static func joined(_ names: [String], remainder: UInt32) -> String {
        let all = names + (remainder != 0 ? ["0x" + String(remainder, radix: 16)] : [])
        return all.isEmpty ? "0" : all.joined(separator: "|")
    }
}

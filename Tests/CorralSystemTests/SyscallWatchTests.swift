import CCorralLaunch
import CorralPlan
import CorralProfile
import Foundation
import Glibc
import Synchronization
import SystemPackage
import Testing
@testable import CorralSystem

/// Syscall watching below the supervisor: the watch program, the decoder's tables, reading a
/// process's memory within bounds, and how records print. Real watched runs are integration
/// tests (`WatchTests`).
struct SyscallWatchTests {
    static func plan(_ configure: (inout SyscallSpec) -> Void) throws -> SeccompPlan {
        var profile = Profile(goal: Goal(id: "t"), source: ProfileSource(file: "t.yaml", directory: "/"))
        configure(&profile.syscalls)
        profile.run.command = ["/bin/true"]
        return try PlanCompiler.compile(profile, host: HostFacts(uid: 0, gid: 0, landlockABI: 7)).seccomp
    }

    // MARK: - The watch program

    @Test func theWatchProgramNamesItsSyscallsByNumber() throws {
        let plan = try Self.plan { $0.watch = ["openat", "execve", "connect"] }
        let watch = try #require(try SeccompCompiler.compileWatch(plan))
        #expect(watch.program.instructionCount > 3)
        let expected = Dictionary(uniqueKeysWithValues: ["openat", "execve", "connect"].map {
            (SeccompCompiler.resolve($0)!, $0)
        })
        #expect(watch.syscalls == expected)
        #expect(try SeccompCompiler.compileWatch(Self.plan { _ in }) == nil)
    }

    /// Without a listener, USER_NOTIF answers ENOSYS: the watch program stops exactly the
    /// watched calls. Under the base programs a denied call keeps the base's EPERM, because
    /// ERRNO outranks USER_NOTIF whatever the order of the programs.
    @Test func baseDenialsOutrankTheWatchInAChild() async throws {
        let plan = try Self.plan { $0.watch = ["openat", "ptrace"] }
        let programs = try SeccompCompiler.compile(plan) + [try #require(try SeccompCompiler.compileWatch(plan)).program]
        await #expect(processExitsWith: .success) { [programs = programs as [SeccompProgram]] in
            try SeccompProgram.installInCurrentProcess(programs)
            #expect(open("/", O_RDONLY | O_CLOEXEC) == -1 && errno == ENOSYS)
            #expect(corral_raw_syscall(101, 0, 0, 0, 0, 0, 0) == -Int(EPERM))  // ptrace(PTRACE_TRACEME)
            #expect(getpid() > 0)
        }
    }

    // MARK: - Decoder tables

    @Test func everyWatchableSyscallHasALayout() {
        #expect(Set(SyscallDecoder.layouts.keys) == Set(WatchableSyscalls.names))
        for (name, slots) in SyscallDecoder.layouts {
            #expect(slots.count <= 6, "\(name)")
            if let address = slots.firstIndex(where: { if case .address = $0 { true } else { false } }) {
                #expect(address + 1 < 6, "\(name): the address length is the next argument")
            }
        }
    }

    static let openFlagCases: [(Int32, String)] = [
        (O_RDONLY | O_CLOEXEC, "O_RDONLY|O_CLOEXEC"),
        (O_WRONLY | O_CREAT | O_TRUNC, "O_WRONLY|O_CREAT|O_TRUNC"),
        (O_RDWR | O_APPEND | O_NONBLOCK, "O_RDWR|O_APPEND|O_NONBLOCK"),
        (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, "O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC"),
        (O_WRONLY | O_SYNC, "O_WRONLY|O_SYNC"),
        (O_RDWR | O_DSYNC, "O_RDWR|O_DSYNC"),
        (O_RDWR | 0o20_200_000, "O_RDWR|O_TMPFILE"),
        (corral_O_PATH | O_CLOEXEC, "O_RDONLY|O_CLOEXEC|O_PATH"),
        (O_RDONLY | 0o40_000_000, "O_RDONLY|0x800000"),
    ]

    @Test(arguments: openFlagCases)
    func openFlagNames(_ flags: Int32, _ expected: String) {
        #expect(FlagNames.open(UInt32(bitPattern: flags)) == expected)
    }

    @Test func otherFlagNames() {
        #expect(FlagNames.at(0x200) == "AT_REMOVEDIR")
        #expect(FlagNames.at(0x1100) == "AT_SYMLINK_NOFOLLOW|AT_EMPTY_PATH")
        #expect(FlagNames.at(0) == "0")
        #expect(FlagNames.rename(1) == "RENAME_NOREPLACE")
        #expect(FlagNames.socketType(UInt32(SOCK_STREAM.rawValue) | UInt32(SOCK_CLOEXEC.rawValue), withType: true)
            == "SOCK_STREAM|SOCK_CLOEXEC")
        #expect(FlagNames.socketType(UInt32(SOCK_NONBLOCK.rawValue), withType: false) == "SOCK_NONBLOCK")
        #expect(FlagNames.family(AF_INET6) == "inet6")
        #expect(FlagNames.family(40) == "AF 40")
    }

    // MARK: - Socket addresses

    static func sockaddr<T>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value) { Array($0) }
    }

    @Test func inetAddress() {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(8080).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        #expect(SocketAddressDecoder.decode(Self.sockaddr(address))
            == SocketAddress(family: "inet", address: "127.0.0.1", port: 8080))
        #expect(SocketAddressDecoder.decode(Self.sockaddr(address)).description == "inet 127.0.0.1:8080")
    }

    @Test func inet6Address() {
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_port = in_port_t(443).bigEndian
        withUnsafeMutableBytes(of: &address.sin6_addr) { $0[15] = 1 }  // ::1
        address.sin6_scope_id = 3
        var expected = SocketAddress(family: "inet6", address: "::1", port: 443)
        expected.scopeID = 3
        let decoded = SocketAddressDecoder.decode(Self.sockaddr(address))
        #expect(decoded == expected)
        #expect(decoded.description == "inet6 [::1%3]:443")
    }

    @Test func unixAddresses() {
        let named = [UInt8(AF_UNIX), 0] + Array("/run/app.sock".utf8) + [0, 0, 0]
        var path = SocketAddress(family: "unix")
        path.path = "/run/app.sock"
        #expect(SocketAddressDecoder.decode(named) == path)

        let abstract = [UInt8(AF_UNIX), 0, 0] + Array("bus\u{1b}".utf8)
        let decoded = SocketAddressDecoder.decode(abstract)
        #expect(decoded.abstractName == "bus\u{1b}")
        #expect(decoded.description == "unix @\"bus\\x1b\"")

        #expect(SocketAddressDecoder.decode([UInt8(AF_UNIX), 0]).description == "unix (unnamed)")
        #expect(SocketAddressDecoder.decode([16, 0, 0, 0]).family == "netlink")
        #expect(SocketAddressDecoder.decode([2]).family == "truncated")
    }

    // MARK: - Reading memory

    /// Two pages, the second unreadable; the first filled with `fill`.
    final class GuardedPages {
        let base: UnsafeMutableRawPointer
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))

        init(fill: UInt8) {
            base = mmap(nil, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
            memset(base, Int32(fill), page)
            mprotect(base + page, page, PROT_NONE)
        }

        deinit { munmap(base, 2 * page) }

        func address(_ offset: Int) -> UInt64 { UInt64(UInt(bitPattern: base + offset)) }
    }

    static func address(of pointer: UnsafeRawPointer) -> UInt64 { UInt64(UInt(bitPattern: pointer)) }

    @Test func readsAStringUpToItsNulOrTheLimit() throws {
        let memory = ProcessMemory(pid: getpid())
        let text = strdup("/etc/hostname")!
        defer { free(text) }
        let whole = try memory.string(at: Self.address(of: text), limit: 4095).get()
        #expect(whole.text == "/etc/hostname" && !whole.truncated)
        let cut = try memory.string(at: Self.address(of: text), limit: 4).get()
        #expect(cut.text == "/etc" && cut.truncated)
    }

    /// A string running into an unreadable page: what came before it, marked truncated; a
    /// string starting there: the errno.
    @Test func stopsAtTheFirstUnreadablePage() throws {
        let pages = GuardedPages(fill: UInt8(ascii: "a"))
        let memory = ProcessMemory(pid: getpid())
        let tail = try memory.string(at: pages.address(pages.page - 300), limit: 4095).get()
        #expect(tail.text == String(repeating: "a", count: 300) && tail.truncated)
        #expect(throws: Errno.badAddress) { try memory.string(at: pages.address(pages.page), limit: 4095).get() }
        #expect(throws: Errno.badAddress) { try memory.string(at: 0, limit: 4095).get() }
    }

    @Test func readsAnArgumentVectorWithinBounds() {
        let words = ["corral-probe", "open", "/etc/hostname"].map { (word: String) in strdup(word)! }
        defer { words.forEach { free($0) } }
        let argv: [UInt64] = words.map { Self.address(of: $0) } + [0]
        let memory = ProcessMemory(pid: getpid())
        argv.withUnsafeBytes { raw in
            let at = Self.address(of: raw.baseAddress!)
            let all = memory.strings(at: at, maxCount: 256, maxLength: 4096, maxTotal: 65536)
            #expect(all.strings == ["corral-probe", "open", "/etc/hostname"] && !all.truncated && all.error == nil)
            let two = memory.strings(at: at, maxCount: 2, maxLength: 4096, maxTotal: 65536)
            #expect(two.strings == ["corral-probe", "open"] && two.truncated)
            let short = memory.strings(at: at, maxCount: 256, maxLength: 4, maxTotal: 65536)
            #expect(short.strings == ["corr", "open", "/etc"] && short.truncated)
        }
    }

    // MARK: - Serving a listener

    /// The watcher's loop on a real listener, in this process: a thread of its own installs
    /// the watch program (a filter belongs to the thread that installs it and to the threads
    /// it then creates, so the watcher is started from here), opens, and exits; its filter
    /// then has no user, and the loop must end by itself both ways it can wait (in RECV,
    /// Linux 6.11+, and in poll), having recorded every call with its decision, in order.
    @Test(.timeLimit(.minutes(1)), .enabled(if: SyscallWatcher.waitsInReceive, "RECV returns at hang-up only since Linux 6.11"))
    func theWatcherWaitingInReceiveRecordsEveryCallAndEndsWithItsLastUser() throws {
        try watcherRecordsEveryCallAndEndsWithItsLastUser(waitsInReceive: true)
    }

    @Test(.timeLimit(.minutes(1)))
    func theWatcherWaitingInPollRecordsEveryCallAndEndsWithItsLastUser() throws {
        try watcherRecordsEveryCallAndEndsWithItsLastUser(waitsInReceive: false)
    }

    private func watcherRecordsEveryCallAndEndsWithItsLastUser(waitsInReceive: Bool) throws {
        let plan = try Self.plan { $0.watch = ["openat"] }
        let watch = try #require(try SeccompCompiler.compileWatch(plan))
        let observed = Mutex<[String]>([])
        let watcher = SyscallWatcher(
            syscalls: watch.syscalls,
            decide: { $0.path == "/nonexistent/refused" ? .deny(errno: ENOTTY) : .continue },
            observe: { call in observed.withLock { $0.append(call.path ?? "?") } },
            limit: 1000, start: HostEnvironment.monotonicSeconds())
        watcher.waitsInReceiveOverride = waitsInReceive
        let listener = Mutex<Result<FileDescriptor, Errno>?>(nil)
        let installed = DispatchSemaphore(value: 0)
        let outcome = Mutex<(opened: Int, refusal: Int32)>((0, 0))
        let caller = HostEnvironment.startJoinableThread {
            let result = Result { () throws(Errno) in try watch.program.installWatchOnCurrentThread() }
            listener.withLock { $0 = result }
            installed.signal()
            guard case .success = result else { return }
            var opened = 0
            for _ in 0..<100 {  // each waits until the watcher serves
                let fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC)
                if fd >= 0 { opened += 1; close(fd) }
            }
            let refused = open("/nonexistent/refused", O_RDONLY | O_CLOEXEC)
            let refusal = refused < 0 ? errno : 0
            outcome.withLock { $0 = (opened, refusal) }
        }
        installed.wait()
        let served = try #require(listener.withLock { $0 })
        if case .success(let descriptor) = served { watcher.serve(descriptor, launchMemory: nil) }
        HostEnvironment.join(caller)
        let log = watcher.finish()  // returns only once the loop saw that the filter has no user
        _ = try served.get()
        #expect(outcome.withLock { $0.opened } == 100)
        #expect(outcome.withLock { $0.refusal } == ENOTTY)
        #expect(log.calls.map(\.path) == Array(repeating: "/etc/hostname", count: 100) + ["/nonexistent/refused"])
        #expect(log.calls.last?.decision == .deny(errno: ENOTTY))
        #expect(log.calls.dropLast().allSatisfy { $0.decision == .continue && $0.flags == "O_RDONLY|O_CLOEXEC" })
        #expect(observed.withLock { $0 } == log.calls.map { $0.path ?? "?" })
        #expect(log.calls.map(\.time) == log.calls.map(\.time).sorted())
    }

    // MARK: - Decoding a notification

    static func notification(_ args: [UInt64]) -> corral_notification {
        var n = corral_notification()
        n.pid = UInt32(getpid())
        let a = args + Array(repeating: 0, count: 6 - args.count)
        n.args = (a[0], a[1], a[2], a[3], a[4], a[5])
        return n
    }

    @Test func decodesOpenatWithModeOnlyWhenCreating() {
        let path = strdup("/srv/out/report.md")!
        defer { free(path) }
        let atCWD = UInt64(bitPattern: -100)
        let read = SyscallDecoder.decode(Self.notification([atCWD, Self.address(of: path), UInt64(O_RDONLY | O_CLOEXEC), 0o644]),
                                         name: "openat", time: 0.5)
        #expect(read.dirfd == -100 && read.path == "/srv/out/report.md" && read.flags == "O_RDONLY|O_CLOEXEC")
        #expect(read.mode == nil && read.truncated == nil && read.unreadable == nil && read.time == 0.5)
        #expect(read.description == "openat(AT_FDCWD, \"/srv/out/report.md\", O_RDONLY|O_CLOEXEC) pid \(getpid()) -> continue")
        let create = SyscallDecoder.decode(Self.notification([atCWD, Self.address(of: path), UInt64(O_WRONLY | O_CREAT), 0o644]),
                                           name: "openat", time: 0)
        #expect(create.mode == 0o644)
    }

    /// A pointer that cannot be read still gives a record: what is known, and why the rest is missing.
    @Test func anUnreadableArgumentStillGivesARecord() {
        let call = SyscallDecoder.decode(Self.notification([0, 1]), name: "unlinkat", time: 0)
        #expect(call.dirfd == 0 && call.path == nil && call.unreadable == "path: EFAULT")
    }

    @Test func decodesExecveWithoutItsEnvironment() {
        let words = ["/usr/bin/env", "SECRET=x"].map { (word: String) in strdup(word)! }
        defer { words.forEach { free($0) } }
        let argv: [UInt64] = [Self.address(of: words[0]), 0]
        let envp: [UInt64] = [Self.address(of: words[1]), 0]
        argv.withUnsafeBytes { rawArgv in
            envp.withUnsafeBytes { rawEnvp in
                let call = SyscallDecoder.decode(Self.notification([Self.address(of: words[0]), Self.address(of: rawArgv.baseAddress!),
                                                                    Self.address(of: rawEnvp.baseAddress!)]),
                                                 name: "execve", time: 0)
                #expect(call.path == "/usr/bin/env" && call.argv == ["/usr/bin/env"])
                #expect(!call.description.contains("SECRET"))
            }
        }
    }

    // MARK: - Records

    /// Strings from the sandbox never reach a terminal raw.
    @Test func descriptionsEscapeControlCharacters() {
        var call = WatchedCall(syscall: "execve", pid: 7, time: 0, decision: .deny(errno: EACCES))
        call.path = "/tmp/\u{1b}]0;owned\u{07}"
        call.argv = ["a\"b", "c\\d", "\u{9b}2J"]
        call.truncated = true
        #expect(call.description
            == #"execve("/tmp/\x1b]0;owned\x07", ["a\"b", "c\\d", "\x9b2J"]) pid 7 -> deny EACCES (truncated)"#)
    }

    @Test func decisionsEncodeAsKindAndErrnoName() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        #expect(String(decoding: try encoder.encode(WatchDecision.continue), as: UTF8.self) == #"{"kind":"continue"}"#)
        let deny = try encoder.encode(WatchDecision.deny(errno: ENOTTY))
        #expect(String(decoding: deny, as: UTF8.self) == #"{"errno":"ENOTTY","kind":"deny"}"#)
        #expect(try JSONDecoder().decode(WatchDecision.self, from: deny) == .deny(errno: ENOTTY))
    }
}

import CCorralLaunch
import CorralPlan
import CorralProfile
import Glibc
import Testing
@testable import CorralSystem

/// Lowering with libseccomp, and the compiled programs installed for real in a child process
/// (exit tests: the restriction is irreversible, so never in the test runner itself).
struct SeccompTests {
    /// A raw syscall: its result, or -errno.
    static func sys(_ number: Int, _ args: Int...) -> Int {
        let a = args + Array(repeating: 0, count: 6 - args.count)
        return corral_raw_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5])
    }

    static func defaultPrograms(_ configure: (inout SyscallSpec) -> Void = { _ in }) throws -> [SeccompProgram] {
        var spec = SyscallSpec()
        configure(&spec)
        var profile = Profile(goal: Goal(id: "t"), source: ProfileSource(file: "t.yaml", directory: "/"))
        profile.syscalls = spec
        profile.run.command = ["/bin/true"]
        let plan = try PlanCompiler.compile(profile, host: HostFacts(uid: 0, gid: 0, landlockABI: 7))
        return try SeccompCompiler.compile(plan.seccomp)
    }

    @Test func compilesTwoStackedPrograms() throws {
        let programs = try Self.defaultPrograms()
        #expect(programs.count == 2)
        for program in programs {
            #expect(program.bytes.count % 8 == 0)
            #expect(program.instructionCount > 10)
            #expect(program.instructionCount < 4096)  // BPF_MAXINSNS
        }
    }

    @Test func resolvesSyscallsNewerThanLibseccomp() {
        #expect(SeccompCompiler.resolve("read") == 0)
        #expect(SeccompCompiler.resolve("mseal") == 462)
        #expect(SeccompCompiler.resolve("socketcall") == nil)  // i386 only
    }

    @Test func deniedSyscallsFailWithEPERMInAChild() async throws {
        let programs = try Self.defaultPrograms()
        await #expect(processExitsWith: .success) { [programs = programs as [SeccompProgram]] in
            try SeccompProgram.installInCurrentProcess(programs)
            // unshare(CLONE_NEWUSER)
            #expect(Self.sys(272, 0x1000_0000) == -Int(EPERM))
            // ptrace(PTRACE_TRACEME)
            #expect(Self.sys(101, 0, 0, 0, 0) == -Int(EPERM))
            // clone3 gets ENOSYS so libc falls back to clone
            #expect(Self.sys(435, 0, 0) == -Int(ENOSYS))
            // personality: a query is harmless, ADDR_NO_RANDOMIZE is refused
            #expect(Self.sys(135, 0xFFFF_FFFF) >= 0)
            #expect(Self.sys(135, 0x0040000) == -Int(EPERM))
            // ioctl TIOCSTI, also with high bits set that the kernel ignores
            #expect(Self.sys(16, 0, 0x5412, 0) == -Int(EPERM))
            #expect(Self.sys(16, 0, 0x1_0000_5412, 0) == -Int(EPERM))
            // clone with CLONE_NEWNET
            #expect(Self.sys(56, 0x4000_0000 | Int(SIGCHLD), 0, 0, 0, 0) == -Int(EPERM))
            // AF_PACKET refused, AF_INET allowed
            #expect(socket(17, 3, 0) == -1 && errno == EPERM)
            let inet = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            #expect(inet >= 0)
            // ordinary calls still work
            #expect(getpid() > 0)
        }
    }

    @Test func onDenyErrnoAndExtraDenyAreHonoured() async throws {
        let programs = try Self.defaultPrograms { spec in
            spec.deny = ["getcwd"]
            spec.onDeny = .errno(EAGAIN)
        }
        await #expect(processExitsWith: .success) { [programs = programs as [SeccompProgram]] in
            try SeccompProgram.installInCurrentProcess(programs)
            #expect(getcwd(nil, 0) == nil && errno == EAGAIN)
        }
    }

    @Test func onDenyKillKillsWithSIGSYS() async throws {
        let programs = try Self.defaultPrograms { $0.onDeny = .kill }
        await #expect(processExitsWith: .signal(SIGSYS)) { [programs = programs as [SeccompProgram]] in
            try SeccompProgram.installInCurrentProcess(programs)
            _ = Self.sys(101, 0, 0, 0, 0)  // ptrace
        }
    }
}

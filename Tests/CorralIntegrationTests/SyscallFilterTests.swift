import Foundation
import Testing

/// The default seccomp profile, seen from inside: exact errnos, and SIGSYS for foreign ABIs.
@Suite(.tags(.integration)) struct SyscallFilterTests {
    static let deniedWithEPERM = ["ptrace", "mount", "unshare", "bpf", "keyctl", "io_uring_setup"]

    @Test("dangerous syscalls fail with EPERM", arguments: RunAs.allCases, deniedWithEPERM)
    func deniedSyscall(_ runAs: RunAs, _ name: String) async throws {
        try await withSandbox(runAs) { sandbox in
            expectProbe(try await sandbox.probe("syscall", name), printed: "syscall \(name) errno=EPERM")
        }
    }

    @Test("clone3 fails with ENOSYS, so libc falls back to clone", arguments: RunAs.allCases)
    func clone3IsENOSYS(_ runAs: RunAs) async throws {
        try await withSandbox(runAs) { sandbox in
            expectProbe(try await sandbox.probe("syscall", "clone3"), printed: "syscall clone3 errno=ENOSYS")
        }
    }

    /// The i386 entry point and the x32 ABI are killed, not answered: corral reports
    /// 128 + SIGSYS and the probe never gets to print.
    @Test("foreign syscall ABIs are killed with SIGSYS", arguments: RunAs.allCases, ["int80", "x32"])
    func foreignABIIsKilled(_ runAs: RunAs, _ probe: String) async throws {
        try await withSandbox(runAs) { sandbox in
            let result = try await sandbox.probe(probe)
            #expect(result.status == 128 + SIGSYS, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
        }
    }

    /// stdin is /dev/null and there is no controlling terminal inside, so without the
    /// filter the kernel would answer ENOTTY; EPERM is the filter's answer.
    @Test("TIOCSTI fails, also with the high bits of the request set",
          arguments: RunAs.allCases, ["tiocsti", "tiocsti-hi"])
    func terminalInjectionIsDenied(_ runAs: RunAs, _ probe: String) async throws {
        try await withSandbox(runAs) { sandbox in
            expectProbe(try await sandbox.probe(probe), printed: "\(probe) errno=EPERM")
        }
    }
}

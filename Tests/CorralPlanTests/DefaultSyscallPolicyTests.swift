import Testing
@testable import CorralPlan
import CorralProfile

@Suite("DefaultSyscallPolicy")
struct DefaultSyscallPolicyTests {
    /// Names that must never be allowed by the default base.
    static let mustDeny: [String] = [
        "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise",
        "mount", "umount2", "mount_setattr", "move_mount", "open_tree", "open_tree_attr",
        "fsopen", "fsconfig", "fsmount", "fspick", "pivot_root", "chroot", "unshare", "setns",
        "bpf", "keyctl", "add_key", "request_key", "perf_event_open", "userfaultfd",
        "io_uring_setup", "io_uring_enter", "io_uring_register", "open_by_handle_at", "name_to_handle_at",
        "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "personality",
        "acct", "swapon", "swapoff", "reboot", "syslog", "quotactl", "quotactl_fd", "lookup_dcookie",
        "iopl", "ioperm", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "stime",
        "sethostname", "setdomainname", "vhangup", "nfsservctl", "fanotify_init", "fanotify_mark",
        "create_module", "get_kernel_syms", "query_module", "uselib", "ustat", "sysfs", "_sysctl",
        "vm86", "vm86old", "mbind", "set_mempolicy", "migrate_pages", "move_pages", "get_mempolicy",
        "lsm_set_self_attr", "clone3", "memfd_secret", "modify_ldt", "statmount", "listmount",
    ]

    /// Names an ordinary program needs.
    static let mustAllow: [String] = [
        "read", "write", "openat", "execve", "clone", "mmap", "exit_group", "futex", "getrandom", "statx", "rseq",
    ]

    @Test func allowedAndDeniedAreDisjoint() {
        let overlap = DefaultSyscallPolicy.allowed.intersection(DefaultSyscallPolicy.denied.keys)
        #expect(overlap.isEmpty, "in both allowed and denied: \(overlap.sorted())")
    }

    @Test func everyAllowedNameIsKnown() {
        let unknown = DefaultSyscallPolicy.allowed.subtracting(KnownSyscalls.names)
        #expect(unknown.isEmpty, "allowed but not in KnownSyscalls: \(unknown.sorted())")
    }

    @Test func everyDeniedNameIsKnown() {
        let unknown = Set(DefaultSyscallPolicy.denied.keys).subtracting(KnownSyscalls.names)
        #expect(unknown.isEmpty, "denied but not in KnownSyscalls: \(unknown.sorted())")
    }

    @Test func everyKnownNameIsClassified() {
        let classified = DefaultSyscallPolicy.allowed.union(DefaultSyscallPolicy.denied.keys)
        let missing = KnownSyscalls.names.subtracting(classified)
        #expect(missing.isEmpty, "neither allowed nor denied (no reason for corral explain): \(missing.sorted())")
    }

    @Test func deniedReasonsAreNonEmpty() {
        for (name, reason) in DefaultSyscallPolicy.denied {
            #expect(!reason.isEmpty, "empty reason for \(name)")
        }
    }

    @Test(arguments: mustDeny)
    func mustDenyIsNotAllowed(_ name: String) {
        #expect(!DefaultSyscallPolicy.allowed.contains(name))
    }

    @Test func mustDenyNamesOfTheseArchitecturesHaveReasons() {
        for name in Self.mustDeny where KnownSyscalls.names.contains(name) {
            #expect(DefaultSyscallPolicy.denied[name] != nil, "no reason recorded for \(name)")
        }
    }

    @Test(arguments: mustAllow)
    func mustAllowIsAllowed(_ name: String) {
        #expect(DefaultSyscallPolicy.allowed.contains(name))
        #expect(DefaultSyscallPolicy.denied[name] == nil)
    }

    @Test func cloneIsAllowedAndClone3IsDeniedWithENOSYSNote() throws {
        #expect(DefaultSyscallPolicy.allowed.contains("clone"))
        #expect(!DefaultSyscallPolicy.allowed.contains("clone3"))
        let reason = try #require(DefaultSyscallPolicy.denied["clone3"])
        #expect(reason.contains("ENOSYS"))
    }
}

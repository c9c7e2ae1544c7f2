/// The `default` base of `syscalls.base`: what an ordinary unprivileged program needs, and nothing that
/// reaches kernel attack surface or host state. Everything not listed is denied.
///
/// The filter's default action is to fail with EPERM. The list is at least as strict as Docker's default
/// seccomp profile for an unprivileged container: everything Docker gates behind a capability is denied
/// here, and a few calls Docker allows are denied too (pidfd_getfd, process_madvise, process_mrelease,
/// memfd_secret, fanotify_mark, adjtimex, clock_adjtime, modify_ldt, name_to_handle_at, ptrace,
/// process_vm_readv/writev).
///
/// `allowed` and `denied` together classify every name in `KnownSyscalls.names`, so `corral explain` can
/// give a reason for any syscall a manifest may name. Some names get finer treatment elsewhere:
/// `clone` (namespace flags), `socket`/`socketpair` (address families) and `ioctl` (requests) are allowed
/// here but narrowed by argument rules; `personality` is denied here but argument rules allow the harmless
/// personas; `clone3` is denied with ENOSYS instead of EPERM.
public enum DefaultSyscallPolicy {
    /// Allowed unconditionally (names; a name missing on the running architecture is skipped when lowering).
    public static let allowed: Set<String> = [
        // Process lifetime, identity and signals.
        "clone", "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
        "restart_syscall", "set_tid_address", "set_robust_list", "get_robust_list", "rseq",
        "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
        "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups",
        "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups", "setfsuid", "setfsgid",
        "capget", "capset", "prctl", "arch_prctl", "set_thread_area", "get_thread_area",
        "kill", "tkill", "tgkill", "pidfd_open", "pidfd_send_signal",
        "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigsuspend", "rt_sigtimedwait",
        "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaltstack", "pause",
        "seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",

        // Memory.
        "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "msync", "mincore", "remap_file_pages",
        "mlock", "mlock2", "munlock", "mlockall", "munlockall", "membarrier", "mseal", "map_shadow_stack",
        "pkey_alloc", "pkey_free", "pkey_mprotect", "memfd_create",

        // Scheduling, limits, accounting.
        "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
        "sched_getscheduler", "sched_setscheduler", "sched_getattr", "sched_setattr",
        "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
        "getpriority", "setpriority", "ioprio_get", "ioprio_set", "getcpu",
        "getrlimit", "setrlimit", "prlimit64", "getrusage", "times", "sysinfo", "uname",

        // Time and timers.
        "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
        "alarm", "getitimer", "setitimer",
        "timer_create", "timer_delete", "timer_settime", "timer_gettime", "timer_getoverrun",
        "timerfd_create", "timerfd_settime", "timerfd_gettime",

        // Synchronisation and randomness.
        "futex", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue", "getrandom",

        // File descriptors and I/O.
        "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
        "close", "close_range", "dup", "dup2", "dup3", "fcntl", "ioctl", "flock", "lseek",
        "pipe", "pipe2", "sendfile", "splice", "tee", "vmsplice", "copy_file_range",
        "readahead", "fadvise64", "fallocate", "ftruncate", "truncate", "cachestat",
        "fsync", "fdatasync", "sync", "syncfs", "sync_file_range",
        "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",

        // Waiting and event notification.
        "poll", "ppoll", "select", "pselect6",
        "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
        "eventfd", "eventfd2", "signalfd", "signalfd4",
        "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",

        // Paths, metadata and directories.
        "open", "openat", "openat2", "creat",
        "stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs",
        "access", "faccessat", "faccessat2",
        "getdents", "getdents64", "getcwd", "chdir", "fchdir",
        "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2",
        "link", "linkat", "symlink", "symlinkat", "readlink", "readlinkat", "mknod", "mknodat",
        "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat", "umask",
        "utime", "utimes", "futimesat", "utimensat", "file_getattr", "file_setattr",
        "setxattr", "lsetxattr", "fsetxattr", "setxattrat", "getxattr", "lgetxattr", "fgetxattr", "getxattrat",
        "listxattr", "llistxattr", "flistxattr", "listxattrat",
        "removexattr", "lremovexattr", "fremovexattr", "removexattrat",

        // Sockets.
        "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "shutdown",
        "sendto", "sendmsg", "sendmmsg", "recvfrom", "recvmsg", "recvmmsg",
        "getsockopt", "setsockopt", "getsockname", "getpeername",

        // System V and POSIX IPC (isolated by the IPC namespace).
        "shmget", "shmat", "shmctl", "shmdt", "semget", "semop", "semtimedop", "semctl",
        "msgget", "msgsnd", "msgrcv", "msgctl",
        "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
    ]

    /// Denied even though a program might ask for them, with the reason shown by `corral explain`
    /// (e.g. "ptrace": "inspects and controls other processes"). Must be disjoint from `allowed`.
    public static let denied: [String: String] = [
        // Other processes.
        "ptrace": "inspects and controls other processes",
        "process_vm_readv": "reads the memory of other processes",
        "process_vm_writev": "writes the memory of other processes",
        "kcmp": "compares kernel resources of other processes, revealing kernel object identity",
        "pidfd_getfd": "duplicates file descriptors out of other processes of the same user",
        "process_madvise": "applies memory advice to another process's address space",
        "process_mrelease": "reaps the memory of another (dying) process; used only by OOM killers",

        // Process creation and execution domain.
        "clone3": "namespace flags are passed in memory that seccomp cannot inspect; denied with ENOSYS rather "
            + "than EPERM so glibc falls back to clone, whose flags the argument rules check",
        "personality": "can disable address-space randomisation and change the execution domain",
        "modify_ldt": "edits the x86 local descriptor table, old and bug-prone kernel surface",

        // Namespaces and filesystem topology.
        "unshare": "creates new namespaces, exposing kernel surface meant for privileged users",
        "setns": "joins other namespaces",
        "mount": "mounts filesystems",
        "umount2": "unmounts filesystems",
        "mount_setattr": "changes mount properties",
        "move_mount": "moves mounts",
        "open_tree": "clones or opens mount trees",
        "open_tree_attr": "clones mount trees with new mount properties",
        "fsopen": "creates filesystem contexts for the new mount API",
        "fsconfig": "configures filesystem contexts for the new mount API",
        "fsmount": "creates mounts with the new mount API",
        "fspick": "reconfigures existing filesystems with the new mount API",
        "pivot_root": "changes the root mount",
        "chroot": "changes the root directory, which can be used to escape path-based confinement",
        "statmount": "reveals host mount topology",
        "listmount": "reveals host mount topology",
        "open_by_handle_at": "opens files by handle, bypassing path lookup (the classic container breakout)",
        "name_to_handle_at": "produces file handles that identify files outside the sandbox's view",
        "quotactl": "manipulates filesystem quotas",
        "quotactl_fd": "manipulates filesystem quotas",

        // Kernel attack surface.
        "bpf": "loads BPF programs and maps, a large kernel attack surface",
        "perf_event_open": "performance monitoring, a large kernel attack surface that can leak host information",
        "userfaultfd": "handles page faults in user space, a common aid to kernel exploits",
        "io_uring_setup": "io_uring is a large kernel attack surface and bypasses seccomp for its operations",
        "io_uring_enter": "io_uring is a large kernel attack surface and bypasses seccomp for its operations",
        "io_uring_register": "io_uring is a large kernel attack surface and bypasses seccomp for its operations",
        "keyctl": "manipulates the kernel keyring, which is not namespaced",
        "add_key": "adds keys to the kernel keyring, which is not namespaced",
        "request_key": "requests keys from the kernel keyring, which is not namespaced",
        "memfd_secret": "creates memory hidden from the kernel direct map and from the supervisor; "
            + "unswappable, so it can exhaust memory",
        "fanotify_init": "monitors filesystem events system-wide",
        "fanotify_mark": "monitors filesystem events system-wide (useless without fanotify_init)",
        "lookup_dcookie": "kernel profiling interface",
        "uprobe": "called only from the kernel's uprobe trampoline, which seccomp does not filter",
        "uretprobe": "called only from the kernel's uretprobe trampoline, which seccomp does not filter",
        "lsm_get_self_attr": "reads security-module attributes; not needed by ordinary programs",
        "lsm_set_self_attr": "changes security-module attributes of the calling process",
        "lsm_list_modules": "reveals which security modules the host runs",

        // NUMA memory policy (Docker requires CAP_SYS_NICE).
        "mbind": "sets NUMA memory policy (needs CAP_SYS_NICE in Docker's default)",
        "set_mempolicy": "sets NUMA memory policy (needs CAP_SYS_NICE in Docker's default)",
        "set_mempolicy_home_node": "sets NUMA memory policy (needs CAP_SYS_NICE in Docker's default)",
        "get_mempolicy": "reads NUMA memory policy (needs CAP_SYS_NICE in Docker's default)",
        "migrate_pages": "moves other processes' pages between NUMA nodes",
        "move_pages": "moves pages between NUMA nodes, possibly of other processes",

        // Kernel modules and kernel replacement.
        "init_module": "loads kernel modules",
        "finit_module": "loads kernel modules",
        "delete_module": "unloads kernel modules",
        "kexec_load": "loads a new kernel",
        "kexec_file_load": "loads a new kernel",
        "reboot": "reboots the host",

        // Host state.
        "acct": "switches host process accounting",
        "swapon": "enables swap devices",
        "swapoff": "disables swap devices",
        "syslog": "reads or controls the kernel log",
        "iopl": "raises I/O privilege level to reach hardware ports",
        "ioperm": "grants access to hardware I/O ports",
        "settimeofday": "sets the host clock",
        "clock_settime": "sets the host clock",
        "clock_adjtime": "adjusts the host clock",
        "adjtimex": "adjusts the host clock",
        "sethostname": "sets the host name",
        "setdomainname": "sets the NIS domain name",
        "vhangup": "hangs up the controlling terminal",

        // Obsolete, removed or never implemented on x86_64/aarch64.
        "_sysctl": "obsolete sysctl interface, removed from Linux",
        "nfsservctl": "obsolete NFS server interface, removed from Linux",
        "create_module": "obsolete module interface, removed from Linux",
        "get_kernel_syms": "obsolete module interface, removed from Linux",
        "query_module": "obsolete module interface, removed from Linux",
        "uselib": "obsolete a.out shared library loader",
        "ustat": "obsolete filesystem statistics interface that reveals host devices",
        "sysfs": "obsolete interface that lists the filesystem types of the host kernel",
        "epoll_ctl_old": "never implemented on x86_64",
        "epoll_wait_old": "never implemented on x86_64",
        "afs_syscall": "never implemented",
        "getpmsg": "never implemented",
        "putpmsg": "never implemented",
        "security": "never implemented",
        "tuxcall": "never implemented",
        "vserver": "never implemented",
    ]
}

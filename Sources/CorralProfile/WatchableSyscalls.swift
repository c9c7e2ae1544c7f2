/// The syscalls `syscalls.watch` may name: each is routed through seccomp user notification
/// to the supervisor, which records it with its decoded arguments and lets it continue (or
/// denies it, when the run's decision hook says so).
///
/// Only calls whose arguments say something about what a program does (what it executes,
/// where it connects, which files it opens, creates, removes or renames, whom it signals) are
/// watchable. Everything else is refused, above all the calls Corral's launcher makes itself
/// *after* the watch filter is installed and before the supervisor is serving it: `sendmsg`
/// (the listener's handover), `close`, `write` (a failure record), `exit` and `exit_group`.
/// Watching one of those would leave the command waiting for an answer nobody can give yet.
///
/// The kernel layers stay the barrier: a watched call that the base filter, the manifest's
/// `deny`, Landlock or the mount layout refuse is still refused (seccomp's ERRNO and KILL
/// actions take precedence over USER_NOTIF, so the supervisor never even sees it).
public enum WatchableSyscalls {
    /// What the supervisor records for each watchable syscall (shown in documentation and
    /// errors; the decoder in `CorralSystem` follows the same list, a test keeps them equal).
    public static let recorded: [String: String] = [
        // Programs.
        "execve": "path, argv",
        "execveat": "dirfd, path, argv, flags",
        // Network.
        "socket": "family, type and flags, protocol",
        "connect": "fd, address (inet, inet6, unix)",
        "bind": "fd, address (inet, inet6, unix)",
        "listen": "fd, backlog",
        "accept": "fd",
        "accept4": "fd, flags",
        // Files.
        "open": "path, flags, mode",
        "openat": "dirfd, path, flags, mode",
        "creat": "path, mode",
        "truncate": "path, length",
        "unlink": "path",
        "unlinkat": "dirfd, path, flags",
        "rmdir": "path",
        "mkdir": "path, mode",
        "mkdirat": "dirfd, path, mode",
        "rename": "path, new path",
        "renameat": "dirfd, path, new path",
        "renameat2": "dirfd, path, new path, flags",
        "link": "path, new path",
        "linkat": "dirfd, path, new path, flags",
        "symlink": "target (as path), new path",
        "symlinkat": "target (as path), new path",
        "chmod": "path, mode",
        "fchmodat": "dirfd, path, mode",
        "fchmodat2": "dirfd, path, mode, flags",
        // Other processes.
        "kill": "target pid, signal",
        "ptrace": "request, target pid",
    ]

    /// The watchable names, sorted.
    public static let names: [String] = recorded.keys.sorted()
}

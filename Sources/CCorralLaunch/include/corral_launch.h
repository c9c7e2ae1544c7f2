// The clone → execve boundary of Corral.
//
// Everything between clone and execve happens here, in async-signal-safe C: the Swift
// process is multithreaded, so the child may not allocate, take locks, or call libseccomp
// or libcap. The parent (Swift, CorralSystem/Launcher+CBridge.swift) prepares one flat
// `corral_launch_plan` in memory shared with the child; `corral_launch` clones as soon as
// the namespaces are known, and the child builds them while the parent is still filling in
// the rest of the plan (paths, Landlock, seccomp). One "go" message then hands over the
// finished plan and the child works through it step by step.
//
// Process shape inside the sandbox:
//   pid 1  "init"    — the clone child: sets up namespaces, mounts, root, hostname, network,
//                      rlimits and drops privileges, then spawns the command and stays as
//                      a reaping init that forwards signals and reports the command's status.
//   pid 2  command   — session leader; closes fds, chdir, Landlock, seccomp, execve.
#ifndef CORRAL_LAUNCH_H
#define CORRAL_LAUNCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Stages

/// Where a child-side failure happened. Mirrored by `LaunchStage` in Swift
/// (CorralSystem/LaunchStage.swift); a test checks the two lists match.
enum corral_stage {
    CORRAL_STAGE_NONE = 0,
    CORRAL_STAGE_SYNC = 1,           ///< waiting for the parent's go-ahead
    CORRAL_STAGE_SIGNALS = 2,        ///< signal reset, PR_SET_PDEATHSIG
    CORRAL_STAGE_FDS = 3,            ///< closing inherited descriptors, stdio
    CORRAL_STAGE_ID_MAPS = 4,        ///< setgroups, uid_map, gid_map
    CORRAL_STAGE_MOUNT_PROPAGATION = 5,
    CORRAL_STAGE_MOUNT_SOURCES = 6,  ///< opening and cloning bind sources (index = mount op)
    CORRAL_STAGE_NEW_ROOT = 7,       ///< the tmpfs that becomes /
    CORRAL_STAGE_MOUNTS = 8,         ///< mount ops (index = mount op)
    CORRAL_STAGE_PIVOT_ROOT = 9,
    CORRAL_STAGE_HOSTNAME = 10,
    CORRAL_STAGE_NETWORK = 11,       ///< loopback up (index 0), egress listener i (index i + 1)
    CORRAL_STAGE_RLIMITS = 12,       ///< index = rlimit entry
    CORRAL_STAGE_LANDLOCK_RULES = 13,///< rules added in the child (index = rule)
    CORRAL_STAGE_CAPABILITIES = 14,
    CORRAL_STAGE_NO_NEW_PRIVS = 15,
    CORRAL_STAGE_SPAWN = 16,         ///< init cloning the command
    CORRAL_STAGE_SESSION = 17,
    CORRAL_STAGE_CHDIR = 18,
    CORRAL_STAGE_LANDLOCK = 19,
    CORRAL_STAGE_SECCOMP = 20,       ///< index = program
    CORRAL_STAGE_EXEC = 21,
    CORRAL_STAGE_NAMESPACES = 22,    ///< unshare of the mount, network, ipc, uts, cgroup namespaces
    CORRAL_STAGE_CGROUP = 23,        ///< joining the run's v1 cgroups (index = `cgroup_join_fds` entry)
    CORRAL_STAGE_COUNT = 24,
};

/// What the child writes to `report_fd`: the first record is a failure (a step failed) or,
/// with stage CORRAL_STAGE_NONE, "the command was executed" (init writes it once the
/// vfork-style spawn returned). End-of-file without a record: init died before that.
struct corral_child_failure {
    uint32_t stage;
    uint32_t index;
    int32_t err;
};

// MARK: - Mount operations

/// One step of building the new root. Targets are relative to the new root and are
/// resolved with RESOLVE_IN_ROOT, so a symlink inside a bound tree cannot point a mount
/// outside the sandbox's view.
enum corral_mount_kind {
    CORRAL_MOUNT_MKDIR = 1,        ///< mkdir target (mode); an existing folder is fine
    CORRAL_MOUNT_MKFILE = 2,       ///< create an empty file as a bind target
    CORRAL_MOUNT_BIND = 3,         ///< bind `source` (host path, cloned before the root exists)
    CORRAL_MOUNT_TMPFS = 4,        ///< fresh tmpfs (mode)
    CORRAL_MOUNT_PROC = 5,         ///< fresh procfs of the new pid namespace
    CORRAL_MOUNT_DEVPTS = 6,       ///< new devpts instance
    CORRAL_MOUNT_SYMLINK = 7,      ///< symlink target → `source` (link text)
    CORRAL_MOUNT_MASK = 8,         ///< hide target: empty mode-000 file or folder, read-only
    CORRAL_MOUNT_READONLY = 9,     ///< re-bind target over itself, read-only, recursively
    CORRAL_MOUNT_OVERLAY = 10,     ///< overlay: lower `source` (checked like a bind source),
                                   ///< `upper` and `work` (the run's staging layer), userxattr
};

enum corral_mount_flag {
    CORRAL_MOUNT_F_RDONLY = 1u << 0,
    CORRAL_MOUNT_F_NOSUID = 1u << 1,
    CORRAL_MOUNT_F_NODEV = 1u << 2,
    CORRAL_MOUNT_F_NOEXEC = 1u << 3,
    CORRAL_MOUNT_F_DIRECTORY = 1u << 4, ///< the target is (or masks) a folder
    CORRAL_MOUNT_F_OPTIONAL = 1u << 5,  ///< a missing target is skipped
    CORRAL_MOUNT_F_NOFOLLOW = 1u << 6,  ///< resolve the target without following any symlink
};

struct corral_mount_op {
    uint32_t kind;
    uint32_t flags;
    uint32_t mode;
    uint32_t size_mib;       ///< TMPFS: size in MiB; 0 = the kernel's default (half the RAM)
    const char *source;      ///< BIND: absolute canonical host path; SYMLINK: link text
    const char *target;      ///< relative to the new root, no leading '/'
    uint64_t source_dev;     ///< BIND: the device and inode the parent resolved; the child
    uint64_t source_ino;     ///< refuses a source that changed since (symlink races)
    const char *upper;       ///< OVERLAY: absolute host path of the upper layer
    const char *work;        ///< OVERLAY: absolute host path of overlayfs's work folder
};

// MARK: - Other child inputs

struct corral_rlimit {
    int32_t resource;
    uint32_t reserved;
    uint64_t soft, hard;
};

/// A Landlock rule added by the child, for objects that exist only inside the new root
/// (/proc, /dev, /tmp). Host paths get their rules in the parent.
struct corral_landlock_child_rule {
    const char *path;        ///< absolute path inside the new root
    uint64_t access;
};

struct corral_seccomp_program {
    const void *filter;      ///< struct sock_filter[]
    uint32_t length;         ///< number of instructions
    uint32_t flags;          ///< SECCOMP_FILTER_FLAG_*; with NEW_LISTENER (only the last
                             ///< program, `corral_SECCOMP_WATCH_FLAGS`) the command sends the
                             ///< listener to the supervisor over `report_fd` before execve
};

/// The one-byte messages on `report_fd` that carry a descriptor (SCM_RIGHTS): the seccomp
/// listener (from the command), and each listening socket init made for the egress proxy,
/// in the order of `listen_ports`.
enum { CORRAL_REPORT_LISTENER = 1, CORRAL_REPORT_SOCKET = 2 };

/// Everything the child needs, prepared by the parent in a MAP_SHARED arena. Fields marked
/// "early" are set before the clone; the child may read the others only after "go".
/// Read-only in the child, except `scratch_fds`, which the child uses to hold cloned mount
/// trees.
struct corral_launch_plan {
    // Command
    const char *const *exec_candidates;   ///< paths tried in order (PATH search done by the parent)
    uint32_t exec_candidate_count;
    uint32_t reserved0;
    char *const *argv;
    char *const *envp;
    const char *workdir;                  ///< inside the sandbox
    int stdio[3];                         ///< early; -1 = inherit

    // Namespaces and identity (early)
    uint64_t clone_flags;                 ///< CLONE_NEW*: user and pid by clone3, the rest by
                                          ///< the child's unshare (CLONE_PIDFD is added)
    const char *uid_map;                  ///< written by the child itself, e.g. "1000 1000 1\n"
    const char *gid_map;
    const char *hostname;                 ///< NULL = keep

    // Filesystem
    const char *root_base;                ///< where the new root tmpfs is mounted before pivot ("/tmp")
    const struct corral_mount_op *mounts;
    uint32_t mount_count;
    uint32_t reserved1;
    int *scratch_fds;                     ///< mount_count entries, written by the child

    // Resources
    const struct corral_rlimit *rlimits;
    uint32_t rlimit_count;

    // Landlock
    int landlock_ruleset_fd;              ///< unused in the shared plan: the ruleset, built in
                                          ///< the parent, arrives with "go" (SCM_RIGHTS)
    uint32_t landlock_expected;           ///< 1: "go" must carry the ruleset, or the child fails
    const struct corral_landlock_child_rule *landlock_child_rules;
    uint32_t landlock_child_rule_count;
    uint32_t landlock_restrict_flags;

    // Seccomp, installed as the command's last step before execve
    const struct corral_seccomp_program *seccomp_programs;
    uint32_t seccomp_program_count;

    // Capabilities: everything is dropped; the parent tells the highest capability number.
    uint32_t cap_last_cap;

    // Egress: TCP ports init listens on at 127.0.0.1 inside the new network namespace
    // (before dropping capabilities, so ports below 1024 work), handing each socket to the
    // supervisor, which serves them from outside. The command never holds them.
    const uint16_t *listen_ports;
    uint32_t listen_port_count;

    // Channels (early; all CLOEXEC in the parent)
    int sync_fd;      ///< SOCK_SEQPACKET end; "go" is one byte, with the Landlock ruleset
                      ///< attached when there is one; end-of-file = parent gone
    int report_fd;    ///< SOCK_SEQPACKET end; one struct corral_child_failure on failure,
                      ///< CORRAL_REPORT_LISTENER with the seccomp listener when watching,
                      ///< CORRAL_REPORT_SOCKET with each egress listener;
                      ///< end-of-file = the command was executed
    int status_fd;    ///< write end; init writes the command's 4-byte wait status

    // The run's cgroup (early). The child is born in it, or moves itself there as its first
    // step, instead of being migrated by the parent: writing a pid to `cgroup.procs` moves
    // a whole thread group, for which the kernel takes cgroup_threadgroup_rwsem for writing,
    // and that waits out an RCU grace period (3-13 ms here). clone3's CLONE_INTO_CGROUP
    // takes the lock only for reading, and a thread writing "0" to a v1 `tasks` file moves
    // itself alone, which needs no such lock (kernel/cgroup/cgroup.c,
    // cgroup_procs_write_start: "If we migrate a single thread ... we can skip the global
    // lock"). Both need Linux 5.7, as the rest of the launcher already does.
    int cgroup_fd;                        ///< the v2 group's folder for CLONE_INTO_CGROUP; -1 = none
    uint32_t cgroup_join_count;
    const int *cgroup_join_fds;           ///< v1 groups' `tasks` files, opened O_WRONLY by the
                                          ///< parent (whose credentials the kernel checks);
                                          ///< the child writes "0" to each, then they are closed

    // The shared arena itself (early), unmapped by init once the command is running.
    void *arena_base;
    uint64_t arena_size;

    // The release word (early; 0 until the parent sets it): init sleeps on it as a futex
    // before it reads "go". A futex wake, unlike the socket's, is not a "sync" wake-up, so
    // the scheduler starts init on the idle core instead of queueing it behind the parent
    // (which still has work to do after "go"). Set by `corral_release_child`, never cleared.
    uint32_t release_word;
    // Early. When the parent may run on more than one CPU: its CPU set, and 1 (2 when that
    // is every online CPU: init then restores "any CPU", as if never moved). The kernel
    // often starts (and wakes) init on the parent's own CPU, where it waits until the parent
    // blocks (~1 ms here) while another core idles; so the parent moves init off its CPU
    // at the clone and at the release, and init restores `cpus` as soon as it runs.
    uint32_t spread_cpus;
    uint64_t cpus[16];                    ///< a cpu_set_t (1024 CPUs), as sched_getaffinity fills it
};

/// Clones the sandbox's init into new user and pid namespaces. On success returns 0 and
/// sets `*pid` and `*pidfd` (CLOEXEC); the child writes its id maps, unshares the other
/// namespaces and then waits for "go" on the plan's sync socket. Only the early fields of
/// `plan` are read before "go". Returns an errno value when clone3 fails.
int corral_launch(struct corral_launch_plan *plan, pid_t *pid, int *pidfd);
/// Sends "go" on the sync socket, with `pass_fd` attached when it is not -1. MSG_NOSIGNAL:
/// a child that already failed makes this EPIPE, not SIGPIPE. Returns 0 or -errno.
int corral_send_go(int sync_fd, int pass_fd);
/// Wakes the child waiting on `plan->release_word` (after "go" is sent, or after the sync
/// socket was closed without it). Idempotent.
void corral_release_child(struct corral_launch_plan *plan);
/// Moves the child off the calling thread's CPU (see `spread_cpus`); call it before "go" is
/// sent, so that init's restore comes after it whichever way init leaves its wait.
void corral_spread_child(const struct corral_launch_plan *plan, pid_t child);

// MARK: - Parent-side helpers (provided in C because Swift's Glibc module lacks these)

/// The Landlock ABI version of the running kernel, or -errno.
int corral_landlock_abi(void);
/// landlock_create_ruleset with the given handled rights and scopes; returns fd or -errno.
int corral_landlock_create_ruleset(uint64_t handled_fs, uint64_t handled_net, uint64_t scoped);
/// landlock_add_rule(LANDLOCK_RULE_PATH_BENEATH); returns 0 or -errno.
int corral_landlock_add_path_rule(int ruleset_fd, int parent_fd, uint64_t allowed);
/// landlock_add_rule(LANDLOCK_RULE_NET_PORT) (ABI 4); returns 0 or -errno.
int corral_landlock_add_port_rule(int ruleset_fd, uint64_t port, uint64_t allowed);

/// openat2 with RESOLVE_* flags; returns fd or -errno.
int corral_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);
/// A non-blocking, close-on-exec signalfd for `signals` (which the caller must block).
int corral_signalfd(const int *signals, int count);
/// Blocks `signals` in the calling thread (threads created later inherit the mask).
int corral_block_signals(const int *signals, int count);
/// Reads one signal number from a signalfd; -1 when none is pending.
int corral_signalfd_read(int fd);
/// pipe2(fds, O_CLOEXEC) (behind _GNU_SOURCE); returns 0 or -errno.
int corral_pipe_cloexec(int fds[2]);
/// memfd_create(name, MFD_CLOEXEC); returns fd or -errno.
int corral_memfd_create(const char *name);
/// Waits for a pidfd's process: waitid(P_PIDFD). Returns 0 and the raw wait status
/// (as waitpid would) or -errno.
int corral_pidfd_wait(int pidfd, int *status, int nohang);
/// CPU time and peak resident set of a reaped process and everything it reaped.
struct corral_usage {
    uint64_t user_microseconds;
    uint64_t system_microseconds;
    uint64_t max_rss_kib;        ///< of the largest single process
};
/// `corral_pidfd_wait`, also filling `usage` (may be NULL) from waitid's rusage.
int corral_pidfd_wait_usage(int pidfd, int *status, int nohang, struct corral_usage *usage);
/// pidfd_send_signal; returns 0 or -errno.
int corral_pidfd_send_signal(int pidfd, int sig);
/// Sets no_new_privs and installs one BPF program in the calling thread; 0 or -errno.
int corral_seccomp_install(const void *filter, uint32_t length);
/// As `corral_seccomp_install`, with `flags` (`corral_SECCOMP_WATCH_FLAGS`): the listener's
/// descriptor (close-on-exec) or -errno. For tests that serve a watcher in-process.
int corral_seccomp_install_listener(const void *filter, uint32_t length, uint32_t flags);
/// syscall(2) for Swift, which cannot call the variadic original: the result or -errno.
long corral_raw_syscall(long number, long a0, long a1, long a2, long a3, long a4, long a5);
/// posix_spawn of one of Corral's helpers (the egress proxy): `sources[i]` becomes
/// `targets[i]` in the child (each target above every source), signals default and
/// unblocked, a new session. Sets `*pid` and `*pidfd` (-1 if pidfd_open failed, CLOEXEC).
/// Returns 0 or an errno value.
int corral_spawn_helper(const char *path, char *const argv[], char *const envp[], const int *sources,
                        const int *targets, int count, pid_t *pid, int *pidfd);
/// SHA-256 of `data` (FIPS 180-4).
void corral_sha256(const void *data, size_t count, uint8_t digest[32]);
/// Whether seccomp user notification with SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP is available.
int corral_seccomp_has_user_notif(void);
/// The SECCOMP_RET_ACTION_FULL "actions available" probe: 1 when `action` is supported.
int corral_seccomp_action_available(uint32_t action);

// MARK: - Syscall watching (parent side, notify.c)

/// One seccomp user notification, copied out of the kernel's (possibly larger) struct.
struct corral_notification {
    uint64_t id;
    uint32_t pid;            ///< in the supervisor's pid namespace
    int32_t nr;
    uint32_t arch;           ///< AUDIT_ARCH_*
    uint32_t reserved;
    uint64_t instruction_pointer;
    uint64_t args[6];
};

/// Waits until the listener has a notification (1) or no process uses its filter any more
/// (0: all of them were reaped); -errno on failure.
int corral_notify_wait(int listener);
/// Whether no process uses the listener's filter any more (POLLHUP, without waiting): 1, 0,
/// or -errno.
int corral_notify_hung_up(int listener);
/// SECCOMP_IOCTL_NOTIF_RECV into `out`, waiting for a notification; 0 or -errno (-ENOENT:
/// the caller went away, or, since Linux 6.11, no process uses the filter any more).
int corral_notify_receive(int listener, struct corral_notification *out);
/// SECCOMP_IOCTL_NOTIF_SEND: let the call continue (SECCOMP_USER_NOTIF_FLAG_CONTINUE), or fail
/// it with `error` (a positive errno). 0 or -errno (-ENOENT: the caller went away).
int corral_notify_respond(int listener, uint64_t id, int32_t error, int continue_call);
/// SECCOMP_IOCTL_NOTIF_ID_VALID: 0 while the notification is still pending (so its pid
/// still names the caller), -ENOENT otherwise.
int corral_notify_id_valid(int listener, uint64_t id);
/// SECCOMP_IOCTL_NOTIF_SET_FLAGS(SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP), Linux 6.6+; 0 or -errno.
int corral_notify_set_sync_wake_up(int listener);
/// Reads up to `count` bytes at `address` of process `pid` (process_vm_readv, one remote
/// iovec per page so it stops at the first unreadable page). Bytes read or -errno.
long corral_process_read(int pid, uint64_t address, void *buffer, size_t count);
/// One message from the report socket, and the descriptor attached to it (or -1, CLOEXEC).
/// Bytes received (0 = end-of-file) or -errno.
long corral_receive_report(int fd, void *buffer, size_t size, int *passed_fd);

// MARK: - Constants Swift cannot import (defined in constants.c with _GNU_SOURCE)

/// Flags of the watch program: SECCOMP_FILTER_FLAG_NEW_LISTENER |
/// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19).
extern const uint32_t corral_SECCOMP_WATCH_FLAGS;
/// AUDIT_ARCH of the architecture Corral was built for (the only one the watch program notifies).
extern const uint32_t corral_AUDIT_ARCH_NATIVE;

extern const uint64_t corral_CLONE_NEWUSER, corral_CLONE_NEWPID, corral_CLONE_NEWNS,
    corral_CLONE_NEWNET, corral_CLONE_NEWIPC, corral_CLONE_NEWUTS, corral_CLONE_NEWCGROUP;
extern const int corral_O_PATH;
extern const uint64_t corral_RESOLVE_NO_SYMLINKS, corral_RESOLVE_IN_ROOT, corral_RESOLVE_NO_MAGICLINKS,
    corral_RESOLVE_BENEATH;

/// Landlock rights (ABI 1…7), defined here because the installed linux/landlock.h is older
/// than the kernel.
extern const uint64_t corral_LL_FS_EXECUTE, corral_LL_FS_WRITE_FILE, corral_LL_FS_READ_FILE,
    corral_LL_FS_READ_DIR, corral_LL_FS_REMOVE_DIR, corral_LL_FS_REMOVE_FILE,
    corral_LL_FS_MAKE_CHAR, corral_LL_FS_MAKE_DIR, corral_LL_FS_MAKE_REG, corral_LL_FS_MAKE_SOCK,
    corral_LL_FS_MAKE_FIFO, corral_LL_FS_MAKE_BLOCK, corral_LL_FS_MAKE_SYM, corral_LL_FS_REFER,
    corral_LL_FS_TRUNCATE, corral_LL_FS_IOCTL_DEV, corral_LL_NET_BIND_TCP,
    corral_LL_NET_CONNECT_TCP, corral_LL_SCOPE_ABSTRACT_UNIX_SOCKET, corral_LL_SCOPE_SIGNAL;

#ifdef __cplusplus
}
#endif
#endif

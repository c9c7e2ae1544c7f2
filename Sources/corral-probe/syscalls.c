/*
 * corral-probe: `syscall NAME` and the other seccomp-oriented probes.
 *
 * Each probe makes one attempt with arguments chosen so that nothing changes
 * outside the probe process, even when run as real root without a sandbox:
 * paths that do not exist, invalid descriptors, or an immediate undo. The
 * point is the filter's verdict (typically EPERM or ENOSYS, or SIGSYS), not
 * the kernel's answer, so "errno=ENOENT" just means "the call got through".
 */
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/kcmp.h>
#include <linux/keyctl.h>
#include <linux/landlock.h>
#include <linux/perf_event.h>
#include <linux/userfaultfd.h>
#include <linux/io_uring.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/quota.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "probe.h"

/* A path that must not exist, for calls whose privilege check comes before
   the path lookup: unprivileged -> EPERM, privileged -> ENOENT, no effect. */
#define NOWHERE "/corral-probe-nonexistent"

/* <linux/mount.h> clashes with <sys/mount.h> on glibc 2.36; define the bits we need. */
#ifndef FSOPEN_CLOEXEC
#define FSOPEN_CLOEXEC 0x00000001
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif

/* --- result helpers -------------------------------------------------- */

static int rc(long r) { return r == -1 ? errno : 0; }

/* For calls returning a new descriptor: close it, report success. */
static int rc_fd(long fd)
{
    if (fd == -1)
        return errno;
    close((int)fd);
    return 0;
}

/* For fork-like calls: the child exits at once, the parent reaps it. */
static int rc_child(long pid)
{
    if (pid == -1)
        return errno;
    if (pid == 0)
        _exit(0);
    waitpid((pid_t)pid, NULL, 0);
    return 0;
}

/* --- the probes -------------------------------------------------------- */

/* PEEKDATA on a process we do not trace: ESRCH when the call gets through. */
static int sc_ptrace(void)
{
    long word;
    return rc(syscall(SYS_ptrace, PTRACE_PEEKDATA, 1, &word, &word));
}

static int sc_mount(void)
{
    int err = rc(mount("none", "/tmp", "tmpfs", 0, NULL));
    if (!err)
        umount2("/tmp", MNT_DETACH);   /* undo at once; lazy so it cannot fail */
    return err;
}

static int sc_umount2(void) { return rc(umount2(NOWHERE, 0)); }
static int sc_unshare(void) { return rc(unshare(CLONE_NEWUSER)); }
static int sc_unshare_ns(void) { return rc(unshare(CLONE_NEWNS)); }

/* Re-join our own network namespace. If the ns file cannot be opened, still
   make the call (with fd -1 -> EBADF) so the filter's verdict is reported. */
static int sc_setns(void)
{
    int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int err = rc(setns(fd, CLONE_NEWNET));
    if (fd >= 0)
        close(fd);
    return err;
}

static int sc_bpf(void)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    return rc_fd(syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr));
}

static int sc_keyctl(void)
{
    return rc(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
}

/* Lands in the process keyring, which dies with us. */
static int sc_add_key(void)
{
    return rc(syscall(SYS_add_key, "user", "corral-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING));
}

static int sc_io_uring_setup(void)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    return rc_fd(syscall(SYS_io_uring_setup, 1, &p));
}

static int sc_perf_event_open(void)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    return rc_fd(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
}

/* User-mode-only faults are allowed unprivileged (5.11+), so a plain run succeeds. */
static int sc_userfaultfd(void)
{
    return rc_fd(syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY));
}

static union {
    struct file_handle fh;
    char space[sizeof(struct file_handle) + MAX_HANDLE_SZ];
} handle;

static int root_handle(void)
{
    int mount_id;
    handle.fh.handle_bytes = MAX_HANDLE_SZ;
    int err = rc(name_to_handle_at(AT_FDCWD, "/", &handle.fh, &mount_id, 0));
    if (err)
        handle.fh.handle_bytes = 0;
    return err;
}

static int sc_name_to_handle_at(void) { return root_handle(); }

/* Opens "/" by its handle; if no handle could be made, the empty one is
   rejected by the kernel (EINVAL) after the privilege check. */
static int sc_open_by_handle_at(void)
{
    root_handle();
    int mount_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int err = rc_fd(open_by_handle_at(mount_fd, &handle.fh, O_RDONLY | O_CLOEXEC));
    if (mount_fd >= 0)
        close(mount_fd);
    return err;
}

/* Too many segments: EINVAL after the privilege check, nothing is (un)loaded. */
static int sc_kexec_load(void)
{
    return rc(syscall(SYS_kexec_load, 0, 16 + 1 /* KEXEC_SEGMENT_MAX + 1 */, NULL, 0));
}

static int sc_init_module(void) { return rc(syscall(SYS_init_module, NULL, 0, "")); }
static int sc_finit_module(void) { return rc(syscall(SYS_finit_module, -1, "", 0)); }

static int sc_delete_module(void)
{
    return rc(syscall(SYS_delete_module, "corral_probe_nonexistent", O_NONBLOCK));
}

static int sc_personality(void) { return rc(personality(ADDR_NO_RANDOMIZE)); }
static int sc_chroot(void) { return rc(chroot("/")); }

/* Not (".", "."): as root in a mount namespace with cwd on a mount point that
   would really pivot. Nonexistent paths: EPERM unprivileged, else ENOENT. */
static int sc_pivot_root(void) { return rc(syscall(SYS_pivot_root, NOWHERE, NOWHERE)); }

static int sc_swapon(void) { return rc(syscall(SYS_swapon, NOWHERE, 0)); }

/* Disables Ctrl-Alt-Del rebooting (systemd already does); EINVAL in a child pid ns. */
static int sc_reboot(void) { return rc(reboot(RB_DISABLE_CAD)); }

/* Raw clone without CLONE_VM and with a NULL stack behaves like fork(). */
static int sc_clone_newuser(void)
{
    return rc_child(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, NULL, NULL, 0));
}

static int sc_clone_newnet(void)
{
    return rc_child(syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, NULL, NULL, 0));
}

/* struct clone_args, version 0 (64 bytes); spelled out to avoid <linux/sched.h>. */
struct clone_args_v0 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static int sc_clone3(void)
{
    struct clone_args_v0 args;
    memset(&args, 0, sizeof args);
    args.exit_signal = SIGCHLD;
    return rc_child(syscall(SYS_clone3, &args, sizeof args));
}

static int sc_fork(void) { return rc_child(fork()); }
static int sc_setuid0(void) { return rc(setuid(0)); }
static int sc_acct(void) { return rc(acct(NOWHERE)); }

/* No device given: ENODEV once the call gets through. */
static int sc_quotactl(void)
{
    int fmt;
    return rc(quotactl(QCMD(Q_GETFMT, USRQUOTA), NULL, 0, (caddr_t)&fmt));
}

/* Removed from the kernel in 6.8: ENOSYS when not filtered. */
static int sc_lookup_dcookie(void) { return rc(syscall(SYS_lookup_dcookie, 0, NULL, 0)); }

/* Level 0 / turning ports off need no privilege: ok when not filtered. */
static int sc_iopl(void)
{
#ifdef SYS_iopl
    return rc(syscall(SYS_iopl, 0));
#else
    return ENOSYS;
#endif
}

static int sc_ioperm(void)
{
#ifdef SYS_ioperm
    return rc(syscall(SYS_ioperm, 0x80, 1, 0));
#else
    return ENOSYS;
#endif
}

/* Both NULL: CAP_SYS_TIME is still checked, but the clock is not touched.
   (glibc's wrapper would dereference the NULL timeval.) */
static int sc_settimeofday(void) { return rc(syscall(SYS_settimeofday, NULL, NULL)); }

static int sc_process_vm_readv(void)
{
    char src = 0, dst;
    struct iovec local = {&dst, 1}, remote = {&src, 1};
    return rc(process_vm_readv(1, &local, 1, &remote, 1, 0));
}

static int sc_kcmp(void)
{
    pid_t self = getpid();
    return rc(syscall(SYS_kcmp, self, self, KCMP_VM, 0, 0));
}

static int sc_fanotify_init(void) { return rc_fd(fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC, O_RDONLY)); }

static int sc_move_mount(void)
{
    return rc(syscall(SYS_move_mount, AT_FDCWD, NOWHERE, AT_FDCWD, NOWHERE, 0));
}

static int sc_fsopen(void) { return rc_fd(syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC)); }

/* Without OPEN_TREE_CLONE this is just an O_PATH open of "/". */
static int sc_open_tree(void)
{
    return rc_fd(syscall(SYS_open_tree, AT_FDCWD, "/", OPEN_TREE_CLOEXEC));
}

static const struct {
    const char *name;
    int (*probe)(void);
} syscalls[] = {
    {"ptrace", sc_ptrace},
    {"mount", sc_mount},
    {"umount2", sc_umount2},
    {"unshare", sc_unshare},
    {"unshare-ns", sc_unshare_ns},
    {"setns", sc_setns},
    {"bpf", sc_bpf},
    {"keyctl", sc_keyctl},
    {"add_key", sc_add_key},
    {"io_uring_setup", sc_io_uring_setup},
    {"perf_event_open", sc_perf_event_open},
    {"userfaultfd", sc_userfaultfd},
    {"open_by_handle_at", sc_open_by_handle_at},
    {"name_to_handle_at", sc_name_to_handle_at},
    {"kexec_load", sc_kexec_load},
    {"init_module", sc_init_module},
    {"finit_module", sc_finit_module},
    {"delete_module", sc_delete_module},
    {"personality", sc_personality},
    {"chroot", sc_chroot},
    {"pivot_root", sc_pivot_root},
    {"swapon", sc_swapon},
    {"reboot", sc_reboot},
    {"clone-newuser", sc_clone_newuser},
    {"clone-newnet", sc_clone_newnet},
    {"clone3", sc_clone3},
    {"fork", sc_fork},
    {"setuid0", sc_setuid0},
    {"acct", sc_acct},
    {"quotactl", sc_quotactl},
    {"lookup_dcookie", sc_lookup_dcookie},
    {"iopl", sc_iopl},
    {"ioperm", sc_ioperm},
    {"settimeofday", sc_settimeofday},
    {"process_vm_readv", sc_process_vm_readv},
    {"kcmp", sc_kcmp},
    {"fanotify_init", sc_fanotify_init},
    {"move_mount", sc_move_mount},
    {"fsopen", sc_fsopen},
    {"open_tree", sc_open_tree},
};

void list_syscall_names(FILE *out)
{
    for (size_t i = 0; i < sizeof syscalls / sizeof syscalls[0]; i++)
        fprintf(out, "%s%s", i == 0 ? "" : i % 8 ? " " : "\n    ", syscalls[i].name);
}

void cmd_syscall(int argc, char **argv)
{
    (void)argc;
    for (size_t i = 0; i < sizeof syscalls / sizeof syscalls[0]; i++) {
        if (strcmp(syscalls[i].name, argv[0]) == 0) {
            report(syscalls[i].probe(), "syscall %s", argv[0]);
            return;
        }
    }
    usage();
}

/* --- ABI-confusion probes ------------------------------------------------ */

/* The i386 entry point from a 64-bit process. A filter that checks the audit
   arch kills us with SIGSYS, so normally nothing is printed here. */
void cmd_int80(int argc, char **argv)
{
    (void)argc, (void)argv;
#if defined(__x86_64__)
    long ax = 20;   /* __NR_getpid in the i386 table */
    __asm__ volatile("int $0x80" : "+a"(ax) : : "memory", "cc", "r8", "r9", "r10", "r11");
    printf("int80 returned %d\n", (int)ax);
#else
    report(ENOSYS, "int80");
#endif
}

/* x32 getpid: the x32 bit (0x40000000) on the x86_64 number. ENOSYS when the
   kernel lacks x32; a filter should kill or reject before that. */
void cmd_x32(int argc, char **argv)
{
    (void)argc, (void)argv;
    long r = syscall(0x40000000L | 39);
    if (r == -1)
        printf("x32 returned -1 errno=%s\n", errname(errno));
    else
        printf("x32 returned %ld\n", r);
}

/* --- terminal ioctls ----------------------------------------------------- */

static int tty_fd(void)
{
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    return fd >= 0 ? fd : 0;
}

void cmd_tiocsti(int argc, char **argv)
{
    (void)argc, (void)argv;
    report(rc(ioctl(tty_fd(), TIOCSTI, "x")), "tiocsti");
}

/* The kernel truncates the ioctl request to 32 bits; a seccomp filter that
   compares all 64 bits would miss TIOCSTI with a high bit set. */
void cmd_tiocsti_hi(int argc, char **argv)
{
    (void)argc, (void)argv;
    report(rc(syscall(SYS_ioctl, tty_fd(), (1UL << 32) | TIOCSTI, "x")), "tiocsti-hi");
}

/* Subcode 0 is no valid TIOCLINUX request: harmless EINVAL on a virtual
   console, ENOTTY on other terminals, once the call gets through. */
void cmd_tioclinux(int argc, char **argv)
{
    (void)argc, (void)argv;
    char subcode = 0;
    report(rc(ioctl(tty_fd(), TIOCLINUX, &subcode)), "tioclinux");
}

void cmd_landlock_abi(int argc, char **argv)
{
    (void)argc, (void)argv;
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 0)
        report(errno, "landlock-abi");
    else
        printf("landlock-abi %ld\n", abi);
}

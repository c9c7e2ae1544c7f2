// Child side: everything from clone to execve. Async-signal-safe only: no malloc, no
// stdio, no libseccomp or libcap. Each step is `if (step_x(...) < 0) report_and_exit()`.
//
// init (pid 1 of the new pid namespace), while the parent still prepares the plan:
//   1. signals reset, PR_SET_PDEATHSIG      4. uid/gid maps (written by itself)
//   2. into the run's v1 cgroups            5. unshare mount, network, ipc, uts, cgroup
//      (born in its v2 group)                  namespaces; loopback up; memfds noexec
//   3. close inherited fds                  6. wait for the release word, then "go" (and
//                                              the Landlock ruleset)
// then, with the whole plan:
//   7. egress listeners handed over, stdio 11. capabilities dropped, no_new_privs, non-dumpable
//   8. mounts, pivot_root                  12. spawn the command (vfork-style clone), unmap
//   9. hostname, rlimits                       the shared plan
//  10. Landlock rules for /proc, /dev, /tmp 13. reap, forward signals, report the status
// command (pid 2): session, fds, chdir, Landlock, seccomp, execve.
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SECBIT_NOROOT
#define SECBIT_NOROOT (1 << 0)
#define SECBIT_NOROOT_LOCKED (1 << 1)
#define SECBIT_NO_SETUID_FIXUP (1 << 2)
#define SECBIT_NO_SETUID_FIXUP_LOCKED (1 << 3)
#define SECBIT_KEEP_CAPS_LOCKED (1 << 5)
#define SECBIT_NO_CAP_AMBIENT_RAISE (1 << 6)
#define SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED (1 << 7)
#endif

int corral_fail(struct corral_child_failure *failure, uint32_t stage, uint32_t index) {
    failure->stage = stage;
    failure->index = index;
    failure->err = errno ? errno : EINVAL;
    return -1;
}

__attribute__((noreturn)) static void report_and_exit(const struct corral_launch_plan *plan,
                                                      const struct corral_child_failure *failure) {
    ssize_t ignored = write(plan->report_fd, failure, sizeof *failure);
    (void)ignored;
    _exit(failure->stage == CORRAL_STAGE_EXEC && failure->err == ENOENT ? 127 : 126);
}

// MARK: - Small steps

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int saved = errno;
    close(fd);
    errno = saved;
    if (n == (ssize_t)len) return 0;
    if (n >= 0) errno = EIO;
    return -1;
}

static int step_reset_signals(void) {
    // A session of its own first, while the signals the supervisor blocks are still blocked:
    // a Ctrl-C on the caller's terminal then reaches only the supervisor, which forwards it
    // once, instead of killing an init that has no handlers yet.
    if (setsid() < 0) return -1;
    sigset_t none, blocked;
    sigemptyset(&none);
    if (sigprocmask(SIG_BLOCK, NULL, &blocked) < 0) return -1;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        // Only a blocked signal can be pending here (a clone starts with none, and an
        // unblocked one is delivered at once): ignoring it first discards that instance.
        if (sigismember(&blocked, sig) == 1) signal(sig, SIG_IGN);
        signal(sig, SIG_DFL);
    }
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0) return -1;
    return prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
}

/// Puts back the CPU set inherited from the parent after the parent moved this process off
/// its own CPU (`spread_cpus`). A parent that may use every online CPU gets "any CPU" back
/// (so the command follows later cpuset changes, as it would have without the move); when
/// the set cannot be restored (the cpuset shrank meanwhile), any CPU the cpuset allows.
static void restore_cpus(const struct corral_launch_plan *shared) {
    if (!shared->spread_cpus) return;
    cpu_set_t any;
    memset(&any, 0xFF, sizeof any);
    const cpu_set_t *inherited = (const cpu_set_t *)shared->cpus;
    if (shared->spread_cpus == 2 || sched_setaffinity(0, sizeof shared->cpus, inherited) < 0)
        sched_setaffinity(0, sizeof any, &any);
}

/// Sleeps until the parent releases the child (`release_word`; see corral_launch.h), then
/// returns for `step_wait_for_parent` to read "go". Every 100 ms it looks whether the
/// parent's end of the sync socket is gone: a parent that died before PR_SET_PDEATHSIG was
/// set would otherwise leave it asleep for good.
static void step_wait_for_release(const struct corral_launch_plan *shared, int sync_fd) {
    uint32_t *word = (uint32_t *)&shared->release_word;
    while (__atomic_load_n(word, __ATOMIC_ACQUIRE) == 0) {
        struct timespec timeout = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
        if (syscall(SYS_futex, word, FUTEX_WAIT, 0, &timeout, NULL, 0) == 0) continue;
        if (errno == EAGAIN || errno == EINTR) continue;
        if (errno != ETIMEDOUT) break;  // no futex here (a filter around Corral?): recvmsg blocks instead
        char byte;
        // End-of-file (0) or a message: the recvmsg that follows settles it.
        if (recv(sync_fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) >= 0) break;
    }
    // The parent moved this process off its CPU before sending go (`spread_cpus`).
    restore_cpus(shared);
}

/// Waits for "go"; a descriptor attached to it (the Landlock ruleset) lands in `*passed`.
/// Anything but zero or one descriptor is refused (all of them closed): the buffer has
/// room for several, so two cannot slip through without MSG_CTRUNC and be ignored.
static int step_wait_for_parent(int sync_fd, int *passed) {
    char go;
    union {
        struct cmsghdr header;
        char space[CMSG_SPACE(sizeof(int) * 8)];
    } control;
    struct iovec iov = {.iov_base = &go, .iov_len = 1};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.space;
    msg.msg_controllen = sizeof control.space;
    ssize_t n;
    do { n = recvmsg(sync_fd, &msg, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    if (n == 0) errno = EPIPE;  // the parent died before saying go
    if (n != 1) return -1;
    int received = 0;
    for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
            if (received++ == 0) *passed = fd;
            else close(fd);
        }
    }
    if (received > 1 || (msg.msg_flags & MSG_CTRUNC)) {
        if (*passed >= 0) close(*passed);
        *passed = -1;
        errno = EBADMSG;
        return -1;
    }
    return 0;
}

/// Closes every inherited descriptor except 0–2 and the ones in `keep` (unsorted, -1 ignored).
static void close_all_except(const int *keep, int count) {
    unsigned int low = 3;
    for (;;) {
        unsigned int next = ~0U;
        for (int i = 0; i < count; i++)
            if (keep[i] >= (int)low && (unsigned int)keep[i] < next) next = (unsigned int)keep[i];
        if (next == ~0U) {
            close_range(low, ~0U, 0);
            return;
        }
        if (next > low) close_range(low, next - 1, 0);
        low = next + 1;
    }
}

/// Moves this process (its only thread) into each of the run's v1 groups by writing "0" to
/// the group's `tasks` file: no global lock, unlike a migration by the parent (see
/// `cgroup_fd` in corral_launch.h). Must come before anything that forks or uses memory the
/// run should be charged for.
static int step_join_cgroups(const struct corral_launch_plan *plan, uint32_t *index) {
    for (uint32_t i = 0; i < plan->cgroup_join_count; i++) {
        *index = i;
        ssize_t n;
        do { n = write(plan->cgroup_join_fds[i], "0", 1); } while (n < 0 && errno == EINTR);
        if (n != 1) {
            if (n >= 0) errno = EIO;
            return -1;
        }
    }
    return 0;
}

static int step_id_maps(const struct corral_launch_plan *plan) {
    if (!(plan->clone_flags & CLONE_NEWUSER)) return 0;
    // The namespace's creator may map its own ids, and for gid only after setgroups is
    // denied (user_namespaces(7), "Writing deny to /proc/pid/setgroups").
    if (write_file("/proc/self/setgroups", "deny") < 0) return -1;
    if (write_file("/proc/self/uid_map", plan->uid_map) < 0) return -1;
    return write_file("/proc/self/gid_map", plan->gid_map);
}

static int step_loopback_up(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP;
        rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/// Drops every capability for good: locked securebits first (needs CAP_SETPCAP), then the
/// bounding set and ambient set, then the permitted/effective/inheritable sets.
static int step_drop_capabilities(uint32_t last_cap) {
    int bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
               SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
               SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) < 0) return -1;
    return corral_clear_capabilities(last_cap);
}

int corral_clear_capabilities(uint32_t last_cap) {
    for (uint32_t cap = 0; cap <= last_cap; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) return -1;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) return -1;
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    return (int)syscall(SYS_capset, &header, data);
}

/// Listens on 127.0.0.1:PORT for each egress port, inside the run's network namespace, and
/// hands each socket to the supervisor; init keeps no copy.
static int step_egress_listeners(const struct corral_launch_plan *plan, uint32_t *index) {
    for (uint32_t i = 0; i < plan->listen_port_count; i++) {
        *index = i + 1;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -1;
        int one = 1;
        struct sockaddr_in address;
        memset(&address, 0, sizeof address);
        address.sin_family = AF_INET;
        address.sin_port = htons(plan->listen_ports[i]);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int rc = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (rc == 0) rc = bind(fd, (struct sockaddr *)&address, sizeof address);
        if (rc == 0) rc = listen(fd, 4096);
        if (rc == 0) {
            rc = corral_send_byte(plan->report_fd, CORRAL_REPORT_SOCKET, fd);
            if (rc < 0) { errno = -rc; rc = -1; }
        }
        int saved = errno;
        close(fd);
        errno = saved;
        if (rc < 0) return -1;
    }
    return 0;
}

static int step_landlock_child_rules(const struct corral_launch_plan *plan, uint32_t *index) {
    for (uint32_t i = 0; i < plan->landlock_child_rule_count; i++) {
        *index = i;
        const struct corral_landlock_child_rule *rule = &plan->landlock_child_rules[i];
        int fd = open(rule->path, O_PATH | O_CLOEXEC);
        if (fd < 0) return -1;
        int rc = corral_landlock_add_rule_raw(plan->landlock_ruleset_fd, fd, rule->access);
        int saved = errno;
        close(fd);
        errno = saved;
        if (rc < 0) return -1;
    }
    return 0;
}

// MARK: - The command (pid 2)

/// Hands the watch program's listener to the supervisor (one CORRAL_REPORT_LISTENER byte
/// with the descriptor attached) and closes this copy: the command must never hold the
/// listener of its own filter, or it could answer its own notifications. From the filter's
/// installation to execve the command makes only sendmsg, close and, on failure, write and
/// exit_group, none of which may be watched (WatchableSyscalls); its execve may be, and the
/// supervisor serves the listener as soon as it arrives.
static int send_listener(int report_fd, int listener) {
    int rc = corral_send_byte(report_fd, CORRAL_REPORT_LISTENER, listener);
    close(listener);
    if (rc < 0) errno = -rc;
    return rc < 0 ? -1 : 0;
}

static volatile pid_t command_pid = -1;
/// Stack for the vfork-style clone of the command. The command runs on it only until
/// execve, while init is suspended (CLONE_VFORK), as posix_spawn does.
static char command_stack[64 * 1024] __attribute__((aligned(16)));

static int command_main(void *arg) {
    const struct corral_launch_plan *plan = arg;
    struct corral_child_failure failure = {0};
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    // A session of its own: no controlling terminal, so TIOCSTI and job-control tricks
    // cannot reach the user's terminal (CVE-2017-5226).
    if (setsid() < 0) { corral_fail(&failure, CORRAL_STAGE_SESSION, 0); report_and_exit(plan, &failure); }
    // Everything but 0–2 is closed by the kernel at execve; the report pipe and the
    // Landlock ruleset stay usable until then.
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
        corral_fail(&failure, CORRAL_STAGE_FDS, 1);
        report_and_exit(plan, &failure);
    }
    if (chdir(plan->workdir) < 0) { corral_fail(&failure, CORRAL_STAGE_CHDIR, 0); report_and_exit(plan, &failure); }
    if (plan->landlock_ruleset_fd >= 0 &&
        corral_landlock_restrict_self_raw(plan->landlock_ruleset_fd, plan->landlock_restrict_flags) < 0) {
        corral_fail(&failure, CORRAL_STAGE_LANDLOCK, 0);
        report_and_exit(plan, &failure);
    }
    // Seccomp last: after it, only what the program allows may run, and execve itself.
    for (uint32_t i = 0; i < plan->seccomp_program_count; i++) {
        const struct corral_seccomp_program *p = &plan->seccomp_programs[i];
        struct sock_fprog prog = {.len = (unsigned short)p->length, .filter = (struct sock_filter *)p->filter};
        long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->flags, &prog);
        if (rc < 0 || ((p->flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) && send_listener(plan->report_fd, (int)rc) < 0)) {
            corral_fail(&failure, CORRAL_STAGE_SECCOMP, i);
            report_and_exit(plan, &failure);
        }
    }
    // PATH search was done by the parent against the sandbox's view; try each candidate
    // and keep the most telling error (EACCES over ENOENT), as execvp does.
    int err = ENOENT;
    for (uint32_t i = 0; i < plan->exec_candidate_count; i++) {
        execve(plan->exec_candidates[i], plan->argv, plan->envp);
        if (errno != ENOENT && errno != ENOTDIR) err = errno;
        if (errno != ENOENT && errno != ENOTDIR && errno != EACCES) break;
    }
    errno = err;
    corral_fail(&failure, CORRAL_STAGE_EXEC, 0);
    report_and_exit(plan, &failure);
}

// MARK: - init (pid 1)

static void forward_signal(int sig) {
    int saved = errno;
    if (command_pid > 0) kill(command_pid, sig);
    errno = saved;
}

__attribute__((noreturn)) static void init_reap(int status_fd, pid_t command) {
    static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward_signal;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaction(forwarded[i], &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    // Reap orphans until the command itself ends; its status goes to the supervisor.
    for (;;) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, __WALL);
        if (pid < 0) {
            if (errno == EINTR) continue;
            _exit(125);  // ECHILD: the command is gone without a status; cannot happen
        }
        if (pid != command) continue;
        ssize_t ignored = write(status_fd, &status, sizeof status);
        (void)ignored;
        // Leaving pid 1 makes the kernel kill every process left in the namespace.
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
}

void corral_child_main(const struct corral_launch_plan *shared) {
    struct corral_child_failure failure = {0};
    uint32_t index = 0;
    // Until "go", only the early fields of the shared plan are valid.
    const struct corral_launch_plan *plan = shared;

    // Started on another core than the parent's (see `spread_cpus`): the inherited CPU set
    // back, so the scheduler balances it from here on.
    restore_cpus(plan);
    if (step_reset_signals() < 0) { corral_fail(&failure, CORRAL_STAGE_SIGNALS, 0); report_and_exit(plan, &failure); }
    if (step_join_cgroups(plan, &index) < 0) { corral_fail(&failure, CORRAL_STAGE_CGROUP, index); report_and_exit(plan, &failure); }
    int keep[] = {plan->sync_fd, plan->report_fd, plan->status_fd,
                  plan->stdio[0], plan->stdio[1], plan->stdio[2]};
    close_all_except(keep, (int)(sizeof keep / sizeof keep[0]));
    if (step_id_maps(plan) < 0) { corral_fail(&failure, CORRAL_STAGE_ID_MAPS, 0); report_and_exit(plan, &failure); }
    // The cgroup namespace is rooted at the cgroups the child is in when it is made: the
    // run's, joined above.
    uint64_t early = plan->clone_flags & (CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP);
    if (early && unshare((int)early) < 0) { corral_fail(&failure, CORRAL_STAGE_NAMESPACES, 0); report_and_exit(plan, &failure); }
    if ((plan->clone_flags & CLONE_NEWNET) && step_loopback_up() < 0) {
        corral_fail(&failure, CORRAL_STAGE_NETWORK, 0);
        report_and_exit(plan, &failure);
    }
    // Executable memfds would run code Landlock never sees (memfd inodes are kernel-private):
    // make every memfd of this pid namespace noexec (Linux 6.3+). The file is owned by host
    // root, so this takes effect for runs as root; rootless runs keep the default.
    if (plan->clone_flags & CLONE_NEWPID) (void)write_file("/proc/sys/vm/memfd_noexec", "2");

    int landlock_fd = -1;
    step_wait_for_release(shared, plan->sync_fd);
    if (step_wait_for_parent(plan->sync_fd, &landlock_fd) < 0) { corral_fail(&failure, CORRAL_STAGE_SYNC, 0); report_and_exit(plan, &failure); }
    close(plan->sync_fd);
    // The whole plan is written now. A copy of the top-level struct on this stack; the
    // arrays it points to stay in the shared arena (read-only here).
    struct corral_launch_plan local = *shared;
    local.landlock_ruleset_fd = landlock_fd;
    plan = &local;
    if (plan->landlock_expected && landlock_fd < 0) {
        errno = EBADMSG;  // a plan with Landlock never runs without it
        corral_fail(&failure, CORRAL_STAGE_SYNC, 1);
        report_and_exit(plan, &failure);
    }

    if (plan->listen_port_count && step_egress_listeners(plan, &index) < 0) {
        corral_fail(&failure, CORRAL_STAGE_NETWORK, index);
        report_and_exit(plan, &failure);
    }
    for (int i = 0; i < 3; i++) {
        if (plan->stdio[i] < 0 || plan->stdio[i] == i) continue;
        if (dup2(plan->stdio[i], i) < 0) { corral_fail(&failure, CORRAL_STAGE_FDS, 0); report_and_exit(plan, &failure); }
    }
    if (plan->clone_flags & CLONE_NEWNS) {
        if (corral_apply_mounts(plan, &failure) < 0) report_and_exit(plan, &failure);
    }
    if (plan->hostname && sethostname(plan->hostname, strlen(plan->hostname)) < 0) {
        corral_fail(&failure, CORRAL_STAGE_HOSTNAME, 0);
        report_and_exit(plan, &failure);
    }
    for (uint32_t i = 0; i < plan->rlimit_count; i++) {
        struct rlimit rl = {.rlim_cur = plan->rlimits[i].soft, .rlim_max = plan->rlimits[i].hard};
        if (setrlimit(plan->rlimits[i].resource, &rl) < 0) { corral_fail(&failure, CORRAL_STAGE_RLIMITS, i); report_and_exit(plan, &failure); }
    }
    if (plan->landlock_ruleset_fd >= 0 && step_landlock_child_rules(plan, &index) < 0) {
        corral_fail(&failure, CORRAL_STAGE_LANDLOCK_RULES, index);
        report_and_exit(plan, &failure);
    }
    if (step_drop_capabilities(plan->cap_last_cap) < 0) { corral_fail(&failure, CORRAL_STAGE_CAPABILITIES, 0); report_and_exit(plan, &failure); }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) { corral_fail(&failure, CORRAL_STAGE_NO_NEW_PRIVS, 0); report_and_exit(plan, &failure); }
    // init keeps a copy of the supervisor's memory: nobody may read it through /proc/1/mem.
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

    // Signals are blocked across the spawn so a forwarded signal cannot arrive before the
    // command's pid is known; the command unblocks them itself.
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    pid_t pid = clone(command_main, command_stack + sizeof command_stack,
                      CLONE_VM | CLONE_VFORK | SIGCHLD, (void *)plan);
    if (pid < 0) { corral_fail(&failure, CORRAL_STAGE_SPAWN, 0); report_and_exit(plan, &failure); }
    command_pid = pid;
    // The command has executed (or written why not, first): say so positively, so that an
    // init that died before this point is never taken for a command that ran.
    struct corral_child_failure spawned = {.stage = CORRAL_STAGE_NONE, .index = 0, .err = 0};
    ssize_t ignored = write(plan->report_fd, &spawned, sizeof spawned);
    (void)ignored;

    // The command has executed or failed: init needs nothing but the status pipe now, and
    // keeps no view of the supervisor's memory.
    int status_fd = plan->status_fd;
    if (plan->arena_base) munmap(plan->arena_base, (size_t)plan->arena_size);
    if (status_fd != 0) close_range(0, (unsigned int)status_fd - 1, 0);
    close_range((unsigned int)status_fd + 1, ~0U, 0);
    init_reap(status_fd, pid);
}

// Parent side: the clone itself and small syscall wrappers Swift cannot reach directly.
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <sched.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <signal.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef SECCOMP_GET_ACTION_AVAIL
#define SECCOMP_GET_ACTION_AVAIL 2
#endif

/// Moves `child` off the calling thread's CPU (see `spread_cpus`); init restores its set.
void corral_spread_child(const struct corral_launch_plan *plan, pid_t child) {
    if (!plan->spread_cpus) return;
    int here = sched_getcpu();
    if (here < 0) return;
    cpu_set_t others;
    memcpy(&others, plan->cpus, sizeof others);
    CPU_CLR(here, &others);
    if (CPU_COUNT(&others) > 0) sched_setaffinity(child, sizeof others, &others);
}

int corral_launch(struct corral_launch_plan *plan, pid_t *pid, int *pidfd) {
    // clone3 without CLONE_VM: the child gets a copy-on-write image and runs on its own
    // stack copy; only the plan's arena is shared. Only the user and pid namespaces are made
    // here (init must be pid 1): the others, the network namespace above all (~0.8 ms), are
    // the child's unshare, done while this thread goes on preparing the plan.
    // CLONE_PIDFD gives a race-free handle for signals and waiting.
    int fd = -1;
    struct clone_args args;
    memset(&args, 0, sizeof args);
    // CLONE_CLEAR_SIGHAND: the supervisor's signal handlers are not init's (reset at the
    // clone, before init's first instruction; ignored signals stay ignored until init resets them).
    args.flags = (plan->clone_flags & (CLONE_NEWUSER | CLONE_NEWPID)) | CLONE_PIDFD | CLONE_CLEAR_SIGHAND;
    args.pidfd = (uint64_t)(uintptr_t)&fd;
    args.exit_signal = SIGCHLD;
    if (plan->cgroup_fd >= 0) {  // born in the run's v2 group (see `cgroup_fd`)
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)plan->cgroup_fd;
    }
    plan->spread_cpus = 0;
    if (sched_getaffinity(0, sizeof plan->cpus, (cpu_set_t *)plan->cpus) == 0) {
        int count = CPU_COUNT((cpu_set_t *)plan->cpus);
        if (count > 1) plan->spread_cpus = count >= sysconf(_SC_NPROCESSORS_ONLN) ? 2 : 1;
    }
    long rc = syscall(SYS_clone3, &args, sizeof args);
    if (rc < 0) return errno;
    if (rc == 0) corral_child_main(plan);  // never returns
    *pid = (pid_t)rc;
    corral_spread_child(plan, (pid_t)rc);
    // CLONE_PIDFD descriptors are always close-on-exec.
    *pidfd = fd;
    return 0;
}

int corral_send_byte(int socket_fd, char byte, int pass_fd) {
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr header;
        char space[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (pass_fd >= 0) {
        msg.msg_control = control.space;
        msg.msg_controllen = sizeof control.space;
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &pass_fd, sizeof(int));
    }
    ssize_t n;
    do { n = sendmsg(socket_fd, &msg, MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    return n == 1 ? 0 : -errno;
}

void corral_release_child(struct corral_launch_plan *plan) {
    // Shared (not FUTEX_PRIVATE): the word is in a MAP_SHARED page of two processes.
    if (__atomic_exchange_n(&plan->release_word, 1, __ATOMIC_RELEASE) == 0)
        syscall(SYS_futex, &plan->release_word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

int corral_send_go(int sync_fd, int pass_fd) {
    return corral_send_byte(sync_fd, 1, pass_fd);
}

int corral_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    struct open_how how = {.flags = flags, .mode = mode, .resolve = resolve};
    long fd;
    do { fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how); } while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : (int)fd;
}

int corral_memfd_create(const char *name) {
    int fd = memfd_create(name, MFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int corral_pidfd_wait(int pidfd, int *status, int nohang) {
    return corral_pidfd_wait_usage(pidfd, status, nohang, NULL);
}

int corral_pidfd_wait_usage(int pidfd, int *status, int nohang, struct corral_usage *usage) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    // The raw waitid takes a fifth argument glibc's wrapper hides: the rusage of the child
    // and of every descendant it reaped. init reaps the whole sandbox, so this is the tree's.
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    long rc;
    do {
        rc = syscall(SYS_waitid, P_PIDFD, pidfd, &info, WEXITED | (nohang ? WNOHANG : 0), &ru);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return -errno;
    if (usage) {
        usage->user_microseconds = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec;
        usage->system_microseconds = (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
        usage->max_rss_kib = (uint64_t)ru.ru_maxrss;
    }
    if (info.si_pid == 0) return -EAGAIN;  // WNOHANG and still running
    switch (info.si_code) {
    case CLD_EXITED: *status = (info.si_status & 0xff) << 8; break;
    case CLD_KILLED: *status = info.si_status & 0x7f; break;
    case CLD_DUMPED: *status = (info.si_status & 0x7f) | 0x80; break;
    default: *status = 0; break;
    }
    return 0;
}

int corral_pidfd_send_signal(int pidfd, int sig) {
    return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

int corral_seccomp_action_available(uint32_t action) {
    return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
}

int corral_seccomp_has_user_notif(void) {
    return corral_seccomp_action_available(SECCOMP_RET_USER_NOTIF);
}

int corral_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0;
}

int corral_signalfd(const int *signals, int count) {
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < count; i++) sigaddset(&set, signals[i]);
    int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

int corral_block_signals(const int *signals, int count) {
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < count; i++) sigaddset(&set, signals[i]);
    return pthread_sigmask(SIG_BLOCK, &set, NULL) == 0 ? 0 : -EINVAL;
}

int corral_signalfd_read(int fd) {
    struct signalfd_siginfo info;
    ssize_t n = read(fd, &info, sizeof info);
    return n == (ssize_t)sizeof info ? (int)info.ssi_signo : -1;
}

int corral_seccomp_install(const void *filter, uint32_t length) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -errno;
    struct sock_fprog prog = {.len = (unsigned short)length, .filter = (struct sock_filter *)filter};
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0 ? -errno : 0;
}

int corral_seccomp_install_listener(const void *filter, uint32_t length, uint32_t flags) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -errno;
    struct sock_fprog prog = {.len = (unsigned short)length, .filter = (struct sock_filter *)filter};
    long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    return fd < 0 ? -errno : (int)fd;  // the kernel makes the listener O_CLOEXEC
}

long corral_raw_syscall(long number, long a0, long a1, long a2, long a3, long a4, long a5) {
    long rc = syscall(number, a0, a1, a2, a3, a4, a5);
    return rc < 0 ? -errno : rc;
}

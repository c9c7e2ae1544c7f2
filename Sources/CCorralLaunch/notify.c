// Parent side of syscall watching: the seccomp user-notification listener and reading the
// watched process's memory. Provided in C because Swift cannot size the kernel's
// notification struct at run time or build the per-page iovecs without a pile of unsafe
// pointer code. See seccomp_unotify(2).
#include "corral_launch.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

// Linux 6.6; Debian 12's headers lack them (DESIGN.md, "Facts").
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

/// Room for the kernel's `struct seccomp_notif`, which may grow in later kernels: RECV
/// writes the kernel's size and demands that many zeroed bytes.
#define NOTIF_BUFFER 256

static _Atomic int notif_size = 0;  // the kernel's sizeof(struct seccomp_notif), once known

static int kernel_notif_size(void) {
    int size = atomic_load(&notif_size);
    if (size > 0) return size;
    struct seccomp_notif_sizes sizes;
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0) return -errno;
    size = sizes.seccomp_notif;
    if (size < (int)sizeof(struct seccomp_notif) || size > NOTIF_BUFFER) return -E2BIG;
    atomic_store(&notif_size, size);
    return size;
}

int corral_notify_wait(int listener) {
    struct pollfd pfd = {.fd = listener, .events = POLLIN};
    for (;;) {
        int n = poll(&pfd, 1, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        if (pfd.revents & POLLIN) return 1;
        // POLLHUP: no process uses the filter any more (all were reaped).
        if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) return 0;
    }
}

int corral_notify_hung_up(int listener) {
    struct pollfd pfd = {.fd = listener, .events = POLLIN};
    int n;
    do { n = poll(&pfd, 1, 0); } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    return (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) ? 1 : 0;
}

int corral_notify_receive(int listener, struct corral_notification *out) {
    int size = kernel_notif_size();
    if (size < 0) return size;
    union {
        struct seccomp_notif notif;
        unsigned char bytes[NOTIF_BUFFER];
    } buffer;
    memset(&buffer, 0, (size_t)size);
    int rc;
    do { rc = ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &buffer); } while (rc < 0 && errno == EINTR);
    if (rc < 0) return -errno;
    out->id = buffer.notif.id;
    out->pid = buffer.notif.pid;
    out->nr = buffer.notif.data.nr;
    out->arch = buffer.notif.data.arch;
    out->instruction_pointer = buffer.notif.data.instruction_pointer;
    for (int i = 0; i < 6; i++) out->args[i] = buffer.notif.data.args[i];
    return 0;
}

int corral_notify_respond(int listener, uint64_t id, int32_t error, int continue_call) {
    struct seccomp_notif_resp response;
    memset(&response, 0, sizeof response);
    response.id = id;
    if (continue_call) {
        response.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    } else {
        response.error = -error;  // the kernel wants a negative errno
    }
    int rc;
    do { rc = ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &response); } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

int corral_notify_id_valid(int listener, uint64_t id) {
    return ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) < 0 ? -errno : 0;
}

int corral_notify_set_sync_wake_up(int listener) {
    // The flags travel as the ioctl's argument itself, not through a pointer.
    return ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, (unsigned long)SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) < 0
               ? -errno : 0;
}

long corral_process_read(int pid, uint64_t address, void *buffer, size_t count) {
    // process_vm_readv(2) promises partial transfers only at iovec granularity: a remote
    // range that runs into an unmapped page may fail as a whole (Linux copies up to the
    // fault in practice). One remote iovec per page keeps to the documented contract: the
    // kernel stops at the first page it cannot read and returns what came before it.
    enum { MAX_PAGES = 32 };
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) page = 4096;
    struct iovec local = {.iov_base = buffer, .iov_len = count};
    struct iovec remote[MAX_PAGES];
    size_t covered = 0;
    int n = 0;
    while (covered < count && n < MAX_PAGES) {
        uint64_t start = address + covered;
        size_t room = (size_t)(page - (long)(start % (uint64_t)page));
        size_t length = count - covered < room ? count - covered : room;
        remote[n].iov_base = (void *)(uintptr_t)start;
        remote[n].iov_len = length;
        covered += length;
        n++;
    }
    local.iov_len = covered;
    ssize_t got = process_vm_readv((pid_t)pid, &local, 1, remote, (unsigned long)n, 0);
    return got < 0 ? -errno : (long)got;
}

long corral_receive_report(int fd, void *buffer, size_t size, int *passed_fd) {
    struct iovec iov = {.iov_base = buffer, .iov_len = size};
    union {
        struct cmsghdr header;
        char space[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.space;
    msg.msg_controllen = sizeof control.space;
    *passed_fd = -1;
    ssize_t n;
    do { n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
            cmsg->cmsg_len == CMSG_LEN(sizeof(int)))
            memcpy(passed_fd, CMSG_DATA(cmsg), sizeof(int));
    }
    return (long)n;
}

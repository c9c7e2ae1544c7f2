// The system calls behind corral-egress's spliced tunnels (SpliceWorker.swift). None of
// them touches the filesystem, so the proxy's Landlock rule (read-only beneath a few
// folders, see harden.c) allows them all: pipes, epoll and eventfd descriptors are
// anonymous inodes.
#include "corral_splice.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

const int corral_SO_COOKIE = SO_COOKIE;

_Static_assert(CORRAL_READABLE == EPOLLIN, "EPOLLIN");
_Static_assert(CORRAL_WRITABLE == EPOLLOUT, "EPOLLOUT");
_Static_assert(CORRAL_ERROR == EPOLLERR, "EPOLLERR");
_Static_assert(CORRAL_HANGUP == EPOLLHUP, "EPOLLHUP");
_Static_assert(CORRAL_PEER_SHUT == EPOLLRDHUP, "EPOLLRDHUP");

ssize_t corral_splice(int in, int out, size_t length) {
    // SPLICE_F_NONBLOCK makes the pipe side non-blocking; the socket side follows the
    // socket's own O_NONBLOCK (NIO sets it, and a dup shares it) and this flag too
    // (tcp_splice_read takes either). From a socket, -EAGAIN means "nothing to read" or
    // "the pipe is full" alike: the caller tells them apart by what it left in the pipe.
    // SPLICE_F_MOVE is only a hint (page stealing has been a no-op since 2.6.21), kept
    // for kernels that may honour it again.
    for (;;) {
        ssize_t n = splice(in, NULL, out, NULL, length, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n >= 0) return n;
        if (errno != EINTR) return -errno;
    }
}

int corral_splice_pipe(int fds[2]) {
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) return -errno;
    // 16 pages normally; two once this user's pipes hold more than
    // /proc/sys/fs/pipe-user-pages-soft pages (16,384), for a process without
    // CAP_SYS_RESOURCE: slower, still correct.
    int size = fcntl(fds[0], F_GETPIPE_SZ);
    if (size < 0) {
        int saved = errno;
        close(fds[0]);
        close(fds[1]);
        return -saved;
    }
    return size;
}

int corral_pipe_resize(int fd, int capacity) {
    int size = fcntl(fd, F_SETPIPE_SZ, capacity);
    return size < 0 ? -errno : size;
}

int corral_socket_cookie(int fd, uint64_t *cookie) {
    socklen_t length = sizeof *cookie;
    return getsockopt(fd, SOL_SOCKET, SO_COOKIE, cookie, &length) < 0 ? -errno : 0;
}

int corral_dup_cloexec(int fd) {
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    return copy < 0 ? -errno : copy;
}

int corral_shutdown_output(int fd) {
    return shutdown(fd, SHUT_WR) < 0 ? -errno : 0;
}

int corral_socket_error(int fd) {
    int error = 0;
    socklen_t length = sizeof error;
    return getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0 ? -errno : error;
}

int corral_reset_on_close(int fd) {
    struct linger abort_now = {.l_onoff = 1, .l_linger = 0};
    return setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_now, sizeof abort_now) < 0 ? -errno : 0;
}

int corral_epoll_create(void) {
    int fd = epoll_create1(EPOLL_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int corral_epoll_add(int epoll_fd, int fd, uint32_t events, int edge, uint64_t token) {
    struct epoll_event event = {.events = events | (edge ? EPOLLET : 0), .data.u64 = token};
    return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) < 0 ? -errno : 0;
}

int corral_epoll_wait(int epoll_fd, uint64_t *tokens, uint32_t *events, int capacity, int timeout_ms) {
    struct epoll_event ready[64];
    if (capacity > 64) capacity = 64;
    int n = epoll_wait(epoll_fd, ready, capacity, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        tokens[i] = ready[i].data.u64;
        events[i] = ready[i].events;
    }
    return n;
}

int corral_eventfd_signal(int fd) {
    uint64_t one = 1;
    // EAGAIN only when the counter would overflow: the waiter is woken already.
    return write(fd, &one, sizeof one) < 0 && errno != EAGAIN ? -errno : 0;
}

void corral_eventfd_drain(int fd) {
    uint64_t count;
    (void)!read(fd, &count, sizeof count);
}

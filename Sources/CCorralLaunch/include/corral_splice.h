// Zero-copy relaying for corral-egress: splice(2) through pipes, driven by an epoll loop.
// In C because `struct epoll_event` is packed (Swift cannot take its fields' addresses),
// and fcntl, the socket options and the splice flags are variadic or behind _GNU_SOURCE.
#ifndef CORRAL_SPLICE_H
#define CORRAL_SPLICE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// SO_COOKIE, which Swift's Glibc module does not export.
extern const int corral_SO_COOKIE;

/// Readiness bits reported by `corral_epoll_wait`, with the values of EPOLLIN, EPOLLOUT,
/// EPOLLERR, EPOLLHUP and EPOLLRDHUP (checked at compile time in splice.c).
enum corral_readiness {
    CORRAL_READABLE = 0x001,
    CORRAL_WRITABLE = 0x004,
    CORRAL_ERROR = 0x008,
    CORRAL_HANGUP = 0x010,
    CORRAL_PEER_SHUT = 0x2000,
};

/// Moves up to `length` bytes from `in` to `out` with splice(2) and
/// SPLICE_F_MOVE | SPLICE_F_NONBLOCK; one of the two is a pipe. Returns the bytes moved,
/// 0 at the end of the input (a socket that has received its peer's FIN and has nothing
/// left), or -errno (-EAGAIN: nothing to move now; EINTR is retried here).
ssize_t corral_splice(int in, int out, size_t length);

/// A pipe for splicing: pipe2(O_CLOEXEC | O_NONBLOCK), of the kernel's default size.
/// `fds[0]` is the read end. Returns its capacity in bytes (F_GETPIPE_SZ), or -errno.
int corral_splice_pipe(int fds[2]);

/// Grows a pipe to `capacity` bytes (F_SETPIPE_SZ; the kernel rounds up to a power-of-two
/// count of pages). Returns the new capacity, or -errno: EPERM past pipe-max-size or the
/// user's pipe-user-pages-soft, for a process without CAP_SYS_RESOURCE.
int corral_pipe_resize(int fd, int capacity);

/// The kernel's cookie of a socket (SO_COOKIE): unique among the sockets of this boot,
/// whatever descriptor or network namespace holds it. 0 or -errno.
int corral_socket_cookie(int fd, uint64_t *cookie);

/// fcntl(F_DUPFD_CLOEXEC): a new descriptor for the same open file. Returns it or -errno.
int corral_dup_cloexec(int fd);

/// shutdown(fd, SHUT_WR): the peer reads end-of-file after the bytes already sent.
/// 0 or -errno.
int corral_shutdown_output(int fd);

/// The socket's pending error (getsockopt SO_ERROR), which reading clears: ECONNRESET or
/// EPIPE after a reset, ETIMEDOUT when the kernel gave up retransmitting; 0 when there is
/// none (or it was read already, by this call or by a failed read or write). -errno when
/// the option cannot be read.
int corral_socket_error(int fd);

/// SO_LINGER with a zero timeout: the next close sends a reset instead of a FIN and drops
/// what is queued, so the peer learns at once that the connection was aborted. 0 or -errno.
int corral_reset_on_close(int fd);

/// epoll_create1(EPOLL_CLOEXEC). Returns the descriptor or -errno.
int corral_epoll_create(void);

/// Registers `fd` for `events` (corral_readiness bits, plus edge triggering when `edge` is
/// non-zero), reported with `token`. 0 or -errno.
int corral_epoll_add(int epoll_fd, int fd, uint32_t events, int edge, uint64_t token);

/// Waits up to `timeout_ms` (-1: no limit) and writes up to `capacity` events as token and
/// readiness pairs. Returns the count (0 on timeout or EINTR) or -errno.
int corral_epoll_wait(int epoll_fd, uint64_t *tokens, uint32_t *events, int capacity, int timeout_ms);

/// (An eventfd for `corral_eventfd_signal`: `corral_eventfd_cloexec` in corral_cgroup.h.)

/// Adds one to an eventfd (wakes a waiter). 0 or -errno.
int corral_eventfd_signal(int fd);

/// Resets an eventfd to zero (EAGAIN when it already was is no failure).
void corral_eventfd_drain(int fd);

#ifdef __cplusplus
}
#endif
#endif

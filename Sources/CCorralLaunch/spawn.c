// Starting Corral's own helper processes (the egress proxy) from the multithreaded
// supervisor: posix_spawn (vfork-style, async-signal-safe in the child), descriptors moved
// to fixed numbers, every signal back to its default and unblocked, a session of its own
// (a Ctrl-C on the terminal reaches the supervisor, which ends the run in order).
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <unistd.h>

int corral_spawn_helper(const char *path, char *const argv[], char *const envp[], const int *sources,
                        const int *targets, int count, pid_t *pid, int *pidfd) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    int rc = posix_spawn_file_actions_init(&actions);
    if (rc != 0) return rc;
    rc = posix_spawnattr_init(&attributes);
    if (rc != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return rc;
    }
    // Targets lie above every source (the caller picks them so), so no dup2 overwrites a
    // descriptor a later one still needs; dup2 clears close-on-exec on the copy.
    for (int i = 0; i < count && rc == 0; i++) rc = posix_spawn_file_actions_adddup2(&actions, sources[i], targets[i]);
    // No stdin, and nothing on stdout (the command's output and `--events -` use it); stderr
    // stays the supervisor's, for the helper's own failure messages.
    if (rc == 0) rc = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0) rc = posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attributes, &none);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attributes, &all);
    if (rc == 0) rc = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
    if (rc == 0) rc = posix_spawn(pid, path, &actions, &attributes, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (rc != 0) return rc;
    long fd = syscall(SYS_pidfd_open, *pid, 0);
    *pidfd = fd < 0 ? -1 : (int)fd;
    return 0;
}

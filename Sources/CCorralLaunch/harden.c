// corral-egress's self-restriction. In C because prctl and capset are variadic or absent
// from Swift's Glibc module, and because every step must happen in the one thread that
// exists before NIO starts its event loops: no_new_privs, capabilities and a Landlock
// domain all bind to the calling thread and are inherited only by threads created later
// (landlock_restrict_self(2), capabilities(7)).
#include "internal.h"
#include "corral_harden.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int held_capabilities(int *any) {
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &header, data) < 0) return -1;
    *any = (data[0].permitted | data[1].permitted | data[0].effective | data[1].effective |
            data[0].inheritable | data[1].inheritable) != 0;
    // Bounding set entries matter too: a root process without effective capabilities
    // regains them at execve (it cannot execve here, but clear them all the same).
    if (!*any && prctl(PR_CAPBSET_READ, 0, 0, 0, 0) == 1 && getuid() == 0) *any = 1;
    return 0;
}

int corral_harden_self(const char *const *read_paths, uint32_t path_count, uint64_t handled_fs,
                       uint32_t *step, uint32_t *index) {
    *index = 0;
    *step = CORRAL_HARDEN_NO_NEW_PRIVS;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -errno;

    *step = CORRAL_HARDEN_CAPABILITIES;
    int any = 0;
    if (held_capabilities(&any) < 0) return -errno;
    if (any && corral_clear_capabilities(63) < 0) return -errno;

    if (handled_fs == 0) return 0;  // no Landlock: nothing more to apply
    *step = CORRAL_HARDEN_LANDLOCK_RULESET;
    int ruleset = corral_landlock_create_ruleset(handled_fs, 0, 0);
    if (ruleset < 0) return ruleset;
    const uint64_t read = corral_LL_FS_READ_FILE | corral_LL_FS_READ_DIR;
    *step = CORRAL_HARDEN_LANDLOCK_RULE;
    for (uint32_t i = 0; i < path_count; i++) {
        *index = i;
        int fd = open(read_paths[i], O_PATH | O_CLOEXEC | O_DIRECTORY);
        if (fd < 0) {
            if (errno == ENOENT || errno == ENOTDIR) continue;
            int saved = errno;
            close(ruleset);
            return -saved;
        }
        int rc = corral_landlock_add_path_rule(ruleset, fd, read);
        close(fd);
        if (rc < 0) { close(ruleset); return rc; }
    }
    *step = CORRAL_HARDEN_LANDLOCK_RESTRICT;
    *index = 0;
    int rc = corral_landlock_restrict_self_raw(ruleset, 0);
    int saved = errno;
    close(ruleset);
    return rc < 0 ? -saved : 0;
}

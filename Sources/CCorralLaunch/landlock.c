// Landlock system calls and rights. The installed linux/landlock.h predates the running
// kernel (ABI 7), so the structures and rights are defined here from the kernel's uapi.
#include "internal.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

/// struct landlock_ruleset_attr as of ABI 6 (scoped added); the kernel accepts shorter
/// sizes from older callers, so the size passed is what the ABI in use needs.
struct ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

int corral_landlock_abi(void) {
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, CORRAL_LANDLOCK_CREATE_RULESET_VERSION);
    return abi < 0 ? -errno : (int)abi;
}

int corral_landlock_create_ruleset(uint64_t handled_fs, uint64_t handled_net, uint64_t scoped) {
    struct ruleset_attr attr = {handled_fs, handled_net, scoped};
    size_t size = scoped ? sizeof attr : handled_net ? 16 : 8;
    long fd = syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    return fd < 0 ? -errno : (int)fd;
}

int corral_landlock_add_rule_raw(int ruleset_fd, int parent_fd, uint64_t allowed) {
    struct path_beneath_attr attr = {.allowed_access = allowed, .parent_fd = parent_fd};
    return (int)syscall(SYS_landlock_add_rule, ruleset_fd, CORRAL_LANDLOCK_RULE_PATH_BENEATH, &attr, 0);
}

int corral_landlock_add_path_rule(int ruleset_fd, int parent_fd, uint64_t allowed) {
    return corral_landlock_add_rule_raw(ruleset_fd, parent_fd, allowed) < 0 ? -errno : 0;
}

struct net_port_attr {
    uint64_t allowed_access;
    uint64_t port;
} __attribute__((packed));

int corral_landlock_add_port_rule(int ruleset_fd, uint64_t port, uint64_t allowed) {
    struct net_port_attr attr = {.allowed_access = allowed, .port = port};
    long rc = syscall(SYS_landlock_add_rule, ruleset_fd, 2 /* LANDLOCK_RULE_NET_PORT */, &attr, 0);
    return rc < 0 ? -errno : 0;
}

int corral_landlock_restrict_self_raw(int ruleset_fd, uint32_t flags) {
    return (int)syscall(SYS_landlock_restrict_self, ruleset_fd, flags);
}

// MARK: - Rights (uapi linux/landlock.h, Linux 6.18)

const uint64_t corral_LL_FS_EXECUTE = 1ULL << 0;
const uint64_t corral_LL_FS_WRITE_FILE = 1ULL << 1;
const uint64_t corral_LL_FS_READ_FILE = 1ULL << 2;
const uint64_t corral_LL_FS_READ_DIR = 1ULL << 3;
const uint64_t corral_LL_FS_REMOVE_DIR = 1ULL << 4;
const uint64_t corral_LL_FS_REMOVE_FILE = 1ULL << 5;
const uint64_t corral_LL_FS_MAKE_CHAR = 1ULL << 6;
const uint64_t corral_LL_FS_MAKE_DIR = 1ULL << 7;
const uint64_t corral_LL_FS_MAKE_REG = 1ULL << 8;
const uint64_t corral_LL_FS_MAKE_SOCK = 1ULL << 9;
const uint64_t corral_LL_FS_MAKE_FIFO = 1ULL << 10;
const uint64_t corral_LL_FS_MAKE_BLOCK = 1ULL << 11;
const uint64_t corral_LL_FS_MAKE_SYM = 1ULL << 12;
const uint64_t corral_LL_FS_REFER = 1ULL << 13;     // ABI 2
const uint64_t corral_LL_FS_TRUNCATE = 1ULL << 14;  // ABI 3
const uint64_t corral_LL_FS_IOCTL_DEV = 1ULL << 15; // ABI 5
const uint64_t corral_LL_NET_BIND_TCP = 1ULL << 0;  // ABI 4
const uint64_t corral_LL_NET_CONNECT_TCP = 1ULL << 1;
const uint64_t corral_LL_SCOPE_ABSTRACT_UNIX_SOCKET = 1ULL << 0; // ABI 6
const uint64_t corral_LL_SCOPE_SIGNAL = 1ULL << 1;

// Declarations shared by the launcher's C files. Not part of the module's public header.
#ifndef CORRAL_LAUNCH_INTERNAL_H
#define CORRAL_LAUNCH_INTERNAL_H

#include "corral_launch.h"

/// Records {stage, index, errno} in `failure` and returns -1.
int corral_fail(struct corral_child_failure *failure, uint32_t stage, uint32_t index);

/// One byte on a SOCK_SEQPACKET socket, with `pass_fd` attached (SCM_RIGHTS) unless it is
/// -1; MSG_NOSIGNAL. Async-signal-safe (the child uses it too). 0 or -errno (parent.c).
int corral_send_byte(int socket_fd, char byte, int pass_fd);

/// Clears the bounding set (capabilities 0…`last_cap`; higher numbers are skipped with
/// EINVAL), the ambient set, and empties the permitted, effective and inheritable sets.
/// Bounding entries first: dropping them needs CAP_SETPCAP. Async-signal-safe; used by the
/// sandbox's init and by corral-egress. 0 or -1 with errno (child.c).
int corral_clear_capabilities(uint32_t last_cap);

/// Builds the new root and pivots into it (mounts.c).
int corral_apply_mounts(const struct corral_launch_plan *plan, struct corral_child_failure *failure);

/// The clone child's whole life: setup as init, spawn the command, reap (child.c). Never returns.
__attribute__((noreturn)) void corral_child_main(const struct corral_launch_plan *plan);

// Landlock ABI constants and syscalls (landlock.c).
#define CORRAL_LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#define CORRAL_LANDLOCK_RULE_PATH_BENEATH 1
int corral_landlock_add_rule_raw(int ruleset_fd, int parent_fd, uint64_t allowed);
int corral_landlock_restrict_self_raw(int ruleset_fd, uint32_t flags);

#endif

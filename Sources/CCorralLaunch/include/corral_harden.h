// Self-restriction of a long-running helper process (corral-egress), applied once at start.
#ifndef CORRAL_HARDEN_H
#define CORRAL_HARDEN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Which step of `corral_harden_self` failed.
enum corral_harden_step {
    CORRAL_HARDEN_NO_NEW_PRIVS = 1,
    CORRAL_HARDEN_CAPABILITIES = 2,
    CORRAL_HARDEN_LANDLOCK_RULESET = 3,
    CORRAL_HARDEN_LANDLOCK_RULE = 4,
    CORRAL_HARDEN_LANDLOCK_RESTRICT = 5,
};

/// Restricts the calling thread and every thread it creates later, for good:
/// 1. PR_SET_NO_NEW_PRIVS;
/// 2. when any capability is held (root), the bounding and ambient sets are cleared and the
///    permitted/effective/inheritable sets emptied;
/// 3. with `handled_fs` (Landlock filesystem rights the kernel knows; 0 when it has no
///    Landlock) the filesystem becomes read-only (read file, read folder) beneath
///    `read_paths` (missing paths are skipped) and closed everywhere else: no write, no
///    execute, no create or remove.
/// Every step is thread-bound, so this must run before the process starts threads.
/// Returns 0, or -errno with `*step` and `*index` (the path's index for
/// CORRAL_HARDEN_LANDLOCK_RULE) set.
int corral_harden_self(const char *const *read_paths, uint32_t path_count, uint64_t handled_fs,
                       uint32_t *step, uint32_t *index);

#ifdef __cplusplus
}
#endif
#endif

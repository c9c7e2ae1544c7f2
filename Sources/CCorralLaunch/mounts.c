// Child side: building the new root. Async-signal-safe only (runs between clone and exec).
//
// Order (see corral_apply_mounts):
//   1. Every bind source is opened by its canonical host path with RESOLVE_NO_SYMLINKS, its
//      device and inode compared with what the parent resolved, and cloned as a detached
//      mount tree (open_tree OPEN_TREE_CLONE|AT_RECURSIVE) with its final attributes set
//      (mount_setattr). This happens before anything is mounted, so the new root can sit
//      on top of any host folder without hiding a source.
//   2. A tmpfs is mounted on `root_base`; it becomes the new /.
//   3. The ops run in order. Targets are resolved with RESOLVE_IN_ROOT against the new root.
//   4. pivot_root(".", "."), then the old root is detached and / made read-only.
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint64_t mount_attrs(uint32_t flags) {
    uint64_t attrs = 0;
    if (flags & CORRAL_MOUNT_F_RDONLY) attrs |= MOUNT_ATTR_RDONLY;
    if (flags & CORRAL_MOUNT_F_NOSUID) attrs |= MOUNT_ATTR_NOSUID;
    if (flags & CORRAL_MOUNT_F_NODEV) attrs |= MOUNT_ATTR_NODEV;
    if (flags & CORRAL_MOUNT_F_NOEXEC) attrs |= MOUNT_ATTR_NOEXEC;
    return attrs;
}

static int openat2_raw(int dirfd, const char *path, uint64_t flags, uint64_t resolve) {
    struct open_how how = {.flags = flags, .mode = 0, .resolve = resolve};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/// Opens `target` beneath the new root as an O_PATH handle. Targets inside a writable tree
/// follow no symlink at all (another run may have planted one).
static int open_target(int root_fd, const char *target, uint32_t flags) {
    if (target[0] == '\0') return fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
    uint64_t resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    if (flags & CORRAL_MOUNT_F_NOFOLLOW) resolve |= RESOLVE_NO_SYMLINKS;
    return openat2_raw(root_fd, target, O_PATH | O_CLOEXEC, resolve);
}

/// Moves a detached mount onto `target`.
static int attach(int tree_fd, int root_fd, const char *target, uint32_t flags) {
    int target_fd = open_target(root_fd, target, flags);
    if (target_fd < 0) return -1;
    int rc = move_mount(tree_fd, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
    int saved = errno;
    close(target_fd);
    errno = saved;
    return rc;
}

/// "<n>m" for a tmpfs size option (async-signal-safe: no snprintf).
static const char *size_text(uint32_t mib, char buf[24]) {
    char digits[16];
    int n = 0;
    do { digits[n++] = (char)('0' + mib % 10); mib /= 10; } while (mib && n < 15);
    int i = 0;
    while (n) buf[i++] = digits[--n];
    buf[i++] = 'm';
    buf[i] = 0;
    return buf;
}

/// Creates a fresh filesystem instance as a detached mount (fsopen → fsconfig → fsmount).
/// `options` is a NULL-terminated list of key, value pairs (value NULL = flag).
static int fresh_mount(const char *fstype, const char *const *options, uint64_t attrs) {
    int fs = fsopen(fstype, FSOPEN_CLOEXEC);
    if (fs < 0) return -1;
    for (const char *const *opt = options; opt && opt[0]; opt += 2) {
        int rc = opt[1] ? fsconfig(fs, FSCONFIG_SET_STRING, opt[0], opt[1], 0)
                        : fsconfig(fs, FSCONFIG_SET_FLAG, opt[0], NULL, 0);
        if (rc < 0) goto fail;
    }
    if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) goto fail;
    int mnt = fsmount(fs, FSMOUNT_CLOEXEC, (unsigned int)attrs);
    if (mnt < 0) goto fail;
    close(fs);
    return mnt;
fail:;
    int saved = errno;
    close(fs);
    errno = saved;
    return -1;
}

/// Writes an octal mode such as "1777" into `buf` (at least 8 bytes).
static const char *octal(uint32_t mode, char *buf) {
    char tmp[8];
    int n = 0;
    do { tmp[n++] = (char)('0' + (mode & 7)); mode >>= 3; } while (mode && n < 7);
    for (int i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return buf;
}

// MARK: - Phase 1: sources

static int clone_source(const struct corral_mount_op *op) {
    int src = openat2_raw(AT_FDCWD, op->source, O_PATH | O_CLOEXEC, RESOLVE_NO_SYMLINKS);
    if (src < 0) return -1;
    struct stat st;
    if (fstat(src, &st) < 0) goto fail;
    if (op->source_ino != 0 &&
        ((uint64_t)st.st_dev != op->source_dev || (uint64_t)st.st_ino != op->source_ino)) {
        errno = ESTALE;  // the path now names another file than the one checked
        goto fail;
    }
    int tree = open_tree(src, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
    if (tree < 0) goto fail;
    struct mount_attr attr = {.attr_set = mount_attrs(op->flags)};
    if (attr.attr_set && mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
        int saved = errno;
        close(tree);
        errno = saved;
        goto fail;
    }
    close(src);
    return tree;
fail:;
    int saved = errno;
    close(src);
    errno = saved;
    return -1;
}

/// An overlay over the bind-checked lower folder, as a detached mount: its layers are given
/// as descriptors opened without following any symlink (fsconfig FSCONFIG_SET_FD, Linux
/// 6.13+; older kernels take the paths, which then follow symlinks Corral itself created).
/// `userxattr`: the mount is made in a user namespace, so whiteouts and opaque markers use
/// user.overlay.* attributes (and redirect_dir/metacopy stay off).
static int overlay_source(const struct corral_mount_op *op) {
    int fds[3] = {-1, -1, -1};
    const char *paths[3] = {op->source, op->upper, op->work};
    const char *keys[3] = {"lowerdir+", "upperdir", "workdir"};
    int fs = -1, tree = -1;
    for (int i = 0; i < 3; i++) {
        fds[i] = openat2_raw(AT_FDCWD, paths[i], O_PATH | O_DIRECTORY | O_CLOEXEC, RESOLVE_NO_SYMLINKS);
        if (fds[i] < 0) goto out;
    }
    struct stat st;
    if (fstat(fds[0], &st) < 0) goto out;
    if (op->source_ino != 0 && ((uint64_t)st.st_dev != op->source_dev || (uint64_t)st.st_ino != op->source_ino)) {
        errno = ESTALE;
        goto out;
    }
    fs = fsopen("overlay", FSOPEN_CLOEXEC);
    if (fs < 0) goto out;
    for (int i = 0; i < 3; i++) {
        if (fsconfig(fs, FSCONFIG_SET_FD, keys[i], NULL, fds[i]) < 0) {
            if (errno != EINVAL) goto out;
            if (fsconfig(fs, FSCONFIG_SET_STRING, keys[i], paths[i], 0) < 0) goto out;
        }
    }
    if (fsconfig(fs, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0) goto out;
    if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) goto out;
    tree = fsmount(fs, FSMOUNT_CLOEXEC, (unsigned int)mount_attrs(op->flags));
out:;
    int saved = errno;
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0) close(fds[i]);
    if (fs >= 0) close(fs);
    errno = saved;
    return tree;
}

// MARK: - Phase 3: one op

static int apply_op(const struct corral_mount_op *op, int root_fd, int tree_fd, int mask_file_fd) {
    char mode_buf[8];
    uint64_t attrs = mount_attrs(op->flags);
    switch (op->kind) {
    case CORRAL_MOUNT_MKDIR:
        if (mkdirat(root_fd, op->target, op->mode) < 0 && errno != EEXIST) return -1;
        return 0;
    case CORRAL_MOUNT_MKFILE: {
        int fd = openat(root_fd, op->target, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, op->mode);
        if (fd < 0) return -1;
        close(fd);
        return 0;
    }
    case CORRAL_MOUNT_BIND:
    case CORRAL_MOUNT_OVERLAY:
        return attach(tree_fd, root_fd, op->target, op->flags);
    case CORRAL_MOUNT_TMPFS: {
        char size_buf[24];
        const char *options[] = {"mode", octal(op->mode, mode_buf), NULL, NULL, NULL, NULL};
        if (op->size_mib) {
            options[2] = "size";
            options[3] = size_text(op->size_mib, size_buf);
        }
        int mnt = fresh_mount("tmpfs", options, attrs);
        if (mnt < 0) return -1;
        int rc = attach(mnt, root_fd, op->target, op->flags);
        int saved = errno;
        close(mnt);
        errno = saved;
        return rc;
    }
    case CORRAL_MOUNT_PROC: {
        int mnt = fresh_mount("proc", NULL, attrs);
        if (mnt < 0) return -1;
        int rc = attach(mnt, root_fd, op->target, op->flags);
        int saved = errno;
        close(mnt);
        errno = saved;
        return rc;
    }
    case CORRAL_MOUNT_DEVPTS: {
        const char *options[] = {"newinstance", NULL, "ptmxmode", "0666", "mode", "0620", NULL, NULL};
        int mnt = fresh_mount("devpts", options, attrs);
        if (mnt < 0) return -1;
        int rc = attach(mnt, root_fd, op->target, op->flags);
        int saved = errno;
        close(mnt);
        errno = saved;
        return rc;
    }
    case CORRAL_MOUNT_SYMLINK:
        if (symlinkat(op->source, root_fd, op->target) < 0 && errno != EEXIST) return -1;
        return 0;
    case CORRAL_MOUNT_MASK: {
        // A folder is covered by an empty read-only tmpfs with mode 000; a file by a bind of
        // an empty mode-000 file. Without CAP_DAC_OVERRIDE both give EACCES to any open.
        if (op->flags & CORRAL_MOUNT_F_DIRECTORY) {
            const char *options[] = {"mode", "0000", "size", "4k", NULL, NULL};
            int mnt = fresh_mount("tmpfs", options, attrs | MOUNT_ATTR_RDONLY);
            if (mnt < 0) return -1;
            int rc = attach(mnt, root_fd, op->target, op->flags);
            int saved = errno;
            close(mnt);
            errno = saved;
            return rc;
        }
        // Clone the empty mode-000 file made on the root tmpfs before anything was bound
        // over it (a bind of / would hide it, and a read-only root could not hold it); its
        // name is removed once every mount is in place.
        int tree = open_tree(mask_file_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        if (tree < 0) return -1;
        struct mount_attr attr = {.attr_set = attrs | MOUNT_ATTR_RDONLY};
        int rc = mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof attr);
        if (rc == 0) rc = attach(tree, root_fd, op->target, op->flags);
        int saved = errno;
        close(tree);
        errno = saved;
        return rc;
    }
    case CORRAL_MOUNT_READONLY: {
        int target = open_target(root_fd, op->target, op->flags);
        if (target < 0 && errno == ENOENT && (op->flags & CORRAL_MOUNT_F_OPTIONAL)) return 0;
        if (target < 0) return -1;
        int tree = open_tree(target, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
        int rc = -1;
        if (tree >= 0) {
            struct mount_attr attr = {.attr_set = attrs | MOUNT_ATTR_RDONLY};
            rc = mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr);
            if (rc == 0)
                rc = move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
        }
        int saved = errno;
        if (tree >= 0) close(tree);
        close(target);
        errno = saved;
        return rc;
    }
    default:
        errno = EINVAL;
        return -1;
    }
}

// MARK: - The whole sequence

int corral_apply_mounts(const struct corral_launch_plan *plan, struct corral_child_failure *failure) {
    // Host mount events must not reach us, and ours must never reach the host.
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
        return corral_fail(failure, CORRAL_STAGE_MOUNT_PROPAGATION, 0);

    for (uint32_t i = 0; i < plan->mount_count; i++) {
        plan->scratch_fds[i] = -1;
        if (plan->mounts[i].kind == CORRAL_MOUNT_OVERLAY)
            plan->scratch_fds[i] = overlay_source(&plan->mounts[i]);
        else if (plan->mounts[i].kind == CORRAL_MOUNT_BIND)
            plan->scratch_fds[i] = clone_source(&plan->mounts[i]);
        else
            continue;
        if (plan->scratch_fds[i] < 0) return corral_fail(failure, CORRAL_STAGE_MOUNT_SOURCES, i);
    }

    const char *const root_options[] = {"mode", "0755", NULL, NULL};
    int root_mnt = fresh_mount("tmpfs", root_options, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    if (root_mnt < 0) return corral_fail(failure, CORRAL_STAGE_NEW_ROOT, 0);
    if (move_mount(root_mnt, "", AT_FDCWD, plan->root_base, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return corral_fail(failure, CORRAL_STAGE_NEW_ROOT, 1);
    close(root_mnt);
    int root_fd = open(plan->root_base, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) return corral_fail(failure, CORRAL_STAGE_NEW_ROOT, 2);
    // The source of every file mask, as an O_PATH handle that outlives its name.
    int mask_fd = openat(root_fd, ".corral-mask", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0);
    if (mask_fd < 0) return corral_fail(failure, CORRAL_STAGE_NEW_ROOT, 4);
    close(mask_fd);
    mask_fd = openat(root_fd, ".corral-mask", O_PATH | O_CLOEXEC | O_NOFOLLOW);
    if (mask_fd < 0) return corral_fail(failure, CORRAL_STAGE_NEW_ROOT, 5);
    // The tmpfs itself, even after a bind of / stacks on it: the mask's name is removed there.
    int tmpfs_fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
    if (tmpfs_fd < 0) return corral_fail(failure, CORRAL_STAGE_NEW_ROOT, 6);

    for (uint32_t i = 0; i < plan->mount_count; i++) {
        if (apply_op(&plan->mounts[i], root_fd, plan->scratch_fds[i], mask_fd) < 0)
            return corral_fail(failure, CORRAL_STAGE_MOUNTS, i);
        if (plan->scratch_fds[i] >= 0) {
            close(plan->scratch_fds[i]);
            plan->scratch_fds[i] = -1;
        }
        if (plan->mounts[i].target[0] == '\0' && plan->mounts[i].kind == CORRAL_MOUNT_BIND) {
            // A bind onto the root itself (read: [/]) stacks on the tmpfs: continue, and pivot,
            // on the new top mount.
            close(root_fd);
            root_fd = open(plan->root_base, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (root_fd < 0) return corral_fail(failure, CORRAL_STAGE_NEW_ROOT, 3);
        }
    }
    close(mask_fd);
    unlinkat(tmpfs_fd, ".corral-mask", 0);
    close(tmpfs_fd);

    // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves
    // the new root alone (pivot_root(2), "NOTES"). No path to the host remains.
    if (fchdir(root_fd) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
        return corral_fail(failure, CORRAL_STAGE_PIVOT_ROOT, 0);
    if (umount2(".", MNT_DETACH) < 0) return corral_fail(failure, CORRAL_STAGE_PIVOT_ROOT, 1);
    if (chdir("/") < 0) return corral_fail(failure, CORRAL_STAGE_PIVOT_ROOT, 2);
    close(root_fd);
    struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
    if (mount_setattr(AT_FDCWD, "/", 0, &ro, sizeof ro) < 0)
        return corral_fail(failure, CORRAL_STAGE_PIVOT_ROOT, 3);
    return 0;
}

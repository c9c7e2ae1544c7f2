// Parent-side helpers of the cgroup backend (CorralSystem/CgroupEvents.swift).
#ifndef CORRAL_CGROUP_H
#define CORRAL_CGROUP_H

#ifdef __cplusplus
extern "C" {
#endif

/// A close-on-exec, non-blocking eventfd for cgroup v1 notifications (memory OOM via
/// `cgroup.event_control`), or -errno.
/// Provided in C because Swift's Glibc module does not export `eventfd(2)`.
int corral_eventfd_cloexec(void);

#ifdef __cplusplus
}
#endif

#endif

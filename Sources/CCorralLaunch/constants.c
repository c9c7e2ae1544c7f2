// Constants Swift's Glibc module does not export (they sit behind _GNU_SOURCE or in
// linux/ headers). Swift reads them as `corral_NAME` (swift-nio's pattern).
#include "corral_launch.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sched.h>

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

const uint64_t corral_CLONE_NEWUSER = CLONE_NEWUSER;
const uint64_t corral_CLONE_NEWPID = CLONE_NEWPID;
const uint64_t corral_CLONE_NEWNS = CLONE_NEWNS;
const uint64_t corral_CLONE_NEWNET = CLONE_NEWNET;
const uint64_t corral_CLONE_NEWIPC = CLONE_NEWIPC;
const uint64_t corral_CLONE_NEWUTS = CLONE_NEWUTS;
const uint64_t corral_CLONE_NEWCGROUP = CLONE_NEWCGROUP;
const int corral_O_PATH = O_PATH;
const uint64_t corral_RESOLVE_NO_SYMLINKS = RESOLVE_NO_SYMLINKS;
const uint64_t corral_RESOLVE_IN_ROOT = RESOLVE_IN_ROOT;
const uint64_t corral_RESOLVE_BENEATH = RESOLVE_BENEATH;
const uint64_t corral_RESOLVE_NO_MAGICLINKS = RESOLVE_NO_MAGICLINKS;

// Once the supervisor has received a notification, only a fatal signal may interrupt the
// caller's wait: an ordinary signal would otherwise cancel the notification and restart the
// call, which the supervisor would then see (and decide on) twice.
const uint32_t corral_SECCOMP_WATCH_FLAGS = SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
#if defined(__x86_64__)
const uint32_t corral_AUDIT_ARCH_NATIVE = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
const uint32_t corral_AUDIT_ARCH_NATIVE = AUDIT_ARCH_AARCH64;
#else
#error "Corral supports x86_64 and aarch64"
#endif

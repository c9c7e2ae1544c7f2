// Constants Swift's Glibc module does not export (they sit behind _GNU_SOURCE or in
// linux/ headers). Swift reads them as `corral_NAME` (swift-nio's pattern).
#include "corral_launch.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>

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

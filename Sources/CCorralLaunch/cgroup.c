// Parent-side helpers of the cgroup backend; see include/corral_cgroup.h.
#include "corral_cgroup.h"

#include <errno.h>
#include <sys/eventfd.h>

int corral_eventfd_cloexec(void) {
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

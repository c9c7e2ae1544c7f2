/* corral-probe: process, identity and environment commands. */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "probe.h"

extern char **environ;

void cmd_proc_status(int argc, char **argv)
{
    (void)argc, (void)argv;
    static const char *const keys[] = {
        "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters",
    };
    enum { NKEYS = sizeof keys / sizeof keys[0] };
    char lines[NKEYS][128] = {{0}};
    char buf[512];

    FILE *f = fopen("/proc/self/status", "re");
    if (!f) {
        report(errno, "proc-status");
        return;
    }
    while (fgets(buf, sizeof buf, f)) {
        char *colon = strchr(buf, ':');
        if (!colon)
            continue;
        *colon = '\0';
        for (int i = 0; i < NKEYS; i++) {
            if (strcmp(buf, keys[i]) != 0)
                continue;
            char *value = colon + 1;
            value += strspn(value, " \t");
            value[strcspn(value, "\n")] = '\0';
            snprintf(lines[i], sizeof lines[i], "%s: %s", keys[i], value);
        }
    }
    fclose(f);
    for (int i = 0; i < NKEYS; i++)   /* in our order; keys the kernel lacks are omitted */
        if (lines[i][0])
            puts(lines[i]);
}

/* The CPUs this process may run on, as /proc/self/status lists them. */
void cmd_cpus(int argc, char **argv)
{
    (void)argc, (void)argv;
    char buf[512];
    FILE *f = fopen("/proc/self/status", "re");
    if (!f) {
        report(errno, "cpus");
        return;
    }
    while (fgets(buf, sizeof buf, f)) {
        if (strncmp(buf, "Cpus_allowed_list:", 18) != 0)
            continue;
        char *value = buf + 18;
        value += strspn(value, " \t");
        value[strcspn(value, "\n")] = '\0';
        printf("cpus %s\n", value);
    }
    fclose(f);
}

void cmd_pid(int argc, char **argv)
{
    (void)argc, (void)argv;
    printf("pid=%d ppid=%d\n", (int)getpid(), (int)getppid());
}

static int is_pid(const struct dirent *e)
{
    const char *s = e->d_name;
    while (isdigit((unsigned char)*s))
        s++;
    return s != e->d_name && *s == '\0';
}

static int by_pid(const struct dirent **a, const struct dirent **b)
{
    long x = atol((*a)->d_name), y = atol((*b)->d_name);
    return (x > y) - (x < y);
}

void cmd_ps(int argc, char **argv)
{
    (void)argc, (void)argv;
    struct dirent **list;
    int n = scandir("/proc", &list, is_pid, by_pid);
    if (n < 0) {
        report(errno, "pids");
        return;
    }
    fputs("pids", stdout);
    for (int i = 0; i < n; i++) {
        printf(" %s", list[i]->d_name);
        free(list[i]);
    }
    putchar('\n');
    free(list);
}

void cmd_hostname(int argc, char **argv)
{
    (void)argc, (void)argv;
    char name[HOST_NAME_MAX + 1] = {0};
    if (gethostname(name, sizeof name - 1) < 0)
        report(errno, "hostname");
    else
        printf("hostname %s\n", name);
}

void cmd_uid(int argc, char **argv)
{
    (void)argc, (void)argv;
    static gid_t groups[NGROUPS_MAX];
    int n = getgroups(NGROUPS_MAX, groups);
    printf("uid=%u gid=%u euid=%u egid=%u groups=", (unsigned)getuid(), (unsigned)getgid(),
           (unsigned)geteuid(), (unsigned)getegid());
    for (int i = 0; i < n; i++)
        printf("%s%u", i ? "," : "", (unsigned)groups[i]);
    putchar('\n');
}

/* Sort by variable name first (so "A" precedes "A-B"), then by value. */
static int by_env_name(const void *pa, const void *pb)
{
    const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
    size_t la = strcspn(a, "="), lb = strcspn(b, "=");
    int c = strncmp(a, b, la < lb ? la : lb);
    if (c || la != lb)
        return c ? c : (la < lb ? -1 : 1);
    return strcmp(a + la, b + lb);
}

void cmd_env(int argc, char **argv)
{
    (void)argc, (void)argv;
    size_t n = 0;
    while (environ[n])
        n++;
    char **sorted = malloc((n + 1) * sizeof *sorted);
    if (!sorted) {
        report(ENOMEM, "env");
        return;
    }
    memcpy(sorted, environ, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, by_env_name);
    for (size_t i = 0; i < n; i++)
        puts(sorted[i]);
    free(sorted);
}

static int by_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

void cmd_fds(int argc, char **argv)
{
    (void)argc, (void)argv;
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        report(errno, "fds");
        return;
    }
    int *fds = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        if (fd == dirfd(d))   /* the descriptor we are listing with */
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            int *grown = realloc(fds, cap * sizeof *fds);
            if (!grown)
                abort();
            fds = grown;
        }
        fds[n++] = fd;
    }
    closedir(d);
    qsort(fds, n, sizeof *fds, by_int);
    fputs("fds", stdout);
    for (size_t i = 0; i < n; i++)
        printf(" %d", fds[i]);
    putchar('\n');
    free(fds);
}

void cmd_exit(int argc, char **argv)
{
    (void)argc;
    exit((int)parse_long(argv[0], 0, 255));
}

/* Default disposition and unblocked, so an inherited SIG_IGN or mask cannot
   hide the signal. If we still survive (e.g. SIGCHLD), exit 0 silently. */
void cmd_kill_self(int argc, char **argv)
{
    (void)argc;
    int sig = parse_signal(argv[0]);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    signal(sig, SIG_DFL);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
}

/* Whole or fractional seconds, e.g. "2" or "0.5". */
static struct timespec parse_seconds(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0 && v < 1e9))
        usage();
    struct timespec ts = {(time_t)v, (long)((v - (double)(time_t)v) * 1e9)};
    return ts;
}

static void sleep_for(struct timespec ts)
{
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

void cmd_sleep(int argc, char **argv)
{
    (void)argc;
    sleep_for(parse_seconds(argv[0]));
}

/* Children start their own sessions so that neither process-group nor
   session-based cleanup reaches them: only a real sandbox teardown does. */
void cmd_spawn_sleepers(int argc, char **argv)
{
    (void)argc;
    enum { MAX_SLEEPERS = 1024 };
    long n = parse_long(argv[0], 0, MAX_SLEEPERS);
    struct timespec ts = parse_seconds(argv[1]);
    int err = 0;

    fputs("spawned", stdout);
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            err = errno;
            break;
        }
        if (pid == 0) {
            setsid();
            sleep_for(ts);
            _exit(0);
        }
        printf(" %d", (int)pid);
    }
    if (err)
        printf(" errno=%s", errname(err));
    putchar('\n');
    fflush(stdout);
    sleep_for(ts);
}

void cmd_sid(int argc, char **argv)
{
    (void)argc, (void)argv;
    printf("sid=%d pid=%d pgid=%d\n", (int)getsid(0), (int)getpid(), (int)getpgid(0));
}

void cmd_tty(int argc, char **argv)
{
    (void)argc, (void)argv;
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    report(fd < 0 ? errno : 0, "tty");
    if (fd >= 0)
        close(fd);
}

void cmd_kill(int argc, char **argv)
{
    (void)argc;
    pid_t pid = (pid_t)parse_long(argv[0], INT_MIN, INT_MAX);
    int sig = strcmp(argv[1], "0") == 0 ? 0 : parse_signal(argv[1]);
    report(kill(pid, sig) < 0 ? errno : 0, "kill %s %s", argv[0], argv[1]);
}

static void print_limit(const char *label, rlim_t v)
{
    if (v == RLIM_INFINITY)
        printf(" %s=unlimited", label);
    else
        printf(" %s=%llu", label, (unsigned long long)v);
}

void cmd_rlimit(int argc, char **argv)
{
    (void)argc;
    static const struct {
        const char *name;
        int resource;
    } limits[] = {
        {"core", RLIMIT_CORE}, {"nofile", RLIMIT_NOFILE}, {"fsize", RLIMIT_FSIZE},
        {"nproc", RLIMIT_NPROC},
    };
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        if (strcmp(limits[i].name, argv[0]) != 0)
            continue;
        struct rlimit rl;
        if (getrlimit(limits[i].resource, &rl) < 0) {
            report(errno, "rlimit %s", argv[0]);
            return;
        }
        printf("rlimit %s", argv[0]);
        print_limit("soft", rl.rlim_cur);
        print_limit("hard", rl.rlim_max);
        putchar('\n');
        return;
    }
    usage();
}

/* Resource probes: what a limit does to a process that pushes against it. */
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "probe.h"

/* flood BYTES: writes BYTES bytes of 'x' to stdout in 4 KiB chunks (no result line: the
 * bytes are the output). Stops quietly if stdout goes away. */
void cmd_flood(int argc, char **argv)
{
    (void)argc;
    long long total = atoll(argv[0]);
    char chunk[4096];
    memset(chunk, 'x', sizeof chunk);
    signal(SIGPIPE, SIG_IGN);
    while (total > 0) {
        size_t n = total < (long long)sizeof chunk ? (size_t)total : sizeof chunk;
        ssize_t w = write(1, chunk, n);
        if (w <= 0) exit(0);
        total -= w;
    }
}

/* open-many: opens /dev/null until it fails; prints `opened=N errno=ENAME`. */
void cmd_open_many(int argc, char **argv)
{
    (void)argc; (void)argv;
    int opened = 0;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0) break;
        opened++;
    }
    int err = errno;
    printf("opened=%d errno=%s\n", opened, errname(err));
}

/* write-big PATH BYTES: writes BYTES bytes to PATH with SIGXFSZ ignored; prints
 * `written=N` then ` ok` or ` errno=ENAME` for the first failing write. */
void cmd_write_big(int argc, char **argv)
{
    (void)argc;
    signal(SIGXFSZ, SIG_IGN);
    long long want = atoll(argv[1]), written = 0;
    int fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { report(errno, "written=0"); return; }
    char chunk[4096];
    memset(chunk, 'y', sizeof chunk);
    int err = 0;
    while (written < want) {
        size_t n = want - written < (long long)sizeof chunk ? (size_t)(want - written) : sizeof chunk;
        ssize_t w = write(fd, chunk, n);
        if (w < 0) { err = errno; break; }
        written += w;
    }
    close(fd);
    report(err, "written=%lld", written);
}

/* spin SECONDS: burns CPU for SECONDS of CPU time (0 = forever), then prints `ok`. */
void cmd_spin(int argc, char **argv)
{
    (void)argc;
    double seconds = atof(argv[0]);
    volatile unsigned long x = 0;
    for (;;) {
        for (int i = 0; i < 1000000; i++) x += (unsigned long)i;
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        if (seconds > 0 && ts.tv_sec + ts.tv_nsec / 1e9 >= seconds) break;
    }
    puts("ok");
}

/* alloc MIB: touches MIB mebibytes, one at a time, printing nothing until done (`ok`) or
 * until mmap fails (`allocated=N errno=ENAME`). An OOM kill ends it silently. */
void cmd_alloc(int argc, char **argv)
{
    (void)argc;
    long mib = atol(argv[0]);
    for (long i = 0; i < mib; i++) {
        char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) { report(errno, "allocated=%ld", i); return; }
        memset(p, 0x5a, 1 << 20);
    }
    puts("ok");
}

/* fork-many N: forks up to N children that sleep 30 s; prints `forked=K ok` or
 * `forked=K errno=ENAME` at the first failure. The children are left for init to reap. */
void cmd_fork_many(int argc, char **argv)
{
    (void)argc;
    int want = atoi(argv[0]), forked = 0, err = 0;
    fflush(stdout);
    while (forked < want) {
        pid_t pid = fork();
        if (pid < 0) { err = errno; break; }
        if (pid == 0) { sleep(30); _exit(0); }
        forked++;
    }
    report(err, "forked=%d", forked);
}

/* ignore-term SECONDS: ignores SIGTERM, SIGINT and SIGHUP, prints `ready`, sleeps. */
void cmd_ignore_term(int argc, char **argv)
{
    (void)argc;
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    puts("ready");
    fflush(stdout);
    sleep((unsigned)atoi(argv[0]));
    puts("ok");
}

/* connect-many N HOST PORT: N TCP connects (each on a fresh socket); prints
 * `attempts=K errno=ENAME` with the errno of the last attempt (K < N when stopped early). */
void cmd_connect_many(int argc, char **argv)
{
    (void)argc;
    int want = atoi(argv[0]), attempts = 0, err = 0;
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)atoi(argv[2]));
    inet_pton(AF_INET, argv[1], &sin.sin_addr);
    for (; attempts < want; attempts++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) { err = errno; break; }
        err = connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0 ? 0 : errno;
        close(fd);
    }
    printf("attempts=%d errno=%s\n", attempts, err ? errname(err) : "none");
}

/* flood-buffered BYTES: like flood, after growing stdout's pipe to 1 MiB, so the bytes are
 * still in the pipe when the probe exits. */
void cmd_flood_buffered(int argc, char **argv)
{
    (void)fcntl(1, F_SETPIPE_SZ, 1 << 20);
    cmd_flood(argc, argv);
}

/* write-fd FD TEXT: writes TEXT to descriptor FD; prints `ok` or `errno=ENAME` on stderr
 * (stdout may be the descriptor written). */
void cmd_write_fd(int argc, char **argv)
{
    (void)argc;
    ssize_t n = write(atoi(argv[0]), argv[1], strlen(argv[1]));
    fprintf(stderr, "%s\n", n < 0 ? errname(errno) : "ok");
}

/* tcxonc: tcflow(0, TCOOFF) through ioctl TCXONC; prints `ok` or `errno=ENAME`. */
void cmd_tcxonc(int argc, char **argv)
{
    (void)argc; (void)argv;
    report(ioctl(0, TCXONC, TCOOFF) == 0 ? 0 : errno, "tcxonc");
}

/* write-relative cwd|dirfd DIR NAME: opens NAME for writing relative to DIR, either after
 * chdir(DIR) or with openat(open(DIR)); prints `ok` or `errno=ENAME`. */
void cmd_write_relative(int argc, char **argv)
{
    (void)argc;
    int fd;
    if (strcmp(argv[0], "cwd") == 0) {
        if (chdir(argv[1]) < 0) { report(errno, "chdir"); return; }
        fd = open(argv[2], O_WRONLY | O_CREAT, 0644);
    } else {
        int dir = open(argv[1], O_PATH | O_DIRECTORY);
        if (dir < 0) { report(errno, "open"); return; }
        fd = openat(dir, argv[2], O_WRONLY | O_CREAT, 0644);
    }
    report(fd < 0 ? errno : 0, "%s", argv[0]);
    if (fd >= 0) close(fd);
}

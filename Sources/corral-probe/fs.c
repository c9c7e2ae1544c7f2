/* corral-probe: filesystem commands. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "probe.h"

#define READ_SHOW_MAX 200          /* content bytes echoed by `read` */
#define READ_TOTAL_MAX (1 << 20)   /* stop reading endless files like /dev/zero */

void cmd_open(int argc, char **argv)
{
    (void)argc;
    int fd = open(argv[0], O_RDONLY | O_CLOEXEC);
    report(fd < 0 ? errno : 0, "open %s", argv[0]);
    if (fd >= 0)
        close(fd);
}

/* Reads the whole file (bounded), then prints at most the first 200 bytes.
   '\n' is shown as "\n"; other control bytes as "\xHH" to keep one line. */
void cmd_read(int argc, char **argv)
{
    (void)argc;
    char shown[READ_SHOW_MAX], chunk[4096];
    size_t nshown = 0, total = 0;
    int fd = open(argv[0], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        report(errno, "read %s", argv[0]);
        return;
    }
    while (total < READ_TOTAL_MAX) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            report(errno, "read %s", argv[0]);
            close(fd);
            return;
        }
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n && nshown < sizeof shown; i++)
            shown[nshown++] = chunk[i];
        total += (size_t)n;
    }
    close(fd);

    printf("read %s ok ", argv[0]);
    for (size_t i = 0; i < nshown; i++) {
        unsigned char c = (unsigned char)shown[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if ((c < 0x20 && c != '\t') || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('\n');
}

/* Writes all of `text` to fd; returns 0 or errno. */
static int write_all(int fd, const char *text)
{
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        done += (size_t)n;
    }
    return 0;
}

/* Creates/truncates path and writes text; returns 0 or errno. */
static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    int err = write_all(fd, text);
    if (close(fd) < 0 && !err && errno != EINTR)
        err = errno;
    return err;
}

void cmd_write(int argc, char **argv)
{
    report(write_file(argv[0], argc > 1 ? argv[1] : "x"), "write %s", argv[0]);
}

void cmd_mkdir(int argc, char **argv)
{
    (void)argc;
    report(mkdir(argv[0], 0755) < 0 ? errno : 0, "mkdir %s", argv[0]);
}

static int not_dot(const struct dirent *e)
{
    return strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
}

/* Plain byte order, independent of locale. */
static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

void cmd_ls(int argc, char **argv)
{
    (void)argc;
    struct dirent **list;
    int n = scandir(argv[0], &list, not_dot, by_name);
    if (n < 0) {
        report(errno, "ls %s", argv[0]);
        return;
    }
    printf("ls %s", argv[0]);
    for (int i = 0; i < n; i++) {
        printf(" %s", list[i]->d_name);
        free(list[i]);
    }
    putchar('\n');
    free(list);
}

/* argv is already [PATH, ARGS..., NULL]. */
void cmd_exec(int argc, char **argv)
{
    (void)argc;
    execv(argv[0], argv);
    report(errno, "exec %s", argv[0]);
}

void cmd_write_many(int argc, char **argv)
{
    (void)argc;
    long n = parse_long(argv[1], 0, 10000000);
    char path[PATH_MAX];
    int err = 0;
    for (long i = 0; i < n && !err; i++) {
        snprintf(path, sizeof path, "%s/f%ld", argv[0], i);
        err = write_file(path, "x");
    }
    report(err, "write-many %ld", n);
}

/* Mount points (5th field of mountinfo), in file order, escapes kept as-is. */
void cmd_mounts(int argc, char **argv)
{
    (void)argc, (void)argv;
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f) {
        report(errno, "mounts");
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        /* fields: id parent major:minor root mountpoint ... */
        char *save, *field = strtok_r(line, " \n", &save);
        for (int i = 1; field && i < 5; i++)
            field = strtok_r(NULL, " \n", &save);
        if (field)
            puts(field);
    }
    free(line);
    fclose(f);
}

void cmd_cwd(int argc, char **argv)
{
    (void)argc, (void)argv;
    char buf[PATH_MAX];
    if (getcwd(buf, sizeof buf))
        printf("cwd %s\n", buf);
    else
        report(errno, "cwd");
}

/* Opens (openat, O_RDONLY|O_CLOEXEC) and closes PATH N times, then prints the mean time
   of one open+close in nanoseconds: the benchmark of watched calls. */
void cmd_open_loop(int argc, char **argv)
{
    (void)argc;
    long n = parse_long(argv[1], 1, 100000000);
    struct timespec start, end;
    int err = 0;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < n; i++) {
        int fd = open(argv[0], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            err = errno;
            break;
        }
        close(fd);
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    if (err) {
        report(err, "open-loop %s", argv[0]);
        return;
    }
    long long ns = (end.tv_sec - start.tv_sec) * 1000000000LL + (end.tv_nsec - start.tv_nsec);
    printf("open-loop %s ok ns_per_call=%lld\n", argv[0], ns / n);
}

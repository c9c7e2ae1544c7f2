/*
 * corral-probe: a tiny helper that Corral's integration tests run inside
 * sandboxes to report exactly what it saw.
 *
 * Contract: every command prints exactly one line (or its documented lines)
 * on stdout and exits 0, so "the probe ran and saw X" is never confused with
 * "the probe did not run". Failures are reported as `errno=ENAME`, success as
 * `ok`. Listings are sorted so output is deterministic. Only a usage error
 * exits non-zero: usage goes to stderr and the status is 2.
 */
#include <signal.h>

#include "probe.h"

struct command {
    const char *name;
    int min_args, max_args;     /* max_args < 0: unbounded */
    const char *args;           /* for the usage text */
    command_fn run;
};

static const struct command commands[] = {
    {"open",           1, 1,  "PATH",               cmd_open},
    {"read",           1, 1,  "PATH",               cmd_read},
    {"write",          1, 2,  "PATH [TEXT]",        cmd_write},
    {"mkdir",          1, 1,  "PATH",               cmd_mkdir},
    {"ls",             1, 1,  "PATH",               cmd_ls},
    {"exec",           1, -1, "PATH [ARGS...]",     cmd_exec},
    {"write-many",     2, 2,  "DIR N",              cmd_write_many},
    {"open-loop",      2, 2,  "PATH N",             cmd_open_loop},
    {"mounts",         0, 0,  "",                   cmd_mounts},
    {"cwd",            0, 0,  "",                   cmd_cwd},
    {"syscall",        1, 1,  "NAME",               cmd_syscall},
    {"int80",          0, 0,  "",                   cmd_int80},
    {"x32",            0, 0,  "",                   cmd_x32},
    {"tiocsti",        0, 0,  "",                   cmd_tiocsti},
    {"tiocsti-hi",     0, 0,  "",                   cmd_tiocsti_hi},
    {"tioclinux",      0, 0,  "",                   cmd_tioclinux},
    {"landlock-abi",   0, 0,  "",                   cmd_landlock_abi},
    {"socket",         1, 2,  "FAMILY [TYPE]",      cmd_socket},
    {"connect",        2, 2,  "HOST PORT",          cmd_connect},
    {"udp",            2, 2,  "HOST PORT",          cmd_udp},
    {"tcp-send",       3, 3,  "HOST PORT TEXT",     cmd_tcp_send},
    {"proc-status",    0, 0,  "",                   cmd_proc_status},
    {"pid",            0, 0,  "",                   cmd_pid},
    {"cpus",           0, 0,  "",                   cmd_cpus},
    {"ps",             0, 0,  "",                   cmd_ps},
    {"hostname",       0, 0,  "",                   cmd_hostname},
    {"uid",            0, 0,  "",                   cmd_uid},
    {"env",            0, 0,  "",                   cmd_env},
    {"fds",            0, 0,  "",                   cmd_fds},
    {"exit",           1, 1,  "N",                  cmd_exit},
    {"kill-self",      1, 1,  "SIG",                cmd_kill_self},
    {"sleep",          1, 1,  "SECONDS",            cmd_sleep},
    {"spawn-sleepers", 2, 2,  "N SECONDS",          cmd_spawn_sleepers},
    {"sid",            0, 0,  "",                   cmd_sid},
    {"tty",            0, 0,  "",                   cmd_tty},
    {"kill",           2, 2,  "PID SIG",            cmd_kill},
    {"rlimit",         1, 1,  "core|nofile|fsize|nproc", cmd_rlimit},
    /* resources.c */
    {"flood",          1, 1,  "BYTES",              cmd_flood},
    {"open-many",      0, 0,  "",                   cmd_open_many},
    {"write-big",      2, 2,  "PATH BYTES",         cmd_write_big},
    {"spin",           1, 1,  "SECONDS",            cmd_spin},
    {"alloc",          1, 1,  "MIB",                cmd_alloc},
    {"fork-many",      1, 1,  "N",                  cmd_fork_many},
    {"ignore-term",    1, 1,  "SECONDS",            cmd_ignore_term},
    {"connect-many",   3, 3,  "N HOST PORT",        cmd_connect_many},
    {"flood-buffered", 1, 1,  "BYTES",              cmd_flood_buffered},
    {"write-fd",       2, 2,  "FD TEXT",            cmd_write_fd},
    {"tcxonc",         0, 0,  "",                   cmd_tcxonc},
    {"write-relative", 3, 3,  "cwd|dirfd DIR NAME", cmd_write_relative},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

_Noreturn void usage(void)
{
    fputs("usage: corral-probe COMMAND [ARGS...]\n"
          "Prints one result line (ok or errno=ENAME) and exits 0; exit 2 on usage errors.\n"
          "commands:\n", stderr);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(stderr, "  %s%s%s\n", commands[i].name, *commands[i].args ? " " : "",
                commands[i].args);
    fputs("socket FAMILY: unix inet inet6 netlink netlink-audit packet raw vsock bluetooth\n"
          "socket TYPE:   stream dgram seqpacket raw\n"
          "syscall NAME:\n    ", stderr);
    list_syscall_names(stderr);
    fputc('\n', stderr);
    exit(2);
}

const char *errname(int err)
{
    static char buf[24];
    const char *name = strerrorname_np(err);
    if (name)
        return name;
    snprintf(buf, sizeof buf, "%d", err);
    return buf;
}

void report(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (err)
        printf(" errno=%s\n", errname(err));
    else
        fputs(" ok\n", stdout);
}

long parse_long(const char *s, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        usage();
    return v;
}

int parse_signal(const char *s)
{
    if (*s >= '0' && *s <= '9')
        return (int)parse_long(s, 1, NSIG - 1);
    if (strncmp(s, "SIG", 3) == 0)
        s += 3;
    for (int sig = 1; sig < NSIG; sig++) {
        const char *abbrev = sigabbrev_np(sig);   /* "TERM", NULL for gaps/RT */
        if (abbrev && strcmp(abbrev, s) == 0)
            return sig;
    }
    usage();
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    /* Line buffering: results appear promptly even when stdout is a pipe, and
       no buffered output can be duplicated into forked children. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    int nargs = argc - 2;
    for (size_t i = 0; i < N_COMMANDS; i++) {
        const struct command *c = &commands[i];
        if (strcmp(c->name, argv[1]) != 0)
            continue;
        if (nargs < c->min_args || (c->max_args >= 0 && nargs > c->max_args))
            usage();
        c->run(nargs, argv + 2);
        return 0;
    }
    usage();
}

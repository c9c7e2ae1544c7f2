/*
 * corral-probe: shared declarations.
 *
 * Every command handler receives the arguments that follow the command word
 * (argv[0] is the first argument, argv[argc] is NULL). Handlers print their
 * single result line and return; main() then exits 0. Only usage errors exit
 * with a different status (2).
 */
#ifndef CORRAL_PROBE_H
#define CORRAL_PROBE_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*command_fn)(int argc, char **argv);

/* "EPERM" etc. via strerrorname_np(); a decimal number if glibc has no name. */
const char *errname(int err);

/* Print the formatted prefix followed by " ok" (err == 0) or " errno=ENAME". */
void report(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print usage to stderr and exit 2. */
_Noreturn void usage(void);

/* Strict decimal parsing within [min, max]; anything else is a usage error. */
long parse_long(const char *s, long min, long max);

/* A signal given as a number or a name ("TERM", "SIGTERM"); usage error otherwise. */
int parse_signal(const char *s);

/* Names accepted by `syscall NAME`, for the usage text. */
void list_syscall_names(FILE *out);

/* fs.c */
void cmd_open(int, char **);
void cmd_read(int, char **);
void cmd_write(int, char **);
void cmd_mkdir(int, char **);
void cmd_ls(int, char **);
void cmd_exec(int, char **);
void cmd_write_many(int, char **);
void cmd_mounts(int, char **);
void cmd_cwd(int, char **);
void cmd_open_loop(int, char **);

/* syscalls.c */
void cmd_syscall(int, char **);
void cmd_int80(int, char **);
void cmd_x32(int, char **);
void cmd_tiocsti(int, char **);
void cmd_tiocsti_hi(int, char **);
void cmd_tioclinux(int, char **);
void cmd_landlock_abi(int, char **);

/* net.c */
void cmd_socket(int, char **);
void cmd_connect(int, char **);
void cmd_udp(int, char **);
void cmd_tcp_send(int argc, char **argv);

/* proc.c */
void cmd_proc_status(int, char **);
void cmd_cpus(int, char **);
void cmd_pid(int, char **);
void cmd_ps(int, char **);
void cmd_hostname(int, char **);
void cmd_uid(int, char **);
void cmd_env(int, char **);
void cmd_fds(int, char **);
void cmd_exit(int, char **);
void cmd_kill_self(int, char **);
void cmd_sleep(int, char **);
void cmd_spawn_sleepers(int, char **);
void cmd_sid(int, char **);
void cmd_tty(int, char **);
void cmd_kill(int, char **);
void cmd_rlimit(int, char **);

/* resources.c */
void cmd_flood(int, char **);
void cmd_open_many(int, char **);
void cmd_write_big(int, char **);
void cmd_spin(int, char **);
void cmd_alloc(int, char **);
void cmd_fork_many(int, char **);
void cmd_ignore_term(int, char **);
void cmd_connect_many(int, char **);
void cmd_flood_buffered(int, char **);
void cmd_write_fd(int, char **);
void cmd_tcxonc(int, char **);
void cmd_write_relative(int, char **);

#endif

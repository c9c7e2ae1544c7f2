/* corral-probe: network commands. */
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "probe.h"

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static const struct {
    const char *name;
    int domain, protocol;
    const char *fixed_type;     /* type word that cannot be overridden, or NULL */
    const char *default_type;
} families[] = {
    {"unix",          AF_UNIX,      0,             NULL,  "stream"},
    {"inet",          AF_INET,      0,             NULL,  "stream"},
    {"inet6",         AF_INET6,     0,             NULL,  "stream"},
    /* netlink has no stream sockets; default to the usual datagram type */
    {"netlink",       AF_NETLINK,   NETLINK_ROUTE, NULL,  "dgram"},
    {"netlink-audit", AF_NETLINK,   NETLINK_AUDIT, NULL,  "dgram"},
    /* protocol 0 still needs CAP_NET_RAW, without receiving any traffic */
    {"packet",        AF_PACKET,    0,             "raw", "raw"},
    {"raw",           AF_INET,      IPPROTO_ICMP,  "raw", "raw"},
    {"vsock",         AF_VSOCK,     0,             NULL,  "stream"},
    {"bluetooth",     AF_BLUETOOTH, 0,             NULL,  "stream"},
};

static const struct {
    const char *name;
    int type;
} types[] = {
    {"stream", SOCK_STREAM}, {"dgram", SOCK_DGRAM}, {"seqpacket", SOCK_SEQPACKET}, {"raw", SOCK_RAW},
};

static int sock_type(const char *word)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(types[i].name, word) == 0)
            return types[i].type;
    usage();
}

void cmd_socket(int argc, char **argv)
{
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        if (strcmp(families[i].name, argv[0]) != 0)
            continue;
        const char *word = families[i].fixed_type ? families[i].fixed_type
                         : argc > 1 ? argv[1] : families[i].default_type;
        if (families[i].fixed_type && argc > 1)
            sock_type(argv[1]);   /* ignored, but still must be a valid word */
        int fd = socket(families[i].domain, sock_type(word) | SOCK_CLOEXEC, families[i].protocol);
        report(fd < 0 ? errno : 0, "socket %s %s", argv[0], word);
        if (fd >= 0)
            close(fd);
        return;
    }
    usage();
}

/* IPv4 or IPv6 literal plus port; anything else is a usage error. */
static socklen_t parse_addr(const char *host, const char *port, struct sockaddr_storage *ss)
{
    in_port_t p = htons((in_port_t)parse_long(port, 0, 65535));
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = p;
        return sizeof *v4;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = p;
        return sizeof *v6;
    }
    usage();
}

/* A blocking connect bounded by SO_SNDTIMEO; on expiry Linux reports
   EINPROGRESS, which is passed through as seen. */
void cmd_connect(int argc, char **argv)
{
    (void)argc;
    struct sockaddr_storage ss;
    socklen_t len = parse_addr(argv[0], argv[1], &ss);
    int err = 0, fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = errno;
    } else {
        struct timeval tv = {2, 0};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, (struct sockaddr *)&ss, len) < 0)
            err = errno;
        close(fd);
    }
    report(err, "connect %s:%s", argv[0], argv[1]);
}

void cmd_udp(int argc, char **argv)
{
    (void)argc;
    static const char payload[] = "corral-probe";
    struct sockaddr_storage ss;
    socklen_t len = parse_addr(argv[0], argv[1], &ss);
    int err = 0, fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = errno;
    } else {
        if (sendto(fd, payload, sizeof payload - 1, 0, (struct sockaddr *)&ss, len) < 0)
            err = errno;
        close(fd);
    }
    report(err, "udp %s:%s", argv[0], argv[1]);
}

/* Connects, sends TEXT, half-closes and prints what came back (up to 4 KiB, bounded by a
   2 s receive timeout): "tcp-send HOST:PORT got=<bytes>" with non-printable bytes as \xNN,
   or the errno of the first step that failed. */
void cmd_tcp_send(int argc, char **argv)
{
    (void)argc;
    struct sockaddr_storage ss;
    socklen_t len = parse_addr(argv[0], argv[1], &ss);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        report(errno, "tcp-send %s:%s", argv[0], argv[1]);
        return;
    }
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t text_len = strlen(argv[2]);
    if (connect(fd, (struct sockaddr *)&ss, len) < 0 || write(fd, argv[2], text_len) != (ssize_t)text_len ||
        shutdown(fd, SHUT_WR) < 0) {
        report(errno, "tcp-send %s:%s", argv[0], argv[1]);
        close(fd);
        return;
    }
    char buffer[4096];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buffer && (n = read(fd, buffer + got, sizeof buffer - got)) > 0) got += (size_t)n;
    close(fd);
    printf("tcp-send %s:%s got=", argv[0], argv[1]);
    for (size_t i = 0; i < got; i++) {
        unsigned char c = (unsigned char)buffer[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') putchar(c);
        else printf("\\x%02x", c);
    }
    putchar('\n');
}

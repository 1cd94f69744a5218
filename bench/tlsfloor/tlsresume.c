/* tlsresume: a bare TLS client that measures its own CPU per connection, to set the floor a
 * delivery client cannot go below. Each of N connections is a TLS 1.3 handshake with the same
 * server name, one HTTP/1.1 POST and a close. By default every connection after the first
 * resumes the session ticket the previous connection received (a resumed handshake: PSK
 * with an ephemeral key exchange, as Herald's client resumes); with --full every connection
 * makes a full handshake and verifies the server's certificate chain. With --psk-only a
 * resumption offers the PSK key exchange mode alone (psk_ke: no ephemeral key exchange, no
 * forward secrecy for the resumed connection), the cheapest handshake TLS 1.3 has. With
 * --plain there is no TLS at all: each connection is a TCP connection, the POST, the
 * response and a close (the floor of a fresh connection per host over h2c, which adds its
 * preface and SETTINGS to this).
 *
 *   tlsresume --connect ADDR:PORT --name HOST [-n N] [--ca-file PEM] [--path /inbox]
 *             [--body FILE] [--full | --psk-only | --plain]
 *
 * wolfSSL, the library Herald's own client uses, with Herald's key-exchange groups (X25519
 * first): the figure is the same handshake code without Herald around it. One JSON object on
 * stdout: connections made, how many resumed, the negotiated version, cipher suite and key
 * exchange group, and the process CPU (getrusage, user + system) over connections 2..N, so
 * that start-up, the CA load and the first (full) handshake are left out. Exit 1 if any
 * connection failed. Blocking sockets, one connection at a time, every wait bounded by a
 * 10 s socket time-out. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strcasestr */
#endif
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define TR_BODY_MAX (64 * 1024)
#define TR_REQ_MAX (TR_BODY_MAX + 1024)

struct tr_opts {
    struct sockaddr_in addr;
    const char *name;
    const char *ca_file;
    const char *path;
    long n;
    int full;
    int psk_only;
    int plain;
    char body[TR_BODY_MAX];
    size_t body_len;
};

struct tr_result {
    long done, resumed, full, failed, status_2xx, status_other;
    char version[32], cipher[64], group[32];
};

static const int tr_groups[] = {WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1};

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int tcp_connect(const struct sockaddr_in *addr)
{
    struct timeval tv = {.tv_sec = 10};
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

/* Reads one HTTP/1.1 response (headers and a Content-Length body, or up to the close).
 * Returns the status code, or -1. */
static int read_response(WOLFSSL *ssl, int fd)
{
    char buf[16384];
    size_t have = 0;
    long want = -1;
    int status = -1;

    for (;;) {
        int r = ssl ? wolfSSL_read(ssl, buf + have, (int)(sizeof(buf) - 1 - have))
                    : (int)read(fd, buf + have, sizeof(buf) - 1 - have);
        if (r <= 0)
            return want < 0 ? -1 : status;
        have += (size_t)r;
        buf[have] = '\0';
        if (want < 0) {
            char *end = strstr(buf, "\r\n\r\n");
            if (!end) {
                if (have >= sizeof(buf) - 1)
                    return -1;
                continue;
            }
            if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
                return -1;
            const char *cl = strcasestr(buf, "\r\ncontent-length:");
            long body = cl && cl < end ? strtol(cl + 17, NULL, 10) : 0;
            want = (long)(end + 4 - buf) + body;
        }
        if ((long)have >= want)
            return status;
        if (have >= sizeof(buf) - 1) { /* a long body: keep counting, drop the bytes */
            want -= (long)have;
            have = 0;
        }
    }
}

/* One connection: handshake (resuming *sess if set), POST, response, close. On success the
 * session to resume next replaces *sess. */
static int one_conn(WOLFSSL_CTX *ctx, const struct tr_opts *o, WOLFSSL_SESSION **sess,
                    struct tr_result *res, char *req, size_t req_len)
{
    WOLFSSL *ssl = NULL;
    int fd = tcp_connect(&o->addr), rv = -1;

    if (fd < 0) {
        fprintf(stderr, "tlsresume: connect: %s\n", strerror(-fd));
        return -1;
    }
    ssl = wolfSSL_new(ctx);
    if (!ssl)
        goto fail_close;
    if (wolfSSL_set_fd(ssl, fd) != WOLFSSL_SUCCESS ||
        wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, o->name, (unsigned short)strlen(o->name)) !=
            WOLFSSL_SUCCESS ||
        wolfSSL_check_domain_name(ssl, o->name) != WOLFSSL_SUCCESS ||
        wolfSSL_UseALPN(ssl, (char *)"http/1.1", 8, WOLFSSL_ALPN_FAILED_ON_MISMATCH) !=
            WOLFSSL_SUCCESS ||
        wolfSSL_UseSessionTicket(ssl) != WOLFSSL_SUCCESS)
        goto fail_free;
    if (*sess && wolfSSL_set_session(ssl, *sess) != WOLFSSL_SUCCESS)
        goto fail_free;
    if (wolfSSL_connect(ssl) != WOLFSSL_SUCCESS) {
        char e[128];
        wolfSSL_ERR_error_string_n((unsigned long)wolfSSL_get_error(ssl, 0), e, sizeof(e));
        fprintf(stderr, "tlsresume: handshake: %s\n", e);
        goto fail_free;
    }
    if (wolfSSL_write(ssl, req, (int)req_len) != (int)req_len)
        goto fail_free;
    int status = read_response(ssl, fd); /* the ticket arrives before the response */
    if (status < 0) {
        fprintf(stderr, "tlsresume: no HTTP response\n");
        goto fail_free;
    }
    if (status >= 200 && status < 300)
        res->status_2xx++;
    else
        res->status_other++;
    if (wolfSSL_session_reused(ssl))
        res->resumed++;
    else
        res->full++;
    snprintf(res->version, sizeof(res->version), "%s", wolfSSL_get_version(ssl));
    snprintf(res->cipher, sizeof(res->cipher), "%s", wolfSSL_get_cipher_name(ssl));
    const char *g = wolfSSL_get_curve_name(ssl);
    snprintf(res->group, sizeof(res->group), "%s", g ? g : "none");
    if (!o->full) {
        WOLFSSL_SESSION *s = wolfSSL_get1_session(ssl);
        if (s) {
            wolfSSL_SESSION_free(*sess);
            *sess = s;
        }
    }
    wolfSSL_shutdown(ssl); /* close_notify, no wait for the peer's */
    rv = 0;
fail_free:
    wolfSSL_free(ssl);
fail_close:
    close(fd);
    return rv;
}

/* One plain connection (--plain): TCP connect, POST, response, close. */
static int one_conn_plain(const struct tr_opts *o, struct tr_result *res, const char *req,
                          size_t req_len)
{
    int fd = tcp_connect(&o->addr), status;
    size_t off = 0;

    if (fd < 0) {
        fprintf(stderr, "tlsresume: connect: %s\n", strerror(-fd));
        return -1;
    }
    while (off < req_len) {
        ssize_t w = write(fd, req + off, req_len - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    status = read_response(NULL, fd);
    close(fd);
    if (status < 0) {
        fprintf(stderr, "tlsresume: no HTTP response\n");
        return -1;
    }
    if (status >= 200 && status < 300)
        res->status_2xx++;
    else
        res->status_other++;
    return 0;
}

static int parse_args(int argc, char **argv, struct tr_opts *o)
{
    static const struct option lo[] = {
        {"connect", required_argument, NULL, 'c'}, {"name", required_argument, NULL, 's'},
        {"ca-file", required_argument, NULL, 'a'}, {"path", required_argument, NULL, 'p'},
        {"body", required_argument, NULL, 'b'},    {"full", no_argument, NULL, 'f'},
        {"psk-only", no_argument, NULL, 'k'},    {"plain", no_argument, NULL, 'P'},
        {NULL, 0, NULL, 0}};
    const char *connect_to = NULL, *body = NULL;
    int ch;

    o->n = 1000;
    o->path = "/inbox";
    while ((ch = getopt_long(argc, argv, "n:", lo, NULL)) != -1) {
        switch (ch) {
        case 'c': connect_to = optarg; break;
        case 's': o->name = optarg; break;
        case 'a': o->ca_file = optarg; break;
        case 'p': o->path = optarg; break;
        case 'b': body = optarg; break;
        case 'f': o->full = 1; break;
        case 'k': o->psk_only = 1; break;
        case 'P': o->plain = 1; break;
        case 'n': o->n = strtol(optarg, NULL, 10); break;
        default: return -1;
        }
    }
    if (!connect_to || !o->name || (o->full + o->psk_only + o->plain > 1) || o->n < 2 || o->n > 1000000 || strlen(o->name) > 253)
        return -1;
    const char *colon = strrchr(connect_to, ':');
    char ip[64];
    if (!colon || (size_t)(colon - connect_to) >= sizeof(ip))
        return -1;
    memcpy(ip, connect_to, (size_t)(colon - connect_to));
    ip[colon - connect_to] = '\0';
    long port = strtol(colon + 1, NULL, 10);
    o->addr.sin_family = AF_INET;
    o->addr.sin_port = htons((unsigned short)port);
    if (port <= 0 || port > 65535 || inet_pton(AF_INET, ip, &o->addr.sin_addr) != 1)
        return -1;
    if (body) {
        FILE *f = fopen(body, "rb");
        if (!f) {
            fprintf(stderr, "tlsresume: %s: %s\n", body, strerror(errno));
            return -1;
        }
        o->body_len = fread(o->body, 1, sizeof(o->body), f);
        int too_long = !feof(f);
        fclose(f);
        if (too_long) {
            fprintf(stderr, "tlsresume: %s: over %d bytes\n", body, TR_BODY_MAX);
            return -1;
        }
    } else {
        o->body_len = (size_t)snprintf(o->body, sizeof(o->body), "{}");
    }
    return 0;
}

/* The TLS client context: TLS 1.3, the CA (verification) or none, Herald's groups, and
 * with --psk-only no (EC)DHE on resumption. */
static int tls_setup(const struct tr_opts *o, WOLFSSL_CTX **ctx)
{
    if (wolfSSL_Init() != WOLFSSL_SUCCESS)
        return 1;
    *ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
    if (!*ctx)
        return 1;
    if (o->ca_file) {
        if (wolfSSL_CTX_load_verify_locations(*ctx, o->ca_file, NULL) != WOLFSSL_SUCCESS) {
            fprintf(stderr, "tlsresume: cannot load %s\n", o->ca_file);
            return 1;
        }
        wolfSSL_CTX_set_verify(*ctx, WOLFSSL_VERIFY_PEER, NULL);
    } else {
        wolfSSL_CTX_set_verify(*ctx, WOLFSSL_VERIFY_NONE, NULL);
    }
    if (wolfSSL_CTX_set_groups(*ctx, (int *)tr_groups, 2) != WOLFSSL_SUCCESS)
        return 1;
    if (o->psk_only && wolfSSL_CTX_no_dhe_psk(*ctx) != 0)
        return 1;
    return 0;
}

int main(int argc, char **argv)
{
    static struct tr_opts o;
    static char req[TR_REQ_MAX];
    struct tr_result res = {0};
    WOLFSSL_SESSION *sess = NULL;
    WOLFSSL_CTX *ctx = NULL;
    double c0 = 0, w0 = 0, c1, w1, cfirst;

    if (parse_args(argc, argv, &o) < 0) {
        fprintf(stderr, "usage: tlsresume --connect ADDR:PORT --name HOST [-n N (2..1000000)] "
                        "[--ca-file PEM] [--path /inbox] [--body FILE] [--full | --psk-only | "
                        "--plain]\n");
        return 2;
    }
    int hl = snprintf(req, sizeof(req),
                      "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/activity+json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      o.path, o.name, o.body_len);
    if (hl < 0 || (size_t)hl + o.body_len > sizeof(req))
        return 2;
    memcpy(req + hl, o.body, o.body_len);
    if (!o.plain && tls_setup(&o, &ctx) != 0)
        return 1;
    cfirst = cpu_now();
    for (long i = 0; i < o.n; i++) {
        if (i == 1) {
            c0 = cpu_now();
            w0 = wall_now();
            cfirst = c0 - cfirst;
        }
        int rc = o.plain ? one_conn_plain(&o, &res, req, (size_t)hl + o.body_len)
                         : one_conn(ctx, &o, &sess, &res, req, (size_t)hl + o.body_len);
        if (rc < 0)
            res.failed++;
        res.done++;
    }
    c1 = cpu_now();
    w1 = wall_now();
    if (o.plain) {
        printf("{\"tool\":\"tlsresume\",\"mode\":\"plain\",\"connections\":%ld,"
               "\"failed\":%ld,\"status_2xx\":%ld,\"status_other\":%ld,"
               "\"first_conn_cpu_us\":%.1f,\"timed_connections\":%ld,\"cpu_s\":%.6f,"
               "\"wall_s\":%.6f,\"cpu_us_per_conn\":%.3f}\n",
               res.done, res.failed, res.status_2xx, res.status_other, cfirst * 1e6, o.n - 1,
               c1 - c0, w1 - w0, (c1 - c0) * 1e6 / (double)(o.n - 1));
        return res.failed ? 1 : 0;
    }
    wolfSSL_SESSION_free(sess);
    wolfSSL_CTX_free(ctx);
    wolfSSL_Cleanup();
    long timed = o.n - 1;
    printf("{\"tool\":\"tlsresume\",\"library\":\"wolfSSL %s\",\"mode\":\"%s\",\"verify\":%s,"
           "\"connections\":%ld,\"failed\":%ld,\"resumed\":%ld,\"full\":%ld,"
           "\"status_2xx\":%ld,\"status_other\":%ld,\"version\":\"%s\",\"cipher\":\"%s\","
           "\"group\":\"%s\",\"first_conn_cpu_us\":%.1f,\"timed_connections\":%ld,"
           "\"cpu_s\":%.6f,\"wall_s\":%.6f,\"cpu_us_per_conn\":%.3f}\n",
           wolfSSL_lib_version(), o.full ? "full" : o.psk_only ? "resume-psk-only" : "resume", o.ca_file ? "true" : "false",
           res.done, res.failed, res.resumed, res.full, res.status_2xx, res.status_other,
           res.version, res.cipher, res.group, cfirst * 1e6, timed, c1 - c0, w1 - w0,
           (c1 - c0) * 1e6 / (double)timed);
    return res.failed ? 1 : 0;
}

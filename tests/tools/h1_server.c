/* h1_server: an HTTP/1.1-only test server (keep-alive, 202 to POST), optionally over TLS
 * (wolfSSL, ALPN "http/1.1" only), with switches for misbehaviour. One thread per connection,
 * blocking I/O: this is a test tool, not engine code.
 *
 *   h1_server [--port N] [--port-file F] [--stats-file F] [--tls-cert F --tls-key F]
 *             [--status N] [--retry-after V] [--accept-signature V] [--mode MODE]
 *             [--max-seconds N]
 *
 * MODE: normal | close (Connection: close) | silent (read, never answer) | garbage |
 *       chunked | lying-cl (promise 1000000 bytes, send 10, hang) | trickle (endless chunked
 *       body, one chunk every 50 ms) | big-headers (100 KB of headers) | preface-close
 *       (close on an h2c preface instead of answering 400) | no-accept (listen with
 *       backlog 0 and never accept: fill it and further connects hang)
 * The stats file gets "connections=N requests=M" rewritten after every change.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *mode = "normal";
static const char *stats_file;
static const char *retry_after;
static const char *accept_sig;
static int status_code = 202;
static WOLFSSL_CTX *tls_ctx;
static atomic_long n_conns, n_reqs;
static pthread_mutex_t stats_mu = PTHREAD_MUTEX_INITIALIZER;

struct client {
    int fd;
    WOLFSSL *ssl;
};

static atomic_int stats_dirty;

/* Marks the stats changed; a thread rewrites the file at most every 20 ms, so counting never
 * slows the server down. */
static void write_stats(void)
{
    atomic_store(&stats_dirty, 1);
}

static void flush_stats(void)
{
    FILE *f;
    char tmp[4096];

    if (!stats_file)
        return;
    pthread_mutex_lock(&stats_mu);
    snprintf(tmp, sizeof(tmp), "%s.tmp", stats_file);
    f = fopen(tmp, "w");
    if (f) {
        fprintf(f, "connections=%ld requests=%ld\n", atomic_load(&n_conns), atomic_load(&n_reqs));
        fclose(f);
        rename(tmp, stats_file);
    }
    pthread_mutex_unlock(&stats_mu);
}

static ssize_t c_read(struct client *c, char *buf, size_t n)
{
    if (c->ssl) {
        int r = wolfSSL_read(c->ssl, buf, (int)n);
        return r > 0 ? r : 0;
    }
    return recv(c->fd, buf, n, 0);
}

static int c_write(struct client *c, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w;
        if (c->ssl)
            w = wolfSSL_write(c->ssl, buf, (int)n);
        else
            w = send(c->fd, buf, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static int c_puts(struct client *c, const char *s)
{
    return c_write(c, s, strlen(s));
}

static void *serve(void *arg)
{
    struct client *c = arg;
    static const size_t cap = 1 << 20;
    char *buf = malloc(cap);
    size_t len = 0;

    if (c->ssl && wolfSSL_accept(c->ssl) != WOLFSSL_SUCCESS) {
        fprintf(stderr, "h1_server: TLS accept failed: %d\n", wolfSSL_get_error(c->ssl, 0));
        goto out;
    }
    for (;;) {
        char *end, *cl;
        size_t hlen, blen = 0;
        ssize_t r;
        char head[512];

        while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
            if (len >= 9 && memcmp(buf, "PRI * HTTP", 9) == 0 &&
                memmem(buf, len, "\r\n\r\nSM\r\n\r\n", 10)) {
                if (strcmp(mode, "preface-close") != 0)
                    c_puts(c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                              "Content-Length: 0\r\n\r\n");
                goto out;
            }
            if (len == cap)
                goto out;
            r = c_read(c, buf + len, cap - len);
            if (r <= 0)
                goto out;
            len += (size_t)r;
        }
        hlen = (size_t)(end - buf) + 4;
        if (memcmp(buf, "PRI * HTTP", 10) == 0) {
            if (strcmp(mode, "preface-close") != 0)
                c_puts(c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                          "Content-Length: 0\r\n\r\n");
            goto out;
        }
        buf[hlen - 1] = 0;
        cl = strcasestr(buf, "\r\ncontent-length:");
        if (cl)
            blen = strtoul(cl + 17, NULL, 10);
        buf[hlen - 1] = '\n';
        if (blen > cap - hlen)
            goto out;
        while (len < hlen + blen) {
            r = c_read(c, buf + len, cap - len);
            if (r <= 0)
                goto out;
            len += (size_t)r;
        }
        atomic_fetch_add(&n_reqs, 1);
        write_stats();
        memmove(buf, buf + hlen + blen, len - hlen - blen);
        len -= hlen + blen;

        if (strcmp(mode, "silent") == 0) {
            while (c_read(c, head, sizeof(head)) > 0)
                ;
            goto out;
        }
        if (strcmp(mode, "garbage") == 0) {
            c_puts(c, "HTTP/1.1 2x0 what\r\n\r\n");
            goto out;
        }
        snprintf(head, sizeof(head), "HTTP/1.1 %d Status\r\nServer: h1_server\r\n%s%s%s%s%s%s",
                 status_code, retry_after ? "Retry-After: " : "", retry_after ? retry_after : "",
                 retry_after ? "\r\n" : "", accept_sig ? "Accept-Signature: " : "",
                 accept_sig ? accept_sig : "", accept_sig ? "\r\n" : "");
        if (c_puts(c, head) != 0)
            goto out;
        if (strcmp(mode, "close") == 0) {
            c_puts(c, "Connection: close\r\nContent-Length: 2\r\n\r\nok");
            goto out;
        } else if (strcmp(mode, "chunked") == 0) {
            c_puts(c, "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n3;x=y\r\n!!!\r\n0\r\n\r\n");
        } else if (strcmp(mode, "lying-cl") == 0) {
            c_puts(c, "Content-Length: 1000000\r\n\r\n0123456789");
            while (c_read(c, head, sizeof(head)) > 0)
                ;
            goto out;
        } else if (strcmp(mode, "trickle") == 0) {
            c_puts(c, "Transfer-Encoding: chunked\r\n\r\n");
            for (;;) {
                if (c_puts(c, "400\r\n") != 0)
                    goto out;
                static char junk[1024];
                memset(junk, 'x', sizeof(junk));
                if (c_write(c, junk, sizeof(junk)) != 0 || c_puts(c, "\r\n") != 0)
                    goto out;
                usleep(50000);
            }
        } else if (strcmp(mode, "big-headers") == 0) {
            for (int i = 0; i < 1000; i++) {
                char line[128];
                snprintf(line, sizeof(line), "X-Filler-%d: %090d\r\n", i, 0);
                if (c_puts(c, line) != 0)
                    goto out;
            }
            c_puts(c, "Content-Length: 0\r\n\r\n");
        } else {
            c_puts(c, "Content-Length: 2\r\n\r\nok");
        }
    }
out:
    if (c->ssl)
        wolfSSL_free(c->ssl);
    close(c->fd);
    free(buf);
    free(c);
    return NULL;
}

static void *stats_thread(void *arg)
{
    (void)arg;
    for (;;) {
        if (atomic_exchange(&stats_dirty, 0))
            flush_stats();
        usleep(20000);
    }
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
    _exit(0);
}

int main(int argc, char **argv)
{
    const char *port_file = NULL, *cert = NULL, *key = NULL;
    int port = 0, lfd, one = 1, max_seconds = 120;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);

    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--port"))
            port = atoi(v);
        else if (!strcmp(a, "--port-file"))
            port_file = v;
        else if (!strcmp(a, "--stats-file"))
            stats_file = v;
        else if (!strcmp(a, "--tls-cert"))
            cert = v;
        else if (!strcmp(a, "--tls-key"))
            key = v;
        else if (!strcmp(a, "--status"))
            status_code = atoi(v);
        else if (!strcmp(a, "--accept-signature"))
            accept_sig = v;
        else if (!strcmp(a, "--retry-after"))
            retry_after = v;
        else if (!strcmp(a, "--mode"))
            mode = v;
        else if (!strcmp(a, "--max-seconds"))
            max_seconds = atoi(v);
        else {
            fprintf(stderr, "h1_server: unknown option %s\n", a);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm((unsigned)max_seconds); /* never outlive a test */
    if (cert) {
        static const char alpn[] = "http/1.1";
        wolfSSL_Init();
        tls_ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
        if (!tls_ctx ||
            wolfSSL_CTX_use_certificate_chain_file(tls_ctx, cert) != WOLFSSL_SUCCESS ||
            wolfSSL_CTX_use_PrivateKey_file(tls_ctx, key, WOLFSSL_FILETYPE_PEM) !=
                WOLFSSL_SUCCESS) {
            fprintf(stderr, "h1_server: cannot load %s / %s\n", cert, key);
            return 2;
        }
        (void)alpn;
    }
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(lfd, strcmp(mode, "no-accept") == 0 ? 0 : 128) != 0) {
        perror("h1_server: bind/listen");
        return 2;
    }
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    if (port_file) {
        char tmp[4096];
        FILE *f;
        snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
        f = fopen(tmp, "w");
        if (!f)
            return 2;
        fprintf(f, "%d\n", ntohs(sa.sin_port));
        fclose(f);
        rename(tmp, port_file);
    }
    flush_stats();
    {
        pthread_t st;
        pthread_create(&st, NULL, stats_thread, NULL);
        pthread_detach(st);
    }
    while (strcmp(mode, "no-accept") == 0)
        pause(); /* backlog 0, never accepted: once it is full, SYNs are dropped */
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        struct client *c;
        pthread_t th;
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = calloc(1, sizeof(*c));
        c->fd = fd;
        if (tls_ctx) {
            c->ssl = wolfSSL_new(tls_ctx);
            wolfSSL_set_fd(c->ssl, fd);
        }
        atomic_fetch_add(&n_conns, 1);
        write_stats();
        if (pthread_create(&th, NULL, serve, c) != 0) {
            close(fd);
            free(c);
            continue;
        }
        pthread_detach(th);
    }
    return 0;
}

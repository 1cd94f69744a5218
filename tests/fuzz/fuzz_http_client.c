/* libFuzzer target: response handling of the real HTTP client (engine/net/: http.c, pool.c,
 * conn.c, h2.c, h1.c) against a server that answers with the fuzz input. Each input is one
 * request from hd_http_client over h2c prior knowledge to a listener of this process on
 * 127.0.0.1: every connection the client opens gets the input as the server's bytes, then a
 * FIN. An input that starts with a SETTINGS frame is read through nghttp2 (mem_recv and every
 * callback of h2.c: headers, :status, data, RST_STREAM, GOAWAY, SETTINGS); any other input
 * makes the client give up h2c and retry with HTTP/1.1 on a new connection, which gets the
 * same bytes as an HTTP/1.1 response. The request must complete exactly once, within the timeouts, whatever the
 * bytes; the client never reads more than it was sent. Each input uses a new host name (a
 * new origin, so the "this origin is HTTP/1.1" memory does not leak across inputs); the
 * client is recreated every 512 inputs to bound memory. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns.h"
#include "http.h"
#include "log.h"
#include "loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
    struct hd_loop *loop;
    struct hd_dns *dns;
    struct hd_http_client *client;
    int lfd;
    uint16_t port;
    unsigned iter;
};

struct result {
    int done;
    int status, error;
};

static void on_done(const struct hd_http_resp *resp, void *ud)
{
    struct result *r = ud;
    if (r->done)
        abort(); /* completed twice */
    r->done = 1;
    r->status = resp->status;
    r->error = resp->error;
    if (resp->body_len > 4096)
        abort(); /* more than max_body kept */
    if (getenv("HD_FUZZ_VERBOSE")) /* to check what a corpus file exercises */
        fprintf(stderr, "status=%d error=%d version=%d body=%zu retry_after=%s\n", resp->status,
                resp->error, resp->http_version, resp->body_len,
                resp->retry_after ? resp->retry_after : "-");
}

static void client_new(struct fz *f)
{
    struct hd_http_opts o;

    hd_http_opts_default(&o);
    o.dns = f->dns;
    o.allow_private = 1;
    o.connect_timeout_ms = 200;
    o.tls_timeout_ms = 100; /* also the h2c probe: a silent preface answer means "no h2c" */
    o.response_timeout_ms = 200;
    o.max_body = 4096;
    o.max_header_bytes = 8192;
    if (hd_http_client_new(&f->client, f->loop, &o) != 0)
        abort();
}

static void client_free(struct fz *f)
{
    hd_http_client_shutdown(f->client);
    for (int i = 0; i < 1000 && !hd_http_client_idle(f->client); i++)
        hd_loop_run_once(f->loop, 5);
    hd_http_client_free(f->client);
    f->client = NULL;
}

static struct fz *setup(void)
{
    static struct fz f;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    char spec[64];

    if (f.loop)
        return &f;
    hd_log_level = HD_LOG_ERROR;
    if (hd_loop_new(&f.loop, 256) != 0 || hd_dns_new(&f.dns, f.loop, NULL) != 0)
        abort();
    f.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (f.lfd < 0 || bind(f.lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(f.lfd, 16) != 0 || getsockname(f.lfd, (struct sockaddr *)&sa, &sl) != 0)
        abort();
    f.port = ntohs(sa.sin_port);
    snprintf(spec, sizeof(spec), "*:%u:127.0.0.1", f.port);
    if (hd_dns_add_override(f.dns, spec) != 0)
        abort();
    client_new(&f);
    return &f;
}

/* One accepted connection of the fake server. */
struct sconn {
    int fd;
    int sent;         /* bytes of the input sent so far (-1: all, FIN sent) */
    size_t in_len;    /* client bytes seen */
    uint8_t in[4096]; /* their start: the preface and the request frames */
};

/* Length of the input's first frame when it is a SETTINGS frame (what an h2c server sends
 * first, before the request arrives), else 0. */
static size_t first_settings(const uint8_t *d, size_t n)
{
    size_t len;
    if (n < 9 || d[3] != 4)
        return 0;
    len = (size_t)d[0] << 16 | (size_t)d[1] << 8 | d[2];
    return 9 + len <= n ? 9 + len : 0;
}

/* 1 once the client's h2 request has ended (a frame on stream 1 with END_STREAM). */
static int h2_request_ended(const struct sconn *c)
{
    size_t off = 24;
    while (off + 9 <= c->in_len) {
        size_t len = (size_t)c->in[off] << 16 | (size_t)c->in[off + 1] << 8 | c->in[off + 2];
        uint8_t type = c->in[off + 3], flags = c->in[off + 4];
        if ((type == 0 || type == 1) && (flags & 1) && c->in[off + 8] == 1)
            return 1;
        off += 9 + len;
    }
    return 0;
}

static void send_part(struct sconn *c, const uint8_t *d, size_t from, size_t to)
{
    while (from < to) {
        ssize_t w = send(c->fd, d + from, to - from, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        from += (size_t)w;
    }
}

/* Feeds one server connection: reads what the client sent, answers with the input. */
static void serve(struct sconn *c, const uint8_t *data, size_t size)
{
    char junk[16384];
    ssize_t r;
    size_t first;

    while ((r = recv(c->fd, junk, sizeof(junk), 0)) > 0) {
        size_t k = (size_t)r;
        if (k > sizeof(c->in) - c->in_len)
            k = sizeof(c->in) - c->in_len;
        memcpy(c->in + c->in_len, junk, k);
        c->in_len += k;
    }
    if (c->sent < 0 || c->in_len == 0)
        return;
    first = first_settings(data, size);
    if (c->in_len >= 3 && memcmp(c->in, "PRI", 3) == 0 && first) {
        /* h2c: SETTINGS at once, the rest once the request is complete */
        if (c->sent == 0) {
            send_part(c, data, 0, first);
            c->sent = (int)first;
        }
        if (!h2_request_ended(c))
            return;
    }
    send_part(c, data, (size_t)c->sent, size);
    shutdown(c->fd, SHUT_WR);
    c->sent = -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz *f = setup();
    struct result r = {0, 0, 0};
    struct hd_http_req req;
    static const char body[] = "{\"type\":\"Create\"}";
    static struct sconn conns[4];
    char host[32];
    int nfd = 0;
    uint64_t t0;

    if (size > 65536)
        return 0;
    if (++f->iter % 512 == 0) {
        client_free(f);
        client_new(f);
    }
    snprintf(host, sizeof(host), "f%u.test", f->iter);
    memset(&req, 0, sizeof(req));
    req.tls = 0;
    req.host = host;
    req.port = f->port;
    req.authority = host;
    req.method = "POST";
    req.path = "/inbox";
    req.body = (const uint8_t *)body;
    req.body_len = sizeof(body) - 1;
    req.on_done = on_done;
    req.user_data = &r;
    if (hd_http_submit(f->client, &req) != 0)
        abort();
    /* 3 s of loop at most: connect, probe and response timeouts are all well below that */
    t0 = hd_loop_update_now(f->loop);
    while (!r.done && hd_loop_update_now(f->loop) - t0 < 3000) {
        int fd;
        hd_loop_run_once(f->loop, 1); /* the fake server lives in this thread: poll it often */
        while (nfd < 4 && (fd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
            memset(&conns[nfd], 0, sizeof(conns[nfd]));
            conns[nfd++].fd = fd;
        }
        for (int k = 0; k < nfd; k++)
            serve(&conns[k], data, size);
    }
    if (!r.done) {
        fprintf(stderr, "fuzz_http_client: request not completed within 3 s\n");
        abort();
    }
    if ((r.status == 0) == (r.error == 0))
        abort(); /* exactly one of status and error */
    for (int k = 0; k < nfd; k++)
        close(conns[k].fd);
    return 0;
}

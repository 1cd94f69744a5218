/* Unit tests of the client's contract that need no external server: on_done never runs inside
 * hd_http_submit, exactly once per accepted request, CANCELLED after shutdown, the address
 * guard, submit validation, and per-origin accounting. A listening socket that never accepts
 * stands in for a server that says nothing. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns.h"
#include "err.h"
#include "http.h"
#include "loop.h"
#include "t.h"
#include "t_srv.h"

struct ctx {
    int in_submit;
    int called_in_submit;
    int done;
    int errs[8];
    int nerr;
};

static void on_done(const struct hd_http_resp *resp, void *ud)
{
    struct ctx *x = ud;
    if (x->in_submit)
        x->called_in_submit++;
    x->done++;
    if (x->nerr < 8)
        x->errs[x->nerr++] = resp->error;
}

static int listen_silent(uint16_t *port)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 16) != 0)
        T_FAIL("listen");
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* ---- an HTTP/1.1-only server: h2c prior knowledge is answered 400 and the connection closed;
 * HTTP/1.1 requests are answered 202 ---- */

static _Atomic int h1_pri, h1_posts;

static void h1_take(int c)
{
    static const char bad[] = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                              "Content-Length: 0\r\n\r\n";
    static const char ok[] = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";
    struct timeval tv = {2, 0};
    char buf[8192], *end;

    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (;;) {
        size_t n = t_srv_read_request(c, buf, sizeof(buf), &end);
        if (n == 0) {
            if (memcmp(buf, "PRI", 3) == 0) {
                atomic_fetch_add(&h1_pri, 1);
                if (write(c, bad, sizeof(bad) - 1) < 0)
                    break;
            }
            break;
        }
        if (strncmp(buf, "POST /inbox HTTP/1.1\r\n", 22) == 0)
            atomic_fetch_add(&h1_posts, 1);
        if (write(c, ok, sizeof(ok) - 1) < 0)
            break;
    }
    close(c);
}

struct h1ctx {
    int done, err, status, version;
};

static void h1_done(const struct hd_http_resp *resp, void *ud)
{
    struct h1ctx *x = ud;
    x->done++;
    x->err = resp->error;
    x->status = resp->status;
    x->version = resp->http_version;
}

static void run(struct hd_loop *loop, int rounds)
{
    for (int i = 0; i < rounds; i++)
        hd_loop_run_once(loop, 10);
}

int main(void)
{
    struct hd_loop *loop;
    struct hd_dns *dns;
    struct hd_dns_opts dopts;
    struct hd_http_opts opts;
    struct hd_http_client *c;
    struct ctx x;
    uint16_t port;
    int lfd, rv, ver;
    unsigned maxs;

    rv = hd_loop_new(&loop, 256);
    if (rv < 0)
        T_SKIP("io_uring unavailable: %s", hd_strerror(rv));
    hd_dns_opts_default(&dopts);
    T_EQ_INT(hd_dns_new(&dns, loop, &dopts), 0);
    hd_http_opts_default(&opts);
    T_EQ_INT(opts.max_streams_per_host, 100);
    T_EQ_INT(opts.max_h1_conns_per_host, 6);
    T_EQ_INT(opts.max_body, 4096);
    T_EQ_INT(hd_http_client_new(&c, loop, &opts), HD_ERR_INVALID); /* no dns */
    opts.dns = dns;
    opts.allow_private = 1;
    T_EQ_INT(hd_http_client_new(&c, loop, &opts), 0);

    lfd = listen_silent(&port);
    struct hd_http_header hs[] = {{"content-type", "application/activity+json"}};
    struct hd_http_req req = {.tls = 0, .host = "127.0.0.1", .port = port,
                              .authority = "127.0.0.1", .method = "POST", .path = "/inbox",
                              .headers = hs, .nheaders = 1, .body = (const uint8_t *)"{}",
                              .body_len = 2, .on_done = on_done, .user_data = &x};
    memset(&x, 0, sizeof(x));

    /* Invalid requests are refused synchronously and never call back. */
    {
        struct hd_http_req bad = req;
        struct hd_http_header evil[] = {{"x-a", "1\r\nInjected: yes"}};
        bad.headers = evil;
        T_EQ_INT(hd_http_submit(c, &bad), HD_ERR_INVALID);
        bad = req;
        bad.on_done = NULL;
        T_EQ_INT(hd_http_submit(c, &bad), HD_ERR_INVALID);
        bad = req;
        bad.path = "inbox";
        T_EQ_INT(hd_http_submit(c, &bad), HD_ERR_INVALID);
    }

    /* Accepted requests complete later, never inside submit. */
    x.in_submit = 1;
    for (int i = 0; i < 3; i++)
        T_EQ_INT(hd_http_submit(c, &req), 0);
    x.in_submit = 0;
    T_EQ_INT(x.done, 0);
    T_EQ_INT(hd_http_inflight(c, NULL, 0, 0), 3);
    T_EQ_INT(hd_http_inflight(c, "127.0.0.1", port, 0), 3);
    T_EQ_INT(hd_http_inflight(c, "127.0.0.1", port, 1), 0);
    run(loop, 20); /* connected into the backlog, h2c preface sent, nobody answers */
    T_EQ_INT(x.done, 0);
    T_EQ_INT(hd_http_origin_info(c, "127.0.0.1", port, 0, &ver, &maxs), 0);
    T_EQ_INT(ver, 0);
    T_EQ_INT(hd_http_origin_info(c, "nowhere", 1, 0, &ver, &maxs), HD_ERR_NOT_FOUND);
    T_OK(!hd_http_client_idle(c));

    /* Shutdown: everything pending completes with CANCELLED, once. */
    hd_http_client_shutdown(c);
    T_EQ_INT(x.done, 0);
    for (int i = 0; i < 200 && !hd_http_client_idle(c); i++)
        hd_loop_run_once(loop, 10);
    T_OK(hd_http_client_idle(c));
    T_EQ_INT(x.done, 3);
    T_EQ_INT(x.called_in_submit, 0);
    for (int i = 0; i < 3; i++)
        T_EQ_INT(x.errs[i], HD_ERR_CANCELLED);
    run(loop, 5);
    T_EQ_INT(x.done, 3);
    hd_http_client_free(c);

    /* The address guard refuses loopback unless allowed, and says so through on_done. */
    opts.allow_private = 0;
    T_EQ_INT(hd_http_client_new(&c, loop, &opts), 0);
    memset(&x, 0, sizeof(x));
    x.in_submit = 1;
    T_EQ_INT(hd_http_submit(c, &req), 0);
    x.in_submit = 0;
    for (int i = 0; i < 100 && x.done < 1; i++)
        hd_loop_run_once(loop, 10);
    T_EQ_INT(x.done, 1);
    T_EQ_INT(x.called_in_submit, 0);
    T_EQ_INT(x.errs[0], HD_ERR_PRIVATE_ADDR);

    /* Response (queue) deadline with a silent server: h2c probe never answered -> falls back,
     * h1 request never answered -> TIMEOUT_RESPONSE. */
    hd_http_client_shutdown(c);
    for (int i = 0; i < 200 && !hd_http_client_idle(c); i++)
        hd_loop_run_once(loop, 10);
    hd_http_client_free(c);
    opts.allow_private = 1;
    opts.tls_timeout_ms = 100; /* also bounds the h2c probe */
    opts.response_timeout_ms = 150;
    T_EQ_INT(hd_http_client_new(&c, loop, &opts), 0);
    memset(&x, 0, sizeof(x));
    T_EQ_INT(hd_http_submit(c, &req), 0);
    for (int i = 0; i < 300 && x.done < 1; i++)
        hd_loop_run_once(loop, 10);
    T_EQ_INT(x.done, 1);
    T_OK(x.errs[0] == HD_ERR_TIMEOUT_RESPONSE);
    T_EQ_INT(hd_http_origin_info(c, "127.0.0.1", port, 0, &ver, &maxs), 0);
    T_EQ_INT(ver, 1); /* silent to the preface: treated as no h2c */

    /* Many origins (the table grows past its first 64 buckets): each request on a closed
     * port completes with an error (HD_ERR_CONNECT), per-origin accounting stays exact. */
    {
        struct ctx many;
        struct hd_http_req r = req;
        memset(&many, 0, sizeof(many));
        r.user_data = &many;
        for (uint16_t p = 1; p <= 300; p++) {
            r.port = p;
            T_EQ_INT(hd_http_submit(c, &r), 0);
        }
        T_EQ_INT(hd_http_inflight(c, "127.0.0.1", 7, 0), 1);
        for (int i = 0; i < 500 && many.done < 300; i++)
            hd_loop_run_once(loop, 10);
        T_EQ_INT(many.done, 300);
        T_EQ_INT(hd_http_inflight(c, NULL, 0, 0), 0);
        T_EQ_INT(hd_http_inflight(c, "127.0.0.1", 7, 0), 0);
        for (int i = 0; i < 8; i++) /* ports 1..8: nothing listens there on a sane host */
            T_OK(many.errs[i] == HD_ERR_CONNECT || many.errs[i] == HD_ERR_PROTOCOL);
        /* Origins with no connection and nothing to do are dropped; the one known to speak
         * HTTP/1.1 only (the silent server above) is kept, with that answer. */
        {
            struct hd_http_stats st;
            hd_http_stats(c, &st);
            for (int i = 0; i < 200 && st.conns_open; i++) {
                hd_loop_run_once(loop, 10);
                hd_http_stats(c, &st);
            }
            T_EQ_INT(st.conns_open, 0);
            T_OK(st.origins_freed >= 299);
            T_OK(st.origins <= 2);
            T_EQ_INT(hd_http_origin_info(c, "127.0.0.1", 7, 0, &ver, &maxs), HD_ERR_NOT_FOUND);
            T_EQ_INT(hd_http_origin_info(c, "127.0.0.1", port, 0, &ver, &maxs), 0);
            T_EQ_INT(ver, 1);
        }
    }

    /* h2c goes out at once, requests with the preface (no wait for the server's SETTINGS).
     * An HTTP/1.1-only server answers that with a 400: the request goes back as never
     * processed, out again at once over HTTP/1.1, delivered exactly once; the origin is
     * remembered as HTTP/1.1. */
    {
        struct t_srv h1s;
        struct h1ctx hx;
        struct hd_http_req r = req;
        struct hd_http_stats st0, st1;

        memset(&hx, 0, sizeof(hx));
        t_srv_start(&h1s, h1_take);
        r.port = h1s.port;
        r.on_done = h1_done;
        r.user_data = &hx;
        hd_http_stats(c, &st0);
        T_EQ_INT(hd_http_submit(c, &r), 0);
        for (int i = 0; i < 300 && hx.done < 1; i++)
            hd_loop_run_once(loop, 10);
        T_EQ_INT(hx.done, 1);
        T_EQ_INT(hx.err, 0);
        T_EQ_INT(hx.status, 202);
        T_EQ_INT(hx.version, 1);
        T_EQ_INT(atomic_load(&h1_pri), 1);
        T_EQ_INT(atomic_load(&h1_posts), 1);
        T_EQ_INT(hd_http_origin_info(c, "127.0.0.1", h1s.port, 0, &ver, &maxs), 0);
        T_EQ_INT(ver, 1);
        hd_http_stats(c, &st1);
        T_EQ_INT(st1.conns_h2 - st0.conns_h2, 0); /* the refused one never counted as h2, */
        T_EQ_INT(st1.conns_h1 - st0.conns_h1, 1); /* nor as HTTP/1.1: only the one after */
        /* The next request goes straight to HTTP/1.1: no second h2c attempt. */
        hx.done = 0;
        T_EQ_INT(hd_http_submit(c, &r), 0);
        for (int i = 0; i < 300 && hx.done < 1; i++)
            hd_loop_run_once(loop, 10);
        T_EQ_INT(hx.done, 1);
        T_EQ_INT(hx.status, 202);
        T_EQ_INT(atomic_load(&h1_pri), 1);
        T_EQ_INT(atomic_load(&h1_posts), 2);
        hd_http_client_shutdown(c);
        for (int i = 0; i < 200 && !hd_http_client_idle(c); i++)
            hd_loop_run_once(loop, 10);
        t_srv_stop(&h1s);
    }

    hd_http_client_shutdown(c);
    for (int i = 0; i < 200 && !hd_http_client_idle(c); i++)
        hd_loop_run_once(loop, 10);
    T_OK(hd_http_client_idle(c));
    hd_http_client_free(c);
    close(lfd);
    hd_dns_free(dns);
    hd_loop_free(loop);
    T_DONE();
}

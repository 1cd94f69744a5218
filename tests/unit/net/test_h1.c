/* Unit tests of the HTTP/1.1 response parser and request writer (engine/h1.c). */
#include <stdint.h>
#include <string.h>

#include "err.h"
#include "h1.h"
#include "t.h"

struct got {
    int nheaders;
    char retry_after[64];
    size_t body_len;
    char body[256];
};

static int on_header(const char *name, size_t nlen, const char *value, size_t vlen, int truncated,
                     void *ud)
{
    struct got *g = ud;
    g->nheaders++;
    if (nlen == 11 && memcmp(name, "retry-after", 11) == 0 && vlen < sizeof(g->retry_after)) {
        memcpy(g->retry_after, value, vlen);
        g->retry_after[vlen] = 0;
    }
    return 0;
}

static void on_body(const uint8_t *data, size_t len, void *ud)
{
    struct got *g = ud;
    size_t room = sizeof(g->body) - 1 - (g->body_len < sizeof(g->body) - 1 ? g->body_len : 0);
    size_t n = len < room ? len : room;
    if (g->body_len < sizeof(g->body) - 1)
        memcpy(g->body + g->body_len, data, n);
    g->body_len += len;
    g->body[g->body_len < sizeof(g->body) - 1 ? g->body_len : sizeof(g->body) - 1] = 0;
}

/* Parses s fed in pieces of `step` bytes; returns the final parse result. */
static int parse_steps(struct hd_h1_parser *p, struct got *g, const char *s, size_t step,
                       size_t maxhdr, int head, size_t *used)
{
    size_t len = strlen(s), off = 0, c;
    int rv = 0;

    memset(g, 0, sizeof(*g));
    hd_h1_parser_init(p, maxhdr, head, on_header, on_body, g);
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        rv = hd_h1_parse(p, (const uint8_t *)s + off, n, &c);
        off += c;
        if (rv != 0)
            break;
    }
    if (used)
        *used = off;
    return rv;
}

static void check_all_steps(const char *s, int want_rv, int want_status, const char *want_body,
                            int want_keepalive)
{
    static struct hd_h1_parser p;
    struct got g;
    size_t steps[] = {1, 2, 3, 7, 64, 100000};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        int rv = parse_steps(&p, &g, s, steps[i], 65536, 0, NULL);
        T_EQ_INT(rv, want_rv);
        if (want_rv == 1) {
            T_EQ_INT(p.status, want_status);
            T_EQ_STR(g.body, want_body);
            T_EQ_INT(p.keep_alive, want_keepalive);
        }
    }
}

/* Outcome of parsing one input; must not depend on how the input is split. */
struct outcome {
    int rv, eof, status, keep_alive;
    size_t used, body_len;
    uint32_t body_hash;
};

struct fz {
    size_t body_len;
    uint32_t hash;
};

static void fz_body(const uint8_t *data, size_t len, void *ud)
{
    struct fz *f = ud;
    for (size_t i = 0; i < len; i++)
        f->hash = (f->hash ^ data[i]) * 16777619u;
    f->body_len += len;
}

static uint32_t rnd_state = 12345;
static uint32_t rnd(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return rnd_state >> 8;
}

static struct outcome parse_split(const uint8_t *in, size_t len, int random_splits)
{
    static struct hd_h1_parser p;
    struct fz f = {0, 2166136261u};
    struct outcome o;
    size_t off = 0, c;
    int rv = 0;

    memset(&o, 0, sizeof(o));
    hd_h1_parser_init(&p, 300, 0, NULL, fz_body, &f);
    while (off < len) {
        size_t n = random_splits ? 1 + rnd() % 13 : len - off;
        if (n > len - off)
            n = len - off;
        rv = hd_h1_parse(&p, in + off, n, &c);
        if (rv < 0)
            break;
        off += c;
        if (rv != 0)
            break;
    }
    o.rv = rv;
    o.eof = rv == 0 ? hd_h1_parse_eof(&p) : 0;
    o.status = p.status;
    o.keep_alive = p.keep_alive;
    o.used = rv == 1 ? off : 0;
    o.body_len = f.body_len;
    o.body_hash = f.hash;
    return o;
}

/* Mutates valid and invalid responses and checks that the outcome never depends on how the
 * bytes are split across reads (the parser is byte-exact incremental) and that nothing
 * crashes (run under the sanitizers). */
static void differential_fuzz(void)
{
    static const char *const seeds[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No\r\n\r\n",
        "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nbody until close",
        "HTTP/1.1 429 Slow\r\nRetry-After: 5\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    };
    uint8_t buf[512];

    for (int iter = 0; iter < 20000; iter++) {
        const char *seed = seeds[rnd() % (sizeof(seeds) / sizeof(seeds[0]))];
        size_t len = strlen(seed);
        memcpy(buf, seed, len);
        for (int m = rnd() % 4; m >= 0; m--) {
            size_t pos = len ? rnd() % len : 0;
            switch (rnd() % 4) {
            case 0: /* flip */
                buf[pos] = (uint8_t)rnd();
                break;
            case 1: /* insert */
                if (len < sizeof(buf)) {
                    memmove(buf + pos + 1, buf + pos, len - pos);
                    buf[pos] = "\r\n:0 aF;"[rnd() % 9];
                    len++;
                }
                break;
            case 2: /* delete */
                if (len > 1) {
                    memmove(buf + pos, buf + pos + 1, len - pos - 1);
                    len--;
                }
                break;
            default: /* truncate */
                len = pos;
                break;
            }
        }
        struct outcome a = parse_split(buf, len, 0), b = parse_split(buf, len, 1);
        if (a.rv != b.rv || a.eof != b.eof || a.status != b.status ||
            a.keep_alive != b.keep_alive || a.used != b.used || a.body_len != b.body_len ||
            a.body_hash != b.body_hash)
            T_FAIL("iteration %d: outcome depends on read boundaries (rv %d/%d used %zu/%zu)",
                   iter, a.rv, b.rv, a.used, b.used);
        t_checks++;
    }
}

int main(void)
{
    static struct hd_h1_parser p;
    struct got g;
    size_t used;
    int rv;

    /* Content-Length */
    check_all_steps("HTTP/1.1 202 Accepted\r\nContent-Length: 5\r\nRetry-After: 120\r\n\r\nhello",
                    1, 202, "hello", 1);
    rv = parse_steps(&p, &g,
                     "HTTP/1.1 429 Too Many\r\nretry-after: 30\r\ncontent-length: 0\r\n\r\n",
                     5, 65536, 0, NULL);
    T_EQ_INT(rv, 1);
    T_EQ_STR(g.retry_after, "30");
    /* no reason phrase, bare LF line ends */
    check_all_steps("HTTP/1.1 200\nContent-Length: 2\n\nok", 1, 200, "ok", 1);
    /* chunked with extension and trailers */
    check_all_steps("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
                    1, 200, "hello world", 1);
    check_all_steps("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                    "A\r\n0123456789\r\n0\r\n\r\n",
                    1, 200, "0123456789", 1);
    /* interim 100 Continue before the real response */
    check_all_steps("HTTP/1.1 100 Continue\r\n\r\n"
                    "HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx",
                    1, 201, "x", 1);
    /* 204 and 304 have no body */
    check_all_steps("HTTP/1.1 204 No Content\r\n\r\n", 1, 204, "", 1);
    /* Connection: close */
    check_all_steps("HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n",
                    1, 200, "", 0);
    /* HTTP/1.0 defaults to close */
    check_all_steps("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\na", 1, 200, "a", 0);
    /* same Content-Length twice is fine */
    check_all_steps("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na", 1, 200,
                    "a", 1);
    /* TE and CL: TE wins, connection not reusable */
    check_all_steps("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "1\r\nz\r\n0\r\n\r\n",
                    1, 200, "z", 0);

    /* close-delimited body: incomplete until EOF */
    rv = parse_steps(&p, &g, "HTTP/1.1 200 OK\r\n\r\nabc", 2, 65536, 0, NULL);
    T_EQ_INT(rv, 0);
    T_EQ_INT(hd_h1_parse_eof(&p), 1);
    T_EQ_STR(g.body, "abc");
    T_EQ_INT(p.keep_alive, 0);
    /* HEAD: no body even with Content-Length */
    rv = parse_steps(&p, &g, "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", 3, 65536, 1, NULL);
    T_EQ_INT(rv, 1);

    /* lying Content-Length: more promised than sent -> EOF is a reset; nothing buffered */
    rv = parse_steps(&p, &g, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nshort", 4, 65536, 0,
                     NULL);
    T_EQ_INT(rv, 0);
    T_EQ_INT(p.remaining, 1000000 - 5);
    T_EQ_INT(hd_h1_parse_eof(&p), HD_ERR_RESET);
    /* less promised than sent: the response ends where CL says, extra bytes are left over */
    rv = parse_steps(&p, &g, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabcdef", 100, 65536, 0,
                     &used);
    T_EQ_INT(rv, 1);
    T_EQ_STR(g.body, "ab");
    T_EQ_INT(used, strlen("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab"));
    /* EOF inside headers */
    rv = parse_steps(&p, &g, "HTTP/1.1 200 OK\r\nContent-Le", 100, 65536, 0, NULL);
    T_EQ_INT(rv, 0);
    T_EQ_INT(hd_h1_parse_eof(&p), HD_ERR_RESET);

    /* malformed */
    const char *bad[] = {
        "HTTP/2.0 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1 600 Nope\r\n\r\n",
        "HTTP/1.1 101 Switching\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: empty\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: a\001b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1 x\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        for (size_t step = 1; step <= 1000; step *= 10) {
            rv = parse_steps(&p, &g, bad[i], step, 65536, 0, NULL);
            if (rv != HD_ERR_PROTOCOL)
                T_FAIL("bad[%zu] step %zu: rv %d", i, step, rv);
        }
    }

    /* oversized header block, also when made of one huge line */
    {
        static char big[70000];
        size_t n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nX-Big: ");
        memset(big + n, 'a', 66000);
        strcpy(big + n + 66000, "\r\n\r\n");
        rv = parse_steps(&p, &g, big, 4096, 65536, 0, NULL);
        T_EQ_INT(rv, HD_ERR_TOO_LARGE);
        /* under a bigger cap, the long value arrives truncated but parsing succeeds */
        strcpy(big + n + 66000, "\r\nContent-Length: 0\r\n\r\n");
        rv = parse_steps(&p, &g, big, 4096, 100000, 0, NULL);
        T_EQ_INT(rv, 1);
        T_EQ_INT(g.nheaders, 1);
        rv = parse_steps(&p, &g, "HTTP/1.1 200 OK\r\nA: b\r\nC: d\r\n\r\n", 3, 20, 0, NULL);
        T_EQ_INT(rv, HD_ERR_TOO_LARGE);
    }
    /* endless chunked body: parser keeps nothing, state stays bounded */
    {
        static char chunk[8192];
        memset(&g, 0, sizeof(g));
        hd_h1_parser_init(&p, 65536, 0, on_header, on_body, &g);
        const char *h = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        T_EQ_INT(hd_h1_parse(&p, (const uint8_t *)h, strlen(h), &used), 0);
        int n = snprintf(chunk, sizeof(chunk), "1000\r\n");
        memset(chunk + n, 'x', 4096);
        memcpy(chunk + n + 4096, "\r\n", 2);
        for (int i = 0; i < 1000; i++) {
            T_EQ_INT(hd_h1_parse(&p, (const uint8_t *)chunk, (size_t)n + 4098, &used), 0);
            T_EQ_INT(used, (size_t)n + 4098);
        }
        T_EQ_INT(g.body_len, 4096000);
    }

    /* request writer */
    {
        struct hd_http_header hs[] = {{"content-type", "application/activity+json"},
                                      {"signature", "keyId=\"k\""}};
        struct hd_http_req req = {.tls = 1, .host = "a.example", .port = 443,
                                  .authority = "a.example", .method = "POST",
                                  .path = "/inbox", .headers = hs, .nheaders = 2,
                                  .body = (const uint8_t *)"{}", .body_len = 2};
        uint8_t buf[1024];
        T_EQ_INT(hd_h1_check_request(&req), 0);
        rv = hd_h1_write_head(&req, buf, sizeof(buf));
        T_OK(rv > 0 && (size_t)rv <= hd_h1_head_size(&req));
        buf[rv] = 0;
        T_EQ_STR((char *)buf, "POST /inbox HTTP/1.1\r\nHost: a.example\r\n"
                              "content-type: application/activity+json\r\n"
                              "signature: keyId=\"k\"\r\nContent-Length: 2\r\n\r\n");
        T_EQ_INT(hd_h1_write_head(&req, buf, 10), HD_ERR_FULL);
        hs[0].value = "a\r\nInjected: 1";
        T_EQ_INT(hd_h1_check_request(&req), HD_ERR_INVALID);
        hs[0].value = "ok";
        req.path = "/a b";
        T_EQ_INT(hd_h1_check_request(&req), HD_ERR_INVALID);
        req.path = "/inbox";
        T_EQ_INT(hd_h1_check_request(&req), 0);
        hs[0].name = "Content-Type";
        T_EQ_INT(hd_h1_check_request(&req), HD_ERR_INVALID);
        hs[0].name = "host";
        T_EQ_INT(hd_h1_check_request(&req), HD_ERR_INVALID);
        hs[0].name = "content-length";
        T_EQ_INT(hd_h1_check_request(&req), HD_ERR_INVALID);
        hs[0].name = "transfer-encoding";
        T_EQ_INT(hd_h1_check_request(&req), HD_ERR_INVALID);
        hs[0].name = "bad name";
        T_EQ_INT(hd_h1_check_request(&req), HD_ERR_INVALID);
    }
    differential_fuzz();
    T_DONE();
}

/* HTTP/1.1 server side: keep-alive, pipelining (answered in order, one at a time),
 * Content-Length and chunked bodies, Expect: 100-continue, and a 505 for an h2 preface. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn.h"
#include "h1.h"
#include "handle.h"
#include "req.h"

#define H1_BUF_CAP (FS_MAX_HEADER_BYTES + FS_MAX_BODY + 64 * 1024)
#define H1_PAUSE_AT (64 * 1024) /* stop reading while an answer is pending and this is buffered */

struct fs_h1 {
    uint8_t *buf;
    size_t len, cap;
    struct fs_req req;
    struct fs_resp resp;
    struct hd_timer timer;
    struct fs_conn *c;
    int busy; /* a request is decided and its answer not yet written */
    int keepalive;
    int sent_continue;
    unsigned nreq;
};

static void on_h1_timer(struct hd_timer *t);

static struct fs_h1 *h1_of(const struct fs_conn *c)
{
    return c->pstate;
}

static int h1_start(struct fs_conn *c)
{
    struct fs_h1 *h = calloc(1, sizeof(*h));

    if (!h)
        return -ENOMEM;
    h->c = c;
    fs_req_init(&h->req);
    hd_timer_init(&h->timer, on_h1_timer);
    c->pstate = h;
    return 0;
}

static void h1_free(struct fs_conn *c)
{
    struct fs_h1 *h = h1_of(c);

    if (!h)
        return;
    hd_timer_disarm(c->w->loop, &h->timer);
    fs_req_fini(&h->req);
    fs_resp_fini(&h->resp);
    free(h->buf);
    free(h);
    c->pstate = NULL;
}

static int h1_busy(const struct fs_conn *c)
{
    return h1_of(c) && h1_of(c)->busy;
}

static const char *reason(int s)
{
    switch (s) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Status";
    }
}

static void write_response(struct fs_conn *c, const struct fs_resp *r, int close)
{
    char buf[4096];
    int n = snprintf(buf, sizeof(buf), "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n", r->status,
                     reason(r->status), r->body_len);
    if (r->ctype)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "Content-Type: %s\r\n", r->ctype);
    if (r->retry_after[0])
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "Retry-After: %s\r\n", r->retry_after);
    if (r->accept_signature)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "Accept-Signature: %s\r\n",
                      r->accept_signature);
    if (close)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "Connection: close\r\n");
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, "\r\n");
    /* One write (so one TLS record) when the body fits. */
    if (r->body_len <= sizeof(buf) - (size_t)n) {
        if (r->body_len)
            memcpy(buf + n, r->body, r->body_len);
        conn_write(c, buf, (size_t)n + r->body_len);
        return;
    }
    if (conn_write(c, buf, (size_t)n) == 0)
        conn_write(c, r->body, r->body_len);
}

/* An answer to a request we could not parse: always closes the connection. */
static void answer_error(struct fs_conn *c, int status, const char *msg)
{
    struct fs_resp r;

    memset(&r, 0, sizeof(r));
    r.status = status;
    r.body = (char *)msg;
    r.body_len = strlen(msg);
    r.ctype = "text/plain";
    FS_LOCK(c->srv);
    c->srv->stats.malformed++;
    c->srv->stats.by_status[status]++;
    FS_UNLOCK(c->srv);
    write_response(c, &r, 1);
    c->close_after_flush = 1;
}

/* Writes the decided answer of the current request; returns with busy cleared unless the
 * answer is a hang. */
static void finish(struct fs_conn *c)
{
    struct fs_h1 *h = h1_of(c);
    const struct fs_profile *p = h->resp.host ? h->resp.host->prof : NULL;
    int close;

    switch (h->resp.act) {
    case FS_ACT_HANG:
        return;
    case FS_ACT_RESET:
    case FS_ACT_CLOSE:
        /* Earlier pipelined answers already written still leave; this one never does. */
        h->busy = 0;
        conn_abort(c);
        return;
    case FS_ACT_RESPOND:
        break;
    }
    close = !h->keepalive || (p && p->goaway_after && h->nreq >= p->goaway_after);
    write_response(c, &h->resp, close);
    fs_commit(c->srv, &h->resp, FS_PROTO_H1);
    fs_resp_fini(&h->resp);
    h->busy = 0;
    if (close) {
        if (p && p->goaway_after && h->keepalive)
            FS_COUNT(c->srv, c->srv->stats.goaways++);
        c->close_after_flush = 1;
    }
}

static void dispatch(struct fs_conn *c)
{
    struct fs_h1 *h = h1_of(c);

    h->req.proto = FS_PROTO_H1;
    h->req.tls = c->ssl != NULL;
    fs_handle(c->w, &h->req, &h->resp);
    h->nreq++;
    h->busy = 1;
    if (h->resp.delay_ms > 0 && h->resp.act != FS_ACT_HANG) {
        hd_timer_arm(c->w->loop, &h->timer, hd_loop_now_ms(c->w->loop) + h->resp.delay_ms);
        return;
    }
    finish(c);
}

static int parse_size(const uint8_t *p, size_t n, size_t *out)
{
    size_t v = 0;

    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9' || v > FS_MAX_BODY * 16)
            return -1;
        v = v * 10 + (size_t)(p[i] - '0');
    }
    *out = v;
    return 0;
}

/* Decodes a chunked body starting at p. Returns bytes consumed, 0 if incomplete, -1 if bad,
 * -2 if over the body cap. */
static ssize_t dechunk(struct fs_req *r, const uint8_t *p, size_t len)
{
    size_t i = 0;

    r->body_len = 0;
    for (;;) {
        const uint8_t *eol = memmem(p + i, len - i, "\r\n", 2);
        size_t sz = 0, digits = 0;
        if (!eol)
            return len - i > 64 ? -1 : 0;
        while (p + i + digits < eol) {
            uint8_t ch = p[i + digits];
            int d = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (d < 0)
                break; /* chunk extensions follow */
            if (sz > FS_MAX_BODY)
                return -2;
            sz = sz * 16 + (size_t)d;
            digits++;
        }
        if (digits == 0)
            return -1;
        i = (size_t)(eol - p) + 2;
        if (sz == 0) {
            /* Trailers, then the empty line. */
            for (;;) {
                eol = memmem(p + i, len - i, "\r\n", 2);
                if (!eol)
                    return 0;
                if (eol == p + i)
                    return (ssize_t)(i + 2);
                i = (size_t)(eol - p) + 2;
            }
        }
        if (sz > FS_MAX_BODY || r->body_len + sz > FS_MAX_BODY)
            return -2;
        if (len - i < sz + 2)
            return 0;
        if (fs_req_body(r, p + i, sz) < 0)
            return -1;
        if (p[i + sz] != '\r' || p[i + sz + 1] != '\n')
            return -1;
        i += sz + 2;
    }
}

/* Parses one request from the buffer. Returns 1 when one was dispatched, 0 when more input
 * is needed or the connection is finishing. */
static int parse_one(struct fs_conn *c)
{
    struct fs_h1 *h = h1_of(c);
    struct fs_req *r = &h->req;
    const uint8_t *b = h->buf, *end, *line, *le;
    size_t hdr_len, clen = 0, consumed;
    int chunked = 0, has_clen = 0, expect = 0, v11;
    const uint8_t *sp1, *sp2;

    end = h->len ? memmem(b, h->len < FS_MAX_HEADER_BYTES + 4 ? h->len : FS_MAX_HEADER_BYTES + 4,
                          "\r\n\r\n", 4)
                 : NULL;
    if (!end) {
        if (h->len > FS_MAX_HEADER_BYTES) {
            answer_error(c, 431, "request headers too large\n");
            FS_COUNT(c->srv, c->srv->stats.too_large++);
        }
        return 0;
    }
    hdr_len = (size_t)(end - b) + 4;
    le = memmem(b, hdr_len, "\r\n", 2);
    sp1 = memchr(b, ' ', (size_t)(le - b));
    sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(le - sp1 - 1)) : NULL;
    if (!sp1 || !sp2 || sp1 == b || sp2 == sp1 + 1) {
        answer_error(c, 400, "bad request line\n");
        return 0;
    }
    if ((size_t)(le - sp2 - 1) == 8 && memcmp(sp2 + 1, "HTTP/2.0", 8) == 0) {
        /* An h2 prior-knowledge preface on an HTTP/1.1-only port. */
        FS_COUNT(c->srv, c->srv->stats.h1_preface_rejects++);
        answer_error(c, 505, "HTTP/2 is not spoken on this port\n");
        return 0;
    }
    if ((size_t)(le - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        answer_error(c, 400, "bad HTTP version\n");
        return 0;
    }
    v11 = sp2[8] == '1';
    h->keepalive = v11;
    fs_req_clear(r);
    fs_req_add(r, ":method", 7, (const char *)b, (size_t)(sp1 - b));
    fs_req_add(r, ":path", 5, (const char *)sp1 + 1, (size_t)(sp2 - sp1 - 1));
    for (line = le + 2; line < end + 2; line = le + 2) {
        const uint8_t *colon, *v, *ve;
        le = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        if (!le || le == line)
            break;
        colon = memchr(line, ':', (size_t)(le - line));
        if (!colon || colon == line || line[0] == ' ' || line[0] == '\t') {
            answer_error(c, 400, "bad header line\n");
            return 0;
        }
        v = colon + 1;
        while (v < le && (*v == ' ' || *v == '\t'))
            v++;
        ve = le;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t nl = (size_t)(colon - line), vl = (size_t)(ve - v);
        fs_req_add(r, (const char *)line, nl, (const char *)v, vl);
        if (nl == 14 && strncasecmp((const char *)line, "content-length", 14) == 0) {
            size_t prev = clen;
            if (parse_size(v, vl, &clen) < 0 || (has_clen && clen != prev)) {
                answer_error(c, 400, "bad content-length\n");
                return 0;
            }
            has_clen = 1;
        } else if (nl == 17 && strncasecmp((const char *)line, "transfer-encoding", 17) == 0) {
            chunked = vl >= 7 && strncasecmp((const char *)ve - 7, "chunked", 7) == 0;
            if (!chunked) {
                answer_error(c, 400, "unsupported transfer-encoding\n");
                return 0;
            }
        } else if (nl == 10 && strncasecmp((const char *)line, "connection", 10) == 0) {
            if (vl == 5 && strncasecmp((const char *)v, "close", 5) == 0)
                h->keepalive = 0;
            else if (vl == 10 && strncasecmp((const char *)v, "keep-alive", 10) == 0)
                h->keepalive = 1;
        } else if (nl == 6 && strncasecmp((const char *)line, "expect", 6) == 0) {
            expect = vl == 12 && strncasecmp((const char *)v, "100-continue", 12) == 0;
        }
    }
    if (chunked && has_clen) {
        answer_error(c, 400, "both content-length and chunked\n");
        return 0;
    }
    if (r->authority < 0 && v11) {
        answer_error(c, 400, "missing host\n");
        return 0;
    }
    if (has_clen && clen > FS_MAX_BODY) {
        FS_COUNT(c->srv, c->srv->stats.too_large++);
        answer_error(c, 413, "request body too large\n");
        return 0;
    }
    if (chunked) {
        ssize_t n = dechunk(r, b + hdr_len, h->len - hdr_len);
        if (n == -2) {
            FS_COUNT(c->srv, c->srv->stats.too_large++);
            answer_error(c, 413, "request body too large\n");
            return 0;
        }
        if (n < 0) {
            answer_error(c, 400, "bad chunked body\n");
            return 0;
        }
        if (n == 0)
            goto need_body;
        consumed = hdr_len + (size_t)n;
    } else {
        if (h->len - hdr_len < clen)
            goto need_body;
        r->body_len = 0;
        if (clen && fs_req_body(r, b + hdr_len, clen) < 0) {
            conn_close(c);
            return 0;
        }
        consumed = hdr_len + clen;
    }
    memmove(h->buf, h->buf + consumed, h->len - consumed);
    h->len -= consumed;
    h->sent_continue = 0;
    dispatch(c);
    return 1;
need_body:
    if (expect && !h->sent_continue) {
        h->sent_continue = 1;
        conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    return 0;
}

/* Parses and answers buffered requests. */
static void h1_process(struct fs_conn *c)
{
    /* Bounded by the buffer: each round consumes one request or stops. */
    while (!c->closing && h1_of(c) && !h1_of(c)->busy && !c->close_after_flush) {
        if (!parse_one(c))
            break;
    }
}

static int h1_input(struct fs_conn *c, const uint8_t *data, size_t len)
{
    struct fs_h1 *h = h1_of(c);

    if (c->close_after_flush)
        return 0; /* finishing: the rest is discarded */
    if (h->len + len > H1_BUF_CAP)
        return -1;
    if (h->len + len > h->cap) {
        size_t cap = h->cap ? h->cap : 16384;
        while (cap < h->len + len)
            cap *= 2;
        uint8_t *p = realloc(h->buf, cap);
        if (!p)
            return -1;
        h->buf = p;
        h->cap = cap;
    }
    memcpy(h->buf + h->len, data, len);
    h->len += len;
    h1_process(c);
    if (h1_of(c) && h1_of(c)->busy && h1_of(c)->len > H1_PAUSE_AT)
        c->read_paused = 1;
    return 0;
}

static void on_h1_timer(struct hd_timer *t)
{
    struct fs_h1 *h = container_of(t, struct fs_h1, timer);
    struct fs_conn *c = h->c;

    finish(c);
    if (!c->closing) {
        h1_process(c);
        if (h1_of(c) && !h1_of(c)->busy)
            conn_resume_read(c);
        conn_flush(c);
    }
    conn_check(c);
}

const struct fs_proto_ops fs_h1_proto = {
    .start = h1_start,
    .input = h1_input,
    .pull = NULL,
    .done = NULL,
    .busy = h1_busy,
    .free = h1_free,
};

/* The local ingest endpoint (see ingestsrv.h): one thread, one io_uring loop, HTTP/1.1. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "audience.h"
#include "err.h"
#include "h2srv.h"
#include "ingest.h"
#include "ingestsrv.h"
#include "metrics_render.h"
#include "log.h"
#include "loop.h"
#include "queue.h"

#define QUEUE_DEPTH_TTL_MS 250 /* how long a computed queue depth is reused */

struct hd_ingestsrv;

struct lsock {
    struct hd_loop_op op;
    struct hd_ingestsrv *srv;
    int fd;
    int accepting;
    char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct iconn {
    struct hd_loop_op op; /* one op at a time: recv or send (half duplex) */
    struct hd_timer idle;
    struct hd_ingestsrv *srv;
    struct iconn *prev, *next;
    int fd;
    int sending;      /* op is a send */
    int close_after;  /* close once the response is sent */
    int final_sent;   /* the response in out is final (not 100 Continue) */
    int continued;    /* 100 Continue already sent for the current request */
    size_t req_len;   /* bytes of in taken by the current request (headers + body) */
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off;
    size_t out_cap;      /* h2c: allocated size of out */
    struct hd_h2srv *h2; /* h2c (prior knowledge) once the client preface arrived */
};

struct hd_ingestsrv {
    struct hd_store *st;
    struct hd_metrics *metrics;
    struct hd_loop *loop;
    pthread_t tid;
    int started;
    atomic_int stop;
    atomic_int draining;
    _Atomic uint64_t max_queued;
    atomic_uint retry_after_s;
    size_t max_body;
    unsigned idle_timeout_ms;
    char *token;
    size_t token_len;
    struct lsock ls[HD_INGESTSRV_MAX_LISTEN];
    size_t nls;
    struct iconn *conns;
    size_t nconns;
    uint64_t depth, depth_at_ms; /* cached queued deliveries */
    int depth_valid;
};

/* A parsed request: pointers into conn->in. */
struct req {
    const char *method, *target;
    size_t method_len, target_len;
    const char *auth;
    size_t auth_len;
    const char *ctype;
    size_t ctype_len;
    size_t content_length;
    int keepalive, expect_continue, chunked, http10;
    const char *body;
};

int hd_ingestsrv_token_eq(const char *given, size_t given_len, const char *want, size_t want_len)
{
    /* Touch every byte of want whatever the input, so timing reveals neither the length of
     * a matching prefix nor (beyond the loop count) anything about the token. */
    volatile unsigned char acc = (unsigned char)(given_len != want_len);
    for (size_t i = 0; i < want_len; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        acc |= (unsigned char)(g ^ (unsigned char)want[i]);
    }
    return acc == 0;
}

int hd_ingestsrv_read_token(const char *path, char **token)
{
    char buf[HD_INGESTSRV_TOKEN_MAX + 2];
    FILE *f = fopen(path, "r");
    size_t n;
    char *t;

    if (!f)
        return -errno;
    if (!fgets(buf, sizeof(buf), f)) {
        fclose(f);
        return HD_ERR_INVALID;
    }
    fclose(f);
    n = strlen(buf);
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        n--;
    buf[n] = 0;
    if (n == 0 || n > HD_INGESTSRV_TOKEN_MAX)
        return HD_ERR_INVALID;
    t = strdup(buf);
    memset(buf, 0, sizeof(buf));
    if (!t)
        return -ENOMEM;
    *token = t;
    return 0;
}

/* ---------------------------------------------------------------- sockets */

static int bind_one(struct lsock *l, const char *spec)
{
    int fd, rc, one = 1;

    if (!strncmp(spec, "unix:", 5)) {
        struct sockaddr_un sa;
        struct stat sb;
        const char *path = spec + 5;
        if (!path[0] || strlen(path) >= sizeof(sa.sun_path))
            return HD_ERR_INVALID;
        memset(&sa, 0, sizeof(sa));
        sa.sun_family = AF_UNIX;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        /* replace a stale socket file, never any other kind of file */
        if (lstat(path, &sb) == 0) {
            if (!S_ISSOCK(sb.st_mode))
                return -EEXIST;
            unlink(path);
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
            rc = -errno;
            close(fd);
            return rc;
        }
        memcpy(l->unix_path, path, strlen(path) + 1);
    } else {
        struct sockaddr_storage ss;
        socklen_t sl;
        char host[64];
        const char *colon = strrchr(spec, ':');
        char *end;
        unsigned long port;
        size_t hl;

        if (!colon)
            return HD_ERR_INVALID;
        hl = (size_t)(colon - spec);
        if (hl >= sizeof(host))
            return HD_ERR_INVALID;
        memcpy(host, spec, hl);
        host[hl] = 0;
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (errno || *end || !colon[1] || port > 65535)
            return HD_ERR_INVALID;
        memset(&ss, 0, sizeof(ss));
        if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            host[hl - 1] = 0;
            if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
                return HD_ERR_INVALID;
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons((uint16_t)port);
            sl = sizeof(*s6);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
                return HD_ERR_INVALID;
            s4->sin_family = AF_INET;
            s4->sin_port = htons((uint16_t)port);
            sl = sizeof(*s4);
            if ((ntohl(s4->sin_addr.s_addr) >> 24) != 127)
                HD_LOG(HD_LOG_WARN, "ingest",
                       "msg=\"listening on a non-loopback address: the bearer token travels in "
                       "clear text\" listen=%s",
                       spec);
        }
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
            rc = -errno;
            close(fd);
            return rc;
        }
    }
    if (listen(fd, 128) != 0) {
        rc = -errno;
        close(fd);
        if (l->unix_path[0])
            unlink(l->unix_path);
        return rc;
    }
    l->fd = fd;
    return 0;
}

/* ---------------------------------------------------------------- connections */

static void conn_recv(struct iconn *c);
static void on_conn_op(struct hd_loop_op *op, int res);
static void on_accept(struct hd_loop_op *op, int res);

static void conn_free(struct iconn *c)
{
    struct hd_ingestsrv *s = c->srv;
    hd_timer_disarm(s->loop, &c->idle);
    if (c->fd >= 0)
        close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    hd_h2srv_free(c->h2);
    free(c->in);
    free(c->out);
    free(c);
}

static void on_idle(struct hd_timer *t)
{
    struct iconn *c = container_of(t, struct iconn, idle);
    /* The recv in flight completes with 0 and the connection is freed there. */
    shutdown(c->fd, SHUT_RDWR);
}

static void arm_accept(struct lsock *l)
{
    if (l->accepting || atomic_load(&l->srv->stop))
        return;
    l->op.cb = on_accept;
    if (hd_loop_accept(l->srv->loop, &l->op, l->fd) == 0)
        l->accepting = 1;
}

static void on_accept(struct hd_loop_op *op, int res)
{
    struct lsock *l = container_of(op, struct lsock, op);
    struct hd_ingestsrv *s = l->srv;
    struct iconn *c;

    l->accepting = 0;
    if (res < 0) {
        if (res != -ECANCELED)
            HD_LOG(HD_LOG_WARN, "ingest", "msg=\"accept failed\" err=\"%s\"", hd_strerror(res));
        arm_accept(l);
        return;
    }
    if (s->nconns >= HD_INGESTSRV_MAX_CONNS) {
        HD_LOG(HD_LOG_WARN, "ingest", "msg=\"too many connections; closing a new one\" max=%d",
               HD_INGESTSRV_MAX_CONNS);
        close(res);
        arm_accept(l);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        close(res);
        arm_accept(l);
        return;
    }
    c->fd = res;
    c->srv = s;
    hd_timer_init(&c->idle, on_idle);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    conn_recv(c);
    arm_accept(l);
}

static void conn_recv(struct iconn *c)
{
    struct hd_ingestsrv *s = c->srv;
    size_t cap_max = HD_INGESTSRV_HEADER_MAX + s->max_body;

    if (c->in_cap - c->in_len < 4096 && c->in_cap < cap_max) {
        size_t ncap = c->in_cap ? c->in_cap * 2 : 8192;
        char *p;
        if (ncap > cap_max)
            ncap = cap_max;
        p = realloc(c->in, ncap + 1);
        if (!p) {
            conn_free(c);
            return;
        }
        c->in = p;
        c->in_cap = ncap;
    }
    if (c->in_len >= c->in_cap) {
        conn_free(c); /* cannot happen: requests over the caps are answered first */
        return;
    }
    c->sending = 0;
    c->op.cb = on_conn_op;
    hd_timer_arm(s->loop, &c->idle, hd_loop_now_ms(s->loop) + s->idle_timeout_ms);
    if (hd_loop_recv(s->loop, &c->op, c->fd, c->in + c->in_len, c->in_cap - c->in_len) != 0)
        conn_free(c);
}

static void conn_send(struct iconn *c)
{
    struct hd_ingestsrv *s = c->srv;
    c->sending = 1;
    c->op.cb = on_conn_op;
    hd_timer_arm(s->loop, &c->idle, hd_loop_now_ms(s->loop) + s->idle_timeout_ms);
    if (hd_loop_send(s->loop, &c->op, c->fd, c->out + c->out_off, c->out_len - c->out_off) != 0)
        conn_free(c);
}

static const char *reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* An answer built by a handler, whatever protocol carries it (HTTP/1.1 or h2c). */
struct resp {
    struct hd_ingestsrv *srv;
    int status;
    const char *ctype;
    char *body;       /* malloc'd; owned */
    size_t blen;
    char extra[256];  /* extra header lines, "Name: value\r\n" each */
    int close_after;  /* HTTP/1.1: close the connection after this answer */
};

/* Sets the answer; takes ownership of body (malloc'd, may be NULL). */
static void respond(struct resp *c, int status, const char *ctype, char *body, size_t blen,
                    const char *extra_headers)
{
    free(c->body);
    c->status = status;
    c->ctype = ctype;
    c->body = body;
    c->blen = blen;
    snprintf(c->extra, sizeof(c->extra), "%s", extra_headers ? extra_headers : "");
}

/* HTTP/1.1: serializes o into the connection's output and sends it; frees o's body. */
static void h1_send(struct iconn *c, struct resp *o)
{
    char head[512];
    int hn;

    if (o->close_after)
        c->close_after = 1;
    if (!o->status) { /* a handler that answered nothing: a bug, but never hang the client */
        o->status = 500;
        o->ctype = "text/plain";
    }
    hn = snprintf(head, sizeof(head),
                  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
                  o->status, reason(o->status), o->ctype, o->blen, o->extra,
                  c->close_after ? "Connection: close\r\n" : "");
    free(c->out);
    c->out = malloc((size_t)hn + o->blen);
    if (!c->out) {
        free(o->body);
        o->body = NULL;
        conn_free(c);
        return;
    }
    memcpy(c->out, head, (size_t)hn);
    if (o->blen)
        memcpy(c->out + hn, o->body, o->blen);
    free(o->body);
    o->body = NULL;
    c->out_len = (size_t)hn + o->blen;
    c->out_off = 0;
    c->final_sent = 1;
    conn_send(c);
}

static void respond_json(struct resp *c, int status, json_t *o, const char *extra)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    size_t n;
    json_decref(o);
    if (!s) {
        c->close_after = 1;
        respond(c, 500, "text/plain", NULL, 0, NULL);
        return;
    }
    n = strlen(s);
    s[n] = '\n'; /* replaces the NUL: the body is length-delimited */
    respond(c, status, "application/json", s, n + 1, extra);
}

static void respond_error(struct resp *c, int status, const char *msg, const char *extra)
{
    respond_json(c, status, json_pack("{s:s}", "error", msg), extra);
}

/* ---------------------------------------------------------------- request parsing */

static int hdr_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

static int has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    for (size_t i = 0; i + tl <= n; i++)
        if (strncasecmp(v + i, tok, tl) == 0)
            return 1;
    return 0;
}

/* Returns 1 with r filled when a whole request is in c->in, 0 when more bytes are needed,
 * or an HTTP status (>= 400) to answer and close. */
static int authorized(struct hd_ingestsrv *s, const struct req *r);
static int path_is(const struct req *r, const char *path);

static int parse_request(struct iconn *c, struct req *r)
{
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    char *p, *eol, *sp1, *sp2;
    size_t hlen;

    memset(r, 0, sizeof(*r));
    if (!end)
        return c->in_len > HD_INGESTSRV_HEADER_MAX ? 431 : 0;
    hlen = (size_t)(end - c->in) + 4;
    if (hlen > HD_INGESTSRV_HEADER_MAX)
        return 431;
    p = c->in;
    eol = memmem(p, hlen, "\r\n", 2);
    sp1 = memchr(p, ' ', (size_t)(eol - p));
    sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp1 || !sp2 || sp1 == p || sp2 == sp1 + 1)
        return 400;
    r->method = p;
    r->method_len = (size_t)(sp1 - p);
    r->target = sp1 + 1;
    r->target_len = (size_t)(sp2 - sp1 - 1);
    if ((size_t)(eol - sp2 - 1) != 8 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
        return 505;
    r->http10 = sp2[8] == '0';
    r->keepalive = !r->http10;
    p = eol + 2;
    while (p < end + 2) {
        char *colon, *v, *ve;
        eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
        if (!eol)
            break;
        colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p)
            return 400;
        v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        ve = eol;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if (hdr_is(p, (size_t)(colon - p), "content-length")) {
            char *e;
            unsigned long long n;
            if (ve == v || !isdigit((unsigned char)*v))
                return 400;
            errno = 0;
            n = strtoull(v, &e, 10);
            if (errno || e != ve)
                return 400;
            if (n > c->srv->max_body)
                return 413;
            r->content_length = (size_t)n;
        } else if (hdr_is(p, (size_t)(colon - p), "transfer-encoding")) {
            r->chunked = 1;
        } else if (hdr_is(p, (size_t)(colon - p), "authorization")) {
            r->auth = v;
            r->auth_len = (size_t)(ve - v);
        } else if (hdr_is(p, (size_t)(colon - p), "content-type")) {
            r->ctype = v;
            r->ctype_len = (size_t)(ve - v);
        } else if (hdr_is(p, (size_t)(colon - p), "connection")) {
            if (has_token(v, (size_t)(ve - v), "close"))
                r->keepalive = 0;
            else if (has_token(v, (size_t)(ve - v), "keep-alive"))
                r->keepalive = 1;
        } else if (hdr_is(p, (size_t)(colon - p), "expect")) {
            r->expect_continue = has_token(v, (size_t)(ve - v), "100-continue");
        }
        p = eol + 2;
    }
    if (r->chunked)
        return 411;
    if (c->in_len < hlen + r->content_length) {
        /* Refuse a body nobody may send before buffering it (up to max_body). */
        if ((path_is(r, "/v1/activities") || path_is(r, "/v1/follows")) &&
            !authorized(c->srv, r))
            return 401;
        if (r->expect_continue && !c->continued)
            return 100;
        return 0;
    }
    r->body = c->in + hlen;
    c->req_len = hlen + r->content_length;
    return 1;
}

/* ---------------------------------------------------------------- handlers */

static int authorized(struct hd_ingestsrv *s, const struct req *r)
{
    if (!r->auth || r->auth_len < 7 || strncasecmp(r->auth, "Bearer ", 7) != 0)
        return 0;
    return hd_ingestsrv_token_eq(r->auth + 7, r->auth_len - 7, s->token, s->token_len);
}

static int path_is(const struct req *r, const char *path)
{
    size_t n = strlen(path), tl = r->target_len;
    const char *q = memchr(r->target, '?', tl);
    if (q)
        tl = (size_t)(q - r->target);
    return tl == n && memcmp(r->target, path, n) == 0;
}

static int method_is(const struct req *r, const char *m)
{
    return r->method_len == strlen(m) && memcmp(r->method, m, r->method_len) == 0;
}

/* Queued deliveries: the sum of the host records, recomputed at most every 250 ms. */
static int queue_depth(struct hd_ingestsrv *s, uint64_t *depth)
{
    uint64_t now = hd_loop_update_now(s->loop);
    struct hd_txn *txn;
    struct hd_host_sum sum;
    int rc;

    if (s->depth_valid && now - s->depth_at_ms < QUEUE_DEPTH_TTL_MS) {
        *depth = s->depth;
        return 0;
    }
    rc = hd_store_begin(s->st, 0, &txn);
    if (rc)
        return rc;
    rc = hd_host_sum(s->st, txn, &sum);
    hd_store_abort(txn);
    if (rc)
        return rc;
    s->depth = sum.queued;
    s->depth_at_ms = now;
    s->depth_valid = 1;
    *depth = sum.queued;
    return 0;
}

static int throttled(struct resp *c, int status, const char *msg)
{
    char extra[64];
    snprintf(extra, sizeof(extra), "Retry-After: %u\r\n", atomic_load(&c->srv->retry_after_s));
    hd_metrics_add(c->srv->metrics, HD_METRICS_SHARDS - 1, HD_MC_INGEST_THROTTLED, 1);
    respond_error(c, status, msg, extra);
    return 0;
}

struct line {
    const char *p;
    size_t n;
    size_t lineno;
};

/* Splits body into non-blank lines (or one "line" for a whole application/json body).
 * Returns the count, or -1 past HD_INGESTSRV_MAX_LINES. */
static long split_lines(const char *body, size_t len, int whole, struct line *out)
{
    long n = 0;
    size_t lineno = 0, i = 0;

    if (whole) {
        out[0].p = body;
        out[0].n = len;
        out[0].lineno = 1;
        return len ? 1 : 0;
    }
    while (i < len) {
        const char *nl = memchr(body + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - body) : len, b = i, t = e;
        lineno++;
        while (b < t && isspace((unsigned char)body[b]))
            b++;
        while (t > b && isspace((unsigned char)body[t - 1]))
            t--;
        if (t > b) {
            if (n >= HD_INGESTSRV_MAX_LINES)
                return -1;
            out[n].p = body + b;
            out[n].n = t - b;
            out[n].lineno = lineno;
            n++;
        }
        i = e + 1;
    }
    return n;
}

static int is_json_ctype(const struct req *r)
{
    return r->ctype && r->ctype_len >= 16 && strncasecmp(r->ctype, "application/json", 16) == 0 &&
           (r->ctype_len == 16 || r->ctype[16] == ';' || r->ctype[16] == ' ');
}

static void handle_activities(struct resp *c, const struct req *r)
{
    struct hd_ingestsrv *s = c->srv;
    struct line *lines = NULL;
    struct hd_ingest_result *res = NULL;
    struct hd_counters cn;
    struct hd_txn *txn;
    json_t *results, *o;
    uint64_t depth, now = hd_wall_ms();
    long n;
    size_t accepted = 0, dups = 0, refused = 0;
    int rc, status;

    if (atomic_load(&s->draining)) {
        throttled(c, 503, "shutting down; retry later");
        return;
    }
    rc = queue_depth(s, &depth);
    if (rc) {
        respond_error(c, 500, hd_strerror(rc), NULL);
        return;
    }
    if (atomic_load(&s->max_queued) && depth >= atomic_load(&s->max_queued)) {
        throttled(c, 429, "queue over its bound; retry later");
        return;
    }
    lines = malloc(sizeof(*lines) * HD_INGESTSRV_MAX_LINES);
    if (!lines) {
        respond_error(c, 500, "out of memory", NULL);
        return;
    }
    n = split_lines(r->body, r->content_length, is_json_ctype(r), lines);
    if (n < 0) {
        free(lines);
        respond_error(c, 413, "more than 10000 lines in one request", NULL);
        return;
    }
    if (n == 0) {
        free(lines);
        respond_error(c, 400, "empty body: expected an envelope or JSON lines", NULL);
        return;
    }
    res = calloc((size_t)n, sizeof(*res));
    if (!res) {
        free(lines);
        respond_error(c, 500, "out of memory", NULL);
        return;
    }
    rc = hd_store_begin(s->st, 1, &txn);
    if (!rc) {
        rc = hd_counters_get(s->st, txn, &cn);
        if (rc)
            hd_store_abort(txn);
    }
    for (long i = 0; rc == 0 && i < n; i++) {
        if (lines[i].n > HD_INGEST_MAX_LINE) {
            res[i].rc = HD_ERR_INVALID;
            snprintf(res[i].why, sizeof(res[i].why), "envelope over %u bytes", HD_INGEST_MAX_LINE);
            continue;
        }
        hd_ingest_envelope(s->st, txn, &cn, lines[i].p, lines[i].n, now, &res[i]);
        if (res[i].rc == HD_ERR_STORE || res[i].rc == -ENOMEM) {
            rc = res[i].rc;
            hd_store_abort(txn);
        }
    }
    if (rc == 0) {
        rc = hd_counters_put(s->st, txn, &cn);
        if (rc == 0)
            rc = hd_store_commit(txn); /* durable from here on: only now do we answer */
        else
            hd_store_abort(txn);
    }
    if (rc) {
        HD_LOG(HD_LOG_ERROR, "ingest", "msg=\"store write failed; nothing accepted\" err=\"%s\"",
               hd_strerror(rc));
        free(lines);
        free(res);
        respond_error(c, 503, "store write failed; nothing was accepted", NULL);
        return;
    }
    s->depth_valid = 0;
    results = json_array();
    for (long i = 0; i < n && results; i++) {
        if (res[i].rc == 0) {
            accepted++;
            o = json_pack("{s:I, s:b, s:I, s:I}", "line", (json_int_t)lines[i].lineno, "ok", 1,
                          "seq", (json_int_t)res[i].seq, "deliveries",
                          (json_int_t)res[i].deliveries);
            if (o && res[i].withheld)
                json_object_set_new(o, "withheld", json_true());
        } else if (res[i].rc == HD_ERR_DUPLICATE) {
            dups++;
            o = json_pack("{s:I, s:b, s:b, s:I}", "line", (json_int_t)lines[i].lineno, "ok", 1,
                          "duplicate", 1, "seq", (json_int_t)res[i].seq);
        } else {
            refused++;
            o = json_pack("{s:I, s:b, s:s}", "line", (json_int_t)lines[i].lineno, "ok", 0,
                          "error", res[i].why[0] ? res[i].why : hd_strerror(res[i].rc));
        }
        json_array_append_new(results, o);
    }
    hd_metrics_add(s->metrics, HD_METRICS_SHARDS - 1, HD_MC_INGEST_ACCEPTED, accepted);
    hd_metrics_add(s->metrics, HD_METRICS_SHARDS - 1, HD_MC_INGEST_DUPLICATE, dups);
    hd_metrics_add(s->metrics, HD_METRICS_SHARDS - 1, HD_MC_INGEST_REFUSED, refused);
    status = accepted ? 202 : refused ? 400 : 200;
    free(lines);
    free(res);
    respond_json(c, status,
                 json_pack("{s:I, s:I, s:I, s:o}", "accepted", (json_int_t)accepted, "duplicates",
                           (json_int_t)dups, "refused", (json_int_t)refused, "results",
                           results ? results : json_array()),
                 NULL);
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void handle_follows(struct resp *c, const struct req *r, int remove)
{
    struct hd_ingestsrv *s = c->srv;
    struct hd_follow_batch *b = NULL;
    struct hd_follow_stats st;
    struct line *lines;
    struct hd_txn *txn;
    long n;
    int rc;

    if (atomic_load(&s->draining)) {
        throttled(c, 503, "shutting down; retry later");
        return;
    }
    lines = malloc(sizeof(*lines) * HD_INGESTSRV_MAX_LINES);
    if (!lines || hd_follow_batch_new(&b) != 0) {
        free(lines);
        respond_error(c, 500, "out of memory", NULL);
        return;
    }
    memset(&st, 0, sizeof(st));
    n = split_lines(r->body, r->content_length, 0, lines);
    if (n <= 0) {
        respond_error(c, n < 0 ? 413 : 400, n < 0 ? "more than 10000 lines" : "empty body", NULL);
        goto out;
    }
    for (long i = 0; i < n; i++) {
        json_error_t jerr;
        json_t *o = json_loadb(lines[i].p, lines[i].n, JSON_REJECT_DUPLICATES, &jerr);
        struct hd_follow f;
        const char *why = NULL;
        char msg[300];
        if (!o || !json_is_object(o)) {
            json_decref(o);
            snprintf(msg, sizeof(msg), "line %zu: not a JSON object", lines[i].lineno);
            respond_error(c, 400, msg, NULL);
            goto out;
        }
        f.actor = jstr(o, "actor");
        f.follower = jstr(o, "follower");
        f.inbox = jstr(o, "inbox");
        f.shared_inbox = jstr(o, "shared_inbox");
        if (!f.actor || !f.follower || (!remove && !f.inbox)) {
            why = remove ? "actor and follower are required" : "actor, follower and inbox are "
                                                               "required";
            rc = HD_ERR_INVALID;
        } else {
            rc = hd_follow_batch_add(b, &f, remove, &why);
        }
        json_decref(o);
        if (rc) {
            snprintf(msg, sizeof(msg), "line %zu: %s", lines[i].lineno,
                     why ? why : hd_strerror(rc));
            respond_error(c, rc == HD_ERR_INVALID ? 400 : 500, msg, NULL);
            goto out;
        }
    }
    rc = hd_store_begin(s->st, 1, &txn);
    if (!rc) {
        rc = hd_follow_batch_apply(s->st, txn, b, &st);
        if (rc)
            hd_store_abort(txn);
        else
            rc = hd_store_commit(txn);
    }
    if (rc) {
        respond_error(c, 503, "store write failed; nothing was applied", NULL);
        goto out;
    }
    respond_json(c, 200,
                 json_pack("{s:I, s:I, s:I, s:I, s:I}", "added", (json_int_t)st.added, "updated",
                           (json_int_t)st.updated, "unchanged", (json_int_t)st.unchanged,
                           "removed", (json_int_t)st.removed, "absent", (json_int_t)st.absent),
                 NULL);
out:
    free(lines);
    hd_follow_batch_free(b);
}

static void handle_metrics(struct resp *c)
{
    char *out;
    size_t len;
    int rc = hd_metrics_render(c->srv->metrics, c->srv->st, &out, &len);
    if (rc) {
        respond_error(c, 500, hd_strerror(rc), NULL);
        return;
    }
    respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", out, len, NULL);
}

static void handle_hosts(struct resp *c, const struct req *r)
{
    const char *q = memchr(r->target, '?', r->target_len);
    size_t limit = 0;
    char *out;
    size_t len;
    int rc;

    if (q) {
        const char *l = memmem(q, r->target_len - (size_t)(q - r->target), "limit=", 6);
        if (l)
            limit = (size_t)strtoul(l + 6, NULL, 10);
    }
    rc = hd_metrics_render_hosts_json(c->srv->metrics, c->srv->st, limit, &out, &len);
    if (rc) {
        respond_error(c, 500, hd_strerror(rc), NULL);
        return;
    }
    respond(c, 200, "application/json", out, len, NULL);
}

static void dispatch(struct resp *c, const struct req *r)
{
    struct hd_ingestsrv *s = c->srv;
    int get = method_is(r, "GET");

    if (get && path_is(r, "/metrics")) {
        handle_metrics(c);
    } else if (get && path_is(r, "/v1/hosts")) {
        handle_hosts(c, r);
    } else if (get && path_is(r, "/healthz")) {
        char *b = strdup(atomic_load(&s->draining) ? "draining\n" : "ok\n");
        respond(c, b ? 200 : 500, "text/plain", b, b ? strlen(b) : 0, NULL);
    } else if (path_is(r, "/v1/activities") || path_is(r, "/v1/follows")) {
        int act = path_is(r, "/v1/activities");
        if (!(method_is(r, "POST") || (!act && method_is(r, "DELETE")))) {
            respond_error(c, 405, "method not allowed",
                          act ? "Allow: POST\r\n" : "Allow: POST, DELETE\r\n");
        } else if (!authorized(s, r)) {
            respond_error(c, 401, "a valid bearer token is required",
                          "WWW-Authenticate: Bearer realm=\"herald\"\r\n");
        } else if (act) {
            handle_activities(c, r);
        } else {
            handle_follows(c, r, method_is(r, "DELETE"));
        }
    } else {
        respond_error(c, 404, "not found", NULL);
    }
}

/* ---------------------------------------------------------------- h2c */

/* A complete h2 request: the same handlers as HTTP/1.1, answered on its stream. */
static void on_h2_request(struct hd_h2srv *h2, const struct hd_h2srv_req *hr, void *user_data)
{
    struct iconn *c = user_data;
    struct resp o;
    struct req r;

    memset(&o, 0, sizeof(o));
    memset(&r, 0, sizeof(r));
    o.srv = c->srv;
    r.method = hr->method;
    r.method_len = strlen(hr->method);
    r.target = hr->path;
    r.target_len = strlen(hr->path);
    if (hr->authorization[0]) {
        r.auth = hr->authorization;
        r.auth_len = strlen(hr->authorization);
    }
    if (hr->content_type[0]) {
        r.ctype = hr->content_type;
        r.ctype_len = strlen(hr->content_type);
    }
    r.body = hr->body;
    r.content_length = hr->body_len;
    if (hr->too_large)
        respond_error(&o, 413, "request body too large", NULL);
    else
        dispatch(&o, &r);
    if (!o.status) {
        o.status = 500;
        o.ctype = "text/plain";
    }
    hd_h2srv_respond(h2, hr->stream_id, o.status, o.ctype, o.extra, o.body, o.blen);
}

/* Sends whatever the session has ready; with nothing to send, reads (or closes when the
 * session is over). */
static void h2_flush(struct iconn *c)
{
    ssize_t n;

    c->out_len = 0;
    c->out_off = 0;
    n = hd_h2srv_pending(c->h2, &c->out, &c->out_len, &c->out_cap,
                         HD_INGESTSRV_HEADER_MAX + 2 * c->srv->max_body);
    if (n < 0) {
        conn_free(c);
        return;
    }
    if (c->out_len) {
        c->final_sent = 1;
        conn_send(c);
        return;
    }
    if (!hd_h2srv_alive(c->h2)) {
        conn_free(c);
        return;
    }
    conn_recv(c);
}

static void h2_process(struct iconn *c)
{
    if (!c->h2) {
        if (c->in_len < HD_H2SRV_PREFACE_LEN) {
            conn_recv(c); /* a partial preface: wait for the rest */
            return;
        }
        if (hd_h2srv_new(&c->h2, c->srv->max_body, on_h2_request, c) != 0) {
            conn_free(c);
            return;
        }
        /* out was sized by malloc for HTTP/1.1 answers: start a fresh h2 buffer */
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    if (hd_h2srv_recv(c->h2, c->in, c->in_len) != 0) {
        conn_free(c);
        return;
    }
    c->in_len = 0;
    h2_flush(c);
}

/* Handles whatever complete request is buffered; otherwise reads more. */
static void process(struct iconn *c)
{
    struct req r;
    struct resp o;
    int st;

    if (c->h2 || (c->in_len > 0 && memcmp(c->in, HD_H2SRV_PREFACE,
                                          c->in_len < HD_H2SRV_PREFACE_LEN ? c->in_len
                                                                           : HD_H2SRV_PREFACE_LEN) == 0)) {
        h2_process(c);
        return;
    }
    st = parse_request(c, &r);

    if (st == 0) {
        conn_recv(c);
        return;
    }
    if (st == 100) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        free(c->out);
        c->out = malloc(sizeof(cont) - 1);
        if (!c->out) {
            conn_free(c);
            return;
        }
        memcpy(c->out, cont, sizeof(cont) - 1);
        c->out_len = sizeof(cont) - 1;
        c->out_off = 0;
        c->final_sent = 0;
        c->continued = 1;
        conn_send(c);
        return;
    }
    memset(&o, 0, sizeof(o));
    o.srv = c->srv;
    if (st >= 400) {
        o.close_after = 1;
        if (st == 401)
            respond_error(&o, 401, "a valid bearer token is required",
                          "WWW-Authenticate: Bearer realm=\"herald\"\r\n");
        else
            respond_error(&o, st,
                          st == 411   ? "chunked request bodies are not supported: send Content-Length"
                          : st == 413 ? "request body too large"
                          : st == 431 ? "request headers too large"
                          : st == 505 ? "HTTP/1.x only"
                                      : "malformed request",
                          NULL);
        h1_send(c, &o);
        return;
    }
    if (!r.keepalive)
        c->close_after = 1;
    dispatch(&o, &r);
    h1_send(c, &o);
}

static void on_conn_op(struct hd_loop_op *op, int res)
{
    struct iconn *c = container_of(op, struct iconn, op);

    hd_timer_disarm(c->srv->loop, &c->idle);
    if (!c->sending) {
        if (res <= 0) {
            conn_free(c);
            return;
        }
        c->in_len += (size_t)res;
        process(c);
        return;
    }
    if (res < 0) {
        conn_free(c);
        return;
    }
    c->out_off += (size_t)res;
    if (c->out_off < c->out_len) {
        conn_send(c);
        return;
    }
    if (c->h2) {
        h2_flush(c);
        return;
    }
    if (!c->final_sent) {
        conn_recv(c); /* after 100 Continue: the body follows */
        return;
    }
    if (c->close_after) {
        conn_free(c);
        return;
    }
    /* Keep-alive: drop the answered request, keep any pipelined bytes. */
    memmove(c->in, c->in + c->req_len, c->in_len - c->req_len);
    c->in_len -= c->req_len;
    c->req_len = 0;
    c->continued = 0;
    process(c);
}

/* ---------------------------------------------------------------- thread */

static void *server_main(void *arg)
{
    struct hd_ingestsrv *s = arg;

    for (size_t i = 0; i < s->nls; i++)
        arm_accept(&s->ls[i]);
    while (!atomic_load(&s->stop)) {
        int rc = hd_loop_run_once(s->loop, 100);
        if (rc < 0 && rc != -EINTR && rc != -ETIME) {
            HD_LOG(HD_LOG_ERROR, "ingest", "msg=\"loop failed\" err=\"%s\"", hd_strerror(rc));
            break;
        }
    }
    return NULL;
}

void hd_ingestsrv_set_limits(struct hd_ingestsrv *s, uint64_t max_queued, unsigned retry_after_s)
{
    if (!s)
        return;
    atomic_store(&s->max_queued, max_queued);
    atomic_store(&s->retry_after_s, retry_after_s ? retry_after_s : 5);
}

void hd_ingestsrv_set_draining(struct hd_ingestsrv *s, int draining)
{
    if (s)
        atomic_store(&s->draining, draining ? 1 : 0);
}

int hd_ingestsrv_start(struct hd_ingestsrv **out, struct hd_store *st,
                       const struct hd_ingestsrv_opts *o)
{
    struct hd_ingestsrv *s;
    int rc;

    if (!o->token || !o->token[0] || o->nlisten == 0 || o->nlisten > HD_INGESTSRV_MAX_LISTEN)
        return HD_ERR_INVALID;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->st = st;
    s->metrics = o->metrics;
    s->max_body = o->max_body ? o->max_body : 64u << 20;
    s->idle_timeout_ms = o->idle_timeout_ms ? o->idle_timeout_ms : 60000;
    atomic_init(&s->stop, 0);
    atomic_init(&s->draining, 0);
    atomic_init(&s->max_queued, o->max_queued);
    atomic_init(&s->retry_after_s, o->retry_after_s ? o->retry_after_s : 5);
    s->token = strdup(o->token);
    if (!s->token) {
        free(s);
        return -ENOMEM;
    }
    s->token_len = strlen(s->token);
    for (size_t i = 0; i < o->nlisten; i++) {
        s->ls[i].srv = s;
        s->ls[i].fd = -1;
        rc = bind_one(&s->ls[i], o->listen[i]);
        if (rc) {
            HD_LOG(HD_LOG_ERROR, "ingest", "msg=\"cannot listen\" listen=%s err=\"%s\"",
                   o->listen[i], hd_strerror(rc));
            goto fail;
        }
        s->nls++;
    }
    rc = hd_loop_new(&s->loop, 256);
    if (rc)
        goto fail;
    rc = -pthread_create(&s->tid, NULL, server_main, s);
    if (rc)
        goto fail;
    s->started = 1;
    for (size_t i = 0; i < s->nls; i++)
        HD_LOG(HD_LOG_INFO, "ingest", "msg=\"listening\" listen=%s", o->listen[i]);
    *out = s;
    return 0;
fail:
    hd_ingestsrv_stop(s);
    return rc;
}

void hd_ingestsrv_stop(struct hd_ingestsrv *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, 1);
    if (s->started)
        pthread_join(s->tid, NULL);
    /* The thread is gone: nothing runs callbacks any more, so connections can be freed
     * even with an op in flight (the ring and its pending ops go with the loop). */
    while (s->conns)
        conn_free(s->conns);
    for (size_t i = 0; i < s->nls; i++) {
        if (s->ls[i].fd >= 0)
            close(s->ls[i].fd);
        if (s->ls[i].unix_path[0])
            unlink(s->ls[i].unix_path);
    }
    hd_loop_free(s->loop);
    if (s->token) {
        memset(s->token, 0, s->token_len);
        free(s->token);
    }
    free(s);
}

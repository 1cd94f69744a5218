/* The endpoint's HTTP server (see endpoint.h): one thread, one io_uring loop, HTTP/1.1 and
 * h2c. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
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
#include <unistd.h>

#include "endpoint.h"
#include "err.h"
#include "h2srv.h"
#include "log.h"
#include "loop.h"

struct hd_endpoint;

struct lsock {
    struct hd_loop_op op;
    struct hd_endpoint *ep;
    int fd;
    int accepting;
    char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct iconn {
    struct hd_loop_op op; /* one op at a time: recv or send (half duplex) */
    struct hd_timer idle;
    struct hd_endpoint *ep;
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

struct hd_endpoint {
    struct hd_loop *loop;
    pthread_t tid;
    int started;
    atomic_int stop;
    size_t max_body;
    unsigned idle_timeout_ms;
    hd_endpoint_request_cb on_request;
    hd_endpoint_admit_cb admit;
    hd_endpoint_tick_cb on_tick;
    void *user_data;
    struct lsock ls[HD_ENDPOINT_MAX_LISTEN];
    size_t nls;
    struct iconn *conns;
    size_t nconns;
};

/* ---------------------------------------------------------------- answers */

void hd_endpoint_respond(struct hd_endpoint_resp *r, int status, const char *ctype, char *body,
                         size_t blen, const char *extra_headers)
{
    free(r->body);
    r->status = status;
    r->ctype = ctype;
    r->body = body;
    r->blen = blen;
    snprintf(r->extra, sizeof(r->extra), "%s", extra_headers ? extra_headers : "");
}

void hd_endpoint_respond_json(struct hd_endpoint_resp *r, int status, json_t *o,
                              const char *extra_headers)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    size_t n;

    json_decref(o);
    if (!s) {
        r->close_after = 1;
        hd_endpoint_respond(r, 500, "text/plain", NULL, 0, NULL);
        return;
    }
    n = strlen(s);
    s[n] = '\n'; /* replaces the NUL: the body is length-delimited */
    hd_endpoint_respond(r, status, "application/json", s, n + 1, extra_headers);
}

void hd_endpoint_respond_error(struct hd_endpoint_resp *r, int status, const char *msg,
                               const char *extra_headers)
{
    hd_endpoint_respond_json(r, status, json_pack("{s:s}", "error", msg), extra_headers);
}

int hd_endpoint_path_is(const struct hd_endpoint_req *q, const char *path)
{
    size_t n = strlen(path), tl = q->target_len;
    const char *qm = memchr(q->target, '?', tl);

    if (qm)
        tl = (size_t)(qm - q->target);
    return tl == n && memcmp(q->target, path, n) == 0;
}

int hd_endpoint_method_is(const struct hd_endpoint_req *q, const char *m)
{
    return q->method_len == strlen(m) && memcmp(q->method, m, q->method_len) == 0;
}

/* ---------------------------------------------------------------- sockets */

int hd_endpoint_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[64];
    const char *colon;
    char *end;
    unsigned long port;
    size_t hl;

    memset(ss, 0, sizeof(*ss));
    if (!strncmp(spec, "unix:", 5)) {
        struct sockaddr_un *su = (struct sockaddr_un *)ss;
        const char *path = spec + 5;
        if (!path[0] || strlen(path) >= sizeof(su->sun_path))
            return HD_ERR_INVALID;
        su->sun_family = AF_UNIX;
        memcpy(su->sun_path, path, strlen(path) + 1);
        *len = sizeof(*su);
        return 0;
    }
    colon = strrchr(spec, ':');
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
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        host[hl - 1] = 0;
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
            return HD_ERR_INVALID;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            return HD_ERR_INVALID;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        *len = sizeof(*s4);
    }
    return 0;
}

static int bind_one(struct lsock *l, const char *spec)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, rc, one = 1;

    rc = hd_endpoint_addr(spec, &ss, &sl);
    if (rc)
        return rc;
    if (ss.ss_family == AF_UNIX) {
        const char *path = ((struct sockaddr_un *)&ss)->sun_path;
        struct stat sb;
        /* replace a stale socket file, never any other kind of file */
        if (lstat(path, &sb) == 0) {
            if (!S_ISSOCK(sb.st_mode))
                return -EEXIST;
            unlink(path);
        }
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (ss.ss_family != AF_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if (ss.ss_family == AF_UNIX)
        memcpy(l->unix_path, ((struct sockaddr_un *)&ss)->sun_path, sizeof(l->unix_path));
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
    struct hd_endpoint *e = c->ep;

    hd_timer_disarm(e->loop, &c->idle);
    if (c->fd >= 0)
        close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        e->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    e->nconns--;
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
    if (l->accepting || atomic_load(&l->ep->stop))
        return;
    l->op.cb = on_accept;
    if (hd_loop_accept(l->ep->loop, &l->op, l->fd) == 0)
        l->accepting = 1;
}

static void on_accept(struct hd_loop_op *op, int res)
{
    struct lsock *l = container_of(op, struct lsock, op);
    struct hd_endpoint *e = l->ep;
    struct iconn *c;

    l->accepting = 0;
    if (res < 0) {
        if (res != -ECANCELED)
            HD_LOG(HD_LOG_WARN, "ingest", "msg=\"accept failed\" err=\"%s\"", hd_strerror(res));
        arm_accept(l);
        return;
    }
    if (e->nconns >= HD_ENDPOINT_MAX_CONNS) {
        HD_LOG(HD_LOG_WARN, "ingest", "msg=\"too many connections; closing a new one\" max=%d",
               HD_ENDPOINT_MAX_CONNS);
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
    c->ep = e;
    hd_timer_init(&c->idle, on_idle);
    c->next = e->conns;
    if (e->conns)
        e->conns->prev = c;
    e->conns = c;
    e->nconns++;
    conn_recv(c);
    arm_accept(l);
}

static void conn_recv(struct iconn *c)
{
    struct hd_endpoint *e = c->ep;
    size_t cap_max = HD_ENDPOINT_HEADER_MAX + e->max_body;

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
    hd_timer_arm(e->loop, &c->idle, hd_loop_now_ms(e->loop) + e->idle_timeout_ms);
    if (hd_loop_recv(e->loop, &c->op, c->fd, c->in + c->in_len, c->in_cap - c->in_len) != 0)
        conn_free(c);
}

static void conn_send(struct iconn *c)
{
    struct hd_endpoint *e = c->ep;

    c->sending = 1;
    c->op.cb = on_conn_op;
    hd_timer_arm(e->loop, &c->idle, hd_loop_now_ms(e->loop) + e->idle_timeout_ms);
    if (hd_loop_send(e->loop, &c->op, c->fd, c->out + c->out_off, c->out_len - c->out_off) != 0)
        conn_free(c);
}

/* ---------------------------------------------------------------- HTTP/1.1 */

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

/* Serializes o into the connection's output and sends it; frees o's body. */
static void h1_send(struct iconn *c, struct hd_endpoint_resp *o)
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

/* Sends "100 Continue": the client may send the body now. */
static void h1_continue(struct iconn *c)
{
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
}

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

#define PARSE_MORE 0    /* the headers are not complete yet */
#define PARSE_DONE 1    /* a whole request is in c->in */
#define PARSE_HEADERS 2 /* the headers are complete, the body is not */

/* Reads the request at the start of c->in into r. Returns PARSE_MORE, PARSE_DONE,
 * PARSE_HEADERS, or an HTTP status (>= 400) to answer and close. */
static int parse_request(struct iconn *c, struct hd_endpoint_req *r)
{
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    char *p, *eol, *sp1, *sp2;
    size_t hlen;

    memset(r, 0, sizeof(*r));
    if (!end)
        return c->in_len > HD_ENDPOINT_HEADER_MAX ? 431 : PARSE_MORE;
    hlen = (size_t)(end - c->in) + 4;
    if (hlen > HD_ENDPOINT_HEADER_MAX)
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
            if (n > c->ep->max_body)
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
    if (c->in_len < hlen + r->content_length)
        return PARSE_HEADERS;
    r->body = c->in + hlen;
    c->req_len = hlen + r->content_length;
    return PARSE_DONE;
}

static const char *refusal(int status)
{
    switch (status) {
    case 411: return "chunked request bodies are not supported: send Content-Length";
    case 413: return "request body too large";
    case 431: return "request headers too large";
    case 505: return "HTTP/1.x only";
    default: return "malformed request";
    }
}

/* ---------------------------------------------------------------- h2c */

/* A complete h2 request: the same handler as HTTP/1.1, answered on its stream. */
static void on_h2_request(struct hd_h2srv *h2, const struct hd_h2srv_req *hr, void *user_data)
{
    struct iconn *c = user_data;
    struct hd_endpoint *e = c->ep;
    struct hd_endpoint_resp o;
    struct hd_endpoint_req r;

    memset(&o, 0, sizeof(o));
    memset(&r, 0, sizeof(r));
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
        hd_endpoint_respond_error(&o, 413, "request body too large", NULL);
    else
        e->on_request(&o, &r, e->user_data);
    if (!o.status) {
        o.status = 500;
        o.ctype = "text/plain";
    }
    hd_h2srv_respond(h2, hr->stream_id, o.status, o.ctype, o.extra, o.body, o.blen);
}

/* Sends whatever HTTP/2 frames are ready; with nothing to send, reads (or closes when the
 * HTTP/2 connection is over). */
static void h2_flush(struct iconn *c)
{
    ssize_t n;

    c->out_len = 0;
    c->out_off = 0;
    n = hd_h2srv_pending(c->h2, &c->out, &c->out_len, &c->out_cap,
                         HD_ENDPOINT_HEADER_MAX + 2 * c->ep->max_body);
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
        if (hd_h2srv_new(&c->h2, c->ep->max_body, on_h2_request, c) != 0) {
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

static int is_h2(const struct iconn *c)
{
    size_t n = c->in_len < HD_H2SRV_PREFACE_LEN ? c->in_len : HD_H2SRV_PREFACE_LEN;
    return c->h2 || (c->in_len > 0 && memcmp(c->in, HD_H2SRV_PREFACE, n) == 0);
}

/* ---------------------------------------------------------------- requests */

/* Handles whatever complete request is buffered; otherwise reads more. */
static void process(struct iconn *c)
{
    struct hd_endpoint *e = c->ep;
    struct hd_endpoint_req r;
    struct hd_endpoint_resp o;
    int st;

    if (is_h2(c)) {
        h2_process(c);
        return;
    }
    memset(&o, 0, sizeof(o));
    st = parse_request(c, &r);
    if (st == PARSE_MORE) {
        conn_recv(c);
        return;
    }
    if (st == PARSE_HEADERS) {
        /* Refuse a body nobody may send before buffering it (up to max_body). */
        if (e->admit && e->admit(&o, &r, e->user_data)) {
            o.close_after = 1;
            h1_send(c, &o);
        } else if (r.expect_continue && !c->continued) {
            h1_continue(c);
        } else {
            conn_recv(c);
        }
        return;
    }
    if (st >= 400) {
        o.close_after = 1;
        hd_endpoint_respond_error(&o, st, refusal(st), NULL);
        h1_send(c, &o);
        return;
    }
    if (!r.keepalive)
        c->close_after = 1;
    e->on_request(&o, &r, e->user_data);
    h1_send(c, &o);
}

static void on_conn_op(struct hd_loop_op *op, int res)
{
    struct iconn *c = container_of(op, struct iconn, op);

    hd_timer_disarm(c->ep->loop, &c->idle);
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
    struct hd_endpoint *e = arg;
    uint64_t next_tick = 0;

    for (size_t i = 0; i < e->nls; i++)
        arm_accept(&e->ls[i]);
    while (!atomic_load(&e->stop)) {
        int rc = hd_loop_run_once(e->loop, 100);
        if (rc < 0 && rc != -EINTR && rc != -ETIME) {
            HD_LOG(HD_LOG_ERROR, "ingest", "msg=\"loop failed\" err=\"%s\"", hd_strerror(rc));
            break;
        }
        if (e->on_tick) {
            uint64_t now = hd_loop_update_now(e->loop);
            if (now >= next_tick) {
                e->on_tick(now, e->user_data);
                next_tick = now + 1000;
            }
        }
    }
    return NULL;
}

uint64_t hd_endpoint_now_ms(struct hd_endpoint *e)
{
    return hd_loop_update_now(e->loop);
}

int hd_endpoint_start(struct hd_endpoint **out, const struct hd_endpoint_opts *o)
{
    struct hd_endpoint *e;
    int rc;

    if (!o->on_request || o->nlisten == 0 || o->nlisten > HD_ENDPOINT_MAX_LISTEN)
        return HD_ERR_INVALID;
    e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->max_body = o->max_body;
    e->idle_timeout_ms = o->idle_timeout_ms;
    e->on_request = o->on_request;
    e->admit = o->admit;
    e->on_tick = o->on_tick;
    e->user_data = o->user_data;
    atomic_init(&e->stop, 0);
    for (size_t i = 0; i < o->nlisten; i++) {
        e->ls[i].ep = e;
        e->ls[i].fd = -1;
        rc = bind_one(&e->ls[i], o->listen[i]);
        if (rc) {
            HD_LOG(HD_LOG_ERROR, "ingest", "msg=\"cannot listen\" listen=%s err=\"%s\"",
                   o->listen[i], hd_strerror(rc));
            goto fail;
        }
        e->nls++;
    }
    rc = hd_loop_new(&e->loop, 256);
    if (rc)
        goto fail;
    rc = -pthread_create(&e->tid, NULL, server_main, e);
    if (rc)
        goto fail;
    e->started = 1;
    for (size_t i = 0; i < e->nls; i++)
        HD_LOG(HD_LOG_INFO, "ingest", "msg=\"listening\" listen=%s", o->listen[i]);
    *out = e;
    return 0;
fail:
    hd_endpoint_stop(e);
    return rc;
}

void hd_endpoint_stop(struct hd_endpoint *e)
{
    if (!e)
        return;
    atomic_store(&e->stop, 1);
    if (e->started)
        pthread_join(e->tid, NULL);
    /* The thread is gone: nothing runs callbacks any more, so connections can be freed
     * even with an op in flight (the ring and its pending ops go with the loop). */
    while (e->conns)
        conn_free(e->conns);
    for (size_t i = 0; i < e->nls; i++) {
        if (e->ls[i].fd >= 0)
            close(e->ls[i].fd);
        if (e->ls[i].unix_path[0])
            unlink(e->ls[i].unix_path);
    }
    hd_loop_free(e->loop);
    free(e);
}

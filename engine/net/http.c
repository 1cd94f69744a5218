/* HTTP client: origins, request pool, per-origin FIFO and dispatch onto connections.
 * Socket work lives in conn.c, HTTP/2 framing in h2.c, HTTP/1.1 framing in h1.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "err.h"
#include "h1.h"
#include "log.h"
#include "tls.h"

void hd_http_opts_default(struct hd_http_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->connect_timeout_ms = 10000;
    opts->tls_timeout_ms = 10000;
    opts->response_timeout_ms = 30000;
    opts->idle_timeout_ms = 60000;
    opts->max_streams_per_host = 100;
    opts->max_h1_conns_per_host = 6;
    opts->max_body = 4096;
    opts->max_header_bytes = 65536;
}

/* ---- intrusive request lists ---- */

void hd_rq_list_push(struct hd_rq_list *l, struct hd_http_rq *rq)
{
    rq->next = NULL;
    rq->prev = l->tail;
    if (l->tail)
        l->tail->next = rq;
    else
        l->head = rq;
    l->tail = rq;
    l->n++;
}

void hd_rq_list_push_front(struct hd_rq_list *l, struct hd_http_rq *rq)
{
    rq->prev = NULL;
    rq->next = l->head;
    if (l->head)
        l->head->prev = rq;
    else
        l->tail = rq;
    l->head = rq;
    l->n++;
}

void hd_rq_list_remove(struct hd_rq_list *l, struct hd_http_rq *rq)
{
    if (rq->prev)
        rq->prev->next = rq->next;
    else
        l->head = rq->next;
    if (rq->next)
        rq->next->prev = rq->prev;
    else
        l->tail = rq->prev;
    rq->next = rq->prev = NULL;
    l->n--;
}

/* ---- origins ---- */

static uint64_t origin_hash(const char *host, uint16_t port, int tls)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)host; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    h = (h ^ port) * 1099511628211ull;
    return (h ^ (uint64_t)(tls != 0)) * 1099511628211ull;
}

static struct hd_http_origin *origin_find(const struct hd_http_client *c, const char *host,
                                          uint16_t port, int tls)
{
    size_t b = origin_hash(host, port, tls) & (c->nbuckets - 1);
    for (struct hd_http_origin *o = c->buckets[b]; o; o = o->hnext) {
        if (o->port == port && o->tls == (tls != 0) && strcmp(o->host, host) == 0)
            return o;
    }
    return NULL;
}

static int origins_grow(struct hd_http_client *c)
{
    size_t n = c->nbuckets * 2;
    struct hd_http_origin **nb = calloc(n, sizeof(*nb));

    if (!nb)
        return -ENOMEM;
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct hd_http_origin *o = c->buckets[i], *next;
        for (; o; o = next) {
            size_t b = origin_hash(o->host, o->port, o->tls) & (n - 1);
            next = o->hnext;
            o->hnext = nb[b];
            nb[b] = o;
        }
    }
    free(c->buckets);
    c->buckets = nb;
    c->nbuckets = n;
    return 0;
}

static struct hd_http_origin *origin_get(struct hd_http_client *c, const char *host,
                                         uint16_t port, int tls)
{
    struct hd_http_origin *o = origin_find(c, host, port, tls);
    size_t b;

    if (o)
        return o;
    if (c->norigins >= c->nbuckets && origins_grow(c) != 0)
        return NULL;
    o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->host = strdup(host);
    if (!o->host) {
        free(o);
        return NULL;
    }
    o->port = port;
    o->tls = tls != 0;
    o->max_streams = c->opts.max_streams_per_host;
    b = origin_hash(host, port, tls) & (c->nbuckets - 1);
    o->hnext = c->buckets[b];
    c->buckets[b] = o;
    c->norigins++;
    return o;
}

/* ---- client ---- */

static void on_kick(struct hd_timer *t);

int hd_http_client_new(struct hd_http_client **out, struct hd_loop *loop,
                       const struct hd_http_opts *opts)
{
    struct hd_http_client *c;
    int rv;

    if (!opts || !opts->dns)
        return HD_ERR_INVALID;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    c->opts = *opts;
    if (!c->opts.max_streams_per_host)
        c->opts.max_streams_per_host = 100;
    if (!c->opts.max_h1_conns_per_host)
        c->opts.max_h1_conns_per_host = 6;
    if (!c->opts.max_header_bytes)
        c->opts.max_header_bytes = 65536;
    c->opts.ca_file = NULL; /* only used here; the caller's string need not outlive us */
    c->nbuckets = 64;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (!c->buckets) {
        free(c);
        return -ENOMEM;
    }
    c->pbuf = malloc(HD_CONN_PBUF);
    if (!c->pbuf) {
        free(c->buckets);
        free(c);
        return -ENOMEM;
    }
    rv = hd_tls_ctx_new(&c->tls_ctx, opts->ca_file);
    if (rv != 0) {
        free(c->pbuf);
        free(c->buckets);
        free(c);
        return rv;
    }
    hd_timer_init(&c->kick, on_kick);
    *out = c;
    return 0;
}

void hd_http_kick(struct hd_http_client *c, struct hd_http_origin *o)
{
    if (o && !o->kick) {
        o->kick = 1;
        o->knext = c->kick_list;
        c->kick_list = o;
    }
    if (!hd_timer_armed(&c->kick))
        hd_timer_arm(c->loop, &c->kick, hd_loop_now_ms(c->loop));
}

void hd_http_client_shutdown(struct hd_http_client *c)
{
    c->shutting_down = 1;
    hd_http_kick(c, NULL);
}

int hd_http_client_idle(const struct hd_http_client *c)
{
    return c->inflight == 0 && c->nconns == 0 && !c->dead;
}

void hd_http_client_free(struct hd_http_client *c)
{
    if (!c)
        return;
    hd_timer_disarm(c->loop, &c->kick);
    /* Connections are all gone when idle; free whatever remains defensively. */
    while (c->dead) {
        struct hd_http_conn *conn = c->dead;
        c->dead = conn->dnext;
        hd_conn_free(conn);
    }
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct hd_http_origin *o = c->buckets[i], *next;
        for (; o; o = next) {
            next = o->hnext;
            hd_tls_session_free(o->tls_session);
            free(o->host);
            free(o);
        }
    }
    while (c->pool) {
        struct hd_http_rq *rq = c->pool;
        c->pool = rq->next;
        free(rq->body);
        free(rq);
    }
    while (c->wbuf_pool_n > 0)
        free(c->wbuf_pool[--c->wbuf_pool_n]);
    free(c->pbuf);
    free(c->buckets);
    hd_tls_ctx_free(c->tls_ctx);
    free(c);
}

/* ---- requests ---- */

/* Bounds the time a request waits in its origin FIFO: the connection set-up and response
 * budgets together. assign() replaces it with the response timeout. */
static void arm_queue_deadline(struct hd_http_client *c, struct hd_http_rq *rq)
{
    uint64_t ms = (uint64_t)c->opts.connect_timeout_ms + c->opts.tls_timeout_ms +
                  c->opts.response_timeout_ms;
    if (ms)
        hd_timer_arm(c->loop, &rq->timer, hd_loop_now_ms(c->loop) + ms);
}

static void on_response_timeout(struct hd_timer *t)
{
    struct hd_http_rq *rq = container_of(t, struct hd_http_rq, timer);
    struct hd_http_conn *conn = rq->conn;
    struct hd_http_client *c = rq->client;

    if (!conn) {
        /* Still queued: no connection came up in time, or every stream stayed busy. */
        int open = 0;
        for (struct hd_http_conn *x = rq->origin->conns; x; x = x->onext)
            open |= x->state == HD_CONN_OPEN;
        hd_http_rq_complete(rq, open ? HD_ERR_TIMEOUT_RESPONSE : HD_ERR_TIMEOUT_CONNECT);
        return;
    }
    c->stats.response_timeouts++;
    hd_conn_abandon(conn, rq); /* detaches rq, closes (h1) or resets the stream (h2) */
    hd_http_rq_complete(rq, HD_ERR_TIMEOUT_RESPONSE);
    if (conn)
        hd_conn_flush(conn);
}

int hd_http_submit(struct hd_http_client *c, const struct hd_http_req *req)
{
    struct hd_http_origin *o;
    struct hd_http_rq *rq;

    if (!req || !req->host || !req->host[0] || !req->on_done || !req->port ||
        (req->body_len && !req->body) || (req->nheaders && !req->headers))
        return HD_ERR_INVALID;
    if (req->nheaders > HD_HTTP_MAX_HEADERS ||
        (!req->prepare &&
         (hd_h1_check_request(req) != 0 || hd_h1_head_size(req) > HD_CONN_MAX_HEAD)))
        return HD_ERR_INVALID;
    o = origin_get(c, req->host, req->port, req->tls);
    if (!o)
        return -ENOMEM;
    rq = c->pool;
    if (rq) {
        c->pool = rq->next;
        c->pool_n--;
    } else {
        rq = calloc(1, sizeof(*rq));
        if (!rq)
            return -ENOMEM;
    }
    {
        uint8_t *body = rq->body;
        memset(rq, 0, sizeof(*rq));
        rq->body = body;
    }
    rq->req = *req;
    rq->client = c;
    rq->origin = o;
    rq->submit_ms = hd_loop_now_ms(c->loop);
    hd_timer_init(&rq->timer, on_response_timeout);
    hd_rq_list_push(&o->queue, rq);
    arm_queue_deadline(c, rq);
    o->inflight++;
    c->inflight++;
    hd_http_kick(c, o);
    return 0;
}

void hd_http_rq_complete(struct hd_http_rq *rq, int err)
{
    struct hd_http_client *c = rq->client;
    struct hd_http_resp resp;

    hd_timer_disarm(c->loop, &rq->timer);
    if (rq->conn) {
        struct hd_http_conn *conn = rq->conn;
        if (conn->h1_rq == rq)
            conn->h1_rq = NULL;
        else
            hd_rq_list_remove(&conn->active, rq);
        rq->conn = NULL;
        hd_conn_update_idle(conn);
        if (rq->origin->queue.head) /* a stream or connection just became free */
            hd_http_kick(c, rq->origin);
    } else if (rq->next || rq->prev || rq->origin->queue.head == rq) {
        hd_rq_list_remove(&rq->origin->queue, rq);
    }
    memset(&resp, 0, sizeof(resp));
    if (!err && rq->error)
        err = rq->error;
    resp.error = err;
    resp.status = err ? 0 : rq->status;
    resp.http_version = rq->version;
    resp.retry_after = rq->retry_after;
    resp.accept_signature = rq->accept_signature;
    resp.body = rq->body_len ? rq->body : NULL;
    resp.body_len = rq->body_len;
    resp.latency_ms = hd_loop_now_ms(c->loop) - rq->submit_ms;
    rq->origin->inflight--;
    c->inflight--;
    rq->req.on_done(&resp, rq->req.user_data);
    free(rq->retry_after);
    free(rq->accept_signature);
    rq->retry_after = rq->accept_signature = NULL;
    rq->next = c->pool;
    c->pool = rq;
    c->pool_n++;
}

void hd_http_rq_lost(struct hd_http_rq *rq, int err, int processed)
{
    struct hd_http_client *c = rq->client;

    if (processed || rq->retried || c->shutting_down) {
        hd_http_rq_complete(rq, processed || c->shutting_down ? err : HD_ERR_REFUSED_STREAM);
        return;
    }
    /* Not processed by the peer: once, transparently, on a new connection. */
    c->stats.retries++;
    hd_timer_disarm(c->loop, &rq->timer);
    if (rq->conn) {
        if (rq->conn->h1_rq == rq)
            rq->conn->h1_rq = NULL;
        else
            hd_rq_list_remove(&rq->conn->active, rq);
        rq->conn = NULL;
    }
    rq->retried = 1;
    rq->sent = 0;
    rq->status = 0;
    rq->error = 0;
    rq->body_len = 0;
    rq->body_off = 0;
    rq->hdr_bytes = 0;
    rq->stream_id = 0;
    free(rq->retry_after);
    free(rq->accept_signature);
    rq->retry_after = rq->accept_signature = NULL;
    arm_queue_deadline(c, rq);
    hd_rq_list_push_front(&rq->origin->queue, rq);
    hd_http_kick(c, rq->origin);
}

static char *copy_value(const char *v, size_t n)
{
    char *s;
    if (n > HD_HTTP_HDR_COPY_MAX)
        return NULL;
    s = malloc(n + 1);
    if (!s)
        return NULL;
    memcpy(s, v, n);
    s[n] = 0;
    return s;
}

int hd_http_rq_header(struct hd_http_rq *rq, const char *name, size_t nlen, const char *value,
                      size_t vlen)
{
    if (nlen == 11 && memcmp(name, "retry-after", 11) == 0) {
        free(rq->retry_after);
        rq->retry_after = copy_value(value, vlen);
    } else if (nlen == 16 && memcmp(name, "accept-signature", 16) == 0) {
        free(rq->accept_signature);
        rq->accept_signature = copy_value(value, vlen);
    }
    return 0;
}

void hd_http_rq_body(struct hd_http_rq *rq, const uint8_t *data, size_t len)
{
    size_t cap = rq->client->opts.max_body, n;

    /* Bytes beyond max_body are read and dropped: never buffered. */
    if (rq->body_len >= cap || len == 0)
        return;
    if (!rq->body) {
        rq->body = malloc(cap);
        if (!rq->body)
            return;
    }
    n = cap - rq->body_len < len ? cap - rq->body_len : len;
    memcpy(rq->body + rq->body_len, data, n);
    rq->body_len += n;
}

/* ---- dispatch ---- */

static int assign(struct hd_http_conn *conn, struct hd_http_rq *rq)
{
    struct hd_http_client *c = rq->client;
    int rv;

    hd_rq_list_remove(&rq->origin->queue, rq);
    rq->version = conn->proto;
    if (rq->req.prepare) {
        rv = rq->req.prepare(rq->req.user_data);
        rq->req.prepare = NULL;
        if (rv == 0 && (hd_h1_check_request(&rq->req) != 0 ||
                        hd_h1_head_size(&rq->req) > HD_CONN_MAX_HEAD))
            rv = HD_ERR_INVALID;
        if (rv != 0) {
            hd_http_rq_complete(rq, rv);
            return 0; /* this request is done; the connection stays usable */
        }
    }
    rv = hd_conn_assign(conn, rq);
    if (rv != 0) {
        hd_http_rq_complete(rq, rv);
        return rv;
    }
    if (c->opts.response_timeout_ms)
        hd_timer_arm(c->loop, &rq->timer, hd_loop_now_ms(c->loop) + c->opts.response_timeout_ms);
    else
        hd_timer_disarm(c->loop, &rq->timer);
    return 0;
}

static void fail_queue(struct hd_http_origin *o, int err)
{
    while (o->queue.head)
        hd_http_rq_complete(o->queue.head, err);
}

static void origin_dispatch(struct hd_http_client *c, struct hd_http_origin *o)
{
    struct hd_http_conn *conn;
    unsigned establishing = 0, usable = 0;

    if (c->shutting_down) {
        fail_queue(o, HD_ERR_CANCELLED);
        return;
    }
    if (!o->queue.head)
        return;
    for (conn = o->conns; conn && o->queue.head; conn = conn->onext) {
        if (conn->state == HD_CONN_CLOSING)
            continue;
        if (conn->state != HD_CONN_OPEN) {
            establishing++;
            continue;
        }
        while (o->queue.head && hd_conn_has_room(conn)) {
            if (assign(conn, o->queue.head) != 0)
                break;
        }
        if (!conn->draining)
            usable++;
        hd_conn_flush(conn);
    }
    if (!o->queue.head)
        return;
    if (o->version == 1) {
        /* One more connection per queued request not covered by one being set up. */
        while (o->nlive < c->opts.max_h1_conns_per_host && establishing < o->queue.n &&
               (o->nlive == 0 || hd_loop_now_ms(c->loop) >= o->no_new_conn_until)) {
            if (hd_conn_open(c, o) != 0)
                break;
            establishing++;
        }
    } else if (establishing == 0 && usable == 0) {
        /* h2 or unknown: one connection; when it is up and full, requests wait. A draining
         * (GOAWAY) connection is closing, so a new one is opened. */
        if (hd_conn_open(c, o) != 0)
            fail_queue(o, -ENOMEM);
    }
}

void hd_http_conn_ready(struct hd_http_conn *conn)
{
    struct hd_http_origin *o = conn->origin;

    o->version = conn->proto;
    if (conn->proto == 2)
        o->max_streams = hd_conn_max_streams(conn);
    origin_dispatch(conn->client, o);
}

void hd_http_conn_available(struct hd_http_conn *conn)
{
    if (conn->proto == 2)
        conn->origin->max_streams = hd_conn_max_streams(conn);
    if (conn->origin->queue.head)
        hd_http_kick(conn->client, conn->origin);
}

void hd_http_conn_closed(struct hd_http_conn *conn, enum hd_conn_state prev, int err)
{
    struct hd_http_origin *o = conn->origin;
    struct hd_http_conn *other;
    int live_other = 0;

    o->nlive--;
    if (prev < HD_CONN_OPEN && err != 0)
        conn->client->stats.setup_failures++;
    if (prev < HD_CONN_OPEN && err != 0) {
        /* Establishment failed: if nothing else is coming for this origin, everyone waiting
         * gets the error (the scheduler decides about retrying). */
        for (other = o->conns; other; other = other->onext)
            if (other != conn && other->state != HD_CONN_CLOSING)
                live_other = 1;
        if (!live_other)
            fail_queue(o, err);
        else /* others carry the queue; do not hammer a host that refuses more connections */
            o->no_new_conn_until = hd_loop_now_ms(conn->client->loop) + 1000;
    }
    if (o->queue.head)
        hd_http_kick(conn->client, o);
}

static void on_kick(struct hd_timer *t)
{
    struct hd_http_client *c = container_of(t, struct hd_http_client, kick);

    if (c->shutting_down) {
        for (size_t i = 0; i < c->nbuckets; i++) {
            for (struct hd_http_origin *o = c->buckets[i]; o; o = o->hnext) {
                fail_queue(o, HD_ERR_CANCELLED);
                for (struct hd_http_conn *conn = o->conns; conn; conn = conn->onext)
                    hd_conn_close(conn, HD_ERR_CANCELLED);
            }
        }
    }
    while (c->kick_list) {
        struct hd_http_origin *o = c->kick_list;
        c->kick_list = o->knext;
        o->kick = 0;
        o->knext = NULL;
        origin_dispatch(c, o);
    }
    while (c->dead) {
        struct hd_http_conn *conn = c->dead;
        c->dead = conn->dnext;
        hd_conn_free(conn);
    }
}

/* ---- introspection ---- */

size_t hd_http_inflight(const struct hd_http_client *c, const char *host, uint16_t port, int tls)
{
    const struct hd_http_origin *o;

    if (!host)
        return c->inflight;
    o = origin_find(c, host, port, tls);
    return o ? o->inflight : 0;
}

void hd_http_stats(const struct hd_http_client *c, struct hd_http_stats *out)
{
    *out = c->stats;
    out->conns_open = c->nconns;
    out->inflight = c->inflight;
}

int hd_http_origin_info(const struct hd_http_client *c, const char *host, uint16_t port, int tls,
                        int *http_version, unsigned *max_streams)
{
    const struct hd_http_origin *o = origin_find(c, host, port, tls);

    if (!o)
        return HD_ERR_NOT_FOUND;
    if (http_version)
        *http_version = o->version;
    if (max_streams)
        *max_streams = o->version == 1 ? c->opts.max_h1_conns_per_host : o->max_streams;
    return 0;
}

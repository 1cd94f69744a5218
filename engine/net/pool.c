/* Connection pool: origins, request records, per-origin FIFO and dispatch onto connections
 * (see pool.h). Socket work lives in conn.c, HTTP/2 framing in h2.c, HTTP/1.1 framing in h1.c;
 * connections report back through the struct hd_conn_ops at the end of this file. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "h1.h"
#include "log.h"
#include "pool.h"
#include "tls.h"

/* ---- origins ---- */

static uint64_t origin_hash(const char *host, uint16_t port, int tls)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)host; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    h = (h ^ port) * 1099511628211ull;
    return (h ^ (uint64_t)(tls != 0)) * 1099511628211ull;
}

static struct hd_origin *origin_find(const struct hd_pool *p, const char *host, uint16_t port,
                                     int tls)
{
    size_t b = origin_hash(host, port, tls) & (p->nbuckets - 1);
    for (struct hd_origin *o = p->buckets[b]; o; o = o->hnext) {
        if (o->peer.port == port && o->peer.tls == (tls != 0) && strcmp(o->peer.host, host) == 0)
            return o;
    }
    return NULL;
}

const struct hd_origin *hd_pool_find(const struct hd_pool *p, const char *host, uint16_t port,
                                     int tls)
{
    return origin_find(p, host, port, tls);
}

static int origins_grow(struct hd_pool *p)
{
    size_t n = p->nbuckets * 2;
    struct hd_origin **nb = calloc(n, sizeof(*nb));

    if (!nb)
        return -ENOMEM;
    for (size_t i = 0; i < p->nbuckets; i++) {
        struct hd_origin *o = p->buckets[i], *next;
        for (; o; o = next) {
            size_t b = origin_hash(o->peer.host, o->peer.port, o->peer.tls) & (n - 1);
            next = o->hnext;
            o->hnext = nb[b];
            nb[b] = o;
        }
    }
    free(p->buckets);
    p->buckets = nb;
    p->nbuckets = n;
    return 0;
}

static struct hd_origin *origin_get(struct hd_pool *p, const char *host, uint16_t port, int tls)
{
    struct hd_origin *o = origin_find(p, host, port, tls);
    size_t b;

    if (o)
        return o;
    if (p->norigins >= p->nbuckets && origins_grow(p) != 0)
        return NULL;
    o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->peer.host = strdup(host);
    if (!o->peer.host) {
        free(o);
        return NULL;
    }
    o->peer.port = port;
    o->peer.tls = tls != 0;
    o->max_streams = p->opts->max_streams_per_host;
    o->peer.waiting = &o->queue;
    b = origin_hash(host, port, tls) & (p->nbuckets - 1);
    o->hnext = p->buckets[b];
    p->buckets[b] = o;
    p->norigins++;
    return o;
}

static struct hd_origin *origin_of(const struct hd_conn *conn)
{
    return container_of(conn->peer, struct hd_origin, peer);
}

/* Drops o when nothing needs it: no connection object, no request queued or in flight, not
 * waiting for a dispatch, and not known to speak HTTP/1.1 only (that answer is kept for the
 * client's lifetime: an h2c probe to a silent server costs a time-out). A fan-out to many
 * hosts would otherwise keep one origin per host ever contacted; a later request to the host
 * makes a new one, and ALPN or the h2c preface tells its protocol again. Its TLS session is
 * not lost with it: sessions live in the client's shared table (tlscache.h), by host and
 * port. */
static void origin_maybe_free(struct hd_pool *p, struct hd_origin *o)
{
    struct hd_origin **pp;

    if (p->shutting_down || o->peer.conns || o->inflight || o->queue.head || o->kick ||
        o->peer.version == 1)
        return;
    pp = &p->buckets[origin_hash(o->peer.host, o->peer.port, o->peer.tls) & (p->nbuckets - 1)];
    while (*pp && *pp != o)
        pp = &(*pp)->hnext;
    if (!*pp)
        return;
    *pp = o->hnext;
    p->norigins--;
    p->origins_freed++;
    free(o->peer.host);
    free(o);
}

/* ---- the pool ---- */

static const struct hd_conn_ops conn_ops;
static void on_kick(struct hd_timer *t);

int hd_pool_init(struct hd_pool *p, struct hd_loop *loop, const struct hd_http_opts *opts,
                 struct hd_tls_ctx *tls_ctx, struct hd_tls_cache *tls_cache)
{
    int rv;

    memset(p, 0, sizeof(*p));
    p->opts = opts;
    p->nbuckets = 64;
    p->buckets = calloc(p->nbuckets, sizeof(*p->buckets));
    if (!p->buckets)
        return -ENOMEM;
    rv = hd_conn_env_init(&p->env, loop, opts, tls_ctx, tls_cache, &conn_ops, p);
    if (rv != 0) {
        free(p->buckets);
        p->buckets = NULL;
        return rv;
    }
    hd_timer_init(&p->kick, on_kick);
    hd_tq_init(&p->queue_tq, loop);
    hd_tq_init(&p->resp_tq, loop);
    return 0;
}

/* Runs deferred work (dispatch, frees) from a zero-delay timer, inside the loop: o (when not
 * NULL) gets its queue looked at again. */
static void pool_kick(struct hd_pool *p, struct hd_origin *o)
{
    if (o && !o->kick) {
        o->kick = 1;
        o->knext = p->kick_list;
        p->kick_list = o;
    }
    if (!hd_timer_armed(&p->kick))
        hd_timer_arm(p->env.loop, &p->kick, hd_loop_now_ms(p->env.loop));
}

void hd_pool_shutdown(struct hd_pool *p)
{
    p->shutting_down = 1;
    pool_kick(p, NULL);
}

int hd_pool_idle(const struct hd_pool *p)
{
    return p->inflight == 0 && p->env.nconns == 0 && !p->env.dead;
}

void hd_pool_fini(struct hd_pool *p)
{
    hd_timer_disarm(p->env.loop, &p->kick);
    hd_tq_fini(&p->queue_tq);
    hd_tq_fini(&p->resp_tq);
    /* Connections are all gone when idle; hd_conn_env_fini frees any still waiting. */
    hd_conn_env_fini(&p->env);
    for (size_t i = 0; i < p->nbuckets; i++) {
        struct hd_origin *o = p->buckets[i], *next;
        for (; o; o = next) {
            next = o->hnext;
            free(o->peer.host);
            free(o);
        }
    }
    while (p->free_rq) {
        struct hd_http_rq *rq = p->free_rq;
        p->free_rq = rq->next;
        free(rq->body);
        free(rq);
    }
    free(p->buckets);
    p->buckets = NULL;
}

/* ---- requests ---- */

static void rq_complete(struct hd_http_rq *rq, int err);

/* Bounds the time a request waits in its origin FIFO: the connection set-up and response
 * budgets together. assign() replaces it with the response timeout. */
static void arm_queue_deadline(struct hd_pool *p, struct hd_http_rq *rq)
{
    uint64_t ms = (uint64_t)p->opts->connect_timeout_ms + p->opts->tls_timeout_ms +
                  p->opts->response_timeout_ms;
    if (ms)
        hd_tq_set(&p->queue_tq, &rq->deadline, hd_loop_now_ms(p->env.loop) + ms);
}

static void on_response_timeout(struct hd_tq_ent *e)
{
    struct hd_http_rq *rq = container_of(e, struct hd_http_rq, deadline);
    struct hd_conn *conn = rq->conn;
    struct hd_pool *p = rq->pool;

    if (!conn) {
        /* Still queued: no connection came up in time, or every stream stayed busy. */
        int open = 0;
        for (struct hd_conn *x = rq->origin->peer.conns; x; x = x->onext)
            open |= x->state == HD_CONN_OPEN;
        rq_complete(rq, open ? HD_ERR_TIMEOUT_RESPONSE : HD_ERR_TIMEOUT_CONNECT);
        return;
    }
    p->env.stats.response_timeouts++;
    hd_conn_abandon(conn, rq); /* detaches rq, closes (h1) or resets the stream (h2) */
    rq_complete(rq, HD_ERR_TIMEOUT_RESPONSE);
    hd_conn_flush(conn);
}

int hd_pool_submit(struct hd_pool *p, const struct hd_http_req *req)
{
    struct hd_origin *o;
    struct hd_http_rq *rq;

    o = origin_get(p, req->host, req->port, req->tls);
    if (!o)
        return -ENOMEM;
    rq = p->free_rq;
    if (rq) {
        p->free_rq = rq->next;
        p->free_n--;
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
    rq->pool = p;
    rq->origin = o;
    rq->max_body = p->opts->max_body;
    rq->submit_ms = hd_loop_now_ms(p->env.loop);
    hd_tq_ent_init(&rq->deadline, on_response_timeout);
    hd_rq_list_push(&o->queue, rq);
    arm_queue_deadline(p, rq);
    o->inflight++;
    p->inflight++;
    pool_kick(p, o);
    return 0;
}

/* Completes rq (err 0: rq->status is the answer): timer off, unlinked, on_done, pooled. */
static void rq_complete(struct hd_http_rq *rq, int err)
{
    struct hd_pool *p = rq->pool;
    struct hd_http_resp resp;

    hd_tq_clear(&rq->deadline);
    if (rq->conn) {
        struct hd_conn *conn = rq->conn;
        hd_conn_detach(conn, rq);
        hd_conn_update_idle(conn);
        if (rq->origin->queue.head) /* a stream or connection just became free */
            pool_kick(p, rq->origin);
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
    resp.latency_ms = hd_loop_now_ms(p->env.loop) - rq->submit_ms;
    rq->origin->inflight--;
    p->inflight--;
    rq->req.on_done(&resp, rq->req.user_data);
    hd_rq_reset_response(rq);
    rq->next = p->free_rq;
    p->free_rq = rq;
    p->free_n++;
}

/* rq's connection went away: retried once on a new connection when it was not processed
 * (processed == 0), else completed with err. */
static void rq_lost(struct hd_http_rq *rq, int err, int processed)
{
    struct hd_pool *p = rq->pool;

    if (processed || rq->retried || p->shutting_down) {
        rq_complete(rq, processed || p->shutting_down ? err : HD_ERR_REFUSED_STREAM);
        return;
    }
    /* Not processed by the peer: once, transparently, on a new connection. */
    p->env.stats.retries++;
    hd_tq_clear(&rq->deadline);
    if (rq->conn)
        hd_conn_detach(rq->conn, rq);
    rq->retried = 1;
    hd_rq_reset_response(rq);
    arm_queue_deadline(p, rq);
    hd_rq_list_push_front(&rq->origin->queue, rq);
    pool_kick(p, rq->origin);
}

/* ---- dispatch ---- */

static int assign(struct hd_conn *conn, struct hd_http_rq *rq)
{
    struct hd_pool *p = rq->pool;
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
            rq_complete(rq, rv);
            return 0; /* this request is done; the connection stays usable */
        }
    }
    rv = hd_conn_assign(conn, rq);
    if (rv != 0) {
        rq_complete(rq, rv);
        return rv;
    }
    if (p->opts->response_timeout_ms)
        hd_tq_set(&p->resp_tq, &rq->deadline,
                  hd_loop_now_ms(p->env.loop) + p->opts->response_timeout_ms);
    else
        hd_tq_clear(&rq->deadline);
    return 0;
}

static void fail_queue(struct hd_origin *o, int err)
{
    while (o->queue.head)
        rq_complete(o->queue.head, err);
}

static void origin_dispatch(struct hd_pool *p, struct hd_origin *o)
{
    struct hd_conn *conn;
    unsigned establishing = 0, usable = 0;

    if (p->shutting_down) {
        fail_queue(o, HD_ERR_CANCELLED);
        return;
    }
    if (!o->queue.head)
        return;
    for (conn = o->peer.conns; conn && o->queue.head; conn = conn->onext) {
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
    if (o->peer.version == 1) {
        /* One more connection per queued request not covered by one being set up. */
        while (o->peer.nlive < p->opts->max_h1_conns_per_host && establishing < o->queue.n &&
               (o->peer.nlive == 0 || hd_loop_now_ms(p->env.loop) >= o->no_new_conn_until)) {
            if (hd_conn_open(&p->env, &o->peer) != 0)
                break;
            establishing++;
        }
    } else if (establishing == 0 && usable == 0) {
        /* h2 or unknown: one connection; when it is up and full, requests wait. A draining
         * (GOAWAY) connection is closing, so a new one is opened. */
        if (hd_conn_open(&p->env, &o->peer) != 0)
            fail_queue(o, -ENOMEM);
    }
}

static void on_kick(struct hd_timer *t)
{
    struct hd_pool *p = container_of(t, struct hd_pool, kick);

    if (p->shutting_down) {
        for (size_t i = 0; i < p->nbuckets; i++) {
            for (struct hd_origin *o = p->buckets[i]; o; o = o->hnext) {
                fail_queue(o, HD_ERR_CANCELLED);
                for (struct hd_conn *conn = o->peer.conns; conn; conn = conn->onext)
                    hd_conn_close(conn, HD_ERR_CANCELLED);
            }
        }
    }
    while (p->kick_list) {
        struct hd_origin *o = p->kick_list;
        p->kick_list = o->knext;
        o->kick = 0;
        o->knext = NULL;
        origin_dispatch(p, o);
        origin_maybe_free(p, o);
    }
    hd_conn_reap(&p->env);
}

/* ---- what the connections report ---- */

static void conn_on_open(struct hd_conn *conn, void *user_data)
{
    struct hd_pool *p = user_data;
    struct hd_origin *o = origin_of(conn);

    if (!conn->h2c_unconfirmed) /* else known once the server's SETTINGS arrive */
        o->peer.version = conn->proto;
    if (conn->proto == 2)
        o->max_streams = hd_conn_max_streams(conn);
    origin_dispatch(p, o);
}

static void conn_on_available(struct hd_conn *conn, void *user_data)
{
    struct hd_pool *p = user_data;
    struct hd_origin *o = origin_of(conn);

    if (conn->state == HD_CONN_OPEN && !conn->h2c_unconfirmed)
        o->peer.version = conn->proto;
    if (conn->proto == 2)
        o->max_streams = hd_conn_max_streams(conn);
    if (o->queue.head)
        pool_kick(p, o);
}

static void conn_on_close(struct hd_conn *conn, enum hd_conn_state prev, int err,
                          void *user_data)
{
    struct hd_pool *p = user_data;
    struct hd_origin *o = origin_of(conn);
    struct hd_conn *other;
    int live_other = 0;

    if (prev < HD_CONN_OPEN && err != 0) {
        p->env.stats.setup_failures++;
        /* Establishment failed: if nothing else is coming for this origin, everyone waiting
         * gets the error (the scheduler decides about retrying). */
        for (other = o->peer.conns; other; other = other->onext)
            if (other != conn && other->state != HD_CONN_CLOSING)
                live_other = 1;
        if (!live_other)
            fail_queue(o, err);
        else /* others carry the queue; do not hammer a host that refuses more connections */
            o->no_new_conn_until = hd_loop_now_ms(p->env.loop) + 1000;
    }
    if (o->queue.head)
        pool_kick(p, o);
}

static void conn_on_dead(void *user_data)
{
    pool_kick(user_data, NULL);
}

static void conn_rq_done(struct hd_http_rq *rq, int err, void *user_data)
{
    (void)user_data;
    rq_complete(rq, err);
}

static void conn_rq_lost(struct hd_http_rq *rq, int err, int processed, void *user_data)
{
    (void)user_data;
    rq_lost(rq, err, processed);
}

static void conn_on_peer_empty(struct hd_conn_peer *peer, void *user_data)
{
    origin_maybe_free(user_data, container_of(peer, struct hd_origin, peer));
}

static const struct hd_conn_ops conn_ops = {
    .on_open = conn_on_open,
    .on_available = conn_on_available,
    .on_close = conn_on_close,
    .on_dead = conn_on_dead,
    .rq_done = conn_rq_done,
    .rq_lost = conn_rq_lost,
    .on_peer_empty = conn_on_peer_empty,
};

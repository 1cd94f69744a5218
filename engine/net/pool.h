/* The connection pool of one HTTP client: its origins (scheme, host, port), each with a FIFO
 * of requests waiting for a connection or a stream and the connections that serve it, and
 * the dispatch of requests onto those connections. Request records are pooled here too.
 *
 * Above it is the client's API (http.c); below it the connections (conn.h), which report to
 * the pool through struct hd_conn_ops.
 */
#ifndef HD_POOL_H
#define HD_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "http_types.h"
#include "loop.h"
#include "rq.h"

struct hd_tls_ctx;
struct hd_tls_cache;

struct hd_origin {
    struct hd_conn_peer peer;   /* host, port, scheme, version, TLS session, connections */
    struct hd_origin *hnext;    /* hash chain */
    struct hd_origin *knext;    /* pool's list of origins to dispatch */
    int kick;                   /* on that list */
    unsigned max_streams;       /* h2 limit in force */
    struct hd_rq_list queue;    /* FIFO of requests waiting for a connection/stream */
    size_t inflight;            /* queued + active */
    uint64_t no_new_conn_until; /* after a failed set-up beside live connections */
};

struct hd_pool {
    struct hd_conn_env env; /* shared by the connections; env.stats holds the counters */
    const struct hd_http_opts *opts;
    struct hd_origin **buckets;
    size_t nbuckets, norigins;
    uint64_t origins_freed;     /* origins dropped with nothing left to do (origin_maybe_free) */
    struct hd_origin *kick_list;
    struct hd_timer kick;
    /* Request deadlines, one duration each, so in the order they fall due: waiting for a
     * connection or stream (set-up and response budgets), then for the response. */
    struct hd_tq queue_tq, resp_tq;
    struct hd_http_rq *free_rq; /* request records ready for reuse */
    size_t free_n;
    size_t inflight;
    int shutting_down;
};

/* Prepares p on loop. opts (with defaults filled in), tls_ctx and tls_cache (resumable
 * sessions, may be NULL: none kept) are borrowed and must outlive p. Returns 0 or -ENOMEM. */
int hd_pool_init(struct hd_pool *p, struct hd_loop *loop, const struct hd_http_opts *opts,
                 struct hd_tls_ctx *tls_ctx, struct hd_tls_cache *tls_cache);
/* Frees what p holds; call once hd_pool_idle (after hd_pool_shutdown). */
void hd_pool_fini(struct hd_pool *p);

/* Queues a request the caller has checked (fields present, within limits). Every pointer in
 * req is borrowed until on_done runs. Returns 0 (on_done will run, from the loop) or -ENOMEM. */
int hd_pool_submit(struct hd_pool *p, const struct hd_http_req *req);
/* Closes every connection; waiting requests complete with HD_ERR_CANCELLED (from the loop). */
void hd_pool_shutdown(struct hd_pool *p);
/* Nonzero when no request is pending and no connection object is left. */
int hd_pool_idle(const struct hd_pool *p);
/* The origin for (host, port, tls), or NULL when nothing was ever submitted to it. */
const struct hd_origin *hd_pool_find(const struct hd_pool *p, const char *host, uint16_t port,
                                     int tls);

#endif

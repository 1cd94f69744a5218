/* HTTP client: options, the TLS trust store, the checks a request passes at submit, and the
 * figures the scheduler reads. The work is done by the connection pool (pool.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "h1.h"
#include "http.h"
#include "pool.h"
#include "tls.h"
#include "tlscache.h"

struct hd_http_client {
    struct hd_http_opts opts; /* defaults filled in; ca_file dropped after use */
    struct hd_tls_ctx *tls_ctx;
    struct hd_tls_cache *own_cache; /* when opts.tls_cache was NULL */
    struct hd_pool pool;
};

void hd_http_opts_default(struct hd_http_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->connect_timeout_ms = 10000;
    opts->tls_timeout_ms = 10000;
    opts->response_timeout_ms = 30000;
    opts->idle_timeout_ms = 60000;
    opts->max_idle_conns = 128;
    opts->max_streams_per_host = 100;
    opts->max_h1_conns_per_host = 6;
    opts->max_body = 4096;
    opts->max_header_bytes = 65536;
}

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
    c->opts = *opts;
    if (!c->opts.max_streams_per_host)
        c->opts.max_streams_per_host = 100;
    if (!c->opts.max_h1_conns_per_host)
        c->opts.max_h1_conns_per_host = 6;
    if (!c->opts.max_header_bytes)
        c->opts.max_header_bytes = 65536;
    c->opts.ca_file = NULL; /* only used here; the caller's string need not outlive us */
    if (opts->tls_trust)
        rv = hd_tls_ctx_new_shared(&c->tls_ctx, opts->tls_trust);
    else
        rv = hd_tls_ctx_new(&c->tls_ctx, opts->ca_file);
    c->opts.tls_trust = NULL; /* the context holds its reference */
    if (rv != 0)
        goto fail_tls;
    if (!c->opts.tls_cache) {
        rv = hd_tls_cache_new(&c->own_cache, HD_HTTP_OWN_TLS_SESSIONS);
        if (rv != 0)
            goto fail_cache;
        c->opts.tls_cache = c->own_cache;
    }
    rv = hd_pool_init(&c->pool, loop, &c->opts, c->tls_ctx, c->opts.tls_cache);
    if (rv != 0)
        goto fail_pool;
    *out = c;
    return 0;

fail_pool:
    hd_tls_cache_free(c->own_cache);
fail_cache:
    hd_tls_ctx_free(c->tls_ctx);
fail_tls:
    free(c);
    return rv;
}

void hd_http_client_shutdown(struct hd_http_client *c)
{
    hd_pool_shutdown(&c->pool);
}

int hd_http_client_idle(const struct hd_http_client *c)
{
    return hd_pool_idle(&c->pool);
}

void hd_http_client_free(struct hd_http_client *c)
{
    if (!c)
        return;
    hd_pool_fini(&c->pool);
    hd_tls_ctx_free(c->tls_ctx);
    hd_tls_cache_free(c->own_cache);
    free(c);
}

int hd_http_submit(struct hd_http_client *c, const struct hd_http_req *req)
{
    if (!req || !req->host || !req->host[0] || !req->on_done || !req->port ||
        (req->body_len && !req->body) || (req->nheaders && !req->headers))
        return HD_ERR_INVALID;
    if (req->nheaders > HD_HTTP_MAX_HEADERS ||
        (!req->prepare &&
         (hd_h1_check_request(req) != 0 || hd_h1_head_size(req) > HD_CONN_MAX_HEAD)))
        return HD_ERR_INVALID;
    return hd_pool_submit(&c->pool, req);
}

size_t hd_http_inflight(const struct hd_http_client *c, const char *host, uint16_t port, int tls)
{
    const struct hd_origin *o;

    if (!host)
        return c->pool.inflight;
    o = hd_pool_find(&c->pool, host, port, tls);
    return o ? o->inflight : 0;
}

void hd_http_stats(const struct hd_http_client *c, struct hd_http_stats *out)
{
    *out = c->pool.env.stats;
    out->conns_open = c->pool.env.nconns;
    out->origins = c->pool.norigins;
    out->origins_freed = c->pool.origins_freed;
    out->inflight = c->pool.inflight;
}

int hd_http_origin_info(const struct hd_http_client *c, const char *host, uint16_t port, int tls,
                        int *http_version, unsigned *max_streams)
{
    const struct hd_origin *o = hd_pool_find(&c->pool, host, port, tls);

    if (!o)
        return HD_ERR_NOT_FOUND;
    if (http_version)
        *http_version = o->peer.version;
    if (max_streams)
        *max_streams = o->peer.version == 1 ? c->opts.max_h1_conns_per_host : o->max_streams;
    return 0;
}

/* The local ingest endpoint: HTTP/1.1 and h2c on a unix socket and/or a TCP address, served
 * by its own thread with its own io_uring loop (endpoint.h), next to the delivery loops.
 *
 *   POST   /v1/activities   envelopes into the queue; token required (ingestsrv_v1.h).
 *                           Over the queue bound: 429 with Retry-After, nothing stored.
 *                           While draining (SIGTERM): 503 with Retry-After.
 *   POST   /v1/follows      followers added or updated; token (ingestsrv_v1.h).
 *   DELETE /v1/follows      followers removed; token.
 *   GET    /metrics         Prometheus text format; no token.
 *   GET    /v1/hosts        JSON host view for `herald top` and the dashboard (?limit=N);
 *                           token.
 *   GET    /v1/rates        deliveries done and failed per second over the last 10 minutes,
 *                           sampled once a second by the server thread; token.
 *   GET    /                the dashboard (/dashboard.js, /dashboard.css); no token: the page
 *                           holds none and asks for it (docs/dashboard.md).
 *   GET    /v1/openapi.json the API described in OpenAPI 3.1 (docs/openapi.yaml); no token.
 *   GET    /healthz         "ok" ("draining" while draining); no token.
 *
 * The token is compared in constant time ("Authorization: Bearer TOKEN"); a wrong or missing
 * token is 401, for a write also as soon as its headers are in (before its body is sent).
 * Requests are capped (headers 16 KiB, body max_body, 10,000 lines); endpoint.h has the rest
 * of the HTTP rules (keep-alive, pipelining, 100-continue, no chunked bodies, h2c with prior
 * knowledge, not Upgrade: h2c). */
#ifndef HD_INGESTSRV_H
#define HD_INGESTSRV_H

#include <stddef.h>
#include <stdint.h>

#include "endpoint.h"
#include "ingest.h"
#include "metrics.h"
#include "store.h"

#define HD_INGESTSRV_MAX_LISTEN HD_ENDPOINT_MAX_LISTEN
#define HD_INGESTSRV_TOKEN_MAX 4096

struct hd_ingestsrv_opts {
    const char *const *listen; /* "unix:PATH" or "ADDR:PORT" ("[::1]:PORT" for IPv6) */
    size_t nlisten;
    const char *token;         /* bearer token (copied); NULL or "" refuses to start */
    uint64_t max_queued;       /* backpressure bound on queued deliveries; 0 = none */
    unsigned retry_after_s;    /* Retry-After for 429/503; default 5 */
    size_t max_body;           /* default 64 MiB */
    unsigned idle_timeout_ms;  /* close idle keep-alive connections; default 60 s */
    struct hd_metrics *metrics; /* may be NULL (then /metrics has store series only) */
    /* Cluster mode: POST /v1/activities publishes each envelope through this (answering 0
     * once JetStream acknowledged it, HD_ERR_DUPLICATE, HD_ERR_INVALID with res->why, or
     * HD_ERR_CONNECT) instead of writing the store. NULL: the store. */
    int (*publish)(void *user_data, const char *line, size_t len, struct hd_ingest_result *res);
    void *publish_ud;
    /* Cluster mode: POST and DELETE /v1/follows publish each follow operation through this
     * (user_data publish_ud; 0 once acknowledged, else an error with why filled) instead of
     * writing the store. NULL: the store. */
    int (*publish_follow)(void *user_data, const char *actor, const char *follower,
                          const char *inbox, const char *shared_inbox, int remove, char *why,
                          size_t why_cap);
    /* Called on the server thread after POST /v1/activities committed new envelopes to the
     * store (not in cluster mode): the daemon wakes the run's loop threads with it. NULL:
     * nothing is called. */
    void (*on_enqueued)(void *user_data);
    void *on_enqueued_ud;
};

struct hd_ingestsrv;

/* Binds every listen address (a stale unix socket file is replaced; a unix socket is
 * created mode 0600 under the process umask), then starts the server thread. On return
 * the sockets accept connections. Returns 0, HD_ERR_INVALID (bad address, no token),
 * -EEXIST (a unix path that is not a socket), -errno from socket/bind/listen (e.g.
 * -EADDRINUSE), or -ENOMEM. */
int hd_ingestsrv_start(struct hd_ingestsrv **out, struct hd_store *st,
                       const struct hd_ingestsrv_opts *o);

/* Stops the thread, closes every connection and listening socket, removes the unix socket
 * files, frees s. NULL ok. */
void hd_ingestsrv_stop(struct hd_ingestsrv *s);

/* Changes the backpressure bound and Retry-After (config reload). Any thread. */
void hd_ingestsrv_set_limits(struct hd_ingestsrv *s, uint64_t max_queued, unsigned retry_after_s);

/* Draining: POST/DELETE get 503 with Retry-After; GET still works. Any thread. */
void hd_ingestsrv_set_draining(struct hd_ingestsrv *s, int draining);

/* Reads a bearer token file: the first line, without trailing whitespace, 1..4096 bytes.
 * Returns 0 with a malloc'd string in *token, -errno, or HD_ERR_INVALID (empty). */
int hd_ingestsrv_read_token(const char *path, char **token);

/* Constant-time comparison of a presented token with the expected one: 1 if equal. */
int hd_ingestsrv_token_eq(const char *given, size_t given_len, const char *want,
                          size_t want_len);

#endif

/* The local ingest endpoint: HTTP/1.1 on a unix socket and/or a TCP address, served by its own
 * thread with its own io_uring loop (engine/loop.h), next to the delivery loops.
 *
 *   POST   /v1/activities   one envelope (Content-Type: application/json) or JSON lines (any
 *                           other type); token required. 202 when at least one activity was
 *                           accepted, 200 when every line was a duplicate (with the original
 *                           seq), 400 when none was accepted and some were refused; the body
 *                           lists one result per line. Answered only after the write
 *                           transaction committed, so every seq in a 2xx answer is durable.
 *                           Over the queue bound: 429 with Retry-After, nothing stored.
 *                           While draining (SIGTERM): 503 with Retry-After.
 *   POST   /v1/follows      JSON lines {"actor","follower","inbox","shared_inbox"}; token.
 *   DELETE /v1/follows      JSON lines {"actor","follower"}; token. All lines are validated
 *                           before any is applied; one transaction.
 *   GET    /metrics         Prometheus text format; no token.
 *   GET    /v1/hosts        JSON host view for `herald top` (?limit=N); no token.
 *   GET    /healthz         "ok"; no token.
 *
 * The token is compared in constant time ("Authorization: Bearer TOKEN"); a wrong or missing
 * token is 401. Requests are capped (headers 16 KiB, body max_body, 10,000 lines), keep-alive
 * and pipelining are supported, "Expect: 100-continue" is honoured; chunked request bodies
 * are refused with 411 (send Content-Length).
 *
 * h2c with prior knowledge is served on the same sockets: a connection that starts with the
 * HTTP/2 client preface is handed to h2srv.c (nghttp2 on memory buffers) and its requests go
 * to the same handlers. The Upgrade: h2c dance is not supported. */
#ifndef HD_INGESTSRV_H
#define HD_INGESTSRV_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "store.h"

#define HD_INGESTSRV_MAX_LISTEN 4
#define HD_INGESTSRV_MAX_CONNS 256
#define HD_INGESTSRV_MAX_LINES 10000
#define HD_INGESTSRV_HEADER_MAX 16384
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
};

struct hd_ingestsrv;

/* Binds every listen address (a stale unix socket file is replaced; a unix socket is
 * created mode 0600 under the process umask), then starts the server thread. On return
 * the sockets accept connections. Returns 0, HD_ERR_INVALID (bad address, no token),
 * -errno from socket/bind/listen (e.g. -EADDRINUSE), or -ENOMEM. */
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

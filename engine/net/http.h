/* HTTP client transport: connection pool per origin, TLS (wolfSSL, ALPN h2 / http/1.1),
 * HTTP/2 (nghttp2 via mem_recv/mem_send) and HTTP/1.1 keep-alive, all on one hd_loop.
 *
 * Knows hosts, streams and bytes; never activities or signatures. A request reaches it
 * fully built and signed; a response leaves as status, a few headers and a capped body.
 *
 * Per origin (scheme, host, port): one HTTP/2 connection carrying up to
 * min(SETTINGS_MAX_CONCURRENT_STREAMS, opts.max_streams_per_host) streams, or, when ALPN
 * does not pick h2 (https) or h2c prior knowledge is refused (http), up to
 * opts.max_h1_conns_per_host HTTP/1.1 keep-alive connections. The h1 answer is remembered
 * per origin for the client's lifetime. Requests beyond the available streams/connections
 * wait in a FIFO per origin inside the client (the caller bounds how many it submits).
 *
 * Semantics the caller can rely on (the machinery is in conn.h / conn.c / h2.c):
 * - A zero timeout disables that timer; zero max_streams_per_host / max_h1_conns_per_host /
 *   max_header_bytes mean the defaults; max_body 0 keeps no body.
 * - hd_http_origin_info reports max_streams = max_h1_conns_per_host for HTTP/1.1 origins.
 * - Timeouts: connect_timeout_ms per address tried (HD_ERR_TIMEOUT_CONNECT, then the next
 *   address); tls_timeout_ms for the handshake (HD_ERR_TIMEOUT_TLS) and for the h2c probe (a
 *   silent answer to the preface means "no h2c"); response_timeout_ms from the moment the
 *   request is put on a connection to the complete response (HD_ERR_TIMEOUT_RESPONSE; h2:
 *   the stream is reset and the connection kept, h1: the connection is closed). A request
 *   still waiting in the FIFO after connect + tls + response timeouts completes with
 *   HD_ERR_TIMEOUT_CONNECT (no open connection) or HD_ERR_TIMEOUT_RESPONSE (all busy).
 * - Retries inside the transport happen at most once per request and only when the peer
 *   cannot have processed it: h2 REFUSED_STREAM, streams above a GOAWAY's last_stream_id,
 *   streams whose HEADERS never left, and an h1 request on a reused keep-alive connection
 *   that the server closed without a byte of response. A second refusal completes with
 *   HD_ERR_REFUSED_STREAM (safe to retry later); a request possibly processed completes with
 *   HD_ERR_RESET. Falling back from h2c to HTTP/1.1 is not a retry (nothing was sent).
 * - Connection set-up failures (DNS, address guard, connect, TLS) complete every request
 *   waiting for that origin when no other connection to it is alive or being set up.
 * - 1xx responses are skipped. The body is kept up to max_body bytes (also on error, for
 *   diagnostics); bytes beyond are read and dropped, so only the response timeout ends an
 *   endless body.
 * - Memory per connection: a 16 KiB receive buffer, a 64 KiB send buffer only while output
 *   is pending (pooled per client), plus wolfSSL / nghttp2 state; per request: a pooled
 *   record and, once a body arrives, a max_body buffer that stays with the pooled record.
 */
#ifndef HD_HTTP_H
#define HD_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct hd_loop;
struct hd_dns;
struct hd_http_client;

struct hd_http_header {
    const char *name; /* lower-case */
    const char *value;
};

struct hd_http_opts {
    unsigned connect_timeout_ms;    /* TCP connect, per address tried; default 10000 */
    unsigned tls_timeout_ms;        /* TLS handshake; default 10000 */
    unsigned response_timeout_ms;   /* request sent -> complete response; default 30000 */
    unsigned idle_timeout_ms;       /* idle connection closed after; default 60000 */
    unsigned max_streams_per_host;  /* cap on concurrent h2 streams per origin; default 100 */
    unsigned max_h1_conns_per_host; /* HTTP/1.1 keep-alive pool size per origin; default 6 */
    size_t max_body;                /* response body bytes kept for the caller; default 4096 */
    size_t max_header_bytes;        /* response header block cap; default 65536 */
    const char *ca_file;            /* PEM bundle to trust; NULL: system CA bundle */
    int allow_private;              /* nonzero: allow loopback/private/reserved destinations */
    struct hd_dns *dns;             /* resolver on the same loop (borrowed, required) */
};

/* Fills opts with the defaults above (dns NULL, ca_file NULL, allow_private 0). */
void hd_http_opts_default(struct hd_http_opts *opts);

struct hd_http_resp {
    int status;            /* HTTP status, or 0 when error != 0 */
    int error;             /* 0, or negative HD_ERR_* / -errno transport failure */
    int http_version;      /* 2 or 1 (0 if no connection was made) */
    const char *retry_after; /* Retry-After value as received, or NULL */
    const char *accept_signature; /* Accept-Signature value, or NULL */
    const uint8_t *body;   /* first max_body bytes of the body (may be NULL when empty) */
    size_t body_len;
    uint64_t latency_ms;   /* submit -> completion */
};

/* Called exactly once per submitted request, from inside hd_loop_run_once (never from
 * within hd_http_submit). resp and everything it points to are valid only during the call. */
typedef void (*hd_http_done_cb)(const struct hd_http_resp *resp, void *user_data);

struct hd_http_req {
    int tls;                  /* 1: https, 0: http (h2c prior knowledge, then HTTP/1.1) */
    const char *host;         /* host name or IP literal, lower-case, no brackets (borrowed) */
    uint16_t port;
    const char *authority;    /* Host / :authority value exactly as signed, e.g. "a.example" or "a.example:8443" */
    const char *method;       /* "POST" */
    const char *path;         /* path and query, e.g. "/users/bob/inbox" */
    const struct hd_http_header *headers; /* extra headers (not host, content-length) */
    size_t nheaders;
    const uint8_t *body;
    size_t body_len;
    hd_http_done_cb on_done;
    void *user_data;
    /* Optional: called once with user_data right before the request is written on a
     * connection, never when it fails before that (no connection, TLS refused, cancelled),
     * so that costly late headers (the signature) are made only for requests that go out.
     * It fills in header values in place (the headers array stays the same). The request is
     * checked (hd_h1_check_request, size) after it, not at submit. Returns 0, or an error
     * the request completes with. */
    int (*prepare)(void *user_data);
};

/* Creates a client on loop. Returns 0, -ENOMEM, HD_ERR_INVALID (no dns), or HD_ERR_TLS when
 * the CA file or system bundle cannot be loaded. */
int hd_http_client_new(struct hd_http_client **out, struct hd_loop *loop,
                       const struct hd_http_opts *opts);

/* Closes every connection. Requests still pending complete with HD_ERR_CANCELLED during later
 * hd_loop_run_once calls; keep running the loop until hd_http_client_idle() then free. */
void hd_http_client_shutdown(struct hd_http_client *c);
/* Nonzero when no request is pending and no socket op is in flight. */
int hd_http_client_idle(const struct hd_http_client *c);
/* Frees the client; call after shutdown and idle. NULL ok. */
void hd_http_client_free(struct hd_http_client *c);

/* Queues a request. Every pointer in req (strings, headers, body) is borrowed and must stay
 * valid until on_done runs; the struct itself is copied. Returns 0 (on_done will run) or
 * -ENOMEM / HD_ERR_INVALID (on_done will not run). HD_ERR_INVALID: missing fields, CR/LF/controls
 * in any field, a header name not lower-case or reserved (see hd_h1_check_request in h1.h),
 * more than 48 headers, or a request head over 16 KiB. */
int hd_http_submit(struct hd_http_client *c, const struct hd_http_req *req);

/* Requests submitted and not yet completed, for one origin or (host NULL) in all. */
size_t hd_http_inflight(const struct hd_http_client *c, const char *host, uint16_t port, int tls);

/* Per-origin transport facts for the scheduler: 2 or 1 once known (0 unknown), and the
 * stream limit currently in force (server's SETTINGS_MAX_CONCURRENT_STREAMS capped by opts). */
int hd_http_origin_info(const struct hd_http_client *c, const char *host, uint16_t port, int tls,
                        int *http_version, unsigned *max_streams);

/* Cumulative transport counters of one client (for metrics), plus current gauges. */
struct hd_http_stats {
    uint64_t conns_opened;     /* connection attempts started (DNS onwards) */
    uint64_t conns_h2;         /* connections that reached HTTP/2 */
    uint64_t conns_h1;         /* connections that reached HTTP/1.1 */
    uint64_t tls_handshakes;   /* completed TLS handshakes */
    uint64_t tls_resumed;      /* ... of which resumed a session */
    uint64_t setup_failures;   /* connections that failed before carrying requests */
    uint64_t retries;          /* requests retried on a new connection (unprocessed) */
    uint64_t goaways;          /* GOAWAY frames received */
    uint64_t response_timeouts;
    size_t conns_open;         /* connection objects alive now (closing included) */
    size_t inflight;           /* requests submitted and not completed */
};

/* Fills *out. Never fails. */
void hd_http_stats(const struct hd_http_client *c, struct hd_http_stats *out);

#endif

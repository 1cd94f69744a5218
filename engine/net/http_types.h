/* The values the HTTP client trades in: request, response, options and counters. Types only:
 * the functions that take them are in http.h (the client) and in the transport modules
 * below it, which include this header rather than the client's.
 */
#ifndef HD_HTTP_TYPES_H
#define HD_HTTP_TYPES_H

#include <stddef.h>
#include <stdint.h>

struct hd_dns;
struct hd_tls_cache;
struct hd_tls_trust;

#define HD_HTTP_MAX_HEADERS 48 /* extra request headers per request (h2 builds them inline) */

struct hd_http_header {
    const char *name; /* lower-case */
    const char *value;
};

/* Options of a client. hd_http_opts_default (http.h) fills in the defaults below. */
struct hd_http_opts {
    unsigned connect_timeout_ms;    /* TCP connect, per address tried; default 10000 */
    unsigned tls_timeout_ms;        /* TLS handshake; default 10000 */
    unsigned response_timeout_ms;   /* request sent -> complete response; default 30000 */
    unsigned idle_timeout_ms;       /* idle connection closed after; default 60000 */
    unsigned max_idle_conns;        /* idle connections kept at most (the oldest idle one is
                                     * closed first); 0: no cap but the time-out; default 128 */
    size_t max_idle_bytes;          /* estimated memory of the idle connections at most (the
                                     * same order; HD_CONN_IDLE_TLS_BYTES per TLS connection,
                                     * HD_CONN_IDLE_PLAIN_BYTES per cleartext one); 0: none */
    unsigned max_streams_per_host;  /* cap on concurrent h2 streams per origin; default 100 */
    unsigned max_h1_conns_per_host; /* HTTP/1.1 keep-alive pool size per origin; default 6 */
    size_t max_body;                /* response body bytes kept for the caller; default 4096 */
    size_t max_header_bytes;        /* response header block cap; default 65536 */
    const char *ca_file;            /* PEM bundle to trust; NULL: system CA bundle */
    int allow_private;              /* nonzero: allow loopback/private/reserved destinations */
    struct hd_dns *dns;             /* resolver on the same loop (borrowed, required) */
    /* Resumable TLS sessions by origin, shared with other clients (tlscache.h; borrowed,
     * must outlive the client). NULL: the client keeps its own table of
     * HD_HTTP_OWN_TLS_SESSIONS. */
    struct hd_tls_cache *tls_cache;
    /* The trust store, shared with other clients (tls.h; borrowed, a reference is taken).
     * NULL: the client makes its own from ca_file. */
    struct hd_tls_trust *tls_trust;
};
#define HD_HTTP_OWN_TLS_SESSIONS 4096
/* What an open idle connection holds, for max_idle_bytes, as measured with heaptrack and peak
 * RSS over 300 and 2,300 idle connections to fedisim (wolfSSL 5.5.4, nghttp2 1.52): over TLS
 * about 100 KiB (wolfSSL's session object, sized for a 9-certificate chain, 37 KiB; the
 * WOLFSSL object and its buffers about 20 KiB; nghttp2's session with its 16 KiB frame
 * buffer, 26 KiB; the 16 KiB receive buffer; the connection). Over h2c, once used: about
 * 40 KiB (heaptrack at the peak of a 20,000-host h2c fan-out, about 1,750 connections open:
 * nghttp2 45 MB with its HPACK tables filled, receive buffers 28.6 MB). */
#define HD_CONN_IDLE_TLS_BYTES (100u * 1024u)
#define HD_CONN_IDLE_PLAIN_BYTES (40u * 1024u)
/* Idle connections that were never reused (idle once, after their first busy spell: in a
 * fan-out, hosts done with) hold at most this fraction of max_idle_bytes; connections reused
 * at least once (hosts that receive again and again) may hold all of it. */
#define HD_CONN_IDLE_FIRST_DIV 8u

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
    size_t nheaders;          /* at most HD_HTTP_MAX_HEADERS */
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
    uint64_t origins_freed;    /* origins (scheme, host, port) dropped once idle */
    size_t origins;            /* origins kept now */
    size_t conns_open;         /* connection objects alive now (closing included) */
    size_t inflight;           /* requests submitted and not completed */
};

#endif

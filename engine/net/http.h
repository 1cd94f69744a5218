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
 * Semantics the caller can rely on (the machinery: pool.c dispatches onto connections,
 * conn.c runs them, h1.c and h2.c frame the requests):
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
 * - Memory per connection: a 16 KiB receive buffer, a 32 KiB send buffer only while output
 *   is pending (pooled per client), plus wolfSSL / nghttp2 state; per request: a pooled
 *   record and, once a body arrives, a max_body buffer that stays with the pooled record.
 * - An origin with no connection, no request and no TLS session is forgotten; one known to
 *   speak HTTP/1.1 only is kept with that answer. hd_http_origin_info then says
 *   HD_ERR_NOT_FOUND until the host is asked again.
 */
#ifndef HD_HTTP_H
#define HD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "http_types.h"

struct hd_loop;
struct hd_http_client;

/* Fills opts with the defaults (http_types.h; dns NULL, ca_file NULL, allow_private 0). */
void hd_http_opts_default(struct hd_http_opts *opts);

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

/* Fills *out. Never fails. */
void hd_http_stats(const struct hd_http_client *c, struct hd_http_stats *out);

#endif

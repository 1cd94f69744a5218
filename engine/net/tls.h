/* TLS client sessions over memory buffers (wolfSSL with custom I/O callbacks).
 *
 * wolfSSL never sees a socket: ciphertext received by the ring is lent with hd_tls_feed, and
 * ciphertext wolfSSL produces is handed to a sink callback that appends it to the
 * connection's send buffer. Only tls.c includes wolfSSL headers.
 *
 * Handshake CPU (Debian's wolfSSL has no SP assembly): X25519 is offered first as the TLS 1.3
 * key share (P-256 and others follow, reached by HelloRetryRequest), and ECDSA signature
 * checks go to OpenSSL through wolfSSL's public-key callback, with a memory of valid
 * certificate signatures (tls_pk.h). Verification itself is wolfSSL's, unchanged.
 */
#ifndef HD_TLS_H
#define HD_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct hd_tls_trust;
struct hd_tls_ctx;
struct hd_tls;

/* Worst-case ciphertext overhead for n plaintext bytes (record headers, IVs, tags). */
#define HD_TLS_OVERHEAD(n) ((((n) / 16384) + 1) * 64)

/* Accepts n ciphertext bytes to send. Returns 0, or -1 when they do not fit (the caller must
 * make sure they always do: see HD_TLS_OVERHEAD). */
typedef int (*hd_tls_sink_cb)(const uint8_t *data, size_t n, void *user_data);

/* The trust store and client settings (TLS 1.2 minimum, peer verification on, the key
 * groups below), one wolfSSL client context shared by every thread of a process: wolfSSL
 * allows a context to be shared once it is fully set up (its certificate manager locks its
 * CA table; the session reference count is locked), and it is only read after that.
 * ca_file (PEM) is parsed here, so that a bad file is a clear error at start; with NULL the
 * system CA bundle is parsed at the first TLS session instead (hd_tls_new), so that runs
 * without TLS never read it. Reference counted: hd_tls_trust_free drops a reference, each
 * hd_tls_ctx holds one. Returns 0, -ENOMEM or HD_ERR_TLS. */
int hd_tls_trust_new(struct hd_tls_trust **out, const char *ca_file);
void hd_tls_trust_free(struct hd_tls_trust *tr); /* NULL ok */
/* 1 once the trust store is parsed and the shared context built, else 0. */
int hd_tls_trust_loaded(struct hd_tls_trust *tr);

/* A thread's client context on a shared trust store: it adds the thread's memory of valid
 * signatures (tls_pk.h, not locked: use a context from one thread only). Returns 0 or
 * -ENOMEM. */
int hd_tls_ctx_new_shared(struct hd_tls_ctx **out, struct hd_tls_trust *trust);
/* The same on a trust store of its own (hd_tls_trust_new(ca_file)). Returns 0, -ENOMEM or
 * HD_ERR_TLS. */
int hd_tls_ctx_new(struct hd_tls_ctx **out, const char *ca_file);
void hd_tls_ctx_free(struct hd_tls_ctx *ctx);
/* Frees this thread's wolfSSL per-thread caches; call at the end of every thread that used TLS. */
void hd_tls_thread_cleanup(void);

/* Creates a session for host (SNI and name verification for names, IP verification for IP
 * literals), offering ALPN "h2,http/1.1". The first session on a trust store without a CA
 * file parses the system CA bundle (once; a failure is logged and every later session
 * fails the same way). Returns 0, -ENOMEM or HD_ERR_TLS. */
int hd_tls_new(struct hd_tls **out, struct hd_tls_ctx *ctx, const char *host,
               hd_tls_sink_cb sink, void *user_data);
void hd_tls_free(struct hd_tls *t);

/* Serialised sessions (hd_tls_session_export / hd_tls_session_import): a session's secrets
 * and ticket in wolfSSL's own format, without the peer's certificate chain, a few hundred
 * bytes, for a table shared between threads and kept across runs (tlscache.h). They hold a
 * resumption secret: never log them. HD_TLS_SESSION_MAX bounds one. */
#define HD_TLS_SESSION_MAX 4096
/* TLS 1.3 caps a ticket's lifetime at 7 days (RFC 8446 4.6.1). */
#define HD_TLS_TICKET_MAX_S (7u * 86400u)

/* Writes this connection's session, when one worth keeping appeared since the last call
 * (TLS 1.2: after the handshake; TLS 1.3: after each NewSessionTicket; call it after
 * the handshake and after reads), into buf (cap bytes) and sets *len and *expires_ms (wall
 * clock: the session's issue time plus the server's lifetime hint, at most 7 days). Returns
 * 1 when written, 0 when there is nothing new, HD_ERR_TOO_LARGE, -ENOMEM or HD_ERR_TLS. */
int hd_tls_session_export(struct hd_tls *t, uint8_t *buf, size_t cap, size_t *len,
                          uint64_t *expires_ms);
/* Offers a serialised session for resumption (before the first hd_tls_handshake). Offer only
 * what hd_tls_session_export wrote for a verified connection to this same host name and
 * port: a resumed handshake does not verify the certificate again. Returns 0, or
 * HD_ERR_INVALID when the bytes do not parse or the session expired (the handshake is then
 * a full one). */
int hd_tls_session_import(struct hd_tls *t, const uint8_t *der, size_t len);

/* After the handshake: 1 when it resumed a session. */
int hd_tls_resumed(struct hd_tls *t);

/* Lends received ciphertext until the next call that returns "need input". */
void hd_tls_feed(struct hd_tls *t, const uint8_t *data, size_t n);
/* Unconsumed fed bytes (0 after a call asked for more input). */
size_t hd_tls_pending_input(const struct hd_tls *t);

/* Drives the handshake. Returns 0 when done, 1 when more input is needed, HD_ERR_TLS_VERIFY
 * or HD_ERR_TLS. */
int hd_tls_handshake(struct hd_tls *t);
/* After the handshake: 1 when ALPN selected "h2". */
int hd_tls_alpn_h2(struct hd_tls *t);

/* Decrypts into buf. Returns bytes (> 0), 0 when more input is needed, HD_ERR_RESET on
 * close_notify, HD_ERR_TLS on failure. */
ssize_t hd_tls_read(struct hd_tls *t, uint8_t *buf, size_t cap);
/* Encrypts n bytes through the sink. Returns 0 or HD_ERR_TLS. */
int hd_tls_write(struct hd_tls *t, const uint8_t *data, size_t n);

#endif

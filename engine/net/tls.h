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

struct hd_tls_ctx;
struct hd_tls;
struct hd_tls_session; /* a resumable session (opaque) */

/* Worst-case ciphertext overhead for n plaintext bytes (record headers, IVs, tags). */
#define HD_TLS_OVERHEAD(n) ((((n) / 16384) + 1) * 64)

/* Accepts n ciphertext bytes to send. Returns 0, or -1 when they do not fit (the caller must
 * make sure they always do: see HD_TLS_OVERHEAD). */
typedef int (*hd_tls_sink_cb)(const uint8_t *data, size_t n, void *user_data);

/* Creates a client context trusting ca_file (PEM) or, when NULL, the system CA bundle.
 * TLS 1.2 minimum, peer verification on. One per thread (its verification state is not
 * locked). Returns 0, -ENOMEM or HD_ERR_TLS. */
int hd_tls_ctx_new(struct hd_tls_ctx **out, const char *ca_file);
void hd_tls_ctx_free(struct hd_tls_ctx *ctx);
/* Frees this thread's wolfSSL per-thread caches; call at the end of every thread that used TLS. */
void hd_tls_thread_cleanup(void);

/* Creates a session for host (SNI and name verification for names, IP verification for IP
 * literals), offering ALPN "h2,http/1.1". Returns 0, -ENOMEM or HD_ERR_TLS. */
int hd_tls_new(struct hd_tls **out, struct hd_tls_ctx *ctx, const char *host,
               hd_tls_sink_cb sink, void *user_data);
void hd_tls_free(struct hd_tls *t);

/* Offers a saved session for resumption (before the first hd_tls_handshake). Only sessions
 * from a verified connection to the same origin may be offered: a resumed handshake does not
 * verify the certificate again. */
void hd_tls_set_session(struct hd_tls *t, struct hd_tls_session *s);
/* Returns a new reference to this connection's session once it is worth keeping (TLS 1.2:
 * after the handshake; TLS 1.3: after each NewSessionTicket), else NULL. Call after the
 * handshake and after reads. */
struct hd_tls_session *hd_tls_take_session(struct hd_tls *t);
void hd_tls_session_free(struct hd_tls_session *s);
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

/* Resumable TLS sessions by origin, shared by the HTTP clients of every loop thread.
 *
 * One small table under one mutex: origin (host name and port) -> the serialised session of
 * the last verified connection to it (hd_tls_session_export) and its expiry. Bounded by a
 * count (least recently used dropped first) and by each session's own lifetime (an expired
 * one is never handed out and is dropped when met). A session is only ever handed back for
 * the exact host name and port it was stored under, so a ticket from one host is never
 * offered to another. The bytes are resumption secrets: this module never logs them and
 * wipes them when it drops them.
 *
 * Entries changed since the last hd_tls_cache_take_dirty are marked, so that an owner can
 * write them to its store in batches (engine/sched/tickets.c) rather than per handshake.
 * Locking: every function takes the mutex for its own duration only.
 */
#ifndef HD_TLSCACHE_H
#define HD_TLSCACHE_H

#include <stddef.h>
#include <stdint.h>

#define HD_TLS_CACHE_MAX_DEFAULT 32768 /* sessions kept; about 400-600 bytes each */

struct hd_tls_cache;

/* One entry handed out by hd_tls_cache_take_dirty: valid during the callback only. */
struct hd_tls_cache_rec {
    const char *host;
    uint16_t port;
    const uint8_t *der;
    size_t len;
    uint64_t expires_ms; /* wall clock */
};

/* Creates a table of at most max entries (0: HD_TLS_CACHE_MAX_DEFAULT). Returns 0 or -ENOMEM. */
int hd_tls_cache_new(struct hd_tls_cache **out, size_t max);
/* Frees c (NULL is fine), wiping the sessions. */
void hd_tls_cache_free(struct hd_tls_cache *c);

/* Stores (or replaces) the session of host:port, copied, as the most recently used; the
 * least recently used entry goes when the table is full. dirty: 1 when it is new to the
 * store (a handshake), 0 when it came from the store. An entry already expired at now_ms is
 * not stored. Returns 0, HD_ERR_INVALID (empty or over HD_TLS_SESSION_MAX) or -ENOMEM. */
int hd_tls_cache_put(struct hd_tls_cache *c, const char *host, uint16_t port,
                     const uint8_t *der, size_t len, uint64_t expires_ms, int dirty,
                     uint64_t now_ms);
/* Copies the session of host:port into buf (cap bytes) and marks it used. Returns its length
 * (> 0), 0 when there is none or it expired at now_ms (then it is dropped), or
 * HD_ERR_TOO_LARGE when cap is too small. */
long hd_tls_cache_get(struct hd_tls_cache *c, const char *host, uint16_t port, uint8_t *buf,
                      size_t cap, uint64_t now_ms);
/* Drops the session of host:port (it failed to resume, or the host refused it). */
void hd_tls_cache_drop(struct hd_tls_cache *c, const char *host, uint16_t port);
/* Entries now held. */
size_t hd_tls_cache_count(struct hd_tls_cache *c);

/* Hands every entry changed since the last call (and not expired at now_ms) to cb, in
 * groups of up to max (0: all): copies are made under the mutex, cb runs without it, so
 * loop threads never wait for the store. cb returns 0 to go on; on an error the group's
 * entries are marked changed again and the error is returned. Returns the number handed
 * out (>= 0) or cb's error. */
typedef int (*hd_tls_cache_save_cb)(const struct hd_tls_cache_rec *recs, size_t n,
                                    void *user_data);
long hd_tls_cache_take_dirty(struct hd_tls_cache *c, size_t max, uint64_t now_ms,
                             hd_tls_cache_save_cb cb, void *user_data);

#endif

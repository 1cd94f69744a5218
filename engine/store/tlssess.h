/* Resumable TLS client sessions kept across runs (table "tlssess"): origin "host:port" ->
 * expiry (wall-clock milliseconds, 8 bytes big-endian) and the serialised session. A store
 * from before this table gets it, empty, when it is opened. The values hold resumption
 * secrets: the store's files are 0600, and nothing here logs them. */
#ifndef HD_TLSSESS_H
#define HD_TLSSESS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define HD_TLSSESS_VALUE_MAX 8192 /* a session bigger than this is neither stored nor loaded */

struct hd_tlssess_rec {
    const char *host; /* lower-case host name or IP literal */
    uint16_t port;
    const uint8_t *der;
    size_t len;
    uint64_t expires_ms;
};

/* Writes recs (n of them) in one write transaction, each replacing the origin's previous
 * session. Returns 0, HD_ERR_INVALID (a record without host or bytes, or too big) or a
 * store error (nothing written). */
int hd_tlssess_save(struct hd_store *st, const struct hd_tlssess_rec *recs, size_t n);

/* Hands each session not expired at now_ms to cb (at most max of them, 0: all), and deletes
 * the expired and malformed ones, in one write transaction. cb's record is valid during the
 * call only; a nonzero return stops the walk (the deletions so far are kept). Returns the
 * number handed to cb, or a store error. */
typedef int (*hd_tlssess_cb)(const struct hd_tlssess_rec *rec, void *user_data);
long hd_tlssess_load(struct hd_store *st, uint64_t now_ms, size_t max, hd_tlssess_cb cb,
                     void *user_data);

/* Sessions stored (for tests and stats). Returns the count, or a store error. */
long hd_tlssess_count(struct hd_store *st);

#endif

/* The audience records' formats, shared by audience.c (records and reading), follow_batch.c
 * (the writer) and gone.c (removing gone followers). See audience.h for the layout. Nothing
 * outside engine/store/ includes this header. */
#ifndef HD_AUDIENCE_IMPL_H
#define HD_AUDIENCE_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "store.h"

#define HD_AUD_KEY_MAX 511 /* LMDB's default maximum key size */

/* fwactors: actor -> aid(4) follows(8) inboxes(8). */
struct hd_aud_actor {
    uint32_t aid;
    uint64_t follows, inboxes;
};

/* Reads actor's record. Returns 0, HD_ERR_NOT_FOUND (also for an empty or too long actor),
 * HD_ERR_INVALID (damaged) or a store error. */
int hd_audience_actor_get(struct hd_store *st, struct hd_txn *txn, const char *actor,
                          struct hd_aud_actor *r);
int hd_audience_actor_put(struct hd_store *st, struct hd_txn *txn, const char *actor,
                          const struct hd_aud_actor *r);
/* Allocates the next actor id (meta "fwact_next"). Returns 0, HD_ERR_FULL or a store error. */
int hd_audience_next_aid(struct hd_store *st, struct hd_txn *txn, uint32_t *aid);

/* Follower URL -> follow key body (scheme code byte + rest) in out (cap >= strlen + 1).
 * Returns its length. */
size_t hd_audience_fkey(const char *follower, uint8_t *out);
/* Follow key body -> follower URL in out (cap >= n + 8). Returns its length. */
size_t hd_audience_fkey_url(const uint8_t *body, size_t n, char *out);

/* Appends to e the rest of an inbox after the prefix it shares with the follower URL: a
 * one-byte code for the usual rests ("/inbox", "inbox"), else the string. */
void hd_audience_sfx_enc(struct hd_enc *e, const char *s, size_t n);
/* Decodes a follow value against its follower URL: inbox and shared inbox into caller buffers
 * of HD_FOLLOW_URL_MAX + 1 (*has_shared 0: none, shared empty). Returns 0, HD_ERR_INVALID or
 * HD_ERR_SCHEMA. */
int hd_audience_follow_decode(const char *follower, size_t flen, const void *v, size_t vlen,
                              char *inbox, char *shared, int *has_shared);

#endif

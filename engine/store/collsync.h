/* FEP-8fcf Collection-Synchronization digests: for each actor and each authority (host[:port]
 * as a URL states it, default port left out), the number of the actor's followers whose id has
 * that authority and the XOR of the SHA-256 of each of those ids. Kept up to date in O(1) per
 * follow added or removed (follow_batch.c), read by the runner when it sends a followers-only
 * Create to a host.
 *
 *   collsync aid(4) authority -> count(4) digest(32)     (absent when count is 0)
 *   meta     "collsync_built" -> u8 1 once the digests cover every stored follow
 */
#ifndef HD_COLLSYNC_H
#define HD_COLLSYNC_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define HD_COLLSYNC_DIGEST_LEN 32

/* The authority of url (scheme://authority/...): *len bytes at the returned pointer, or NULL
 * when url has no "://". */
const char *hd_collsync_authority(const char *url, size_t url_len, size_t *len);

/* Adds (delta 1) or removes (delta -1) follower (an id URL of len bytes) to the digest of
 * actor id aid. Returns 0 or a store error. */
int hd_collsync_follow(struct hd_store *st, struct hd_txn *txn, uint32_t aid, const char *follower,
                       size_t len, int delta);

/* Reads the digest of actor's followers on authority: *count 0 (and a zero digest) when there
 * are none. Returns 0 or a store error. */
int hd_collsync_get(struct hd_store *st, struct hd_txn *txn, const char *actor,
                    const char *authority, size_t authority_len, uint32_t *count,
                    uint8_t digest[HD_COLLSYNC_DIGEST_LEN]);

/* Builds the digests from the stored follows, once per store (a store written before they
 * existed): a no-op when meta "collsync_built" is set. Called at open. */
int hd_collsync_ensure(struct hd_store *st, struct hd_txn *txn);

#endif

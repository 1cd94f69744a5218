/* Audiences: who follows an actor, and the distinct inboxes a post to them goes to.
 *
 * A follow is (actor, follower, inbox, shared inbox or none). The follower's delivery inbox
 * is its shared inbox when it has one, else its inbox. Per actor the store keeps the distinct
 * delivery inboxes with a reference count (how many followers deliver there), so expanding
 * "to followers" reads one row per distinct inbox, never one per follower; the last follower
 * leaving an inbox removes its row.
 *
 * Compact by construction (a million follows must cost at most 150 bytes each): the actor is
 * interned to a 4-byte id; the follow key is id + the follower URL with its scheme folded into
 * one byte; inbox and shared inbox are stored as (length of the prefix shared with the follower
 * URL, the rest), the rest being a one-byte code when it is "/inbox" or "inbox", so the usual
 * https://host/users/x/inbox and https://host/inbox cost six bytes in all. Inbox URLs are normalised (hd_url_parse + hd_url_format) before they are stored,
 * so they compare equal to the explicit recipients ingest normalises the same way.
 *
 * All writes go through a batch (follow_batch.c): hd_follow_batch_add validates and
 * normalises one operation, hd_follow_batch_apply sorts the batch by key (so a fresh import
 * appends pages instead of splitting them), keeps the last operation per (actor, follower),
 * and applies it with aggregated reference-count changes in the caller's write transaction.
 * Records and reads are in audience.c; followers whose inbox is gone leave through gone.h.
 */
#ifndef HD_AUDIENCE_H
#define HD_AUDIENCE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define HD_FOLLOW_URL_MAX 500 /* actor, follower, inbox and shared inbox URLs */

struct hd_follow {
    const char *actor, *follower, *inbox, *shared_inbox; /* shared_inbox NULL: none */
};

struct hd_follow_stats {
    uint64_t added, updated, unchanged, removed, absent;
};

struct hd_follow_batch;

/* Creates an empty batch. Returns 0 or -ENOMEM. */
int hd_follow_batch_new(struct hd_follow_batch **out);
void hd_follow_batch_free(struct hd_follow_batch *b); /* NULL ok */
size_t hd_follow_batch_len(const struct hd_follow_batch *b);

/* Adds "follow f" (remove = 0; inbox required) or "unfollow" (remove = 1; only actor and
 * follower are read) to the batch, copying what it needs. lineno is kept for the caller.
 * Returns 0; HD_ERR_INVALID with *why set to a static reason (the batch is unchanged);
 * HD_ERR_FULL when the batch holds 16M operations or 1 GiB; -ENOMEM. */
int hd_follow_batch_add(struct hd_follow_batch *b, const struct hd_follow *f, int remove,
                        const char **why);

/* Applies the batch inside the write transaction txn (the caller commits) and empties it.
 * Several operations on the same (actor, follower) resolve to the last one added. Adds to *s
 * the outcome counts. Returns 0, -ENOMEM or a store error (then the caller must abort txn). */
int hd_follow_batch_apply(struct hd_store *st, struct hd_txn *txn, struct hd_follow_batch *b,
                          struct hd_follow_stats *s);

/* Follower count and distinct delivery inboxes of actor. Returns 0 (zeros for an actor
 * without follows) or a store error. */
int hd_follow_count(struct hd_store *st, struct hd_txn *txn, const char *actor, uint64_t *follows,
                    uint64_t *inboxes);

/* One follow as listed: strings valid only during the callback. */
struct hd_follow_view {
    const char *follower, *inbox, *shared_inbox; /* shared_inbox NULL: none */
};
typedef int (*hd_follow_cb)(const struct hd_follow_view *f, void *user_data);
/* Calls cb for each follower of actor in key order; stops when cb returns nonzero.
 * Returns 0 or a store error. */
int hd_follow_list(struct hd_store *st, struct hd_txn *txn, const char *actor, hd_follow_cb cb,
                   void *user_data);

/* One distinct delivery inbox: url (normalised, not NUL-terminated), its host as the queue
 * keys spell it (lower-case, IPv6 without brackets), and the followers delivering there.
 * Borrowed from txn: valid only during the callback. */
struct hd_aud_inbox {
    const char *url, *host;
    size_t url_len, host_len;
    uint32_t refs;        /* followers delivering here */
    uint32_t shared_refs; /* of which as their shared inbox (> 0: a shared inbox) */
};
typedef int (*hd_aud_cb)(const struct hd_aud_inbox *in, void *user_data);
/* Calls cb for each distinct delivery inbox of actor (O(distinct inboxes) rows). Stops when
 * cb returns nonzero (that value is returned). Returns 0, a cb value, or a store error. */
int hd_audience_foreach(struct hd_store *st, struct hd_txn *txn, const char *actor, hd_aud_cb cb,
                        void *user_data);

/* 1 if url (normalised) is one of actor's delivery inboxes, 0 if not, or a store error. */
int hd_audience_has(struct hd_store *st, struct hd_txn *txn, const char *actor, const char *url);

/* Host of a normalised http(s) URL as hd_url_parse spells it. Returns 0 or HD_ERR_INVALID. */
int hd_url_host_of(const char *url, size_t len, const char **host, size_t *host_len);

#endif

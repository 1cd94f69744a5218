/* Gone followers: personal inboxes that answered 404 or 410 (`herald gone list`), and the
 * removal of the followers who delivered there from an actor's audience. Acknowledgements
 * (hd_queue_apply) call both when a delivery to a personal inbox ends that way. */
#ifndef HD_GONE_H
#define HD_GONE_H

#include <stdint.h>

#include "codec.h"
#include "store.h"

/* Records that inbox answered status (404/410) now (wall clock); replaces an older record.
 * Returns 0, HD_ERR_INVALID (empty, or longer than a key: 511 bytes) or a store error. */
int hd_gone_add(struct hd_store *st, struct hd_txn *txn, const char *inbox, int status);
typedef int (*hd_gone_cb)(struct hd_slice inbox, uint64_t at_ms, int status, void *user_data);
/* Visits the gone inboxes in inbox order; cb nonzero stops. Returns 0 or a store error. */
int hd_gone_foreach(struct hd_store *st, struct hd_txn *txn, hd_gone_cb cb, void *user_data);

/* A personal inbox answered 404 or 410: the followers of actor that deliver there (the inbox
 * is theirs, they have no shared inbox) leave the audience. They are found by the follower URL
 * such an inbox is built from (the inbox without its last segment "inbox", as Mastodon,
 * Misskey, Pleroma, GoToSocial and Lemmy spell it) and, when that finds none and actor has at
 * most HD_GONE_SCAN_MAX follows, by a scan of its follows. Removed through a batch, so
 * reference counts stay exact. *removed receives how many. Inside the caller's write
 * transaction. Returns 0 or a store error / -ENOMEM. */
#define HD_GONE_SCAN_MAX 20000
int hd_follow_remove_gone(struct hd_store *st, struct hd_txn *txn, const char *actor,
                          const char *inbox, uint64_t *removed);

#endif

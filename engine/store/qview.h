/* The queue as an operator sees it (`herald queue list|flush|shape`): every queued delivery
 * across hosts with its state, attempts, next due time and last error, in queue-key order
 * (host, then activity seq and inbox index), and "retry now" for a host or all of them.
 * Read-mostly administrative walks: never on a delivery path. */
#ifndef HD_QVIEW_H
#define HD_QVIEW_H

#include <stdint.h>

#include "hostctl.h"
#include "queue.h"
#include "store.h"

/* One queued delivery as the view shows it. Strings borrowed from the txn; host is
 * NUL-terminated (the key's host part), the others are slices (error.p NULL when none). */
struct hd_qview_ent {
    const uint8_t *key; /* host\0seq\idx: pass it back as `after` to continue past this one */
    size_t keylen;
    const char *host;
    uint64_t seq;
    uint32_t idx;
    struct hd_slice inbox;
    uint32_t attempts;      /* 0: never tried (pending); more: retrying */
    uint64_t not_before_ms; /* next due, wall clock ms; 0 = now */
    uint64_t enqueued_ms;
    uint32_t status;        /* HTTP status of the last attempt, 0 for none or a transport error */
    struct hd_slice error;  /* the last attempt's short reason */
    uint32_t flags;         /* HD_QF_* */
};

typedef int (*hd_qview_cb)(const struct hd_qview_ent *e, void *user_data);

/* Visits queued deliveries in key order: host's only (host not NULL), else every host's.
 * Starts strictly after the key `after` (after_len bytes; NULL or 0: from the start). cb
 * returning nonzero stops the walk with that value. Undecodable entries are skipped. Returns 0,
 * cb's value, HD_ERR_INVALID (host too long) or a store error. */
int hd_qview_walk(struct hd_store *st, struct hd_txn *txn, const char *host, const uint8_t *after,
                  size_t after_len, hd_qview_cb cb, void *user_data);

/* Makes every queued delivery of host (NULL: of every host) that waits for a later retry due
 * now (its attempts and last error are kept), and bumps the controls' generation so that a
 * running engine looks at its queues again. *n receives how many changed. Returns 0,
 * HD_ERR_INVALID or a store error (nothing changed; the caller aborts txn). */
int hd_qview_flush(struct hd_store *st, struct hd_txn *txn, const char *host, uint64_t now_ms,
                   uint64_t *n);

/* Moves every queued delivery of host into the dead letters with status 0 and the reason
 * HD_DEAD_BLOCKED, keeping its activity body (the letter holds the reference) and its flags.
 * The host record loses them from queued (and retrying) and counts them as failed, as
 * hd_dead_retry expects when it brings letters back; c->dropped counts them (the caller
 * writes c back before committing). *n receives how many. Returns 0, HD_ERR_INVALID or a
 * store error. */
int hd_qview_block_host(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                        const char *host, uint64_t now_ms, uint64_t *n);

#endif

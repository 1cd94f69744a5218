/* One activity's delivery status: naming an activity (id URL or sequence number), its counts
 * (struct hd_actstat, store.h) with the failing hosts and their last errors, and the holds
 * (activities whose deliveries wait for their not_before time).
 *
 * The counts are written where deliveries change state: enqueue (enqueue.c), acknowledgements
 * (ack.c), drops and requeues (queue.c), cancellation (cancel.c). Reading one activity's status
 * costs one record and at most HD_ACTSTAT_FAIL_MAX failing-host records, never a queue scan. */
#ifndef HD_ACTSTAT_H
#define HD_ACTSTAT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "store.h"
#include "url.h"

/* Finds the activity named by text: a decimal sequence number, or the activity's id URL.
 * Returns 0 with *seq set; HD_ERR_NOT_FOUND (no such activity); HD_ERR_INVALID (empty, or
 * longer than 500 bytes); or a store error. */
int hd_act_resolve(struct hd_store *st, struct hd_txn *txn, const char *text, uint64_t *seq);

struct hd_act_failhost {
    char host[HD_HOST_MAX];
    uint32_t status; /* HTTP status of the last failure, 0: a transport error */
    uint64_t at_ms;
    char error[HD_ERRTEXT_MAX];
};

/* The status of one activity as hd_act_status reads it. */
struct hd_act_status {
    uint64_t seq;
    struct hd_actstat a;
    int recorded;         /* 0: no record (a migrated store's activity with nothing queued) */
    uint64_t held;        /* of a.queued: waiting for the hold (now < a.not_before_ms) */
    uint64_t pending;     /* of a.queued: due, never attempted */
    size_t nfail;
    struct hd_act_failhost fail[HD_ACTSTAT_FAIL_MAX];
};

/* Reads the status of activity seq at wall time now_ms into *out. Returns 0 or a store
 * error (an activity without a record reads as all zero with recorded = 0). */
int hd_act_status(struct hd_store *st, struct hd_txn *txn, uint64_t seq, uint64_t now_ms,
                  struct hd_act_status *out);

/* A delivery of activity seq (counts *a, in hand) to host failed (status, error): the host is
 * recorded among its failing hosts, or its last error updated (at most HD_ACTSTAT_FAIL_MAX
 * hosts; a.nfail counts them). ok = 1: it succeeded there, and the host leaves the list.
 * Returns 0, -ENOMEM or a store error. */
int hd_actstat_host(struct hd_store *st, struct hd_txn *txn, uint64_t seq, struct hd_actstat *a,
                    const char *host, int ok, uint32_t status, const char *error,
                    uint64_t now_ms);

/* Holds: activity seq's deliveries wait until not_before_ms. Index only: the deliveries
 * themselves carry the time (their not_before). Returns 0 or a store error. */
int hd_holds_put(struct hd_store *st, struct hd_txn *txn, uint64_t not_before_ms, uint64_t seq);
int hd_holds_del(struct hd_store *st, struct hd_txn *txn, uint64_t not_before_ms, uint64_t seq);
/* Removes up to max index entries of holds that ended by now_ms (every enqueue does a few, so
 * the index holds about the live holds only). Returns 0 or a store error. */
int hd_holds_prune(struct hd_store *st, struct hd_txn *txn, uint64_t now_ms, size_t max);
/* Deliveries held at wall time now_ms: the queued deliveries of every activity whose hold
 * has not ended. Costs one record per held activity (never a queue scan); index entries of
 * ended holds are removed as a side effect when txn is a write transaction (write = 1).
 * Returns 0 with *held set, or a store error. */
int hd_holds_count(struct hd_store *st, struct hd_txn *txn, uint64_t now_ms, int write,
                   uint64_t *held);

#endif

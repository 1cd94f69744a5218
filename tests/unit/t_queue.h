/* Shared by the unit tests that need queued deliveries: one activity enqueued to up to 8
 * inbox URLs in its own committed transaction. Include after t.h. */
#ifndef HD_T_QUEUE_H
#define HD_T_QUEUE_H

#include "hostrec.h"
#include "queue.h"
#include "store.h"
#include "url.h"

/* Enqueues activity (id, type, object id or NULL) by https://me.example/u/a to inboxes[n]
 * (n <= 8) and returns its seq. Fails the test on any error. */
static inline uint64_t t_enqueue(struct hd_store *st, const char *id, const char *type,
                                 const char *obj, const char *const *inboxes, size_t n)
{
    struct hd_url u[8];
    struct hd_activity_in a = {id, type, "https://me.example/u/a", obj, "{\"x\":1}", 7, 0, 0, 0};
    struct hd_counters c;
    struct hd_txn *txn;
    uint64_t seq;
    T_OK(n <= 8);
    for (size_t i = 0; i < n; i++)
        T_EQ_INT(hd_url_parse(inboxes[i], &u[i]), 0);
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(hd_queue_enqueue(st, txn, &c, &a, u, NULL, n, 1000, &seq), 0);
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    return seq;
}

/* The store's counters, and the sum of its host records, each read in a snapshot of its own. */
static inline struct hd_counters t_counters(struct hd_store *st)
{
    struct hd_counters c;
    struct hd_txn *txn;

    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    hd_store_abort(txn);
    return c;
}

static inline struct hd_host_sum t_host_sum(struct hd_store *st)
{
    struct hd_host_sum hs;
    struct hd_txn *txn;

    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_host_sum(st, txn, &hs), 0);
    hd_store_abort(txn);
    return hs;
}

#endif

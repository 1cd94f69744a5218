/* Per-host delivery queues over the store: enqueue, scan, acknowledge (done / retry / dead).
 *
 * A delivery is (activity seq, inbox); it lives in the queue DBI under host\0seq\idx, so a
 * host's deliveries sort in activity order, and all of a host's state is one key range.
 * The activity body is stored once (acts) with a count of deliveries still queued (actrem);
 * when the last one is acknowledged the body is dropped and only the id -> seq index stays
 * (for duplicate detection). */
#ifndef HD_QUEUE_H
#define HD_QUEUE_H

#include "codec.h"
#include "store.h"
#include "url.h"

#define HD_QKEY_MAX (HD_HOST_MAX + 13)
#define HD_ERRTEXT_MAX 160

struct hd_activity_in {
    const char *id, *type, *actor, *object_id; /* object_id may be NULL */
    const char *body;
    size_t body_len;
};

struct hd_host_rec {
    uint64_t queued, retrying, done, failed, failures, last_status;
    char last_error[HD_ERRTEXT_MAX];
    uint64_t last_ok_ms, last_fail_ms;
};

/* One queued delivery as read by a scan (strings borrowed from the txn). */
struct hd_qent {
    const uint8_t *key;
    size_t keylen;
    uint64_t seq;
    uint32_t idx;
    struct hd_slice inbox;
    uint32_t attempts;
    uint64_t not_before_ms; /* wall clock ms; 0 = now */
    uint64_t enqueued_ms;
};

enum hd_ack_kind { HD_ACK_DONE = 1, HD_ACK_RETRY = 2, HD_ACK_DEAD = 3 };

struct hd_ack {
    uint8_t key[HD_QKEY_MAX];
    uint16_t keylen;
    uint8_t kind;
    uint16_t status;          /* HTTP status, 0 for transport errors */
    uint32_t attempts;        /* attempts made so far including this one */
    uint64_t not_before_ms;   /* RETRY: when to try again (wall clock) */
    char error[HD_ERRTEXT_MAX]; /* RETRY/DEAD: short reason */
};

/* Builds the queue key host\0seq\idx into key (cap HD_QKEY_MAX). Returns its length. */
size_t hd_queue_key(uint8_t *key, const char *host, uint64_t seq, uint32_t idx);
/* Host part of a queue key (NUL-terminated inside the key). */
static inline const char *hd_queue_key_host(const uint8_t *key)
{
    return (const char *)key;
}

/* Looks up an activity id. Returns 0 with *seq set, or HD_ERR_NOT_FOUND. */
int hd_queue_find_activity(struct hd_store *st, MDB_txn *txn, const char *id, uint64_t *seq);

/* Persists activity a and one delivery per url (the caller has de-duplicated them) inside
 * txn, updating counters c (the caller reads them first and writes them before commit).
 * Returns 0 with *seq set, HD_ERR_DUPLICATE (with *seq the original), or a store error. */
int hd_queue_enqueue(struct hd_store *st, MDB_txn *txn, struct hd_counters *c,
                     const struct hd_activity_in *a, const struct hd_url *urls, size_t n,
                     uint64_t now_ms, uint64_t *seq);

typedef int (*hd_qent_cb)(const struct hd_qent *e, void *user_data);
/* Visits host's deliveries in key order, starting strictly after `after` (NULL/0: from the
 * start), at most max entries; cb returns nonzero to stop. *last (cap HD_QKEY_MAX) receives
 * the key of the last entry visited and *last_len its length (0 if none). Returns the number
 * visited (>= 0), or a negative error. *end is set to 1 when the host's range was exhausted. */
int hd_queue_scan(struct hd_store *st, MDB_txn *txn, const char *host, const uint8_t *after,
                  size_t after_len, size_t max, hd_qent_cb cb, void *user_data, uint8_t *last,
                  size_t *last_len, int *end);

/* Applies acknowledgements inside txn (the caller commits). Entries already gone are
 * skipped. Updates host records and counters c. Returns 0 or a store error. */
int hd_queue_apply(struct hd_store *st, MDB_txn *txn, struct hd_counters *c,
                   const struct hd_ack *acks, size_t n, uint64_t now_ms);

/* Reads an activity (borrowed from txn): id, actor, body. */
struct hd_act_view {
    struct hd_slice id, type, actor, object_id, body;
};
int hd_queue_get_activity(struct hd_store *st, MDB_txn *txn, uint64_t seq,
                          struct hd_act_view *out);

int hd_host_get(struct hd_store *st, MDB_txn *txn, const char *host, size_t host_len,
                struct hd_host_rec *h);
int hd_host_put(struct hd_store *st, MDB_txn *txn, const char *host, size_t host_len,
                const struct hd_host_rec *h);

#endif

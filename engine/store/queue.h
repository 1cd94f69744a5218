/* Per-host delivery queues over the store: enqueue, scan, acknowledge (done / retry / dead),
 * drop, and the ordering and cancellation look-ups of the runner.
 *
 * A delivery is (activity seq, inbox); it lives in the queue DBI under host\0seq\idx, so a
 * host's deliveries sort in activity order, and all of a host's state is one key range.
 * The activity body is stored once (acts) with a count of the deliveries and dead letters
 * still referring to it (actrem); when the last one goes the body is dropped and only the
 * id -> seq index stays (for duplicate detection).
 *
 * Implemented by queue.c (records, scans, drops), enqueue.c, cancel.c and ack.c, over the host
 * records of hostrec.h; acknowledgements also record gone followers (gone.h). */
#ifndef HD_QUEUE_H
#define HD_QUEUE_H

#include "codec.h"
#include "err.h"
#include "hostrec.h"
#include "store.h"
#include "url.h"

#define HD_QKEY_MAX (HD_HOST_MAX + 13)

struct hd_activity_in {
    const char *id, *type, *actor, *object_id; /* object_id may be NULL */
    const char *body;
    size_t body_len;
    uint64_t not_before_ms; /* hold: none of its deliveries is due before (wall ms); 0 none */
    uint32_t priority;      /* HD_PRIO_* (store.h); 0: normal */
    uint64_t dropped;       /* recipients the domain rules refused at enqueue (its counts) */
};

#define HD_SCHEME_CAVAGE 0
#define HD_SCHEME_RFC9421 1

/* Queue entry flags. */
#define HD_QF_SHARED 1 /* the inbox is a shared inbox (404/410 there says nothing of a follower) */
/* An earlier attempt may have been processed by the server: it answered 5xx, or the connection
 * failed after the request was written (timeout, reset). Such a Create is never cancelled. */
#define HD_QF_REACHED 2
/* Priority of the delivery (neither: normal). Schema 2. */
#define HD_QF_HIGH 4
#define HD_QF_LOW 8

/* How acknowledgements update host health (set from the run options). */
struct hd_health_policy {
    uint64_t day_ms;    /* length of a "day" for dead-host counting; default 86,400,000 */
    uint32_t dead_days; /* distinct failing days with no success before a host is dead; 7 */
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
    uint32_t flags;         /* HD_QF_* */
};

enum hd_ack_kind { HD_ACK_DONE = 1, HD_ACK_RETRY = 2, HD_ACK_DEAD = 3, HD_ACK_DROP = 4 };

struct hd_ack {
    uint8_t key[HD_QKEY_MAX];
    uint16_t keylen;
    uint8_t kind;
    uint16_t status;          /* HTTP status, 0 for transport errors */
    uint32_t attempts;        /* attempts made so far including this one */
    uint64_t not_before_ms;   /* RETRY: when to try again (wall clock) */
    char error[HD_ERRTEXT_MAX]; /* RETRY/DEAD: short reason */
    uint8_t host_fail;        /* a host-level failure (transport, TLS, 5xx): counts for health */
    uint8_t host_gone;        /* 410 from a shared inbox: the host is gone */
    uint8_t expired;          /* DEAD because older than the maximum age */
    uint8_t follower_gone;    /* DEAD: 404/410 from a personal inbox */
    uint8_t scheme_ok;        /* DONE: scheme that worked: 1 cavage, 2 RFC 9421 + RSA, 3 + Ed25519 */
    uint8_t reached;          /* RETRY/DEAD: this attempt may have been processed (HD_QF_REACHED) */
    uint8_t cancelled;        /* DROP: cancelled by a Delete (counters.cancelled, not dropped) */
    uint16_t body_len;
    char body[128];           /* DEAD: first bytes of the response body */
};

/* Builds the queue key host\0seq\idx into key (cap HD_QKEY_MAX). Returns its length. */
size_t hd_queue_key(uint8_t *key, const char *host, uint64_t seq, uint32_t idx);
/* Host part of a queue key (NUL-terminated inside the key). */
static inline const char *hd_queue_key_host(const uint8_t *key)
{
    return (const char *)key;
}

/* Looks up an activity id. Returns 0 with *seq set, or HD_ERR_NOT_FOUND. */
int hd_queue_find_activity(struct hd_store *st, struct hd_txn *txn, const char *id, uint64_t *seq);

/* Persists activity a and one delivery per url (the caller has de-duplicated them) inside
 * txn, updating counters c (the caller reads them first and writes them before commit).
 * Returns 0 with *seq set, HD_ERR_DUPLICATE (with *seq the original), or a store error.
 * An id whose every delivery was cancelled before any request of it was sent (hd_act_cancel)
 * is not a duplicate: it is stored again under a new seq, and the id names the new one. */
int hd_queue_enqueue(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                     const struct hd_activity_in *a, const struct hd_url *urls,
                     const uint8_t *flags, size_t n, uint64_t now_ms, uint64_t *seq);

/* One delivery for hd_queue_enqueue_dests: host as in queue keys (hd_url_parse's host), the
 * normalised inbox URL, HD_QF_* flags. Strings need not be NUL-terminated. */
struct hd_qdest {
    const char *host, *inbox;
    uint32_t host_len, inbox_len;
    uint32_t flags;
};

/* As hd_queue_enqueue, for n de-duplicated destinations (sorted in place by host, so each
 * host record is read and written once however many deliveries it gets). Also records the
 * ordering rule in the activity: an Update or Delete of an object waits for
 * the Create of that object (the first activity about it) and for the previous activity about
 * it; an Undo waits for the activity it undoes. Returns as hd_queue_enqueue. */
int hd_queue_enqueue_dests(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                           const struct hd_activity_in *a, struct hd_qdest *d, size_t n,
                           uint64_t now_ms, uint64_t *seq);

/* Ordering check for the runner, before it dispatches a delivery of an activity to host:
 * after[] is that activity's hd_act_view.after. Returns 1 when host still has a queued
 * delivery (leased, in flight, or waiting for a retry) of one of the after[] activities, so
 * this one must wait; 0 when it may go; or a store error. Costs one cursor seek per nonzero
 * after[] entry. */
int hd_queue_blocked(struct hd_store *st, struct hd_txn *txn, const char *host,
                     const uint64_t after[2]);
/* As hd_queue_blocked; when blocked, *until_ms receives the blocking delivery's not-before
 * time (wall ms, 0 = due now): no point looking again before then. */
int hd_queue_blocked_until(struct hd_store *st, struct hd_txn *txn, const char *host,
                           const uint64_t after[2], uint64_t *until_ms);

typedef int (*hd_qent_cb)(const struct hd_qent *e, void *user_data);
/* Visits host's deliveries in key order, starting strictly after `after` (NULL/0: from the
 * start), at most max entries; cb returns nonzero to stop. *last (cap HD_QKEY_MAX) receives
 * the key of the last entry visited and *last_len its length (0 if none). Returns the number
 * visited (>= 0), or a negative error. *end is set to 1 when the host's range was exhausted. */
int hd_queue_scan(struct hd_store *st, struct hd_txn *txn, const char *host, const uint8_t *after,
                  size_t after_len, size_t max, hd_qent_cb cb, void *user_data, uint8_t *last,
                  size_t *last_len, int *end);

/* Visits host's queued deliveries of one priority class (HD_PRIO_HIGH or HD_PRIO_LOW), in
 * key order from the first, at most max; cb returns nonzero to stop. Normal deliveries are
 * not indexed: hd_queue_scan reads them (and skips the flagged ones itself if it wants).
 * Returns the number visited (>= 0) or a negative error; *end is 1 when the class's range
 * was exhausted. */
int hd_queue_scan_prio(struct hd_store *st, struct hd_txn *txn, const char *host, int prio,
                       size_t max, hd_qent_cb cb, void *user_data, int *end);

/* Applies acknowledgements inside txn (the caller commits). Entries already gone are
 * skipped. Updates host records (health per hp; hp NULL = defaults) and counters c. A DEAD
 * ack with follower_gone also records the inbox as gone and removes the followers that
 * delivered there from the activity's actor's audience (gone.h). Returns 0 or a store error. */
int hd_queue_apply(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                   const struct hd_ack *acks, size_t n, uint64_t now_ms,
                   const struct hd_health_policy *hp);

/* Reads an activity (borrowed from txn): id, actor, body. after[]: the activities it must
 * not overtake on any host (0 = none); see hd_queue_blocked. */
struct hd_act_view {
    struct hd_slice id, type, actor, object_id, body;
    uint64_t after[2];
};
int hd_queue_get_activity(struct hd_store *st, struct hd_txn *txn, uint64_t seq,
                          struct hd_act_view *out);

/* One reference to activity seq went away (a delivery done or dropped, a dead letter
 * purged): decrements its remaining count; the last one drops the activity body and keeps the
 * id index for de-duplication. Returns 0 or a store error. */
int hd_queue_act_done(struct hd_store *st, struct hd_txn *txn, uint64_t seq);
/* n references at once: as n calls of hd_queue_act_done (n = 0 does nothing). */
int hd_queue_act_done_n(struct hd_store *st, struct hd_txn *txn, uint64_t seq, uint32_t n);
/* 1 when activity seq's body is still stored, 0 when it is gone, or a store error. */
int hd_queue_has_activity(struct hd_store *st, struct hd_txn *txn, uint64_t seq);

/* ---- Dropping and requeueing */

/* Deletes queued deliveries without sending them: every one of host (actor NULL), every one
 * of actor's activities on any host (host NULL), or those of actor's activities to host (both
 * set). Fixes the host records (queued, retrying) and the activities' remaining counts
 * (hd_queue_act_done), and adds the number dropped to c->dropped (the caller reads c before
 * and writes it back before committing) and writes it to *dropped (may be NULL). Deliveries a
 * runner holds are skipped by their acks, which find them gone. An actor costs one pass over
 * the activities still referenced and one over the queue (an administrative act, not a hot
 * path); a host costs its own key range. Returns 0, HD_ERR_INVALID (neither host nor actor, or
 * a host name too long), -ENOMEM or a store error. */
int hd_queue_drop(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                  const char *host, const char *actor, uint64_t *dropped);

/* Puts a delivery back in the queue under key (host\0seq\idx, as a dead letter's) as a fresh
 * one: no attempts, due at now_ms, keeping its first enqueue time and its HD_QF_* flags. The
 * caller fixes the host record and the counters. Returns 0, -ENOMEM or a store error. */
int hd_queue_requeue(struct hd_store *st, struct hd_txn *txn, const uint8_t *key, size_t keylen,
                     struct hd_slice inbox, uint64_t enqueued_ms, uint32_t flags,
                     uint64_t now_ms);

/* ---- Takedown (cancel.c): every queued delivery of one activity is cancelled. */
struct hd_cancel_result {
    uint64_t seq;
    uint64_t cancelled; /* queued deliveries removed by this call, never sent */
    uint64_t delivered; /* deliveries done before it (the hosts that need a Delete) */
    uint64_t in_flight; /* deliveries whose request was written and whose outcome is unknown
                         * (a timeout or reset after writing, a 5xx): no further attempt is
                         * made, but the server may have it. Removed too; not in cancelled */
    int already;        /* the activity was cancelled before */
};
/* Cancels every queued (held, pending, retrying) delivery of activity seq inside write txn
 * and marks the activity cancelled: a runner that holds one of its deliveries in memory
 * drops it instead of sending it, and a request already on the wire finishes (a success then
 * moves that delivery from cancelled to done in the counts). Costs a walk over the host
 * records and one seek per host with queued deliveries. Counters c->cancelled goes up. When
 * nothing of it was ever sent, the id may be enqueued again (hd_queue_enqueue). Returns 0
 * with *out written, or a store error (HD_ERR_NOT_FOUND: no activity seq). */
int hd_act_cancel(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c, uint64_t seq,
                  uint64_t now_ms, struct hd_cancel_result *out);

/* ---- Cancellation (cancel.c). The runner owns a host's queue while it runs, so it decides,
 * right before it would send, with these read-only look-ups in its read txn; the
 * cancellations themselves go through the committer as DROP acks (cancelled = 1). */

/* A queued delivery as a reference: its key and flags. */
struct hd_qref {
    uint8_t key[HD_QKEY_MAX];
    uint16_t keylen;
    uint32_t flags;
    uint64_t enqueued_ms;
};

/* The queued deliveries of activity seq to host, in key order, into out[max]. Returns how many
 * (>= 0), HD_ERR_FULL when there are more than max, or a store error. */
int hd_queue_entries(struct hd_store *st, struct hd_txn *txn, const char *host, uint64_t seq,
                     struct hd_qref *out, size_t max);

/* 1 when the latest activity about object (whose Create is create_seq) is a Delete, with
 * *del_seq set; 0 otherwise; or a store error. */
int hd_queue_delete_of(struct hd_store *st, struct hd_txn *txn, const char *object_id,
                       uint64_t create_seq, uint64_t *del_seq);

/* The activities between a Create (origin) and a later activity about the same object (from,
 * usually its Delete): the Updates, newest first, following each one's link to the previous
 * activity about the object. Writes at most max seqs to out; returns how many. */
size_t hd_queue_chain(struct hd_store *st, struct hd_txn *txn, uint64_t from, uint64_t origin,
                      uint64_t *out, size_t max);

/* Did host (possibly) receive the object created by create_seq, once none of its deliveries
 * is queued there? 1: it was addressed to host and not every delivery there ended as a dead
 * letter that never reached the server (or nothing is recorded about the Create: the safe
 * answer); 0: it never got it (never addressed to host, or refused there). Or a store error.
 * Costs one get and a seek. The record is written at enqueue (8 bytes per host of a Create). */
int hd_queue_host_got(struct hd_store *st, struct hd_txn *txn, const char *host, uint64_t create_seq);

#endif

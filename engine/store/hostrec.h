/* Host records: what the store keeps per destination host (hosts table, see store.h).
 *
 * A record counts the host's queued and retrying deliveries (kept exact by every change to
 * the queue: enqueue, acknowledgement, drop, dead-letter retry), its outcomes, its last error
 * and its health (failing days, dead or gone). Only Herald's own outbound results change the
 * health fields. */
#ifndef HD_HOSTREC_H
#define HD_HOSTREC_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "store.h"
#include "url.h"

struct hd_host_rec {
    uint64_t queued, retrying, done, failed, failures, last_status;
    char last_error[HD_ERRTEXT_MAX];
    uint64_t last_ok_ms, last_fail_ms;
    uint64_t fail_days;     /* distinct days with host-level failures since the last success */
    uint64_t last_fail_day; /* day number (wall ms / day length) of the last counted failure */
    uint64_t dead;          /* HD_HOST_ALIVE / HD_HOST_DEAD / HD_HOST_GONE */
    uint64_t scheme;        /* scheme that worked: 0 unknown, 1 cavage, 2 RFC 9421 + RSA, 3 + Ed25519 */
};

#define HD_HOST_ALIVE 0
#define HD_HOST_DEAD 1 /* failed on dead_days distinct days with no success */
#define HD_HOST_GONE 2 /* a shared inbox answered 410 */

/* Reads host's record (host_len bytes, no NUL needed). Returns 0; HD_ERR_NOT_FOUND with *h
 * zeroed (a host never queued to); HD_ERR_SCHEMA / HD_ERR_INVALID for a record this build
 * cannot read; or a store error. */
int hd_host_get(struct hd_store *st, struct hd_txn *txn, const char *host, size_t host_len,
                struct hd_host_rec *h);
/* Writes host's record. Returns 0, -ENOMEM or a store error. */
int hd_host_put(struct hd_store *st, struct hd_txn *txn, const char *host, size_t host_len,
                const struct hd_host_rec *h);

/* Adds n to host's queued count, creating the record if needed: the one host-record change of
 * an enqueue, made without decoding the record (a fan-out touches tens of thousands of them).
 * Returns 0 or a store error. */
int hd_host_add_queued(struct hd_store *st, struct hd_txn *txn, const char *host,
                       size_t host_len, uint64_t n);

/* n deliveries left host's queue, nretry of them waiting for a retry: the counts go down,
 * never below zero. */
static inline void hd_host_rec_unqueue(struct hd_host_rec *h, uint64_t n, uint64_t nretry)
{
    h->queued = h->queued > n ? h->queued - n : 0;
    h->retrying = h->retrying > nretry ? h->retrying - nretry : 0;
}

/* The one walk over host records, in host-name order, inside txn:
 *
 *     struct hd_host_iter it;
 *     char name[HD_HOST_MAX];
 *     struct hd_host_rec rec;
 *     rc = hd_host_iter_open(st, txn, &it);
 *     while (!rc && (rc = hd_host_iter_next(&it, name, &rec)) == 0)
 *         ...;
 *     hd_host_iter_close(&it);    (rc == HD_ERR_NOT_FOUND: the walk ended)
 *
 * The iterator lives in the caller (no allocation) and must be closed before txn ends. The
 * walk must not write host records while it is open (collect the names first). */
struct hd_host_iter {
    void *cur; /* the store's cursor; NULL once closed or when open failed */
    int started;
};
/* Returns 0 or a store error (then the iterator is closed already). */
int hd_host_iter_open(struct hd_store *st, struct hd_txn *txn, struct hd_host_iter *it);
/* Writes the next host's name (NUL-terminated) and, when rec is not NULL, its decoded record.
 * Returns 0, HD_ERR_NOT_FOUND after the last host, or a store error. */
int hd_host_iter_next(struct hd_host_iter *it, char name[HD_HOST_MAX], struct hd_host_rec *rec);
/* Decodes the record of the host hd_host_iter_next last returned (for a walk that reads
 * names only and decodes the few records it wants). Returns 0, HD_ERR_NOT_FOUND before the
 * first host, a decoding error, or a store error. */
int hd_host_iter_rec(struct hd_host_iter *it, struct hd_host_rec *rec);
/* Closes it (closed or never opened: nothing to do). */
void hd_host_iter_close(struct hd_host_iter *it);

/* Totals over every host record inside txn. */
struct hd_host_sum {
    uint64_t hosts, queued, retrying;
};
/* Returns 0 (with *out written) or a store error. */
int hd_host_sum(struct hd_store *st, struct hd_txn *txn, struct hd_host_sum *out);

#endif

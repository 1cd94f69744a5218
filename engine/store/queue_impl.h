/* The queue's record formats, shared by the files that implement queue.h: queue.c (records,
 * scans, drops), enqueue.c (enqueue and ordering), cancel.c (cancellation look-ups) and ack.c
 * (acknowledgements). Nothing outside engine/store/ includes this header. */
#ifndef HD_QUEUE_IMPL_H
#define HD_QUEUE_IMPL_H

#include "store_impl.h"
#include "queue.h"

/* Queue entries: [1, inbox, attempts, not_before_ms, enqueued_ms, status, error, flags].
 * Dead letters are the same record with the first bytes of the answer's body appended:
 * [..., flags, body] (letters written before flags and body existed have 7 fields). */

/* Decodes the queue entry (or dead letter) k/v into q (strings borrowed from the value).
 * Returns 0, HD_ERR_INVALID or HD_ERR_SCHEMA. */
int hd_queue_ent_decode(const MDB_val *k, const MDB_val *v, struct hd_qent *q);

/* Appends the record of an entry (or, when body is not NULL, a dead letter) to e, as
 * hd_queue_ent_put writes it. Returns e->err: 0, -ENOMEM or HD_ERR_FULL. */
int hd_queue_ent_encode(struct hd_enc *e, const char *inbox, size_t inbox_len, uint32_t attempts,
                        uint64_t not_before, uint64_t enq_ms, uint64_t status, const char *error,
                        uint32_t flags, const char *body, size_t body_len);

/* Writes an entry under key in dbi (the queue, or the dead letters when body is not NULL).
 * error may be NULL (nil). Returns 0, -ENOMEM or a store error. */
int hd_queue_ent_put(struct hd_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t keylen,
                     const char *inbox, size_t inbox_len, uint32_t attempts, uint64_t not_before,
                     uint64_t enq_ms, uint64_t status, const char *error, uint32_t flags,
                     const char *body, size_t body_len);

/* actrem: seq(8) -> u32 references to the activity's body (queued deliveries and dead
 * letters). Writes n. Returns 0 or a store error. */
int hd_queue_actrem_put(struct hd_store *st, struct hd_txn *txn, uint64_t seq, uint32_t n);

/* objseq: object id -> (seq of the first activity about it, seq of the latest). Both 0 when
 * the object has no record. Callers pass ids of at most 500 bytes (a longer one is not
 * ordered). Returns 0 or a store error. */
int hd_queue_objseq_get(struct hd_store *st, struct hd_txn *txn, const char *obj,
                        uint64_t *origin, uint64_t *last);

/* qprio: the index entry of a queued delivery (queue key, flags HD_QF_*) whose flags say
 * high or low priority; nothing for a normal one. put writes it, del removes it (absent:
 * nothing to do). Return 0 or a store error. */
int hd_queue_prio_put(struct hd_store *st, struct hd_txn *txn, const uint8_t *qkey, size_t keylen,
                      uint32_t flags);
int hd_queue_prio_del(struct hd_store *st, struct hd_txn *txn, const uint8_t *qkey, size_t keylen,
                      uint32_t flags);

#endif

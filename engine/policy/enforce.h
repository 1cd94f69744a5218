/* Rule enforcement on what is already queued: after a rules change, the queued deliveries of
 * every host the new rules refuse are dropped (counted, and kept as "blocked" dead letters), in
 * the same write transaction as
 * the change, so a suspend or an allowlist takes effect on the queue at once. New deliveries
 * are refused at enqueue (ingest) and by the runner, with the same snapshot (rules.h). */
#ifndef HD_ENFORCE_H
#define HD_ENFORCE_H

#include <stdint.h>

#include "rules.h"
#include "store.h"

/* Takes the queued deliveries of every host that r refuses (hd_rules_allows) out of the queue
 * inside txn: they become dead letters with the reason "blocked" (hd_qview_block_host), so
 * `herald dead retry` brings them back after an unblock, and count in c->dropped (the caller
 * writes c back before committing). *dropped and *hosts
 * (either may be NULL) receive the deliveries dropped and the number of hosts that had any.
 * Returns 0, -ENOMEM, HD_ERR_FULL (more refused host names than fit in 64 MiB) or a store
 * error. */
int hd_rules_enforce(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                     const struct hd_rules *r, uint64_t *dropped, uint64_t *hosts);

#endif

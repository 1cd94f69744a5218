/* Failures per host by class over 5 minutes and 1 hour (base/errclass.h) as the running
 * engine reported them to the store: one reading for every view (host show, top, /metrics,
 * /v1/hosts, the dashboard). */
#ifndef HD_HOSTERR_H
#define HD_HOSTERR_H

#include <jansson.h>
#include <stdint.h>

#include "errclass.h"
#include "store.h"

/* Reads host's failures as seen at wall time now_ms into *out (zeros when there is no
 * report). Returns 1 when any failure falls in the last hour, else 0. */
int hd_hosterr_read(struct hd_store *st, struct hd_txn *txn, const char *host, uint64_t now_ms,
                    struct hd_errcounts *out);

/* {"5m": W, "1h": W} with W = {"seconds": covered, "total": n, "per_s": rate, "by_class":
 * {"dns": {"count": n, "per_s": rate}, ...}} (classes with no failure left out). NULL
 * without memory. */
json_t *hd_hosterr_json(const struct hd_errcounts *c);

#endif

/* One activity, named by its id URL or its sequence number: takedown (cancel) and delivery
 * status. The engine calls behind `herald activity cancel|show`, POST /v1/activities/{id}/cancel,
 * GET /v1/activities/{id}, herald_activity_cancel and herald_activity_status. */
#ifndef HD_ACTIVITY_H
#define HD_ACTIVITY_H

#include <jansson.h>
#include <stdint.h>

#include "actstat.h"
#include "queue.h"
#include "store.h"

/* Cancels every queued delivery of the activity named (hd_act_cancel) in one write
 * transaction. Returns 0 with *out written, HD_ERR_NOT_FOUND (no such activity),
 * HD_ERR_INVALID (a name that cannot be one) or a store error. */
int hd_activity_cancel(struct hd_store *st, const char *name, uint64_t now_ms,
                       struct hd_cancel_result *out);

/* Reads the status of the activity named at wall time now_ms. Returns as hd_activity_cancel. */
int hd_activity_status(struct hd_store *st, const char *name, uint64_t now_ms,
                       struct hd_act_status *out);

/* JSON renderings (new references; NULL when out of memory). */
json_t *hd_activity_cancel_json(const struct hd_cancel_result *r);
json_t *hd_activity_status_json(const struct hd_act_status *s);

#endif

/* Renderings of the metrics registry (base/metrics.h) together with the store's queue view:
 * the Prometheus text format and the JSON host view of `herald top`. */
#ifndef HD_METRICS_RENDER_H
#define HD_METRICS_RENDER_H

#include <stddef.h>

#include "metrics.h"
#include "store.h"

/* Renders every metric in the Prometheus text format into a new buffer (*out, *len; free
 * with free()). st may be NULL (then no store-derived series). Returns 0, -ENOMEM, a store
 * error, or HD_ERR_FULL past HD_METRICS_OUT_MAX. */
int hd_metrics_render(struct hd_metrics *m, struct hd_store *st, char **out, size_t *len);

/* Renders the host view as JSON for `herald top`:
 * {"now_ms":N,"totals":{...},"hosts":[{"host":..,"backlog":..,"retrying":..,"in_flight":..,
 *   "window":..,"done":..,"failed":..,"requests":..,"p50_ms":..,"p99_ms":..,"breaker":"closed",
 *   "dead":false,"last_status":..,"last_error":"..","lat":[bucket counts]}, ...]}
 * with at most limit hosts (0 = all), those with the largest backlog first. */
int hd_metrics_render_hosts_json(struct hd_metrics *m, struct hd_store *st, size_t limit,
                                 char **out, size_t *len);

#endif

/* Cluster-wide views (docs/cluster.md): each node puts a bounded summary of itself (totals,
 * deliveries per second and its top hosts by backlog, in the shape of GET /v1/hosts) under
 * the key "views.<node>" of the bucket; `herald top --cluster` and `herald stats --cluster`
 * read the live nodes' summaries and merge them (hosts are partitioned, so the host rows of
 * two nodes are disjoint and the totals add). */
#ifndef HD_CLUSTER_VIEWS_H
#define HD_CLUSTER_VIEWS_H

#include <jansson.h>
#include <stdint.h>

#include "cluster.h"

#define HD_CLUSTER_VIEWS_SCHEMA 1   /* the summary's "schema"; others are skipped */
#define HD_CLUSTER_VIEWS_HOSTS 200  /* host rows per node summary, largest backlog first */
#define HD_CLUSTER_VIEWS_PERIOD_MS 1000
#define HD_CLUSTER_VIEWS_MAX_AGE_MS 10000 /* older summaries are of nodes no longer live */

/* Puts view (an object with "totals" and "hosts") as node's summary, adding "schema",
 * "node" and "ts_ms". Returns 0, HD_ERR_TOO_LARGE or HD_ERR_CONNECT. */
int hd_cluster_views_put(struct hd_cluster_conn *c, const char *node, json_t *view);

/* Reads the summaries of the nodes seen within max_age_ms and merges them into *out:
 * {"schema","nodes":{NAME:{"ts_ms","totals"}},"totals":{sums},"hosts":[rows, largest backlog
 * first]}. Returns 0 or HD_ERR_CONNECT / -ENOMEM. */
int hd_cluster_views_get(struct hd_cluster_conn *c, uint64_t max_age_ms, json_t **out);

#endif

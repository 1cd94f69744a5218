/* `herald run --cluster`: the thread that puts this node's summary into the cluster's bucket
 * every HD_CLUSTER_VIEWS_PERIOD_MS (engine/cluster/views.h), for `top`/`stats --cluster`. */
#ifndef HD_DAEMON_VIEWS_H
#define HD_DAEMON_VIEWS_H

#include "cluster.h"
#include "metrics.h"
#include "store.h"

struct hd_daemon_views;

/* Starts the publisher for node (named name). Returns 0 or an error (logged). */
int hd_daemon_views_start(struct hd_store *st, struct hd_metrics *m, struct hd_cluster_node *node,
                          const char *name, struct hd_daemon_views **out);
/* Stops and frees it (before the node stops). NULL ok. */
void hd_daemon_views_stop(struct hd_daemon_views *v);

#endif

/* The cluster-wide views: `herald stats --cluster URL` and the fetch of `herald top
 * --cluster URL` (the live nodes' summaries merged, engine/cluster/views.h). */
#ifndef HD_CLI_VIEWS_H
#define HD_CLI_VIEWS_H

#include <jansson.h>

#include "cluster.h"

/* `herald stats --cluster URL [--cluster-creds F] [--cluster-ca PEM] [--json]`. usage is
 * stats' usage text. Returns the exit status. */
int hd_cli_stats_cluster(const char *usage, int argc, char **argv);
/* The merged view of the live nodes in the shape of GET /v1/hosts, or NULL with why filled. */
json_t *hd_cli_views_fetch(struct hd_cluster_conn *c, char *why, size_t wlen);

#endif

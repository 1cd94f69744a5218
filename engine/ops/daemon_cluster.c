/* `herald run --cluster`: the cluster's flags and [cluster] keys, and the node started
 * beside the runner (engine/cluster/, docs/cluster.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "config.h"
#include "daemon.h"
#include "err.h"
#include "log.h"

static int parse_u(const char *s, unsigned long long lo, unsigned long long hi,
                   unsigned long long *out)
{
    char *e;
    unsigned long long v;

    if (!s[0] || s[0] == '-')
        return -1;
    v = strtoull(s, &e, 10);
    if (*e || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int hd_daemon_cluster_opt(struct hd_daemon_opts *d, const char *name, const char *arg)
{
    struct hd_cluster_opts *c = &d->cluster;
    unsigned long long v;
    uint64_t ms;

    if (!strcmp(name, "cluster")) {
        c->url = arg;
        return 0;
    }
    if (!strcmp(name, "node")) {
        c->node = arg;
        return hd_cluster_node_name_ok(arg) ? -1 : 0;
    }
    if (!strcmp(name, "cluster-creds")) {
        c->creds = arg;
        return 0;
    }
    if (!strcmp(name, "cluster-ca")) {
        c->ca = arg;
        return 0;
    }
    if (!strcmp(name, "cluster-partitions")) {
        if (parse_u(arg, 1, HD_CLUSTER_MAX_PARTITIONS, &v))
            return -1;
        c->partitions = (unsigned)v;
        return 0;
    }
    if (!strcmp(name, "cluster-replicas")) {
        if (parse_u(arg, 1, 5, &v))
            return -1;
        c->replicas = (unsigned)v;
        return 0;
    }
    if (!strcmp(name, "cluster-lease")) {
        if (hd_config_parse_duration(arg, &ms) != 0 || ms < 1000 || ms > 3600000)
            return -1;
        c->lease_ms = ms;
        return 0;
    }
    return -1;
}

void hd_daemon_cluster_preload(struct hd_daemon_opts *d)
{
    const struct hd_config *f = d->cfg;
    struct hd_cluster_opts *c = &d->cluster;

    if (!f)
        return;
    c->url = f->cluster_url;
    c->node = f->cluster_node;
    c->creds = f->cluster_creds;
    c->ca = f->cluster_ca;
    c->partitions = f->cluster_partitions;
    c->replicas = f->cluster_replicas;
    c->lease_ms = f->cluster_lease_ms;
}

int hd_daemon_cluster_publish(void *node, const char *line, size_t len,
                              struct hd_ingest_result *res)
{
    uint64_t seq = 0;
    int dup = 0, rc;

    rc = hd_cluster_publish(hd_cluster_node_conn(node), line, len, &seq, &dup, res->why,
                            sizeof(res->why));
    res->seq = seq; /* the stream sequence: deliveries are counted by the owners */
    if (rc == 0 && dup)
        rc = HD_ERR_DUPLICATE;
    return rc;
}

int hd_daemon_cluster_publish_follow(void *node, const char *actor, const char *follower,
                                     const char *inbox, const char *shared_inbox, int remove,
                                     char *why, size_t why_cap)
{
    uint64_t seq = 0;

    return hd_cluster_publish_follow(hd_cluster_node_conn(node), actor, follower, inbox,
                                     shared_inbox, remove, &seq, why, why_cap);
}

int hd_daemon_cluster_start(struct hd_store *st, struct hd_daemon_opts *d, struct hd_run_opts *o,
                            struct hd_cluster_node **node)
{
    struct hd_cluster_opts c = d->cluster;
    int rc;

    *node = NULL;
    if (!c.url)
        return 0;
    if (!c.node) {
        HD_LOG(HD_LOG_ERROR, "daemon", "msg=\"--cluster needs --node NAME\"");
        return HD_ERR_INVALID;
    }
    /* Heartbeats a third of a lease apart at most, one second at most. */
    c.heartbeat_ms = c.lease_ms / 3 < 1000 ? c.lease_ms / 3 : 1000;
    rc = hd_cluster_node_start(st, &c, node);
    if (rc)
        return rc;
    o->host_gate = hd_cluster_gate;
    o->host_gate_ud = *node;
    return 0;
}

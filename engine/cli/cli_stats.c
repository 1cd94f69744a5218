/* `herald stats` (see cli_stats.h). */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_stats.h"
#include "actstat.h"
#include "cli_cluster.h"
#include "cli_util.h"
#include "cli_views.h"
#include "clock.h"
#include "err.h"
#include "queue.h"
#include "store.h"

struct stats_hosts {
    json_t *hosts;
    uint64_t queued, retrying;
    uint64_t held; /* of queued - retrying: waiting for their activity's not_before */
};

static int add_host(const char *host, const struct hd_host_rec *hr, const struct hd_live *live,
                    void *user_data)
{
    struct stats_hosts *x = user_data;

    x->queued += hr->queued;
    x->retrying += hr->retrying;
    json_array_append_new(
        x->hosts, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "host", host, "queued",
                            (json_int_t)hr->queued, "retrying", (json_int_t)hr->retrying,
                            "in_flight", (json_int_t)(live ? live->in_flight : 0), "done",
                            (json_int_t)hr->done, "failed", (json_int_t)hr->failed, "failures",
                            (json_int_t)hr->failures, "last_error", hr->last_error));
    return 0;
}

static uint64_t pending(const struct stats_hosts *x)
{
    uint64_t fresh = x->queued > x->retrying ? x->queued - x->retrying : 0;
    return fresh > x->held ? fresh - x->held : 0;
}

static void print_text(const struct hd_counters *c, const struct stats_hosts *x)
{
    size_t i;
    json_t *h;

    printf("activities: %" PRIu64 " (refused %" PRIu64 ", withheld %" PRIu64 ")\n",
           c->activities, c->refused, c->withheld);
    printf("deliveries: done %" PRIu64 ", pending %" PRIu64 ", held %" PRIu64
           ", retrying %" PRIu64 ", failed %" PRIu64 ", dropped %" PRIu64 ", cancelled %" PRIu64
           "\n",
           c->done, pending(x), x->held, x->retrying, c->failed, c->dropped, c->cancelled);
    printf("%-40s %8s %8s %8s %8s %8s  %s\n", "host", "queued", "retrying", "done", "failed",
           "failures", "last_error");
    json_array_foreach(x->hosts, i, h)
    {
        printf("%-40s %8" JSON_INTEGER_FORMAT " %8" JSON_INTEGER_FORMAT " %8" JSON_INTEGER_FORMAT
               " %8" JSON_INTEGER_FORMAT " %8" JSON_INTEGER_FORMAT "  %s\n",
               json_string_value(json_object_get(h, "host")),
               json_integer_value(json_object_get(h, "queued")),
               json_integer_value(json_object_get(h, "retrying")),
               json_integer_value(json_object_get(h, "done")),
               json_integer_value(json_object_get(h, "failed")),
               json_integer_value(json_object_get(h, "failures")),
               json_string_value(json_object_get(h, "last_error")));
    }
}

static const char stats_usage[] =
    "usage: herald stats [--json]\n"
    "       herald stats --cluster nats://HOST:PORT [--cluster-creds FILE] [--cluster-ca PEM]\n"
    "           [--json]\n"
    "Counts of activities and deliveries, and the queue and failures of each host. With\n"
    "--cluster: the totals of every live node (done, failed, queued, retrying, in flight,\n"
    "deliveries per second) and their sum, from the summaries the nodes publish.\n";

int hd_cli_stats(const char *db, int argc, char **argv)
{
    static const struct option lo[] = {{"json", 0, 0, 'j'}, {0, 0, 0, 0}};
    int json = 0, o;
    struct stats_hosts x = {NULL, 0, 0, 0};
    struct hd_store *st;
    struct hd_counters c;
    struct hd_txn *txn;
    json_t *root;
    int rc;

    if (hd_cli_help(argc, argv, stats_usage))
        return 0;
    if (hd_cli_cluster_wanted(argc, argv))
        return hd_cli_stats_cluster(stats_usage, argc, argv);
    optind = 0;
    while ((o = hd_cli_getopt("stats", stats_usage, argc, argv, "", lo)) != -1) {
        if (o != 'j')
            return HD_CLI_USAGE_EXIT;
        json = 1;
    }
    if (hd_cli_positional("stats", stats_usage, argc, argv, 0, 0))
        return HD_CLI_USAGE_EXIT;
    if (hd_cli_open_store_ro(db, &st, "stats"))
        return 1;
    rc = hd_store_begin(st, 0, &txn);
    if (!rc) {
        rc = hd_counters_get(st, txn, &c);
        if (!rc) {
            x.hosts = json_array();
            rc = hd_cli_hosts_walk(st, txn, 0, add_host, &x);
        }
        if (!rc)
            rc = hd_holds_count(st, txn, hd_wall_ms(), 0, &x.held);
        hd_store_abort(txn);
    }
    hd_store_close(st);
    if (rc) {
        fprintf(stderr, "herald stats: %s\n", hd_strerror(rc));
        json_decref(x.hosts);
        return 1;
    }
    root = json_pack("{s:I, s:{s:I, s:I, s:I, s:I}, s:I, s:I, s:o}", "activities",
                     (json_int_t)c.activities, "deliveries", "done", (json_int_t)c.done,
                     "pending", (json_int_t)pending(&x), "retrying",
                     (json_int_t)x.retrying, "failed", (json_int_t)c.failed, "refused",
                     (json_int_t)c.refused, "withheld", (json_int_t)c.withheld, "hosts", x.hosts);
    if (root) {
        /* Deliveries dropped by defederation rules or federation none, never sent. */
        json_object_set_new(json_object_get(root, "deliveries"), "dropped",
                            json_integer((json_int_t)c.dropped));
        /* Waiting for their activity's not_before (a hold); not in pending. */
        json_object_set_new(json_object_get(root, "deliveries"), "held",
                            json_integer((json_int_t)x.held));
        /* Cancelled by a Delete before delivery (Create and Delete both), or taken down. */
        json_object_set_new(json_object_get(root, "deliveries"), "cancelled",
                            json_integer((json_int_t)c.cancelled));
    }
    if (json) {
        char *s = json_dumps(root, JSON_COMPACT);
        printf("%s\n", s ? s : "{}");
        free(s);
    } else {
        print_text(&c, &x);
    }
    json_decref(root);
    return 0;
}

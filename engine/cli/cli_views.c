/* Cluster-wide views (cli_views.h). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli_util.h"
#include "cli_views.h"
#include "err.h"
#include "views.h"

json_t *hd_cli_views_fetch(struct hd_cluster_conn *c, char *why, size_t wlen)
{
    json_t *v = NULL;
    int rc = hd_cluster_views_get(c, HD_CLUSTER_VIEWS_MAX_AGE_MS, &v);

    if (rc) {
        snprintf(why, wlen, "cannot read the nodes' summaries: %s", hd_strerror(rc));
        return NULL;
    }
    return v;
}

static json_int_t tot(json_t *t, const char *k)
{
    return json_integer_value(json_object_get(t, k));
}

int hd_cli_stats_cluster(const char *usage, int argc, char **argv)
{
    static const struct option lo[] = {{"cluster", 1, 0, 'C'}, {"cluster-creds", 1, 0, 'K'},
                                       {"cluster-ca", 1, 0, 'A'}, {"json", 0, 0, 'j'},
                                       {0, 0, 0, 0}};
    struct hd_cluster_opts o;
    struct hd_cluster_conn *c = NULL;
    char why[512] = "";
    json_t *v, *t, *n;
    const char *k;
    int json = 0, opt;

    hd_cluster_opts_default(&o);
    optind = 0;
    while ((opt = hd_cli_getopt("stats", usage, argc, argv, "", lo)) != -1) {
        switch (opt) {
        case 'C':
            o.url = optarg;
            break;
        case 'K':
            o.creds = optarg;
            break;
        case 'A':
            o.ca = optarg;
            break;
        case 'j':
            json = 1;
            break;
        default:
            return HD_CLI_USAGE_EXIT;
        }
    }
    if (hd_cli_positional("stats", usage, argc, argv, 0, 0))
        return HD_CLI_USAGE_EXIT;
    if (!o.url)
        return hd_cli_usage_error("stats", usage, "--cluster URL is required");
    if (hd_cluster_connect(&o, &c, why, sizeof(why))) {
        fprintf(stderr, "herald stats: %s\n", why);
        return 1;
    }
    v = hd_cli_views_fetch(c, why, sizeof(why));
    hd_cluster_disconnect(c);
    if (!v) {
        fprintf(stderr, "herald stats: %s\n", why);
        return 1;
    }
    json_object_del(v, "hosts"); /* stats --cluster: the totals and each node's */
    if (json) {
        hd_cli_print_json(v);
        return 0;
    }
    t = json_object_get(v, "totals");
    printf("nodes live: %zu\n", json_object_size(json_object_get(v, "nodes")));
    printf("%-24s %10s %10s %10s %10s %10s %10s\n", "node", "done", "failed", "queued",
           "retrying", "in_flight", "per_s");
    json_object_foreach(json_object_get(v, "nodes"), k, n)
    {
        json_t *nt = json_object_get(n, "totals");
        printf("%-24s %10" JSON_INTEGER_FORMAT " %10" JSON_INTEGER_FORMAT
               " %10" JSON_INTEGER_FORMAT " %10" JSON_INTEGER_FORMAT " %10" JSON_INTEGER_FORMAT
               " %10.1f\n",
               k, tot(nt, "done"), tot(nt, "failed"), tot(nt, "queued"), tot(nt, "retrying"),
               tot(nt, "in_flight"), json_number_value(json_object_get(nt, "deliveries_per_s")));
    }
    printf("%-24s %10" JSON_INTEGER_FORMAT " %10" JSON_INTEGER_FORMAT " %10" JSON_INTEGER_FORMAT
           " %10" JSON_INTEGER_FORMAT " %10" JSON_INTEGER_FORMAT " %10.1f\n",
           "total", tot(t, "done"), tot(t, "failed"), tot(t, "queued"), tot(t, "retrying"),
           tot(t, "in_flight"), json_number_value(json_object_get(t, "deliveries_per_s")));
    json_decref(v);
    return 0;
}

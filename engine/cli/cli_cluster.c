/* `herald cluster status` and `herald enqueue --cluster` (see cli_cluster.h). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_cluster.h"
#include "cluster.h"
#include "err.h"

int hd_cli_cluster_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "--cluster", 9))
            return 1;
    return 0;
}

enum { C_URL = 256, C_CREDS, C_CA, C_JSON, C_PARTS };

static const struct option cluster_flags[] = {
    {"cluster", 1, 0, C_URL},         {"cluster-creds", 1, 0, C_CREDS},
    {"cluster-ca", 1, 0, C_CA},       {"json", 0, 0, C_JSON},
    {"cluster-partitions", 1, 0, C_PARTS}, {0, 0, 0, 0},
};

/* Parses the connection flags; returns 0, or 2 after saying what is wrong. */
static int parse(const char *cmd, int argc, char **argv, struct hd_cluster_opts *o, int *json)
{
    int c;

    hd_cluster_opts_default(o);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", cluster_flags, NULL)) != -1) {
        switch (c) {
        case C_URL:
            o->url = optarg;
            break;
        case C_CREDS:
            o->creds = optarg;
            break;
        case C_CA:
            o->ca = optarg;
            break;
        case C_JSON:
            if (!json)
                return 2;
            *json = 1;
            break;
        case C_PARTS:
            o->partitions = (unsigned)strtoul(optarg, NULL, 10);
            break;
        default:
            return 2;
        }
    }
    if (!o->url) {
        fprintf(stderr, "herald %s: --cluster URL is required\n", cmd);
        return 2;
    }
    return 0;
}

int hd_cli_enqueue_cluster(int argc, char **argv)
{
    struct hd_cluster_opts o;
    struct hd_cluster_conn *c = NULL;
    const char *path;
    char why[512], *line = NULL;
    size_t cap = 0, lineno = 0, refused = 0;
    ssize_t n;
    FILE *f;
    int rc;

    rc = parse("enqueue", argc, argv, &o, NULL);
    if (rc)
        return rc;
    path = optind < argc ? argv[optind] : "-";
    f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        fprintf(stderr, "herald enqueue: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    rc = hd_cluster_connect(&o, &c, why, sizeof(why));
    if (rc) {
        fprintf(stderr, "herald enqueue: %s\n", why);
        goto out;
    }
    while ((n = getline(&line, &cap, f)) >= 0) {
        uint64_t seq;
        int dup;
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (n == 0)
            continue;
        rc = hd_cluster_publish(c, line, (size_t)n, &seq, &dup, why, sizeof(why));
        if (rc == 0) {
            printf("{\"line\":%zu,\"ok\":true,\"stream_seq\":%" PRIu64 "%s}\n", lineno, seq,
                   dup ? ",\"duplicate\":true" : "");
        } else {
            json_t *r = json_pack("{s:I,s:b,s:s}", "line", (json_int_t)lineno, "ok", 0, "error",
                                  why);
            char *s = r ? json_dumps(r, JSON_COMPACT) : NULL;
            refused++;
            printf("%s\n", s ? s : "{\"ok\":false}");
            free(s);
            json_decref(r);
            if (rc == HD_ERR_CONNECT) { /* not acknowledged: stop, the rest was not sent */
                fflush(stdout);
                break;
            }
        }
        fflush(stdout);
    }
    rc = refused ? 1 : 0;
out:
    free(line);
    hd_cluster_disconnect(c);
    if (f != stdin)
        fclose(f);
    return rc ? 1 : 0;
}

int hd_cli_cluster(const char *db, int argc, char **argv)
{
    struct hd_cluster_opts o;
    struct hd_cluster_conn *c = NULL;
    char why[512];
    int json = 0, rc;

    (void)db;
    if (argc >= 3 && strcmp(argv[1], "partition") == 0) {
        /* herald cluster partition HOST [PARTITIONS]: which partition a host falls in */
        unsigned long p = argc >= 4 ? strtoul(argv[3], NULL, 10) : 256;
        if (p == 0 || p > HD_CLUSTER_MAX_PARTITIONS)
            return 2;
        printf("%u\n", hd_cluster_partition(argv[2], strlen(argv[2]), (unsigned)p));
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "status") != 0) {
        fprintf(stderr, "usage: herald cluster status --cluster URL [--json] | partition HOST "
                        "[PARTITIONS]\n");
        return 2;
    }
    rc = parse("cluster status", argc - 1, argv + 1, &o, &json);
    if (rc)
        return rc;
    rc = hd_cluster_connect(&o, &c, why, sizeof(why));
    if (rc) {
        fprintf(stderr, "herald cluster status: %s\n", why);
        return 1;
    }
    rc = hd_cluster_status(c, stdout, json);
    hd_cluster_disconnect(c);
    return rc ? 1 : 0;
}

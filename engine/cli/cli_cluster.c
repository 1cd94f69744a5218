/* `herald cluster status` and `herald enqueue --cluster` (see cli_cluster.h). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_cluster.h"
#include "cli_util.h"
#include "cluster.h"
#include "err.h"

int hd_cli_cluster_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "--cluster", 9))
            return 1;
    return 0;
}

enum { C_URL = 256, C_CREDS, C_CA, C_JSON, C_PARTS, C_ACTOR, C_FOLLOWER, C_INBOX, C_SHARED };

static const struct option cluster_flags[] = {
    {"cluster", 1, 0, C_URL},         {"cluster-creds", 1, 0, C_CREDS},
    {"cluster-ca", 1, 0, C_CA},       {"json", 0, 0, C_JSON},
    {"cluster-partitions", 1, 0, C_PARTS}, {"actor", 1, 0, C_ACTOR},
    {"follower", 1, 0, C_FOLLOWER},   {"inbox", 1, 0, C_INBOX},
    {"shared-inbox", 1, 0, C_SHARED}, {0, 0, 0, 0},
};

/* A follow given by flags (follow add|remove). */
struct follow_flags {
    const char *actor, *follower, *inbox, *shared;
};

static const char cluster_usage[] =
    "usage: herald cluster status --cluster nats://HOST:PORT [--cluster-creds FILE]\n"
    "           [--cluster-ca PEM] [--json]\n"
    "       herald cluster partition HOST [PARTITIONS]\n"
    "  status     the nodes, each node's partitions and backlog, checkpoints, the stream\n"
    "  partition  the partition a host falls in (PARTITIONS default 256)\n";

/* Parses the connection flags; returns 0, or 2 after saying what is wrong. */
static int parse(const char *cmd, int argc, char **argv, struct hd_cluster_opts *o, int *json,
                 struct follow_flags *ff)
{
    uint64_t v;
    int c;

    hd_cluster_opts_default(o);
    optind = 0;
    while ((c = hd_cli_getopt(cmd, NULL, argc, argv, "", cluster_flags)) != -1) {
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
                return hd_cli_usage_error(cmd, NULL, "--json is not an option here");
            *json = 1;
            break;
        case C_PARTS:
            if (hd_cli_uint(optarg, 1, HD_CLUSTER_MAX_PARTITIONS, &v))
                return hd_cli_bad_value(cmd, "--cluster-partitions", optarg, NULL);
            o->partitions = (unsigned)v;
            break;
        case C_ACTOR:
        case C_FOLLOWER:
        case C_INBOX:
        case C_SHARED:
            if (!ff)
                return hd_cli_usage_error(cmd, NULL, "--%s is an option of follow",
                                          cluster_flags[c - C_URL].name);
            *(c == C_ACTOR      ? &ff->actor
              : c == C_FOLLOWER ? &ff->follower
              : c == C_INBOX    ? &ff->inbox
                                : &ff->shared) = optarg;
            break;
        default:
            return HD_CLI_USAGE_EXIT;
        }
    }
    if (!o->url)
        return hd_cli_usage_error(cmd, NULL, "--cluster URL is required");
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

    rc = parse("enqueue", argc, argv, &o, NULL, NULL);
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
    if (hd_cli_help(argc, argv, cluster_usage))
        return 0;
    if (argc >= 2 && strcmp(argv[1], "partition") == 0) {
        /* herald cluster partition HOST [PARTITIONS]: which partition a host falls in */
        uint64_t p = 256;
        if (hd_cli_simple_args("cluster partition", cluster_usage, argc - 1, argv + 1, NULL, 1,
                               2))
            return HD_CLI_USAGE_EXIT;
        if (argc >= 4 && hd_cli_uint(argv[3], 1, HD_CLUSTER_MAX_PARTITIONS, &p))
            return hd_cli_usage_error("cluster partition", cluster_usage,
                                      "PARTITIONS must be 1..%u", HD_CLUSTER_MAX_PARTITIONS);
        printf("%u\n", hd_cluster_partition(argv[2], strlen(argv[2]), (unsigned)p));
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "status") != 0)
        return hd_cli_bad_sub("cluster", cluster_usage, argc, argv, "status or partition");
    rc = parse("cluster status", argc - 1, argv + 1, &o, &json, NULL);
    if (!rc && optind < argc - 1)
        rc = hd_cli_usage_error("cluster status", cluster_usage, "unexpected argument %s",
                                argv[optind + 1]);
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

/* One follow line of an import: {actor, follower, inbox, shared_inbox}. */
static int import_line(struct hd_cluster_conn *c, const char *line, size_t n, char *why,
                       size_t cap)
{
    json_error_t jerr;
    json_t *o = json_loadb(line, n, JSON_REJECT_DUPLICATES, &jerr);
    uint64_t seq;
    int rc;

    if (!json_is_object(o)) {
        json_decref(o);
        snprintf(why, cap, "expected a JSON object {actor, follower, inbox, shared_inbox}");
        return HD_ERR_INVALID;
    }
    rc = hd_cluster_publish_follow(c, json_string_value(json_object_get(o, "actor")),
                                   json_string_value(json_object_get(o, "follower")),
                                   json_string_value(json_object_get(o, "inbox")),
                                   json_string_value(json_object_get(o, "shared_inbox")), 0,
                                   &seq, why, cap);
    json_decref(o);
    return rc;
}

int hd_cli_follow_cluster(int argc, char **argv)
{
    struct hd_cluster_opts o;
    struct hd_cluster_conn *c = NULL;
    struct follow_flags ff = {NULL, NULL, NULL, NULL};
    const char *sub = argc > 1 ? argv[1] : "";
    char why[512], *line = NULL;
    size_t cap = 0, lineno = 0, refused = 0, ok = 0;
    uint64_t seq;
    ssize_t n;
    FILE *f = NULL;
    int rc;

    if (strcmp(sub, "add") && strcmp(sub, "remove") && strcmp(sub, "import")) {
        fprintf(stderr, "herald follow: with --cluster: add, remove or import\n");
        return 2;
    }
    rc = parse("follow", argc - 1, argv + 1, &o, NULL, &ff);
    if (rc)
        return rc;
    if (!strcmp(sub, "import")) {
        const char *path = optind < argc - 1 ? argv[optind + 1] : "-";
        f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
        if (!f) {
            fprintf(stderr, "herald follow import: cannot open %s: %s\n", path, strerror(errno));
            return 1;
        }
    }
    rc = hd_cluster_connect(&o, &c, why, sizeof(why));
    if (rc) {
        fprintf(stderr, "herald follow: %s\n", why);
        goto out;
    }
    if (!f) {
        rc = hd_cluster_publish_follow(c, ff.actor, ff.follower, ff.inbox, ff.shared,
                                       !strcmp(sub, "remove"), &seq, why, sizeof(why));
        if (rc)
            fprintf(stderr, "herald follow %s: %s\n", sub, why);
        goto out;
    }
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (n == 0)
            continue;
        rc = import_line(c, line, (size_t)n, why, sizeof(why));
        if (rc == 0) {
            ok++;
            continue;
        }
        refused++;
        fprintf(stderr, "herald follow import: line %zu: %s\n", lineno, why);
        if (rc == HD_ERR_CONNECT)
            break; /* not acknowledged: the rest was not sent */
    }
    printf("{\"published\":%zu,\"refused\":%zu}\n", ok, refused);
    rc = refused ? 1 : 0;
out:
    free(line);
    hd_cluster_disconnect(c);
    if (f && f != stdin)
        fclose(f);
    return rc ? 1 : 0;
}

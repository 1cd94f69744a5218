/* Operator controls with --cluster (see cli_cluster.h): block, allow, federation mode, actor
 * set and host pause/resume/set/reset published to the cluster's control stream, which every
 * node applies to its store. The arguments are the local command's, checked the same way. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_block.h"
#include "cli_cluster.h"
#include "cli_util.h"
#include "cluster.h"
#include "err.h"
#include "rules.h"


enum {
    K_URL = 256, K_CREDS, K_CA, K_SEV, K_COMMENT, K_MEDIA, K_REPORTS, K_OBF, K_DRY, K_FORCE,
    K_ACTOR, K_FED, K_MAXINF, K_RATE, K_CLEAR
};

static const struct option ctl_flags[] = {
    {"cluster", 1, 0, K_URL},          {"cluster-creds", 1, 0, K_CREDS},
    {"cluster-ca", 1, 0, K_CA},        {"severity", 1, 0, K_SEV},
    {"comment", 1, 0, K_COMMENT},      {"reject-media", 0, 0, K_MEDIA},
    {"reject-reports", 0, 0, K_REPORTS}, {"obfuscate", 0, 0, K_OBF},
    {"dry-run", 0, 0, K_DRY},          {"force", 0, 0, K_FORCE},
    {"actor", 1, 0, K_ACTOR},          {"federation", 1, 0, K_FED},
    {"max-inflight", 1, 0, K_MAXINF},  {"rate", 1, 0, K_RATE},
    {"clear", 0, 0, K_CLEAR},          {0, 0, 0, 0},
};

/* Which of the flags above each command takes (besides the connection flags). */
struct ctl_cmd {
    const char *name; /* "block add", ... */
    unsigned flags;   /* bit (K_x - K_SEV) */
    int min, max;     /* positional arguments */
};
#define F(k) (1u << ((k) - K_SEV))
static const struct ctl_cmd cmds[] = {
    {"block add", F(K_SEV) | F(K_COMMENT) | F(K_MEDIA) | F(K_REPORTS) | F(K_OBF), 1, 1},
    {"block remove", 0, 1, 1},
    {"block import", 0, 1, 1},
    {"allow add", 0, 1, 1},
    {"allow remove", 0, 1, 1},
    {"federation mode", F(K_FORCE), 1, 1},
    {"actor set", F(K_ACTOR) | F(K_FED), 0, 0},
    {"host pause", 0, 1, 1},
    {"host resume", 0, 1, 1},
    {"host set", F(K_MAXINF) | F(K_RATE) | F(K_CLEAR), 1, 1},
    {"host reset", 0, 1, 1},
};

struct ctl_args {
    struct hd_cluster_opts o;
    const char *sev, *comment, *actor, *fed;
    int media, reports, obf, force, clear;
    long long maxinf;
    long long rate_milli;
};

static int parse_rate(const char *s, long long *milli)
{
    char *e;
    double d;
    errno = 0;
    d = strtod(s, &e);
    if (errno || e == s || *e || !(d >= 0) || d > 1e6)
        return -1;
    *milli = llround(d * 1000.0);
    if (d > 0 && *milli == 0)
        *milli = 1;
    return 0;
}

/* Parses argv[0..argc) (argv[0] the subcommand) for cmd. Returns 0 or HD_CLI_USAGE_EXIT. */
static int parse(const struct ctl_cmd *cmd, int argc, char **argv, struct ctl_args *a)
{
    uint64_t v;
    int c;

    memset(a, 0, sizeof(*a));
    a->maxinf = -1;
    a->rate_milli = -1;
    hd_cluster_opts_default(&a->o);
    optind = 0;
    while ((c = hd_cli_getopt(cmd->name, NULL, argc, argv, "", ctl_flags)) != -1) {
        if (c >= K_SEV && !(cmd->flags & F(c))) {
            if (c == K_DRY)
                return hd_cli_usage_error(cmd->name, NULL,
                                          "--dry-run is a local option: run it on a node's "
                                          "store, without --cluster");
            return hd_cli_usage_error(cmd->name, NULL, "--%s is not an option of %s",
                                      ctl_flags[c - K_URL].name, cmd->name);
        }
        switch (c) {
        case K_URL: a->o.url = optarg; break;
        case K_CREDS: a->o.creds = optarg; break;
        case K_CA: a->o.ca = optarg; break;
        case K_SEV: a->sev = optarg; break;
        case K_COMMENT:
            if (strlen(optarg) >= HD_COMMENT_MAX)
                return hd_cli_usage_error(cmd->name, NULL, "--comment is at most %d bytes",
                                          HD_COMMENT_MAX - 1);
            if (!hd_rules_utf8_valid(optarg, strlen(optarg)))
                return hd_cli_usage_error(cmd->name, NULL, "--comment must be UTF-8 text");
            a->comment = optarg;
            break;
        case K_MEDIA: a->media = 1; break;
        case K_REPORTS: a->reports = 1; break;
        case K_OBF: a->obf = 1; break;
        case K_FORCE: a->force = 1; break;
        case K_ACTOR: a->actor = optarg; break;
        case K_FED: a->fed = optarg; break;
        case K_MAXINF:
            if (hd_cli_uint(optarg, 0, 100000, &v) != 0)
                return hd_cli_bad_value(cmd->name, "max-inflight", optarg,
                                        "0 to 100000; 0 is the engine's default");
            a->maxinf = (long long)v;
            break;
        case K_RATE:
            if (parse_rate(optarg, &a->rate_milli) != 0)
                return hd_cli_bad_value(cmd->name, "rate", optarg,
                                        "requests per second, 0 to 1000000; 0 is no limit");
            break;
        case K_CLEAR: a->clear = 1; break;
        default: return HD_CLI_USAGE_EXIT;
        }
    }
    if (hd_cli_positional(cmd->name, NULL, argc, argv, cmd->min, cmd->max))
        return HD_CLI_USAGE_EXIT;
    if (!a->o.url)
        return hd_cli_usage_error(cmd->name, NULL, "--cluster URL is required");
    return 0;
}

/* Builds the operation of cmd from a and the positional argument arg. Returns the message
 * (owned by the caller) or NULL after a usage error (*rc set). */
static json_t *build(const struct ctl_cmd *cmd, const struct ctl_args *a, const char *arg, int *rc)
{
    char dom[HD_DOMAIN_MAX];
    const char *n = cmd->name;

    *rc = HD_CLI_USAGE_EXIT;
    if (!strncmp(n, "block", 5) || !strncmp(n, "allow", 5) || !strncmp(n, "host", 4)) {
        if (hd_rules_domain_norm(arg, dom, sizeof(dom)) != 0 || (n[0] == 'h' && arg[0] == '*')) {
            hd_cli_usage_error(n, NULL, "not a %s: %s", n[0] == 'h' ? "host name" : "domain", arg);
            return NULL;
        }
    }
    if (!strcmp(n, "block add")) {
        if (!a->sev) {
            hd_cli_usage_error(n, NULL, "--severity is required");
            return NULL;
        }
        if (hd_severity_parse(a->sev, strlen(a->sev)) < 0) {
            *rc = hd_cli_bad_value(n, "severity", a->sev, "suspend, silence or noop");
            return NULL;
        }
        return json_pack("{s:s,s:s,s:s,s:s,s:b,s:b,s:b}", "op", "block.add", "domain", dom,
                         "severity", a->sev, "comment", a->comment ? a->comment : "",
                         "reject_media", a->media, "reject_reports", a->reports, "obfuscate",
                         a->obf);
    }
    if (!strcmp(n, "block remove") || !strcmp(n, "allow add") || !strcmp(n, "allow remove"))
        return json_pack("{s:s,s:s}", "op",
                         n[0] == 'b' ? "block.remove" : n[6] == 'a' ? "allow.add" : "allow.remove",
                         "domain", dom);
    if (!strcmp(n, "federation mode")) {
        if (strcmp(arg, "allowlist") && strcmp(arg, "open")) {
            *rc = hd_cli_bad_value(n, "mode", arg, "allowlist or open");
            return NULL;
        }
        if (!strcmp(arg, "allowlist") && !a->force) {
            hd_cli_usage_error(n, NULL, "allowlist mode through the cluster needs --force (the "
                                        "nodes' allowlists are not checked from here)");
            return NULL;
        }
        return json_pack("{s:s,s:s}", "op", "federation.mode", "mode", arg);
    }
    if (!strcmp(n, "actor set")) {
        if (!a->actor || !a->fed) {
            hd_cli_usage_error(n, NULL, "--actor and --federation are required");
            return NULL;
        }
        if (strcmp(a->fed, "all") && strcmp(a->fed, "public") && strcmp(a->fed, "none")) {
            *rc = hd_cli_bad_value(n, "federation", a->fed, "all, public or none");
            return NULL;
        }
        return json_pack("{s:s,s:s,s:s}", "op", "actor.federation", "actor", a->actor,
                         "federation", a->fed);
    }
    if (!strcmp(n, "host set")) {
        json_t *o;
        if (a->maxinf < 0 && a->rate_milli < 0 && !a->clear) {
            hd_cli_usage_error(n, NULL, "nothing to set: give --max-inflight, --rate or --clear");
            return NULL;
        }
        o = json_pack("{s:s,s:s,s:b}", "op", "host.set", "host", dom, "clear", a->clear);
        if (o && a->maxinf >= 0)
            json_object_set_new(o, "max_inflight", json_integer(a->maxinf));
        if (o && a->rate_milli >= 0)
            json_object_set_new(o, "rate_milli", json_integer(a->rate_milli));
        return o;
    }
    /* host pause|resume|reset */
    return json_pack("{s:s,s:s}", "op",
                     !strcmp(n, "host pause")    ? "host.pause"
                     : !strcmp(n, "host resume") ? "host.resume"
                                                 : "host.reset",
                     "host", dom);
}

static int publish(struct hd_cluster_conn *c, const char *cmd, json_t *o, int quiet)
{
    char why[512];
    uint64_t seq;
    int rc;

    rc = o ? hd_cluster_publish_control(c, o, &seq, why, sizeof(why)) : -ENOMEM;
    if (rc == -ENOMEM)
        snprintf(why, sizeof(why), "out of memory");
    if (rc)
        fprintf(stderr, "herald %s: %s\n", cmd, why);
    else if (!quiet)
        printf("herald %s: published to the cluster (control stream seq %" PRIu64
               "); every node applies it within about a second\n",
               cmd, seq);
    return rc;
}

/* block import --cluster: one block.add per row of the CSV. */
static int import_blocks(struct hd_cluster_conn *c, const char *path)
{
    struct hd_import im;
    size_t ok = 0;
    int rc;

    if (hd_cli_block_csv_load(path, "published", &im))
        return 1;
    rc = 0;
    for (size_t i = 0; i < im.n && rc == 0; i++) {
        const struct hd_block *b = &im.blocks[i];
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:b,s:b,s:b}", "op", "block.add", "domain",
                              b->domain, "severity", hd_severity_name(b->severity), "comment",
                              b->comment, "reject_media", b->reject_media, "reject_reports",
                              b->reject_reports, "obfuscate", b->obfuscate);
        rc = publish(c, "block import", o, 1);
        json_decref(o);
        if (rc == 0)
            ok++;
    }
    printf("{\"published\":%zu,\"rows\":%zu}\n", ok, im.n);
    hd_import_fini(&im);
    return rc ? 1 : 0;
}

int hd_cli_control_cluster(int argc, char **argv)
{
    struct hd_cluster_conn *c = NULL;
    const struct ctl_cmd *cmd = NULL;
    struct ctl_args a;
    char name[64], why[512];
    json_t *o = NULL;
    int rc;

    snprintf(name, sizeof(name), "%s %s", argv[0], argc > 1 ? argv[1] : "");
    if (!strcmp(name, "block rm") || !strcmp(name, "allow rm"))
        snprintf(name, sizeof(name), "%s remove", argv[0]);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (!strcmp(name, cmds[i].name))
            cmd = &cmds[i];
    if (!cmd)
        return hd_cli_usage_error(argv[0], NULL, "%s is not a cluster control; with --cluster: %s",
                                  argc > 1 ? argv[1] : "(none)",
                                  !strcmp(argv[0], "block")        ? "add, remove or import"
                                  : !strcmp(argv[0], "allow")      ? "add or remove"
                                  : !strcmp(argv[0], "federation") ? "mode allowlist|open"
                                  : !strcmp(argv[0], "actor")      ? "set"
                                                                   : "pause, resume, set or reset");
    rc = parse(cmd, argc - 1, argv + 1, &a);
    if (rc)
        return rc;
    if (strcmp(cmd->name, "block import")) {
        o = build(cmd, &a, cmd->max ? argv[optind + 1] : NULL, &rc);
        if (!o)
            return rc;
    }
    rc = hd_cluster_connect(&a.o, &c, why, sizeof(why));
    if (rc) {
        fprintf(stderr, "herald %s: %s\n", cmd->name, why);
        json_decref(o);
        return 1;
    }
    if (o)
        rc = publish(c, cmd->name, o, 0) ? 1 : 0;
    else
        rc = import_blocks(c, argv[optind + 1]);
    json_decref(o);
    hd_cluster_disconnect(c);
    return rc;
}

/* `herald actor set` (see cli_actor.h). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli_actor.h"
#include "audit.h"
#include "cli_cluster.h"
#include "cli_util.h"
#include "err.h"
#include "keys.h"
#include "store.h"

static const char actor_usage[] =
    "usage: herald actor set --actor URL --federation all|public|none [--dry-run]\n"
    "  all     deliver everything (the default)\n"
    "  public  deliver only public and unlisted activities\n"
    "  none    deliver nothing; queued deliveries of the actor are dropped\n"
    "--dry-run prints what would be dropped, host by host, and changes nothing.\n"
    "With --cluster nats://HOST:PORT [--cluster-creds FILE] [--cluster-ca PEM],\n"
    "set goes to the cluster's control stream: every node applies it\n"
    "to its store within about a second (dry runs are local).\n";

int hd_cli_actor(const char *db, int argc, char **argv)
{
    static const struct option lo[] = {
        {"actor", 1, 0, 'a'}, {"federation", 1, 0, 'f'}, {"dry-run", 0, 0, 'n'}, {0, 0, 0, 0}};
    const char *actor = NULL, *fed = NULL;
    struct hd_store *st;
    struct hd_txn *txn;
    struct hd_cli_qsnap snap;
    struct hd_counters before, after;
    uint64_t dropped = 0, total = 0, hosts = 0;
    int c, f, rc, dry = 0;

    if (hd_cli_help(argc, argv, actor_usage))
        return 0;
    if (hd_cli_cluster_wanted(argc, argv))
        return hd_cli_control_cluster(argc, argv); /* to JetStream, for every node */
    if (argc < 2 || strcmp(argv[1], "set") != 0)
        return hd_cli_bad_sub("actor", actor_usage, argc, argv, "set");
    optind = 0;
    while ((c = hd_cli_getopt("actor set", actor_usage, argc - 1, argv + 1, "", lo)) != -1) {
        if (c == 'a')
            actor = optarg;
        else if (c == 'f')
            fed = optarg;
        else if (c == 'n')
            dry = 1;
        else
            return HD_CLI_USAGE_EXIT;
    }
    if (hd_cli_positional("actor set", actor_usage, argc - 1, argv + 1, 0, 0))
        return HD_CLI_USAGE_EXIT;
    if (!actor || !fed)
        return hd_cli_usage_error("actor set", actor_usage,
                                  "--actor and --federation are required");
    if (!strcmp(fed, "all")) {
        f = HD_FED_ALL;
    } else if (!strcmp(fed, "public")) {
        f = HD_FED_PUBLIC;
    } else if (!strcmp(fed, "none")) {
        f = HD_FED_NONE;
    } else {
        return hd_cli_bad_value("actor set", "federation", fed, "all, public or none");
    }
    memset(&snap, 0, sizeof(snap));
    if (hd_cli_open_store(db, &st, "actor set"))
        return 1;
    rc = hd_store_begin(st, 1, &txn);
    if (!rc) {
        /* The drop (federation none) is counted in counters.dropped: the difference is ours. */
        rc = hd_counters_get(st, txn, &before);
        if (!rc && dry)
            rc = hd_cli_qsnap_take(st, txn, &snap);
        if (!rc)
            rc = hd_actor_set_federation(st, txn, actor, f);
        if (!rc)
            rc = hd_counters_get(st, txn, &after);
        if (!rc)
            dropped = after.dropped - before.dropped;
        if (!rc && dry) {
            printf("dry run: federation %s for %s would drop %" PRIu64 " queued deliver%s%s\n",
                   fed, actor, dropped, dropped == 1 ? "y" : "ies", dropped ? ":" : "");
            rc = hd_cli_qsnap_diff(st, txn, &snap, 50, &total, &hosts);
            if (!rc)
                printf("nothing changed\n");
            hd_store_abort(txn);
        } else if (!rc) {
            rc = hd_store_commit(txn);
        } else {
            hd_store_abort(txn);
        }
    }
    hd_cli_qsnap_fini(&snap);
    hd_store_close(st);
    if (rc) {
        fprintf(stderr, "herald actor set: %s\n", hd_strerror(rc));
        return 1;
    }
    if (dry)
        return 0;
    printf("actor %s federation %s\n", actor, fed);
    if (dropped)
        printf("dropped %" PRIu64 " queued deliver%s of the actor\n", dropped,
               dropped == 1 ? "y" : "ies");
    {
        char detail[32];
        snprintf(detail, sizeof(detail), "federation=%s", fed);
        hd_audit(HD_AUDIT_CLI, "actor_federation", actor, dropped, detail);
    }
    return 0;
}

/* `herald actor set` (see cli_actor.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli_actor.h"
#include "cli_util.h"
#include "err.h"
#include "keys.h"
#include "store.h"

int hd_cli_actor(const char *db, int argc, char **argv)
{
    static const struct option lo[] = {
        {"actor", 1, 0, 'a'}, {"federation", 1, 0, 'f'}, {0, 0, 0, 0}};
    const char *actor = NULL, *fed = NULL;
    struct hd_store *st;
    struct hd_txn *txn;
    int c, f, rc;

    if (argc < 2 || strcmp(argv[1], "set") != 0) {
        fprintf(stderr, "herald actor: expected set\n");
        return 2;
    }
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "", lo, NULL)) != -1) {
        if (c == 'a')
            actor = optarg;
        else if (c == 'f')
            fed = optarg;
        else
            return 2;
    }
    if (!actor || !fed) {
        fprintf(stderr, "herald actor set: --actor and --federation are required\n");
        return 2;
    }
    if (!strcmp(fed, "all")) {
        f = HD_FED_ALL;
    } else if (!strcmp(fed, "public")) {
        f = HD_FED_PUBLIC;
    } else if (!strcmp(fed, "none")) {
        f = HD_FED_NONE;
    } else {
        fprintf(stderr, "herald actor set: --federation must be all, public or none\n");
        return 2;
    }
    if (hd_cli_open_store(db, &st, NULL))
        return 1;
    rc = hd_store_begin(st, 1, &txn);
    if (!rc) {
        rc = hd_actor_set_federation(st, txn, actor, f);
        if (!rc)
            rc = hd_store_commit(txn);
        else
            hd_store_abort(txn);
    }
    hd_store_close(st);
    if (rc) {
        fprintf(stderr, "herald actor set: %s\n", hd_strerror(rc));
        return 1;
    }
    printf("actor %s federation %s\n", actor, fed);
    return 0;
}

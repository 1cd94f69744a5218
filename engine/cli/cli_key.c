/* `herald key add|list|export-public` (see cli_key.h). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_key.h"
#include "cli_util.h"
#include "err.h"
#include "keyadd.h"
#include "keys.h"
#include "sign.h"
#include "store.h"

#define KEY_PEM_MAX (1u << 20)

static const char key_usage[] =
    "usage: herald key add --key-id URL --actor URL --pem FILE|- | list [--json] | export-public\n"
    "  add            store an actor's signing key (RSA >= 2048 or Ed25519)\n"
    "  list           key ids and actors (never key material)\n"
    "  export-public  JSON lines {key_id, actor, public_pem}\n";

static int key_add(const char *db, int argc, char **argv)
{
    static const struct option lo[] = {
        {"key-id", 1, 0, 'k'}, {"actor", 1, 0, 'a'}, {"pem", 1, 0, 'p'}, {0, 0, 0, 0}};
    const char *kid = NULL, *actor = NULL, *pemf = NULL, *why = NULL;
    struct hd_store *st;
    char *pem;
    size_t len;
    int c, rc;

    optind = 0;
    while ((c = hd_cli_getopt("key add", key_usage, argc, argv, "", lo)) != -1) {
        if (c == 'k')
            kid = optarg;
        else if (c == 'a')
            actor = optarg;
        else if (c == 'p')
            pemf = optarg;
        else
            return HD_CLI_USAGE_EXIT;
    }
    if (hd_cli_positional("key add", key_usage, argc, argv, 0, 0))
        return HD_CLI_USAGE_EXIT;
    if (!kid || !actor || !pemf)
        return hd_cli_usage_error("key add", key_usage,
                                  "--key-id, --actor and --pem are required");
    rc = hd_cli_read_file(pemf, KEY_PEM_MAX, HD_CLI_READ_STDIN, &pem, &len);
    if (rc) {
        fprintf(stderr, "herald key add: cannot read %s: %s\n", pemf, strerror(-rc));
        return 1;
    }
    if (hd_cli_open_store(db, &st, NULL)) {
        explicit_bzero(pem, len);
        free(pem);
        return 1;
    }
    rc = hd_keys_add(st, kid, actor, pem, len, &why);
    explicit_bzero(pem, len);
    free(pem);
    hd_store_close(st);
    if (rc) {
        fprintf(stderr, "herald key add: %s\n", why ? why : hd_strerror(rc));
        return 1;
    }
    printf("added key %s for %s\n", kid, actor);
    return 0;
}

static int print_key(const struct hd_key_info *k, void *ud)
{
    int json = *(int *)ud;
    const char *t = k->type == HD_KEY_ED25519 ? "ed25519" : "rsa";
    if (json)
        printf("{\"key_id\":\"%.*s\",\"actor\":\"%.*s\",\"type\":\"%s\",\"bits\":%u}\n",
               (int)k->key_id.n, k->key_id.p, (int)k->actor.n, k->actor.p, t, k->bits);
    else
        printf("%.*s\t%.*s\t%s-%u\n", (int)k->key_id.n, k->key_id.p, (int)k->actor.n,
               k->actor.p, t, k->bits);
    return 0;
}

struct export_ctx {
    struct hd_store *st;
    int rc;
};

/* One JSON line {key_id, actor, public_pem}: the public half, derived from the stored key. */
static int export_key(const struct hd_key_info *k, void *ud)
{
    struct export_ctx *x = ud;
    struct hd_txn *txn;
    struct hd_slice pem;
    char kid[1024], pub[8192];
    int type;
    unsigned bits;

    snprintf(kid, sizeof(kid), "%.*s", (int)k->key_id.n, k->key_id.p);
    if (hd_store_begin(x->st, 0, &txn) != 0)
        return x->rc = 1;
    if (hd_keys_get_pem(x->st, txn, kid, &pem) != 0 ||
        hd_key_inspect(pem.p, pem.n, &type, &bits, pub, sizeof(pub)) != 0) {
        hd_store_abort(txn);
        fprintf(stderr, "herald: cannot export key %s\n", kid);
        x->rc = 1;
        return 0;
    }
    hd_store_abort(txn);
    hd_cli_print_json(json_pack("{s:s, s:s%, s:s}", "key_id", kid, "actor", k->actor.p,
                                k->actor.n, "public_pem", pub));
    return 0;
}

int hd_cli_key(const char *db, int argc, char **argv)
{
    struct hd_store *st;
    int rc;

    if (hd_cli_help(argc, argv, key_usage))
        return 0;
    if (argc < 2)
        return hd_cli_bad_sub("key", key_usage, argc, argv, "add, list or export-public");
    if (strcmp(argv[1], "add") == 0)
        return key_add(db, argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0) {
        int json = 0;
        if (hd_cli_simple_args("key list", key_usage, argc - 1, argv + 1, &json, 0, 0))
            return HD_CLI_USAGE_EXIT;
        if (hd_cli_open_store_ro(db, &st, "key list"))
            return 1;
        rc = hd_keys_list(st, print_key, &json);
        hd_store_close(st);
        return rc ? 1 : 0;
    }
    if (strcmp(argv[1], "export-public") == 0) {
        struct export_ctx x = {NULL, 0};
        if (hd_cli_simple_args("key export-public", key_usage, argc - 1, argv + 1, NULL, 0,
                               0))
            return HD_CLI_USAGE_EXIT;
        if (hd_cli_open_store_ro(db, &st, "key export-public"))
            return 1;
        x.st = st;
        rc = hd_keys_list(st, export_key, &x);
        hd_store_close(st);
        return rc || x.rc ? 1 : 0;
    }
    return hd_cli_bad_sub("key", key_usage, argc, argv, "add, list or export-public");
}

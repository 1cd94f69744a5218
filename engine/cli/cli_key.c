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

static int key_add(const char *db, int argc, char **argv)
{
    static const struct option lo[] = {
        {"key-id", 1, 0, 'k'}, {"actor", 1, 0, 'a'}, {"pem", 1, 0, 'p'}, {0, 0, 0, 0}};
    const char *kid = NULL, *actor = NULL, *pemf = NULL, *why = NULL;
    struct hd_store *st;
    char *pem;
    size_t len;
    int c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 'k')
            kid = optarg;
        else if (c == 'a')
            actor = optarg;
        else if (c == 'p')
            pemf = optarg;
        else
            return 2;
    }
    if (!kid || !actor || !pemf) {
        fprintf(stderr, "herald key add: --key-id, --actor and --pem are required\n");
        return 2;
    }
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

    if (argc < 2) {
        fprintf(stderr, "herald key: expected add, list or export-public\n");
        return 2;
    }
    if (strcmp(argv[1], "add") == 0)
        return key_add(db, argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0) {
        int json = argc > 2 && strcmp(argv[2], "--json") == 0;
        if (hd_cli_open_store(db, &st, NULL))
            return 1;
        rc = hd_keys_list(st, print_key, &json);
        hd_store_close(st);
        return rc ? 1 : 0;
    }
    if (strcmp(argv[1], "export-public") == 0) {
        struct export_ctx x = {NULL, 0};
        if (hd_cli_open_store(db, &st, NULL))
            return 1;
        x.st = st;
        rc = hd_keys_list(st, export_key, &x);
        hd_store_close(st);
        return rc || x.rc ? 1 : 0;
    }
    fprintf(stderr, "herald key: unknown subcommand %s\n", argv[1]);
    return 2;
}

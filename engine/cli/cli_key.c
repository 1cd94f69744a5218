/* `herald key add|import|remove|list|export-public` (see cli_key.h). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <inttypes.h>
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
    "usage: herald key add --key-id URL --actor URL --pem FILE|- | import [--group N] FILE|-\n"
    "       | remove --key-id URL | list [--json] | export-public\n"
    "  add            store an actor's signing key (RSA >= 2048 or Ed25519)\n"
    "  import         JSON lines {key_id, actor, pem}, N per transaction (--group, default 1000);\n"
    "                 bad lines reported by number and skipped (exit 1)\n"
    "  remove         remove a key; an actor's only key is refused while deliveries need it\n"
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

static void import_bad(size_t lineno, const char *why, void *user_data)
{
    (void)user_data;
    fprintf(stderr, "herald key import: line %zu: %s\n", lineno, why);
}

/* herald key import FILE|- [--group N]: JSON lines {"key_id","actor","pem"}, read a line at a
 * time (a file of millions of keys is never held whole). */
static int key_import(const char *db, int argc, char **argv)
{
    static const struct option lo[] = {{"group", 1, 0, 'g'}, {0, 0, 0, 0}};
    struct hd_key_import_stats s;
    struct hd_key_import *imp = NULL;
    const char *path = NULL;
    struct hd_store *st;
    unsigned long group = 0;
    char *line = NULL, *end;
    size_t cap = 0;
    ssize_t n;
    FILE *f;
    int c, rc = 0;

    optind = 0;
    while ((c = hd_cli_getopt("key import", key_usage, argc, argv, "", lo)) != -1) {
        if (c != 'g')
            return HD_CLI_USAGE_EXIT;
        errno = 0;
        group = strtoul(optarg, &end, 10);
        if (errno || *end || group == 0 || group > 1000000)
            return hd_cli_bad_value("key import", "--group", optarg, "1..1000000");
    }
    if (hd_cli_positional("key import", key_usage, argc, argv, 1, 1))
        return HD_CLI_USAGE_EXIT;
    path = argv[optind];
    f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) {
        fprintf(stderr, "herald key import: cannot read %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (hd_cli_open_store(db, &st, NULL)) {
        if (f != stdin)
            fclose(f);
        return 1;
    }
    rc = hd_key_import_new(st, group, import_bad, NULL, &imp);
    while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
        size_t len = (size_t)n;
        if (len && line[len - 1] == '\n')
            len--;
        rc = hd_key_import_line(imp, line, len);
        explicit_bzero(line, (size_t)n);
    }
    if (rc == 0 && ferror(f))
        rc = -EIO;
    if (rc == 0)
        rc = hd_key_import_finish(imp, &s);
    if (line)
        explicit_bzero(line, cap);
    free(line);
    if (f != stdin)
        fclose(f);
    hd_key_import_free(imp);
    hd_store_close(st);
    if (rc) {
        fprintf(stderr,
                "herald key import: stopped: %s (groups committed before it stay; importing "
                "the file again is harmless)\n",
                hd_strerror(rc));
        return 1;
    }
    printf("imported %zu keys, %zu bad lines, %zu lines\n", s.imported, s.bad, s.lines);
    return s.bad ? 1 : 0;
}

/* herald key remove --key-id ID */
static int key_remove(const char *db, int argc, char **argv)
{
    static const struct option lo[] = {{"key-id", 1, 0, 'k'}, {0, 0, 0, 0}};
    const char *kid = NULL, *why = NULL;
    struct hd_store *st;
    uint64_t pending = 0;
    int c, rc;

    optind = 0;
    while ((c = hd_cli_getopt("key remove", key_usage, argc, argv, "", lo)) != -1) {
        if (c != 'k')
            return HD_CLI_USAGE_EXIT;
        kid = optarg;
    }
    if (hd_cli_positional("key remove", key_usage, argc, argv, 0, 0))
        return HD_CLI_USAGE_EXIT;
    if (!kid)
        return hd_cli_usage_error("key remove", key_usage, "--key-id URL is required");
    if (hd_cli_open_store(db, &st, NULL))
        return 1;
    rc = hd_keys_remove(st, kid, &pending, &why);
    hd_store_close(st);
    if (rc == HD_ERR_BUSY) {
        fprintf(stderr, "herald key remove: refused: %s (%" PRIu64 " deliveries)\n", why, pending);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "herald key remove: %s\n",
                rc == HD_ERR_NOT_FOUND ? "no such key" : why ? why : hd_strerror(rc));
        return 1;
    }
    printf("removed key %s\n", kid);
    return 0;
}

int hd_cli_key(const char *db, int argc, char **argv)
{
    struct hd_store *st;
    int rc;

    if (hd_cli_help(argc, argv, key_usage))
        return 0;
    if (argc < 2)
        return hd_cli_bad_sub("key", key_usage, argc, argv, "add, import, remove, list or export-public");
    if (strcmp(argv[1], "add") == 0)
        return key_add(db, argc - 1, argv + 1);
    if (strcmp(argv[1], "import") == 0)
        return key_import(db, argc - 1, argv + 1);
    if (strcmp(argv[1], "remove") == 0)
        return key_remove(db, argc - 1, argv + 1);
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

/* `herald block|allow|federation`: operator commands over rules.h. Every change is one
 * write transaction: the rule, the generation bump (a running engine reloads within a
 * second), the queued deliveries the new rules refuse (dropped and counted) and the
 * counters commit together or not at all. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_cluster.h"
#include "cli_util.h"
#include "audit.h"
#include "clock.h"
#include "cli_block.h"
#include "enforce.h"
#include "err.h"
#include "rules.h"
#include "store.h"

#define IMPORT_MAX_BYTES (64u << 20)

static const char block_usage[] =
    "usage: herald block add DOMAIN --severity suspend|silence|noop [--comment TEXT]\n"
    "           [--reject-media] [--reject-reports] [--obfuscate] [--dry-run]\n"
    "       herald block remove DOMAIN | list [--json] | export | import FILE|-\n"
    "Domain blocks; export and import use Mastodon's CSV (#domain,#severity,...).\n"
    "A suspend takes the domain's queued deliveries out of the queue, kept as dead letters\n"
    "\"blocked\" (`herald dead retry` after `block remove` sends them). --dry-run prints\n"
    "what would be taken out, host by host, and changes nothing.\n"
    "With --cluster nats://HOST:PORT [--cluster-creds FILE] [--cluster-ca PEM],\n"
    "add, remove and import go to the cluster's control stream: every node applies them\n"
    "to its store within about a second (dry runs are local).\n";

static const char allow_usage[] =
    "usage: herald allow add|remove DOMAIN | list [--json]\n"
    "Domains delivered to in allowlist mode (`herald federation mode allowlist`).\n"
    "With --cluster nats://HOST:PORT [--cluster-creds FILE] [--cluster-ca PEM],\n"
    "add and remove go to the cluster's control stream: every node applies them\n"
    "to its store within about a second (dry runs are local).\n";

static const char federation_usage[] =
    "usage: herald federation mode [allowlist|open [--force] [--dry-run]]\n"
    "Shows or sets the federation mode. allowlist delivers only to allowed domains and takes\n"
    "the other queued deliveries out of the queue (dead letters \"blocked\"); with no domain\n"
    "allowed it needs --force. --dry-run prints what would be taken out and changes nothing.\n"
    "With --cluster nats://HOST:PORT [--cluster-creds FILE] [--cluster-ca PEM],\n"
    "mode allowlist|open goes to the cluster's control stream: every node applies it\n"
    "to its store within about a second (dry runs are local).\n";

/* Ends the write transaction txn of a rule change whose result is rc: on success drops what
 * the new rules refuse, writes the counters and commits; else aborts. Returns 0 or an error
 * (txn is finished either way). */
static int finish_change(struct hd_store *st, struct hd_txn *txn, int rc, uint64_t *dropped,
                         uint64_t *hosts)
{
    struct hd_counters c;
    struct hd_rules *r = NULL;

    if (!rc)
        rc = hd_counters_get(st, txn, &c);
    if (!rc)
        rc = hd_rules_load(st, txn, &r);
    if (!rc)
        rc = hd_rules_enforce(st, txn, &c, r, dropped, hosts);
    hd_rules_free(r);
    if (!rc)
        rc = hd_counters_put(st, txn, &c);
    if (rc) {
        hd_store_abort(txn);
        return rc;
    }
    return hd_store_commit(txn);
}

/* --dry-run: the change is made inside txn and rolled back; what it would drop is printed,
 * host by host, from the queue sizes before (snap) and after. Returns 0 or an error (txn is
 * finished either way). */
static int dry_change(struct hd_store *st, struct hd_txn *txn, int rc,
                      const struct hd_cli_qsnap *snap, const char *what)
{
    uint64_t dropped = 0, hosts = 0, total = 0, nh = 0;
    struct hd_counters c;
    struct hd_rules *r = NULL;

    if (!rc)
        rc = hd_counters_get(st, txn, &c);
    if (!rc)
        rc = hd_rules_load(st, txn, &r);
    if (!rc)
        rc = hd_rules_enforce(st, txn, &c, r, &dropped, &hosts);
    hd_rules_free(r);
    if (!rc) {
        printf("dry run: %s would take %" PRIu64 " queued deliver%s out of the queue on %" PRIu64
               " host%s (kept as dead letters \"blocked\"; `herald dead retry` after an unblock "
               "brings them back)%s\n",
               what, dropped, dropped == 1 ? "y" : "ies", hosts, hosts == 1 ? "" : "s",
               dropped ? ":" : "");
        rc = hd_cli_qsnap_diff(st, txn, snap, 50, &total, &nh);
        if (!rc)
            printf("nothing changed\n");
    }
    hd_store_abort(txn);
    return rc;
}

static void print_dropped(uint64_t dropped, uint64_t hosts)
{
    if (dropped)
        printf("dropped %" PRIu64 " queued deliver%s on %" PRIu64 " host%s (kept as dead letters "
               "\"blocked\": `herald dead retry` after an unblock)\n",
               dropped, dropped == 1 ? "y" : "ies", hosts, hosts == 1 ? "" : "s");
}

/* ------------------------------------------------------------------ block */

static int block_add(const char *db, int argc, char **argv)
{
    enum { O_SEV = 256, O_COMMENT, O_MEDIA, O_REPORTS, O_OBF, O_DRY };
    static const struct option lo[] = {{"severity", 1, 0, O_SEV},
                                       {"dry-run", 0, 0, O_DRY},
                                       {"comment", 1, 0, O_COMMENT},
                                       {"reject-media", 0, 0, O_MEDIA},
                                       {"reject-reports", 0, 0, O_REPORTS},
                                       {"obfuscate", 0, 0, O_OBF},
                                       {0, 0, 0, 0}};
    struct hd_block b, old;
    struct hd_cli_qsnap snap;
    const char *domain = NULL, *sev = NULL;
    struct hd_store *st;
    struct hd_txn *txn;
    uint64_t dropped = 0, hosts = 0;
    int c, rc, dry = 0, had = 0;
    char detail[HD_COMMENT_MAX + 128];

    memset(&b, 0, sizeof(b));
    optind = 0;
    while ((c = hd_cli_getopt("block add", block_usage, argc, argv, "", lo)) != -1) {
        switch (c) {
        case O_SEV:
            sev = optarg;
            break;
        case O_COMMENT:
            if (strlen(optarg) >= sizeof(b.comment))
                return hd_cli_usage_error("block add", NULL, "--comment is at most %zu bytes",
                                          sizeof(b.comment) - 1);
            if (!hd_rules_utf8_valid(optarg, strlen(optarg)))
                return hd_cli_usage_error("block add", NULL, "--comment must be UTF-8 text");
            snprintf(b.comment, sizeof(b.comment), "%s", optarg);
            break;
        case O_MEDIA:
            b.reject_media = 1;
            break;
        case O_REPORTS:
            b.reject_reports = 1;
            break;
        case O_OBF:
            b.obfuscate = 1;
            break;
        case O_DRY:
            dry = 1;
            break;
        default:
            return HD_CLI_USAGE_EXIT;
        }
    }
    if (hd_cli_positional("block add", block_usage, argc, argv, 1, 1))
        return HD_CLI_USAGE_EXIT;
    domain = argv[optind];
    if (!sev)
        return hd_cli_usage_error("block add", block_usage, "--severity is required");
    b.severity = hd_severity_parse(sev, strlen(sev));
    if (b.severity < 0)
        return hd_cli_bad_value("block add", "severity", sev, "suspend, silence or noop");
    if (hd_rules_domain_norm(domain, b.domain, sizeof(b.domain)) != 0)
        return hd_cli_usage_error("block add", NULL, "not a domain: %s", domain);
    memset(&snap, 0, sizeof(snap));
    if (hd_cli_open_store(db, &st, "block add"))
        return 1;
    b.created_ms = hd_wall_ms();
    rc = hd_store_begin(st, 1, &txn);
    if (rc)
        goto out;
    if (dry)
        rc = hd_cli_qsnap_take(st, txn, &snap);
    if (!rc && hd_block_get(st, txn, b.domain, &old) == 0) {
        b.created_ms = old.created_ms;
        had = 1;
    }
    if (!rc)
        rc = hd_block_put(st, txn, &b);
    if (dry) {
        char what[HD_DOMAIN_MAX + 64];
        snprintf(what, sizeof(what), "blocking %s (%s)", b.domain, hd_severity_name(b.severity));
        rc = dry_change(st, txn, rc, &snap, what);
    } else {
        rc = finish_change(st, txn, rc, &dropped, &hosts);
    }
out:
    hd_cli_qsnap_fini(&snap);
    hd_store_close(st);
    if (rc) {
        fprintf(stderr, "herald block add: %s\n", hd_strerror(rc));
        return 1;
    }
    if (had && (old.severity != b.severity || strcmp(old.comment, b.comment) != 0 ||
                old.reject_media != b.reject_media || old.reject_reports != b.reject_reports ||
                old.obfuscate != b.obfuscate)) {
        printf("%s the block of %s: severity %s -> %s", dry ? "would replace" : "replaced",
               b.domain, hd_severity_name(old.severity), hd_severity_name(b.severity));
        if (strcmp(old.comment, b.comment) != 0)
            printf(", comment \"%s\" -> \"%s\"", old.comment, b.comment);
        if (old.reject_media != b.reject_media || old.reject_reports != b.reject_reports ||
            old.obfuscate != b.obfuscate)
            printf(", flags reject_media=%d reject_reports=%d obfuscate=%d", b.reject_media,
                   b.reject_reports, b.obfuscate);
        printf("\n");
    } else if (had) {
        printf("%s is already blocked so (%s)\n", b.domain, hd_severity_name(b.severity));
    }
    if (dry)
        return 0;
    printf("blocked %s (%s)\n", b.domain, hd_severity_name(b.severity));
    print_dropped(dropped, hosts);
    snprintf(detail, sizeof(detail), "severity=%s%s%s", hd_severity_name(b.severity),
             had ? " replaced=" : "", had ? hd_severity_name(old.severity) : "");
    hd_audit(HD_AUDIT_CLI, "block_add", b.domain, dropped, detail);
    return 0;
}

static int block_remove(const char *db, int argc, char **argv)
{
    char dom[HD_DOMAIN_MAX];
    struct hd_store *st;
    struct hd_txn *txn;
    int rc;

    if (hd_cli_simple_args("block remove", block_usage, argc, argv, NULL, 1, 1))
        return HD_CLI_USAGE_EXIT;
    if (hd_rules_domain_norm(argv[optind], dom, sizeof(dom)) != 0)
        return hd_cli_usage_error("block remove", NULL, "not a domain: %s", argv[optind]);
    if (hd_cli_open_store(db, &st, "block remove"))
        return 1;
    rc = hd_store_begin(st, 1, &txn);
    if (!rc) {
        rc = hd_block_del(st, txn, dom);
        if (!rc)
            rc = hd_store_commit(txn);
        else
            hd_store_abort(txn);
    }
    hd_store_close(st);
    if (rc == HD_ERR_NOT_FOUND) {
        fprintf(stderr, "herald block remove: no block for %s\n", dom);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "herald block remove: %s\n", hd_strerror(rc));
        return 1;
    }
    printf("unblocked %s (`herald dead retry --host HOST` sends its \"blocked\" dead letters)\n",
           dom);
    hd_audit(HD_AUDIT_CLI, "block_remove", dom, 0, NULL);
    return 0;
}

struct list_ctx {
    int json;
    size_t n;
};

static int print_block(const struct hd_block *b, void *user_data)
{
    struct list_ctx *x = user_data;
    x->n++;
    if (x->json) {
        hd_cli_print_json(json_pack("{s:s, s:s, s:b, s:b, s:b, s:s, s:I}", "domain", b->domain,
                             "severity", hd_severity_name(b->severity), "reject_media",
                             b->reject_media, "reject_reports", b->reject_reports, "obfuscate",
                             b->obfuscate, "comment", b->comment, "created_ms",
                             (json_int_t)b->created_ms));
        return 0;
    }
    printf("%-40s %-8s%s%s%s%s%s\n", b->domain, hd_severity_name(b->severity),
           b->reject_media ? " reject_media" : "", b->reject_reports ? " reject_reports" : "",
           b->obfuscate ? " obfuscate" : "", b->comment[0] ? "  # " : "", b->comment);
    return 0;
}

static int print_csv_row(const struct hd_block *b, void *user_data)
{
    char row[HD_DOMAIN_MAX + 2 * HD_COMMENT_MAX + 64];
    (void)user_data;
    if (hd_block_csv_row(b, row, sizeof(row)) < 0)
        return HD_ERR_FULL;
    printf("%s\n", row);
    return 0;
}

static int block_list(const char *db, int argc, char **argv, int csv)
{
    struct list_ctx x = {0, 0};
    struct hd_store *st;
    struct hd_txn *txn;
    int rc;

    if (hd_cli_simple_args(csv ? "block export" : "block list", block_usage, argc, argv,
                           csv ? NULL : &x.json, 0, 0))
        return HD_CLI_USAGE_EXIT;
    if (hd_cli_open_store_ro(db, &st, csv ? "block export" : "block list"))
        return 1;
    rc = hd_store_begin(st, 0, &txn);
    if (!rc) {
        if (csv)
            printf("%s\n", HD_BLOCKS_CSV_HEADER);
        rc = hd_block_foreach(st, txn, csv ? print_csv_row : print_block, &x);
        hd_store_abort(txn);
    }
    hd_store_close(st);
    if (rc) {
        fprintf(stderr, "herald block %s: %s\n", csv ? "export" : "list", hd_strerror(rc));
        return 1;
    }
    return 0;
}

int hd_cli_block_csv_load(const char *path, const char *what, struct hd_import *im)
{
    char *buf;
    size_t len = 0;
    int rc;

    rc = hd_cli_read_file(path, IMPORT_MAX_BYTES, HD_CLI_READ_STDIN, &buf, &len);
    if (rc) {
        fprintf(stderr, "herald block import: cannot read %s: %s\n", path,
                rc == -EFBIG ? "larger than 64 MiB" : strerror(-rc));
        return 1;
    }
    rc = hd_blocks_parse_csv(buf, len, im);
    free(buf);
    if (rc) {
        fprintf(stderr, "herald block import: %s\n",
                rc == HD_ERR_FULL ? "more than 1,000,000 rows" : hd_strerror(rc));
        hd_import_fini(im);
        return 1;
    }
    if (im->nerr_total) {
        for (size_t i = 0; i < im->nerr; i++)
            fprintf(stderr, "herald block import: %s:%zu: %s\n", path, im->errs[i].line,
                    im->errs[i].why);
        if (im->nerr_total > im->nerr)
            fprintf(stderr, "herald block import: ... and %zu more\n", im->nerr_total - im->nerr);
        fprintf(stderr, "herald block import: %zu bad line%s; nothing %s\n", im->nerr_total,
                im->nerr_total == 1 ? "" : "s", what);
        hd_import_fini(im);
        return 1;
    }
    return 0;
}

static int block_import(const char *db, int argc, char **argv)
{
    struct hd_import im;
    struct hd_store *st = NULL;
    struct hd_txn *txn;
    size_t added = 0, updated = 0;
    uint64_t dropped = 0, hosts = 0, now = hd_wall_ms();
    int rc;

    if (hd_cli_simple_args("block import", block_usage, argc, argv, NULL, 1, 1))
        return HD_CLI_USAGE_EXIT;
    argv += optind - 1; /* argv[1]: the file */
    if (hd_cli_block_csv_load(argv[1], "imported", &im))
        return 1;
    if (hd_cli_open_store(db, &st, "block import")) {
        hd_import_fini(&im);
        return 1;
    }
    rc = hd_store_begin(st, 1, &txn);
    if (rc)
        goto out;
    for (size_t i = 0; i < im.n && !rc; i++) {
        struct hd_block old;
        im.blocks[i].created_ms = now;
        if (hd_block_get(st, txn, im.blocks[i].domain, &old) == 0) {
            im.blocks[i].created_ms = old.created_ms;
            updated++;
        } else {
            added++;
        }
        rc = hd_block_put(st, txn, &im.blocks[i]);
    }
    rc = finish_change(st, txn, rc, &dropped, &hosts);
out:
    hd_store_close(st);
    if (rc) {
        fprintf(stderr, "herald block import: %s; nothing imported\n", hd_strerror(rc));
        hd_import_fini(&im);
        return 1;
    }
    printf("imported %zu block%s (%zu new, %zu replaced)\n", im.n, im.n == 1 ? "" : "s", added,
           updated);
    print_dropped(dropped, hosts);
    {
        char detail[96];
        snprintf(detail, sizeof(detail), "rows=%zu new=%zu replaced=%zu", im.n, added, updated);
        hd_audit(HD_AUDIT_CLI, "block_import", argv[1], dropped, detail);
    }
    hd_import_fini(&im);
    return 0;
}

int hd_cli_block(const char *db, int argc, char **argv)
{
    if (hd_cli_help(argc, argv, block_usage))
        return 0;
    if (hd_cli_cluster_wanted(argc, argv))
        return hd_cli_control_cluster(argc, argv); /* to JetStream, for every node */
    if (argc >= 2 && !strcmp(argv[1], "add"))
        return block_add(db, argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "remove") || !strcmp(argv[1], "rm")))
        return block_remove(db, argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "list"))
        return block_list(db, argc - 1, argv + 1, 0);
    if (argc >= 2 && !strcmp(argv[1], "export"))
        return block_list(db, argc - 1, argv + 1, 1);
    if (argc >= 2 && !strcmp(argv[1], "import"))
        return block_import(db, argc - 1, argv + 1);
    return hd_cli_bad_sub("block", block_usage, argc, argv,
                          "add, remove, list, import or export");
}

/* ------------------------------------------------------------------ allow */

static int print_allow(const char *domain, uint64_t created_ms, void *user_data)
{
    struct list_ctx *x = user_data;
    x->n++;
    if (x->json)
        hd_cli_print_json(json_pack("{s:s, s:I}", "domain", domain, "created_ms", (json_int_t)created_ms));
    else
        printf("%s\n", domain);
    return 0;
}

int hd_cli_allow(const char *db, int argc, char **argv)
{
    char dom[HD_DOMAIN_MAX];
    struct hd_store *st;
    struct hd_txn *txn;
    uint64_t dropped = 0, hosts = 0;
    int rc, add;

    if (hd_cli_help(argc, argv, allow_usage))
        return 0;
    if (hd_cli_cluster_wanted(argc, argv))
        return hd_cli_control_cluster(argc, argv); /* to JetStream, for every node */
    if (argc >= 2 && !strcmp(argv[1], "list")) {
        struct list_ctx x = {0, 0};
        if (hd_cli_simple_args("allow list", allow_usage, argc - 1, argv + 1, &x.json, 0, 0))
            return HD_CLI_USAGE_EXIT;
        if (hd_cli_open_store_ro(db, &st, "allow list"))
            return 1;
        rc = hd_store_begin(st, 0, &txn);
        if (!rc) {
            rc = hd_allow_foreach(st, txn, print_allow, &x);
            hd_store_abort(txn);
        }
        hd_store_close(st);
        if (rc) {
            fprintf(stderr, "herald allow list: %s\n", hd_strerror(rc));
            return 1;
        }
        return 0;
    }
    if (argc < 2 || (strcmp(argv[1], "add") && strcmp(argv[1], "remove") && strcmp(argv[1], "rm")))
        return hd_cli_bad_sub("allow", allow_usage, argc, argv, "add, remove or list");
    add = !strcmp(argv[1], "add");
    if (hd_cli_simple_args(add ? "allow add" : "allow remove", allow_usage, argc - 1, argv + 1,
                           NULL, 1, 1))
        return HD_CLI_USAGE_EXIT;
    if (hd_rules_domain_norm(argv[optind + 1], dom, sizeof(dom)) != 0)
        return hd_cli_usage_error("allow", NULL, "not a domain: %s", argv[optind + 1]);
    if (hd_cli_open_store(db, &st, "allow"))
        return 1;
    rc = hd_store_begin(st, 1, &txn);
    if (!rc) {
        rc = add ? hd_allow_put(st, txn, dom, hd_wall_ms()) : hd_allow_del(st, txn, dom);
        rc = finish_change(st, txn, rc, &dropped, &hosts); /* removal in allowlist mode */
    }
    hd_store_close(st);
    if (rc == HD_ERR_NOT_FOUND) {
        fprintf(stderr, "herald allow remove: %s is not allowed\n", dom);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "herald allow: %s\n", hd_strerror(rc));
        return 1;
    }
    printf("%s %s\n", add ? "allowed" : "no longer allowed:", dom);
    print_dropped(dropped, hosts);
    hd_audit(HD_AUDIT_CLI, add ? "allow_add" : "allow_remove", dom, dropped, NULL);
    return 0;
}

/* ------------------------------------------------------------------ federation */

static int count_allow(const char *domain, uint64_t created_ms, void *user_data)
{
    (void)domain;
    (void)created_ms;
    (*(size_t *)user_data)++;
    return 1; /* one is enough */
}

int hd_cli_federation(const char *db, int argc, char **argv)
{
    struct hd_store *st;
    struct hd_txn *txn;
    uint64_t dropped = 0, hosts = 0;
    size_t nallow = 0;
    static const struct option lo[] = {{"force", 0, 0, 'f'}, {"dry-run", 0, 0, 'n'},
                                       {0, 0, 0, 0}};
    struct hd_cli_qsnap snap;
    const char *arg;
    int rc, mode, force = 0, dry = 0, c;

    if (hd_cli_help(argc, argv, federation_usage))
        return 0;
    if (hd_cli_cluster_wanted(argc, argv))
        return hd_cli_control_cluster(argc, argv); /* to JetStream, for every node */
    if (argc < 2 || strcmp(argv[1], "mode"))
        return hd_cli_bad_sub("federation", federation_usage, argc, argv, "mode");
    optind = 0;
    while ((c = hd_cli_getopt("federation mode", federation_usage, argc - 1, argv + 1, "", lo)) !=
           -1) {
        if (c == 'f')
            force = 1;
        else if (c == 'n')
            dry = 1;
        else
            return HD_CLI_USAGE_EXIT;
    }
    if (hd_cli_positional("federation mode", federation_usage, argc - 1, argv + 1, 0, 1))
        return HD_CLI_USAGE_EXIT;
    arg = optind + 1 < argc ? argv[optind + 1] : NULL;
    if (!arg && (force || dry))
        return hd_cli_usage_error("federation mode", federation_usage,
                                  "--force and --dry-run go with a mode to set");
    if (arg && strcmp(arg, "allowlist") && strcmp(arg, "open"))
        return hd_cli_usage_error("federation mode", federation_usage,
                                  "expected allowlist or open, not %s", arg);
    if (!arg) {
        if (hd_cli_open_store_ro(db, &st, "federation mode"))
            return 1;
        rc = hd_store_begin(st, 0, &txn);
        if (!rc) {
            rc = hd_rules_mode_get(st, txn, &mode);
            hd_store_abort(txn);
        }
        hd_store_close(st);
        if (rc) {
            fprintf(stderr, "herald federation mode: %s\n", hd_strerror(rc));
            return 1;
        }
        printf("%s\n", mode == HD_MODE_ALLOWLIST ? "allowlist" : "open");
        return 0;
    }
    mode = !strcmp(arg, "allowlist") ? HD_MODE_ALLOWLIST : HD_MODE_OPEN;
    memset(&snap, 0, sizeof(snap));
    if (hd_cli_open_store(db, &st, "federation mode"))
        return 1;
    rc = hd_store_begin(st, 1, &txn);
    if (rc)
        goto out;
    if (dry) {
        rc = hd_cli_qsnap_take(st, txn, &snap);
        if (!rc)
            rc = hd_rules_mode_set(st, txn, mode);
        rc = dry_change(st, txn, rc, &snap,
                        mode == HD_MODE_ALLOWLIST ? "allowlist mode" : "open mode");
        hd_cli_qsnap_fini(&snap);
        goto out_dry;
    }
    if (mode == HD_MODE_ALLOWLIST && !force) {
        /* An empty allowlist stops all federation and drops every queue: ask for --force. */
        rc = hd_allow_foreach(st, txn, count_allow, &nallow);
        if (!rc && nallow == 0) {
            hd_store_abort(txn);
            hd_store_close(st);
            fprintf(stderr, "herald federation mode allowlist: no domain is allowed yet, so "
                            "nothing would be delivered and every queued delivery dropped; add "
                            "domains with `herald allow add` first, or repeat with --force\n");
            return 1;
        }
    }
    if (!rc)
        rc = hd_rules_mode_set(st, txn, mode);
    rc = finish_change(st, txn, rc, &dropped, &hosts);
out:
    if (!rc)
        hd_audit(HD_AUDIT_CLI, "federation_mode", mode == HD_MODE_ALLOWLIST ? "allowlist" : "open",
                 dropped, force ? "force" : NULL);
out_dry:
    hd_store_close(st);
    if (rc) {
        fprintf(stderr, "herald federation mode: %s\n", hd_strerror(rc));
        return 1;
    }
    if (dry)
        return 0;
    printf("federation mode %s\n", mode == HD_MODE_ALLOWLIST ? "allowlist" : "open");
    print_dropped(dropped, hosts);
    return 0;
}

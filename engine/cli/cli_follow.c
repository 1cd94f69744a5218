/* herald follow add|remove|import|list (see cli_follow.h). */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "cli_util.h"
#include "audience.h"
#include "cli_cluster.h"
#include "cli_follow.h"
#include "err.h"
#include "store.h"

#define IMPORT_CHUNK (1u << 20) /* operations per write transaction */
#define LINE_MAX_BYTES 65536
#define CSV_FIELDS 8

static const char follow_usage[] =
    "usage: herald follow add --actor A --follower F --inbox I [--shared-inbox S]\n"
    "       herald follow remove --actor A --follower F\n"
    "       herald follow import [FILE|-]\n"
    "       herald follow list --actor A [--count]\n"
    "The followers of local actors, whose inboxes an activity addressed to the actor's\n"
    "followers is delivered to. import reads JSON lines {actor, follower, inbox, shared_inbox}\n"
    "or CSV with a header naming those columns (standard input by default).\n"
    "With --cluster nats://HOST:PORT [--cluster-creds FILE] [--cluster-ca PEM], add, remove\n"
    "and import go to the cluster's follow stream, which every node applies.\n";

/* Applies b in one write transaction. Returns 0 or an error (printed). */
static int apply(struct hd_store *st, struct hd_follow_batch *b, struct hd_follow_stats *s)
{
    struct hd_txn *txn;
    int rc = hd_store_begin(st, 1, &txn);

    if (!rc)
        rc = hd_follow_batch_apply(st, txn, b, s);
    if (!rc)
        rc = hd_store_commit(txn);
    else
        hd_store_abort(txn);
    if (rc)
        fprintf(stderr, "herald follow: store error: %s\n", hd_strerror(rc));
    return rc;
}

static int cmd_add_remove(const char *db, int argc, char **argv, int remove)
{
    static const struct option lo[] = {{"actor", 1, 0, 'a'},
                                       {"follower", 1, 0, 'f'},
                                       {"inbox", 1, 0, 'i'},
                                       {"shared-inbox", 1, 0, 's'},
                                       {0, 0, 0, 0}};
    struct hd_follow f = {NULL, NULL, NULL, NULL};
    struct hd_follow_stats s = {0, 0, 0, 0, 0};
    struct hd_follow_batch *b = NULL;
    struct hd_store *st = NULL;
    const char *why = NULL;
    int c, rc;

    const char *cmd = remove ? "follow remove" : "follow add";
    static const struct option lo_rm[] = {
        {"actor", 1, 0, 'a'}, {"follower", 1, 0, 'f'}, {0, 0, 0, 0}};

    optind = 0;
    while ((c = hd_cli_getopt(cmd, follow_usage, argc - 1, argv + 1, "", remove ? lo_rm : lo)) !=
           -1) {
        if (c == 'a')
            f.actor = optarg;
        else if (c == 'f')
            f.follower = optarg;
        else if (c == 'i')
            f.inbox = optarg;
        else if (c == 's')
            f.shared_inbox = optarg;
        else
            return HD_CLI_USAGE_EXIT;
    }
    if (hd_cli_positional(cmd, follow_usage, argc - 1, argv + 1, 0, 0))
        return HD_CLI_USAGE_EXIT;
    if (!f.actor || !f.follower || (!remove && !f.inbox)) {
        return hd_cli_usage_error(cmd, follow_usage,
                                  remove ? "--actor and --follower are required"
                                         : "--actor, --follower and --inbox are required");
    }
    if (hd_follow_batch_new(&b) != 0)
        return 1;
    rc = hd_follow_batch_add(b, &f, remove, &why);
    if (rc) {
        fprintf(stderr, "herald follow %s: %s\n", remove ? "remove" : "add",
                why ? why : hd_strerror(rc));
        hd_follow_batch_free(b);
        return 1;
    }
    if (hd_cli_open_store(db, &st, "follow")) {
        hd_follow_batch_free(b);
        return 1;
    }
    rc = apply(st, b, &s);
    hd_follow_batch_free(b);
    hd_store_close(st);
    if (rc)
        return 1;
    if (s.added)
        printf("added: %s follows %s\n", f.follower, f.actor);
    else if (s.updated)
        printf("updated: %s follows %s (inbox changed)\n", f.follower, f.actor);
    else if (s.unchanged)
        printf("unchanged: %s already follows %s\n", f.follower, f.actor);
    else if (s.removed) {
        printf("removed: %s no longer follows %s\n", f.follower, f.actor);
        hd_audit(HD_AUDIT_CLI, "follow_remove", f.actor, 0, "follows=1");
    }
    else
        printf("not following: %s does not follow %s; nothing removed\n", f.follower, f.actor);
    return 0;
}

/* ------------------------------------------------------------------ import */

/* A JSON-lines follow is a flat object whose values are strings or null. jansson took ~80%
 * of an import's time building and freeing trees for these four fields, so they are read by
 * a strict one-pass scanner instead: anything else (nesting, numbers, duplicate or unknown
 * keys, bad escapes, raw control characters, trailing bytes) is a bad line. */
enum { K_ACTOR, K_FOLLOWER, K_INBOX, K_SHARED, K_N };
static const char *const key_names[K_N] = {"actor", "follower", "inbox", "shared_inbox"};

static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    return i;
}

static int hex4(const char *s, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        *v <<= 4;
        if (c >= '0' && c <= '9')
            *v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            *v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            *v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    return 0;
}

/* Reads the JSON string at s[*i] == '"' into out (NUL-terminated, cap bytes). Advances *i
 * past it. Returns 0 or -1. */
static int read_string(const char *s, size_t n, size_t *i, char *out, size_t cap)
{
    size_t j = *i + 1, o = 0;

    while (j < n && s[j] != '"') {
        unsigned char c = (unsigned char)s[j];
        unsigned cp;
        if (o + 5 >= cap || c < 0x20)
            return -1;
        if (c != '\\') {
            out[o++] = (char)c;
            j++;
            continue;
        }
        if (++j >= n)
            return -1;
        switch (s[j]) {
        case '"': case '\\': case '/': out[o++] = s[j]; j++; continue;
        case 'b': out[o++] = '\b'; j++; continue;
        case 'f': out[o++] = '\f'; j++; continue;
        case 'n': out[o++] = '\n'; j++; continue;
        case 'r': out[o++] = '\r'; j++; continue;
        case 't': out[o++] = '\t'; j++; continue;
        case 'u': break;
        default: return -1;
        }
        if (j + 5 > n || hex4(s + j + 1, &cp))
            return -1;
        j += 5;
        if (cp >= 0xd800 && cp < 0xdc00) {
            unsigned lo;
            if (j + 6 > n || s[j] != '\\' || s[j + 1] != 'u' || hex4(s + j + 2, &lo) ||
                lo < 0xdc00 || lo >= 0xe000)
                return -1;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            j += 6;
        } else if (cp >= 0xdc00 && cp < 0xe000) {
            return -1;
        }
        if (cp == 0)
            return -1;
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else if (cp < 0x800) {
            out[o++] = (char)(0xc0 | (cp >> 6));
            out[o++] = (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            out[o++] = (char)(0xe0 | (cp >> 12));
            out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            out[o++] = (char)(0x80 | (cp & 0x3f));
        } else {
            out[o++] = (char)(0xf0 | (cp >> 18));
            out[o++] = (char)(0x80 | ((cp >> 12) & 0x3f));
            out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            out[o++] = (char)(0x80 | (cp & 0x3f));
        }
    }
    if (j >= n)
        return -1;
    out[o] = 0;
    *i = j + 1;
    return 0;
}

#define FIELD_CAP 2048

/* Parses one line into vals[K_N] (NULL: absent or null), strings in bufs. */
static int parse_flat(const char *s, size_t n, char bufs[K_N][FIELD_CAP], const char *vals[K_N],
                      const char **why)
{
    size_t i = skip_ws(s, 0, n);
    int seen[K_N] = {0, 0, 0, 0};

    for (int k = 0; k < K_N; k++)
        vals[k] = NULL;
    if (i >= n || s[i] != '{') {
        *why = "expected a JSON object";
        return HD_ERR_INVALID;
    }
    i = skip_ws(s, i + 1, n);
    if (i < n && s[i] == '}') {
        i++;
        goto end;
    }
    for (;;) {
        char key[32];
        int k;
        if (i >= n || s[i] != '"' || read_string(s, n, &i, key, sizeof(key))) {
            *why = "malformed JSON (expected a key)";
            return HD_ERR_INVALID;
        }
        for (k = 0; k < K_N && strcmp(key, key_names[k]); k++)
            ;
        if (k == K_N) {
            *why = "unknown key (expected actor, follower, inbox, shared_inbox)";
            return HD_ERR_INVALID;
        }
        if (seen[k]++) {
            *why = "duplicate key";
            return HD_ERR_INVALID;
        }
        i = skip_ws(s, i, n);
        if (i >= n || s[i] != ':') {
            *why = "malformed JSON (expected ':')";
            return HD_ERR_INVALID;
        }
        i = skip_ws(s, i + 1, n);
        if (i + 4 <= n && !memcmp(s + i, "null", 4)) {
            i += 4;
        } else if (i < n && s[i] == '"') {
            if (read_string(s, n, &i, bufs[k], FIELD_CAP)) {
                *why = "malformed or over-long JSON string";
                return HD_ERR_INVALID;
            }
            vals[k] = bufs[k];
        } else {
            *why = "actor, follower, inbox and shared_inbox must be strings (shared_inbox may be "
                   "null)";
            return HD_ERR_INVALID;
        }
        i = skip_ws(s, i, n);
        if (i < n && s[i] == ',') {
            i = skip_ws(s, i + 1, n);
            continue;
        }
        if (i < n && s[i] == '}') {
            i++;
            break;
        }
        *why = "malformed JSON (expected ',' or '}')";
        return HD_ERR_INVALID;
    }
end:
    if (skip_ws(s, i, n) != n) {
        *why = "trailing bytes after the JSON object";
        return HD_ERR_INVALID;
    }
    return 0;
}

/* One JSON line -> batch. Returns 0, or an error with *why set. */
static int add_json(struct hd_follow_batch *b, const char *line, size_t n, const char **why)
{
    static_assert(K_N == 4, "four fields");
    char bufs[K_N][FIELD_CAP];
    const char *vals[K_N];
    struct hd_follow f;
    int rc = parse_flat(line, n, bufs, vals, why);

    if (rc)
        return rc;
    if (!vals[K_ACTOR] || !vals[K_FOLLOWER] || !vals[K_INBOX]) {
        *why = "actor, follower and inbox are required";
        return HD_ERR_INVALID;
    }
    f.actor = vals[K_ACTOR];
    f.follower = vals[K_FOLLOWER];
    f.inbox = vals[K_INBOX];
    f.shared_inbox = vals[K_SHARED];
    return hd_follow_batch_add(b, &f, 0, why);
}

/* Splits one CSV record (RFC 4180 quoting, no embedded newlines) in place. Returns the field
 * count or -1. */
static int csv_split(char *s, char **fields, int max)
{
    int n = 0;
    char *r = s, *w;

    for (;;) {
        if (n == max)
            return -1;
        fields[n++] = w = r;
        if (*r == '"') {
            r++;
            for (;;) {
                if (!*r)
                    return -1;
                if (*r == '"' && r[1] == '"') {
                    *w++ = '"';
                    r += 2;
                } else if (*r == '"') {
                    r++;
                    break;
                } else {
                    *w++ = *r++;
                }
            }
            if (*r && *r != ',')
                return -1;
        } else {
            while (*r && *r != ',')
                *w++ = *r++;
        }
        if (!*r) {
            *w = 0;
            return n;
        }
        *w = 0; /* at or before the comma */
        r++;
    }
}

struct csv_cols {
    int actor, follower, inbox, shared, n;
};

static int csv_header(char *line, struct csv_cols *c, const char **why)
{
    char *f[CSV_FIELDS];
    int n = csv_split(line, f, CSV_FIELDS);

    c->actor = c->follower = c->inbox = c->shared = -1;
    if (n < 0) {
        *why = "malformed CSV header";
        return HD_ERR_INVALID;
    }
    for (int i = 0; i < n; i++) {
        if (!strcmp(f[i], "actor"))
            c->actor = i;
        else if (!strcmp(f[i], "follower"))
            c->follower = i;
        else if (!strcmp(f[i], "inbox"))
            c->inbox = i;
        else if (!strcmp(f[i], "shared_inbox"))
            c->shared = i;
        else {
            *why = "CSV header columns must be actor, follower, inbox[, shared_inbox]";
            return HD_ERR_INVALID;
        }
    }
    if (c->actor < 0 || c->follower < 0 || c->inbox < 0) {
        *why = "CSV header needs actor, follower and inbox columns";
        return HD_ERR_INVALID;
    }
    c->n = n;
    return 0;
}

static int add_csv(struct hd_follow_batch *b, char *line, const struct csv_cols *c,
                   const char **why)
{
    char *f[CSV_FIELDS];
    struct hd_follow fo;
    int n = csv_split(line, f, CSV_FIELDS);

    if (n != c->n) {
        *why = n < 0 ? "malformed CSV line" : "wrong number of CSV fields";
        return HD_ERR_INVALID;
    }
    fo.actor = f[c->actor];
    fo.follower = f[c->follower];
    fo.inbox = f[c->inbox];
    fo.shared_inbox = c->shared >= 0 && f[c->shared][0] ? f[c->shared] : NULL;
    return hd_follow_batch_add(b, &fo, 0, why);
}

static int cmd_import(const char *db, int argc, char **argv)
{
    const char *path;
    FILE *in;
    struct hd_follow_stats s = {0, 0, 0, 0, 0};
    struct hd_follow_batch *b = NULL;
    struct hd_store *st = NULL;
    struct csv_cols cols = {-1, -1, -1, -1, 0};
    char *line = NULL;
    size_t cap = 0, lineno = 0, bad = 0, lines = 0;
    int format = 0; /* 0 unknown, 1 JSON lines, 2 CSV */
    int rc = 0;
    ssize_t n;
    struct timespec t0, t1;

    if (hd_cli_simple_args("follow import", follow_usage, argc, argv, NULL, 0, 1))
        return HD_CLI_USAGE_EXIT;
    path = optind < argc ? argv[optind] : "-";
    in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!in) {
        fprintf(stderr, "herald follow import: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (hd_cli_open_store(db, &st, "follow")) {
        if (in != stdin)
            fclose(in);
        return 1;
    }
    if (hd_follow_batch_new(&b) != 0) {
        rc = -ENOMEM;
        goto out;
    }
    while ((n = getline(&line, &cap, in)) >= 0) {
        const char *why = NULL;
        int r;
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (n == 0)
            continue;
        if ((size_t)n > LINE_MAX_BYTES) {
            fprintf(stderr, "line %zu: longer than %u bytes; ignored\n", lineno, LINE_MAX_BYTES);
            bad++;
            continue;
        }
        if (!format) {
            size_t i = 0;
            while (line[i] == ' ' || line[i] == '\t')
                i++;
            format = line[i] == '{' ? 1 : 2;
            if (format == 2) {
                r = csv_header(line, &cols, &why);
                if (r) {
                    fprintf(stderr, "line %zu: %s\n", lineno, why);
                    rc = r;
                    goto out;
                }
                continue;
            }
        }
        if (format == 1)
            r = add_json(b, line, (size_t)n, &why);
        else
            r = add_csv(b, line, &cols, &why);
        if (r == HD_ERR_INVALID) {
            fprintf(stderr, "line %zu: %s; ignored\n", lineno, why ? why : "invalid");
            bad++;
            continue;
        }
        if (r) {
            fprintf(stderr, "line %zu: %s\n", lineno, hd_strerror(r));
            rc = r;
            goto out;
        }
        lines++;
        if (hd_follow_batch_len(b) >= IMPORT_CHUNK) {
            rc = apply(st, b, &s);
            if (rc)
                goto out;
        }
    }
    if (ferror(in)) {
        fprintf(stderr, "herald follow import: read error: %s\n", strerror(errno));
        rc = -EIO;
        goto out;
    }
    if (hd_follow_batch_len(b))
        rc = apply(st, b, &s);
out:
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("{\"lines\":%zu,\"added\":%" PRIu64 ",\"updated\":%" PRIu64 ",\"unchanged\":%" PRIu64
           ",\"bad\":%zu,\"committed\":%s,\"seconds\":%.3f}\n",
           lines, s.added, s.updated, s.unchanged, bad, rc ? "false" : "true",
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    free(line);
    hd_follow_batch_free(b);
    hd_store_close(st);
    if (in != stdin)
        fclose(in);
    return rc || bad ? 1 : 0;
}

/* ------------------------------------------------------------------ list */

static int print_follow(const struct hd_follow_view *f, void *ud)
{
    const char *actor = ud;
    hd_cli_print_json(json_pack("{s:s, s:s, s:s, s:s?}", "actor", actor, "follower",
                                f->follower, "inbox", f->inbox, "shared_inbox", f->shared_inbox));
    return 0;
}

static int cmd_list(const char *db, int argc, char **argv)
{
    static const struct option lo[] = {
        {"actor", 1, 0, 'a'}, {"count", 0, 0, 'c'}, {0, 0, 0, 0}};
    const char *actor = NULL;
    struct hd_store *st;
    struct hd_txn *txn;
    int c, count = 0, rc;

    optind = 0;
    while ((c = hd_cli_getopt("follow list", follow_usage, argc - 1, argv + 1, "", lo)) != -1) {
        if (c == 'a')
            actor = optarg;
        else if (c == 'c')
            count = 1;
        else
            return HD_CLI_USAGE_EXIT;
    }
    if (hd_cli_positional("follow list", follow_usage, argc - 1, argv + 1, 0, 0))
        return HD_CLI_USAGE_EXIT;
    if (!actor)
        return hd_cli_usage_error("follow list", follow_usage, "--actor is required");
    if (hd_cli_open_store_ro(db, &st, "follow list"))
        return 1;
    rc = hd_store_begin(st, 0, &txn);
    if (!rc && count) {
        uint64_t nf, ni;
        rc = hd_follow_count(st, txn, actor, &nf, &ni);
        if (!rc)
            printf("follows %" PRIu64 "\ndelivery_inboxes %" PRIu64 "\n", nf, ni);
    } else if (!rc) {
        rc = hd_follow_list(st, txn, actor, print_follow, (void *)actor);
    }
    hd_store_abort(txn);
    hd_store_close(st);
    if (rc) {
        fprintf(stderr, "herald follow list: %s\n", hd_strerror(rc));
        return 1;
    }
    return 0;
}

int hd_cli_follow(const char *db, int argc, char **argv)
{
    if (hd_cli_help(argc, argv, follow_usage))
        return 0;
    if (argc < 2)
        return hd_cli_bad_sub("follow", follow_usage, argc, argv, "add, remove, import or list");
    if (hd_cli_cluster_wanted(argc, argv))
        return hd_cli_follow_cluster(argc, argv); /* to JetStream, for every node */
    if (!strcmp(argv[1], "add"))
        return cmd_add_remove(db, argc, argv, 0);
    if (!strcmp(argv[1], "remove"))
        return cmd_add_remove(db, argc, argv, 1);
    if (!strcmp(argv[1], "import"))
        return cmd_import(db, argc - 1, argv + 1);
    if (!strcmp(argv[1], "list"))
        return cmd_list(db, argc, argv);
    return hd_cli_bad_sub("follow", follow_usage, argc, argv, "add, remove, import or list");
}

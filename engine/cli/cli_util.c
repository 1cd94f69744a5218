/* What the command-line modules share (see cli_util.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_util.h"
#include "clock.h"
#include "config.h"
#include "err.h"

int hd_cli_open_store(const char *db, struct hd_store **st, const char *cmd)
{
    int rc = hd_store_open(st, db, 0);
    if (rc) {
        fprintf(stderr, "herald%s%s: cannot open store %s: %s\n", cmd ? " " : "", cmd ? cmd : "",
                db, hd_strerror(rc));
        return 1;
    }
    return 0;
}

int hd_cli_open_store_ro(const char *db, struct hd_store **st, const char *cmd)
{
    int rc = hd_store_open_existing(st, db, 0);
    if (rc == -ENOENT) {
        fprintf(stderr, "herald%s%s: no store at %s (--db or $HERALD_DB)\n", cmd ? " " : "",
                cmd ? cmd : "", db);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "herald%s%s: cannot open store %s: %s\n", cmd ? " " : "", cmd ? cmd : "",
                db, hd_strerror(rc));
        return 1;
    }
    return 0;
}

int hd_cli_help(int argc, char **argv, const char *usage)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 1;
        }
    }
    return 0;
}

int hd_cli_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "herald %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (usage) { /* the first line, and where the rest is */
        const char *nl = strchr(usage, '\n');
        int n = nl ? (int)(nl - usage) : (int)strlen(usage);
        fprintf(stderr, "%.*s\n", n, usage);
        if (nl && nl[1])
            fprintf(stderr, "(`herald %s --help` for more)\n", cmd);
    }
    return HD_CLI_USAGE_EXIT;
}

int hd_cli_bad_sub(const char *cmd, const char *usage, int argc, char **argv,
                   const char *expected)
{
    if (argc < 2)
        return hd_cli_usage_error(cmd, usage, "expected %s", expected);
    return hd_cli_usage_error(cmd, usage, "unknown subcommand %s (expected %s)", argv[1],
                              expected);
}

int hd_cli_getopt(const char *cmd, const char *usage, int argc, char **argv, const char *shortopts,
                  const struct option *lo)
{
    char spec[64];
    int c, saved = opterr;

    snprintf(spec, sizeof(spec), ":%s", shortopts ? shortopts : "");
    opterr = 0;
    c = getopt_long(argc, argv, spec, lo, NULL);
    opterr = saved;
    if (c == ':') {
        hd_cli_usage_error(cmd, usage, "%s needs a value", argv[optind - 1]);
        return '?';
    }
    if (c == '?') {
        const char *a = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
        if (optopt && strncmp(a, "--", 2) == 0 && strchr(a, '='))
            hd_cli_usage_error(cmd, usage, "%.*s takes no value", (int)(strchr(a, '=') - a), a);
        else if (optopt && strncmp(a, "--", 2) != 0)
            hd_cli_usage_error(cmd, usage, "unknown option -%c", optopt);
        else
            hd_cli_usage_error(cmd, usage, "unknown option %s", a);
        return '?';
    }
    return c;
}

int hd_cli_positional(const char *cmd, const char *usage, int argc, char **argv, int min, int max)
{
    int n = argc - optind;

    if (n > max)
        return hd_cli_usage_error(cmd, usage, "unexpected argument %s", argv[optind + max]);
    if (n < min)
        return hd_cli_usage_error(cmd, usage, "missing argument");
    return 0;
}

int hd_cli_simple_args(const char *cmd, const char *usage, int argc, char **argv, int *json,
                       int min, int max)
{
    static const struct option lo_json[] = {{"json", 0, 0, 'j'}, {0, 0, 0, 0}};
    static const struct option lo_none[] = {{0, 0, 0, 0}};
    int c;

    optind = 0;
    while ((c = hd_cli_getopt(cmd, usage, argc, argv, "", json ? lo_json : lo_none)) != -1) {
        if (c != 'j')
            return HD_CLI_USAGE_EXIT;
        *json = 1;
    }
    return hd_cli_positional(cmd, usage, argc, argv, min, max);
}

int hd_cli_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *e;
    unsigned long long v;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &e, 10);
    if (errno || *e || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

const char *hd_cli_iso_time(uint64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (!ms || !gmtime_r(&t, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, cap, "-");
    return buf;
}

int hd_cli_duration(const char *s, uint64_t bare_ms, uint64_t min_ms, uint64_t max_ms,
                    uint64_t *ms)
{
    uint64_t v;
    size_t i = 0;

    while (s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == 0)
        return -1;
    if (s[i] == 0) { /* a bare number: the flag's own unit */
        if (hd_cli_uint(s, 0, UINT64_MAX / bare_ms, &v) != 0)
            return -1;
        v *= bare_ms;
    } else if (hd_config_parse_duration(s, &v) != 0) {
        return -1;
    }
    if (v < min_ms || v > max_ms)
        return -1;
    *ms = v;
    return 0;
}

int hd_cli_bad_value(const char *cmd, const char *flag, const char *value, const char *what)
{
    fprintf(stderr, "herald %s: invalid value for --%s: %s%s%s%s\n", cmd, flag, value,
            what ? " (" : "", what ? what : "", what ? ")" : "");
    return HD_CLI_USAGE_EXIT;
}

void hd_cli_print_json(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(o);
}

/* Moves buf (n bytes used) to a buffer of cap + 1 bytes and wipes the old one: realloc could
 * leave a copy of a key behind in freed memory. */
static char *grow(char *buf, size_t n, size_t cap)
{
    char *p = malloc(cap + 1);
    if (p && n)
        memcpy(p, buf, n);
    if (buf) {
        explicit_bzero(buf, n);
        free(buf);
    }
    return p;
}

int hd_cli_read_file(const char *path, size_t max, int flags, char **out, size_t *len)
{
    int use_stdin = (flags & HD_CLI_READ_STDIN) && strcmp(path, "-") == 0;
    FILE *f = use_stdin ? stdin : fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    if (!f)
        return -errno;
    for (;;) {
        size_t r;
        if (n == cap) {
            if (cap > max) {
                rc = -EFBIG;
                break;
            }
            cap = cap ? cap * 2 : 65536;
            if (cap > max)
                cap = max + 1; /* one byte more than allowed tells "too long" from "exactly max" */
            buf = grow(buf, n, cap);
            if (!buf) {
                rc = -ENOMEM;
                break;
            }
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    if (!rc && ferror(f))
        rc = -EIO;
    if (!rc && n > max)
        rc = -EFBIG;
    if (!use_stdin)
        fclose(f);
    if (rc) {
        if (buf) {
            explicit_bzero(buf, n);
            free(buf);
        }
        return rc;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

int hd_cli_live_get(struct hd_store *st, struct hd_txn *txn, const char *host, uint64_t now_ms,
                    struct hd_live *out)
{
    if (hd_live_get(st, txn, host, out) == 0 && out->updated_ms + HD_LIVE_FRESH_MS >= now_ms)
        return 1;
    memset(out, 0, sizeof(*out));
    return 0;
}

int hd_cli_hosts_walk(struct hd_store *st, struct hd_txn *txn, size_t limit, hd_cli_host_cb cb,
                      void *user_data)
{
    struct hd_host_iter it;
    struct hd_host_rec rec;
    struct hd_live live;
    char name[HD_HOST_MAX];
    uint64_t now = hd_wall_ms();
    size_t n = 0;
    int rc;

    rc = hd_host_iter_open(st, txn, &it);
    if (rc)
        return rc;
    while ((limit == 0 || n < limit) && (rc = hd_host_iter_next(&it, name, &rec)) == 0) {
        int fresh = hd_cli_live_get(st, txn, name, now, &live);
        n++;
        rc = cb(name, &rec, fresh ? &live : NULL, user_data);
        if (rc)
            break;
    }
    hd_host_iter_close(&it);
    return rc == HD_ERR_NOT_FOUND ? 0 : rc;
}

#define QSNAP_MAX 4000000

static int snap_add(const char *host, const struct hd_host_rec *rec, const struct hd_live *live,
                    void *user_data)
{
    struct hd_cli_qsnap *q = user_data;
    (void)live;
    if (!rec->queued)
        return 0;
    if (q->n == q->cap) {
        size_t nc = q->cap ? q->cap * 2 : 256;
        void *h, *c;
        if (nc > QSNAP_MAX)
            return -ENOMEM;
        h = realloc(q->host, nc * sizeof(*q->host));
        if (!h)
            return -ENOMEM;
        q->host = h;
        c = realloc(q->queued, nc * sizeof(*q->queued));
        if (!c)
            return -ENOMEM;
        q->queued = c;
        q->cap = nc;
    }
    snprintf(q->host[q->n], sizeof(q->host[0]), "%s", host);
    q->queued[q->n++] = rec->queued;
    return 0;
}

int hd_cli_qsnap_take(struct hd_store *st, struct hd_txn *txn, struct hd_cli_qsnap *snap)
{
    memset(snap, 0, sizeof(*snap));
    return hd_cli_hosts_walk(st, txn, 0, snap_add, snap);
}

struct snap_diff {
    const struct hd_cli_qsnap *q;
    size_t i, max, shown;
    uint64_t total, hosts;
};

static void diff_one(struct snap_diff *d, size_t i, uint64_t now_queued)
{
    uint64_t n = d->q->queued[i] > now_queued ? d->q->queued[i] - now_queued : 0;
    if (!n)
        return;
    d->total += n;
    d->hosts++;
    if (d->shown++ < d->max)
        printf("  %-40s %" PRIu64 "\n", d->q->host[i], n);
}

/* The walk and the snapshot are both in host-name order: a merge. */
static int on_diff(const char *host, const struct hd_host_rec *rec, const struct hd_live *live,
                   void *user_data)
{
    struct snap_diff *d = user_data;
    (void)live;
    while (d->i < d->q->n && strcmp(d->q->host[d->i], host) < 0) {
        diff_one(d, d->i, 0); /* gone altogether */
        d->i++;
    }
    if (d->i < d->q->n && strcmp(d->q->host[d->i], host) == 0) {
        diff_one(d, d->i, rec->queued);
        d->i++;
    }
    return 0;
}

int hd_cli_qsnap_diff(struct hd_store *st, struct hd_txn *txn, const struct hd_cli_qsnap *snap,
                      size_t max, uint64_t *total, uint64_t *hosts)
{
    struct snap_diff d = {snap, 0, max, 0, 0, 0};
    int rc = hd_cli_hosts_walk(st, txn, 0, on_diff, &d);
    if (rc)
        return rc;
    for (; d.i < snap->n; d.i++)
        diff_one(&d, d.i, 0);
    if (d.shown > max)
        printf("  ... and %zu more hosts\n", d.shown - max);
    *total = d.total;
    *hosts = d.hosts;
    return 0;
}

void hd_cli_qsnap_fini(struct hd_cli_qsnap *snap)
{
    free(snap->host);
    free(snap->queued);
    memset(snap, 0, sizeof(*snap));
}

/* `herald queue list|flush|shape` (see cli_queue.h). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "cli_queue.h"
#include "cli_util.h"
#include "clock.h"
#include "err.h"
#include "qview.h"
#include "rules.h"
#include "store.h"

static const char queue_usage[] =
    "usage: herald queue list [--host H] [--activity ID|SEQ] [--state S] [--limit N]\n"
    "                         [--after CURSOR] [--json]\n"
    "       herald queue flush [--host H]\n"
    "       herald queue shape [--limit N] [--json]\n"
    "list: queued deliveries in host order with inbox, state, attempts, next due and last\n"
    "  error. --state pending (never tried), retrying (tried before), due (may go now) or\n"
    "  waiting (for a retry time). At most --limit rows (100; up to 10000); when more match,\n"
    "  the last line gives the --after CURSOR of the next page.\n"
    "flush: deliveries waiting for a retry become due now (attempts kept). A host's breaker\n"
    "  or Retry-After pause in a running engine still holds; `herald host reset` clears them.\n"
    "shape: queued deliveries per host by age since enqueue, busiest --limit hosts (20).\n"
    "Times are ISO 8601 (UTC) or relative for people, epoch milliseconds in --json.\n";

#define LIST_MAX 10000
#define SHAPE_HOSTS_MAX 4000000
static const unsigned shape_minutes[] = {5, 10, 20, 40, 80, 160, 320, 640, 1280};
#define NBUCKETS (sizeof(shape_minutes) / sizeof(shape_minutes[0]) + 1)

enum { ST_ANY, ST_PENDING, ST_RETRYING, ST_DUE, ST_WAITING };

static int norm_host(const char *in, char *out, size_t cap)
{
    return in[0] == '*' || hd_rules_domain_norm(in, out, cap) != 0 ? -1 : 0;
}

/* "now", "in 3m12s", "in 2h5m", "in 3d4h" */
static void fmt_due(uint64_t due_ms, uint64_t now_ms, char *buf, size_t cap)
{
    uint64_t s;
    if (due_ms <= now_ms) {
        snprintf(buf, cap, "now");
        return;
    }
    s = (due_ms - now_ms + 999) / 1000;
    if (s < 60)
        snprintf(buf, cap, "in %" PRIu64 "s", s);
    else if (s < 3600)
        snprintf(buf, cap, "in %" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, cap, "in %" PRIu64 "h%02" PRIu64 "m", s / 3600, s / 60 % 60);
    else
        snprintf(buf, cap, "in %" PRIu64 "d%" PRIu64 "h", s / 86400, s / 3600 % 24);
}

static void hex_encode(const uint8_t *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = 0;
}

static int hex_val(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A cursor is the hex of the last key shown: host\0seq(8)idx(4). */
static int cursor_decode(const char *s, uint8_t *out, size_t *len)
{
    size_t n = strlen(s);
    if (n % 2 || n / 2 < 14 || n / 2 > HD_QKEY_MAX)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int a = hex_val(s[2 * i]), b = hex_val(s[2 * i + 1]);
        if (a < 0 || b < 0)
            return -1;
        out[i] = (uint8_t)(a << 4 | b);
    }
    *len = n / 2;
    return out[*len - 13] == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ list */

struct list_ctx {
    struct hd_store *st;
    struct hd_txn *txn;
    uint64_t now, seq; /* seq: the --activity filter, 0 none */
    int state, json;
    size_t limit, shown;
    int more;
    uint8_t last[HD_QKEY_MAX];
    size_t last_len;
    json_t *rows;
    uint64_t id_seq; /* the activity whose id is in id (a cache: entries come grouped) */
    char id[1024];
};

static const char *state_name(const struct hd_qview_ent *e)
{
    return e->attempts ? "retrying" : "pending";
}

static int state_match(int want, const struct hd_qview_ent *e, uint64_t now)
{
    switch (want) {
    case ST_PENDING:
        return e->attempts == 0;
    case ST_RETRYING:
        return e->attempts > 0;
    case ST_DUE:
        return e->not_before_ms <= now;
    case ST_WAITING:
        return e->not_before_ms > now;
    default:
        return 1;
    }
}

static const char *activity_id(struct list_ctx *x, uint64_t seq)
{
    struct hd_act_view av;
    if (x->id_seq != seq) {
        x->id_seq = seq;
        if (hd_queue_get_activity(x->st, x->txn, seq, &av) == 0)
            snprintf(x->id, sizeof(x->id), "%.*s", (int)av.id.n, av.id.p);
        else
            x->id[0] = 0;
    }
    return x->id;
}

/* Network text (error strings) as JSON: bytes outside printable ASCII become '?' when the
 * text is not valid UTF-8. */
static json_t *text_json(struct hd_slice s)
{
    char buf[512];
    size_t n = s.n < sizeof(buf) - 1 ? s.n : sizeof(buf) - 1;
    json_t *j;
    if (!s.p)
        return json_string("");
    memcpy(buf, s.p, n);
    buf[n] = 0;
    j = json_stringn(buf, n);
    if (j)
        return j;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] >= 0x80 || (unsigned char)buf[i] < 0x20)
            buf[i] = '?';
    return json_stringn(buf, n);
}

static int on_list(const struct hd_qview_ent *e, void *user_data)
{
    struct list_ctx *x = user_data;
    const char *id;

    if ((x->seq && e->seq != x->seq) || !state_match(x->state, e, x->now))
        return 0;
    if (x->shown == x->limit) {
        x->more = 1;
        return 1;
    }
    x->shown++;
    memcpy(x->last, e->key, e->keylen);
    x->last_len = e->keylen;
    id = activity_id(x, e->seq);
    if (x->json) {
        json_t *o = json_pack("{s:s, s:s%, s:I, s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:b}", "host",
                              e->host, "inbox", e->inbox.p, e->inbox.n, "activity_seq",
                              (json_int_t)e->seq, "index", (json_int_t)e->idx, "activity_id", id,
                              "state", state_name(e), "attempts", (json_int_t)e->attempts,
                              "next_due_ms", (json_int_t)e->not_before_ms, "enqueued_ms",
                              (json_int_t)e->enqueued_ms, "last_status", (json_int_t)e->status,
                              "shared_inbox", (e->flags & HD_QF_SHARED) != 0);
        if (!o)
            return -ENOMEM;
        json_object_set_new(o, "last_error", text_json(e->error));
        json_array_append_new(x->rows, o);
    } else {
        char due[32], enq[32];
        fmt_due(e->not_before_ms, x->now, due, sizeof(due));
        hd_cli_iso_time(e->enqueued_ms, enq, sizeof(enq));
        printf("%-28s %8" PRIu64 " %-8s %3u %-10s %-20s %.*s", e->host, e->seq, state_name(e),
               e->attempts, due, enq, (int)e->inbox.n, e->inbox.p);
        if (e->error.n)
            printf("  [%u %.*s]", e->status, (int)(e->error.n > 160 ? 160 : e->error.n),
                   e->error.p);
        printf("\n");
    }
    return 0;
}

static int queue_list(const char *db, int argc, char **argv)
{
    static const struct option lo[] = {{"host", 1, 0, 'h'},  {"activity", 1, 0, 'a'},
                                       {"state", 1, 0, 's'}, {"limit", 1, 0, 'l'},
                                       {"after", 1, 0, 'c'}, {"json", 0, 0, 'j'},
                                       {0, 0, 0, 0}};
    struct list_ctx x;
    char hostbuf[HD_HOST_MAX], cursor[2 * HD_QKEY_MAX + 1];
    const char *host = NULL, *activity = NULL;
    uint8_t after[HD_QKEY_MAX];
    size_t after_len = 0;
    struct hd_store *st;
    uint64_t v;
    int c, rc;

    memset(&x, 0, sizeof(x));
    x.limit = 100;
    optind = 0;
    while ((c = hd_cli_getopt("queue list", queue_usage, argc, argv, "", lo)) != -1) {
        switch (c) {
        case 'h':
            if (norm_host(optarg, hostbuf, sizeof(hostbuf)) != 0)
                return hd_cli_bad_value("queue list", "host", optarg, "a host name");
            host = hostbuf;
            break;
        case 'a':
            activity = optarg;
            break;
        case 's':
            x.state = !strcmp(optarg, "pending")    ? ST_PENDING
                      : !strcmp(optarg, "retrying") ? ST_RETRYING
                      : !strcmp(optarg, "due")      ? ST_DUE
                      : !strcmp(optarg, "waiting")  ? ST_WAITING
                                                    : -1;
            if (x.state < 0)
                return hd_cli_bad_value("queue list", "state", optarg,
                                        "pending, retrying, due or waiting");
            break;
        case 'l':
            if (hd_cli_uint(optarg, 1, LIST_MAX, &v) != 0)
                return hd_cli_bad_value("queue list", "limit", optarg, "1 to 10000");
            x.limit = (size_t)v;
            break;
        case 'c':
            if (cursor_decode(optarg, after, &after_len) != 0)
                return hd_cli_bad_value("queue list", "after", optarg,
                                        "a cursor printed by an earlier queue list");
            break;
        case 'j':
            x.json = 1;
            break;
        default:
            return HD_CLI_USAGE_EXIT;
        }
    }
    if (hd_cli_positional("queue list", queue_usage, argc, argv, 0, 0))
        return HD_CLI_USAGE_EXIT;
    if (hd_cli_open_store_ro(db, &st, "queue list"))
        return 1;
    x.st = st;
    x.now = hd_wall_ms();
    x.id_seq = UINT64_MAX;
    rc = hd_store_begin(st, 0, &x.txn);
    if (rc)
        goto out;
    if (activity) {
        if (hd_cli_uint(activity, 1, UINT64_MAX, &v) == 0) {
            x.seq = v;
        } else {
            rc = hd_queue_find_activity(st, x.txn, activity, &x.seq);
            if (rc == HD_ERR_NOT_FOUND) {
                hd_store_abort(x.txn);
                hd_store_close(st);
                fprintf(stderr, "herald queue list: no activity %s\n", activity);
                return 1;
            }
        }
    }
    if (!rc && x.json && !(x.rows = json_array()))
        rc = -ENOMEM;
    if (!rc && !x.json)
        printf("%-28s %8s %-8s %3s %-10s %-20s %s\n", "host", "seq", "state", "att", "next due",
               "enqueued (UTC)", "inbox  [last status and error]");
    if (!rc) {
        rc = hd_qview_walk(st, x.txn, host, after_len ? after : NULL, after_len, on_list, &x);
        if (rc == 1)
            rc = 0;
    }
    hd_store_abort(x.txn);
out:
    hd_store_close(st);
    if (rc) {
        json_decref(x.rows);
        fprintf(stderr, "herald queue list: %s\n", hd_strerror(rc));
        return 1;
    }
    if (x.more)
        hex_encode(x.last, x.last_len, cursor);
    if (x.json) {
        json_t *o = json_pack("{s:o, s:s?}", "deliveries", x.rows, "next",
                              x.more ? cursor : NULL);
        hd_cli_print_json(o);
    } else if (x.more) {
        printf("more: herald queue list --after %s\n", cursor);
    }
    return 0;
}

/* ------------------------------------------------------------------ flush */

static int queue_flush(const char *db, int argc, char **argv)
{
    static const struct option lo[] = {{"host", 1, 0, 'h'}, {0, 0, 0, 0}};
    char hostbuf[HD_HOST_MAX];
    const char *host = NULL;
    struct hd_store *st;
    struct hd_txn *txn;
    uint64_t n = 0;
    int c, rc;

    optind = 0;
    while ((c = hd_cli_getopt("queue flush", queue_usage, argc, argv, "", lo)) != -1) {
        if (c != 'h')
            return HD_CLI_USAGE_EXIT;
        if (norm_host(optarg, hostbuf, sizeof(hostbuf)) != 0)
            return hd_cli_bad_value("queue flush", "host", optarg, "a host name");
        host = hostbuf;
    }
    if (hd_cli_positional("queue flush", queue_usage, argc, argv, 0, 0))
        return HD_CLI_USAGE_EXIT;
    if (hd_cli_open_store_ro(db, &st, "queue flush"))
        return 1;
    rc = hd_store_begin(st, 1, &txn);
    if (!rc) {
        rc = hd_qview_flush(st, txn, host, hd_wall_ms(), &n);
        if (rc)
            hd_store_abort(txn);
        else
            rc = hd_store_commit(txn);
    }
    hd_store_close(st);
    if (rc) {
        fprintf(stderr, "herald queue flush: %s\n", hd_strerror(rc));
        return 1;
    }
    printf("%" PRIu64 " deliver%s waiting for a retry %s due now%s%s\n", n,
           n == 1 ? "y" : "ies", n == 1 ? "is" : "are", host ? " on " : "", host ? host : "");
    hd_audit(HD_AUDIT_CLI, "queue_flush", host ? host : "all", n, NULL);
    return 0;
}

/* ------------------------------------------------------------------ shape */

struct shape_row {
    char host[HD_HOST_MAX];
    uint64_t total, b[NBUCKETS];
};

struct shape_ctx {
    struct shape_row *v, all;
    size_t n, cap;
    uint64_t now;
    int err;
};

static int on_shape(const struct hd_qview_ent *e, void *user_data)
{
    struct shape_ctx *x = user_data;
    uint64_t age_min = e->enqueued_ms < x->now ? (x->now - e->enqueued_ms) / 60000 : 0;
    struct shape_row *r;
    size_t b = 0;

    if (!x->n || strcmp(x->v[x->n - 1].host, e->host) != 0) { /* keys come grouped by host */
        if (x->n == x->cap) {
            size_t nc = x->cap ? x->cap * 2 : 256;
            struct shape_row *p = nc <= SHAPE_HOSTS_MAX ? realloc(x->v, nc * sizeof(*p)) : NULL;
            if (!p)
                return x->err = -ENOMEM;
            x->v = p;
            x->cap = nc;
        }
        memset(&x->v[x->n], 0, sizeof(x->v[0]));
        snprintf(x->v[x->n].host, sizeof(x->v[0].host), "%s", e->host);
        x->n++;
    }
    r = &x->v[x->n - 1];
    while (b < NBUCKETS - 1 && age_min >= shape_minutes[b])
        b++;
    r->total++;
    r->b[b]++;
    x->all.total++;
    x->all.b[b]++;
    return 0;
}

static int cmp_shape(const void *a, const void *b)
{
    const struct shape_row *x = a, *y = b;
    if (x->total != y->total)
        return x->total > y->total ? -1 : 1;
    return strcmp(x->host, y->host);
}

static json_t *shape_json(const struct shape_row *r)
{
    json_t *counts = json_array();
    for (size_t i = 0; i < NBUCKETS; i++)
        json_array_append_new(counts, json_integer((json_int_t)r->b[i]));
    return json_pack("{s:s, s:I, s:o}", "host", r->host, "total", (json_int_t)r->total,
                     "counts", counts);
}

static void shape_print(const struct shape_row *r)
{
    printf("%-32s %8" PRIu64, r->host, r->total);
    for (size_t i = 0; i < NBUCKETS; i++)
        printf(" %7" PRIu64, r->b[i]);
    printf("\n");
}

static int queue_shape(const char *db, int argc, char **argv)
{
    static const struct option lo[] = {{"limit", 1, 0, 'l'}, {"json", 0, 0, 'j'}, {0, 0, 0, 0}};
    struct shape_ctx x;
    struct hd_store *st;
    struct hd_txn *txn;
    size_t limit = 20;
    uint64_t v;
    int c, json = 0, rc;

    optind = 0;
    while ((c = hd_cli_getopt("queue shape", queue_usage, argc, argv, "", lo)) != -1) {
        if (c == 'j') {
            json = 1;
        } else if (c == 'l') {
            if (hd_cli_uint(optarg, 1, SHAPE_HOSTS_MAX, &v) != 0)
                return hd_cli_bad_value("queue shape", "limit", optarg, "1 to 4000000");
            limit = (size_t)v;
        } else {
            return HD_CLI_USAGE_EXIT;
        }
    }
    if (hd_cli_positional("queue shape", queue_usage, argc, argv, 0, 0))
        return HD_CLI_USAGE_EXIT;
    if (hd_cli_open_store_ro(db, &st, "queue shape"))
        return 1;
    memset(&x, 0, sizeof(x));
    snprintf(x.all.host, sizeof(x.all.host), "TOTAL");
    x.now = hd_wall_ms();
    rc = hd_store_begin(st, 0, &txn);
    if (!rc) {
        rc = hd_qview_walk(st, txn, NULL, NULL, 0, on_shape, &x);
        hd_store_abort(txn);
    }
    hd_store_close(st);
    if (rc) {
        free(x.v);
        fprintf(stderr, "herald queue shape: %s\n", hd_strerror(rc));
        return 1;
    }
    if (x.n > 1)
        qsort(x.v, x.n, sizeof(x.v[0]), cmp_shape);
    if (json) {
        json_t *mins = json_array(), *hosts = json_array();
        for (size_t i = 0; i < NBUCKETS - 1; i++)
            json_array_append_new(mins, json_integer(shape_minutes[i]));
        for (size_t i = 0; i < x.n && i < limit; i++)
            json_array_append_new(hosts, shape_json(&x.v[i]));
        hd_cli_print_json(json_pack("{s:o, s:o, s:o, s:I}", "bucket_upper_minutes", mins,
                                    "total", shape_json(&x.all), "hosts", hosts, "host_count",
                                    (json_int_t)x.n));
    } else {
        printf("%-32s %8s", "age (minutes) ->", "T");
        for (size_t i = 0; i < NBUCKETS - 1; i++)
            printf(" %7u", shape_minutes[i]);
        printf(" %6u+\n", shape_minutes[NBUCKETS - 2]);
        shape_print(&x.all);
        for (size_t i = 0; i < x.n && i < limit; i++)
            shape_print(&x.v[i]);
        if (x.n > limit)
            printf("(%zu more hosts; --limit)\n", x.n - limit);
    }
    free(x.v);
    return 0;
}

int hd_cli_queue(const char *db, int argc, char **argv)
{
    if (hd_cli_help(argc, argv, queue_usage))
        return 0;
    if (argc >= 2 && !strcmp(argv[1], "list"))
        return queue_list(db, argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "flush"))
        return queue_flush(db, argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "shape"))
        return queue_shape(db, argc - 1, argv + 1);
    return hd_cli_bad_sub("queue", queue_usage, argc, argv, "list, flush or shape");
}

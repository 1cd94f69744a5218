/* `herald host|dead|gone`: the per-host view (persisted host records merged with operator
 * controls and the running engine's live report) and the operator's controls. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_util.h"
#include "clock.h"
#include "cli_host.h"
#include "err.h"
#include "hostctl.h"
#include "hosterr.h"
#include "queue.h"
#include "rules.h"
#include "store.h"

#define HOST_LIST_MAX 4000000 /* rows a listing will hold in memory */

/* Host names are normalised as inbox hosts are, so they match queue keys. */
static int norm_host(const char *in, char *out, size_t cap)
{
    if (in[0] == '*' || hd_rules_domain_norm(in, out, cap) != 0)
        return -1;
    return 0;
}

static const char *host_state(uint64_t dead)
{
    return dead == HD_HOST_DEAD ? "dead" : dead == HD_HOST_GONE ? "gone" : "alive";
}

static const char *breaker_name(int b)
{
    return b == 1 ? "open" : b == 2 ? "half-open" : "closed";
}

/* ------------------------------------------------------------------ host list / show */

struct hrow {
    char host[HD_HOST_MAX];
    struct hd_host_rec rec;
    struct hd_hostctl ctl;
    struct hd_live live;
    int have_rec, have_live, allowed;
    uint64_t dead_letters;
};

/* Completes r: the host record and live figures unless the walk over host records brought
 * them, then the operator controls and the rules' verdict. */
static void fill_row(struct hd_store *st, struct hd_txn *txn, const struct hd_rules *rules,
                     uint64_t now, struct hrow *r)
{
    if (!r->have_rec) {
        r->have_rec = hd_host_get(st, txn, r->host, strlen(r->host), &r->rec) == 0;
        r->have_live = hd_cli_live_get(st, txn, r->host, now, &r->live);
    }
    hd_hostctl_get(st, txn, r->host, &r->ctl);
    r->allowed = hd_rules_allows(rules, r->host);
}

/* Text from the network (body snippets, error strings) as a JSON string: when it is not
 * valid UTF-8, bytes outside printable ASCII become '?' (json_pack would refuse it and the
 * whole row would be lost). */
static json_t *snippet_json(struct hd_slice s)
{
    char buf[HD_URL_MAX + HD_HOST_MAX + 16];
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
        if ((unsigned char)buf[i] >= 0x80 || ((unsigned char)buf[i] < 0x20 && buf[i] != '\n'))
            buf[i] = '?';
    return json_stringn(buf, n);
}

static json_t *row_json(const struct hrow *r, int with_dead)
{
    json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:s, s:b, "
                          "s:I, s:f, s:b}",
                          "host", r->host, "queued", (json_int_t)r->rec.queued, "retrying",
                          (json_int_t)r->rec.retrying, "done", (json_int_t)r->rec.done, "failed",
                          (json_int_t)r->rec.failed, "failures", (json_int_t)r->rec.failures,
                          "last_status", (json_int_t)r->rec.last_status, "last_error",
                          snippet_json((struct hd_slice){r->rec.last_error,
                                                         strlen(r->rec.last_error)}), "last_ok_ms", (json_int_t)r->rec.last_ok_ms,
                          "last_fail_ms", (json_int_t)r->rec.last_fail_ms, "fail_days",
                          (json_int_t)r->rec.fail_days, "state", host_state(r->rec.dead),
                          "paused", r->ctl.paused, "max_inflight",
                          (json_int_t)r->ctl.max_inflight, "rate",
                          (double)r->ctl.rate_milli / 1000.0, "allowed_by_rules", r->allowed);
    if (!o)
        return NULL;
    if (r->have_live)
        json_object_set_new(
            o, "live",
            json_pack("{s:I, s:I, s:f, s:I, s:I, s:s, s:b, s:I}", "in_flight",
                      (json_int_t)r->live.in_flight, "window", (json_int_t)r->live.window,
                      "ok_per_s", (double)r->live.ok_per_s_milli / 1000.0, "p50_ms",
                      (json_int_t)r->live.p50_ms, "p99_ms", (json_int_t)r->live.p99_ms,
                      "breaker", breaker_name(r->live.breaker), "dead", r->live.dead,
                      "updated_ms", (json_int_t)r->live.updated_ms));
    else
        json_object_set_new(o, "live", json_null());
    if (with_dead)
        json_object_set_new(o, "dead_letters", json_integer((json_int_t)r->dead_letters));
    return o;
}

struct rows {
    struct hrow *v;
    size_t n, cap;
};

static struct hrow *rows_add(struct rows *rs, const char *host)
{
    if (rs->n == rs->cap) {
        size_t nc = rs->cap ? rs->cap * 2 : 256;
        struct hrow *p;
        if (nc > HOST_LIST_MAX)
            return NULL;
        p = realloc(rs->v, nc * sizeof(*p));
        if (!p)
            return NULL;
        rs->v = p;
        rs->cap = nc;
    }
    memset(&rs->v[rs->n], 0, sizeof(rs->v[0]));
    snprintf(rs->v[rs->n].host, sizeof(rs->v[0].host), "%s", host);
    return &rs->v[rs->n++];
}

enum { SORT_NAME, SORT_BACKLOG, SORT_FAILURES, SORT_LATENCY };

static uint64_t row_metric(const struct hrow *r, int key)
{
    switch (key) {
    case SORT_BACKLOG:
        return r->rec.queued;
    case SORT_FAILURES:
        return r->rec.failures;
    case SORT_LATENCY:
        return r->have_live ? r->live.p99_ms : 0;
    default:
        return 0;
    }
}

static int cmp_rows(const void *a, const void *b, void *user_data)
{
    const struct hrow *x = a, *y = b;
    int key = *(const int *)user_data;
    uint64_t mx = row_metric(x, key), my = row_metric(y, key);
    if (mx != my)
        return mx > my ? -1 : 1;
    return strcmp(x->host, y->host);
}

struct ctl_collect {
    struct rows *rs;
    size_t nrec; /* rows [0, nrec) came from the hosts DBI (sorted by name) */
    int err;
};

static int find_row(const struct rows *rs, size_t n, const char *host)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(rs->v[mid].host, host);
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static int on_host(const char *host, const struct hd_host_rec *rec, const struct hd_live *live,
                   void *user_data)
{
    struct hrow *r = rows_add(user_data, host);

    if (!r)
        return -ENOMEM;
    r->rec = *rec;
    r->have_rec = 1;
    if (live) {
        r->live = *live;
        r->have_live = 1;
    }
    return 0;
}

static int on_ctl(const char *host, const struct hd_hostctl *c, void *user_data)
{
    struct ctl_collect *cc = user_data;
    (void)c;
    if (find_row(cc->rs, cc->nrec, host))
        return 0;
    if (!rows_add(cc->rs, host)) {
        cc->err = -ENOMEM;
        return 1;
    }
    return 0;
}

static void print_row_text(const struct hrow *r)
{
    char lim[64], live[96];
    snprintf(lim, sizeof(lim), "%s%s", r->ctl.paused ? "paused " : "", r->allowed ? "" : "blocked ");
    if (r->ctl.max_inflight)
        snprintf(lim + strlen(lim), sizeof(lim) - strlen(lim), "max=%u ", r->ctl.max_inflight);
    if (r->ctl.rate_milli)
        snprintf(lim + strlen(lim), sizeof(lim) - strlen(lim), "rate=%g ",
                 (double)r->ctl.rate_milli / 1000.0);
    if (!lim[0])
        snprintf(lim, sizeof(lim), "-");
    if (r->have_live)
        snprintf(live, sizeof(live), "%4u/%-4u %8.1f %6u %6u %s", r->live.in_flight,
                 r->live.window, (double)r->live.ok_per_s_milli / 1000.0, r->live.p50_ms,
                 r->live.p99_ms, breaker_name(r->live.breaker));
    else
        snprintf(live, sizeof(live), "%9s %8s %6s %6s %s", "-", "-", "-", "-", "-");
    printf("%-32s %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %7" PRIu64 " %8" PRIu64 " %-5s %-20s %s"
           "  %s\n",
           r->host, r->rec.queued, r->rec.retrying, r->rec.done, r->rec.failed, r->rec.failures,
           host_state(r->rec.dead), lim, live, r->rec.last_error);
}

static int host_list(const char *db, int argc, char **argv)
{
    static const struct option lo[] = {{"sort", 1, 0, 's'}, {"json", 0, 0, 'j'}, {0, 0, 0, 0}};
    struct rows rs = {NULL, 0, 0};
    struct ctl_collect cc = {&rs, 0, 0};
    struct hd_rules *rules = NULL;
    struct hd_store *st;
    struct hd_txn *txn;
    uint64_t now = hd_wall_ms();
    int c, json = 0, key = SORT_NAME, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 'j') {
            json = 1;
        } else if (c == 's') {
            if (!strcmp(optarg, "backlog"))
                key = SORT_BACKLOG;
            else if (!strcmp(optarg, "failures"))
                key = SORT_FAILURES;
            else if (!strcmp(optarg, "latency"))
                key = SORT_LATENCY;
            else if (!strcmp(optarg, "name"))
                key = SORT_NAME;
            else {
                fprintf(stderr, "herald host list: --sort backlog|failures|latency|name\n");
                return 2;
            }
        } else {
            return 2;
        }
    }
    if (hd_cli_open_store(db, &st, "host list"))
        return 1;
    rc = hd_store_begin(st, 0, &txn);
    if (rc)
        goto out;
    rc = hd_rules_load(st, txn, &rules);
    if (!rc)
        rc = hd_cli_hosts_walk(st, txn, 0, on_host, &rs);
    /* Hosts with operator controls but nothing queued yet are listed too. */
    cc.nrec = rs.n;
    if (!rc)
        rc = hd_hostctl_foreach(st, txn, on_ctl, &cc);
    if (!rc)
        rc = cc.err;
    for (size_t i = 0; !rc && i < rs.n; i++)
        fill_row(st, txn, rules, now, &rs.v[i]);
    hd_store_abort(txn);
    if (rc)
        goto out;
    if (rs.n > 1)
        qsort_r(rs.v, rs.n, sizeof(rs.v[0]), cmp_rows, &key);
    if (!json)
        printf("%-32s %8s %8s %8s %7s %8s %-5s %-20s %9s %8s %6s %6s %s  %s\n", "host", "queued",
               "retrying", "done", "failed", "failures", "state", "controls", "infl/win",
               "ok/s", "p50ms", "p99ms", "breaker", "last_error");
    for (size_t i = 0; i < rs.n; i++) {
        if (json)
            hd_cli_print_json(row_json(&rs.v[i], 0));
        else
            print_row_text(&rs.v[i]);
    }
out:
    hd_rules_free(rules);
    free(rs.v);
    hd_store_close(st);
    if (rc) {
        fprintf(stderr, "herald host list: %s\n", hd_strerror(rc));
        return 1;
    }
    return 0;
}

static int count_dead(const struct hd_dead_view *d, void *user_data)
{
    (void)d;
    (*(uint64_t *)user_data)++;
    return 0;
}

static int host_show(const char *db, int argc, char **argv)
{
    struct hrow r;
    struct hd_errcounts ec;
    char e5[512], e1[512];
    struct hd_rules *rules = NULL;
    struct hd_store *st;
    struct hd_txn *txn;
    int json = 0, rc;
    const char *name = NULL;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!name)
            name = argv[i];
        else
            name = "";
    }
    memset(&r, 0, sizeof(r));
    if (!name || norm_host(name, r.host, sizeof(r.host)) != 0) {
        fprintf(stderr, "usage: herald host show HOST [--json]\n");
        return 2;
    }
    if (hd_cli_open_store(db, &st, "host show"))
        return 1;
    rc = hd_store_begin(st, 0, &txn);
    if (!rc) {
        rc = hd_rules_load(st, txn, &rules);
        if (!rc) {
            fill_row(st, txn, rules, hd_wall_ms(), &r);
            hd_hosterr_read(st, txn, r.host, hd_wall_ms(), &ec);
            rc = hd_dead_foreach(st, txn, r.host, count_dead, &r.dead_letters);
        }
        hd_store_abort(txn);
    }
    hd_rules_free(rules);
    hd_store_close(st);
    if (rc) {
        fprintf(stderr, "herald host show: %s\n", hd_strerror(rc));
        return 1;
    }
    if (!r.have_rec && !r.ctl.paused && !r.ctl.max_inflight && !r.ctl.rate_milli &&
        !r.ctl.reset_gen && !r.have_live && !r.dead_letters) {
        fprintf(stderr, "herald host show: no record of %s\n", r.host);
        return 1;
    }
    if (json) {
        json_t *o = row_json(&r, 1);
        if (o)
            json_object_set_new(o, "errors", hd_hosterr_json(&ec));
        hd_cli_print_json(o);
        return 0;
    }
    printf("host:            %s\n", r.host);
    printf("state:           %s%s%s\n", host_state(r.rec.dead), r.ctl.paused ? ", paused" : "",
           r.allowed ? "" : ", refused by defederation rules");
    printf("queued:          %" PRIu64 " (retrying %" PRIu64 ")\n", r.rec.queued,
           r.rec.retrying);
    printf("done:            %" PRIu64 "\n", r.rec.done);
    printf("failed:          %" PRIu64 " (dead letters kept: %" PRIu64 ")\n", r.rec.failed,
           r.dead_letters);
    printf("failures:        %" PRIu64 " (failing days %" PRIu64 ")\n", r.rec.failures,
           r.rec.fail_days);
    printf("last status:     %" PRIu64 "\n", r.rec.last_status);
    printf("last error:      %s\n", r.rec.last_error[0] ? r.rec.last_error : "-");
    printf("last ok / fail:  %" PRIu64 " / %" PRIu64 " (unix ms)\n", r.rec.last_ok_ms,
           r.rec.last_fail_ms);
    printf("max in flight:   %s", r.ctl.max_inflight ? "" : "default\n");
    if (r.ctl.max_inflight)
        printf("%u\n", r.ctl.max_inflight);
    if (r.ctl.rate_milli)
        printf("rate limit:      %g requests/s\n", (double)r.ctl.rate_milli / 1000.0);
    else
        printf("rate limit:      none\n");
    if (r.have_live)
        printf("live:            in flight %u, window %u, %.1f ok/s, p50 %u ms, p99 %u ms, "
               "breaker %s%s\n",
               r.live.in_flight, r.live.window, (double)r.live.ok_per_s_milli / 1000.0,
               r.live.p50_ms, r.live.p99_ms, breaker_name(r.live.breaker),
               r.live.dead ? ", dead" : "");
    else
        printf("live:            - (no running engine has reported in the last 5 s)\n");
    printf("errors 5 min:    %s\n", hd_errcounts_format(&ec, 1, e5, sizeof(e5)));
    printf("errors 1 h:      %s\n", hd_errcounts_format(&ec, 0, e1, sizeof(e1)));
    return 0;
}

/* ------------------------------------------------------------------ host controls */

enum { CTL_PAUSE, CTL_RESUME, CTL_SET, CTL_RESET };

static int parse_rate(const char *s, uint64_t *milli)
{
    char *e;
    double d;
    errno = 0;
    d = strtod(s, &e);
    if (errno || e == s || *e || !(d >= 0) || d > 1e6)
        return -1;
    *milli = (uint64_t)llround(d * 1000.0);
    if (d > 0 && *milli == 0)
        *milli = 1; /* a positive rate never silently means "no limit" */
    return 0;
}

static int host_ctl(const char *db, int argc, char **argv, int what)
{
    static const struct option lo[] = {
        {"max-inflight", 1, 0, 'm'}, {"rate", 1, 0, 'r'}, {0, 0, 0, 0}};
    char host[HD_HOST_MAX];
    struct hd_hostctl c;
    struct hd_store *st;
    struct hd_txn *txn;
    long long maxinf = -1;
    uint64_t rate = 0;
    int have_rate = 0, o, rc;

    optind = 1;
    while (what == CTL_SET && (o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        char *e;
        if (o == 'm') {
            errno = 0;
            maxinf = strtoll(optarg, &e, 10);
            if (errno || *e || e == optarg || maxinf < 0 || maxinf > 100000) {
                fprintf(stderr, "herald host set: --max-inflight must be 0..100000 "
                                "(0 = the engine's default)\n");
                return 2;
            }
        } else if (o == 'r') {
            if (parse_rate(optarg, &rate) != 0) {
                fprintf(stderr, "herald host set: --rate must be requests per second, "
                                "0..1000000 (0 = no limit)\n");
                return 2;
            }
            have_rate = 1;
        } else {
            return 2;
        }
    }
    if (what != CTL_SET)
        optind = 1;
    if (optind + 1 != argc || norm_host(argv[optind], host, sizeof(host)) != 0 ||
        (what == CTL_SET && maxinf < 0 && !have_rate)) {
        fprintf(stderr, "usage: herald host pause|resume|reset HOST, "
                        "herald host set HOST [--max-inflight N] [--rate R]\n");
        return 2;
    }
    if (hd_cli_open_store(db, &st, "host"))
        return 1;
    rc = hd_store_begin(st, 1, &txn);
    if (rc)
        goto out;
    if (what == CTL_RESET) {
        rc = hd_host_reset(st, txn, host);
    } else {
        rc = hd_hostctl_get(st, txn, host, &c);
        if (!rc) {
            if (what == CTL_PAUSE)
                c.paused = 1;
            else if (what == CTL_RESUME)
                c.paused = 0;
            if (maxinf >= 0)
                c.max_inflight = (uint32_t)maxinf;
            if (have_rate)
                c.rate_milli = rate;
            rc = hd_hostctl_put(st, txn, host, &c);
        }
    }
    if (rc)
        hd_store_abort(txn);
    else
        rc = hd_store_commit(txn);
out:
    hd_store_close(st);
    if (rc) {
        fprintf(stderr, "herald host: %s\n", hd_strerror(rc));
        return 1;
    }
    switch (what) {
    case CTL_PAUSE:
        printf("paused %s\n", host);
        break;
    case CTL_RESUME:
        printf("resumed %s\n", host);
        break;
    case CTL_RESET:
        printf("reset %s: failures, breaker and dead state cleared\n", host);
        break;
    default:
        printf("%s: max in flight %s, rate %s\n", host,
               c.max_inflight ? "set" : "default", c.rate_milli ? "limited" : "unlimited");
    }
    return 0;
}

int hd_cli_host(const char *db, int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "list"))
        return host_list(db, argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "show"))
        return host_show(db, argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "pause"))
        return host_ctl(db, argc - 1, argv + 1, CTL_PAUSE);
    if (argc >= 2 && !strcmp(argv[1], "resume"))
        return host_ctl(db, argc - 1, argv + 1, CTL_RESUME);
    if (argc >= 2 && !strcmp(argv[1], "set"))
        return host_ctl(db, argc - 1, argv + 1, CTL_SET);
    if (argc >= 2 && !strcmp(argv[1], "reset"))
        return host_ctl(db, argc - 1, argv + 1, CTL_RESET);
    fprintf(stderr, "herald host: expected list, show, pause, resume, set or reset\n");
    return 2;
}

/* ------------------------------------------------------------------ dead */

struct dead_print {
    int json;
};

static int print_dead(const struct hd_dead_view *d, void *user_data)
{
    struct dead_print *p = user_data;
    if (p->json) {
        json_t *o = json_pack("{s:s, s:I, s:I, s:o, s:I, s:I, s:o, s:I, s:I}", "host", d->host,
                              "seq", (json_int_t)d->seq, "idx", (json_int_t)d->idx, "inbox",
                              snippet_json(d->inbox), "attempts", (json_int_t)d->attempts,
                              "status", (json_int_t)d->status, "error",
                              snippet_json(d->error), "at_ms",
                              (json_int_t)d->at_ms, "enqueued_ms", (json_int_t)d->enqueued_ms);
        if (o)
            json_object_set_new(o, "body", snippet_json(d->body));
        hd_cli_print_json(o);
        return 0;
    }
    printf("%-32s %8" PRIu64 " %3d %3u  %.*s  %.*s\n", d->host, d->seq, d->status, d->attempts,
           (int)d->inbox.n, d->inbox.p, (int)d->error.n, d->error.p ? d->error.p : "");
    return 0;
}

int hd_cli_dead(const char *db, int argc, char **argv)
{
    static const struct option lo[] = {{"host", 1, 0, 'h'}, {"json", 0, 0, 'j'}, {0, 0, 0, 0}};
    char hostbuf[HD_HOST_MAX];
    const char *host = NULL, *sub = argc >= 2 ? argv[1] : "";
    struct dead_print p = {0};
    struct hd_store *st;
    struct hd_counters c;
    struct hd_txn *txn;
    uint64_t n1 = 0, n2 = 0;
    int o, rc;

    if (strcmp(sub, "list") && strcmp(sub, "retry") && strcmp(sub, "purge")) {
        fprintf(stderr, "usage: herald dead list [--json] [--host HOST] | "
                        "retry [--host HOST] | purge [--host HOST]\n");
        return 2;
    }
    optind = 1;
    while ((o = getopt_long(argc - 1, argv + 1, "", lo, NULL)) != -1) {
        if (o == 'h') {
            if (norm_host(optarg, hostbuf, sizeof(hostbuf)) != 0) {
                fprintf(stderr, "herald dead: not a host: %s\n", optarg);
                return 2;
            }
            host = hostbuf;
        } else if (o == 'j' && !strcmp(sub, "list")) {
            p.json = 1;
        } else {
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "herald dead %s: unexpected argument %s\n", sub, argv[optind + 1]);
        return 2;
    }
    if (hd_cli_open_store(db, &st, "dead"))
        return 1;
    if (!strcmp(sub, "list")) {
        rc = hd_store_begin(st, 0, &txn);
        if (!rc) {
            if (!p.json)
                printf("%-32s %8s %3s %3s  %s  %s\n", "host", "seq", "st", "att", "inbox",
                       "error");
            rc = hd_dead_foreach(st, txn, host, print_dead, &p);
            hd_store_abort(txn);
        }
        goto out;
    }
    rc = hd_store_begin(st, 1, &txn);
    if (rc)
        goto out;
    rc = hd_counters_get(st, txn, &c);
    if (!rc && !strcmp(sub, "retry"))
        rc = hd_dead_retry(st, txn, &c, host, hd_wall_ms(), &n1, &n2);
    else if (!rc)
        rc = hd_dead_purge(st, txn, host, &n1);
    if (!rc)
        rc = hd_counters_put(st, txn, &c);
    if (rc)
        hd_store_abort(txn);
    else
        rc = hd_store_commit(txn);
    if (!rc && !strcmp(sub, "retry")) {
        printf("requeued %" PRIu64 " dead letter%s\n", n1, n1 == 1 ? "" : "s");
        if (n2)
            printf("kept %" PRIu64 " that cannot be sent again (activity body no longer stored, "
                   "or the host is refused by defederation rules)\n",
                   n2);
    } else if (!rc) {
        printf("purged %" PRIu64 " dead letter%s\n", n1, n1 == 1 ? "" : "s");
    }
out:
    hd_store_close(st);
    if (rc) {
        fprintf(stderr, "herald dead %s: %s\n", sub, hd_strerror(rc));
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ gone */

static int print_gone(struct hd_slice inbox, uint64_t at_ms, int status, void *user_data)
{
    int json = *(int *)user_data;
    if (json)
        hd_cli_print_json(json_pack("{s:s%, s:I, s:i}", "inbox", inbox.p, inbox.n, "at_ms",
                             (json_int_t)at_ms, "status", status));
    else
        printf("%.*s\t%d\t%" PRIu64 "\n", (int)inbox.n, inbox.p, status, at_ms);
    return 0;
}

int hd_cli_gone(const char *db, int argc, char **argv)
{
    struct hd_store *st;
    struct hd_txn *txn;
    int json, rc;

    if (argc < 2 || strcmp(argv[1], "list") || argc > 3 ||
        (argc == 3 && strcmp(argv[2], "--json"))) {
        fprintf(stderr, "usage: herald gone list [--json]\n");
        return 2;
    }
    json = argc == 3;
    if (hd_cli_open_store(db, &st, "gone"))
        return 1;
    rc = hd_store_begin(st, 0, &txn);
    if (!rc) {
        rc = hd_gone_foreach(st, txn, print_gone, &json);
        hd_store_abort(txn);
    }
    hd_store_close(st);
    if (rc) {
        fprintf(stderr, "herald gone list: %s\n", hd_strerror(rc));
        return 1;
    }
    return 0;
}

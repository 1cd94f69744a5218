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

#include "audit.h"
#include "cli_cluster.h"
#include "cli_util.h"
#include "config.h"
#include "clock.h"
#include "cli_host.h"
#include "err.h"
#include "hostctl.h"
#include "hosterr.h"
#include "queue.h"
#include "rules.h"
#include "runner.h"
#include "store.h"

#define HOST_LIST_MAX 4000000 /* rows a listing will hold in memory */

static const char host_usage[] =
    "usage: herald host list [--sort backlog|failures|latency|name] [--json]\n"
    "       herald host show HOST [--config FILE] [--json]\n"
    "       herald host pause|resume|reset HOST\n"
    "       herald host set HOST [--max-inflight N] [--rate R] [--clear]\n"
    "Per-host queues, failures and live figures; pause, resume and limit a host, or reset its\n"
    "failures, breaker and dead state. show lists each setting with its source: host set wins,\n"
    "then the config file's [host \"NAME\"] section (read with --config), then the default.\n"
    "set --clear removes the host set overrides (then --max-inflight or --rate set anew);\n"
    "--max-inflight 0 and --rate 0 remove one.\n"
    "With --cluster nats://HOST:PORT [--cluster-creds FILE] [--cluster-ca PEM],\n"
    "pause, resume, set and reset go to the cluster's control stream: every node applies them\n"
    "to its store within about a second (dry runs are local).\n";

static const char dead_usage[] =
    "usage: herald dead list [--json] [--host HOST] | retry [--host HOST]\n"
    "       herald dead purge [--host HOST] [--dry-run]\n"
    "Dead letters: deliveries that failed for good, or that a block took out of the queue\n"
    "(error \"blocked\"). retry queues them again; purge deletes them (--dry-run: count them\n"
    "per host and change nothing).\n";

static const char gone_usage[] =
    "usage: herald gone list [--json]\n"
    "Inboxes that answered 404 or 410 (their follows were removed).\n";

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

    optind = 0;
    while ((c = hd_cli_getopt("host list", host_usage, argc, argv, "", lo)) != -1) {
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
            else
                return hd_cli_bad_value("host list", "sort", optarg,
                                        "backlog, failures, latency or name");
        } else {
            return HD_CLI_USAGE_EXIT;
        }
    }
    if (hd_cli_positional("host list", host_usage, argc, argv, 0, 0))
        return HD_CLI_USAGE_EXIT;
    if (hd_cli_open_store_ro(db, &st, "host list"))
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

/* One setting of a host as it takes effect, and where it comes from. */
struct setting {
    double value; /* max in flight, or requests per second (0: no limit) */
    const char *source;
};

#define SRC_DEFAULT "default"
#define SRC_CONFIG "config [host]"
#define SRC_HOSTSET "host set"

/* The effective max in flight and rate of r's host: `host set` wins, then the config's [host]
 * section, then the default (the [run] max_inflight_host of cfg, else the built-in one). */
static void effective(const struct hrow *r, const struct hd_config *cfg, struct setting *mi,
                      struct setting *rate)
{
    const struct hd_config_host *ch = cfg ? hd_config_host_find(cfg, r->host) : NULL;
    struct hd_run_opts o;

    hd_run_opts_default(&o);
    *mi = (struct setting){cfg ? cfg->run.hostpol.win_max : o.hostpol.win_max, SRC_DEFAULT};
    *rate = (struct setting){0, SRC_DEFAULT};
    if (ch && ch->max_inflight)
        *mi = (struct setting){ch->max_inflight, SRC_CONFIG};
    if (ch && ch->rate > 0)
        *rate = (struct setting){ch->rate, SRC_CONFIG};
    if (r->ctl.max_inflight)
        *mi = (struct setting){r->ctl.max_inflight, SRC_HOSTSET};
    if (r->ctl.rate_milli)
        *rate = (struct setting){(double)r->ctl.rate_milli / 1000.0, SRC_HOSTSET};
}

static void print_ms(const char *label, uint64_t ms)
{
    char buf[32];
    printf("%-17s%s\n", label, hd_cli_iso_time(ms, buf, sizeof(buf)));
}

static int host_show(const char *db, int argc, char **argv)
{
    static const struct option lo[] = {{"json", 0, 0, 'j'}, {"config", 1, 0, 'c'}, {0, 0, 0, 0}};
    struct hrow r;
    struct hd_errcounts ec;
    char e5[512], e1[512];
    struct hd_rules *rules = NULL;
    struct hd_config *cfg = NULL;
    struct setting mi, rate;
    struct hd_store *st;
    struct hd_txn *txn;
    int json = 0, rc, c, config_read;
    const char *name = NULL;

    optind = 0;
    while ((c = hd_cli_getopt("host show", host_usage, argc, argv, "", lo)) != -1) {
        if (c == 'j') {
            json = 1;
        } else if (c == 'c') {
            char err[HD_CONFIG_ERR_MAX];
            hd_config_free(cfg);
            cfg = NULL;
            if (hd_config_load(optarg, &cfg, err, sizeof(err)) != 0) {
                fprintf(stderr, "herald host show: --config %s: %s\n", optarg, err);
                return HD_CLI_USAGE_EXIT;
            }
        } else {
            hd_config_free(cfg);
            return HD_CLI_USAGE_EXIT;
        }
    }
    if (hd_cli_positional("host show", host_usage, argc, argv, 1, 1)) {
        hd_config_free(cfg);
        return HD_CLI_USAGE_EXIT;
    }
    name = argv[optind];
    memset(&r, 0, sizeof(r));
    if (norm_host(name, r.host, sizeof(r.host)) != 0) {
        hd_config_free(cfg);
        return hd_cli_usage_error("host show", NULL, "not a host name: %s", name);
    }
    if (hd_cli_open_store_ro(db, &st, "host show")) {
        hd_config_free(cfg);
        return 1;
    }
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
    effective(&r, cfg, &mi, &rate);
    config_read = cfg != NULL;
    if (!rc && !r.have_rec && !r.ctl.paused && !r.ctl.max_inflight && !r.ctl.rate_milli &&
        !r.ctl.reset_gen && !r.have_live && !r.dead_letters &&
        !(cfg && hd_config_host_find(cfg, r.host))) {
        hd_config_free(cfg);
        fprintf(stderr, "herald host show: no record of %s\n", r.host);
        return 1;
    }
    hd_config_free(cfg);
    if (rc) {
        fprintf(stderr, "herald host show: %s\n", hd_strerror(rc));
        return 1;
    }
    if (json) {
        json_t *o = row_json(&r, 1);
        if (o)
            json_object_set_new(
                o, "settings",
                json_pack("{s:{s:I, s:s}, s:{s:f, s:s}, s:b}", "max_inflight", "value",
                          (json_int_t)mi.value, "source", mi.source, "rate", "value", rate.value,
                          "source", rate.source, "config_read", config_read));
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
    print_ms("last ok:", r.rec.last_ok_ms);
    print_ms("last failure:", r.rec.last_fail_ms);
    printf("max in flight:   %.0f (%s)\n", mi.value, mi.source);
    if (rate.value > 0)
        printf("rate limit:      %g requests/s (%s)\n", rate.value, rate.source);
    else
        printf("rate limit:      none (%s)\n", rate.source);
    if (!config_read)
        printf("                 (settings of a config file not read: --config FILE)\n");
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
        {"max-inflight", 1, 0, 'm'}, {"rate", 1, 0, 'r'}, {"clear", 0, 0, 'x'}, {0, 0, 0, 0}};
    char host[HD_HOST_MAX];
    struct hd_hostctl c;
    struct hd_store *st;
    struct hd_txn *txn;
    long long maxinf = -1;
    uint64_t rate = 0;
    int have_rate = 0, clear = 0, o, rc;

    static const struct option none[] = {{0, 0, 0, 0}};
    static const char *const names[] = {"host pause", "host resume", "host set", "host reset"};
    const char *cmd = names[what];

    optind = 0;
    while ((o = hd_cli_getopt(cmd, host_usage, argc, argv, "", what == CTL_SET ? lo : none)) !=
           -1) {
        uint64_t v;
        if (o == 'm') {
            if (hd_cli_uint(optarg, 0, 100000, &v) != 0)
                return hd_cli_bad_value(cmd, "max-inflight", optarg,
                                        "0 to 100000; 0 is the engine's default");
            maxinf = (long long)v;
        } else if (o == 'r') {
            if (parse_rate(optarg, &rate) != 0)
                return hd_cli_bad_value(cmd, "rate", optarg,
                                        "requests per second, 0 to 1000000; 0 is no limit");
            have_rate = 1;
        } else if (o == 'x') {
            clear = 1;
        } else {
            return HD_CLI_USAGE_EXIT;
        }
    }
    if (hd_cli_positional(cmd, host_usage, argc, argv, 1, 1))
        return HD_CLI_USAGE_EXIT;
    if (norm_host(argv[optind], host, sizeof(host)) != 0)
        return hd_cli_usage_error(cmd, NULL, "not a host name: %s", argv[optind]);
    if (what == CTL_SET && maxinf < 0 && !have_rate && !clear)
        return hd_cli_usage_error(cmd, host_usage,
                                  "nothing to set: give --max-inflight, --rate or --clear");
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
            if (clear) {
                c.max_inflight = 0;
                c.rate_milli = 0;
            }
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
        hd_audit(HD_AUDIT_CLI, "host_reset", host, 0, NULL);
        break;
    default:
        if (c.max_inflight)
            printf("%s: max in flight %u (host set)", host, c.max_inflight);
        else
            printf("%s: max in flight from the config or the default", host);
        if (c.rate_milli)
            printf(", rate %g requests/s (host set)\n", (double)c.rate_milli / 1000.0);
        else
            printf(", rate from the config or the default\n");
    }
    return 0;
}

int hd_cli_host(const char *db, int argc, char **argv)
{
    if (hd_cli_help(argc, argv, host_usage))
        return 0;
    if (hd_cli_cluster_wanted(argc, argv))
        return hd_cli_control_cluster(argc, argv); /* to JetStream, for every node */
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
    return hd_cli_bad_sub("host", host_usage, argc, argv,
                          "list, show, pause, resume, set or reset");
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

/* dead purge --dry-run: letters per host (they come in host order). */
struct dead_count {
    char host[HD_HOST_MAX];
    uint64_t n, total, hosts;
};

static int count_dead_host(const struct hd_dead_view *d, void *user_data)
{
    struct dead_count *x = user_data;
    if (strcmp(x->host, d->host) != 0) {
        if (x->n)
            printf("  %-40s %" PRIu64 "\n", x->host, x->n);
        snprintf(x->host, sizeof(x->host), "%s", d->host);
        x->n = 0;
        x->hosts++;
    }
    x->n++;
    x->total++;
    return 0;
}

int hd_cli_dead(const char *db, int argc, char **argv)
{
    static const struct option lo_list[] = {{"json", 0, 0, 'j'}, {"host", 1, 0, 'h'}, {0, 0, 0, 0}};
    static const struct option lo_retry[] = {{"host", 1, 0, 'h'}, {0, 0, 0, 0}};
    static const struct option lo_purge[] = {{"host", 1, 0, 'h'}, {"dry-run", 0, 0, 'n'},
                                             {0, 0, 0, 0}};
    char hostbuf[HD_HOST_MAX];
    const char *host = NULL, *sub = argc >= 2 ? argv[1] : "";
    struct dead_print p = {0};
    struct hd_store *st;
    struct hd_counters c;
    struct hd_txn *txn;
    uint64_t n1 = 0, n2 = 0;
    int o, rc, dry = 0;

    char cmd[32];

    if (hd_cli_help(argc, argv, dead_usage))
        return 0;
    if (strcmp(sub, "list") && strcmp(sub, "retry") && strcmp(sub, "purge"))
        return hd_cli_bad_sub("dead", dead_usage, argc, argv, "list, retry or purge");
    snprintf(cmd, sizeof(cmd), "dead %s", sub);
    optind = 0;
    while ((o = hd_cli_getopt(cmd, dead_usage, argc - 1, argv + 1, "",
                              !strcmp(sub, "list")    ? lo_list
                              : !strcmp(sub, "retry") ? lo_retry
                                                      : lo_purge)) != -1) {
        if (o == 'h') {
            if (norm_host(optarg, hostbuf, sizeof(hostbuf)) != 0)
                return hd_cli_bad_value(cmd, "host", optarg, "a host name");
            host = hostbuf;
        } else if (o == 'j') {
            p.json = 1;
        } else if (o == 'n') {
            dry = 1;
        } else {
            return HD_CLI_USAGE_EXIT;
        }
    }
    if (hd_cli_positional(cmd, dead_usage, argc - 1, argv + 1, 0, 0))
        return HD_CLI_USAGE_EXIT;
    if (!strcmp(sub, "list") ? hd_cli_open_store_ro(db, &st, cmd) : hd_cli_open_store(db, &st, cmd))
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
    if (!rc && dry) {
        struct dead_count dc;
        memset(&dc, 0, sizeof(dc));
        rc = hd_dead_foreach(st, txn, host, count_dead_host, &dc);
        if (!rc) {
            if (dc.n)
                printf("  %-40s %" PRIu64 "\n", dc.host, dc.n);
            printf("dry run: purge would delete %" PRIu64 " dead letter%s on %" PRIu64
                   " host%s\nnothing changed\n",
                   dc.total, dc.total == 1 ? "" : "s", dc.hosts, dc.hosts == 1 ? "" : "s");
        }
        hd_store_abort(txn);
        goto out;
    }
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
    if (!rc)
        hd_audit(HD_AUDIT_CLI, !strcmp(sub, "retry") ? "dead_retry" : "dead_purge",
                 host ? host : "all", n1, NULL);
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

    if (hd_cli_help(argc, argv, gone_usage))
        return 0;
    if (argc < 2 || strcmp(argv[1], "list"))
        return hd_cli_bad_sub("gone", gone_usage, argc, argv, "list");
    json = 0;
    if (hd_cli_simple_args("gone list", gone_usage, argc - 1, argv + 1, &json, 0, 0))
        return HD_CLI_USAGE_EXIT;
    if (hd_cli_open_store_ro(db, &st, "gone list"))
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

/* herald top (see cli_top.h). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli_top.h"
#include "cli_util.h"
#include "cli_views.h"
#include "config.h"
#include "endpoint.h"
#include "err.h"
#include "clock.h"
#include "hostctl.h"
#include "hosterr.h"
#include "ingestsrv.h"
#include "metrics.h"
#include "queue.h"
#include "store.h"

#define TOP_FETCH_LIMIT 2000       /* hosts fetched per refresh (the largest backlogs) */
#define TOP_RESPONSE_MAX (32u << 20)
#define TOP_PREV_MAX 4096

enum sort_key { S_BACKLOG, S_RATE, S_P99, S_FAILED, S_INFLIGHT, S_HOST };

struct row {
    const char *host, *breaker, *last_error;
    long long backlog, retrying, in_flight, window, done, failed, live_done, last_status;
    double p50, p99, rate;
    int dead;
    uint64_t lat[HD_METRICS_NBUCKETS];
    char errs[24]; /* failures over 5 minutes: "12 dns" (the total, its largest class) */
};

/* "N class" from a host's "errors" object (hosterr.h), or "-". */
static void fmt_errors(char *buf, size_t len, json_t *errors)
{
    json_t *w = json_object_get(json_object_get(errors, "5m"), "by_class"), *v;
    const char *k, *top = NULL;
    long long total = 0, best = 0;

    json_object_foreach(w, k, v)
    {
        long long n = (long long)json_integer_value(json_object_get(v, "count"));
        total += n;
        if (n > best) {
            best = n;
            top = k;
        }
    }
    if (total)
        snprintf(buf, len, "%lld %s", total, top);
    else
        snprintf(buf, len, "-");
}

/* Previous poll's delivered counts, for rates. */
struct prev {
    char host[256];
    long long live_done;
    uint64_t lat[HD_METRICS_NBUCKETS]; /* latency buckets at the previous poll */
};

struct top {
    const char *listen;
    char *token; /* the endpoint's bearer token (--token-file), or NULL */
    struct hd_cluster_conn *cc; /* --cluster: the merged view of the nodes */
    struct hd_store *st; /* store fallback when there is no endpoint */
    double interval;
    int limit, once;
    enum sort_key sort;
    struct prev *prev;
    size_t nprev;
    double prev_t;
};

/* The terminal flag: signal flags are the one kind of mutable global STYLE allows. */
static volatile sig_atomic_t g_quit;

static void on_sig(int sig)
{
    (void)sig;
    g_quit = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- fetch */

/* Connects to the endpoint at listen ("unix:PATH" or "ADDR:PORT", as --listen takes it).
 * Returns the socket, or HD_ERR_INVALID or -errno. */
static int dial(const char *listen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, rc;

    rc = hd_endpoint_addr(listen, &ss, &sl);
    if (rc)
        return rc;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* GET path with Connection: close (and the bearer token when there is one); returns the
 * body (malloc'd) of a 200 answer. */
static int http_get(const char *listen, const char *token, const char *path, char **body,
                    char *why, size_t wlen)
{
    char req[HD_INGESTSRV_TOKEN_MAX + 512], *buf = NULL, *p, *hdr_end;
    size_t n = 0, cap = 0, rl;
    int fd = dial(listen), status = 0, rc = 0;
    struct timeval tv = {5, 0};

    if (fd < 0) {
        snprintf(why, wlen, "cannot connect to %s: %s", listen, hd_strerror(fd));
        return fd;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: herald\r\n%s%s%sConnection: close\r\n\r\n", path,
             token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "");
    rl = strlen(req);
    if (send(fd, req, rl, MSG_NOSIGNAL) != (ssize_t)rl) {
        rc = -errno;
        memset(req, 0, sizeof(req));
        goto out;
    }
    memset(req, 0, sizeof(req)); /* the token does not linger on the stack */
    for (;;) {
        ssize_t r;
        if (cap - n < 4096) {
            if (cap >= TOP_RESPONSE_MAX) {
                rc = HD_ERR_TOO_LARGE;
                goto out;
            }
            cap = cap ? cap * 2 : 65536;
            p = realloc(buf, cap + 1);
            if (!p) {
                rc = -ENOMEM;
                goto out;
            }
            buf = p;
        }
        r = recv(fd, buf + n, cap - n, 0);
        if (r < 0) {
            rc = -errno;
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (!buf) {
        rc = HD_ERR_PROTOCOL;
        goto out;
    }
    buf[n] = 0;
    hdr_end = strstr(buf, "\r\n\r\n");
    if (!hdr_end || sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
        rc = HD_ERR_PROTOCOL;
        goto out;
    }
    if (status == 401) {
        snprintf(why, wlen, "%s answered 401: %s", listen,
                 token ? "the token of --token-file is refused"
                       : "the endpoint needs its token: --token-file FILE");
        rc = HD_ERR_PROTOCOL;
        goto out;
    }
    if (status != 200) {
        snprintf(why, wlen, "%s answered %d", listen, status);
        rc = HD_ERR_PROTOCOL;
        goto out;
    }
    memmove(buf, hdr_end + 4, n - (size_t)(hdr_end + 4 - buf) + 1);
    *body = buf;
    buf = NULL;
out:
    if (rc && !why[0])
        snprintf(why, wlen, "%s: %s", listen, hd_strerror(rc));
    free(buf);
    close(fd);
    return rc;
}

/* ---------------------------------------------------------------- rows */

static long long jint(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static double jnum(json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static enum sort_key sort_of(const char *s)
{
    if (!strcmp(s, "rate"))
        return S_RATE;
    if (!strcmp(s, "p99") || !strcmp(s, "latency"))
        return S_P99;
    if (!strcmp(s, "failed"))
        return S_FAILED;
    if (!strcmp(s, "inflight"))
        return S_INFLIGHT;
    if (!strcmp(s, "host"))
        return S_HOST;
    return S_BACKLOG;
}

static const char *const sort_names[] = {"backlog", "rate", "p99", "failed", "inflight", "host"};

/* qsort has no context argument, so there is one comparator per sort key (descending, ties
 * by host name) rather than a global holding the key. */
#define CMP_DESC(field)                                                                            \
    static int cmp_##field(const void *a, const void *b)                                           \
    {                                                                                              \
        const struct row *x = a, *y = b;                                                           \
        if (x->field != y->field)                                                                  \
            return x->field < y->field ? 1 : -1;                                                   \
        return strcmp(x->host, y->host);                                                           \
    }
CMP_DESC(backlog)
CMP_DESC(rate)
CMP_DESC(p99)
CMP_DESC(failed)
CMP_DESC(in_flight)

static int cmp_host(const void *a, const void *b)
{
    return strcmp(((const struct row *)a)->host, ((const struct row *)b)->host);
}

static int (*const comparators[])(const void *, const void *) = {
    cmp_backlog, cmp_rate, cmp_p99, cmp_failed, cmp_in_flight, cmp_host};

static const struct prev *prev_of(const struct top *t, const char *host)
{
    for (size_t i = 0; i < t->nprev; i++)
        if (!strcmp(t->prev[i].host, host))
            return &t->prev[i];
    return NULL;
}

static void fmt_ms(char *buf, size_t len, double ms)
{
    if (ms <= 0)
        snprintf(buf, len, "-");
    else if (ms < 10)
        snprintf(buf, len, "%.1fms", ms);
    else if (ms < 10000)
        snprintf(buf, len, "%.0fms", ms);
    else
        snprintf(buf, len, "%.0fs", ms / 1000);
}

/* Draws one frame. ansi: clear and colour; else plain text. */
static void draw(struct top *t, json_t *root, double dt, int ansi)
{
    json_t *hosts = json_object_get(root, "hosts"), *tot = json_object_get(root, "totals"), *h;
    size_t n = json_array_size(hosts), i, shown;
    struct row *rows = calloc(n ? n : 1, sizeof(*rows));
    struct winsize ws;
    int rows_avail = 40, cols = 120;
    double total_rate = 0;

    if (!rows)
        return;
    if (ansi && ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
        rows_avail = ws.ws_row - 5;
        cols = ws.ws_col;
    }
    json_array_foreach(hosts, i, h)
    {
        struct row *r = &rows[i];
        const struct prev *pv;
        uint64_t delta[HD_METRICS_NBUCKETS], dn = 0;
        json_t *lat = json_object_get(h, "lat");
        r->host = jstr(h, "host");
        r->backlog = jint(h, "backlog");
        r->retrying = jint(h, "retrying");
        r->in_flight = jint(h, "in_flight");
        r->window = jint(h, "window");
        r->done = jint(h, "done");
        r->failed = jint(h, "failed");
        r->live_done = jint(h, "live_done");
        r->p50 = jnum(h, "p50_ms");
        r->p99 = jnum(h, "p99_ms");
        r->breaker = jstr(h, "breaker");
        r->dead = json_is_true(json_object_get(h, "dead"));
        r->last_status = jint(h, "last_status");
        r->last_error = jstr(h, "last_error");
        fmt_errors(r->errs, sizeof(r->errs), json_object_get(h, "errors"));
        for (unsigned k = 0; k < HD_METRICS_NBUCKETS; k++)
            r->lat[k] = (uint64_t)json_integer_value(json_array_get(lat, k));
        pv = prev_of(t, r->host);
        if (json_object_get(h, "rate")) /* store mode: the engine's own figure */
            r->rate = jnum(h, "rate");
        else
            r->rate = pv && dt > 0 && r->live_done >= pv->live_done
                          ? (double)(r->live_done - pv->live_done) / dt
                          : 0;
        /* Latency of the last interval when it saw answers; else since the engine started. */
        for (unsigned k = 0; pv && k < HD_METRICS_NBUCKETS; k++) {
            delta[k] = r->lat[k] >= pv->lat[k] ? r->lat[k] - pv->lat[k] : 0;
            dn += delta[k];
        }
        if (dn) {
            r->p50 = hd_metrics_quantile_us(delta, 0.5) / 1e3;
            r->p99 = hd_metrics_quantile_us(delta, 0.99) / 1e3;
        }
        total_rate += r->rate;
    }
    qsort(rows, n, sizeof(*rows), comparators[t->sort]);
    if (ansi)
        fputs("\033[H\033[2J", stdout);
    printf("%sherald top%s  hosts %lld  queued %lld  retrying %lld  in flight %lld  done %lld  "
           "failed %lld  rate %.0f/s  sort: %s\n",
           ansi ? "\033[1m" : "", ansi ? "\033[0m" : "", jint(tot, "hosts"), jint(tot, "queued"),
           jint(tot, "retrying"), jint(tot, "in_flight"), jint(tot, "done"), jint(tot, "failed"),
           total_rate, sort_names[t->sort]);
    if (ansi)
        printf("keys: b backlog  r rate  l p99  f failed  i in flight  h host  q quit\n");
    printf("%s%-32s %8s %7s %9s %8s %8s %8s %9s %12s  %s%s\n", ansi ? "\033[7m" : "", "HOST",
           "BACKLOG", "RETRY", "INFL/WIN", "RATE/s", "P50", "P99", "BREAKER", "ERRORS/5m",
           "LAST ERROR",
           ansi ? "\033[0m" : "");
    shown = 0;
    for (i = 0; i < n && (int)shown < (t->once ? t->limit : rows_avail) &&
                (int)shown < t->limit;
         i++, shown++) {
        struct row *r = &rows[i];
        char p50[16], p99[16], iw[24], line[512];
        const char *colour = "";
        fmt_ms(p50, sizeof(p50), r->p50);
        fmt_ms(p99, sizeof(p99), r->p99);
        snprintf(iw, sizeof(iw), "%lld/%lld", r->in_flight, r->window);
        if (ansi && (r->dead || !strcmp(r->breaker, "open")))
            colour = "\033[31m";
        else if (ansi && !strcmp(r->breaker, "half_open"))
            colour = "\033[33m";
        snprintf(line, sizeof(line), "%-32.32s %8lld %7lld %9s %8.1f %8s %8s %9s %12s  %s",
                 r->host, r->backlog, r->retrying, iw, r->rate, p50, p99,
                 r->dead ? "dead" : r->breaker, r->errs, r->last_error);
        if (ansi && (int)strlen(line) > cols)
            line[cols > 0 ? cols : 0] = 0;
        printf("%s%s%s\n", colour, line, ansi && colour[0] ? "\033[0m" : "");
    }
    fflush(stdout);
    /* remember delivered counts for the next rates */
    t->nprev = 0;
    for (i = 0; i < n && t->nprev < TOP_PREV_MAX; i++) {
        snprintf(t->prev[t->nprev].host, sizeof(t->prev[0].host), "%s", rows[i].host);
        t->prev[t->nprev].live_done = rows[i].live_done;
        memcpy(t->prev[t->nprev].lat, rows[i].lat, sizeof(rows[i].lat));
        t->nprev++;
    }
    free(rows);
}

/* ---------------------------------------------------------------- main */

/* Without an endpoint: the same view from the store, with the live per-host figures a
 * running engine publishes there once a second (hostctl.h; older than 5 s means "not
 * running"). */
struct store_rows {
    json_t *hosts;
    json_int_t queued, retrying, in_flight, done, failed, n;
    struct hd_store *st; /* failures by class (hosterr.h) are read in txn */
    struct hd_txn *txn;
};

static int add_store_row(const char *host, const struct hd_host_rec *h, const struct hd_live *live,
                         void *user_data)
{
    static const char *const br[] = {"closed", "open", "half_open"};
    static const struct hd_live idle;
    struct store_rows *x = user_data;
    const struct hd_live *l = live ? live : &idle;
    struct hd_errcounts ec;
    json_t *o;

    hd_errwin_counts(NULL, 0, &ec);
    if (x->st)
        hd_hosterr_read(x->st, x->txn, host, hd_wall_ms(), &ec);
    o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:s, s:b, s:I, s:s}", "host",
                  host, "backlog", (json_int_t)h->queued, "retrying", (json_int_t)h->retrying,
                  "in_flight", (json_int_t)l->in_flight, "window", (json_int_t)l->window, "done",
                  (json_int_t)h->done, "failed", (json_int_t)h->failed, "rate",
                  (double)l->ok_per_s_milli / 1000.0, "p50_ms", (double)l->p50_ms, "p99_ms",
                  (double)l->p99_ms, "breaker",
                  br[l->breaker >= 0 && l->breaker < 3 ? l->breaker : 0], "dead", l->dead,
                  "last_status", (json_int_t)h->last_status, "last_error", h->last_error);
    if (o && ec.total1h)
        json_object_set_new(o, "errors", hd_hosterr_json(&ec));
    json_array_append_new(x->hosts, o);
    x->queued += (json_int_t)h->queued;
    x->retrying += (json_int_t)h->retrying;
    x->in_flight += l->in_flight;
    x->done += (json_int_t)h->done;
    x->failed += (json_int_t)h->failed;
    x->n++;
    return 0;
}

static json_t *store_view(struct top *t, char *why, size_t wlen)
{
    struct store_rows x = {json_array(), 0, 0, 0, 0, 0, 0, NULL, NULL};
    json_t *root = json_object();
    struct hd_txn *txn;
    int rc;

    if (!root || !x.hosts)
        goto fail;
    rc = hd_store_begin(t->st, 0, &txn);
    if (rc) {
        snprintf(why, wlen, "store: %s", hd_strerror(rc));
        goto fail;
    }
    x.st = t->st;
    x.txn = txn;
    rc = hd_cli_hosts_walk(t->st, txn, TOP_FETCH_LIMIT, add_store_row, &x);
    hd_store_abort(txn);
    if (rc) {
        snprintf(why, wlen, "store: cannot read hosts: %s", hd_strerror(rc));
        goto fail;
    }
    json_object_set_new(root, "totals",
                        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "hosts", x.n, "queued",
                                  x.queued, "retrying", x.retrying, "in_flight", x.in_flight,
                                  "done", x.done, "failed", x.failed));
    json_object_set_new(root, "hosts", x.hosts);
    return root;
fail:
    json_decref(root);
    json_decref(x.hosts);
    if (!why[0])
        snprintf(why, wlen, "out of memory");
    return NULL;
}

static int refresh(struct top *t, int ansi)
{
    char path[64], why[256] = "", *body = NULL;
    json_error_t jerr;
    json_t *root;
    double now;
    int rc;

    if (t->cc) {
        root = hd_cli_views_fetch(t->cc, why, sizeof(why));
        if (!root) {
            printf("herald top: %s\n", why);
            return HD_ERR_CONNECT;
        }
        goto draw;
    }
    if (t->st) {
        root = store_view(t, why, sizeof(why));
        if (!root) {
            printf("herald top: %s\n", why);
            return HD_ERR_STORE;
        }
        goto draw;
    }
    snprintf(path, sizeof(path), "/v1/hosts?limit=%d", TOP_FETCH_LIMIT);
    rc = http_get(t->listen, t->token, path, &body, why, sizeof(why));
    if (rc) {
        if (ansi)
            fputs("\033[H\033[2J", stdout);
        printf("herald top: %s\n", why);
        fflush(stdout);
        return rc;
    }
    root = json_loads(body, 0, &jerr);
    free(body);
    if (!root) {
        printf("herald top: bad JSON from the endpoint: %s\n", jerr.text);
        return HD_ERR_PROTOCOL;
    }
draw:
    now = now_s();
    draw(t, root, t->prev_t > 0 ? now - t->prev_t : 0, ansi);
    t->prev_t = now;
    json_decref(root);
    return 0;
}

static const char top_usage[] =
    "usage: herald top [--listen unix:PATH|ADDR:PORT | --config FILE] [--token-file FILE]\n"
    "       [--interval DUR] [--limit N] [--sort backlog|rate|p99|failed|inflight|host] [--once]\n"
    "       herald top --cluster nats://HOST:PORT [--cluster-creds FILE] [--cluster-ca PEM] ...\n"
    "A live view of the hosts of a running engine, read from its endpoint (--listen, or the\n"
    "first listen of --config), else from the store (--db). --token-file: the endpoint's\n"
    "bearer token (first line of FILE; default the token_file of --config), sent with every\n"
    "request and never shown. --cluster: every live node's hosts (each node publishes its\n"
    "200 largest backlogs) and the sum of their totals. --interval: a bare number is\n"
    "seconds (0.5 works), or 500ms, 2s, 1m; 0.2s to 1h, default 2s. --limit: rows, default\n"
    "1000. Keys: b r l f i h sort, q quits.\n";

/* --interval: seconds (fractions allowed) or a duration with its unit. */
static int parse_interval(const char *s, double *sec)
{
    uint64_t ms;
    char *e;
    double d;

    if (hd_cli_duration(s, 1000, 200, 3600000, &ms) == 0) {
        *sec = (double)ms / 1000.0;
        return 0;
    }
    errno = 0;
    d = strtod(s, &e);
    if (errno || e == s || *e || !(d >= 0.2 && d <= 3600))
        return -1;
    *sec = d;
    return 0;
}

int hd_cli_top(const char *db, int argc, char **argv)
{
    static const struct option lo[] = {{"listen", 1, 0, 'l'}, {"config", 1, 0, 'c'},
                                       {"interval", 1, 0, 'n'}, {"limit", 1, 0, 'm'},
                                       {"sort", 1, 0, 's'}, {"once", 0, 0, 'o'},
                                       {"token-file", 1, 0, 't'}, {"cluster", 1, 0, 'C'},
                                       {"cluster-creds", 1, 0, 'K'}, {"cluster-ca", 1, 0, 'A'},
                                       {0, 0, 0, 0}};
    struct hd_cluster_opts co;
    const char *token_file = NULL;
    struct top t;
    struct hd_config *cfg = NULL;
    struct termios saved, raw;
    int c, tty, rc = 0;

    memset(&t, 0, sizeof(t));
    hd_cluster_opts_default(&co);
    t.interval = 2;
    t.limit = 1000;
    if (hd_cli_help(argc, argv, top_usage))
        return 0;
    optind = 0;
    while ((c = hd_cli_getopt("top", top_usage, argc, argv, "", lo)) != -1) {
        uint64_t v;
        switch (c) {
        case 'l':
            t.listen = optarg;
            break;
        case 'c': {
            char err[HD_CONFIG_ERR_MAX];
            hd_config_free(cfg);
            cfg = NULL;
            if (hd_config_load(optarg, &cfg, err, sizeof(err)) != 0) {
                fprintf(stderr, "herald top: --config %s: %s\n", optarg, err);
                return 2;
            }
            break;
        }
        case 'n':
            if (parse_interval(optarg, &t.interval) != 0) {
                hd_config_free(cfg);
                return hd_cli_bad_value("top", "interval", optarg, "0.2s to 1h");
            }
            break;
        case 'm':
            if (hd_cli_uint(optarg, 1, 1000000, &v) != 0) {
                hd_config_free(cfg);
                return hd_cli_bad_value("top", "limit", optarg, "1 to 1000000");
            }
            t.limit = (int)v;
            break;
        case 's':
            t.sort = sort_of(optarg);
            if (t.sort == S_BACKLOG && strcmp(optarg, "backlog") != 0) {
                hd_config_free(cfg);
                return hd_cli_bad_value("top", "sort", optarg,
                                        "backlog, rate, p99, failed, inflight or host");
            }
            break;
        case 'o':
            t.once = 1;
            break;
        case 't':
            token_file = optarg;
            break;
        case 'C':
            co.url = optarg;
            break;
        case 'K':
            co.creds = optarg;
            break;
        case 'A':
            co.ca = optarg;
            break;
        default:
            hd_config_free(cfg);
            return HD_CLI_USAGE_EXIT;
        }
    }
    if (hd_cli_positional("top", top_usage, argc, argv, 0, 0)) {
        hd_config_free(cfg);
        return HD_CLI_USAGE_EXIT;
    }
    if ((co.creds || co.ca) && !co.url) {
        hd_config_free(cfg);
        return hd_cli_usage_error("top", top_usage, "--cluster-creds and --cluster-ca need --cluster URL");
    }
    if (co.url) {
        char why[512] = "";
        if (hd_cluster_connect(&co, &t.cc, why, sizeof(why))) {
            fprintf(stderr, "herald top: %s\n", why);
            hd_config_free(cfg);
            return 1;
        }
        t.listen = "cluster"; /* neither the endpoint nor the store */
    }
    if (!t.listen && cfg && cfg->nlisten)
        t.listen = cfg->listen[0];
    if (!token_file && cfg && t.listen)
        token_file = cfg->token_file;
    if (token_file && t.listen && !t.cc) {
        rc = hd_ingestsrv_read_token(token_file, &t.token);
        if (rc) {
            fprintf(stderr, "herald top: --token-file %s: %s\n", token_file,
                    rc == HD_ERR_INVALID ? "empty or over 4096 bytes" : hd_strerror(rc));
            hd_config_free(cfg);
            return 2;
        }
    }
    if (!t.listen) {
        /* No endpoint: read the store (--db) and the live state the engine publishes there. */
        if (hd_cli_open_store_ro(db, &t.st, "top")) {
            hd_config_free(cfg);
            return 1;
        }
    }
    t.prev = calloc(TOP_PREV_MAX, sizeof(*t.prev));
    if (!t.prev) {
        free(t.token);
        hd_cluster_disconnect(t.cc);
        hd_store_close(t.st);
        hd_config_free(cfg);
        return 1;
    }
    if (t.once) {
        rc = refresh(&t, 0);
        goto out;
    }
    tty = isatty(0) && isatty(1);
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    signal(SIGPIPE, SIG_IGN);
    if (tty && tcgetattr(0, &saved) == 0) {
        raw = saved;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        tcsetattr(0, TCSANOW, &raw);
        fputs("\033[?25l", stdout); /* hide the cursor */
    } else {
        tty = 0;
    }
    while (!g_quit) {
        struct pollfd pfd = {0, POLLIN, 0};
        double until;
        refresh(&t, 1);
        until = now_s() + t.interval;
        while (!g_quit && now_s() < until) {
            int ms = (int)((until - now_s()) * 1000) + 1;
            char k;
            if (!tty) {
                struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
                break;
            }
            if (poll(&pfd, 1, ms) <= 0)
                continue;
            if (read(0, &k, 1) != 1)
                continue;
            if (k == 'q' || k == 'Q') {
                g_quit = 1;
                break;
            }
            if (strchr("brlfih", k)) {
                t.sort = k == 'b'   ? S_BACKLOG
                         : k == 'r' ? S_RATE
                         : k == 'l' ? S_P99
                         : k == 'f' ? S_FAILED
                         : k == 'i' ? S_INFLIGHT
                                    : S_HOST;
                break; /* redraw now */
            }
        }
    }
    if (tty) {
        tcsetattr(0, TCSANOW, &saved);
        fputs("\033[?25h\n", stdout);
    }
out:
    if (t.token) {
        memset(t.token, 0, strlen(t.token));
        free(t.token);
    }
    free(t.prev);
    hd_cluster_disconnect(t.cc);
    hd_store_close(t.st);
    hd_config_free(cfg);
    return rc ? 1 : 0;
}

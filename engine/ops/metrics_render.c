/* Metrics renderings: the Prometheus text format and the JSON host view (see metrics.h),
 * from the registry and a read transaction on the store. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "hosterr.h"
#include "metrics_impl.h"
#include "metrics_render.h"
#include "queue.h"

/* ---------------------------------------------------------------- store view */

struct hview {
    char name[HD_HOST_MAX];
    struct hd_host_rec rec;
    uint64_t oldest_ms; /* enqueue time of the host's first queued delivery, 0 none */
    struct hd_mhost *live;
};

struct sview {
    struct hd_counters c;
    struct hview *hosts;
    size_t n;
    uint64_t queued, retrying, oldest_ms;
};

static int on_first(const struct hd_qent *e, void *user_data)
{
    *(uint64_t *)user_data = e->enqueued_ms;
    return 1;
}

static int backlog_cmp(const void *a, const void *b)
{
    const struct hview *x = a, *y = b;
    if (x->rec.queued != y->rec.queued)
        return x->rec.queued < y->rec.queued ? 1 : -1;
    return strcmp(x->name, y->name);
}

/* Appends a zeroed host named name to v (*cap: its allocated length). NULL without memory. */
static struct hview *hview_add(struct sview *v, size_t *cap, const char *name)
{
    struct hview *h;

    if (v->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 256;
        struct hview *nh = realloc(v->hosts, ncap * sizeof(*nh));
        if (!nh)
            return NULL;
        v->hosts = nh;
        *cap = ncap;
    }
    h = &v->hosts[v->n++];
    memset(h, 0, sizeof(*h));
    memcpy(h->name, name, strlen(name) + 1);
    return h;
}

/* Reads counters and every host record (and the oldest queued delivery of each host with a
 * backlog) in one read transaction. Hosts that only the live table knows (no record yet)
 * are added with zero backlog. */
static int store_view(struct hd_metrics *m, struct hd_store *st, struct sview *v)
{
    struct hd_txn *txn = NULL;
    struct hd_host_iter it = {0};
    struct hd_host_rec rec;
    char name[HD_HOST_MAX];
    size_t cap = 0;
    int rc = 0;

    memset(v, 0, sizeof(*v));
    if (st) {
        rc = hd_store_begin(st, 0, &txn);
        if (rc)
            return rc;
        rc = hd_counters_get(st, txn, &v->c);
        if (rc)
            goto out;
        rc = hd_host_iter_open(st, txn, &it);
        if (rc)
            goto out;
        while ((rc = hd_host_iter_next(&it, name, &rec)) == 0) {
            struct hview *h = hview_add(v, &cap, name);
            if (!h) {
                rc = -ENOMEM;
                goto out;
            }
            h->rec = rec;
            if (h->rec.queued) {
                uint8_t last[HD_QKEY_MAX];
                size_t last_len;
                int end;
                hd_queue_scan(st, txn, h->name, NULL, 0, 1, on_first, &h->oldest_ms, last,
                              &last_len, &end);
                if (h->oldest_ms && (!v->oldest_ms || h->oldest_ms < v->oldest_ms))
                    v->oldest_ms = h->oldest_ms;
            }
            v->queued += h->rec.queued;
            v->retrying += h->rec.retrying;
        }
        if (rc != HD_ERR_NOT_FOUND)
            goto out;
        rc = 0;
    }
    /* attach live cells; add live-only hosts */
    if (m) {
        pthread_mutex_lock(&m->hosts_mu);
        for (size_t i = 0; i < v->n; i++)
            v->hosts[i].live = m->hosts_cap ? hd_metrics_table_find(m->hosts, m->hosts_cap, v->hosts[i].name)
                                            : NULL;
        /* Without a store, the live table is the host list. With one, every host the runner
         * touched has a record (enqueue creates it), so nothing is missing. */
        for (size_t i = 0; !st && i < m->hosts_cap && rc == 0; i++) {
            struct hd_mhost *lh = m->hosts[i];
            struct hview *h;
            if (!lh)
                continue;
            h = hview_add(v, &cap, lh->name);
            if (!h) {
                rc = -ENOMEM;
                break;
            }
            h->live = lh;
        }
        pthread_mutex_unlock(&m->hosts_mu);
    }
    if (v->n > 1) /* qsort wants a valid array even for none */
        qsort(v->hosts, v->n, sizeof(*v->hosts), backlog_cmp);
out:
    hd_host_iter_close(&it);
    if (txn)
        hd_store_abort(txn);
    if (rc) {
        free(v->hosts);
        v->hosts = NULL;
    }
    return rc;
}

/* ---------------------------------------------------------------- text output */

struct mbuf {
    char *p;
    size_t n, cap;
    int err;
};

static void put(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct mbuf *b, const char *fmt, ...)
{
    va_list ap;
    int w;

    if (b->err)
        return;
    for (;;) {
        va_start(ap, fmt);
        w = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->err = -EINVAL;
            return;
        }
        if ((size_t)w < b->cap - b->n) {
            b->n += (size_t)w;
            return;
        }
        if (b->cap >= HD_METRICS_OUT_MAX) {
            b->err = HD_ERR_FULL;
            return;
        }
        {
            size_t ncap = b->cap * 2;
            char *np = realloc(b->p, ncap);
            if (!np) {
                b->err = -ENOMEM;
                return;
            }
            b->p = np;
            b->cap = ncap;
        }
    }
}

/* Label values: backslash, double quote and line feed are escaped (exposition format). */
static const char *esc(const char *s, char *buf, size_t len)
{
    size_t j = 0;
    for (; *s && j + 3 < len; s++) {
        if (*s == '\\' || *s == '"') {
            buf[j++] = '\\';
            buf[j++] = *s;
        } else if (*s == '\n') {
            buf[j++] = '\\';
            buf[j++] = 'n';
        } else {
            buf[j++] = *s;
        }
    }
    buf[j] = 0;
    return buf;
}

static void head(struct mbuf *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void hist_sum(struct hd_metrics *m, enum hd_metric_hist which, uint64_t *counts,
                     uint64_t *sum)
{
    memset(counts, 0, sizeof(uint64_t) * HD_METRICS_NBUCKETS);
    *sum = 0;
    for (unsigned s = 0; s < HD_METRICS_SHARDS; s++) {
        const struct hist *h = &m->shards[s].h[which];
        for (unsigned i = 0; i < HD_METRICS_NBUCKETS; i++)
            counts[i] += atomic_load_explicit(&h->b[i], memory_order_relaxed);
        *sum += atomic_load_explicit(&h->sum_us, memory_order_relaxed);
    }
}

static void hist_read(const struct hist *h, uint64_t *counts, uint64_t *sum)
{
    for (unsigned i = 0; i < HD_METRICS_NBUCKETS; i++)
        counts[i] = atomic_load_explicit(&h->b[i], memory_order_relaxed);
    *sum = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
}

/* labels: "" or `host="x",` (with the trailing comma) */
static void put_hist(struct mbuf *b, const char *name, const char *labels, const uint64_t *counts,
                     uint64_t sum)
{
    uint64_t acc = 0;
    size_t ll = strlen(labels);
    for (unsigned i = 0; i < HD_METRICS_NBUCKETS - 1; i++) {
        acc += counts[i];
        put(b, "%s_bucket{%sle=\"%g\"} %" PRIu64 "\n", name, labels,
            (double)hd_metrics_bucket_bound_us(i) / 1e6, acc);
    }
    acc += counts[HD_METRICS_NBUCKETS - 1];
    put(b, "%s_bucket{%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, acc);
    if (ll) {
        /* drop the trailing comma for the _sum and _count label sets */
        put(b, "%s_sum{%.*s} %.6f\n", name, (int)ll - 1, labels, (double)sum / 1e6);
        put(b, "%s_count{%.*s} %" PRIu64 "\n", name, (int)ll - 1, labels, acc);
    } else {
        put(b, "%s_sum %.6f\n", name, (double)sum / 1e6);
        put(b, "%s_count %" PRIu64 "\n", name, acc);
    }
}

static const char *const breaker_names[] = {"closed", "open", "half_open"};

/* The process's own series: counters, gauges and histograms of the registry. */
static void render_registry(struct mbuf *b, struct hd_metrics *m)
{
    uint64_t counts[HD_METRICS_NBUCKETS], sum;

    head(b, "herald_deliveries_total", "counter",
         "Delivery attempts finished, by outcome (done, retry, dead).");
    put(b, "herald_deliveries_total{outcome=\"done\"} %" PRIu64 "\n",
        hd_metrics_counter(m, HD_MC_DONE));
    put(b, "herald_deliveries_total{outcome=\"retry\"} %" PRIu64 "\n",
        hd_metrics_counter(m, HD_MC_RETRY));
    put(b, "herald_deliveries_total{outcome=\"dead\"} %" PRIu64 "\n",
        hd_metrics_counter(m, HD_MC_DEAD));
    head(b, "herald_requests_total", "counter", "HTTP requests sent to inboxes.");
    put(b, "herald_requests_total %" PRIu64 "\n", hd_metrics_counter(m, HD_MC_ATTEMPTS));
    head(b, "herald_ingest_total", "counter",
         "Activities offered to the ingest endpoint or C API, by result.");
    put(b, "herald_ingest_total{result=\"accepted\"} %" PRIu64 "\n",
        hd_metrics_counter(m, HD_MC_INGEST_ACCEPTED));
    put(b, "herald_ingest_total{result=\"duplicate\"} %" PRIu64 "\n",
        hd_metrics_counter(m, HD_MC_INGEST_DUPLICATE));
    put(b, "herald_ingest_total{result=\"refused\"} %" PRIu64 "\n",
        hd_metrics_counter(m, HD_MC_INGEST_REFUSED));
    head(b, "herald_ingest_throttled_total", "counter",
         "Ingest requests refused with 429/503 because the queue was over its bound.");
    put(b, "herald_ingest_throttled_total %" PRIu64 "\n",
        hd_metrics_counter(m, HD_MC_INGEST_THROTTLED));
    head(b, "herald_store_commits_total", "counter",
         "Acknowledgement transactions committed to the store.");
    put(b, "herald_store_commits_total %" PRIu64 "\n", hd_metrics_counter(m, HD_MC_COMMITS));
    head(b, "herald_config_reloads_total", "counter",
         "Configuration reloads (SIGHUP), by result.");
    put(b, "herald_config_reloads_total{result=\"ok\"} %" PRIu64 "\n",
        hd_metrics_counter(m, HD_MC_RELOADS));
    put(b, "herald_config_reloads_total{result=\"error\"} %" PRIu64 "\n",
        hd_metrics_counter(m, HD_MC_RELOAD_ERRORS));

    head(b, "herald_in_flight", "gauge", "Requests in flight.");
    put(b, "herald_in_flight %" PRId64 "\n", hd_metrics_gauge(m, HD_MG_IN_FLIGHT));
    head(b, "herald_breakers_open", "gauge", "Hosts whose circuit breaker is open.");
    put(b, "herald_breakers_open %" PRId64 "\n", hd_metrics_gauge(m, HD_MG_BREAKERS_OPEN));
    head(b, "herald_hosts_dead", "gauge", "Hosts marked dead.");
    put(b, "herald_hosts_dead %" PRId64 "\n", hd_metrics_gauge(m, HD_MG_HOSTS_DEAD));

    head(b, "herald_delivery_duration_seconds", "histogram",
         "Time from sending a request to its answer or failure.");
    hist_sum(m, HD_MH_LATENCY, counts, &sum);
    put_hist(b, "herald_delivery_duration_seconds", "", counts, sum);
    head(b, "herald_sign_duration_seconds", "histogram", "Time to sign one request.");
    hist_sum(m, HD_MH_SIGN, counts, &sum);
    put_hist(b, "herald_sign_duration_seconds", "", counts, sum);
    head(b, "herald_store_commit_duration_seconds", "histogram",
         "Time to commit one LMDB write transaction.");
    hist_sum(m, HD_MH_COMMIT, counts, &sum);
    put_hist(b, "herald_store_commit_duration_seconds", "", counts, sum);
}

/* Seconds since ms (0: none), for age gauges. */
static double age_s(uint64_t ms, uint64_t now)
{
    return ms && now > ms ? (double)(now - ms) / 1e3 : 0.0;
}

/* The series read from the store: counters, queue totals and the oldest delivery. */
static void render_store(struct mbuf *b, const struct sview *v, uint64_t now)
{
    head(b, "herald_activities_total", "counter", "Activities accepted into the store.");
    put(b, "herald_activities_total %" PRIu64 "\n", v->c.activities);
    head(b, "herald_store_deliveries_total", "counter",
         "Deliveries finished as recorded in the store, by result.");
    put(b, "herald_store_deliveries_total{result=\"done\"} %" PRIu64 "\n", v->c.done);
    put(b, "herald_store_deliveries_total{result=\"failed\"} %" PRIu64 "\n", v->c.failed);
    head(b, "herald_queue_deliveries", "gauge", "Deliveries queued, by state.");
    put(b, "herald_queue_deliveries{state=\"pending\"} %" PRIu64 "\n", v->queued - v->retrying);
    put(b, "herald_queue_deliveries{state=\"retrying\"} %" PRIu64 "\n", v->retrying);
    head(b, "herald_queue_oldest_age_seconds", "gauge",
         "Age of the oldest queued delivery (0 when the queue is empty).");
    put(b, "herald_queue_oldest_age_seconds %.3f\n", age_s(v->oldest_ms, now));
    head(b, "herald_hosts", "gauge", "Hosts known to the store.");
    put(b, "herald_hosts %zu\n", v->n);
}

static int64_t host_backlog(const struct hview *h)
{
    return (int64_t)h->rec.queued;
}

static int64_t host_retrying(const struct hview *h)
{
    return (int64_t)h->rec.retrying;
}

static int64_t host_in_flight(const struct hview *h)
{
    return h->live ? atomic_load(&h->live->inflight) : 0;
}

static int64_t host_window(const struct hview *h)
{
    return h->live ? atomic_load(&h->live->window) : 0;
}

/* One gauge for each of the first top hosts: name{host="..."} value(host). */
static void host_gauge(struct mbuf *b, const struct sview *v, size_t top, const char *name,
                       const char *help, int64_t (*value)(const struct hview *h))
{
    char e[HD_HOST_MAX * 2 + 8];

    head(b, name, "gauge", help);
    for (size_t i = 0; i < top; i++)
        put(b, "%s{host=\"%s\"} %" PRId64 "\n", name, esc(v->hosts[i].name, e, sizeof(e)),
            value(&v->hosts[i]));
}

/* Per-host series for the first top hosts of v (the largest backlogs). */
static void render_hosts(struct mbuf *b, const struct sview *v, size_t top, uint64_t now)
{
    char e[HD_HOST_MAX * 2 + 8], lab[HD_HOST_MAX * 2 + 16];

    host_gauge(b, v, top, "herald_host_backlog",
               "Deliveries queued for the host (top hosts by backlog only).", host_backlog);
    host_gauge(b, v, top, "herald_host_retrying", "Deliveries of the host waiting to retry.",
               host_retrying);
    head(b, "herald_host_oldest_age_seconds", "gauge",
         "Age of the host's oldest queued delivery.");
    for (size_t i = 0; i < top; i++)
        put(b, "herald_host_oldest_age_seconds{host=\"%s\"} %.3f\n",
            esc(v->hosts[i].name, e, sizeof(e)), age_s(v->hosts[i].oldest_ms, now));
    host_gauge(b, v, top, "herald_host_in_flight", "Requests in flight to the host.",
               host_in_flight);
    host_gauge(b, v, top, "herald_host_window", "The host's current in-flight window.",
               host_window);
    head(b, "herald_host_breaker", "gauge", "The host's circuit breaker: 1 for its current state.");
    for (size_t i = 0; i < top; i++) {
        int s = v->hosts[i].live ? atomic_load(&v->hosts[i].live->breaker) : 0;
        for (int k = 0; k < 3; k++)
            put(b, "herald_host_breaker{host=\"%s\",state=\"%s\"} %d\n",
                esc(v->hosts[i].name, e, sizeof(e)), breaker_names[k], s == k);
    }
    head(b, "herald_host_deliveries_total", "counter",
         "Delivery attempts to the host finished by this process, by outcome.");
    for (size_t i = 0; i < top; i++) {
        struct hd_mhost *lh = v->hosts[i].live;
        esc(v->hosts[i].name, e, sizeof(e));
        put(b, "herald_host_deliveries_total{host=\"%s\",outcome=\"done\"} %" PRIu64 "\n", e,
            lh ? atomic_load(&lh->done) : 0);
        put(b, "herald_host_deliveries_total{host=\"%s\",outcome=\"retry\"} %" PRIu64 "\n", e,
            lh ? atomic_load(&lh->retry) : 0);
        put(b, "herald_host_deliveries_total{host=\"%s\",outcome=\"dead\"} %" PRIu64 "\n", e,
            lh ? atomic_load(&lh->failed) : 0);
    }
    head(b, "herald_host_delivery_duration_seconds", "histogram",
         "Request latency per host (top hosts by backlog only).");
    for (size_t i = 0; i < top; i++) {
        uint64_t hc[HD_METRICS_NBUCKETS] = {0}, hs = 0;
        if (v->hosts[i].live)
            hist_read(&v->hosts[i].live->lat, hc, &hs);
        snprintf(lab, sizeof(lab), "host=\"%s\",", esc(v->hosts[i].name, e, sizeof(e)));
        put_hist(b, "herald_host_delivery_duration_seconds", lab, hc, hs);
    }
}

/* Failures by class over 5 minutes and 1 hour for the first top hosts of v (classes with
 * none left out, so at most top x classes x 2 series each). */
static void render_host_errors(struct mbuf *b, struct hd_store *st, const struct sview *v,
                               size_t top, uint64_t now)
{
    struct hd_errcounts *ec = calloc(top, sizeof(*ec));
    struct hd_txn *txn = NULL;
    char e[HD_HOST_MAX * 2];

    if (!ec || hd_store_begin(st, 0, &txn) != 0) {
        free(ec);
        return;
    }
    for (size_t i = 0; i < top; i++)
        hd_hosterr_read(st, txn, v->hosts[i].name, now, &ec[i]);
    hd_store_abort(txn);
    head(b, "herald_host_errors", "gauge",
         "Failed attempts to the host by class over the window (top hosts by backlog only).");
    for (size_t i = 0; i < top; i++)
        for (int w = 0; w < 2; w++) {
            const uint32_t *n = w ? ec[i].n1h : ec[i].n5m;
            for (int k = 0; k < HD_EC__COUNT; k++)
                if (n[k])
                    put(b, "herald_host_errors{host=\"%s\",class=\"%s\",window=\"%s\"} %u\n",
                        esc(v->hosts[i].name, e, sizeof(e)), hd_errclass_name(k),
                        w ? "1h" : "5m", n[k]);
        }
    head(b, "herald_host_error_rate", "gauge",
         "Failed attempts to the host per second by class over the window (top hosts by "
         "backlog only).");
    for (size_t i = 0; i < top; i++)
        for (int w = 0; w < 2; w++) {
            const uint32_t *n = w ? ec[i].n1h : ec[i].n5m;
            double secs = w ? ec[i].secs1h : ec[i].secs5m;
            for (int k = 0; k < HD_EC__COUNT; k++)
                if (n[k])
                    put(b, "herald_host_error_rate{host=\"%s\",class=\"%s\",window=\"%s\"} %.6f\n",
                        esc(v->hosts[i].name, e, sizeof(e)), hd_errclass_name(k),
                        w ? "1h" : "5m", n[k] / secs);
        }
    free(ec);
}

int hd_metrics_render(struct hd_metrics *m, struct hd_store *st, char **out, size_t *len)
{
    struct mbuf b = {0};
    struct sview v;
    uint64_t now = hd_wall_ms();
    size_t top;
    int rc;

    rc = store_view(m, st, &v);
    if (rc)
        return rc;
    b.cap = 16384;
    b.p = malloc(b.cap);
    if (!b.p) {
        free(v.hosts);
        return -ENOMEM;
    }
    b.p[0] = 0;
    if (m)
        render_registry(&b, m);
    if (st)
        render_store(&b, &v, now);
    top = m ? atomic_load(&m->top_hosts) : 0;
    if (top > v.n)
        top = v.n;
    if (top)
        render_hosts(&b, &v, top, now);
    if (top && st)
        render_host_errors(&b, st, &v, top, now);
    free(v.hosts);
    if (b.err) {
        free(b.p);
        return b.err;
    }
    *out = b.p;
    *len = b.n;
    return 0;
}

int hd_metrics_render_hosts_json(struct hd_metrics *m, struct hd_store *st, size_t limit,
                                 char **out, size_t *len)
{
    struct sview v;
    struct hd_txn *txn = NULL;
    uint64_t now = hd_wall_ms();
    json_t *root, *hosts;
    char *s;
    int rc;

    rc = store_view(m, st, &v);
    if (rc)
        return rc;
    if (limit == 0 || limit > v.n)
        limit = v.n;
    if (st && hd_store_begin(st, 0, &txn) != 0)
        txn = NULL;
    hosts = json_array();
    root = json_object();
    if (!hosts || !root) {
        json_decref(hosts);
        json_decref(root);
        free(v.hosts);
        if (txn)
            hd_store_abort(txn);
        return -ENOMEM;
    }
    for (size_t i = 0; i < limit; i++) {
        struct hview *h = &v.hosts[i];
        struct hd_mhost *lh = h->live;
        uint64_t hc[HD_METRICS_NBUCKETS] = {0}, hs = 0;
        char lerr[HD_ERRTEXT_MAX];
        int br = lh ? atomic_load(&lh->breaker) : 0;
        json_t *o;

        if (lh) {
            hist_read(&lh->lat, hc, &hs);
            hd_mhost_err_lock(lh);
            snprintf(lerr, sizeof(lerr), "%s", lh->last_error[0] ? lh->last_error : h->rec.last_error);
            hd_mhost_err_unlock(lh);
        } else {
            snprintf(lerr, sizeof(lerr), "%s", h->rec.last_error);
        }
        o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:s, s:b, s:I, "
                      "s:s, s:I}",
                      "host", h->name, "backlog", (json_int_t)h->rec.queued, "retrying",
                      (json_int_t)h->rec.retrying, "in_flight",
                      (json_int_t)(lh ? atomic_load(&lh->inflight) : 0), "window",
                      (json_int_t)(lh ? atomic_load(&lh->window) : 0), "done",
                      (json_int_t)h->rec.done, "failed", (json_int_t)h->rec.failed, "requests",
                      (json_int_t)(lh ? atomic_load(&lh->requests) : 0), "live_done",
                      (json_int_t)(lh ? atomic_load(&lh->done) : 0), "p50_ms",
                      hd_metrics_quantile_us(hc, 0.5) / 1e3, "p99_ms",
                      hd_metrics_quantile_us(hc, 0.99) / 1e3, "breaker",
                      breaker_names[br >= 0 && br < 3 ? br : 0], "dead",
                      lh ? atomic_load(&lh->dead) : 0, "last_status",
                      (json_int_t)(lh && atomic_load(&lh->last_status)
                                       ? atomic_load(&lh->last_status)
                                       : (int)h->rec.last_status),
                      "last_error", lerr, "oldest_ms", (json_int_t)h->oldest_ms);
        if (o && lh) {
            /* raw latency buckets, so that a viewer can take quantiles of the last interval */
            json_t *lat = json_array();
            for (unsigned k = 0; lat && k < HD_METRICS_NBUCKETS; k++)
                json_array_append_new(lat, json_integer((json_int_t)hc[k]));
            if (lat)
                json_object_set_new(o, "lat", lat);
        }
        if (o && txn) {
            struct hd_errcounts ec;
            if (hd_hosterr_read(st, txn, h->name, now, &ec))
                json_object_set_new(o, "errors", hd_hosterr_json(&ec));
        }
        if (o)
            json_array_append_new(hosts, o);
    }
    if (txn)
        hd_store_abort(txn);
    json_object_set_new(root, "now_ms", json_integer((json_int_t)now));
    json_object_set_new(
        root, "totals",
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "hosts", (json_int_t)v.n, "queued",
                  (json_int_t)v.queued, "retrying", (json_int_t)v.retrying, "done",
                  (json_int_t)v.c.done, "failed", (json_int_t)v.c.failed, "in_flight",
                  (json_int_t)hd_metrics_gauge(m, HD_MG_IN_FLIGHT), "delivered",
                  (json_int_t)hd_metrics_counter(m, HD_MC_DONE), "oldest_ms",
                  (json_int_t)v.oldest_ms));
    json_object_set_new(root, "hosts", hosts);
    free(v.hosts);
    s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!s)
        return -ENOMEM;
    *out = s;
    *len = strlen(s);
    return 0;
}

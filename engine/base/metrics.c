/* Metrics registry: counters, gauges, histograms and per-host cells (see metrics.h). */
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
#include "metrics.h"
#include "metrics_impl.h"

/* Bucket bounds in microseconds: from 50 us (a fast signature) to 60 s (a slow receiver). */
static const uint64_t bounds_us[HD_METRICS_NBUCKETS - 1] = {
    50,     100,    250,     500,     1000,    2500,    5000,     10000,    25000,   50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000};



static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

int hd_metrics_new(struct hd_metrics **out)
{
    struct hd_metrics *m = aligned_alloc(64, (sizeof(*m) + 63) & ~(size_t)63);
    if (!m)
        return -ENOMEM;
    memset(m, 0, sizeof(*m));
    atomic_init(&m->top_hosts, 50);
    pthread_mutex_init(&m->hosts_mu, NULL);
    *out = m;
    return 0;
}

void hd_metrics_free(struct hd_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->hosts_cap; i++)
        free(m->hosts[i]);
    free(m->hosts);
    pthread_mutex_destroy(&m->hosts_mu);
    free(m);
}

void hd_metrics_set_top_hosts(struct hd_metrics *m, unsigned n)
{
    if (m)
        atomic_store(&m->top_hosts, n);
}

void hd_metrics_add(struct hd_metrics *m, unsigned shard, enum hd_metric_counter c, uint64_t n)
{
    if (m && (unsigned)c < HD_MC__COUNT)
        atomic_fetch_add_explicit(&m->shards[shard % HD_METRICS_SHARDS].c[c], n,
                                  memory_order_relaxed);
}

static unsigned bucket_of(uint64_t usec)
{
    unsigned lo = 0, hi = HD_METRICS_NBUCKETS - 1;
    /* first bound >= usec; the last bucket is +Inf */
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (usec <= bounds_us[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static void hist_observe(struct hist *h, uint64_t usec)
{
    atomic_fetch_add_explicit(&h->b[bucket_of(usec)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, usec, memory_order_relaxed);
}

void hd_metrics_observe(struct hd_metrics *m, unsigned shard, enum hd_metric_hist h,
                        uint64_t usec)
{
    if (m && (unsigned)h < HD_MH__COUNT)
        hist_observe(&m->shards[shard % HD_METRICS_SHARDS].h[h], usec);
}

void hd_metrics_gauge_add(struct hd_metrics *m, unsigned shard, enum hd_metric_gauge g,
                          int64_t delta)
{
    if (m && (unsigned)g < HD_MG__COUNT)
        atomic_fetch_add_explicit(&m->shards[shard % HD_METRICS_SHARDS].g[g], delta,
                                  memory_order_relaxed);
}

void hd_metrics_gauge_set(struct hd_metrics *m, unsigned shard, enum hd_metric_gauge g,
                          int64_t v)
{
    if (m && (unsigned)g < HD_MG__COUNT)
        atomic_store_explicit(&m->shards[shard % HD_METRICS_SHARDS].g[g], v,
                              memory_order_relaxed);
}

uint64_t hd_metrics_counter(struct hd_metrics *m, enum hd_metric_counter c)
{
    uint64_t v = 0;
    if (!m || (unsigned)c >= HD_MC__COUNT)
        return 0;
    for (unsigned i = 0; i < HD_METRICS_SHARDS; i++)
        v += atomic_load_explicit(&m->shards[i].c[c], memory_order_relaxed);
    return v;
}

int64_t hd_metrics_gauge(struct hd_metrics *m, enum hd_metric_gauge g)
{
    int64_t v = 0;
    if (!m || (unsigned)g >= HD_MG__COUNT)
        return 0;
    for (unsigned i = 0; i < HD_METRICS_SHARDS; i++)
        v += atomic_load_explicit(&m->shards[i].g[g], memory_order_relaxed);
    return v;
}

/* ---------------------------------------------------------------- hosts */

struct hd_mhost *hd_metrics_table_find(struct hd_mhost **tab, size_t cap, const char *name)
{
    size_t i = (size_t)name_hash(name) & (cap - 1);
    while (tab[i]) {
        if (!strcmp(tab[i]->name, name))
            return tab[i];
        i = (i + 1) & (cap - 1);
    }
    return NULL;
}

static void table_put(struct hd_mhost **tab, size_t cap, struct hd_mhost *h)
{
    size_t i = (size_t)name_hash(h->name) & (cap - 1);
    while (tab[i])
        i = (i + 1) & (cap - 1);
    tab[i] = h;
}

struct hd_mhost *hd_metrics_host(struct hd_metrics *m, const char *host)
{
    struct hd_mhost *h = NULL;
    size_t n;

    if (!m || !host)
        return NULL;
    n = strlen(host);
    if (n == 0 || n >= HD_HOST_MAX)
        return NULL;
    pthread_mutex_lock(&m->hosts_mu);
    if (m->hosts_cap)
        h = hd_metrics_table_find(m->hosts, m->hosts_cap, host);
    if (h || m->nhosts >= HD_METRICS_MAX_HOSTS)
        goto out;
    if ((m->nhosts + 1) * 10 > m->hosts_cap * 7) {
        size_t ncap = m->hosts_cap ? m->hosts_cap * 2 : 256;
        struct hd_mhost **nt = calloc(ncap, sizeof(*nt));
        if (!nt)
            goto out;
        for (size_t i = 0; i < m->hosts_cap; i++)
            if (m->hosts[i])
                table_put(nt, ncap, m->hosts[i]);
        free(m->hosts);
        m->hosts = nt;
        m->hosts_cap = ncap;
    }
    h = calloc(1, sizeof(*h));
    if (!h)
        goto out;
    memcpy(h->name, host, n + 1);
    table_put(m->hosts, m->hosts_cap, h);
    m->nhosts++;
out:
    pthread_mutex_unlock(&m->hosts_mu);
    return h;
}

void hd_mhost_inflight_add(struct hd_mhost *h, int delta)
{
    if (h)
        atomic_fetch_add_explicit(&h->inflight, delta, memory_order_relaxed);
}

void hd_mhost_set_window(struct hd_mhost *h, unsigned window)
{
    if (h)
        atomic_store_explicit(&h->window, window, memory_order_relaxed);
}

void hd_mhost_set_breaker(struct hd_mhost *h, int state)
{
    if (h)
        atomic_store_explicit(&h->breaker, state, memory_order_relaxed);
}

void hd_mhost_set_dead(struct hd_mhost *h, int dead)
{
    if (h)
        atomic_store_explicit(&h->dead, dead ? 1 : 0, memory_order_relaxed);
}

void hd_mhost_err_lock(struct hd_mhost *h)
{
    while (atomic_flag_test_and_set_explicit(&h->err_lock, memory_order_acquire))
        ;
}

void hd_mhost_err_unlock(struct hd_mhost *h)
{
    atomic_flag_clear_explicit(&h->err_lock, memory_order_release);
}

void hd_mhost_result(struct hd_mhost *h, int outcome, int status, uint64_t latency_us,
                     const char *error)
{
    if (!h)
        return;
    atomic_fetch_add_explicit(&h->requests, 1, memory_order_relaxed);
    if (outcome == 1)
        atomic_fetch_add_explicit(&h->done, 1, memory_order_relaxed);
    else if (outcome == 2)
        atomic_fetch_add_explicit(&h->retry, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&h->failed, 1, memory_order_relaxed);
    atomic_store_explicit(&h->last_status, status, memory_order_relaxed);
    hist_observe(&h->lat, latency_us);
    if (outcome != 1 && error) {
        hd_mhost_err_lock(h);
        snprintf(h->last_error, sizeof(h->last_error), "%s", error);
        hd_mhost_err_unlock(h);
    }
}

uint64_t hd_metrics_bucket_bound_us(unsigned i)
{
    return i < HD_METRICS_NBUCKETS - 1 ? bounds_us[i] : UINT64_MAX;
}

double hd_metrics_quantile_us(const uint64_t *counts, double q)
{
    uint64_t total = 0, acc = 0;
    double rank;

    for (unsigned i = 0; i < HD_METRICS_NBUCKETS; i++)
        total += counts[i];
    if (!total)
        return 0;
    rank = q * (double)total;
    for (unsigned i = 0; i < HD_METRICS_NBUCKETS; i++) {
        double lo = i ? (double)bounds_us[i - 1] : 0;
        double hi;
        if (counts[i] == 0 || (double)(acc + counts[i]) < rank) {
            acc += counts[i];
            continue;
        }
        if (i == HD_METRICS_NBUCKETS - 1)
            return lo; /* +Inf bucket: the best we can say is "above the last bound" */
        hi = (double)bounds_us[i];
        return lo + (hi - lo) * ((rank - (double)acc) / (double)counts[i]);
    }
    return (double)bounds_us[HD_METRICS_NBUCKETS - 2];
}

/* The metrics registry's internals, shared by the registry (base/metrics.c) and its
 * renderings (ops/metrics_render.c). Nothing else includes this header. */
#ifndef HD_METRICS_IMPL_H
#define HD_METRICS_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "err.h"
#include "metrics.h"
#include "url.h"

struct hist {
    _Atomic uint64_t b[HD_METRICS_NBUCKETS];
    _Atomic uint64_t sum_us;
};

/* One shard per writer thread, aligned so that two shards never share a cache line. */
struct shard {
    _Alignas(64) _Atomic uint64_t c[HD_MC__COUNT];
    _Atomic int64_t g[HD_MG__COUNT];
    struct hist h[HD_MH__COUNT];
};

struct hd_mhost {
    char name[HD_HOST_MAX];
    _Atomic int64_t inflight;
    _Atomic unsigned window;
    _Atomic int breaker;
    _Atomic int dead;
    _Atomic uint64_t done, retry, failed, requests;
    _Atomic int last_status;
    struct hist lat;
    atomic_flag err_lock;            /* guards last_error (written on failures only) */
    char last_error[HD_ERRTEXT_MAX];
};

struct hd_metrics {
    struct shard shards[HD_METRICS_SHARDS];
    _Atomic unsigned top_hosts;
    pthread_mutex_t hosts_mu; /* inserts and scrapes of the host table */
    struct hd_mhost **hosts;  /* open addressing by name hash */
    size_t hosts_cap, nhosts;
};

/* The host cell named name in an open-addressing table of cap (a power of two) slots, or
 * NULL. The caller holds hosts_mu. */
struct hd_mhost *hd_metrics_table_find(struct hd_mhost **tab, size_t cap, const char *name);
/* Guards h->last_error (a spin flag: held for one short copy). */
void hd_mhost_err_lock(struct hd_mhost *h);
void hd_mhost_err_unlock(struct hd_mhost *h);

#endif

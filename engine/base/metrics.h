/* Metrics: counters, gauges and fixed-bucket histograms updated lock-free from any thread, and
 * their rendering in the Prometheus text format (version 0.0.4) and as a JSON host view.
 *
 * Updates are relaxed atomic adds on per-shard cells: each loop thread uses its own shard
 * (its thread index), so hot counters never share a cache line between threads; a scrape
 * sums the shards. Sharing a shard between threads is still correct, only slower.
 *
 * Per-host state (in flight, window, breaker, latency, outcomes, last error) lives in one
 * table of struct hd_mhost, created on first use by the owning loop thread and never freed
 * before hd_metrics_free, so a thread may cache the pointer in its own host object. Every
 * field is atomic except last_error, which a small mutex guards (written on failures only).
 *
 * Queue depth, backlog per host and the age of the oldest pending delivery are read from
 * the store at scrape time (a read transaction), so they are right even with no runner.
 * Per-host series are emitted only for the top N hosts by backlog, so 20,000 hosts never
 * mean 20,000 series.
 *
 * Every function accepts m == NULL (and h == NULL) and does nothing, so call sites need no
 * test when metrics are off. */
#ifndef HD_METRICS_H
#define HD_METRICS_H

#include <stddef.h>
#include <stdint.h>


#define HD_METRICS_SHARDS 64     /* shard index is taken modulo this */
#define HD_METRICS_MAX_HOSTS (1u << 20)
#define HD_METRICS_OUT_MAX (64u << 20) /* cap on one rendering */

enum hd_metric_counter {
    HD_MC_DONE,            /* deliveries acknowledged done (2xx) */
    HD_MC_RETRY,           /* attempts that failed and will be retried */
    HD_MC_DEAD,            /* deliveries dead-lettered */
    HD_MC_ATTEMPTS,        /* requests sent */
    HD_MC_INGEST_ACCEPTED, /* activities accepted by the endpoint / API */
    HD_MC_INGEST_DUPLICATE,
    HD_MC_INGEST_REFUSED,
    HD_MC_INGEST_THROTTLED, /* requests answered 429/503 for backpressure */
    HD_MC_COMMITS,          /* store write transactions committed by the committer */
    HD_MC_RELOADS,          /* successful configuration reloads */
    HD_MC_RELOAD_ERRORS,
    HD_MC__COUNT
};

enum hd_metric_hist {
    HD_MH_LATENCY, /* request sent -> response (or failure), microseconds */
    HD_MH_SIGN,    /* signing one request, microseconds */
    HD_MH_COMMIT,  /* one LMDB write transaction commit, microseconds */
    HD_MH__COUNT
};

enum hd_metric_gauge {
    HD_MG_IN_FLIGHT,     /* requests in flight (add +1 / -1) */
    HD_MG_BREAKERS_OPEN, /* hosts whose circuit breaker is open (set by the policy code) */
    HD_MG_HOSTS_DEAD,    /* hosts marked dead */
    HD_MG__COUNT
};

/* Histogram bucket upper bounds in microseconds (the last bucket is +Inf). */
#define HD_METRICS_NBUCKETS 20

struct hd_metrics;
struct hd_mhost;

struct hd_metrics_opts {
    unsigned top_hosts; /* per-host series for this many hosts at most; 0 = none */
};

/* Creates an empty registry. Returns 0 or -ENOMEM. */
int hd_metrics_new(struct hd_metrics **out);
void hd_metrics_free(struct hd_metrics *m); /* NULL ok */

/* Sets how many hosts get per-host series (takes effect at the next scrape). */
void hd_metrics_set_top_hosts(struct hd_metrics *m, unsigned n);

void hd_metrics_add(struct hd_metrics *m, unsigned shard, enum hd_metric_counter c, uint64_t n);
void hd_metrics_observe(struct hd_metrics *m, unsigned shard, enum hd_metric_hist h,
                        uint64_t usec);
void hd_metrics_gauge_add(struct hd_metrics *m, unsigned shard, enum hd_metric_gauge g,
                          int64_t delta);
/* Sets a gauge's value for this shard (the scrape sums shards): for counts a policy module
 * recomputes, such as breakers open in one loop thread. */
void hd_metrics_gauge_set(struct hd_metrics *m, unsigned shard, enum hd_metric_gauge g,
                          int64_t v);

/* Sums of the shards (for tests, progress lines and backpressure). */
uint64_t hd_metrics_counter(struct hd_metrics *m, enum hd_metric_counter c);
int64_t hd_metrics_gauge(struct hd_metrics *m, enum hd_metric_gauge g);

/* The per-host cell for host (lower-case name, < HD_HOST_MAX), created on first use. The
 * pointer stays valid until hd_metrics_free. Returns NULL when m is NULL, on -ENOMEM, or
 * past HD_METRICS_MAX_HOSTS hosts (the host then only counts in the totals). */
struct hd_mhost *hd_metrics_host(struct hd_metrics *m, const char *host);

void hd_mhost_inflight_add(struct hd_mhost *h, int delta);
void hd_mhost_set_window(struct hd_mhost *h, unsigned window);
/* state: HD_BREAKER_CLOSED, _OPEN or _HALF_OPEN of hostpol.h (0, 1, 2) */
void hd_mhost_set_breaker(struct hd_mhost *h, int state);
void hd_mhost_set_dead(struct hd_mhost *h, int dead);
/* Records one finished attempt: outcome (1 done, 2 retry, 3 dead as enum hd_outcome), HTTP
 * status (0 for transport errors), latency, and for failures a short reason (copied; may be
 * NULL). */
void hd_mhost_result(struct hd_mhost *h, int outcome, int status, uint64_t latency_us,
                     const char *error);

/* Estimates the q-quantile (0..1) in microseconds from cumulative-free bucket counts
 * counts[HD_METRICS_NBUCKETS] by linear interpolation inside the bucket. Returns 0 when
 * there are no observations. */
double hd_metrics_quantile_us(const uint64_t *counts, double q);
/* Upper bound of bucket i in microseconds (UINT64_MAX for the last one). */
uint64_t hd_metrics_bucket_bound_us(unsigned i);

#endif

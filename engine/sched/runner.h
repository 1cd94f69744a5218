/* The delivery runner: one io_uring loop thread per core (hosts partitioned by hash), each
 * with its own resolver, HTTP client and signer, plus one committer thread that applies
 * acknowledgements to the store in groups. */
#ifndef HD_RUNNER_H
#define HD_RUNNER_H

#include <stddef.h>
#include <stdint.h>

#include "hostpol.h"
#include "policy.h"
#include "store.h"

struct hd_metrics;
struct hd_run_kick;

/* Per-host operator settings (configuration [host] sections): returns 1 with *max_inflight
 * (0 = default) and *rate (requests/s, 0 = unlimited) set when host has any, else 0. Called
 * from loop threads. */
typedef int (*hd_host_override_cb)(void *user_data, const char *host, unsigned *max_inflight,
                                   double *rate);

struct hd_run_opts {
    int until_idle;
    const char *const *resolve; /* --resolve specs */
    size_t nresolve;
    int allow_private;
    const char *ca_file;
    unsigned threads;             /* loop threads; 0 = one per online CPU */
    unsigned max_inflight_host;   /* unused: see hostpol.win_max (kept for the CLI flag) */
    unsigned max_inflight_thread; /* per-thread cap on leased deliveries; default 8192 */
    unsigned max_active_hosts;    /* per-thread cap on hosts with requests in flight (each
                                   * holds a connection: TLS + HTTP/2 state and buffers); 128 */
    unsigned slow_hosts;          /* per-thread slots for hosts that waited longer than
                                   * slow_after_ms: they leave the max_active_hosts pool to
                                   * healthy hosts; 256 (0: no slow pool) */
    unsigned slow_after_ms;       /* a host with no answer for this long since it took its
                                   * slot, or since its last answer, is slow; 500 */
    unsigned scan_interval_ms;    /* each loop thread rescans the host records for new work
                                   * this often (a wake-up through kick rescans sooner);
                                   * 0 = 250 ms (HOST_SCAN_INTERVAL_MS) */
    unsigned idle_timeout_ms;     /* idle connections closed after; default 10000 */
    unsigned max_idle_conns;      /* idle connections kept per loop thread, the oldest idle
                                   * closed first; 0 = no cap but the time-out; default 4096 */
    size_t max_idle_memory;       /* estimated memory of idle connections for the whole run
                                   * (split evenly between the loop threads; http_types.h
                                   * gives the estimate per connection), the oldest idle
                                   * closed first, never-reused ones before the others, which
                                   * hold 1/8 of it at most; 0 = no cap by memory; default
                                   * 256 MiB */
    size_t tls_sessions;          /* resumable TLS sessions kept (shared by the threads, saved
                                   * in the store); 0 = HD_TLS_CACHE_MAX_DEFAULT (32,768) */
    unsigned connect_timeout_ms, tls_timeout_ms, response_timeout_ms;
    unsigned commit_interval_ms;  /* group-commit interval; default 5 */
    unsigned commit_batch;        /* acks per group at most; default 4096 */
    unsigned commit_gap_ms;       /* at least this long between the starts of two group
                                   * commits (0: none); default 0 */
    struct hd_retry_policy retry;
    uint64_t day_ms;              /* length of a day for dead-host counting (tests shrink it) */
    uint32_t dead_days;           /* distinct failing days with no success => dead; default 7 */
    uint64_t max_age_ms;          /* deliveries older than this become dead letters; 7 days */
    int dead_queue_expire;        /* dead host: 0 keep its queue (default), 1 expire it into dead
                                   * letters as it is scanned (its daily probe still goes) */
    struct hd_hostpol_cfg hostpol; /* windows, breaker, probes, Retry-After cap */
    int progress;                 /* print progress lines to stderr every second */
    unsigned key_cache;           /* parsed signing keys kept per loop thread (least recently
                                   * used evicted; one is loaded again from the store when
                                   * needed); 0 = HD_SIGNER_MAX_KEYS_DEFAULT (10,000) */
    const char *user_agent;
    /* FEP-8fcf Collection-Synchronization on followers-only Creates: the url template
     * ({actor}, {actor_enc} = percent-encoded) of the partial followers list the platform
     * serves; NULL or "" sends no header. The followers collection's template (the header's
     * collectionId, and what marks a Create followers-only); NULL: "{actor}/followers". */
    const char *collection_sync_url;
    const char *collection_sync_followers;
    /* Operations (engine/ops/daemon.c). All optional: zero means off or the default. */
    struct hd_metrics *metrics;   /* counters, histograms, per-host cells */
    unsigned drain_timeout_ms;    /* after stop: wait for in-flight requests; 0 = 10 s */
    hd_host_override_cb host_override; /* operator max_inflight / rate per host */
    void *host_override_ud;
    const _Atomic unsigned *override_gen; /* changes when overrides change: re-read them */
    /* Cluster mode (engine/cluster/): asked from loop threads before a delivery to host is
     * dispatched (sending 0) and again right before its request is written (sending 1).
     * Returns 1 when this node may send to host now; 0 drops the delivery from this node's
     * queue (the partition's owner delivers it). NULL: every host may be sent to. */
    int (*host_gate)(void *user_data, const char *host, int sending);
    void *host_gate_ud;
    /* New work committed in this process (the ingest endpoint) wakes the loop threads through
     * this, so they look for it at once instead of at their next rescan of the hosts (every
     * scan_interval_ms, 250 ms by default). NULL: the rescan only. Borrowed; must outlive
     * hd_run. */
    struct hd_run_kick *kick;
};

void hd_run_opts_default(struct hd_run_opts *o);

/* A wake-up for the loop threads of a run in this process (hd_run_opts.kick). hd_run_kick
 * may be called from any thread, with or without a run going: a run started later looks for
 * work at its start anyway. */
int hd_run_kick_new(struct hd_run_kick **out);
void hd_run_kick_free(struct hd_run_kick *k);
void hd_run_kick(struct hd_run_kick *k);

struct hd_run_summary {
    uint64_t done, retried, dead, attempts;
    double seconds, cpu_seconds;
    long max_rss_kb;
    /* Signing as measured inside the run: signatures made, and the CPU time they took
     * (thread CPU time of one signature in four, scaled up), so that a run's CPU per
     * delivery can be set against the sign time of the same process in the same run. */
    uint64_t signs;
    double sign_cpu_seconds;
};

/* Runs deliveries until stopped (a signal handler sets *stop: a lock-free atomic, safe to
 * store from one) or, with until_idle, until nothing is due or in flight. Takes the store's
 * run lock, which the store handle keeps until hd_store_close. Returns 0, HD_ERR_BUSY
 * (another run holds the store) or an error; a start that fails (a thread that cannot be
 * created, no memory) sends nothing and leaves the store's crash mark as it found it. */
int hd_run(struct hd_store *st, const struct hd_run_opts *o, _Atomic int *stop,
           struct hd_run_summary *sum);

#endif

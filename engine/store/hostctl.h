/* Operator controls per host, the runner's live view and dead letters.
 *
 * hostctl: what operators set (pause, in-flight cap, rate limit, reset). The CLI writes it;
 *          a running engine polls hd_hostctl_generation once a second and reloads every
 *          record (hd_hostctl_foreach) when it moved, so a change applies within a second.
 * live:    what a running engine reports once a second per active host (window, in flight,
 *          throughput, latency, breaker, dead). Readers ignore records older than 5 s.
 * dead:    dead letters (acknowledgements write them, ack.c): listing, retry (back into the
 *          queue with attempts reset) and purge.
 * Gone followers (gone.h) are declared here too, for the commands that list them.
 */
#ifndef HD_HOSTCTL_H
#define HD_HOSTCTL_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "errclass.h"
#include "gone.h"
#include "store.h"

struct hd_hostctl {
    int paused;            /* 1: lease nothing for this host (in-flight requests finish) */
    uint32_t max_inflight; /* cap on requests in flight; 0 = the engine's default */
    uint64_t rate_milli;   /* requests per second x 1000 (token bucket); 0 = no limit */
    uint64_t reset_gen;    /* bumped by `host reset`: forget breaker, failures, dead state */
};

struct hd_live {
    uint32_t in_flight, window;
    uint64_t ok_per_s_milli; /* successful deliveries per second x 1000 */
    uint32_t p50_ms, p99_ms; /* response latency */
    int breaker;             /* HD_BREAKER_* (hostpol.h): 0 closed, 1 open, 2 half-open */
    int dead;                /* 1: the host is dead (no deliveries attempted) */
    uint64_t updated_ms;     /* wall clock ms of this report */
};

#define HD_LIVE_FRESH_MS 5000 /* live records older than this are not shown */

/* Reads host's controls; an absent record gives the defaults (all zero). Returns 0 or a
 * store error. */
int hd_hostctl_get(struct hd_store *st, struct hd_txn *txn, const char *host, struct hd_hostctl *out);
/* Writes host's controls (a record equal to the defaults is deleted) and bumps the
 * generation. Returns 0, HD_ERR_INVALID (empty or too long host) or a store error. */
int hd_hostctl_put(struct hd_store *st, struct hd_txn *txn, const char *host,
                   const struct hd_hostctl *in);
/* Bumped by every hd_hostctl_put, by hd_dead_retry when it requeued something (a running
 * engine should then rescan its hosts' queues) and by hd_hostctl_touch; 0 when never
 * written. */
uint64_t hd_hostctl_generation(struct hd_store *st, struct hd_txn *txn);
/* Bumps the generation without changing any host's controls. Returns 0 or a store error. */
int hd_hostctl_touch(struct hd_store *st, struct hd_txn *txn);
typedef int (*hd_hostctl_cb)(const char *host, const struct hd_hostctl *c, void *user_data);
/* Visits every host with a record (hosts absent have the defaults); cb nonzero stops. */
int hd_hostctl_foreach(struct hd_store *st, struct hd_txn *txn, hd_hostctl_cb cb, void *user_data);

int hd_live_put(struct hd_store *st, struct hd_txn *txn, const char *host, const struct hd_live *l);
/* Returns 0, HD_ERR_NOT_FOUND or a store error. */
int hd_live_get(struct hd_store *st, struct hd_txn *txn, const char *host, struct hd_live *out);
/* Deletes host's live record (an engine stopping may clear what it reported). */
int hd_live_del(struct hd_store *st, struct hd_txn *txn, const char *host);

/* The host's failures by class (errclass.h), as the running engine last reported them (only
 * when they changed): kept beside the live record, and read at any later time, since the
 * windows count from the reader's clock. Returns 0, HD_ERR_NOT_FOUND, HD_ERR_SCHEMA (a
 * record of another layout) or a store error. hd_live_del deletes it too. */
int hd_live_err_put(struct hd_store *st, struct hd_txn *txn, const char *host,
                    const struct hd_errwin *w);
int hd_live_err_get(struct hd_store *st, struct hd_txn *txn, const char *host,
                    struct hd_errwin *out);

/* `host reset`: bumps reset_gen (a running engine forgets its breaker and failure state for
 * the host) and clears the persisted failure fields of the host record (failures, last
 * error and status, failing days, dead or gone). Returns 0 or a store error. */
int hd_host_reset(struct hd_store *st, struct hd_txn *txn, const char *host);

/* ---- dead letters */

struct hd_dead_view {
    const char *host; /* NUL-terminated, borrowed */
    uint64_t seq;
    uint32_t idx;
    struct hd_slice inbox, error, body; /* borrowed from txn; body may be empty */
    uint32_t attempts;
    uint64_t at_ms, enqueued_ms;
    int status;
};
/* The dead-letter reason of deliveries a rules change (a suspend, allowlist mode) took out of
 * the queue (hd_qview_block_host): hd_dead_retry puts them back once the host is allowed. */
#define HD_DEAD_BLOCKED "blocked"
typedef int (*hd_dead_cb)(const struct hd_dead_view *d, void *user_data);
/* Visits dead letters in key order: all, or host's only (host non-NULL). */
int hd_dead_foreach(struct hd_store *st, struct hd_txn *txn, const char *host, hd_dead_cb cb,
                    void *user_data);
/* Moves dead letters (all, or host's) back into the queue with attempts reset, due now.
 * Fixes host records (queued +1, failed -1) and counters (failed -1; dropped -1 for letters
 * a rules change made, reason HD_DEAD_BLOCKED). A dead letter keeps
 * its activity's body alive (ack.c), so it can be sent again; one whose host the current
 * rules refuse, or whose body is gone (written before letters held bodies), stays and is
 * counted in *skipped. Returns 0 or a store error. */
int hd_dead_retry(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c, const char *host,
                  uint64_t now_ms, uint64_t *moved, uint64_t *skipped);
/* Deletes dead letters (all, or host's), releasing their activity bodies (the last
 * reference drops a body). Counters keep counting them as failed. */
int hd_dead_purge(struct hd_store *st, struct hd_txn *txn, const char *host, uint64_t *purged);

#endif

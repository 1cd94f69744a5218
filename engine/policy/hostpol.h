/* Per-host sending policy, as a pure state machine (no I/O, no clock of its own) so it can
 * be tested exactly: the adaptive window (AIMD), the operator's rate limit (token bucket) and
 * pause, host-wide Retry-After, the circuit breaker, and dead-host probing.
 *
 * The window starts at cfg.win_init, grows by one per window's worth of successes
 * (additive increase, as TCP congestion avoidance), and halves on timeouts, 429 and 503 at
 * most once per cfg.decrease_gap_ms (multiplicative decrease), within [1, cap]. Postfix does
 * the same for destination concurrency; a fixed pool (Mastodon, Misskey) cannot adapt.
 *
 * The breaker opens after cfg.breaker_threshold host-level failures in a row (transport,
 * TLS, 5xx); while open nothing is sent, so queued deliveries keep their retry budget.
 * After probe_ms one probe goes out (half-open); its success closes the breaker, its failure
 * reopens it with probe_ms doubled up to cfg.probe_max_ms. */
#ifndef HD_HOSTPOL_H
#define HD_HOSTPOL_H

#include <stdint.h>

struct hd_hostpol_cfg {
    unsigned win_init;          /* default 4 */
    unsigned win_max;           /* operator cap, default 64 */
    unsigned breaker_threshold; /* default 5 */
    uint64_t probe_base_ms;     /* default 30 s */
    uint64_t probe_max_ms;      /* default 30 min */
    uint64_t decrease_gap_ms;   /* default 1 s */
    uint64_t retry_after_cap_ms; /* default 6 h */
    uint64_t dead_probe_ms;     /* probe interval for dead hosts; default one day */
};

void hd_hostpol_cfg_default(struct hd_hostpol_cfg *c);

enum { HD_BREAKER_CLOSED = 0, HD_BREAKER_OPEN = 1, HD_BREAKER_HALF_OPEN = 2 };

struct hd_hostpol {
    double cwnd;
    unsigned cap;          /* min(cfg.win_max, operator max_inflight) */
    double rate;           /* operator requests/s; 0 = unlimited */
    double tokens;
    uint64_t tokens_ms;
    uint64_t pause_until;  /* Retry-After applied to the whole host */
    int paused;            /* operator pause */
    int breaker;
    unsigned consec_fail;
    uint64_t probe_ms;     /* current probe interval */
    uint64_t open_until;
    int dead;              /* persisted dead/gone state: only probes go out */
    uint64_t next_dead_probe;
    uint64_t last_decrease;
    int probe_inflight;
};

void hd_hostpol_init(struct hd_hostpol *p, const struct hd_hostpol_cfg *c, uint64_t now_ms);

/* Current window (>= 1, <= cap). */
unsigned hd_hostpol_window(const struct hd_hostpol *p);

/* May one more request go out now, with `inflight` already in flight? Returns 1, or 0 with
 * *wake_ms set to when to ask again (0: only when something completes). */
int hd_hostpol_may_send(struct hd_hostpol *p, const struct hd_hostpol_cfg *c, uint64_t now_ms,
                        unsigned inflight, uint64_t *wake_ms);

/* Nonzero while the policy sends nothing to the host whatever its window: operator pause,
 * Retry-After pause, open breaker before its probe time, dead host before its probe time. */
int hd_hostpol_held(const struct hd_hostpol *p, uint64_t now_ms);

/* Records that a request went out (consumes a token, marks a probe). */
void hd_hostpol_sent(struct hd_hostpol *p, uint64_t now_ms);
/* A request counted by hd_hostpol_sent did not go out after all (it failed locally before
 * it was written): its probe slot is free again. The token stays spent. */
void hd_hostpol_unsent(struct hd_hostpol *p);

/* Signals an answer carries for the host (the table in policy.c maps answers to them). */
enum hd_host_signal {
    HD_SIG_OK = 1,        /* 2xx */
    HD_SIG_NEUTRAL = 2,   /* an answer that says nothing of host health (4xx other than 429) */
    HD_SIG_SLOW_DOWN = 3, /* 429 or 503, or a timeout: shrink the window */
    HD_SIG_FAIL = 4,      /* transport/TLS failure or 5xx: counts for the breaker */
    HD_SIG_FAIL_SLOW = 5, /* both (503, timeouts) */
};

/* Records an answer. retry_after_ms > 0 pauses the whole host that long (capped). */
void hd_hostpol_result(struct hd_hostpol *p, const struct hd_hostpol_cfg *c, uint64_t now_ms,
                       enum hd_host_signal sig, uint64_t retry_after_ms);

/* Operator controls: max_inflight 0 = cfg default; rate 0 = unlimited. */
void hd_hostpol_set(struct hd_hostpol *p, const struct hd_hostpol_cfg *c, unsigned max_inflight,
                    double rate, int paused);
/* Operator reset: closes the breaker, clears failures and the dead state. */
void hd_hostpol_reset(struct hd_hostpol *p, const struct hd_hostpol_cfg *c, uint64_t now_ms);
/* Marks the host dead (or alive); dead hosts get one probe per cfg.dead_probe_ms. */
void hd_hostpol_set_dead(struct hd_hostpol *p, const struct hd_hostpol_cfg *c, int dead,
                         uint64_t now_ms);

#endif

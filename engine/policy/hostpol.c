#include "hostpol.h"

void hd_hostpol_cfg_default(struct hd_hostpol_cfg *c)
{
    c->win_init = 4;
    c->win_max = 64;
    c->breaker_threshold = 5;
    c->probe_base_ms = 30 * 1000;
    c->probe_max_ms = 30 * 60 * 1000;
    c->decrease_gap_ms = 1000;
    c->retry_after_cap_ms = 6 * 3600 * 1000ull;
    c->dead_probe_ms = 86400 * 1000ull;
}

void hd_hostpol_init(struct hd_hostpol *p, const struct hd_hostpol_cfg *c, uint64_t now_ms)
{
    *p = (struct hd_hostpol){0};
    p->cap = c->win_max ? c->win_max : 1;
    p->cwnd = c->win_init < p->cap ? c->win_init : p->cap;
    if (p->cwnd < 1)
        p->cwnd = 1;
    p->probe_ms = c->probe_base_ms;
    p->tokens_ms = now_ms;
}

unsigned hd_hostpol_window(const struct hd_hostpol *p)
{
    unsigned w = (unsigned)p->cwnd;
    if (w > p->cap)
        w = p->cap;
    return w ? w : 1;
}

static void refill_tokens(struct hd_hostpol *p, uint64_t now_ms)
{
    double burst = p->rate < 1 ? 1 : p->rate;
    if (now_ms > p->tokens_ms) {
        p->tokens += (double)(now_ms - p->tokens_ms) * p->rate / 1000.0;
        if (p->tokens > burst)
            p->tokens = burst;
    }
    p->tokens_ms = now_ms;
}

int hd_hostpol_may_send(struct hd_hostpol *p, const struct hd_hostpol_cfg *c, uint64_t now_ms,
                        unsigned inflight, uint64_t *wake_ms)
{
    *wake_ms = 0;
    if (p->paused)
        return 0;
    if (now_ms < p->pause_until) {
        *wake_ms = p->pause_until;
        return 0;
    }
    if (p->dead) {
        /* Dead or gone: one probe at a time, once per dead_probe_ms. */
        if (inflight || p->probe_inflight)
            return 0;
        if (now_ms < p->next_dead_probe) {
            *wake_ms = p->next_dead_probe;
            return 0;
        }
    } else if (p->breaker == HD_BREAKER_OPEN) {
        if (now_ms < p->open_until) {
            *wake_ms = p->open_until;
            return 0;
        }
        if (inflight)
            return 0; /* wait for stragglers before probing */
        p->breaker = HD_BREAKER_HALF_OPEN;
    }
    if (p->breaker == HD_BREAKER_HALF_OPEN && (inflight || p->probe_inflight))
        return 0;
    if (inflight >= hd_hostpol_window(p))
        return 0;
    if (p->rate > 0) {
        refill_tokens(p, now_ms);
        if (p->tokens < 1.0) {
            *wake_ms = now_ms + (uint64_t)((1.0 - p->tokens) * 1000.0 / p->rate) + 1;
            return 0;
        }
    }
    (void)c;
    return 1;
}

int hd_hostpol_held(const struct hd_hostpol *p, uint64_t now_ms)
{
    if (p->paused || now_ms < p->pause_until)
        return 1;
    if (p->dead)
        return p->probe_inflight || now_ms < p->next_dead_probe;
    if (p->breaker == HD_BREAKER_OPEN)
        return now_ms < p->open_until;
    return p->breaker == HD_BREAKER_HALF_OPEN && p->probe_inflight;
}

void hd_hostpol_sent(struct hd_hostpol *p, uint64_t now_ms)
{
    if (p->rate > 0) {
        refill_tokens(p, now_ms);
        p->tokens -= 1.0;
    }
    if (p->dead || p->breaker == HD_BREAKER_HALF_OPEN)
        p->probe_inflight = 1;
}

void hd_hostpol_unsent(struct hd_hostpol *p)
{
    p->probe_inflight = 0;
}

static void open_breaker(struct hd_hostpol *p, const struct hd_hostpol_cfg *c, uint64_t now_ms)
{
    p->breaker = HD_BREAKER_OPEN;
    p->open_until = now_ms + p->probe_ms;
    p->probe_ms *= 2;
    if (p->probe_ms > c->probe_max_ms)
        p->probe_ms = c->probe_max_ms;
}

void hd_hostpol_result(struct hd_hostpol *p, const struct hd_hostpol_cfg *c, uint64_t now_ms,
                       enum hd_host_signal sig, uint64_t retry_after_ms)
{
    int was_probe = p->probe_inflight;

    p->probe_inflight = 0;
    if (retry_after_ms > 0) {
        uint64_t d =
            retry_after_ms > c->retry_after_cap_ms ? c->retry_after_cap_ms : retry_after_ms;
        if (now_ms + d > p->pause_until)
            p->pause_until = now_ms + d;
    }
    if (sig == HD_SIG_SLOW_DOWN || sig == HD_SIG_FAIL_SLOW) {
        if (now_ms >= p->last_decrease + c->decrease_gap_ms) {
            p->cwnd /= 2;
            if (p->cwnd < 1)
                p->cwnd = 1;
            p->last_decrease = now_ms;
        }
    }
    if (sig == HD_SIG_FAIL || sig == HD_SIG_FAIL_SLOW) {
        p->consec_fail++;
        if (p->dead) {
            p->next_dead_probe = now_ms + c->dead_probe_ms;
        } else if (p->breaker == HD_BREAKER_HALF_OPEN ||
                   (p->breaker == HD_BREAKER_CLOSED && p->consec_fail >= c->breaker_threshold)) {
            open_breaker(p, c, now_ms);
        }
        return;
    }
    if (sig == HD_SIG_OK || sig == HD_SIG_NEUTRAL) {
        /* Any real answer proves the host is up: close the breaker. Only 2xx grows the
         * window. A success also revives a dead host (the store agrees: hd_queue_apply). */
        p->consec_fail = 0;
        if (p->breaker != HD_BREAKER_CLOSED) {
            p->breaker = HD_BREAKER_CLOSED;
            p->probe_ms = c->probe_base_ms;
        }
        if (sig == HD_SIG_OK) {
            p->dead = 0;
            if (p->cwnd < p->cap)
                p->cwnd += 1.0 / p->cwnd;
        } else if (p->dead && was_probe) {
            p->next_dead_probe = now_ms + c->dead_probe_ms;
        }
    }
}

void hd_hostpol_set(struct hd_hostpol *p, const struct hd_hostpol_cfg *c, unsigned max_inflight,
                    double rate, int paused)
{
    p->cap = max_inflight ? max_inflight : (c->win_max ? c->win_max : 1);
    if (p->cwnd > p->cap)
        p->cwnd = p->cap;
    if (rate != p->rate)
        p->tokens = rate > 0 ? 1 : 0;
    p->rate = rate > 0 ? rate : 0;
    p->paused = paused;
}

void hd_hostpol_reset(struct hd_hostpol *p, const struct hd_hostpol_cfg *c, uint64_t now_ms)
{
    p->breaker = HD_BREAKER_CLOSED;
    p->consec_fail = 0;
    p->probe_ms = c->probe_base_ms;
    p->dead = 0;
    p->pause_until = 0;
    p->probe_inflight = 0;
    (void)now_ms;
}

void hd_hostpol_set_dead(struct hd_hostpol *p, const struct hd_hostpol_cfg *c, int dead,
                         uint64_t now_ms)
{
    if (dead && !p->dead)
        p->next_dead_probe = now_ms + c->dead_probe_ms;
    p->dead = dead;
}

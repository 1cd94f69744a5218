/* The per-host policy state machine, with an explicit clock. */
#include "err.h"
#include "hostpol.h"
#include "t.h"

static struct hd_hostpol_cfg cfg(void)
{
    struct hd_hostpol_cfg c;
    hd_hostpol_cfg_default(&c);
    c.probe_base_ms = 1000;
    c.probe_max_ms = 8000;
    c.dead_probe_ms = 60000;
    return c;
}

int main(void)
{
    struct hd_hostpol_cfg c = cfg();
    struct hd_hostpol p;
    uint64_t wake, now = 1000000;

    /* window: starts at 4, grows by ~1 per window of successes, halves on 429 once per gap */
    hd_hostpol_init(&p, &c, now);
    T_EQ_INT(hd_hostpol_window(&p), 4);
    T_EQ_INT(hd_hostpol_may_send(&p, &c, now, 3, &wake), 1);
    T_EQ_INT(hd_hostpol_may_send(&p, &c, now, 4, &wake), 0);
    T_EQ_INT(wake, 0);
    for (int i = 0; i < 4; i++)
        hd_hostpol_result(&p, &c, now, HD_SIG_OK, 0);
    T_EQ_INT(hd_hostpol_window(&p), 4); /* 4 + 4 * ~1/4.x < 5 */
    for (int i = 0; i < 2; i++)
        hd_hostpol_result(&p, &c, now, HD_SIG_OK, 0);
    T_EQ_INT(hd_hostpol_window(&p), 5);
    for (int i = 0; i < 200; i++)
        hd_hostpol_result(&p, &c, now, HD_SIG_OK, 0);
    unsigned big = hd_hostpol_window(&p);
    T_OK(big >= 18 && big <= 22);
    hd_hostpol_result(&p, &c, now, HD_SIG_SLOW_DOWN, 0);
    T_OK(hd_hostpol_window(&p) == big / 2 || hd_hostpol_window(&p) == (big + 1) / 2);
    unsigned half = hd_hostpol_window(&p);
    hd_hostpol_result(&p, &c, now + 10, HD_SIG_SLOW_DOWN, 0); /* within the gap: no change */
    T_EQ_INT(hd_hostpol_window(&p), half);
    hd_hostpol_result(&p, &c, now + 1000, HD_SIG_FAIL_SLOW, 0);
    T_EQ_INT(hd_hostpol_window(&p), half / 2);
    for (int i = 0; i < 20; i++)
        hd_hostpol_result(&p, &c, now + 5000 + (uint64_t)i * 1000, HD_SIG_SLOW_DOWN, 0);
    T_EQ_INT(hd_hostpol_window(&p), 1); /* never below one */

    /* operator cap bounds the window */
    hd_hostpol_init(&p, &c, now);
    hd_hostpol_set(&p, &c, 2, 0, 0);
    T_EQ_INT(hd_hostpol_window(&p), 2);
    for (int i = 0; i < 100; i++)
        hd_hostpol_result(&p, &c, now, HD_SIG_OK, 0);
    T_EQ_INT(hd_hostpol_window(&p), 2);

    /* Retry-After pauses the whole host; never sends before it */
    hd_hostpol_init(&p, &c, now);
    T_EQ_INT(hd_hostpol_held(&p, now), 0);
    hd_hostpol_result(&p, &c, now, HD_SIG_SLOW_DOWN, 3000);
    T_EQ_INT(hd_hostpol_held(&p, now + 2999), 1);
    T_EQ_INT(hd_hostpol_held(&p, now + 3000), 0);
    T_EQ_INT(hd_hostpol_may_send(&p, &c, now + 2999, 0, &wake), 0);
    T_EQ_INT(wake, now + 3000);
    T_EQ_INT(hd_hostpol_may_send(&p, &c, now + 3000, 0, &wake), 1);
    /* capped */
    hd_hostpol_result(&p, &c, now, HD_SIG_SLOW_DOWN, 100ull * 3600 * 1000);
    T_EQ_INT(p.pause_until, now + c.retry_after_cap_ms);

    /* rate limit: 2 requests/s */
    hd_hostpol_init(&p, &c, now);
    hd_hostpol_set(&p, &c, 0, 2.0, 0);
    T_EQ_INT(hd_hostpol_may_send(&p, &c, now, 0, &wake), 1);
    hd_hostpol_sent(&p, now);
    T_EQ_INT(hd_hostpol_may_send(&p, &c, now, 1, &wake), 0);
    T_OK(wake >= now + 499 && wake <= now + 502);
    T_EQ_INT(hd_hostpol_may_send(&p, &c, now + 500, 1, &wake), 1);

    /* operator pause */
    hd_hostpol_set(&p, &c, 0, 0, 1);
    T_EQ_INT(hd_hostpol_may_send(&p, &c, now + 10000, 0, &wake), 0);
    hd_hostpol_set(&p, &c, 0, 0, 0);
    T_EQ_INT(hd_hostpol_may_send(&p, &c, now + 10000, 0, &wake), 1);

    /* breaker: 5 host failures in a row open it; neutral answers reset the count */
    hd_hostpol_init(&p, &c, now);
    for (int i = 0; i < 4; i++)
        hd_hostpol_result(&p, &c, now, HD_SIG_FAIL, 0);
    hd_hostpol_result(&p, &c, now, HD_SIG_NEUTRAL, 0);
    for (int i = 0; i < 4; i++)
        hd_hostpol_result(&p, &c, now, HD_SIG_FAIL, 0);
    T_EQ_INT(p.breaker, HD_BREAKER_CLOSED);
    hd_hostpol_result(&p, &c, now, HD_SIG_FAIL, 0);
    T_EQ_INT(p.breaker, HD_BREAKER_OPEN);
    T_EQ_INT(hd_hostpol_held(&p, now + 999), 1);
    T_EQ_INT(hd_hostpol_held(&p, now + 1000), 0);
    T_EQ_INT(hd_hostpol_may_send(&p, &c, now + 999, 0, &wake), 0);
    T_EQ_INT(wake, now + 1000);
    /* half-open: exactly one probe */
    T_EQ_INT(hd_hostpol_may_send(&p, &c, now + 1000, 0, &wake), 1);
    hd_hostpol_sent(&p, now + 1000);
    T_EQ_INT(hd_hostpol_may_send(&p, &c, now + 1000, 1, &wake), 0);
    /* the probe fails: open again for twice as long */
    hd_hostpol_result(&p, &c, now + 1100, HD_SIG_FAIL, 0);
    T_EQ_INT(p.breaker, HD_BREAKER_OPEN);
    T_EQ_INT(p.open_until, now + 1100 + 2000);
    T_EQ_INT(hd_hostpol_may_send(&p, &c, now + 3099, 0, &wake), 0);
    T_EQ_INT(hd_hostpol_may_send(&p, &c, now + 3100, 0, &wake), 1);
    hd_hostpol_sent(&p, now + 3100);
    hd_hostpol_result(&p, &c, now + 3200, HD_SIG_OK, 0);
    T_EQ_INT(p.breaker, HD_BREAKER_CLOSED);
    T_EQ_INT(p.probe_ms, 1000);
    T_EQ_INT(hd_hostpol_may_send(&p, &c, now + 3200, 0, &wake), 1);

    /* dead host: one probe per dead_probe_ms; a success revives it */
    hd_hostpol_init(&p, &c, now);
    hd_hostpol_set_dead(&p, &c, 1, now);
    T_EQ_INT(hd_hostpol_may_send(&p, &c, now, 0, &wake), 0);
    T_EQ_INT(wake, now + 60000);
    T_EQ_INT(hd_hostpol_may_send(&p, &c, now + 60000, 0, &wake), 1);
    hd_hostpol_sent(&p, now + 60000);
    T_EQ_INT(hd_hostpol_may_send(&p, &c, now + 60000, 0, &wake), 0);
    hd_hostpol_result(&p, &c, now + 60100, HD_SIG_FAIL, 0);
    T_EQ_INT(hd_hostpol_may_send(&p, &c, now + 60200, 0, &wake), 0);
    T_EQ_INT(wake, now + 120100);
    T_EQ_INT(hd_hostpol_may_send(&p, &c, now + 120100, 0, &wake), 1);
    hd_hostpol_sent(&p, now + 120100);
    hd_hostpol_result(&p, &c, now + 120200, HD_SIG_OK, 0);
    T_EQ_INT(p.dead, 0);
    hd_hostpol_set_dead(&p, &c, 1, now);
    hd_hostpol_reset(&p, &c, now);
    T_EQ_INT(p.dead, 0);

    T_DONE();
}

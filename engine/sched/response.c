/* An answer (or a failure) to one request: the classification table (policy.c) gives the
 * verdict, and this applies it to the host (policy, scheme, latency), to the delivery
 * (acknowledgement) and to the metrics. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "errclass.h"
#include "hostpol.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "sched_impl.h"

static uint32_t xrand(struct sthread *th)
{
    uint32_t x = th->rnd;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    th->rnd = x;
    return x;
}

/* Counts a failed attempt by class for the host (5-minute and 1-hour windows, published
 * with its live report) and says so at warn, rate-limited per host (log.h). */
static void count_failure(struct shost *h, const struct hd_http_resp *r, const char *error)
{
    int cls = hd_errclass_of(r->status, r->error);

    if (cls < 0)
        return;
    if (!h->err)
        h->err = calloc(1, sizeof(*h->err)); /* without memory: logged, not counted */
    if (h->err) {
        hd_errwin_add(h->err, cls, hd_wall_ms());
        h->err_dirty = 1;
    }
    /* Its own budget per host (the host name and "/fail" as the key), so that these lines
     * never use up the one for breaker and dead-host warnings. */
    if (HD_LOG_WARN <= atomic_load_explicit(&hd_log_level, memory_order_relaxed)) {
        char key[HD_HOST_MAX + 8];
        unsigned dropped;
        snprintf(key, sizeof(key), "%s/fail", h->name);
        char sup[32] = "";
        if (hd_log_ratelimit(key, &dropped)) {
            if (dropped)
                snprintf(sup, sizeof(sup), " suppressed=%u", dropped);
            HD_LOG(HD_LOG_WARN, "sched",
                   "msg=\"delivery failed\" class=%s status=%d err=\"%s\" host=%s%s",
                   hd_errclass_name(cls), r->status, error, h->name, sup);
        }
    }
}

static uint64_t local_failing_ms(const struct shost *h)
{
    uint64_t now = hd_wall_ms();
    return h->local_fail_since && now > h->local_fail_since ? now - h->local_fail_since : 0;
}

/* A passing local failure: the delivery goes back untouched (RELEASE) and its host looks again
 * after retry_ms, or, once the host's local failures have lasted, it is acknowledged as an
 * attempt (RETRY, or DEAD after the last). Without memory for that acknowledgement it goes
 * back untouched as well. */
static void apply_passing(struct sthread *th, struct sdel *d, const struct hd_verdict *v)
{
    struct shost *h = d->host;
    uint64_t now = hd_wall_ms(), due = now + HD_POLICY_LOCAL_RETRY_MS;
    struct hd_ack *a = NULL;

    if (!h->local_fail_since)
        h->local_fail_since = now;
    if (v->kind == HD_VERDICT_RETRY) {
        due = now + v->retry_ms;
        a = hd_sched_ack(th, d, HD_ACK_RETRY, 0, due, v->error);
    } else if (v->kind == HD_VERDICT_DEAD) {
        a = hd_sched_ack(th, d, HD_ACK_DEAD, 0, 0, v->error);
    }
    HD_LOG_HOST(HD_LOG_WARN, "sched", h->name,
                "msg=\"local failure before sending: %s\" err=\"%s\"",
                !a                               ? "delivery put back, tried again in 1 s"
                : v->kind == HD_VERDICT_RETRY ? "counted as an attempt"
                                                 : "dead letter",
                v->error);
    if (!a) {
        hd_sched_release(th, d);
        due = now + HD_POLICY_LOCAL_RETRY_MS;
    }
    if (!a || v->kind == HD_VERDICT_RETRY)
        hd_sched_retry_due(h, due);
}

void hd_sched_local_failure(struct sthread *th, struct sdel *d, int err)
{
    const struct hd_policy_cfg pcfg = {&th->o->retry, th->o->hostpol.retry_after_cap_ms};
    const struct hd_policy_in in = {
        .err = err,
        .local = 1,
        .local_failing_ms = local_failing_ms(d->host),
        .attempts = d->attempts,
        .now_s = (int64_t)time(NULL),
        .rnd = xrand(th),
    };
    struct hd_verdict v;

    hd_policy_verdict(&pcfg, &in, &v);
    if (!v.passing) { /* not a passing failure after all: the caller decides those */
        if (!hd_sched_ack(th, d, HD_ACK_DEAD, 0, 0, v.error)) {
            hd_sched_release(th, d);
            hd_sched_retry_due(d->host, hd_wall_ms() + HD_POLICY_LOCAL_RETRY_MS);
        }
        return;
    }
    apply_passing(th, d, &v);
}

/* Applies the verdict of the classification table (policy.c) to one answer: the host's
 * policy and scheme, the delivery's acknowledgement, latency and metrics. */
void hd_sched_on_response(const struct hd_http_resp *r, void *user_data)
{
    struct sdel *d = user_data;
    struct shost *h = d->host;
    struct sthread *th = h->th;
    uint64_t now = hd_loop_now_ms(th->loop);
    const struct hd_policy_cfg pcfg = {&th->o->retry, th->o->hostpol.retry_after_cap_ms};
    const struct hd_policy_in in = {
        .status = r->status,
        .err = r->error,
        .retry_after = r->retry_after,
        .accept_signature = r->accept_signature,
        .body = r->body,
        .body_len = r->body_len,
        .attempts = d->attempts,
        .shared = (d->flags & HD_QF_SHARED) != 0,
        .switched = d->switched,
        .local = d->local,
        .local_failing_ms = local_failing_ms(h),
        .scheme = d->scheme,
        .ed = d->ed,
        .now_s = (int64_t)time(NULL),
        .rnd = xrand(th),
    };
    struct hd_verdict v;
    struct hd_ack *a = NULL;

    h->inflight--;
    th->inflight--;
    hd_sched_slot_progress(th, h, now);
    if (!h->inflight) /* its slot (main or slow) is free: the longest-waiting host gets it */
        hd_sched_slot_give(th, h);
    atomic_fetch_sub(&th->n_inflight, 1);
    hd_metrics_gauge_add(th->o->metrics, th->idx, HD_MG_IN_FLIGHT, -1); /* ops */
    hd_mhost_inflight_add(h->mh, -1);

    hd_policy_verdict(&pcfg, &in, &v);
    if (v.unsent)
        hd_hostpol_unsent(&h->pol);
    if (v.passing) {
        apply_passing(th, d, &v);
        return;
    }
    if (v.kind == HD_VERDICT_RELEASE) {
        hd_sched_release(th, d);
        return;
    }
    if (v.host_rfc9421) {
        h->scheme = HD_SCHEME_RFC9421;
        if (v.host_ed25519)
            h->prefer_ed = 1;
    }
    if (v.sig)
        hd_hostpol_result(&h->pol, &th->o->hostpol, now, v.sig, v.pause_ms);
    if (v.host_gone)
        hd_hostpol_set_dead(&h->pol, &th->o->hostpol, 1, now);
    if (v.kind == HD_VERDICT_SWITCH) {
        /* Sent again at once, first in its host's line. */
        d->switched = 1;
        d->scheme = v.scheme;
        d->next = h->ready_head;
        h->ready_head = d;
        if (!h->ready_tail)
            h->ready_tail = d;
        h->nready++;
        hd_sched_runnable(h);
        return;
    }
    if (v.counted) {
        h->lat[h->lat_i] = (uint32_t)(now - d->start_ms);
        h->lat_i = (uint8_t)((h->lat_i + 1) % 32);
        if (h->lat_n < 32)
            h->lat_n++;
    }
    if (v.kind == HD_VERDICT_DONE) {
        h->ok_since++;
        a = hd_sched_ack(th, d, HD_ACK_DONE, r->status, 0, NULL);
        /* Remember the scheme that worked, here and in the store. */
        h->scheme = v.scheme_ok == 1 ? HD_SCHEME_CAVAGE : HD_SCHEME_RFC9421;
        if (v.scheme_ok >= 2)
            h->prefer_ed = v.scheme_ok == 3;
        if (a)
            a->scheme_ok = v.scheme_ok;
    } else if (v.kind == HD_VERDICT_DEAD) {
        if (v.counted)
            HD_LOG(HD_LOG_DEBUG, "sched", "msg=\"dead letter\" host=%s status=%d err=\"%s\"",
                   h->name, r->status, v.error);
        a = hd_sched_ack(th, d, HD_ACK_DEAD, r->status, 0, v.error);
        if (a && r->body_len && v.counted) {
            a->body_len = (uint16_t)(r->body_len < sizeof(a->body) ? r->body_len : sizeof(a->body));
            memcpy(a->body, r->body, a->body_len);
        }
    } else {
        uint64_t due = hd_wall_ms() + v.retry_ms;
        a = hd_sched_ack(th, d, HD_ACK_RETRY, r->status, due, v.error);
        hd_sched_retry_due(h, due);
    }
    if (a) {
        a->host_fail = v.host_fail;
        a->host_gone = v.host_gone;
        a->follower_gone = v.follower_gone;
        a->reached = v.reached;
    }
    if (v.counted && v.kind != HD_VERDICT_DONE)
        count_failure(h, r, v.error);
    if (v.counted && th->o->metrics) { /* ops */
        uint64_t lat_us = (now - d->start_ms) * 1000;
        hd_metrics_add(th->o->metrics, th->idx,
                       v.kind == HD_VERDICT_DONE   ? HD_MC_DONE
                       : v.kind == HD_VERDICT_DEAD ? HD_MC_DEAD
                                                   : HD_MC_RETRY,
                       1);
        hd_metrics_observe(th->o->metrics, th->idx, HD_MH_LATENCY, lat_us);
        hd_mhost_result(h->mh, (int)v.kind, r->status, lat_us,
                        v.kind == HD_VERDICT_DONE ? NULL : v.error);
        hd_sched_host_metrics(th, h, 1);
    }
    hd_sched_runnable(h);
}

/* Per-host state of a loop thread: the host table, turns (runnable list, active-host slots),
 * timers (retry due, policy wake-up), a host's turn, finding hosts with queued work, operator
 * controls and configuration overrides, and the live per-host reports. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "hostpol.h"
#include "log.h"
#include "metrics.h"
#include "rules.h"
#include "sched_impl.h"
#include "strset.h"

int hd_sched_grow_table(void ***tab, size_t *cap, size_t next_off, uint64_t (*hash)(const void *))
{
    size_t ncap = *cap ? *cap * 2 : 256;
    void **nt = calloc(ncap, sizeof(void *));
    if (!nt)
        return -ENOMEM;
    for (size_t i = 0; i < *cap; i++) {
        void *e = (*tab)[i];
        while (e) {
            void **nextp = (void **)((char *)e + next_off);
            void *n = *nextp;
            size_t b = hash(e) & (ncap - 1);
            *nextp = nt[b];
            nt[b] = e;
            e = n;
        }
    }
    free(*tab);
    *tab = nt;
    *cap = ncap;
    return 0;
}

static uint64_t host_hash(const void *p)
{
    const struct shost *h = p;
    return hd_hash64(h->name, strlen(h->name));
}

static struct shost *host_find(struct sthread *th, const char *name)
{
    if (!th->hosts_cap)
        return NULL;
    struct shost *h = th->hosts[hd_hash64(name, strlen(name)) & (th->hosts_cap - 1)];
    while (h && strcmp(h->name, name) != 0)
        h = h->hnext;
    return h;
}

static void apply_override(struct sthread *th, struct shost *h)
{
    unsigned mi = 0;
    double rate = 0;

    if (!th->o->host_override)
        return;
    /* A host without a [host] section gets the defaults back (its section may be gone). */
    th->o->host_override(th->o->host_override_ud, h->name, &mi, &rate);
    hd_hostpol_set(&h->pol, &th->o->hostpol, mi, rate, h->pol.paused);
}

void hd_sched_reapply_overrides(struct sthread *th)
{
    th->override_gen = atomic_load(th->o->override_gen);
    for (size_t i = 0; i < th->hosts_cap; i++)
        for (struct shost *h = th->hosts[i]; h; h = h->hnext)
            if (!h->has_ctl) /* hosts with controls merge the file in at the next poll */
                apply_override(th, h);
    th->ctl_gen = UINT64_MAX; /* reread the controls: their hosts merge the new file settings */
}

/* Publishes the host's policy state; keeps this thread's breaker/dead gauges in step. */
void hd_sched_host_metrics(struct sthread *th, struct shost *h, int warn)
{
    int br = h->pol.breaker == HD_BREAKER_OPEN, dead = h->pol.dead != 0;

    if (!th->o->metrics)
        return;
    hd_mhost_set_window(h->mh, hd_hostpol_window(&h->pol));
    hd_mhost_set_breaker(h->mh, h->pol.breaker);
    hd_mhost_set_dead(h->mh, dead);
    if (warn && br && !h->m_breaker) /* per-host warnings are rate-limited (log.h) */
        HD_LOG_HOST(HD_LOG_WARN, "sched", h->name, "msg=\"circuit breaker open: host paused\"");
    if (warn && dead && !h->m_dead)
        HD_LOG_HOST(HD_LOG_WARN, "sched", h->name, "msg=\"host marked dead: probes only\"");
    if (br != h->m_breaker)
        hd_metrics_gauge_add(th->o->metrics, th->idx, HD_MG_BREAKERS_OPEN, br ? 1 : -1);
    if (dead != h->m_dead)
        hd_metrics_gauge_add(th->o->metrics, th->idx, HD_MG_HOSTS_DEAD, dead ? 1 : -1);
    h->m_breaker = (int8_t)br;
    h->m_dead = (int8_t)dead;
}

void hd_sched_runnable(struct shost *h)
{
    struct sthread *th = h->th;
    if (h->runnable)
        return;
    h->runnable = 1;
    h->rnext = NULL;
    if (th->run_tail)
        th->run_tail->rnext = h;
    else
        th->run_head = h;
    th->run_tail = h;
}

static void on_host_timer(struct hd_timer *t)
{
    struct shost *h = container_of(t, struct shost, timer);
    /* A skipped retry became due: rescan the host from the start. */
    h->poslen = 0;
    h->exhausted = 0;
    h->idx_check = HD_SCHED_IDX_ALL;
    h->retry_due_wall = 0;
    hd_sched_runnable(h);
}

static void on_host_wake(struct hd_timer *t)
{
    hd_sched_runnable(container_of(t, struct shost, wake));
}

static struct shost *host_get(struct sthread *th, const char *name)
{
    struct shost *h = host_find(th, name);
    size_t b;
    if (h)
        return h;
    if ((th->nhosts + 1) * 2 > th->hosts_cap &&
        hd_sched_grow_table((void ***)&th->hosts, &th->hosts_cap, offsetof(struct shost, hnext),
                            host_hash) != 0)
        return NULL;
    h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    snprintf(h->name, sizeof(h->name), "%s", name);
    h->th = th;
    hd_hostpol_init(&h->pol, &th->o->hostpol, hd_loop_now_ms(th->loop));
    /* ops: operator settings from the configuration, and the host's metrics cell */
    apply_override(th, h);
    h->mh = hd_metrics_host(th->o->metrics, name);
    hd_timer_init(&h->timer, on_host_timer);
    hd_timer_init(&h->wake, on_host_wake);
    b = hd_hash64(name, strlen(name)) & (th->hosts_cap - 1);
    h->hnext = th->hosts[b];
    th->hosts[b] = h;
    th->nhosts++;
    return h;
}

void hd_sched_retry_due(struct shost *h, uint64_t due_wall)
{
    struct sthread *th = h->th;
    uint64_t now_wall = hd_wall_ms(), mono = hd_loop_now_ms(th->loop);
    if (h->retry_due_wall && h->retry_due_wall <= due_wall)
        return;
    h->retry_due_wall = due_wall;
    hd_timer_arm(th->loop, &h->timer, mono + (due_wall > now_wall ? due_wall - now_wall : 0) + 1);
}

/* Dispatches up to `budget` deliveries of host h; returns how many. Bounding the work per
 * turn keeps every host's first requests (and the ring's sends) flowing instead of signing
 * thousands of requests before the first byte leaves. */
unsigned hd_sched_run_host(struct sthread *th, struct shost *h, unsigned budget)
{
    unsigned n = 0;
    uint64_t wake = 0, now = hd_loop_now_ms(th->loop);
    int may = 0, rc;

    /* dead_host_queue = expire: a dead host's deliveries become dead letters (counted as
     * expired) as they come up, instead of waiting for it to revive; its daily probe still
     * goes, with the first delivery due then. No connection is needed for that. */
    if (th->o->dead_queue_expire && h->pol.dead && hd_hostpol_held(&h->pol, now)) {
        while (n < budget) {
            struct sdel *d;
            struct hd_ack *a;
            if (!h->nready)
                hd_sched_refill(th, h);
            if (!(d = h->ready_head))
                break;
            h->ready_head = d->next;
            if (!h->ready_head)
                h->ready_tail = NULL;
            h->nready--;
            d->next = NULL;
            a = hd_sched_ack(th, d, HD_ACK_DEAD, 0, 0,
                             "host dead: queue expired (dead_host_queue)");
            if (!a) {
                hd_sched_local_failure(th, d, -ENOMEM);
                break;
            }
            a->expired = 1;
            n++;
        }
        if (h->ready_head || !h->exhausted)
            hd_sched_runnable(h);
        return n;
    }
    /* Connections cost memory (TLS and HTTP/2 state, buffers): at most max_active_hosts hosts
     * per thread have requests in flight, plus the slow pool (slots.c); others wait their
     * turn in FIFO order. */
    if ((h->nready || !h->exhausted) && hd_sched_slot_wait(th, h))
        return 0;
    if (!h->nready)
        hd_sched_refill(th, h);
    while (h->ready_head && n < budget &&
           (may = hd_hostpol_may_send(&h->pol, &th->o->hostpol, now, h->inflight, &wake))) {
        struct sdel *d = h->ready_head;
        h->ready_head = d->next;
        if (!h->ready_head)
            h->ready_tail = NULL;
        h->nready--;
        d->next = NULL;
        rc = hd_sched_dispatch(th, d);
        if (rc < 0)
            hd_sched_local_failure(th, d, rc);
        n++;
        if (!h->nready)
            hd_sched_refill(th, h);
    }
    /* More to do right away: back of the line, after the other hosts' turns. Held back by
     * the policy: wake up when it says (or when a response frees the window). */
    if (h->ready_head && may)
        hd_sched_runnable(h);
    else if (h->ready_head && wake)
        hd_timer_arm(th->loop, &h->wake, wake);
    return n;
}

/* Finds hosts of this thread with queued deliveries (at start, and whenever new activities
 * have been enqueued since the last look). */
void hd_sched_scan_hosts(struct sthread *th)
{
    struct hd_counters c;
    struct hd_txn *txn = hd_sched_rtxn(th);
    struct hd_host_iter it;
    struct hd_host_rec rec;
    char name[HD_HOST_MAX];

    th->last_scan_ms = hd_loop_now_ms(th->loop);
    if (!txn || hd_counters_get(th->st, txn, &c) != 0)
        return;
    if (c.next_seq == th->last_seq_seen)
        return;
    th->last_seq_seen = c.next_seq;
    if (hd_host_iter_open(th->st, txn, &it) != 0)
        return;
    /* Names only: a thread decodes just the records of the hosts it owns. */
    while (hd_host_iter_next(&it, name, NULL) == 0) {
        if (hd_hash64(name, strlen(name)) % th->nthreads != th->idx)
            continue;
        if (hd_host_iter_rec(&it, &rec) != 0 || rec.queued == 0)
            continue;
        struct shost *h = host_get(th, name);
        if (!h)
            break;
        hd_hostpol_set_dead(&h->pol, &th->o->hostpol, rec.dead != HD_HOST_ALIVE,
                            hd_loop_now_ms(th->loop));
        /* dead hosts count in the metrics from the start, not from their next probe */
        hd_sched_host_metrics(th, h, 0);
        if (rec.scheme) { /* 1 cavage, 2 RFC 9421 + RSA, 3 RFC 9421 + Ed25519 */
            h->scheme = rec.scheme >= 2 ? HD_SCHEME_RFC9421 : HD_SCHEME_CAVAGE;
            h->prefer_ed = rec.scheme == 3;
        }
        h->exhausted = 0;
        h->idx_check = HD_SCHED_IDX_ALL;
        hd_sched_runnable(h);
    }
    hd_host_iter_close(&it);
}

static int on_ctl(const char *host, const struct hd_hostctl *c, void *user_data)
{
    struct sthread *th = user_data;
    struct shost *h;

    if (hd_hash64(host, strlen(host)) % th->nthreads != th->idx)
        return 0;
    h = host_get(th, host);
    if (!h)
        return 0;
    {
        /* Each setting on its own: `herald host set` wins, else the config's [host] section,
         * else the default (docs/operations.md, "Which setting wins"). */
        unsigned mi = 0;
        double rate = 0;
        if (th->o->host_override)
            th->o->host_override(th->o->host_override_ud, h->name, &mi, &rate);
        hd_hostpol_set(&h->pol, &th->o->hostpol, c->max_inflight ? c->max_inflight : mi,
                       c->rate_milli ? (double)c->rate_milli / 1000.0 : rate, c->paused);
    }
    if (c->reset_gen != h->reset_gen) {
        if (th->ctl_loaded) /* a reset issued while we run: forget breaker and dead state */
            hd_hostpol_reset(&h->pol, &th->o->hostpol, hd_loop_now_ms(th->loop));
        h->reset_gen = c->reset_gen;
    }
    h->has_ctl = 1;
    h->ctl_seen = 1;
    hd_sched_runnable(h);
    return 0;
}

/* Live operator controls (`herald host pause|resume|set|reset`) and defederation rules
 * (`herald block ...`, allowlist mode) are written to the store by the CLI; each loop thread
 * looks at their generation counters every CTL_POLL_MS and reloads what moved. */
void hd_sched_poll_controls(struct sthread *th)
{
    struct hd_txn *txn = hd_sched_rtxn(th);
    uint64_t g;

    th->last_ctl_ms = hd_loop_now_ms(th->loop);
    if (!txn)
        return;
    g = hd_rules_generation(th->st, txn);
    if (g != th->rules_gen || !th->ctl_loaded) {
        struct hd_rules *r = NULL;
        if (hd_rules_load(th->st, txn, &r) == 0) {
            hd_rules_free(th->rules);
            th->rules = r;
            th->rules_gen = g;
            /* Hosts now refused drop their leased deliveries at their next turn. */
            for (size_t i = 0; i < th->hosts_cap; i++)
                for (struct shost *h = th->hosts[i]; h; h = h->hnext)
                    if (h->nready)
                        hd_sched_runnable(h);
        }
    }
    g = hd_hostctl_generation(th->st, txn);
    if (g == th->ctl_gen && th->ctl_loaded)
        return;
    for (size_t i = 0; i < th->hosts_cap; i++)
        for (struct shost *h = th->hosts[i]; h; h = h->hnext)
            h->ctl_seen = 0;
    hd_hostctl_foreach(th->st, txn, on_ctl, th);
    /* Controls removed: back to the configured defaults. */
    for (size_t i = 0; i < th->hosts_cap; i++)
        for (struct shost *h = th->hosts[i]; h; h = h->hnext)
            if (h->has_ctl && !h->ctl_seen) {
                h->has_ctl = 0;
                hd_hostpol_set(&h->pol, &th->o->hostpol, 0, 0, 0);
                apply_override(th, h);
                hd_sched_runnable(h);
            }
    /* `dead retry` requeued letters or `queue flush` made retries due now, possibly behind a
     * host's scan position: every host reads its queue again from the start. */
    if (th->ctl_loaded)
        for (size_t i = 0; i < th->hosts_cap; i++)
            for (struct shost *h = th->hosts[i]; h; h = h->hnext) {
                h->poslen = 0;
                h->exhausted = 0;
                h->retry_due_wall = 0;
                hd_sched_runnable(h);
            }
    th->ctl_gen = g;
    th->ctl_loaded = 1;
    th->last_seq_seen = 0; /* look for hosts again, as after an enqueue */
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Hands the committer a snapshot of the hosts that are doing something, for `herald host
 * list`, `stats` and `top` (records older than HD_LIVE_FRESH_MS are not shown). */
/* A host goes into the live report when it is doing something (or, at stop, always). */
static int live_worth(const struct shost *h, int all)
{
    return all || h->inflight || h->nready || h->ok_since || h->pol.breaker != 0 || h->pol.dead ||
           h->err_dirty;
}

void hd_sched_publish_live(struct sthread *th, int all)
{
    uint64_t now = hd_loop_now_ms(th->loop), wall = hd_wall_ms();
    double secs = (double)(now - th->last_live_ms) / 1000.0;
    struct batch *b = NULL;
    size_t cap = 0, n = 0;

    th->last_live_ms = now;
    if (secs <= 0)
        secs = 1;
    /* One pass over the hosts (each visit is a cache miss or two: 20,000 hosts of a fan-out
     * cost milliseconds), the report sized by the hosts worth reporting, not by every host
     * ever seen. Without memory for more, the rest are reported next time. */
    for (size_t i = 0; i < th->hosts_cap; i++)
        for (struct shost *h = th->hosts[i]; h; h = h->hnext) {
            struct live_item *it;
            uint32_t sorted[32];
            /* failures older than an hour count nothing any more: give their memory back */
            if (h->err && !h->err_dirty && hd_errwin_expired(h->err, wall)) {
                free(h->err);
                h->err = NULL;
            }
            if (!live_worth(h, all))
                continue;
            if (!b && !(b = hd_sched_batch_new(th, 1)))
                return;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 256;
                struct live_item *nl = realloc(b->live, ncap * sizeof(*nl));
                if (!nl)
                    goto full;
                b->live = nl;
                cap = ncap;
            }
            it = &b->live[n++];
            memset(it, 0, sizeof(*it));
            snprintf(it->host, sizeof(it->host), "%s", h->name);
            it->l.in_flight = h->inflight;
            it->l.window = hd_hostpol_window(&h->pol);
            it->l.ok_per_s_milli = (uint64_t)((double)h->ok_since * 1000.0 / secs);
            memcpy(sorted, h->lat, h->lat_n * sizeof(uint32_t));
            qsort(sorted, h->lat_n, sizeof(uint32_t), cmp_u32);
            it->l.p50_ms = h->lat_n ? sorted[h->lat_n / 2] : 0;
            it->l.p99_ms = h->lat_n ? sorted[(h->lat_n * 99) / 100] : 0;
            it->l.breaker = h->pol.breaker;
            it->l.dead = h->pol.dead != 0;
            it->l.updated_ms = wall;
            h->ok_since = 0;
            if (h->err_dirty && h->err) {
                it->err = malloc(sizeof(*it->err)); /* without memory: reported next time */
                if (it->err) {
                    *it->err = *h->err;
                    h->err_dirty = 0;
                }
            }
        }
full:
    if (!b) /* nothing worth reporting */
        return;
    b->nlive = n;
    if (!n) {
        hd_sched_batch_free(b);
        return;
    }
    hd_sched_commit_batch(th, b);
}

/* Frees the host table, with the deliveries still on ready lists (the store keeps them). */
void hd_sched_hosts_free(struct sthread *th)
{
    for (size_t i = 0; i < th->hosts_cap; i++) {
        struct shost *h = th->hosts[i];
        while (h) {
            struct shost *n = h->hnext;
            struct sdel *d = h->ready_head;
            while (d) {
                struct sdel *dn = d->next;
                free(d->csync);
                hd_sched_del_dispose(th, d);
                d = dn;
            }
            /* Out of the loop's timer heap first: a later disarm (the pool's, at its end)
             * walks the heap and must not meet a freed host. */
            hd_timer_disarm(th->loop, &h->timer);
            hd_timer_disarm(th->loop, &h->wake);
            free(h->err);
            free(h);
            h = n;
        }
    }
    free(th->hosts);
    th->hosts = NULL;
    th->hosts_cap = th->nhosts = 0;
}

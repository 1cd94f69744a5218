/* Acknowledgements: what the committer writes for the deliveries the runner finished (done,
 * retry, dead letter, drop), with the host records' counts and health, the counters, and the
 * gone followers a personal inbox's 404 or 410 reveals (see queue.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_impl.h"
#include "actstat.h"
#include "audience.h"
#include "err.h"
#include "gone.h"
#include "hostrec.h"
#include "known.h"
#include "log.h"
#include "strset.h"

/* Host health: a host-level failure on a new day counts one more failing day; a success
 * clears the count and revives a dead host. Only our own outbound results come here. */
static void host_health(struct hd_host_rec *h, const struct hd_ack *a, uint64_t now_ms,
                        const struct hd_health_policy *hp)
{
    uint64_t day = now_ms / (hp->day_ms ? hp->day_ms : 86400000ull);
    if (a->kind == HD_ACK_DONE) {
        if (a->scheme_ok)
            h->scheme = a->scheme_ok;
        h->fail_days = 0;
        h->dead = HD_HOST_ALIVE;
        return;
    }
    if (a->host_gone)
        h->dead = HD_HOST_GONE;
    if (!a->host_fail)
        return;
    if (h->fail_days == 0 || day != h->last_fail_day) {
        h->fail_days++;
        h->last_fail_day = day;
    }
    if (h->fail_days >= hp->dead_days && h->dead == HD_HOST_ALIVE)
        h->dead = HD_HOST_DEAD;
}

/* A personal inbox answered 404 or 410: its follower leaves the audience of the actor whose
 * activity it refused. */
static int follower_gone(struct hd_store *st, struct hd_txn *txn, uint64_t seq, const char *inbox)
{
    struct hd_act_view v;
    char actor[HD_FOLLOW_URL_MAX + 1];
    uint64_t removed = 0;
    int rc = hd_queue_get_activity(st, txn, seq, &v);

    if (rc == HD_ERR_NOT_FOUND)
        return 0;
    if (rc)
        return rc;
    if (!v.actor.p || v.actor.n == 0 || v.actor.n > HD_FOLLOW_URL_MAX)
        return 0;
    memcpy(actor, v.actor.p, v.actor.n);
    actor[v.actor.n] = 0;
    rc = hd_follow_remove_gone(st, txn, actor, inbox, &removed);
    if (rc == 0 && removed)
        HD_LOG(HD_LOG_INFO, "queue", "msg=\"follower gone: removed from the audience\" "
               "actor=\"%s\" follows=%llu", actor, (unsigned long long)removed);
    return rc;
}

/* The acknowledged delivery under k leaves the queue: its host's counts (in hand) go down. */
static int leave_queue(struct hd_store *st, struct hd_txn *txn, MDB_val *k, struct hd_host_rec *h,
                       uint32_t old_attempts, uint32_t flags)
{
    int rc = hd_store_err(hd_mdb_del(txn, st->queue, k, NULL));

    if (!rc)
        hd_host_rec_unqueue(h, 1, old_attempts ? 1 : 0);
    if (!rc)
        rc = hd_queue_prio_del(st, txn, k->mv_data, k->mv_size, flags);
    return rc;
}

static inline void dec(uint64_t *x)
{
    if (*x)
        (*x)--;
}

/* What a batch of acks changes, kept in hand and written once per batch: the records of the
 * hosts and the counts of the activities it touches. A fan-out's acks interleave hosts and,
 * over a few activities, share them; one get and one put per host and per activity instead
 * of one per ack. A hand that fills up is written out and starts again, so any number of
 * distinct hosts or activities costs what one get and put each did before. */
#define HAND_HOSTS 64
#define HAND_ACTS 256

struct host_hand {
    uint64_t hash;
    uint8_t noted; /* one of its inboxes was noted for to_known_hosts in this batch */
    char name[HD_HOST_MAX];
    struct hd_host_rec h;
};

struct act_hand {
    uint64_t seq;
    uint32_t done; /* references released (hd_queue_act_done), applied when written */
    struct hd_actstat a;
};

struct hands {
    unsigned nhosts, nacts, lasthost, lastact; /* the last ones used: the next ack's likely */
    struct host_hand hosts[HAND_HOSTS];
    struct act_hand acts[HAND_ACTS];
};

static int hosts_flush(struct hd_store *st, struct hd_txn *txn, struct hands *hs)
{
    for (unsigned i = 0; i < hs->nhosts; i++) {
        struct host_hand *x = &hs->hosts[i];
        int rc = hd_host_put(st, txn, x->name, strlen(x->name), &x->h);
        if (rc)
            return rc;
    }
    hs->nhosts = 0;
    return 0;
}

static int acts_flush(struct hd_store *st, struct hd_txn *txn, struct hands *hs)
{
    for (unsigned i = 0; i < hs->nacts; i++) {
        struct act_hand *x = &hs->acts[i];
        int rc = hd_actstat_put(st, txn, x->seq, &x->a);
        if (!rc)
            rc = hd_queue_act_done_n(st, txn, x->seq, x->done);
        if (rc)
            return rc;
    }
    hs->nacts = 0;
    return 0;
}

/* The record of host in hand (read on first use), or NULL with *rc set. */
static struct host_hand *host_load(struct hd_store *st, struct hd_txn *txn, struct hands *hs,
                                   const char *host, int *rc)
{
    size_t hl = strlen(host);
    uint64_t hash = hd_hash64(host, hl);
    struct host_hand *x;

    if (hs->lasthost < hs->nhosts && hs->hosts[hs->lasthost].hash == hash &&
        strcmp(hs->hosts[hs->lasthost].name, host) == 0)
        return &hs->hosts[hs->lasthost];
    for (unsigned i = 0; i < hs->nhosts; i++)
        if (hs->hosts[i].hash == hash && strcmp(hs->hosts[i].name, host) == 0)
            return &hs->hosts[hs->lasthost = i];
    *rc = hl < HD_HOST_MAX ? 0 : HD_ERR_INVALID;
    if (!*rc && hs->nhosts == HAND_HOSTS)
        *rc = hosts_flush(st, txn, hs);
    if (*rc)
        return NULL;
    x = &hs->hosts[hs->nhosts];
    *rc = hd_host_get(st, txn, host, hl, &x->h);
    if (*rc && *rc != HD_ERR_NOT_FOUND)
        return NULL;
    *rc = 0;
    memcpy(x->name, host, hl + 1);
    x->hash = hash;
    x->noted = 0;
    hs->lasthost = hs->nhosts++;
    return x;
}

/* The counts of activity seq in hand (read on first use), or NULL with *rc set. */
static struct act_hand *as_load(struct hd_store *st, struct hd_txn *txn, struct hands *hs,
                                uint64_t seq, int *rc)
{
    struct act_hand *x;

    if (hs->lastact < hs->nacts && hs->acts[hs->lastact].seq == seq)
        return &hs->acts[hs->lastact];
    for (unsigned i = 0; i < hs->nacts; i++)
        if (hs->acts[i].seq == seq)
            return &hs->acts[hs->lastact = i];
    *rc = hs->nacts == HAND_ACTS ? acts_flush(st, txn, hs) : 0;
    if (*rc)
        return NULL;
    x = &hs->acts[hs->nacts];
    *rc = hd_actstat_get(st, txn, seq, &x->a);
    if (*rc == HD_ERR_NOT_FOUND) {
        memset(&x->a, 0, sizeof(x->a));
        x->a.flags = HD_ACTSTAT_MIGRATED; /* no record: counted from here on */
        *rc = 0;
    }
    if (*rc)
        return NULL;
    x->seq = seq;
    x->done = 0;
    hs->lastact = hs->nacts++;
    return x;
}

/* The acknowledged delivery (old_attempts made before) changes its activity's counts. */
static int as_apply(struct hd_store *st, struct hd_txn *txn, struct act_hand *x,
                    const struct hd_ack *a, uint64_t seq, uint32_t old_attempts, uint64_t now_ms)
{
    struct hd_actstat *s = &x->a;
    const char *host = hd_queue_key_host(a->key);

    if (a->kind != HD_ACK_RETRY) {
        dec(&s->queued);
        if (old_attempts)
            dec(&s->retrying);
    }
    switch (a->kind) {
    case HD_ACK_DONE:
        s->done++;
        if (!old_attempts)
            s->attempted++;
        if (!s->first_ms)
            s->first_ms = now_ms;
        s->last_ms = now_ms;
        return hd_actstat_host(st, txn, seq, s, host, 1, 0, NULL, now_ms);
    case HD_ACK_RETRY:
        if (!old_attempts) {
            s->retrying++;
            s->attempted++;
        }
        return hd_actstat_host(st, txn, seq, s, host, 0, a->status, a->error, now_ms);
    case HD_ACK_DEAD:
        if (a->expired)
            s->expired++;
        else
            s->failed++;
        if (!old_attempts && !a->expired && (a->status || a->host_fail || a->reached))
            s->attempted++;
        return hd_actstat_host(st, txn, seq, s, host, 0, a->status, a->error, now_ms);
    case HD_ACK_DROP:
        if (a->cancelled)
            s->cancelled++;
        else
            s->dropped++;
        return 0;
    }
    return 0;
}

/* An ack whose delivery is no longer queued: already acknowledged or cancelled. A request
 * that was on the wire when its activity was cancelled and then succeeded counts as done,
 * not cancelled. */
static int apply_gone(struct hd_store *st, struct hd_txn *txn, struct hands *hs,
                      const struct hd_ack *a, uint64_t now_ms)
{
    struct act_hand *x;
    uint64_t seq;
    int rc = 0;

    if (a->kind != HD_ACK_DONE || a->keylen < 13)
        return 0;
    seq = hd_rd64(a->key + a->keylen - 12);
    x = as_load(st, txn, hs, seq, &rc);
    if (!x)
        return rc;
    if ((x->a.flags & HD_ACTSTAT_CANCELLED) && x->a.cancelled) {
        x->a.cancelled--;
        x->a.done++;
        x->a.attempted++;
        if (!x->a.first_ms)
            x->a.first_ms = now_ms;
        x->a.last_ms = now_ms;
        rc = hd_actstat_host(st, txn, seq, &x->a, hd_queue_key_host(a->key), 1, 0, NULL, now_ms);
    }
    return rc;
}

static int apply_one(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                     struct hands *hs, const struct hd_ack *a, uint64_t now_ms,
                     const struct hd_health_policy *hp)
{
    MDB_val k = {a->keylen, (void *)a->key}, v;
    struct hd_qent q;
    struct host_hand *hh;
    struct act_hand *ah;
    struct hd_host_rec *h;
    uint32_t old_attempts;
    char inbox[HD_URL_MAX + HD_HOST_MAX + 16];
    int rc = hd_mdb_get(txn, st->queue, &k, &v);

    if (rc == MDB_NOTFOUND)
        return apply_gone(st, txn, hs, a, now_ms);
    if (rc)
        return hd_store_err(rc);
    rc = hd_queue_ent_decode(&k, &v, &q);
    if (rc)
        return rc;
    old_attempts = q.attempts;
    if (q.inbox.n >= sizeof(inbox))
        return HD_ERR_INVALID;
    memcpy(inbox, q.inbox.p, q.inbox.n);
    inbox[q.inbox.n] = 0;

    hh = host_load(st, txn, hs, hd_queue_key_host(a->key), &rc);
    if (!hh)
        return rc;
    h = &hh->h;
    host_health(h, a, now_ms, hp);
    ah = as_load(st, txn, hs, q.seq, &rc);
    if (!ah)
        return rc;
    rc = as_apply(st, txn, ah, a, q.seq, old_attempts, now_ms);
    if (rc)
        return rc;
    switch (a->kind) {
    case HD_ACK_DONE:
        rc = leave_queue(st, txn, &k, h, old_attempts, q.flags);
        if (rc)
            return rc;
        h->done++;
        h->last_status = a->status;
        h->last_ok_ms = now_ms;
        c->done++;
        /* The host knows us now: one of its inboxes is kept for to_known_hosts (looked at
         * once per host and batch). */
        if (!hh->noted) {
            rc = hd_known_note(st, txn, hh->name, inbox, strlen(inbox),
                               (q.flags & HD_QF_SHARED) != 0);
            if (rc)
                return rc;
            hh->noted = 1;
        }
        ah->done++;
        return 0;
    case HD_ACK_RETRY:
        if (!old_attempts)
            h->retrying++;
        h->failures++;
        h->last_status = a->status;
        h->last_fail_ms = now_ms;
        snprintf(h->last_error, sizeof(h->last_error), "%s", a->error);
        return hd_queue_ent_put(txn, st->queue, a->key, a->keylen, inbox, strlen(inbox),
                                a->attempts, a->not_before_ms, q.enqueued_ms, a->status,
                                a->error, q.flags | (a->reached ? HD_QF_REACHED : 0), NULL, 0);
    case HD_ACK_DEAD:
        rc = hd_queue_ent_put(txn, st->dead, a->key, a->keylen, inbox, strlen(inbox),
                              a->attempts, now_ms, q.enqueued_ms, a->status, a->error,
                              q.flags | (a->reached ? HD_QF_REACHED : 0), a->body, a->body_len);
        if (rc)
            return rc;
        rc = leave_queue(st, txn, &k, h, old_attempts, q.flags);
        if (rc)
            return rc;
        h->failed++;
        h->failures++;
        h->last_status = a->status;
        h->last_fail_ms = now_ms;
        snprintf(h->last_error, sizeof(h->last_error), "%s", a->error);
        c->failed++;
        if (a->expired)
            c->expired++;
        /* A personal inbox answered 404/410: the follower is gone (`herald gone list`). */
        if (a->follower_gone) {
            rc = hd_gone_add(st, txn, inbox, a->status);
            if (rc == 0)
                rc = follower_gone(st, txn, q.seq, inbox);
        }
        /* The dead letter keeps its reference to the activity body, so that `herald dead
         * retry` can send it again; hd_dead_purge releases it. */
        return rc;
    case HD_ACK_DROP:
        /* Refused by the rules after it was queued (a suspend the engine saw first), or
         * cancelled by a Delete: dropped and counted, as hd_queue_drop does. */
        rc = leave_queue(st, txn, &k, h, old_attempts, q.flags);
        if (rc)
            return rc;
        if (a->cancelled)
            c->cancelled++;
        else
            c->dropped++;
        ah->done++;
        return 0;
    }
    return HD_ERR_INVALID;
}

int hd_queue_apply(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                   const struct hd_ack *acks, size_t n, uint64_t now_ms,
                   const struct hd_health_policy *hp_in)
{
    static const struct hd_health_policy hp_default = {86400000ull, 7};
    const struct hd_health_policy *hp = hp_in ? hp_in : &hp_default;
    struct hands *hs = malloc(sizeof(*hs));
    int rc = 0;

    if (!hs)
        return -ENOMEM;
    hs->nhosts = hs->nacts = hs->lasthost = hs->lastact = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = apply_one(st, txn, c, hs, &acks[i], now_ms, hp);
    if (!rc)
        rc = hosts_flush(st, txn, hs);
    if (!rc)
        rc = acts_flush(st, txn, hs);
    free(hs);
    return rc;
}

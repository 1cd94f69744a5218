/* Acknowledgements: what the committer writes for the deliveries the runner finished (done,
 * retry, dead letter, drop), with the host records' counts and health, the counters, and the
 * gone followers a personal inbox's 404 or 410 reveals (see queue.h). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "queue_impl.h"
#include "actstat.h"
#include "audience.h"
#include "err.h"
#include "gone.h"
#include "hostrec.h"
#include "known.h"
#include "log.h"

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

/* The counts of the activity being acknowledged, kept in hand while consecutive acks share
 * it (a fan-out's acks mostly do). */
struct as_hand {
    struct hd_actstat a;
    uint64_t seq;
    int have;
};

static int as_load(struct hd_store *st, struct hd_txn *txn, struct as_hand *ah, uint64_t seq)
{
    int rc;
    if (ah->have && ah->seq == seq)
        return 0;
    if (ah->have) {
        rc = hd_actstat_put(st, txn, ah->seq, &ah->a);
        if (rc)
            return rc;
    }
    rc = hd_actstat_get(st, txn, seq, &ah->a);
    if (rc == HD_ERR_NOT_FOUND) {
        ah->a.flags = HD_ACTSTAT_MIGRATED; /* no record: counted from here on */
        rc = 0;
    }
    ah->have = rc == 0;
    ah->seq = seq;
    return rc;
}

/* The acknowledged delivery (old_attempts made before) changes its activity's counts. */
static int as_apply(struct hd_store *st, struct hd_txn *txn, struct as_hand *ah,
                    const struct hd_ack *a, uint64_t seq, uint32_t old_attempts, uint64_t now_ms)
{
    struct hd_actstat *s = &ah->a;
    const char *host = hd_queue_key_host(a->key);
    int rc = as_load(st, txn, ah, seq);

    if (rc)
        return rc;
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

int hd_queue_apply(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                   const struct hd_ack *acks, size_t n, uint64_t now_ms,
                   const struct hd_health_policy *hp_in)
{
    static const struct hd_health_policy hp_default = {86400000ull, 7};
    const struct hd_health_policy *hp = hp_in ? hp_in : &hp_default;
    struct hd_host_rec h;
    char cur_host[HD_HOST_MAX] = "";
    struct as_hand ah = {.have = 0};
    int have_host = 0, rc = 0, noted = 0;

    for (size_t i = 0; i < n; i++) {
        const struct hd_ack *a = &acks[i];
        const char *host = hd_queue_key_host(a->key);
        MDB_val k = {a->keylen, (void *)a->key}, v;
        struct hd_qent q;
        uint32_t old_attempts;
        char inbox[HD_URL_MAX + HD_HOST_MAX + 16];

        rc = hd_mdb_get(txn, st->queue, &k, &v);
        if (rc == MDB_NOTFOUND) {
            /* Already acknowledged or cancelled. A request that was on the wire when its
             * activity was cancelled and then succeeded counts as done, not cancelled. */
            rc = 0;
            if (a->kind == HD_ACK_DONE && a->keylen >= 13) {
                uint64_t seq = hd_rd64(a->key + a->keylen - 12);
                rc = as_load(st, txn, &ah, seq);
                if (rc)
                    return rc;
                if ((ah.a.flags & HD_ACTSTAT_CANCELLED) && ah.a.cancelled) {
                    ah.a.cancelled--;
                    ah.a.done++;
                    ah.a.attempted++;
                    if (!ah.a.first_ms)
                        ah.a.first_ms = now_ms;
                    ah.a.last_ms = now_ms;
                    rc = hd_actstat_host(st, txn, seq, &ah.a, hd_queue_key_host(a->key), 1, 0,
                                         NULL, now_ms);
                    if (rc)
                        return rc;
                }
            }
            continue;
        }
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

        /* Acks arrive grouped by thread, and mostly by host: keep the host record in hand
         * while consecutive acks share it. */
        if (!have_host || strcmp(cur_host, host) != 0) {
            if (have_host) {
                rc = hd_host_put(st, txn, cur_host, strlen(cur_host), &h);
                if (rc)
                    return rc;
            }
            snprintf(cur_host, sizeof(cur_host), "%s", host);
            noted = 0;
            rc = hd_host_get(st, txn, cur_host, strlen(cur_host), &h);
            if (rc && rc != HD_ERR_NOT_FOUND)
                return rc;
            have_host = 1;
        }
        host_health(&h, a, now_ms, hp);
        rc = as_apply(st, txn, &ah, a, q.seq, old_attempts, now_ms);
        if (rc)
            return rc;
        switch (a->kind) {
        case HD_ACK_DONE:
            rc = leave_queue(st, txn, &k, &h, old_attempts, q.flags);
            if (rc)
                return rc;
            h.done++;
            h.last_status = a->status;
            h.last_ok_ms = now_ms;
            c->done++;
            /* The host knows us now: one of its inboxes is kept for to_known_hosts (looked
             * at once per host and commit). */
            if (!noted) {
                rc = hd_known_note(st, txn, cur_host, inbox, strlen(inbox),
                                   (q.flags & HD_QF_SHARED) != 0);
                if (rc)
                    return rc;
                noted = 1;
            }
            rc = hd_queue_act_done(st, txn, q.seq);
            break;
        case HD_ACK_RETRY:
            if (!old_attempts)
                h.retrying++;
            h.failures++;
            h.last_status = a->status;
            h.last_fail_ms = now_ms;
            snprintf(h.last_error, sizeof(h.last_error), "%s", a->error);
            rc = hd_queue_ent_put(txn, st->queue, a->key, a->keylen, inbox, strlen(inbox),
                                  a->attempts, a->not_before_ms, q.enqueued_ms, a->status,
                                  a->error, q.flags | (a->reached ? HD_QF_REACHED : 0), NULL, 0);
            break;
        case HD_ACK_DEAD:
            rc = hd_queue_ent_put(txn, st->dead, a->key, a->keylen, inbox, strlen(inbox),
                                  a->attempts, now_ms, q.enqueued_ms, a->status, a->error,
                                  q.flags | (a->reached ? HD_QF_REACHED : 0), a->body,
                                  a->body_len);
            if (rc)
                return rc;
            rc = leave_queue(st, txn, &k, &h, old_attempts, q.flags);
            if (rc)
                return rc;
            h.failed++;
            h.failures++;
            h.last_status = a->status;
            h.last_fail_ms = now_ms;
            snprintf(h.last_error, sizeof(h.last_error), "%s", a->error);
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
            break;
        case HD_ACK_DROP:
            /* Refused by the rules after it was queued (a suspend the engine saw first), or
             * cancelled by a Delete: dropped and counted, as hd_queue_drop does. */
            rc = leave_queue(st, txn, &k, &h, old_attempts, q.flags);
            if (rc)
                return rc;
            if (a->cancelled)
                c->cancelled++;
            else
                c->dropped++;
            rc = hd_queue_act_done(st, txn, q.seq);
            break;
        default:
            rc = HD_ERR_INVALID;
        }
        if (rc)
            return rc;
    }
    if (have_host)
        rc = hd_host_put(st, txn, cur_host, strlen(cur_host), &h);
    if (!rc && ah.have)
        rc = hd_actstat_put(st, txn, ah.seq, &ah.a);
    return rc;
}

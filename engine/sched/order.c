/* Ordering and cancellation, decided right before a delivery goes out (the runner alone
 * sends to a host, so nothing of it can be on the wire then): an Update, Delete or Undo
 * never overtakes the activity it depends on; a Create whose object is already deleted, with
 * the Delete queued for the same host, is cancelled with it when no attempt of it may have
 * arrived; an Update or Delete is not sent to a host that never got the object. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "actstat.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "sched_impl.h"

#define CANCEL_MAX 64 /* deliveries cancelled at once on one host; more: not cancelled */

/* Takes the ready (leased, not yet sent) delivery with this key off host h's ready list. */
static struct sdel *ready_take(struct shost *h, const uint8_t *key, size_t keylen)
{
    struct sdel **pp = &h->ready_head, *prev = NULL;
    while (*pp && ((*pp)->keylen != keylen || memcmp((*pp)->key, key, keylen) != 0)) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    struct sdel *d = *pp;
    if (!d)
        return NULL;
    *pp = d->next;
    if (h->ready_tail == d)
        h->ready_tail = prev;
    h->nready--;
    d->next = NULL;
    return d;
}

static int ready_has(const struct shost *h, const uint8_t *key, size_t keylen)
{
    for (const struct sdel *d = h->ready_head; d; d = d->next)
        if (d->keylen == keylen && !memcmp(d->key, key, keylen))
            return 1;
    return 0;
}

/* Cancels on d's host the Create create_seq, its Delete del_seq and the Updates in between,
 * when no delivery of that Create there may have been processed (HD_QF_REACHED) or is in
 * flight, and the Delete is queued there. d (being dispatched) is one of them. Everything is
 * checked, and every delivery to cancel is leased, before anything is cancelled; each
 * cancelled delivery becomes a DROP ack with cancelled = 1, so it leaves the queue through
 * the committer like any other outcome, and stays leased (never re-scanned, never sent)
 * until that commits. The runner alone sends to this host, and it decides here, right before
 * sending: no race with a delivery going out. Returns 1 when cancelled (d consumed), 0 when
 * not (d goes on), or an error (a store error, -ENOMEM) with d not consumed. */
static int cancel_pair(struct sthread *th, struct sdel *d, uint64_t create_seq, uint64_t del_seq)
{
    struct shost *h = d->host;
    struct hd_qref *refs;
    struct sdel *xs[CANCEL_MAX];
    uint64_t chain[16];
    size_t nrefs = 0, nchain, nx = 0, i, done = 0;
    struct hd_txn *txn = hd_sched_rtxn(th);
    int n, rc = 0;

    if (!txn)
        return HD_ERR_STORE;
    refs = malloc(CANCEL_MAX * sizeof(*refs));
    if (!refs)
        return -ENOMEM;
    n = hd_queue_entries(th->st, txn, h->name, create_seq, refs, CANCEL_MAX);
    if (n <= 0) /* none, or too many (HD_ERR_FULL): the Create goes */
        goto out_err;
    nrefs = (size_t)n;
    /* After a crash, a Create queued before this run may have gone out just before it, its
     * answer never recorded: it counts as reached. */
    for (i = 0; i < nrefs; i++)
        if (th->unclean_before_ms && refs[i].enqueued_ms < th->unclean_before_ms)
            goto out;
    n = hd_queue_entries(th->st, txn, h->name, del_seq, refs + nrefs, CANCEL_MAX - nrefs);
    if (n <= 0) /* the Delete does not go to this host (or too many): the Create goes */
        goto out_err;
    nrefs += (size_t)n;
    nchain = hd_queue_chain(th->st, txn, del_seq, create_seq, chain, 16);
    for (i = 0; i < nchain; i++) {
        n = hd_queue_entries(th->st, txn, h->name, chain[i], refs + nrefs, CANCEL_MAX - nrefs);
        if (n < 0)
            goto out_err;
        nrefs += (size_t)n;
    }
    for (i = 0; i < nrefs; i++) {
        int self = refs[i].keylen == d->keylen && !memcmp(refs[i].key, d->key, d->keylen);
        if (self)
            continue;
        if (refs[i].flags & HD_QF_REACHED)
            goto out; /* a Create (or Update) that may have arrived: the Delete must follow */
        /* Leased but not ready: in flight, or its outcome is being committed. */
        if (hd_sched_leased_has(th, refs[i].key, refs[i].keylen) &&
            !ready_has(h, refs[i].key, refs[i].keylen))
            goto out;
    }
    if (d->flags & HD_QF_REACHED)
        goto out;
    /* Lease every other delivery to cancel first: a failure here changes nothing. */
    for (i = 0; i < nrefs; i++) {
        struct sdel *x;
        if (refs[i].keylen == d->keylen && !memcmp(refs[i].key, d->key, d->keylen))
            continue;
        if (hd_sched_leased_has(th, refs[i].key, refs[i].keylen)) {
            x = ready_take(h, refs[i].key, refs[i].keylen);
            if (!x)
                continue;
        } else {
            x = calloc(1, sizeof(*x));
            if (!x) {
                rc = -ENOMEM;
                goto undo;
            }
            memcpy(x->key, refs[i].key, refs[i].keylen);
            x->keylen = refs[i].keylen;
            x->host = h;
            x->flags = refs[i].flags;
            if (hd_sched_leased_add(th, x) != 0) {
                free(x);
                rc = -ENOMEM;
                goto undo;
            }
        }
        xs[nx++] = x;
    }
    /* d last: if an acknowledgement cannot be queued, d is still the caller's. */
    for (done = 0; done < nx; done++) {
        struct hd_ack *a = hd_sched_ack(th, xs[done], HD_ACK_DROP, 0, 0,
                                        "cancelled: the object was deleted before delivery");
        if (!a) {
            rc = -ENOMEM;
            goto undo;
        }
        a->cancelled = 1;
    }
    {
        struct hd_ack *a = hd_sched_ack(th, d, HD_ACK_DROP, 0, 0,
                                        "cancelled: the object was deleted before delivery");
        if (!a) {
            rc = -ENOMEM;
            goto out;
        }
        a->cancelled = 1;
    }
    HD_LOG(HD_LOG_DEBUG, "sched", "msg=\"cancelled\" host=%s create=%llu delete=%llu n=%zu",
           h->name, (unsigned long long)create_seq, (unsigned long long)del_seq, nrefs);
    rc = 1;
    goto out;
out_err:
    if (n < 0 && n != HD_ERR_FULL)
        rc = n;
    goto out;
undo:
    /* Those not cancelled go back to the store as they were; the host looks again soon. */
    for (i = done; i < nx; i++)
        hd_sched_release(th, xs[i]);
    hd_sched_retry_due(h, hd_wall_ms() + HD_POLICY_LOCAL_RETRY_MS);
out:
    free(refs);
    return rc;
}

/* 1 when activity seq is a Create, 0 when not (or gone), or a store error. */
static int act_is_create(struct sthread *th, uint64_t seq)
{
    struct hd_act_view v;
    struct hd_txn *txn = hd_sched_rtxn(th);
    int rc;

    if (!txn)
        return HD_ERR_STORE;
    rc = hd_queue_get_activity(th->st, txn, seq, &v);
    if (rc)
        return rc == HD_ERR_NOT_FOUND ? 0 : rc;
    return v.type.n == 6 && !memcmp(v.type.p, "Create", 6);
}

/* A Create about to go out for the first time (or after attempts that never got there): is
 * its object already deleted, with the Delete queued for this host? Then neither goes. The
 * lookup is one objseq read per activity and change of any object's latest activity (cached
 * in the activity).
 * Returns as cancel_pair. */
static int cancel_create(struct sthread *th, struct sdel *d)
{
    struct sact *a = d->act;
    struct hd_txn *txn;

    if (!a->object_id || (d->flags & HD_QF_REACHED))
        return 0;
    txn = hd_sched_rtxn(th);
    if (!txn)
        return HD_ERR_STORE;
    if (!a->del_gen || a->del_gen != th->gen_stamp[HD_GEN_OBJECTS]) {
        uint64_t del = 0;
        int rc = hd_queue_delete_of(th->st, txn, a->object_id, a->seq, &del);
        if (rc < 0)
            return rc;
        a->del_seq = rc == 1 ? del : 0;
        a->del_gen = th->gen_stamp[HD_GEN_OBJECTS];
    }
    return a->del_seq ? cancel_pair(th, d, a->seq, a->del_seq) : 0;
}

/* Right before d (its activity loaded) goes out: cancellation of a Create whose object is
 * deleted, holding back what must not overtake, and skipping a host that never got the
 * object. Returns 0 when d may go, 1 when d was settled here (cancelled, or given back to
 * wait), or an error (a store read failed, no memory) with d untouched. A look-up that fails
 * is an error, never "not blocked": a Delete must not overtake its Create. */
/* Was d's activity taken down (hd_act_cancel) after d was leased? Then d is dropped, never
 * sent: the takedown removed its queue entry already, so the acknowledgement finds nothing
 * and counts nothing twice. One actstat read per activity and takedown anywhere. Returns 1
 * when d was settled, 0 when it goes on, or an error with d untouched. */
static int taken_down(struct sthread *th, struct sdel *d)
{
    struct sact *a = d->act;
    struct hd_txn *txn;

    txn = hd_sched_rtxn(th);
    if (!txn)
        return HD_ERR_STORE;
    if (!a->cancel_gen || a->cancel_gen != th->gen_stamp[HD_GEN_TAKEDOWNS]) {
        struct hd_actstat as;
        int rc;
        rc = hd_actstat_get(th->st, txn, a->seq, &as);
        if (rc && rc != HD_ERR_NOT_FOUND)
            return rc;
        a->cancelled = rc == 0 && (as.flags & HD_ACTSTAT_CANCELLED);
        a->cancel_gen = th->gen_stamp[HD_GEN_TAKEDOWNS];
    }
    if (!a->cancelled)
        return 0;
    struct hd_ack *ack = hd_sched_ack(th, d, HD_ACK_DROP, 0, 0, "cancelled: taken down");
    if (!ack)
        return -ENOMEM;
    ack->cancelled = 1;
    return 1;
}

int hd_sched_order(struct sthread *th, struct sdel *d)
{
    struct shost *h = d->host;
    struct hd_txn *txn;
    uint64_t until = 0;
    int rc;

    rc = taken_down(th, d);
    if (rc != 0)
        return rc;
    if (d->act->kind == ACT_CREATE) {
        rc = cancel_create(th, d);
        if (rc != 0)
            return rc;
    }
    if (d->act->after[0] || d->act->after[1]) {
        txn = hd_sched_rtxn(th);
        if (!txn)
            return HD_ERR_STORE;
        rc = hd_queue_blocked_until(th->st, txn, h->name, d->act->after, &until);
        if (rc < 0)
            return rc; /* not knowing is not "not blocked": a Delete must not overtake */
    } else {
        rc = 0;
    }
    if (rc == 1) {
        /* An Update/Delete/Undo whose Create (or undone activity) is still queued for this
         * host must not overtake it: give the lease back and look again in a second (or as
         * soon as the host is rescanned). Nothing is counted. A Delete whose Create waits
         * there (for a retry) without ever having arrived cancels both instead. */
        if (d->act->kind == ACT_DELETE) {
            rc = act_is_create(th, d->act->after[0]);
            if (rc == 1)
                rc = cancel_pair(th, d, d->act->after[0], d->seq);
            if (rc != 0)
                return rc;
        }
        /* A high or low delivery is read from its index from the start at each refill: hold
         * that index back a second, or it would be leased again at every turn. */
        if (d->flags & (HD_QF_HIGH | HD_QF_LOW))
            h->idx_hold_until[(d->flags & HD_QF_HIGH) ? HD_PRIO_HIGH : HD_PRIO_LOW] =
                hd_wall_ms() + 1000;
        hd_sched_release(th, d);
        /* Not before the blocking delivery's own retry time: a Delete behind a Create that
         * waits an hour is not work due (--until-idle may stop). */
        hd_sched_retry_due(h, until > hd_wall_ms() + 1000 ? until : hd_wall_ms() + 1000);
        return 1;
    }
    /* An Update or Delete never goes to a host that never received the object: one the
     * Create was not addressed to, or where all of it ended as refused dead letters. */
    if ((d->act->kind == ACT_DELETE || d->act->kind == ACT_UPDATE) && d->act->after[0]) {
        txn = hd_sched_rtxn(th);
        if (!txn)
            return HD_ERR_STORE;
        rc = hd_queue_host_got(th->st, txn, h->name, d->act->after[0]);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            struct hd_ack *a = hd_sched_ack(th, d, HD_ACK_DROP, 0, 0,
                                            "cancelled: the object never reached this host");
            if (!a)
                return -ENOMEM;
            a->cancelled = 1;
            return 1;
        }
    }
    return 0;
}

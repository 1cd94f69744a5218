/* Group commit. A loop thread collects acknowledgements in a batch and hands it to the
 * committer thread, which applies every pending batch in one LMDB write transaction and hands
 * each back; the loop thread then counts the outcomes and releases the deliveries, which
 * stayed leased until their acknowledgement committed. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "sched_impl.h"

/* A commit of fewer acknowledgements than this is followed by no gap (commit_gap). */
#define COMMIT_GAP_MIN_ACKS 64

struct batch *hd_sched_batch_new(struct sthread *th, size_t cap)
{
    struct batch *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->acks = malloc(cap * sizeof(*b->acks));
    b->dels = malloc(cap * sizeof(*b->dels));
    if (!b->acks || !b->dels) {
        free(b->acks);
        free(b->dels);
        free(b);
        return NULL;
    }
    b->cap = cap;
    b->owner = th;
    return b;
}

void hd_sched_batch_free(struct batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; b->live && i < b->nlive; i++)
        free(b->live[i].err);
    free(b->live);
    free(b->acks);
    free(b->dels);
    free(b);
}

void hd_sched_commit_batch(struct sthread *th, struct batch *b)
{
    struct committer *cm = th->cm;

    th->batches_out++;
    pthread_mutex_lock(&cm->mu);
    b->next = cm->head;
    cm->head = b;
    pthread_cond_signal(&cm->cv);
    pthread_mutex_unlock(&cm->mu);
}

void hd_sched_flush(struct sthread *th)
{
    struct batch *b = th->cur;
    if (!b || b->n == 0)
        return;
    th->cur = NULL;
    hd_sched_commit_batch(th, b);
}

/* Appends an acknowledgement for d to the current batch and returns it (so the caller can set
 * the extra fields), or NULL when out of memory (d then stays leased until the run ends and
 * is delivered again by the next run: at-least-once). */
struct hd_ack *hd_sched_ack(struct sthread *th, struct sdel *d, int kind, int status,
                            uint64_t not_before, const char *error)
{
    struct hd_ack *a;
    if (th->cur && th->cur->n == th->cur->cap)
        hd_sched_flush(th);
    if (!th->cur && th->spare) {
        th->cur = th->spare;
        th->spare = th->cur->next;
        th->cur->next = NULL;
        th->nspare--;
        th->cur_first_ms = hd_loop_now_ms(th->loop);
    }
    if (!th->cur) {
        th->cur = hd_sched_batch_new(th, th->o->commit_batch);
        if (!th->cur)
            return NULL;
        th->cur_first_ms = hd_loop_now_ms(th->loop);
    }
    a = &th->cur->acks[th->cur->n];
    memcpy(a->key, d->key, d->keylen);
    a->keylen = d->keylen;
    a->kind = (uint8_t)kind;
    a->status = (uint16_t)status;
    a->attempts = d->attempts + 1;
    a->not_before_ms = not_before;
    if (error) { /* as snprintf "%s" would, without its cost on every acknowledgement */
        size_t n = strnlen(error, sizeof(a->error) - 1);
        memcpy(a->error, error, n);
        a->error[n] = '\0';
    } else {
        a->error[0] = '\0';
    }
    a->host_fail = 0;
    a->host_gone = 0;
    a->expired = 0;
    a->follower_gone = 0;
    a->scheme_ok = 0;
    a->reached = 0;
    a->cancelled = 0;
    a->body_len = 0;
    th->cur->dels[th->cur->n++] = d;
    return a;
}

void hd_sched_drain_done(struct sthread *th)
{
    struct batch *b;
    pthread_mutex_lock(&th->done_mu);
    b = th->done_head;
    th->done_head = NULL;
    pthread_mutex_unlock(&th->done_mu);
    while (b) {
        struct batch *next = b->next;
        for (size_t i = 0; i < b->n; i++) {
            struct sdel *d = b->dels[i];
            struct shost *h = d->host;
            if (b->rc == 0) {
                if (b->acks[i].kind == HD_ACK_DONE) {
                    atomic_fetch_add(&th->n_done, 1);
                } else if (b->acks[i].kind == HD_ACK_DEAD || b->acks[i].kind == HD_ACK_DROP) {
                    atomic_fetch_add(&th->n_dead, 1);
                } else {
                    atomic_fetch_add(&th->n_retry, 1);
                    /* The host's timer may have fired while this was still leased (a retry
                     * due sooner than its commit): the scan then skipped it. Look again
                     * when it is due. */
                    hd_sched_retry_due(h, b->acks[i].not_before_ms);
                }
            } else {
                /* Not committed: the entry is still queued as before; rescan delivers it
                 * again (at-least-once). */
                h->poslen = 0;
                h->exhausted = 0;
                h->idx_check = HD_SCHED_IDX_ALL;
            }
            hd_sched_release(th, d);
            hd_sched_runnable(h);
        }
        th->batches_out--;
        if (th->nspare < HD_SCHED_SPARES && !b->live && b->cap == th->o->commit_batch) {
            /* Kept for the next acknowledgements: a new batch per commit (its 2.4 MB of
             * acknowledgements, mapped on its own) was an mmap, fresh pages faulted in as it
             * filled and an munmap. */
            b->n = 0;
            b->rc = 0;
            b->next = th->spare;
            th->spare = b;
            th->nspare++;
        } else {
            hd_sched_batch_free(b);
        }
        b = next;
    }
}

static void on_efd(struct hd_loop_op *op, int res)
{
    struct sthread *th = container_of(op, struct sthread, efd_op);
    th->efd_armed = 0;
    if (res >= 0) {
        uint64_t v;
        if (read(th->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
            HD_LOG(HD_LOG_WARN, "sched", "msg=\"eventfd read failed\" err=%d", errno);
    }
}

void hd_sched_arm_efd(struct sthread *th)
{
    if (th->efd_armed)
        return;
    th->efd_op.cb = on_efd;
    if (hd_loop_poll(th->loop, &th->efd_op, th->efd, POLLIN) == 0)
        th->efd_armed = 1;
}

void *hd_sched_committer_main(void *arg)
{
    struct committer *cm = arg;
    uint64_t last_start_us = 0;
    size_t last_acks = 0;

    /* A batch thread for the kernel's scheduler: a loop thread that hands it a batch does
     * not lose its CPU there and then (in the middle of a signature) when both share one;
     * the commit runs at the loop's next wait or the scheduler's next tick, milliseconds at
     * most. Half the context switches of a fan-out pinned to one CPU. Refused: no matter. */
    {
        struct sched_param sp = {0};
        (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
    }
    for (;;) {
        struct batch *list, *b;
        struct hd_counters c;
        struct hd_txn *txn;
        uint64_t now;
        int rc;

        pthread_mutex_lock(&cm->mu);
        while (!cm->head && !cm->stop)
            pthread_cond_wait(&cm->cv, &cm->mu);
        /* Under load, at most one commit per gap: the fixed cost of a commit (page writes,
         * fdatasync, about 1 ms of CPU on a virtual disk) is shared by every acknowledgement
         * that arrives within it. After a small commit there is no wait, so that a trickle
         * (or a chain of ordered deliveries) is not slowed. Leases are released only after
         * the commit, so nothing is sent twice. */
        if (cm->gap_ms && last_start_us && last_acks >= COMMIT_GAP_MIN_ACKS) {
            uint64_t due = last_start_us + (uint64_t)cm->gap_ms * 1000u;
            while (!cm->stop && hd_sched_mono_us() < due) {
                struct timespec ts;
                uint64_t left = due - hd_sched_mono_us();
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += (time_t)(left / 1000000u);
                ts.tv_nsec += (long)(left % 1000000u) * 1000;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                if (pthread_cond_timedwait(&cm->cv, &cm->mu, &ts) == ETIMEDOUT)
                    break;
            }
        }
        list = cm->head;
        cm->head = NULL;
        if (!list && cm->stop) {
            pthread_mutex_unlock(&cm->mu);
            break;
        }
        pthread_mutex_unlock(&cm->mu);
        last_start_us = hd_sched_mono_us();
        now = hd_wall_ms(); /* after the wait: the time these outcomes are recorded */

        rc = hd_store_begin(cm->st, 1, &txn);
        if (rc == 0)
            rc = hd_counters_get(cm->st, txn, &c);
        last_acks = 0;
        for (b = list; b; b = b->next)
            last_acks += b->n;
        for (b = list; rc == 0 && b; b = b->next) {
            rc = hd_queue_apply(cm->st, txn, &c, b->acks, b->n, now, &cm->health);
            cm->acks += b->n;
            for (size_t i = 0; rc == 0 && i < b->nlive; i++) {
                rc = hd_live_put(cm->st, txn, b->live[i].host, &b->live[i].l);
                if (rc == 0 && b->live[i].err)
                    rc = hd_live_err_put(cm->st, txn, b->live[i].host, b->live[i].err);
            }
        }
        if (rc == 0)
            rc = hd_counters_put(cm->st, txn, &c);
        if (rc == 0) {
            uint64_t t0 = hd_sched_mono_us(); /* ops: LMDB commit time */
            /* Relaxed: a crash of the system may undo this commit (then these deliveries go
             * again: at-least-once); the next commit's flush, or the run's end, makes it
             * durable. One device flush per commit instead of two. */
            rc = hd_store_commit_relaxed(txn);
            hd_metrics_observe(cm->metrics, HD_METRICS_SHARDS - 3, HD_MH_COMMIT,
                               hd_sched_mono_us() - t0);
            hd_metrics_add(cm->metrics, HD_METRICS_SHARDS - 3, HD_MC_COMMITS, 1);
        } else
            hd_store_abort(txn);
        if (rc)
            HD_LOG(HD_LOG_ERROR, "sched", "msg=\"group commit failed\" err=\"%s\"",
                   hd_strerror(rc));
        cm->commits++;
        while (list) {
            struct sthread *th;
            uint64_t one = 1;
            b = list;
            list = b->next;
            b->rc = rc;
            th = b->owner;
            pthread_mutex_lock(&th->done_mu);
            b->next = th->done_head;
            th->done_head = b;
            pthread_mutex_unlock(&th->done_mu);
            if (write(th->efd, &one, sizeof(one)) < 0)
                HD_LOG(HD_LOG_WARN, "sched", "msg=\"eventfd write failed\" err=%d", errno);
        }
    }
    return NULL;
}

void hd_sched_committer_stop(struct committer *cm)
{
    pthread_mutex_lock(&cm->mu);
    cm->stop = 1;
    pthread_cond_signal(&cm->cv);
    pthread_mutex_unlock(&cm->mu);
    pthread_join(cm->tid, NULL);
}

/* Threads of a run: options, start (every thread exists before any sends), the loop of a
 * loop thread, its read snapshot, stop and drain, and the summary. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "dns.h"
#include "collsync.h"
#include "err.h"
#include "log.h"
#include "rules.h"
#include "sched_impl.h"
#include "sign.h"
#include "tls.h"
#include "tlscache.h"

void hd_run_opts_default(struct hd_run_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_inflight_host = 64;
    o->max_inflight_thread = 8192;
    o->max_active_hosts = 128;
    o->slow_hosts = 256;
    o->slow_after_ms = 500;
    o->idle_timeout_ms = 10000;
    o->max_idle_conns = 4096;
    o->max_idle_memory = (size_t)256 << 20;
    o->connect_timeout_ms = 10000;
    o->tls_timeout_ms = 10000;
    o->response_timeout_ms = 30000;
    o->commit_interval_ms = 5;
    o->commit_batch = 4096;
    o->commit_gap_ms = 50;
    o->day_ms = 86400000ull;
    o->dead_days = 7;
    o->max_age_ms = 7 * 86400000ull;
    hd_hostpol_cfg_default(&o->hostpol);
    hd_retry_policy_default(&o->retry);
    o->user_agent = "Herald/" HD_VERSION;
}

struct hd_txn *hd_sched_rtxn(struct sthread *th)
{
    if (th->rtxn_live)
        return th->rtxn;
    if (th->rtxn) {
        if (hd_store_renew(th->rtxn) != 0)
            return NULL;
    } else if (hd_store_begin(th->st, 0, &th->rtxn) != 0) {
        th->rtxn = NULL;
        return NULL;
    }
    th->rtxn_live = 1;
    /* Lookups cached per activity hold while what they read is unchanged, however many
     * snapshots and commits (acknowledgements) come in between: the generations, read again
     * only when a commit moved the snapshot. */
    uint64_t id = hd_store_snapshot_id(th->rtxn);
    if (id != th->snap_id || !th->gen_stamp[0]) {
        uint64_t g[HD_GEN_N];
        int ok = hd_gens_get(th->st, th->rtxn, g) == 0;
        for (int i = 0; i < HD_GEN_N; i++)
            th->gen_stamp[i] = ok ? g[i] + 1 : 0;
        th->snap_id = id;
    }
    return th->rtxn;
}

void hd_sched_rtxn_end(struct sthread *th)
{
    if (th->rtxn_live) {
        hd_store_reset(th->rtxn);
        th->rtxn_live = 0;
    }
}

static int thread_idle(struct sthread *th)
{
    return !th->run_head && th->inflight == 0 && th->batches_out == 0 &&
           (!th->cur || th->cur->n == 0) && hd_http_inflight(th->http, NULL, 0, 0) == 0;
}

static int any_due(struct sthread *th)
{
    /* Work that is due now, or within UNTIL_IDLE_WAIT_MS (a short Retry-After, a retry
     * about to fall due), keeps --until-idle running. A host held longer by its policy
     * (operator pause, open breaker, long Retry-After, dead host) or a retry due later waits
     * for a later run: those deliveries stay stored and are reported. */
    uint64_t now = hd_wall_ms(), mono = hd_loop_now_ms(th->loop);
    for (size_t i = 0; i < th->hosts_cap; i++)
        for (struct shost *h = th->hosts[i]; h; h = h->hnext) {
            int work = !h->exhausted || h->nready ||
                       (h->retry_due_wall && h->retry_due_wall <= now + UNTIL_IDLE_WAIT_MS);
            if (work && !hd_hostpol_held(&h->pol, mono + UNTIL_IDLE_WAIT_MS))
                return 1;
        }
    return 0;
}

/* SIGTERM drain. Nothing new is dispatched (no host gets a turn); requests in
 * flight get until the deadline (hd_run_opts.drain_timeout_ms, default 10 s) to be answered
 * and their acknowledgements are collected; whatever is still in flight then is cancelled by
 * the caller and stays queued for the next run. */
static void drain_inflight(struct sthread *th)
{
    uint64_t end =
        hd_loop_update_now(th->loop) + (th->o->drain_timeout_ms ? th->o->drain_timeout_ms : 10000);

    while (th->inflight > 0 && hd_loop_now_ms(th->loop) < end) {
        hd_sched_flush(th);
        hd_sched_arm_efd(th);
        hd_loop_run_once(th->loop, 5);
        hd_sched_rtxn_end(th); /* begun by the callbacks (prepare_request), if at all */
        hd_sched_drain_done(th);
    }
}

static void gate_open(struct start_gate *g, int state)
{
    pthread_mutex_lock(&g->mu);
    g->state = state;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Returns 1 when the run starts, 0 when its start failed. */
static int gate_wait(struct start_gate *g)
{
    int state;

    pthread_mutex_lock(&g->mu);
    while (g->state == 0)
        pthread_cond_wait(&g->cv, &g->mu);
    state = g->state;
    pthread_mutex_unlock(&g->mu);
    return state > 0;
}

static void *thread_main(void *arg)
{
    struct sthread *th = arg;
    int idle_rounds = 0;
    uint64_t scan_ms = th->o->scan_interval_ms ? th->o->scan_interval_ms : HOST_SCAN_INTERVAL_MS;

    if (!gate_wait(th->gate)) {
        atomic_store(&th->exited, 1);
        return NULL;
    }
    hd_sched_scan_hosts(th);
    hd_sched_poll_controls(th); /* operator pauses and blocks apply before the first request */
    while (!atomic_load_explicit(th->stop, memory_order_relaxed)) {
        unsigned timeout, spent = 0;

        th->turns++; /* the slow pool counts waits in turns too (slots.c) */

        /* One turn per runnable host, HOST_BURST deliveries each, at most TURN_BUDGET in
         * all before the ring gets to send and receive. */
        while (th->run_head && spent < TURN_BUDGET) {
            struct shost *h = th->run_head;
            th->run_head = h->rnext;
            if (!th->run_head)
                th->run_tail = NULL;
            h->runnable = 0;
            spent += hd_sched_run_host(th, h, HOST_BURST);
        }
        if (th->cur && th->cur->n &&
            (hd_loop_now_ms(th->loop) - th->cur_first_ms >= th->o->commit_interval_ms ||
             th->inflight == 0))
            hd_sched_flush(th);
        if (hd_loop_now_ms(th->loop) - th->last_scan_ms >= scan_ms ||
            (th->o->kick && hd_sched_kick_gen(th->o->kick) != th->kick_seen &&
             hd_loop_now_ms(th->loop) - th->last_scan_ms >= KICK_SCAN_MIN_MS)) {
            th->kick_seen = hd_sched_kick_gen(th->o->kick);
            /* The scan reads a snapshot begun after the wake-up it answers: one left open
             * earlier in this pass (a refill) may predate the commit that woke it, and the
             * new work would then wait for the next periodic scan. */
            hd_sched_rtxn_end(th);
            hd_sched_scan_hosts(th);
        }
        if (hd_loop_now_ms(th->loop) - th->last_slot_check_ms >= SLOT_CHECK_MS)
            hd_sched_slots_check(th, hd_loop_now_ms(th->loop));
        if (hd_loop_now_ms(th->loop) - th->last_ctl_ms >= CTL_POLL_MS)
            hd_sched_poll_controls(th);
        if (hd_loop_now_ms(th->loop) - th->last_live_ms >= LIVE_INTERVAL_MS)
            hd_sched_publish_live(th, 0);
        if (th->o->override_gen && atomic_load(th->o->override_gen) != th->override_gen)
            hd_sched_reapply_overrides(th); /* ops: configuration reloaded */
        hd_sched_rtxn_end(th);
        hd_sched_arm_efd(th);
        if (th->o->until_idle && thread_idle(th) && !any_due(th)) {
            if (++idle_rounds > 2)
                break;
        } else {
            idle_rounds = 0;
        }
        timeout = th->run_head ? 0 : (th->cur && th->cur->n ? th->o->commit_interval_ms : 50);
        if (hd_loop_run_once(th->loop, timeout) < 0) {
            th->rc = HD_ERR_INVALID;
            break;
        }
        /* Requests signed in the callbacks (prepare_request) share one snapshot for their
         * key checks, begun by the first of them and ended here, before the next wait. */
        hd_sched_rtxn_end(th);
        hd_sched_drain_done(th);
    }
    /* Stop: let in-flight requests finish or fail, and their acknowledgements commit. */
    drain_inflight(th); /* ops: up to the drain deadline; nothing new is sent */
    hd_http_client_shutdown(th->http);
    for (int i = 0, last = 0; i < 2000 && (!hd_http_client_idle(th->http) || th->batches_out ||
                                           (th->cur && th->cur->n) || !last);
         i++) {
        if (!last && hd_http_client_idle(th->http)) {
            /* Final live report: nothing in flight any more (no stale in_flight in stats). */
            hd_sched_publish_live(th, 1);
            last = 1;
        }
        hd_sched_flush(th);
        hd_sched_arm_efd(th);
        hd_loop_run_once(th->loop, 5);
        hd_sched_rtxn_end(th);
        hd_sched_drain_done(th);
    }
    hd_sched_rtxn_end(th);
    hd_tls_thread_cleanup();
    atomic_store(&th->exited, 1);
    return NULL;
}

static int thread_init(struct sthread *th)
{
    struct hd_http_opts ho;
    struct hd_dns_opts dopts;
    int rc;

    th->rnd = (uint32_t)(hd_wall_ms() * 2654435761u) ^ (th->idx + 1) * 0x9E3779B9u;
    if (!th->rnd)
        th->rnd = 1;
    pthread_mutex_init(&th->done_mu, NULL);
    th->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (th->efd < 0)
        return -errno;
    rc = hd_loop_new(&th->loop, 4096);
    if (rc)
        return rc;
    hd_dns_opts_default(&dopts);
    rc = hd_dns_new(&th->dns, th->loop, &dopts);
    if (rc)
        return rc;
    for (size_t i = 0; i < th->o->nresolve; i++) {
        rc = hd_dns_add_override(th->dns, th->o->resolve[i]);
        if (rc)
            return rc;
    }
    hd_http_opts_default(&ho);
    ho.connect_timeout_ms = th->o->connect_timeout_ms;
    ho.tls_timeout_ms = th->o->tls_timeout_ms;
    ho.response_timeout_ms = th->o->response_timeout_ms;
    ho.idle_timeout_ms = th->o->idle_timeout_ms;
    ho.max_idle_conns = th->o->max_idle_conns;
    ho.max_idle_bytes = th->o->max_idle_memory / (th->nthreads ? th->nthreads : 1);
    if (th->o->max_idle_memory && !ho.max_idle_bytes)
        ho.max_idle_bytes = 1; /* a cap below one connection per thread: keep none idle */
    ho.max_streams_per_host = th->o->hostpol.win_max;
    ho.ca_file = th->o->ca_file;
    ho.allow_private = th->o->allow_private;
    ho.dns = th->dns;
    ho.tls_cache = th->tls_cache;
    ho.tls_trust = th->tls_trust;
    rc = hd_http_client_new(&th->http, th->loop, &ho);
    if (rc)
        return rc;
    rc = hd_signer_new(&th->signer);
    if (rc)
        return rc;
    if (th->o->key_cache)
        hd_signer_set_max_keys(th->signer, th->o->key_cache);
    return 0;
}

/* Undoes thread_init, also when it stopped half way. */
static void thread_fini(struct sthread *th)
{
    hd_sched_hosts_free(th);
    hd_sched_lease_fini(th);
    hd_sched_acts_free(th);
    hd_rules_free(th->rules);
    hd_sched_batch_free(th->cur);
    while (th->spare) {
        struct batch *b = th->spare;
        th->spare = b->next;
        hd_sched_batch_free(b);
    }
    th->nspare = 0;
    hd_store_abort(th->rtxn);
    hd_http_client_free(th->http);
    hd_dns_free(th->dns);
    hd_signer_free(th->signer);
    hd_loop_free(th->loop);
    if (th->efd >= 0)
        close(th->efd);
    pthread_mutex_destroy(&th->done_mu);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

int hd_run(struct hd_store *st, const struct hd_run_opts *o, _Atomic int *stop,
           struct hd_run_summary *sum)
{
    struct committer cm;
    struct start_gate gate;
    struct sthread *ths;
    struct hd_tls_cache *tls_cache = NULL;
    struct hd_tls_trust *tls_trust = NULL;
    unsigned n = o->threads, ninit = 0, nstarted = 0;
    struct timespec t0, t1;
    double cpu0 = cpu_seconds();
    uint64_t last_done = 0, slow_moves = 0;
    int rc = hd_store_lock_run(st), running, unclean = 0;
    uint64_t start_wall = hd_wall_ms();

    /* The run lock is taken here and released before returning, after a failed start as
     * after a clean stop (hd_store_close would release it too). */
    if (rc == HD_ERR_BUSY) {
        HD_LOG(HD_LOG_ERROR, "run", "msg=\"another herald run holds this store\" dir=\"%s\"",
               hd_store_dir(st));
        return rc;
    }
    if (rc)
        return rc;
    rc = hd_store_run_mark(st, 1, &unclean);
    if (rc == 0 && o->collection_sync_url && *o->collection_sync_url) {
        /* FEP-8fcf digests of follows stored before the digests existed (once per store). */
        struct hd_txn *txn;
        rc = hd_store_begin(st, 1, &txn);
        if (rc == 0 && (rc = hd_collsync_ensure(st, txn)) != 0)
            hd_store_abort(txn);
        else if (rc == 0)
            rc = hd_store_commit(txn);
    }
    if (rc) {
        hd_store_unlock_run(st);
        return rc;
    }
    if (!n) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (unsigned)c : 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(&cm, 0, sizeof(cm));
    cm.st = st;
    cm.metrics = o->metrics; /* ops */
    cm.health.day_ms = o->day_ms;
    cm.health.dead_days = o->dead_days;
    cm.gap_ms = o->commit_gap_ms;
    rc = -pthread_mutex_init(&cm.mu, NULL);
    if (rc)
        goto fail_cm_mu;
    rc = -pthread_cond_init(&cm.cv, NULL);
    if (rc)
        goto fail_cm_cv;
    gate.state = 0;
    rc = -pthread_mutex_init(&gate.mu, NULL);
    if (rc)
        goto fail_gate_mu;
    rc = -pthread_cond_init(&gate.cv, NULL);
    if (rc)
        goto fail_gate_cv;
    rc = hd_sched_tickets_open(st, o->tls_sessions, &tls_cache);
    if (rc)
        goto fail_tickets;
    /* One trust store for every loop thread (the system bundle is parsed at the first TLS
     * connection, a --ca-file here). */
    rc = hd_tls_trust_new(&tls_trust, o->ca_file);
    if (rc)
        goto fail_trust;
    ths = calloc(n, sizeof(*ths));
    if (!ths) {
        rc = -ENOMEM;
        goto fail_alloc;
    }
    for (; ninit < n; ninit++) {
        struct sthread *th = &ths[ninit];
        th->idx = ninit;
        th->nthreads = n;
        th->o = o;
        th->st = st;
        th->cm = &cm;
        th->gate = &gate;
        th->stop = stop;
        th->efd = -1;
        th->unclean_before_ms = unclean ? start_wall : 0;
        th->tls_cache = tls_cache;
        th->tls_trust = tls_trust;
        rc = thread_init(th);
        if (rc) {
            HD_LOG(HD_LOG_ERROR, "run", "msg=\"cannot start loop thread\" err=\"%s\"",
                   hd_strerror(rc));
            ninit++; /* partly set up: thread_fini undoes what was done */
            goto fail_threads;
        }
    }
    rc = -pthread_create(&cm.tid, NULL, hd_sched_committer_main, &cm);
    if (rc) {
        HD_LOG(HD_LOG_ERROR, "run", "msg=\"cannot start the committer thread\" err=\"%s\"",
               hd_strerror(rc));
        goto fail_threads;
    }
    for (; nstarted < n; nstarted++) {
        rc = -pthread_create(&ths[nstarted].tid, NULL, thread_main, &ths[nstarted]);
        if (rc) {
            HD_LOG(HD_LOG_ERROR, "run", "msg=\"cannot start loop thread\" err=\"%s\"",
                   hd_strerror(rc));
            goto fail_loops;
        }
    }
    if (o->kick) {
        int efds[64];
        unsigned ne = n < 64 ? n : 64; /* more threads: the rest see the kick at their next turn */
        for (unsigned i = 0; i < ne; i++)
            efds[i] = ths[i].efd;
        if (hd_sched_kick_attach(o->kick, efds, ne) != 0)
            HD_LOG(HD_LOG_WARN, "run", "msg=\"no wake-up for new work: rescans only\"");
    }
    gate_open(&gate, 1);
    if (unclean)
        HD_LOG(HD_LOG_WARN, "run",
               "msg=\"the previous run did not stop cleanly: deliveries it "
               "had in flight are sent again, and none of its Creates is cancelled\"");
    HD_LOG(HD_LOG_INFO, "run", "msg=\"started\" threads=%u until_idle=%d", n, o->until_idle);

    /* Progress: the main thread only watches counters; threads exit by themselves. */
    for (unsigned tick = 1;; tick++) {
        uint64_t done = 0, retry = 0, dead = 0, infl = 0;
        struct timespec req = {0, 200 * 1000000L};
        nanosleep(&req, NULL);
        running = 0;
        for (unsigned i = 0; i < n; i++) {
            done += atomic_load(&ths[i].n_done);
            retry += atomic_load(&ths[i].n_retry);
            dead += atomic_load(&ths[i].n_dead);
            infl += atomic_load(&ths[i].n_inflight);
            running += !atomic_load(&ths[i].exited);
        }
        if (o->progress && (tick % 5 == 0 || !running)) {
            fprintf(stderr,
                    "progress: done=%" PRIu64 " retrying=%" PRIu64 " dead=%" PRIu64
                    " in_flight=%" PRIu64 " rate=%" PRIu64 "/s\n",
                    done, retry, dead, infl, (done - last_done) * 5 / (tick % 5 ? tick % 5 : 5));
            last_done = done;
        }
        if (!running)
            break;
        if (tick % (TICKETS_SAVE_MS / 200) == 0)
            hd_sched_tickets_save(st, tls_cache); /* off the loop threads, in groups */
    }
    for (unsigned i = 0; i < n; i++)
        pthread_join(ths[i].tid, NULL);
    hd_sched_kick_attach(o->kick, NULL, 0); /* the eventfds close with their threads */
    hd_sched_committer_stop(&cm);
    /* Batches the committer returned after the threads stopped: release them. */
    memset(sum, 0, sizeof(*sum));
    for (unsigned i = 0; i < n; i++) {
        hd_sched_drain_done(&ths[i]);
        slow_moves += ths[i].slow_moves;
        sum->done += ths[i].n_done;
        sum->retried += ths[i].n_retry;
        sum->dead += ths[i].n_dead;
        sum->attempts += ths[i].n_attempts;
        sum->signs += ths[i].signs;
        if (ths[i].signs_timed)
            sum->sign_cpu_seconds +=
                (double)ths[i].sign_ns / 1e9 * (double)ths[i].signs / (double)ths[i].signs_timed;
        if (ths[i].rc)
            rc = ths[i].rc;
        thread_fini(&ths[i]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    sum->seconds = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    sum->cpu_seconds = cpu_seconds() - cpu0;
    {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        sum->max_rss_kb = ru.ru_maxrss;
    }
    HD_LOG(HD_LOG_INFO, "run",
           "msg=\"stopped\" commits=%" PRIu64 " acks=%" PRIu64 " slow_pool_moves=%" PRIu64,
           cm.commits, cm.acks, slow_moves);
    hd_sched_tickets_save(st, tls_cache); /* the clients are gone: the last new sessions */
    hd_tls_cache_free(tls_cache);
    hd_tls_trust_free(tls_trust);
    if (hd_store_run_mark(st, 0, NULL) != 0)
        HD_LOG(HD_LOG_WARN, "run", "msg=\"cannot record the clean stop\"");
    hd_store_unlock_run(st);
    free(ths);
    pthread_cond_destroy(&gate.cv);
    pthread_mutex_destroy(&gate.mu);
    pthread_cond_destroy(&cm.cv);
    pthread_mutex_destroy(&cm.mu);
    return rc;

fail_loops:
    gate_open(&gate, -1); /* the threads that started leave without doing anything */
    for (unsigned i = 0; i < nstarted; i++)
        pthread_join(ths[i].tid, NULL);
    hd_sched_committer_stop(&cm);
fail_threads:
    for (unsigned i = 0; i < ninit; i++)
        thread_fini(&ths[i]);
    free(ths);
fail_alloc:
    hd_tls_trust_free(tls_trust);
fail_trust:
    hd_tls_cache_free(tls_cache);
fail_tickets:
    pthread_cond_destroy(&gate.cv);
fail_gate_cv:
    pthread_mutex_destroy(&gate.mu);
fail_gate_mu:
    pthread_cond_destroy(&cm.cv);
fail_cm_cv:
    pthread_mutex_destroy(&cm.mu);
fail_cm_mu:
    /* Nothing was sent: leave the store as it was. A crash before this start stays known. */
    if (!unclean && hd_store_run_mark(st, 0, NULL) != 0)
        HD_LOG(HD_LOG_WARN, "run", "msg=\"cannot record that the run did not start\"");
    hd_store_unlock_run(st);
    return rc;
}

/* The delivery runner.
 *
 * Threads: N loop threads (one per core by default) and one committer thread.
 *  - Each loop thread owns the hosts whose name hashes to it: their in-memory state, their
 *    connections (an hd_http_client), a resolver and a signer. No locks on the hot path.
 *  - The committer owns all store writes of the run: loop threads hand it batches of
 *    acknowledgements; it applies all pending batches in one LMDB write transaction (group
 *    commit), then hands each batch back to its thread. A delivery stays leased in memory
 *    until its acknowledgement has committed, so a rescan can never send it twice, and
 *    nothing is counted done before its transaction commits. Commits (fsync) run off the
 *    loop threads, so a slow disk never stalls the rings.
 *
 * Per host: deliveries are read from the store in key order (host, seq, idx) by a cursor
 * position kept in memory; entries not yet due (retry later) are skipped and the host's
 * timer is armed for the earliest of them, which resets the position to the start. Signing
 * runs inline on the loop thread: it is the bulk of the CPU per delivery, and with one loop
 * per core a worker pool would only move the same work elsewhere and add hand-offs.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "dns.h"
#include "err.h"
#include "hostpol.h"
#include "http.h"
#include "hostctl.h"
#include "keys.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "queue.h"
#include "rules.h"
#include "runner.h"
#include "sign.h"
#include "strset.h"
#include "tls.h"

#define ACT_CACHE_MAX 4096
#define HOST_SCAN_INTERVAL_MS 250
#define HOST_BURST 16
#define UNTIL_IDLE_WAIT_MS 5000 /* --until-idle waits for work due this soon */
#define CTL_POLL_MS 250       /* operator controls and rules take effect within this */
#define LIVE_INTERVAL_MS 1000 /* live per-host state published this often */
#define TURN_BUDGET 128
#define DEL_FREE_MAX 256 /* released deliveries kept per thread for reuse (6 KB each) */

struct sthread;
struct shost;
struct sact;

/* A leased delivery: ready, in flight, or waiting for its acknowledgement to commit. */
struct sdel {
    struct sdel *next;  /* ready list */
    struct sdel *lnext; /* leased-set chain */
    struct shost *host;
    struct sact *act;
    uint64_t seq;
    uint32_t attempts;  /* attempts made before this one */
    uint32_t flags;     /* HD_QF_* */
    uint8_t scheme;     /* HD_SCHEME_* used for this request */
    uint8_t switched;   /* already retried once with the other scheme after a 401 */
    uint8_t ed;         /* RFC 9421 request signed with the actor's Ed25519 key */
    uint8_t local;      /* prepare failed: the request was never sent (its key) */
    uint16_t keylen;
    uint8_t key[HD_QKEY_MAX];
    struct hd_url url;
    char date[40];
    char sig[2048];
    char siginput[768];
    struct hd_http_header hdrs[8];
    uint64_t start_ms;
};

struct sact {
    struct sact *hnext;
    uint64_t seq;
    unsigned refs;
    char *id;
    char *key_id;
    char *ed_key_id; /* NULL: the actor has no Ed25519 key */
    char *body;
    size_t body_len;
    char digest[64];
    char cdigest[64]; /* RFC 9530 Content-Digest */
    uint64_t after[2]; /* activities this one must not overtake on a host (0 = none) */
    char *object_id;   /* NULL: none */
    uint8_t kind;      /* ACT_* */
    uint64_t del_gen;  /* Create: rtxn generation of the cached Delete lookup (0: none yet) */
    uint64_t del_seq;  /* Create: its object's Delete, as of del_gen (0: none) */
};

/* Activity kinds that cancellation (issue 4 item 8) cares about. */
enum { ACT_OTHER = 0, ACT_CREATE = 1, ACT_UPDATE = 2, ACT_DELETE = 3 };
#define CANCEL_MAX 64 /* deliveries cancelled at once on one host; more: not cancelled */

struct shost {
    struct shost *hnext;
    struct shost *rnext;
    struct sthread *th;
    int runnable;
    int exhausted;
    uint8_t pos[HD_QKEY_MAX];
    size_t poslen;
    uint64_t retry_due_wall; /* earliest not_before of skipped entries, 0 none */
    struct hd_timer timer;
    struct hd_timer wake;    /* policy wake-up: rate limit, Retry-After, breaker probe */
    struct sdel *ready_head, *ready_tail;
    unsigned nready, inflight;
    struct hd_hostpol pol;
    uint8_t scheme;       /* HD_SCHEME_* to use: remembered once one worked */
    uint8_t prefer_ed;    /* the host asked for ed25519 (Accept-Signature) */
    uint8_t has_ctl, ctl_seen; /* operator controls (hostctl) apply to this host */
    uint8_t slot_waiting; /* queued for an active-host slot (max_active_hosts) */
    struct shost *snext;
    uint64_t reset_gen;   /* last `host reset` generation applied */
    uint32_t ok_since;    /* successes since the last live report */
    uint32_t lat[32];     /* recent response latencies (ms), a ring, for p50/p99 */
    uint8_t lat_n, lat_i;
    struct hd_mhost *mh;  /* metrics cell (ops); NULL without metrics */
    int8_t m_breaker, m_dead; /* states last counted in the breaker/dead gauges */
    char name[HD_HOST_MAX];
};

struct live_item {
    char host[HD_HOST_MAX];
    struct hd_live l;
};

struct batch {
    struct batch *next;
    struct sthread *owner;
    struct hd_ack *acks;
    struct sdel **dels;
    size_t n, cap;
    struct live_item *live; /* per-host live state to publish (hosts list, stats, top) */
    size_t nlive;
    int rc;
};

struct committer {
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct batch *head;
    int stop;
    struct hd_store *st;
    struct hd_health_policy health;
    uint64_t commits, acks;
    struct hd_metrics *metrics; /* ops: commit time */
};

/* Loop threads wait here until every thread of the run exists, so a start that fails half
 * way has sent nothing and can leave the store as it found it. */
struct start_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state; /* 0 closed, 1 go, -1 the start failed: leave at once */
};

struct sthread {
    unsigned idx, nthreads;
    pthread_t tid;
    const struct hd_run_opts *o;
    struct hd_store *st;
    struct committer *cm;
    struct start_gate *gate;
    _Atomic int *stop; /* set by a signal handler or the operations thread */
    struct hd_loop *loop;
    struct hd_dns *dns;
    struct hd_http_client *http;
    struct hd_signer *signer;
    struct hd_txn *rtxn;
    int rtxn_live;
    uint64_t rtxn_gen; /* counts read transactions begun: cached lookups are valid within one */
    uint64_t unclean_before_ms; /* the previous run crashed: Creates queued before this (wall
                                 * ms) may have been sent unrecorded: never cancelled */

    struct shost **hosts; /* hash table */
    size_t hosts_cap, nhosts;
    struct shost *run_head, *run_tail;

    struct sdel **leased; /* hash table of leased deliveries by key */
    size_t leased_cap, nleased;

    struct sact **acts;
    size_t acts_cap, nacts;

    struct batch *cur;        /* acknowledgements being collected */
    uint64_t cur_first_ms;
    unsigned batches_out;     /* handed to the committer, not yet back */
    pthread_mutex_t done_mu;
    struct batch *done_head;  /* back from the committer */
    int efd;
    struct hd_loop_op efd_op;
    uint64_t efd_val;
    int efd_armed;

    uint64_t last_seq_seen, last_scan_ms;
    unsigned active_hosts;               /* hosts with requests in flight */
    struct shost *slot_head, *slot_tail; /* hosts waiting for an active-host slot */
    uint64_t ctl_gen, rules_gen, last_ctl_ms, last_live_ms;
    int ctl_loaded;
    struct hd_rules *rules; /* defederation snapshot, reloaded when its generation moves */
    uint32_t rnd;
    unsigned inflight;
    int rc;
    unsigned override_gen; /* ops: last hd_run_opts.override_gen applied */
    time_t date_t;         /* date_s is the Date header for this second (0: none yet) */
    char date_s[40];
    struct sdel *del_free; /* released deliveries kept for reuse (chained by next) */
    unsigned ndel_free;

    _Atomic uint64_t n_done, n_retry, n_dead, n_attempts, n_inflight;
    uint64_t signs, signs_timed, sign_ns; /* hd_run_summary.signs / sign_cpu_seconds */
    _Atomic int exited;
};

/* The Date header (one-second resolution), formatted once per second rather than per request. */
static void date_now(struct sthread *th, char *out, size_t cap)
{
    time_t t = time(NULL);
    size_t n;

    if (t != th->date_t) {
        hd_http_date(t, th->date_s, sizeof(th->date_s));
        th->date_t = t;
    }
    n = strlen(th->date_s);
    if (n >= cap)
        n = cap ? cap - 1 : 0;
    if (cap) {
        memcpy(out, th->date_s, n);
        out[n] = 0;
    }
}

static uint32_t xrand(struct sthread *th)
{
    uint32_t x = th->rnd;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    th->rnd = x;
    return x;
}

void hd_run_opts_default(struct hd_run_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_inflight_host = 64;
    o->max_inflight_thread = 8192;
    o->max_active_hosts = 512;
    o->idle_timeout_ms = 2000;
    o->connect_timeout_ms = 10000;
    o->tls_timeout_ms = 10000;
    o->response_timeout_ms = 30000;
    o->commit_interval_ms = 5;
    o->commit_batch = 4096;
    o->day_ms = 86400000ull;
    o->dead_days = 7;
    o->max_age_ms = 7 * 86400000ull;
    hd_hostpol_cfg_default(&o->hostpol);
    hd_retry_policy_default(&o->retry);
    o->user_agent = "Herald/" HD_VERSION;
}

/* ---------------------------------------------------------------- hash tables */

static int grow_table(void ***tab, size_t *cap, size_t next_off, uint64_t (*hash)(const void *))
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

static uint64_t del_hash(const void *p)
{
    const struct sdel *d = p;
    return hd_hash64(d->key, d->keylen);
}

static uint64_t act_hash_seq(uint64_t seq)
{
    return seq * 0x9E3779B97F4A7C15ull;
}

static uint64_t act_hash(const void *p)
{
    return act_hash_seq(((const struct sact *)p)->seq);
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

static void on_host_timer(struct hd_timer *t);
static void on_host_wake(struct hd_timer *t);

/* ---- ops (engine/daemon.c, metrics.c): per-host overrides and metrics ---- */

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

static void reapply_overrides(struct sthread *th)
{
    th->override_gen = atomic_load(th->o->override_gen);
    for (size_t i = 0; i < th->hosts_cap; i++)
        for (struct shost *h = th->hosts[i]; h; h = h->hnext)
            if (!h->has_ctl) /* `herald host set` (hostctl) wins over the file */
                apply_override(th, h);
}

/* Publishes the host's policy state; keeps this thread's breaker/dead gauges in step. */
static void note_host_metrics(struct sthread *th, struct shost *h, int warn)
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

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct shost *host_get(struct sthread *th, const char *name)
{
    struct shost *h = host_find(th, name);
    size_t b;
    if (h)
        return h;
    if ((th->nhosts + 1) * 2 > th->hosts_cap &&
        grow_table((void ***)&th->hosts, &th->hosts_cap, offsetof(struct shost, hnext),
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

static int leased_has(struct sthread *th, const uint8_t *key, size_t keylen)
{
    if (!th->leased_cap)
        return 0;
    struct sdel *d = th->leased[hd_hash64(key, keylen) & (th->leased_cap - 1)];
    while (d && (d->keylen != keylen || memcmp(d->key, key, keylen) != 0))
        d = d->lnext;
    return d != NULL;
}

static int leased_add(struct sthread *th, struct sdel *d)
{
    size_t b;
    if ((th->nleased + 1) * 2 > th->leased_cap &&
        grow_table((void ***)&th->leased, &th->leased_cap, offsetof(struct sdel, lnext),
                   del_hash) != 0)
        return -ENOMEM;
    b = del_hash(d) & (th->leased_cap - 1);
    d->lnext = th->leased[b];
    th->leased[b] = d;
    th->nleased++;
    return 0;
}

static void leased_del(struct sthread *th, struct sdel *d)
{
    struct sdel **pp = &th->leased[del_hash(d) & (th->leased_cap - 1)];
    while (*pp && *pp != d)
        pp = &(*pp)->lnext;
    if (*pp) {
        *pp = d->lnext;
        th->nleased--;
    }
}

/* ---------------------------------------------------------------- activities */

static void act_free(struct sact *a)
{
    if (!a)
        return;
    free(a->id);
    free(a->key_id);
    free(a->ed_key_id);
    free(a->body);
    free(a->object_id);
    free(a);
}

static void acts_trim(struct sthread *th)
{
    /* Drop unreferenced activities once the cache is over its bound. */
    for (size_t i = 0; i < th->acts_cap && th->nacts > ACT_CACHE_MAX / 2; i++) {
        struct sact **pp = &th->acts[i];
        while (*pp) {
            struct sact *a = *pp;
            if (a->refs == 0) {
                *pp = a->hnext;
                act_free(a);
                th->nacts--;
            } else {
                pp = &a->hnext;
            }
        }
    }
}

static struct hd_txn *rtxn(struct sthread *th)
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
    th->rtxn_gen++;
    return th->rtxn;
}

static void rtxn_end(struct sthread *th)
{
    if (th->rtxn_live) {
        hd_store_reset(th->rtxn);
        th->rtxn_live = 0;
    }
}

static char *slice_dup(struct hd_slice s)
{
    char *p = malloc(s.n + 1);
    if (p) {
        if (s.n)
            memcpy(p, s.p, s.n);
        p[s.n] = 0;
    }
    return p;
}

/* Makes sure the signer holds key_id. The signer caches hd_run_opts.key_cache keys and evicts
 * the least recently used; an activity cached here may outlive its key there (a retry comes
 * back to it much later), so a key that is missing is loaded again from the store. Returns
 * 0, HD_ERR_NO_KEY when the key is gone or unusable (final), or a transient error (store,
 * memory). */
static int key_load(struct sthread *th, const char *key_id)
{
    int live = th->rtxn_live, rc;
    struct hd_slice pem;
    struct hd_txn *txn;

    if (hd_signer_has_key(th->signer, key_id))
        return 0;
    txn = rtxn(th);
    if (!txn)
        return HD_ERR_STORE;
    rc = hd_keys_get_pem(th->st, txn, key_id, &pem);
    if (rc == 0)
        rc = hd_signer_add_key(th->signer, key_id, pem.p, pem.n, 2048);
    if (!live)
        rtxn_end(th); /* called right before sending: keep no snapshot across the loop's wait */
    return rc && hd_policy_local_final(rc) ? HD_ERR_NO_KEY : rc;
}

/* The actor's Ed25519 key, for RFC 9421. Optional: without one, or with one that cannot be
 * used, RSA serves. Returns 0 or a transient error. */
static int ed_key_load(struct sthread *th, struct hd_txn *txn, struct hd_slice actor,
                       struct sact *a)
{
    struct hd_slice ed = {NULL, 0};
    int rc = hd_actor_get_ed(th->st, txn, actor.p, actor.n, &ed);

    if (rc)
        return hd_policy_local_final(rc) ? 0 : rc;
    if (!ed.p || !ed.n)
        return 0;
    a->ed_key_id = slice_dup(ed);
    if (!a->ed_key_id)
        return -ENOMEM;
    rc = key_load(th, a->ed_key_id);
    if (rc == HD_ERR_NO_KEY) {
        free(a->ed_key_id);
        a->ed_key_id = NULL;
        rc = 0;
    }
    return rc;
}

/* Returns the cached activity seq (loading it and its actor's key on first use), or NULL
 * with *err set: final (hd_policy_local_final: HD_ERR_NOT_FOUND when the activity is gone,
 * HD_ERR_NO_KEY when its actor has no usable key, a damaged record), or transient (a store
 * error, -ENOMEM): the caller then releases the delivery and looks again later. */
static struct sact *act_get(struct sthread *th, uint64_t seq, int *err)
{
    struct sact *a = NULL;
    struct hd_act_view v;
    struct hd_slice kid;
    struct hd_txn *txn;
    int fed, rc;
    size_t b;

    if (th->acts_cap) {
        a = th->acts[act_hash_seq(seq) & (th->acts_cap - 1)];
        while (a && a->seq != seq)
            a = a->hnext;
        if (a)
            return a;
    }
    txn = rtxn(th);
    if (!txn) {
        *err = HD_ERR_STORE;
        return NULL;
    }
    rc = hd_queue_get_activity(th->st, txn, seq, &v);
    if (rc) {
        *err = rc;
        return NULL;
    }
    rc = hd_actor_get(th->st, txn, v.actor.p, v.actor.n, &kid, &fed);
    if (rc == 0 && !kid.p)
        rc = HD_ERR_NO_KEY;
    if (rc) {
        *err = hd_policy_local_final(rc) ? HD_ERR_NO_KEY : rc;
        return NULL;
    }
    a = calloc(1, sizeof(*a));
    if (!a) {
        *err = -ENOMEM;
        return NULL;
    }
    a->seq = seq;
    a->id = slice_dup(v.id);
    a->key_id = slice_dup(kid);
    a->body = slice_dup(v.body);
    a->body_len = v.body.n;
    a->after[0] = v.after[0];
    a->after[1] = v.after[1];
    if (v.type.n == 6 && !memcmp(v.type.p, "Create", 6))
        a->kind = ACT_CREATE;
    else if (v.type.n == 6 && !memcmp(v.type.p, "Update", 6))
        a->kind = ACT_UPDATE;
    else if (v.type.n == 6 && !memcmp(v.type.p, "Delete", 6))
        a->kind = ACT_DELETE;
    if (v.object_id.p && v.object_id.n && !(a->object_id = slice_dup(v.object_id))) {
        act_free(a);
        *err = -ENOMEM;
        return NULL;
    }
    if (!a->id || !a->key_id || !a->body) {
        act_free(a);
        *err = -ENOMEM;
        return NULL;
    }
    hd_digest_sha256((const uint8_t *)a->body, a->body_len, a->digest, sizeof(a->digest));
    hd_content_digest_sha256((const uint8_t *)a->body, a->body_len, a->cdigest,
                             sizeof(a->cdigest));
    rc = key_load(th, a->key_id);
    if (rc == 0)
        rc = ed_key_load(th, txn, v.actor, a);
    if (rc) {
        act_free(a);
        *err = rc;
        return NULL;
    }
    if (th->nacts >= ACT_CACHE_MAX)
        acts_trim(th);
    if ((th->nacts + 1) * 2 > th->acts_cap &&
        grow_table((void ***)&th->acts, &th->acts_cap, offsetof(struct sact, hnext), act_hash) !=
            0) {
        act_free(a);
        *err = -ENOMEM;
        return NULL;
    }
    b = act_hash_seq(seq) & (th->acts_cap - 1);
    a->hnext = th->acts[b];
    th->acts[b] = a;
    th->nacts++;
    return a;
}

/* ---------------------------------------------------------------- runnable hosts */

static void make_runnable(struct shost *h)
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
    h->retry_due_wall = 0;
    make_runnable(h);
}

static void on_host_wake(struct hd_timer *t)
{
    make_runnable(container_of(t, struct shost, wake));
}

static void note_retry_due(struct shost *h, uint64_t due_wall)
{
    struct sthread *th = h->th;
    uint64_t now_wall = hd_wall_ms(), mono = hd_loop_now_ms(th->loop);
    if (h->retry_due_wall && h->retry_due_wall <= due_wall)
        return;
    h->retry_due_wall = due_wall;
    hd_timer_arm(th->loop, &h->timer,
                 mono + (due_wall > now_wall ? due_wall - now_wall : 0) + 1);
}

/* ---------------------------------------------------------------- acknowledgements */

static struct batch *batch_new(struct sthread *th, size_t cap)
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

static void batch_free(struct batch *b)
{
    if (!b)
        return;
    free(b->live);
    free(b->acks);
    free(b->dels);
    free(b);
}

static void flush_acks(struct sthread *th)
{
    struct committer *cm = th->cm;
    struct batch *b = th->cur;
    if (!b || b->n == 0)
        return;
    th->cur = NULL;
    th->batches_out++;
    pthread_mutex_lock(&cm->mu);
    b->next = cm->head;
    cm->head = b;
    pthread_cond_signal(&cm->cv);
    pthread_mutex_unlock(&cm->mu);
}

/* Appends an acknowledgement for d to the current batch and returns it (so the caller can set
 * the extra fields), or NULL when out of memory (d then stays leased until the run ends and
 * is delivered again by the next run: at-least-once). */
static struct hd_ack *add_ack(struct sthread *th, struct sdel *d, int kind, int status,
                              uint64_t not_before, const char *error)
{
    struct hd_ack *a;
    if (th->cur && th->cur->n == th->cur->cap)
        flush_acks(th);
    if (!th->cur) {
        th->cur = batch_new(th, th->o->commit_batch);
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

static void del_release(struct sthread *th, struct sdel *d)
{
    leased_del(th, d);
    if (d->act)
        d->act->refs--;
    if (th->ndel_free < DEL_FREE_MAX) {
        /* Kept for del_alloc: a 6 KB malloc/free per delivery showed in profiles. */
        d->next = th->del_free;
        th->del_free = d;
        th->ndel_free++;
        return;
    }
    free(d);
}

/* A delivery that could not be settled for a local, passing reason (a store read failed,
 * no memory) goes back to the store untouched: no attempt counted, no outcome. Its host
 * looks again after HD_POLICY_LOCAL_RETRY_MS, so a lasting failure costs one try per host
 * and second, and a warning per host and minute. */
static void release_later(struct sthread *th, struct sdel *d, int err)
{
    struct shost *h = d->host;

    HD_LOG_HOST(HD_LOG_WARN, "sched", h->name,
                "msg=\"delivery put back: local failure, tried again in %u ms\" err=\"%s\"",
                (unsigned)HD_POLICY_LOCAL_RETRY_MS, hd_strerror(err));
    del_release(th, d);
    note_retry_due(h, hd_wall_ms() + HD_POLICY_LOCAL_RETRY_MS);
}

static void drain_done(struct sthread *th)
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
                    note_retry_due(h, b->acks[i].not_before_ms);
                }
            } else {
                /* Not committed: the entry is still queued as before; rescan delivers it
                 * again (at-least-once). */
                h->poslen = 0;
                h->exhausted = 0;
            }
            del_release(th, d);
            make_runnable(h);
        }
        th->batches_out--;
        batch_free(b);
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

static void arm_efd(struct sthread *th)
{
    if (th->efd_armed)
        return;
    th->efd_op.cb = on_efd;
    if (hd_loop_poll(th->loop, &th->efd_op, th->efd, POLLIN) == 0)
        th->efd_armed = 1;
}

static void *committer_main(void *arg)
{
    struct committer *cm = arg;
    for (;;) {
        struct batch *list, *b;
        struct hd_counters c;
        struct hd_txn *txn;
        uint64_t now = hd_wall_ms();
        int rc;

        pthread_mutex_lock(&cm->mu);
        while (!cm->head && !cm->stop)
            pthread_cond_wait(&cm->cv, &cm->mu);
        list = cm->head;
        cm->head = NULL;
        if (!list && cm->stop) {
            pthread_mutex_unlock(&cm->mu);
            break;
        }
        pthread_mutex_unlock(&cm->mu);

        rc = hd_store_begin(cm->st, 1, &txn);
        if (rc == 0)
            rc = hd_counters_get(cm->st, txn, &c);
        for (b = list; rc == 0 && b; b = b->next) {
            rc = hd_queue_apply(cm->st, txn, &c, b->acks, b->n, now, &cm->health);
            cm->acks += b->n;
            for (size_t i = 0; rc == 0 && i < b->nlive; i++)
                rc = hd_live_put(cm->st, txn, b->live[i].host, &b->live[i].l);
        }
        if (rc == 0)
            rc = hd_counters_put(cm->st, txn, &c);
        if (rc == 0) {
            uint64_t t0 = mono_us(); /* ops: LMDB commit time */
            rc = hd_store_commit(txn);
            hd_metrics_observe(cm->metrics, HD_METRICS_SHARDS - 3, HD_MH_COMMIT, mono_us() - t0);
            hd_metrics_add(cm->metrics, HD_METRICS_SHARDS - 3, HD_MC_COMMITS, 1);
        }
        else
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

/* ---------------------------------------------------------------- delivery */

/* Applies the verdict of the classification table (policy.c) to one answer: the host's
 * policy and scheme, the delivery's acknowledgement, latency and metrics. */
static void on_response(const struct hd_http_resp *r, void *user_data)
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
        .scheme = d->scheme,
        .ed = d->ed,
        .now_s = (int64_t)time(NULL),
        .rnd = xrand(th),
    };
    struct hd_verdict v;
    struct hd_ack *a = NULL;

    h->inflight--;
    th->inflight--;
    if (!h->inflight) {
        th->active_hosts--;
        /* A slot is free: the longest-waiting host gets it. */
        if (th->slot_head) {
            struct shost *w = th->slot_head;
            th->slot_head = w->snext;
            if (!th->slot_head)
                th->slot_tail = NULL;
            w->slot_waiting = 0;
            make_runnable(w);
        }
    }
    atomic_fetch_sub(&th->n_inflight, 1);
    hd_metrics_gauge_add(th->o->metrics, th->idx, HD_MG_IN_FLIGHT, -1); /* ops */
    hd_mhost_inflight_add(h->mh, -1);

    hd_policy_verdict(&pcfg, &in, &v);
    if (v.unsent)
        hd_hostpol_unsent(&h->pol);
    if (v.kind == HD_VERDICT_RELEASE) {
        if (v.retry_ms) {
            release_later(th, d, r->error);
            return;
        }
        del_release(th, d);
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
        make_runnable(h);
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
        a = add_ack(th, d, HD_ACK_DONE, r->status, 0, NULL);
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
        a = add_ack(th, d, HD_ACK_DEAD, r->status, 0, v.error);
        if (a && r->body_len && v.counted) {
            a->body_len = (uint16_t)(r->body_len < sizeof(a->body) ? r->body_len : sizeof(a->body));
            memcpy(a->body, r->body, a->body_len);
        }
    } else {
        uint64_t due = hd_wall_ms() + v.retry_ms;
        a = add_ack(th, d, HD_ACK_RETRY, r->status, due, v.error);
        note_retry_due(h, due);
    }
    if (a) {
        a->host_fail = v.host_fail;
        a->host_gone = v.host_gone;
        a->follower_gone = v.follower_gone;
        a->reached = v.reached;
    }
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
        note_host_metrics(th, h, 1);
    }
    make_runnable(h);
}

static int dispatch_rfc9421(struct sthread *th, struct sdel *d);
static int submit(struct sthread *th, struct sdel *d, size_t nhdrs);

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Signing time: wall time for the ops histogram; thread CPU time of one signature in four for
 * the run summary (the clock read is a system call: a fraction of an Ed25519 signature). */
struct sign_t {
    uint64_t wall_us, cpu_ns;
};

static struct sign_t sign_begin(struct sthread *th)
{
    struct sign_t t = {mono_us(), 0};
    if ((th->signs++ & 3) == 0)
        t.cpu_ns = thread_cpu_ns();
    return t;
}

static void sign_end(struct sthread *th, struct sign_t t)
{
    if (t.cpu_ns) {
        th->sign_ns += thread_cpu_ns() - t.cpu_ns;
        th->signs_timed++;
    }
    hd_metrics_observe(th->o->metrics, th->idx, HD_MH_SIGN, mono_us() - t.wall_us);
}

/* ---------------------------------------------------------------- cancellation (issue 4) */

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
    struct hd_txn *txn = rtxn(th);
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
        if (leased_has(th, refs[i].key, refs[i].keylen) &&
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
        if (leased_has(th, refs[i].key, refs[i].keylen)) {
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
            if (leased_add(th, x) != 0) {
                free(x);
                rc = -ENOMEM;
                goto undo;
            }
        }
        xs[nx++] = x;
    }
    /* d last: if an acknowledgement cannot be queued, d is still the caller's. */
    for (done = 0; done < nx; done++) {
        struct hd_ack *a = add_ack(th, xs[done], HD_ACK_DROP, 0, 0,
                                   "cancelled: the object was deleted before delivery");
        if (!a) {
            rc = -ENOMEM;
            goto undo;
        }
        a->cancelled = 1;
    }
    {
        struct hd_ack *a = add_ack(th, d, HD_ACK_DROP, 0, 0,
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
        del_release(th, xs[i]);
    note_retry_due(h, hd_wall_ms() + HD_POLICY_LOCAL_RETRY_MS);
out:
    free(refs);
    return rc;
}

/* 1 when activity seq is a Create, 0 when not (or gone), or a store error. */
static int act_is_create(struct sthread *th, uint64_t seq)
{
    struct hd_act_view v;
    struct hd_txn *txn = rtxn(th);
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
 * lookup is one objseq read per activity and read transaction (cached in the activity).
 * Returns as cancel_pair. */
static int cancel_create(struct sthread *th, struct sdel *d)
{
    struct sact *a = d->act;
    struct hd_txn *txn;

    if (!a->object_id || (d->flags & HD_QF_REACHED))
        return 0;
    txn = rtxn(th);
    if (!txn)
        return HD_ERR_STORE;
    if (a->del_gen != th->rtxn_gen) {
        uint64_t del = 0;
        int rc = hd_queue_delete_of(th->st, txn, a->object_id, a->seq, &del);
        if (rc < 0)
            return rc;
        a->del_seq = rc == 1 ? del : 0;
        a->del_gen = th->rtxn_gen;
    }
    return a->del_seq ? cancel_pair(th, d, a->seq, a->del_seq) : 0;
}

/* Sends d, or settles it without sending (a final failure, refused by the rules, cancelled,
 * held back behind the activity it must not overtake). Returns 0 when d was consumed, or an
 * error (a store read failed, no memory) with d untouched: the caller gives it back. */
static int dispatch(struct sthread *th, struct sdel *d)
{
    struct shost *h = d->host;
    struct hd_txn *txn;
    uint64_t until = 0;
    int err = 0, rc;

    if (!d->act) { /* set already when re-sent with the other scheme */
        d->act = act_get(th, d->seq, &err);
        if (!d->act) {
            if (!hd_policy_local_final(err))
                return err; /* a store error or no memory: nothing is decided */
            /* Activity body gone or actor without a usable key: final for this delivery. */
            return add_ack(th, d, HD_ACK_DEAD, 0, 0, hd_strerror(err)) ? 0 : -ENOMEM;
        }
        d->act->refs++;
    }
    if (th->rules && !hd_rules_allows(th->rules, h->name))
        return add_ack(th, d, HD_ACK_DROP, 0, 0, "refused by the domain rules") ? 0 : -ENOMEM;
    if (d->act->kind == ACT_CREATE && (rc = cancel_create(th, d)) != 0)
        return rc < 0 ? rc : 0;
    if (d->act->after[0] || d->act->after[1]) {
        txn = rtxn(th);
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
                return rc < 0 ? rc : 0;
        }
        del_release(th, d);
        /* Not before the blocking delivery's own retry time: a Delete behind a Create that
         * waits an hour is not work due (--until-idle may stop). */
        note_retry_due(h, until > hd_wall_ms() + 1000 ? until : hd_wall_ms() + 1000);
        return 0;
    }
    /* An Update or Delete never goes to a host that never received the object: one the
     * Create was not addressed to, or where all of it ended as refused dead letters. */
    if ((d->act->kind == ACT_DELETE || d->act->kind == ACT_UPDATE) && d->act->after[0]) {
        txn = rtxn(th);
        if (!txn)
            return HD_ERR_STORE;
        rc = hd_queue_host_got(th->st, txn, h->name, d->act->after[0]);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            struct hd_ack *a = add_ack(th, d, HD_ACK_DROP, 0, 0,
                                       "cancelled: the object never reached this host");
            if (!a)
                return -ENOMEM;
            a->cancelled = 1;
            return 0;
        }
    }
    if (!d->switched)
        d->scheme = h->scheme;
    if (d->scheme == HD_SCHEME_RFC9421)
        return dispatch_rfc9421(th, d);
    /* Signed when the request goes out on a connection (prepare): a host that refuses
     * connections or TLS costs no signatures. */
    d->date[0] = 0; /* dated with the signature, in prepare_request */
    d->sig[0] = 0;
    d->hdrs[0] = (struct hd_http_header){"content-type", "application/activity+json"};
    d->hdrs[1] = (struct hd_http_header){"date", d->date};
    d->hdrs[2] = (struct hd_http_header){"digest", d->act->digest};
    d->hdrs[3] = (struct hd_http_header){"user-agent", th->o->user_agent};
    d->hdrs[4] = (struct hd_http_header){"signature", d->sig};
    return submit(th, d, 5);
}

static int sign_cavage(struct sthread *th, struct sdel *d)
{
    struct hd_sign_header sh[4];
    struct hd_sign_req sr;
    struct sign_t sign_t0;
    int rc;

    sh[0].name = "host";
    sh[0].value = d->url.authority;
    sh[1].name = "date";
    sh[1].value = d->date;
    sh[2].name = "digest";
    sh[2].value = d->act->digest;
    sh[3].name = "content-type";
    sh[3].value = "application/activity+json";
    sr.method = "POST";
    sr.target = d->url.path;
    sr.headers = sh;
    sr.nheaders = 4;
    sr.components = "(request-target) host date digest content-type";
    sr.key_id = d->act->key_id;
    rc = key_load(th, sr.key_id);
    if (rc)
        return rc;
    sign_t0 = sign_begin(th);
    rc = hd_sign_cavage(th->signer, &sr, d->sig, sizeof(d->sig));
    sign_end(th, sign_t0);
    return rc < 0 ? HD_ERR_CRYPTO : 0;
}

/* RFC 9421: Ed25519 when the actor has such a key and the host asked for it (or accepts only
 * RFC 9421 and we have nothing better), else rsa-v1_5-sha256 with the RSA key. */
static int dispatch_rfc9421(struct sthread *th, struct sdel *d)
{
    d->date[0] = 0;
    d->sig[0] = 0;
    d->siginput[0] = 0;
    d->hdrs[0] = (struct hd_http_header){"content-type", "application/activity+json"};
    d->hdrs[1] = (struct hd_http_header){"date", d->date};
    d->hdrs[2] = (struct hd_http_header){"content-digest", d->act->cdigest};
    d->hdrs[3] = (struct hd_http_header){"user-agent", th->o->user_agent};
    d->hdrs[4] = (struct hd_http_header){"signature-input", d->siginput};
    d->hdrs[5] = (struct hd_http_header){"signature", d->sig};
    return submit(th, d, 6);
}

static int sign_rfc9421(struct sthread *th, struct sdel *d)
{
    struct shost *h = d->host;
    struct hd_sign_header sh[3];
    struct hd_sign9421_req r;
    struct sign_t sign_t0;
    int rc;

    sh[0] = (struct hd_sign_header){"content-type", "application/activity+json"};
    sh[1] = (struct hd_sign_header){"content-digest", d->act->cdigest};
    sh[2] = (struct hd_sign_header){"date", d->date};
    memset(&r, 0, sizeof(r));
    r.method = "POST";
    r.scheme = d->url.tls ? "https" : "http";
    r.authority = d->url.authority;
    r.target = d->url.path;
    r.headers = sh;
    r.nheaders = 3;
    r.components = "\"@method\" \"@target-uri\" \"content-type\" \"content-digest\" \"date\"";
    r.key_id = d->act->key_id;
    r.created = (int64_t)time(NULL);
    r.expires = -1;
    r.label = "sig1";
    d->ed = d->act->ed_key_id && h->prefer_ed;
    if (d->ed) {
        rc = key_load(th, d->act->ed_key_id);
        if (rc && rc != HD_ERR_NO_KEY)
            return rc;
        d->ed = rc == 0; /* an Ed25519 key gone since: the primary key serves */
    }
    if (d->ed) {
        r.key_id = d->act->ed_key_id;
        r.alg = "ed25519";
    } else {
        /* The primary key: RSA, or Ed25519 for an actor that has no RSA key. */
        int kt = 0;
        unsigned kb = 0;
        rc = key_load(th, d->act->key_id);
        if (rc)
            return rc;
        hd_signer_key_info(th->signer, d->act->key_id, &kt, &kb);
        d->ed = kt == HD_KEY_ED25519;
        r.alg = d->ed ? "ed25519" : "rsa-v1_5-sha256";
    }
    sign_t0 = sign_begin(th);
    rc = hd_sign_rfc9421(th->signer, &r, d->siginput, sizeof(d->siginput), d->sig, sizeof(d->sig));
    sign_end(th, sign_t0);
    return rc < 0 ? HD_ERR_CRYPTO : 0;
}

/* hd_http_req.prepare: the request is about to be written on a connection. Dated and signed
 * now, so the Date is that of the sending and nothing is signed for a host that fails
 * before (refused connection or TLS, dead, hung in set-up). A failure here (no usable key,
 * signing failed, the key could not be read again) means nothing was sent: d->local tells
 * the classification so. */
static int prepare_request(void *user_data)
{
    struct sdel *d = user_data;
    struct sthread *th = d->host->th;
    int rc;

    date_now(th, d->date, sizeof(d->date));
    rc = d->scheme == HD_SCHEME_RFC9421 ? sign_rfc9421(th, d) : sign_cavage(th, d);
    d->local = rc != 0;
    return rc;
}

static int submit(struct sthread *th, struct sdel *d, size_t nhdrs)
{
    struct shost *h = d->host;
    struct hd_http_req req;
    int rc;

    memset(&req, 0, sizeof(req));
    req.tls = d->url.tls;
    req.host = d->url.host;
    req.port = d->url.port;
    req.authority = d->url.authority;
    req.method = "POST";
    req.path = d->url.path;
    req.headers = d->hdrs;
    req.nheaders = nhdrs;
    req.body = (const uint8_t *)d->act->body;
    req.body_len = d->act->body_len;
    req.on_done = on_response;
    req.user_data = d;
    req.prepare = prepare_request;
    d->start_ms = hd_loop_now_ms(th->loop);
    rc = hd_http_submit(th->http, &req);
    if (rc)
        return add_ack(th, d, HD_ACK_RETRY, 0, hd_wall_ms() + th->o->retry.base_ms,
                       hd_strerror(rc)) ? 0 : -ENOMEM;
    hd_hostpol_sent(&h->pol, d->start_ms);
    if (!h->inflight)
        th->active_hosts++;
    h->inflight++;
    th->inflight++;
    atomic_fetch_add(&th->n_inflight, 1);
    atomic_fetch_add(&th->n_attempts, 1);
    hd_metrics_gauge_add(th->o->metrics, th->idx, HD_MG_IN_FLIGHT, 1); /* ops */
    hd_metrics_add(th->o->metrics, th->idx, HD_MC_ATTEMPTS, 1);
    hd_mhost_inflight_add(h->mh, 1);
    return 0;
}

struct refill_ctx {
    struct sthread *th;
    struct shost *h;
    unsigned want, got;
    uint64_t now_wall;
    int err;
};

/* A zeroed delivery, except its text buffers (url, date, signature, signature input: 5.5 KB
 * of the 5.9 KB), which are written (hd_url_parse, dispatch) before they are read: they are
 * only made empty strings. Zeroing all of it per delivery showed in profiles. The assert
 * keeps those buffers contiguous, between the fields that are zeroed. */
#define SDEL_END(f) (offsetof(struct sdel, f) + sizeof(((struct sdel *)0)->f))
_Static_assert(offsetof(struct sdel, date) == SDEL_END(url) &&
                   offsetof(struct sdel, sig) == SDEL_END(date) &&
                   offsetof(struct sdel, siginput) == SDEL_END(sig) &&
                   offsetof(struct sdel, hdrs) >= SDEL_END(siginput),
               "struct sdel: url, date, sig, siginput must stay contiguous, before hdrs");
static struct sdel *del_alloc(struct sthread *th)
{
    struct sdel *d = th->del_free;

    if (d) {
        th->del_free = d->next;
        th->ndel_free--;
    } else if (!(d = malloc(sizeof(*d)))) {
        return NULL;
    }
    memset(d, 0, offsetof(struct sdel, url));
    d->url.tls = 0;
    d->url.port = 0;
    d->url.host[0] = d->url.authority[0] = d->url.path[0] = '\0';
    d->date[0] = d->sig[0] = d->siginput[0] = '\0';
    memset(&d->hdrs, 0, sizeof(*d) - offsetof(struct sdel, hdrs));
    return d;
}

static int on_qent(const struct hd_qent *e, void *user_data)
{
    struct refill_ctx *rc = user_data;
    struct sthread *th = rc->th;
    struct sdel *d;
    char inbox[HD_URL_MAX + HD_HOST_MAX + 16];
    int expired;

    if (leased_has(th, e->key, e->keylen))
        return 0;
    if (e->not_before_ms > rc->now_wall) {
        note_retry_due(rc->h, e->not_before_ms);
        return 0;
    }
    expired = th->o->max_age_ms && e->enqueued_ms &&
              rc->now_wall > e->enqueued_ms + th->o->max_age_ms;
    d = del_alloc(th);
    if (!d) {
        rc->err = -ENOMEM;
        return 1;
    }
    memcpy(d->key, e->key, e->keylen);
    d->keylen = (uint16_t)e->keylen;
    d->seq = e->seq;
    d->attempts = e->attempts;
    d->flags = e->flags;
    d->host = rc->h;
    if (e->inbox.n >= sizeof(inbox) || (memcpy(inbox, e->inbox.p, e->inbox.n), inbox[e->inbox.n] = 0,
                                        hd_url_parse(inbox, &d->url) != 0)) {
        /* Damaged entry: final, with the reason kept. */
        if (leased_add(th, d) != 0) {
            free(d);
            rc->err = -ENOMEM;
            return 1;
        }
        if (!add_ack(th, d, HD_ACK_DEAD, 0, 0, "stored inbox URL is invalid")) {
            del_release(th, d); /* left queued, as if not scanned */
            rc->err = -ENOMEM;
            return 1;
        }
        return 0;
    }
    if (leased_add(th, d) != 0) {
        free(d);
        rc->err = -ENOMEM;
        return 1;
    }
    if (expired) {
        struct hd_ack *a = add_ack(th, d, HD_ACK_DEAD, 0, 0, "expired: older than max age");
        if (!a) {
            del_release(th, d);
            rc->err = -ENOMEM;
            return 1;
        }
        a->expired = 1;
        return 0;
    }
    if (rc->h->ready_tail)
        rc->h->ready_tail->next = d;
    else
        rc->h->ready_head = d;
    rc->h->ready_tail = d;
    rc->h->nready++;
    return ++rc->got >= rc->want;
}

static void refill(struct sthread *th, struct shost *h)
{
    struct refill_ctx ctx = {th, h, 0, 0, hd_wall_ms(), 0};
    uint8_t last[HD_QKEY_MAX];
    size_t last_len = 0;
    int end = 0, n;
    struct hd_txn *txn;
    unsigned busy = h->inflight + h->nready;

    unsigned window = hd_hostpol_window(&h->pol);

    if (h->exhausted || busy >= window || th->nleased >= th->o->max_inflight_thread)
        return;
    ctx.want = window - busy;
    if (ctx.want > th->o->max_inflight_thread - th->nleased)
        ctx.want = th->o->max_inflight_thread - (unsigned)th->nleased;
    txn = rtxn(th);
    if (!txn)
        return;
    n = hd_queue_scan(th->st, txn, h->name, h->poslen ? h->pos : NULL, h->poslen,
                      ctx.want * 4 + 64, on_qent, &ctx, last, &last_len, &end);
    if (ctx.err) { /* an entry was left as it was (no memory): scan again from the start soon */
        HD_LOG_HOST(HD_LOG_WARN, "sched", h->name,
                    "msg=\"queue scan stopped: local failure, tried again in %u ms\" err=\"%s\"",
                    (unsigned)HD_POLICY_LOCAL_RETRY_MS, hd_strerror(ctx.err));
        note_retry_due(h, ctx.now_wall + HD_POLICY_LOCAL_RETRY_MS);
    }
    if (n < 0)
        return;
    if (last_len) {
        memcpy(h->pos, last, last_len);
        h->poslen = last_len;
    }
    if (end)
        h->exhausted = 1;
}

/* Dispatches up to `budget` deliveries of host h; returns how many. Bounding the work per
 * turn keeps every host's first requests (and the ring's sends) flowing instead of signing
 * thousands of requests before the first byte leaves. */
static unsigned run_host(struct sthread *th, struct shost *h, unsigned budget)
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
                refill(th, h);
            if (!(d = h->ready_head))
                break;
            h->ready_head = d->next;
            if (!h->ready_head)
                h->ready_tail = NULL;
            h->nready--;
            d->next = NULL;
            a = add_ack(th, d, HD_ACK_DEAD, 0, 0, "host dead: queue expired (dead_host_queue)");
            if (!a) {
                release_later(th, d, -ENOMEM);
                break;
            }
            a->expired = 1;
            n++;
        }
        if (h->ready_head || !h->exhausted)
            make_runnable(h);
        return n;
    }
    /* Connections cost memory (TLS and HTTP/2 state, buffers): at most max_active_hosts hosts
     * per thread have requests in flight; others wait their turn in FIFO order. */
    if (!h->inflight && th->active_hosts >= th->o->max_active_hosts &&
        (h->nready || !h->exhausted)) {
        if (!h->slot_waiting) {
            h->slot_waiting = 1;
            h->snext = NULL;
            if (th->slot_tail)
                th->slot_tail->snext = h;
            else
                th->slot_head = h;
            th->slot_tail = h;
        }
        return 0;
    }
    if (!h->nready)
        refill(th, h);
    while (h->ready_head && n < budget &&
           (may = hd_hostpol_may_send(&h->pol, &th->o->hostpol, now, h->inflight, &wake))) {
        struct sdel *d = h->ready_head;
        h->ready_head = d->next;
        if (!h->ready_head)
            h->ready_tail = NULL;
        h->nready--;
        d->next = NULL;
        rc = dispatch(th, d);
        if (rc < 0)
            release_later(th, d, rc);
        n++;
        if (!h->nready)
            refill(th, h);
    }
    /* More to do right away: back of the line, after the other hosts' turns. Held back by
     * the policy: wake up when it says (or when a response frees the window). */
    if (h->ready_head && may)
        make_runnable(h);
    else if (h->ready_head && wake)
        hd_timer_arm(th->loop, &h->wake, wake);
    return n;
}

/* Finds hosts of this thread with queued deliveries (at start, and whenever new activities
 * have been enqueued since the last look). */
static void scan_hosts(struct sthread *th)
{
    struct hd_counters c;
    struct hd_txn *txn = rtxn(th);
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
    while (hd_host_iter_next(&it, name, &rec) == 0) {
        if (hd_hash64(name, strlen(name)) % th->nthreads != th->idx)
            continue;
        if (rec.queued == 0)
            continue;
        struct shost *h = host_get(th, name);
        if (!h)
            break;
        hd_hostpol_set_dead(&h->pol, &th->o->hostpol, rec.dead != HD_HOST_ALIVE,
                            hd_loop_now_ms(th->loop));
        note_host_metrics(th, h, 0); /* ops: dead hosts count from the start, not their next probe */
        if (rec.scheme) { /* 1 cavage, 2 RFC 9421 + RSA, 3 RFC 9421 + Ed25519 */
            h->scheme = rec.scheme >= 2 ? HD_SCHEME_RFC9421 : HD_SCHEME_CAVAGE;
            h->prefer_ed = rec.scheme == 3;
        }
        h->exhausted = 0;
        make_runnable(h);
    }
    hd_host_iter_close(&it);
}

/* ---------------------------------------------------------------- operator controls */

static int on_ctl(const char *host, const struct hd_hostctl *c, void *user_data)
{
    struct sthread *th = user_data;
    struct shost *h;

    if (hd_hash64(host, strlen(host)) % th->nthreads != th->idx)
        return 0;
    h = host_get(th, host);
    if (!h)
        return 0;
    hd_hostpol_set(&h->pol, &th->o->hostpol, c->max_inflight, (double)c->rate_milli / 1000.0,
                   c->paused);
    if (c->reset_gen != h->reset_gen) {
        if (th->ctl_loaded) /* a reset issued while we run: forget breaker and dead state */
            hd_hostpol_reset(&h->pol, &th->o->hostpol, hd_loop_now_ms(th->loop));
        h->reset_gen = c->reset_gen;
    }
    h->has_ctl = 1;
    h->ctl_seen = 1;
    make_runnable(h);
    return 0;
}

/* Live operator controls (`herald host pause|resume|set|reset`) and defederation rules
 * (`herald block ...`, allowlist mode) are written to the store by the CLI; each loop thread
 * looks at their generation counters every CTL_POLL_MS and reloads what moved. */
static void poll_controls(struct sthread *th)
{
    struct hd_txn *txn = rtxn(th);
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
                        make_runnable(h);
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
                make_runnable(h);
            }
    th->ctl_gen = g;
    th->ctl_loaded = 1;
    th->last_seq_seen = 0; /* e.g. `dead retry` requeued letters: look for hosts again */
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
    return all || h->inflight || h->nready || h->ok_since || h->pol.breaker != 0 || h->pol.dead;
}

static void publish_live(struct sthread *th, int all)
{
    uint64_t now = hd_loop_now_ms(th->loop), wall = hd_wall_ms();
    double secs = (double)(now - th->last_live_ms) / 1000.0;
    struct batch *b;
    size_t cap = 0, n = 0;

    th->last_live_ms = now;
    if (secs <= 0)
        secs = 1;
    /* Size the report by the hosts worth reporting, not by every host ever seen (20,000
     * hosts of a fan-out would otherwise mean a 6 MB allocation per second per thread). */
    for (size_t i = 0; i < th->hosts_cap; i++)
        for (struct shost *h = th->hosts[i]; h; h = h->hnext)
            cap += live_worth(h, all);
    if (!cap || !(b = batch_new(th, 1)))
        return;
    b->live = calloc(cap, sizeof(*b->live));
    if (!b->live) {
        batch_free(b);
        return;
    }
    for (size_t i = 0; i < th->hosts_cap; i++)
        for (struct shost *h = th->hosts[i]; h; h = h->hnext) {
            struct live_item *it;
            uint32_t sorted[32];
            if (!live_worth(h, all))
                continue;
            it = &b->live[n++];
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
        }
    b->nlive = n;
    if (!n) {
        batch_free(b);
        return;
    }
    th->batches_out++;
    pthread_mutex_lock(&th->cm->mu);
    b->next = th->cm->head;
    th->cm->head = b;
    pthread_cond_signal(&th->cm->cv);
    pthread_mutex_unlock(&th->cm->mu);
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

/* ops: SIGTERM drain. Nothing new is dispatched (run_host is not called); requests in
 * flight get until the deadline (hd_run_opts.drain_timeout_ms, default 10 s) to be answered
 * and their acknowledgements are collected; whatever is still in flight then is cancelled by
 * the caller and stays queued for the next run. */
static void drain_inflight(struct sthread *th)
{
    uint64_t end = hd_loop_update_now(th->loop) +
                   (th->o->drain_timeout_ms ? th->o->drain_timeout_ms : 10000);

    while (th->inflight > 0 && hd_loop_now_ms(th->loop) < end) {
        flush_acks(th);
        arm_efd(th);
        hd_loop_run_once(th->loop, 5);
        drain_done(th);
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

    if (!gate_wait(th->gate)) {
        atomic_store(&th->exited, 1);
        return NULL;
    }
    scan_hosts(th);
    poll_controls(th); /* operator pauses and blocks apply before the first request */
    while (!atomic_load_explicit(th->stop, memory_order_relaxed)) {
        unsigned timeout, spent = 0;

        /* One turn per runnable host, HOST_BURST deliveries each, at most TURN_BUDGET in
         * all before the ring gets to send and receive. */
        while (th->run_head && spent < TURN_BUDGET) {
            struct shost *h = th->run_head;
            th->run_head = h->rnext;
            if (!th->run_head)
                th->run_tail = NULL;
            h->runnable = 0;
            spent += run_host(th, h, HOST_BURST);
        }
        if (th->cur && th->cur->n &&
            (hd_loop_now_ms(th->loop) - th->cur_first_ms >= th->o->commit_interval_ms ||
             th->inflight == 0))
            flush_acks(th);
        if (hd_loop_now_ms(th->loop) - th->last_scan_ms >= HOST_SCAN_INTERVAL_MS)
            scan_hosts(th);
        if (hd_loop_now_ms(th->loop) - th->last_ctl_ms >= CTL_POLL_MS)
            poll_controls(th);
        if (hd_loop_now_ms(th->loop) - th->last_live_ms >= LIVE_INTERVAL_MS)
            publish_live(th, 0);
        if (th->o->override_gen && atomic_load(th->o->override_gen) != th->override_gen)
            reapply_overrides(th); /* ops: configuration reloaded */
        rtxn_end(th);
        arm_efd(th);
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
        drain_done(th);
    }
    /* Stop: let in-flight requests finish or fail, and their acknowledgements commit. */
    drain_inflight(th); /* ops: up to the drain deadline; nothing new is sent */
    hd_http_client_shutdown(th->http);
    for (int i = 0, last = 0; i < 2000 && (!hd_http_client_idle(th->http) || th->batches_out ||
                                           (th->cur && th->cur->n) || !last);
         i++) {
        if (!last && hd_http_client_idle(th->http)) {
            /* Final live report: nothing in flight any more (no stale in_flight in stats). */
            publish_live(th, 1);
            last = 1;
        }
        flush_acks(th);
        arm_efd(th);
        hd_loop_run_once(th->loop, 5);
        drain_done(th);
    }
    rtxn_end(th);
    hd_tls_thread_cleanup();
    atomic_store(&th->exited, 1);
    return NULL;
}

/* ---------------------------------------------------------------- setup */

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
    ho.max_streams_per_host = th->o->hostpol.win_max;
    ho.ca_file = th->o->ca_file;
    ho.allow_private = th->o->allow_private;
    ho.dns = th->dns;
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

static void thread_fini(struct sthread *th)
{
    for (size_t i = 0; i < th->hosts_cap; i++) {
        struct shost *h = th->hosts[i];
        while (h) {
            struct shost *n = h->hnext;
            struct sdel *d = h->ready_head;
            while (d) {
                struct sdel *dn = d->next;
                free(d);
                d = dn;
            }
            free(h);
            h = n;
        }
    }
    free(th->hosts);
    free(th->leased);
    while (th->del_free) {
        struct sdel *d = th->del_free;
        th->del_free = d->next;
        free(d);
    }
    for (size_t i = 0; i < th->acts_cap; i++) {
        struct sact *a = th->acts[i];
        while (a) {
            struct sact *n = a->hnext;
            act_free(a);
            a = n;
        }
    }
    free(th->acts);
    hd_rules_free(th->rules);
    batch_free(th->cur);
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

static void committer_stop(struct committer *cm)
{
    pthread_mutex_lock(&cm->mu);
    cm->stop = 1;
    pthread_cond_signal(&cm->cv);
    pthread_mutex_unlock(&cm->mu);
    pthread_join(cm->tid, NULL);
}

int hd_run(struct hd_store *st, const struct hd_run_opts *o, _Atomic int *stop,
           struct hd_run_summary *sum)
{
    struct committer cm;
    struct start_gate gate;
    struct sthread *ths;
    unsigned n = o->threads, ninit = 0, nstarted = 0;
    struct timespec t0, t1;
    double cpu0 = cpu_seconds();
    uint64_t last_done = 0;
    int rc = hd_store_lock_run(st), running, unclean = 0;
    uint64_t start_wall = hd_wall_ms();

    /* The run lock belongs to the store handle: hd_store_close releases it, after a failed
     * start as after a clean stop. */
    if (rc == HD_ERR_BUSY) {
        HD_LOG(HD_LOG_ERROR, "run", "msg=\"another herald run holds this store\" dir=\"%s\"",
               hd_store_dir(st));
        return rc;
    }
    if (rc)
        return rc;
    rc = hd_store_run_mark(st, 1, &unclean);
    if (rc)
        return rc;
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
        rc = thread_init(th);
        if (rc) {
            HD_LOG(HD_LOG_ERROR, "run", "msg=\"cannot start loop thread\" err=\"%s\"",
                   hd_strerror(rc));
            ninit++; /* partly set up: thread_fini undoes what was done */
            goto fail_threads;
        }
    }
    rc = -pthread_create(&cm.tid, NULL, committer_main, &cm);
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
    gate_open(&gate, 1);
    if (unclean)
        HD_LOG(HD_LOG_WARN, "run", "msg=\"the previous run did not stop cleanly: deliveries it "
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
    }
    for (unsigned i = 0; i < n; i++)
        pthread_join(ths[i].tid, NULL);
    committer_stop(&cm);
    /* Batches the committer returned after the threads stopped: release them. */
    memset(sum, 0, sizeof(*sum));
    for (unsigned i = 0; i < n; i++) {
        drain_done(&ths[i]);
        sum->done += ths[i].n_done;
        sum->retried += ths[i].n_retry;
        sum->dead += ths[i].n_dead;
        sum->attempts += ths[i].n_attempts;
        sum->signs += ths[i].signs;
        if (ths[i].signs_timed)
            sum->sign_cpu_seconds += (double)ths[i].sign_ns / 1e9 *
                                     (double)ths[i].signs / (double)ths[i].signs_timed;
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
    HD_LOG(HD_LOG_INFO, "run", "msg=\"stopped\" commits=%" PRIu64 " acks=%" PRIu64, cm.commits,
           cm.acks);
    if (hd_store_run_mark(st, 0, NULL) != 0)
        HD_LOG(HD_LOG_WARN, "run", "msg=\"cannot record the clean stop\"");
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
    committer_stop(&cm);
fail_threads:
    for (unsigned i = 0; i < ninit; i++)
        thread_fini(&ths[i]);
    free(ths);
fail_alloc:
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
    return rc;
}

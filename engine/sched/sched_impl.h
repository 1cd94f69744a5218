/* The scheduler's private part: what its files share.
 *
 *   run.c       threads: start (a start gate), the loop of a thread, stop and drain
 *   commit.c    the group commit: batches of acknowledgements, the committer thread
 *   hosts.c     per-host state and timers, a host's turn, operator controls, live reports
 *   lease.c     the leased set, reading a host's queue (refill), giving deliveries back
 *   acts.c      the activity cache, and signing keys loaded (again) from the store
 *   order.c     ordering (never overtake the activity depended on) and cancellation
 *   send.c      dispatch, signing right before sending, submitting to the HTTP client
 *   response.c  applying the classification's verdict to an answer
 *   tickets.c   the run's shared TLS sessions: loaded from the store, saved in groups
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
 *
 * A struct sthread and everything reached from it belong to its loop thread; the committer
 * and the batches passed to it and back are shared, under their mutexes.
 */
#ifndef HD_SCHED_IMPL_H
#define HD_SCHED_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "errclass.h"
#include "hostctl.h"
#include "http.h"
#include "loop.h"
#include "queue.h"
#include "runner.h"
#include "url.h"

#define ACT_CACHE_MAX 4096
#define HOST_SCAN_INTERVAL_MS 250
/* A wake-up from the ingest endpoint (kick.c) rescans at once, but no sooner than this after
 * the last scan: a scan walks every host record, and an endpoint taking hundreds of POSTs a
 * second must not make each loop thread walk them hundreds of times a second. */
#define KICK_SCAN_MIN_MS 50
#define HOST_BURST 16
#define UNTIL_IDLE_WAIT_MS 5000 /* --until-idle waits for work due this soon */
#define CTL_POLL_MS 250       /* operator controls and rules take effect within this */
#define LIVE_INTERVAL_MS 1000 /* live per-host state published this often */
#define TURN_BUDGET 128
#define DEL_FREE_MAX 256 /* released deliveries kept per thread for reuse (6 KB each) */
#define DEL_SLAB_MAX 16384 /* deliveries per thread in its slab (lease.c); more: malloc */
#define SLOT_CHECK_MS 50   /* hosts waiting longer than slow_after_ms looked for this often */
#define SLOW_TURNS 16      /* ... and at least this many turns of the thread's loop */
#define SLOT_WAITS 64      /* first-answer waits kept per thread (twice their median: slow) */

enum { HD_SLOT_NONE = 0, HD_SLOT_MAIN = 1, HD_SLOT_SLOW = 2 };

struct sthread;
struct shost;
struct sact;
struct hd_dns;
struct hd_mhost;
struct hd_rules;
struct hd_signer;

/* A leased delivery: ready, in flight, or waiting for its acknowledgement to commit. */
/* A delivery's own room for its signature headers: an Ed25519 or RSA-2048 Signature with a
 * key id of a few hundred bytes fits; what does not goes to the heap (the 2,816 bytes every
 * delivery used to carry). A leased delivery is 1.8 KB smaller for it: a fan-out touches
 * thousands of them at once, each page the first time as a page of zeroes from the kernel. */
#define SDEL_SIGBUF 1024
#define SDEL_SIGINPUT_IN_BUF 384 /* RFC 9421: the Signature-Input's share of sigbuf */
#define SDEL_SIG_HEAP 2048
#define SDEL_SIGINPUT_HEAP 768

struct sdel {
    struct sdel *next;  /* ready list */
    struct sdel *lnext; /* leased-set chain */
    uint64_t lhash;     /* hd_hash64 of key, while leased */
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
    char *csync;        /* Collection-Synchronization value for this host, or NULL (csync.c) */
    /* The Signature (and Signature-Input) value: in sigbuf, or in sig_heap (SDEL_SIG_HEAP
     * bytes, kept until the delivery is released) for a key whose header does not fit, such
     * as RSA-4096 or a long key id. Set at dispatch (hd_sched_sig_bufs). */
    char *sig, *siginput;
    char *sig_heap;
    uint16_t sig_cap, siginput_cap;
    struct hd_url url;
    char date[40];
    char sigbuf[SDEL_SIGBUF];
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
    char *actor;
    char *csync;       /* followers-only Create: the header's collectionId and url, or NULL */
    uint64_t keys_gen; /* gen_stamp[HD_GEN_ACTORS] key_id / ed_key_id were read under */
    char *body;
    size_t body_len;
    char digest[64];
    char cdigest[64]; /* RFC 9530 Content-Digest */
    uint64_t after[2]; /* activities this one must not overtake on a host (0 = none) */
    char *object_id;   /* NULL: none */
    uint8_t kind;      /* ACT_* */
    uint64_t del_gen;  /* Create: gen_stamp[HD_GEN_OBJECTS] of the Delete lookup (0: none) */
    uint64_t del_seq;  /* Create: its object's Delete, as of del_gen (0: none) */
    uint64_t cancel_gen; /* gen_stamp[HD_GEN_TAKEDOWNS] of the takedown lookup (0: none) */
    uint8_t cancelled;   /* taken down (hd_act_cancel), as of cancel_gen */
};

#define HD_SCHED_IDX_ALL ((1u << HD_PRIO_HIGH) | (1u << HD_PRIO_LOW))

/* Activity kinds that ordering and cancellation care about. */
enum { ACT_OTHER = 0, ACT_CREATE = 1, ACT_UPDATE = 2, ACT_DELETE = 3 };

struct shost {
    struct shost *hnext;
    struct shost *rnext;
    struct sthread *th;
    int runnable;
    int exhausted;
    uint8_t pos[HD_QKEY_MAX];
    size_t poslen;
    uint64_t retry_due_wall; /* earliest not_before of skipped entries, 0 none */
    uint64_t local_fail_since; /* wall ms when local failures (store, memory) began, with no
                                * request sent since; 0: none */
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
    uint8_t slot_pool;    /* HD_SLOT_*: which pool's slot it holds (slots.c) */
    struct shost *sl_prev, *sl_next; /* in that pool's list */
    uint64_t slot_since;  /* loop ms: slot taken or last answer, whichever is later */
    uint64_t slot_turn;   /* the thread's turn count at slot_since */
    uint8_t slot_answered; /* an answer came since the slot was taken */
    /* Priorities (lease.c): high and low deliveries are read from their index (qprio), from
     * its start at each refill; normal ones by the cursor (pos). */
    uint8_t idx_check;    /* bit 1 << HD_PRIO_HIGH / LOW: that index may hold due work;
                           * set wherever the cursor is reset (HD_SCHED_IDX_ALL) */
    uint8_t hi_streak;    /* high leased in a row while normal or low waited */
    uint8_t up_streak;    /* high or normal leased in a row while low waited */
    uint64_t idx_hold_until[3]; /* per class, wall ms: a high or low delivery waits for
                                 * ordering; until then that index is not read (no leasing
                                 * it again at every turn) */
    uint64_t reset_gen;   /* last `host reset` generation applied */
    uint32_t ok_since;    /* successes since the last live report */
    uint32_t lat[32];     /* recent response latencies (ms), a ring, for p50/p99 */
    uint8_t lat_n, lat_i;
    struct hd_mhost *mh;  /* metrics cell (ops); NULL without metrics */
    struct hd_errwin *err; /* failures by class (errclass.h), allocated at the first one and
                            * freed an hour after the last; NULL: none */
    uint8_t err_dirty;     /* err changed since the last live report */
    int8_t m_breaker, m_dead; /* states last counted in the breaker/dead gauges */
    char name[HD_HOST_MAX];
};

struct live_item {
    char host[HD_HOST_MAX];
    struct hd_live l;
    struct hd_errwin *err; /* a copy of the host's failures when they changed, else NULL */
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
    unsigned gap_ms;            /* at least this long from one commit's start to the next's */
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
    /* The generations (hd_gens_get) + 1 as of the last snapshot, read once per snapshot id;
     * 0: unknown (cached lookups are then read again). */
    uint64_t gen_stamp[HD_GEN_N];
    uint64_t snap_id;
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
    struct batch *spare;      /* emptied batches of commit_batch acknowledgements, for reuse
                               * (linked by next): at most HD_SCHED_SPARES */
    unsigned nspare;
    uint64_t cur_first_ms;
    unsigned batches_out;     /* handed to the committer, not yet back */
    pthread_mutex_t done_mu;
    struct batch *done_head;  /* back from the committer */
    int efd;
    struct hd_loop_op efd_op;
    uint64_t efd_val;
    int efd_armed;

    uint64_t last_seq_seen, last_scan_ms;
    uint64_t kick_seen; /* hd_run_kick's generation last acted on (kick.c) */
    unsigned active_hosts;               /* hosts with requests in flight, main pool */
    struct shost *slot_head, *slot_tail; /* hosts waiting for an active-host slot */
    struct shost *main_hosts;            /* the main pool's hosts (slots.c) */
    struct shost *slow_list;             /* the slow pool's hosts */
    unsigned slow_hosts;                 /* hosts in the slow pool */
    uint64_t slow_moves;                 /* hosts moved to the slow pool, in all */
    uint64_t last_slot_check_ms;
    uint64_t turns;                      /* turns of the thread's loop (slots.c) */
    uint32_t slot_wait[SLOT_WAITS]; /* recent waits (ms) from a slot taken to its first answer */
    unsigned slot_wait_n, slot_wait_i;
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
    struct sdel *del_slab; /* deliveries' own memory (lease.c), or NULL: malloc */
    size_t del_slab_cap, del_slab_used; /* entries mapped, entries handed out at least once */
    int del_slab_tried;

    _Atomic uint64_t n_done, n_retry, n_dead, n_attempts, n_inflight;
    uint64_t signs, signs_timed, sign_ns; /* hd_run_summary.signs / sign_cpu_seconds */
    uint64_t sign_clock_ns; /* cost of a thread CPU clock read pair (send.c) */
    _Atomic int exited;
    struct hd_tls_cache *tls_cache; /* the run's, shared by every thread (tickets.c) */
    struct hd_tls_trust *tls_trust; /* the run's trust store, shared by every thread */
};

static inline uint64_t hd_sched_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- run.c ---- */

/* The thread's read snapshot, begun (or renewed) on first use and ended once per loop turn
 * (hd_sched_rtxn_end). NULL when the store cannot begin one. */
struct hd_txn *hd_sched_rtxn(struct sthread *th);
void hd_sched_rtxn_end(struct sthread *th);

/* ---- tickets.c ---- */

struct hd_tls_cache;
#define TICKETS_SAVE_MS 5000   /* the run's main thread saves new TLS sessions this often */
#define TICKETS_SAVE_GROUP 4096 /* sessions per write transaction */
/* A run's shared table of resumable TLS sessions (at most max, 0: the default), filled from
 * the store (a store that cannot give them is logged, not fatal). Returns 0 or -ENOMEM. */
int hd_sched_tickets_open(struct hd_store *st, size_t max, struct hd_tls_cache **out);
/* Writes the sessions that changed since the last call to the store, in groups. Returns how
 * many, or an error (logged; they are kept for the next call). */
long hd_sched_tickets_save(struct hd_store *st, struct hd_tls_cache *c);

/* ---- commit.c ---- */

/* Emptied batches a thread keeps for reuse (one filling, one waiting, one committing, one
 * more): in the pinned 20,000-host fan-out 15 batches were still allocated anew per run,
 * against 252 when one was kept. */
#define HD_SCHED_SPARES 4

struct batch *hd_sched_batch_new(struct sthread *th, size_t cap);
void hd_sched_batch_free(struct batch *b); /* NULL ok */
/* Hands b to the committer; it comes back through the thread's done list. */
void hd_sched_commit_batch(struct sthread *th, struct batch *b);
/* Hands the acknowledgements collected so far to the committer. */
void hd_sched_flush(struct sthread *th);
/* Appends an acknowledgement of d (which it then owns) and returns it, or NULL when out of
 * memory (d is then still the caller's). */
struct hd_ack *hd_sched_ack(struct sthread *th, struct sdel *d, int kind, int status,
                            uint64_t not_before, const char *error);
/* Takes back the batches the committer is done with: counts, releases their deliveries. */
void hd_sched_drain_done(struct sthread *th);
/* Makes the thread's ring wake up when the committer hands a batch back. */
void hd_sched_arm_efd(struct sthread *th);
/* kick.c */
uint64_t hd_sched_kick_gen(const struct hd_run_kick *k);
int hd_sched_kick_attach(struct hd_run_kick *k, const int *efds, unsigned n);
/* The committer thread (arg: its struct committer), and its stop: it commits what is still
 * handed to it, then ends; hd_sched_committer_stop joins it. */
void *hd_sched_committer_main(void *arg);
void hd_sched_committer_stop(struct committer *cm);

/* ---- hosts.c ---- */

/* Doubles a chained hash table of intrusive entries (next_off: where an entry keeps its chain
 * pointer), rehashing them with hash. Returns 0, or -ENOMEM with the table unchanged. */
int hd_sched_grow_table(void ***tab, size_t *cap, size_t next_off,
                        uint64_t (*hash)(const void *));
/* Puts h in line for a turn (once). */
void hd_sched_runnable(struct shost *h);
/* Makes h look at its queue again from the start at due_wall (wall ms) at the latest. */
void hd_sched_retry_due(struct shost *h, uint64_t due_wall);
/* Publishes h's policy state to its metrics cell (and warns, when warn, of a breaker that
 * opened or a host marked dead). */
void hd_sched_host_metrics(struct sthread *th, struct shost *h, int warn);
/* The configuration was reloaded: per-host overrides apply again. */
void hd_sched_reapply_overrides(struct sthread *th);
/* Finds this thread's hosts with queued deliveries (when something was enqueued since). */
void hd_sched_scan_hosts(struct sthread *th);
/* Reloads operator controls and domain rules whose generation moved. */
void hd_sched_poll_controls(struct sthread *th);
/* Hands the committer the live state of the hosts doing something (all: every host). */
void hd_sched_publish_live(struct sthread *th, int all);
/* One turn of host h: dispatches up to budget deliveries; returns how many. */
unsigned hd_sched_run_host(struct sthread *th, struct shost *h, unsigned budget);
void hd_sched_hosts_free(struct sthread *th);

/* ---- lease.c ---- */

/* Is the delivery with this queue key leased? */
int hd_sched_leased_has(struct sthread *th, const uint8_t *key, size_t keylen);
/* Leases d. Returns 0 or -ENOMEM (d is then not leased). */
int hd_sched_leased_add(struct sthread *th, struct sdel *d);
/* Gives d back: out of the leased set, kept for reuse or freed. */
void hd_sched_release(struct sthread *th, struct sdel *d);
/* Points d->sig and d->siginput at room for a request of the scheme (rfc9421: with a
 * Signature-Input), in sigbuf, or in sig_heap when big (a signature that did not fit).
 * Returns 0 or -ENOMEM (d unchanged). */
int hd_sched_sig_bufs(struct sdel *d, int rfc9421, int big);
/* Frees d, leased or not, without looking at the leased set (the thread's end). */
void hd_sched_del_dispose(struct sthread *th, struct sdel *d);
/* Leases more of h's due deliveries onto its ready list, up to its window. */
void hd_sched_refill(struct sthread *th, struct shost *h);
void hd_sched_lease_fini(struct sthread *th);

/* ---- acts.c ---- */

/* The cached activity seq, loaded with its actor's keys on first use; or NULL with *err
 * final (hd_policy_local_final) or passing. */
struct sact *hd_sched_act_get(struct sthread *th, uint64_t seq, int *err);
/* Makes sure the thread's signer holds key_id, reading it again from the store when the
 * signer evicted it. Returns 0, HD_ERR_NO_KEY (gone or unusable), or a passing error. */
int hd_sched_key_load(struct sthread *th, const char *key_id);
/* Brings a's key ids up to date with its actor's record (read at most once per read
 * snapshot): a key added or removed since a was cached is used for every request signed from
 * then on. Returns 0, HD_ERR_NO_KEY (the actor has no key now), or a passing error. */
int hd_sched_act_keys(struct sthread *th, struct sact *a);
/* ---- csync.c ---- */

/* Sets a->csync when the run sends FEP-8fcf headers and a is a followers-only Create.
 * Returns 0 or -ENOMEM. */
int hd_sched_csync_act(struct sthread *th, struct sact *a);
/* Sets d->csync (freed by the caller's release) to the header value for d's host, or NULL
 * when none is due (not a followers-only Create, no follower on that host). Returns 0 or a
 * passing error (store, memory). */
int hd_sched_csync_del(struct sthread *th, struct sdel *d);

void hd_sched_acts_free(struct sthread *th);

/* ---- order.c ---- */

/* Ordering and cancellation right before d goes out. Returns 0 when d may go, 1 when it was
 * settled here, or an error with d untouched. */
int hd_sched_order(struct sthread *th, struct sdel *d);

/* ---- send.c ---- */

/* Sends d, or settles it without sending. Returns 0 when d was consumed, or an error with d
 * untouched: the caller gives it back. */
int hd_sched_dispatch(struct sthread *th, struct sdel *d);

/* ---- slots.c ---- */

/* Must h wait for an active-host slot before it sends? Returns 1 (it is queued, once, and
 * made runnable when a main slot comes free) or 0 (it holds one, or one is free). */
int hd_sched_slot_wait(struct sthread *th, struct shost *h);
/* h's first request went out: it takes a main slot. */
void hd_sched_slot_take(struct sthread *th, struct shost *h, uint64_t now);
/* An answer (or failure) came in for h: it is not waiting any more. */
void hd_sched_slot_progress(struct sthread *th, struct shost *h, uint64_t now);
/* h's last request is done: its slot, main or slow, is given back. */
void hd_sched_slot_give(struct sthread *th, struct shost *h);
/* Moves the main pool's hosts that have waited longer than the slow threshold (slots.c) to
 * the slow pool while it has room; each move gives a main slot to a waiting host. */
void hd_sched_slots_check(struct sthread *th, uint64_t now);

/* ---- response.c ---- */

void hd_sched_on_response(const struct hd_http_resp *r, void *user_data);
/* d could not be sent for a passing local reason err (a store read failed, no memory): it
 * goes back untouched and its host looks again a second later, or, once the host's local
 * failures have lasted (HD_POLICY_LOCAL_GRACE_MS), it is acknowledged as an attempt. */
void hd_sched_local_failure(struct sthread *th, struct sdel *d, int err);

#endif

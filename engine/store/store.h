/* The LMDB store: one environment under --db DIR holding keys, actors, the activity log,
 * per-host delivery queues, host state and counters.
 *
 * Only engine/store/ sees LMDB (store_impl.h): everything above it holds opaque handles,
 * struct hd_store and struct hd_txn, and reads and writes through the store's functions.
 *
 * Layout (all keys are bytes; integers big-endian so that they sort numerically; values in
 * brackets are msgpack arrays whose first element is the record's version, codec.h; a record
 * may have more fields than its readers need: fields are only ever appended):
 *   meta     "counters"            -> [1, next_seq, activities, done, failed, refused, withheld,
 *                                      expired, dropped, cancelled]   (store.c)
 *            "schema"              -> u32 store schema version
 *            "running"             -> u8 1 while `herald run` runs, 0 after a clean stop
 *            "fwact_next"          -> u32 next actor id of the audience tables (audience.c)
 *            "gens"                -> u64 x HD_GEN_N: generations of cached lookups (hd_gens_get)
 *   keys     key_id                -> [1, actor, type, bits, pem(bin)]   (keys.c)
 *   actors   actor                 -> [1, key_id|nil, federation, ed25519_key_id|nil]
 *   acts     seq(8)                -> [1, id, type, actor, object_id|nil, created_ms, body(bin),
 *                                      after0, after1]   (queue.c, enqueue.c: ordering)
 *   actrem   seq(8)                -> u32 queued deliveries and dead letters still referring to
 *                                     the activity's body
 *   actid    activity id           -> seq(8)
 *   queue    host \0 seq(8) idx(4) -> [1, inbox, attempts, not_before_ms, enqueued_ms, status,
 *                                      error|nil, flags]   (queue_impl.h)
 *   hosts    host                  -> [1, queued, retrying, done, failed, failures, last_status,
 *                                      last_error, last_ok_ms, last_fail_ms, fail_days,
 *                                      last_fail_day, dead, scheme]   (hostrec.c)
 *   dead     host \0 seq(8) idx(4) -> [1, inbox, attempts, at_ms, enqueued_ms, status, error,
 *                                      flags, body_snippet(bin)]   (ack.c writes, hostctl.c reads)
 *   fwactors actor                 -> aid(4) follows(8) inboxes(8)   (audience.c)
 *   follows  aid(4) code(1) follower-> [1, inbox_pfx, inbox_sfx, shared_pfx, shared_sfx|nil]
 *   audience aid(4) delivery inbox  -> shared_refs(4) personal_refs(4): followers delivering there
 *   objseq   object id              -> origin seq(8) last seq(8)  (per-object ordering)
 *   objhosts seq(8) of a Create     -> (hd_store_hash32(host)(4) deliveries(4)) per host the
 *                                     Create was addressed to, sorted by hash (cancellation)
 *   rules    "block:" domain       -> [1, severity, reject_media, reject_reports, public_comment, obfuscate, created_ms]
 *            "allow:" domain       -> [1, created_ms]   (domain "*.x" = subdomains of x only)
 *            "\0mode" -> [1, mode]; "\0gen" -> u64 generation (rules.c)
 *   hostctl  host                  -> [1, paused, max_inflight, rate_milli, reset_gen]; "\0gen" -> u64
 *   live     host                  -> [1, in_flight, window, ok_per_s_milli, p50_ms, p99_ms, breaker, dead, updated_ms]
 *   gone     inbox                 -> [1, at_ms, status]   (gone.c)
 *   collsync aid(4) authority      -> count(4) digest(32): FEP-8fcf (collsync.h); meta
 *                                     "collsync_built" -> u8 1 once built from the follows
 *   actstat  seq(8)                -> [1, queued, retrying, done, failed, cancelled, withheld,
 *                                      dropped, expired, first_ms, last_ms, not_before_ms,
 *                                      created_ms, cancel_ms, attempted, flags, nfail, priority]
 *                                     one activity's delivery counts, kept as its deliveries
 *                                     change state (store.c codec, actstat.c)
 *   actfail  seq(8) host           -> [1, status, error, at_ms]: at most 10 failing hosts of
 *                                     an activity with their last error (actstat.c)
 *   holds    not_before(8) seq(8)  -> empty: activities held until not_before (actstat.c)
 *   hostinbox host                 -> [1, shared, inbox]: an inbox of the host that took a
 *                                     delivery, its shared inbox once one did (ack.c, known.c)
 *   qprio    host \0 class(1) seq(8) idx(4) -> empty: the queued deliveries of priority high
 *                                     (class 1) and low (class 2), beside their queue entries,
 *                                     so a host's runner finds them without reading the
 *                                     queue in order (queue.c)
 *
 * Schema versions: 1, the first; 2 adds actstat, actfail, holds, hostinbox and qprio, and the queue
 * entry flags HD_QF_HIGH and HD_QF_LOW. A schema-1 store is migrated when it is opened: each
 * activity still referenced by a queued delivery or a dead letter gets its actstat record,
 * counted from those (flag HD_ACTSTAT_MIGRATED: deliveries done before the migration are not
 * in its counts).
 */
#ifndef HD_STORE_H
#define HD_STORE_H

#include <stddef.h>
#include <stdint.h>

#define HD_STORE_SCHEMA 2

/* A store and a transaction on it: opaque outside engine/store/. */
struct hd_store;
struct hd_txn;

struct hd_counters {
    uint64_t next_seq, activities, done, failed, refused, withheld, expired;
    uint64_t dropped; /* queued deliveries dropped when an actor switched to federation none */
    uint64_t cancelled; /* deliveries cancelled by a Delete (or Update) before delivery */
};

/* Opens (creating on first use) the store in dir. The directory is created mode 0700 and
 * every file in it is created 0600; a directory writable by group or others is refused
 * (-EPERM) because anyone who can write it can swap the database. map_size_mb 0 = default
 * (64 GiB of address space; the file grows only as data is written). Stale reader slots of
 * crashed processes are cleared. Returns 0, -errno, HD_ERR_STORE, or HD_ERR_SCHEMA (store
 * written by an unknown schema version). */
int hd_store_open(struct hd_store **out, const char *dir, size_t map_size_mb);

/* As hd_store_open, but never creates anything: a store that is not there (no directory, or
 * no data.mdb in it) is -ENOENT, and a path that is not a directory -ENOTDIR. For commands
 * that only read. */
int hd_store_open_existing(struct hd_store **out, const char *dir, size_t map_size_mb);
void hd_store_close(struct hd_store *st); /* NULL ok */

/* Takes the exclusive run lock (one `herald run` per store). Returns 0 or HD_ERR_BUSY. */
int hd_store_lock_run(struct hd_store *st);
/* Releases the run lock (not held: nothing to do); hd_store_close releases it too. */
void hd_store_unlock_run(struct hd_store *st);

/* Transactions: thin wrappers translating LMDB errors to HD_ERR_STORE (logged once). */
/* Begins a transaction (write: the one writer; else a read snapshot). *txn is NULL on
 * failure, so that hd_store_abort(*txn) is always safe. */
int hd_store_begin(struct hd_store *st, int write, struct hd_txn **txn);
/* Begins a write transaction nested in parent (a write transaction): its changes become the
 * parent's on commit and vanish on abort. *txn is NULL on failure. */
int hd_store_begin_nested(struct hd_txn *parent, struct hd_txn **txn);
/* Commits. hd_store_commit makes a write transaction durable before it returns: its pages
 * and the meta page that makes it current are on the device (two flushes: the pages, then the
 * meta page, so the meta page never names a page not yet there). It also ends a read
 * transaction, and merges a nested one into its parent, with nothing to flush.
 * hd_store_commit_relaxed flushes the pages but leaves the meta page to the next flush of any
 * commit: one device flush instead of two. The store stays consistent through any crash; a
 * crash of the system (never of the process: the page cache holds the write) may undo the
 * last such commit. For what a redo repairs (a group commit's acknowledgements: undone, they
 * are delivered again, at-least-once), never for what was promised to someone (an enqueue
 * answered, a block, a takedown). */
int hd_store_commit(struct hd_txn *txn); /* ends txn whatever the result */
int hd_store_commit_relaxed(struct hd_txn *txn);
/* Releases a read transaction's snapshot and keeps the handle for hd_store_renew (cheap
 * re-reads on a loop thread). */
void hd_store_reset(struct hd_txn *txn);
int hd_store_renew(struct hd_txn *txn);
/* The id of the state txn sees: for a read transaction, that of the last write committed
 * when it began. Two snapshots with the same id see the same data, so a lookup cached with
 * the id stays valid until a commit (of any process) moves it. */
uint64_t hd_store_snapshot_id(struct hd_txn *txn);
/* The store's directory (valid until hd_store_close). */
const char *hd_store_dir(const struct hd_store *st);
void hd_store_abort(struct hd_txn *txn); /* NULL ok */

/* Marks the store as being run (running = 1, at `herald run` start) or cleanly stopped (0).
 * *was_running (may be NULL) receives whether the previous run never marked its clean stop:
 * it crashed, and what it sent in its last moments may be unrecorded. Returns 0 or an error. */
int hd_store_run_mark(struct hd_store *st, int running, int *was_running);

/* Generations of what loop threads cache per activity, each bumped in the transaction of a
 * change (meta "gens"): a lookup cached with the generation it was read under stays valid
 * while the generation is the same, whatever else commits (acknowledgements). Actor records
 * (an actor's keys), takedowns (an activity's cancelled flag, only ever set), and the latest
 * activity about an object (a Delete queued after its Create). */
enum hd_gen { HD_GEN_ACTORS, HD_GEN_TAKEDOWNS, HD_GEN_OBJECTS, HD_GEN_N };
/* Reads them (0 for a store that never bumped one). Returns 0 or a store error. */
int hd_gens_get(struct hd_store *st, struct hd_txn *txn, uint64_t g[HD_GEN_N]);
int hd_gen_bump(struct hd_store *st, struct hd_txn *txn, enum hd_gen which);

int hd_counters_get(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c);
int hd_counters_put(struct hd_store *st, struct hd_txn *txn, const struct hd_counters *c);

/* ---- Per-activity delivery counts (actstat). Every delivery of an activity is in exactly one
 * of: queued (held, pending or retrying), done, failed, expired, cancelled, withheld (dropped
 * because its actor's federation choice became none) or dropped (refused by the domain rules).
 * The counts change with the deliveries (enqueue, acknowledgement, drop, cancel): reading
 * them never scans a queue. */
#define HD_ACTSTAT_CANCELLED 1u /* cancelled: none of its deliveries is sent any more */
#define HD_ACTSTAT_MIGRATED 2u  /* counted from a schema-1 store: earlier outcomes absent */
#define HD_ACTSTAT_FAIL_MAX 10  /* failing hosts kept per activity */

#define HD_PRIO_NORMAL 0 /* the default (a zeroed record) */
#define HD_PRIO_HIGH 1
#define HD_PRIO_LOW 2

struct hd_actstat {
    uint64_t queued;    /* in a queue: held, pending or retrying */
    uint64_t retrying;  /* of queued: with at least one attempt made */
    uint64_t done, failed, cancelled, withheld, dropped, expired;
    uint64_t first_ms, last_ms; /* first and last successful delivery (wall ms), 0: none */
    uint64_t not_before_ms;     /* hold: nothing of it is sent before (wall ms), 0: none */
    uint64_t created_ms, cancel_ms;
    uint64_t attempted; /* deliveries of which at least one request was sent */
    uint32_t flags;     /* HD_ACTSTAT_* */
    uint32_t nfail;     /* failing hosts recorded in actfail (<= HD_ACTSTAT_FAIL_MAX) */
    uint8_t priority;   /* HD_PRIO_* */
};

/* Reads activity seq's counts. Returns 0; HD_ERR_NOT_FOUND with *a zeroed (no record: an
 * activity of a migrated store that had nothing left queued); or a store error. */
int hd_actstat_get(struct hd_store *st, struct hd_txn *txn, uint64_t seq, struct hd_actstat *a);
/* Writes activity seq's counts. Returns 0, -ENOMEM or a store error. */
int hd_actstat_put(struct hd_store *st, struct hd_txn *txn, uint64_t seq,
                   const struct hd_actstat *a);

/* Converts an LMDB return code to 0 / HD_ERR_NOT_FOUND / -ENOMEM / HD_ERR_STORE. */
int hd_store_err(int mdb_rc);

static inline void hd_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}
static inline uint64_t hd_rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}
static inline void hd_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}
static inline uint32_t hd_rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* The one hash whose values are written to disk: 64-bit FNV-1a (with the seed of store.c),
 * then h ^ (h >> 29), truncated to its low 32 bits. objhosts records hold it for every host a Create was addressed to, and
 * hd_queue_host_got finds a host there by it.
 *
 * Frozen: existing stores hold its values. A different function would make every Create
 * recorded before the change look addressed to no host, and the runner would then cancel
 * the Updates and Deletes of those objects on hosts that did receive them. Never change it,
 * and use it for nothing held only in memory (hd_hash64 in base is free to change); unit.store
 * pins its values. */
uint32_t hd_store_hash32(const void *p, size_t n);

#endif

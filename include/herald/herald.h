/** @file herald.h
 * @brief Herald's C API for platforms that link Herald directly.
 *
 * Herald is a delivery and fan-out engine for ActivityPub. A platform opens Herald's store
 * (an LMDB environment in a directory), stores its actors' signing keys, hands Herald
 * activities to deliver ("envelopes"), keeps follows up to date, and reads statistics.
 * Delivery itself is done by a running `herald run` on the same store (another process, or
 * a service): everything enqueued here is durable when the call returns, and that process
 * picks it up within a quarter of a second.
 *
 * These are the same engine calls the `herald` CLI and the ingest endpoint make.
 *
 * @section conventions Conventions
 * - Every function returning int returns 0 on success or a negative error: either one of
 *   the HERALD_ERR_* codes below, or a negative errno value passed through unchanged
 *   (-ENOMEM, -EACCES, -EPERM, ...). herald_strerror() describes both.
 * - Output parameters are written only on success, except where a result structure is
 *   documented as filled on failure too (struct herald_result).
 * - Strings are NUL-terminated UTF-8 unless a length is given. The library copies every
 *   input it keeps; no pointer passed in is retained after the call returns.
 * - Thread safety: one handle may be used from several threads at once. Write calls
 *   (key, enqueue, follow) serialize on the store's single writer lock; reads run in
 *   parallel. A handle must not be used after herald_close().
 * - Several processes may open the same store at once (LMDB's multi-process locking).
 *
 * @section envelope Envelopes
 * One JSON object: {"activity": {...}, "inboxes": ["https://host/inbox", ...],
 * "to_followers": false}. The activity needs a string "id", a "type" and an "actor" (a
 * string, or an object with an "id") that has a signing key (herald_key_add). It is stored
 * byte for byte. An unknown envelope key is refused, so that a typo cannot silently drop
 * recipients. The same inbox twice, after URL normalisation, is one delivery.
 *
 * Optional envelope keys:
 * - "not_before": epoch milliseconds (an integer) or an RFC 3339 date-time string
 *   ("2026-12-07T05:00:00Z", "2026-12-07T06:00:00.250+01:00"). Nothing of the activity is
 *   sent before then (a hold: a platform's edit window). The hold survives restarts. Cancel
 *   it (herald_activity_cancel) and nothing is ever sent; an id of which nothing was sent
 *   may then be enqueued again (the edited activity). "to_followers" is expanded when the
 *   envelope is enqueued, not when the hold ends.
 * - "priority": "high", "normal" (the default) or "low". Per host, higher priorities go
 *   first; a waiting low delivery still gets at least 1 send in 8 of its host, a waiting
 *   normal one at least 1 in 9 (the starvation bound, README). A delivery never overtakes the Create of its object on a host, whatever its
 *   priority.
 * - "to_known_hosts": true addresses every host that took at least one delivery (for any
 *   actor) and is neither dead nor gone nor refused by the domain rules: its shared inbox
 *   once one took a delivery, otherwise the inbox that did. Its priority defaults to "low".
 *   This is what an account Delete needs.
 */
#ifndef HERALD_H
#define HERALD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @defgroup errors Return codes
 * Values are stable across versions. Other failures are negative errno values.
 * @{ */
#define HERALD_SUCCESS 0
/** Malformed input: JSON, URL, PEM, an unknown envelope key, an argument out of range. */
#define HERALD_ERR_INVALID (-1001)
/** No such record (an unknown actor, key or follow). */
#define HERALD_ERR_NOT_FOUND (-1002)
/** The activity id was enqueued before; the original sequence number is reported. */
#define HERALD_ERR_DUPLICATE (-1003)
/** The store was written by a newer, unknown schema version. */
#define HERALD_ERR_SCHEMA (-1004)
/** LMDB failure (disk full, map full, corruption); details are logged on stderr. */
#define HERALD_ERR_STORE (-1005)
/** The store is locked by another process where exclusive use is needed. */
#define HERALD_ERR_BUSY (-1021)
/** The activity's actor has no signing key. */
#define HERALD_ERR_NO_KEY (-1022)
/** A bounded buffer or batch is full (see the limits of each call). */
#define HERALD_ERR_FULL (-1023)
/** Any other internal failure (a bug, or a code newer than this header). */
#define HERALD_ERR_INTERNAL (-1999)
/** @} */

/** Largest envelope accepted, in bytes (1 MiB). */
#define HERALD_ENVELOPE_MAX (1u << 20)
/** Most envelopes in one herald_enqueue_batch() call. */
#define HERALD_BATCH_MAX 4096u

/** @brief An open store. Opaque. */
typedef struct herald_store herald_store;

/** @brief Return a static description of a return code.
 * @param[in] err 0, a HERALD_ERR_* code or a negative errno value.
 * @return A NUL-terminated string with static lifetime; never NULL. */
const char *herald_strerror(int err);

/** @brief Return the library version, "MAJOR.MINOR.PATCH" (static string). */
const char *herald_version(void);

/** @brief Open (creating on first use) the store in directory dir.
 *
 * The directory is created with mode 0700 and every file in it 0600. A directory writable by
 * group or others is refused, because whoever can write it can swap the database.
 * @param[in] dir Store directory (the CLI's --db). Copied.
 * @param[out] out Receives the handle, to be released with herald_close(). Written only on
 *   success.
 * @return 0, or one of:
 * - -EPERM: the directory is writable by group or others.
 * - -EACCES, -ENOENT, -ENOTDIR, ...: the directory cannot be created or opened.
 * - -ENOMEM: out of memory.
 * - HERALD_ERR_STORE: LMDB could not open the environment.
 * - HERALD_ERR_SCHEMA: the store was written by an unknown schema version.
 * - HERALD_ERR_INVALID: dir or out is NULL. */
int herald_open(const char *dir, herald_store **out);

/** @brief Close a store handle and free it. NULL is accepted and ignored.
 * Every call on the handle must have returned first. */
void herald_close(herald_store *h);

/** @brief Store a signing key for an actor and make it the actor's key.
 *
 * The key is validated (RSA of at least 2048 bits as PKCS#1 or PKCS#8 PEM, or Ed25519) and
 * stored in the store (file mode 0600). Herald never logs or prints key material.
 * @param[in] h Open store.
 * @param[in] key_id The key's id as receivers fetch it (e.g. "https://s.example/u/al#main-key").
 * @param[in] actor The actor's id URL.
 * @param[in] pem The private key in PEM; pem_len bytes (no NUL needed). Copied; the caller
 *   should wipe its own copy.
 * @param[out] why If not NULL, receives on HERALD_ERR_INVALID a static reason string.
 * @return 0, or one of: HERALD_ERR_INVALID (bad or weak key, empty id), HERALD_ERR_STORE,
 *   -ENOMEM. */
int herald_key_add(herald_store *h, const char *key_id, const char *actor, const char *pem,
                   size_t pem_len, const char **why);

/** @brief Called for each bad line of herald_key_import(): lineno counts from 1, blank
 * lines included; why is a static reason (never key material). */
typedef void (*herald_key_import_bad_fn)(size_t lineno, const char *why, void *user_data);

/** @brief The counts of one herald_key_import() call. */
struct herald_key_import_stats {
    size_t lines;    /**< lines read, blank ones included */
    size_t imported; /**< keys stored (committed) */
    size_t bad;      /**< lines reported through bad() and skipped */
};

/** @brief Import signing keys from JSON lines {"key_id","actor","pem"}.
 *
 * Keys are validated as by herald_key_add() and stored group lines per write transaction
 * (group 0: 1000). Each key becomes its actor's signing key; requests signed from then on use
 * it, including those of activities already queued (key rotation). A bad line (not a JSON
 * object, a missing field, a weak or malformed key, a key id that belongs to another actor)
 * is reported through bad and skipped; the other lines are stored. A store error stops the
 * import; the groups committed before it stay, and importing the same lines again is
 * harmless.
 * @param[in] h Open store.
 * @param[in] jsonl len bytes of JSON lines (no NUL needed); lines of at most 64 KiB.
 * @param[in] group Keys per transaction (0: 1000).
 * @param[in] bad Called once per bad line (may be NULL).
 * @param[in] user_data Passed to bad.
 * @param[out] stats If not NULL, receives the counts (also on a store error).
 * @return 0 (even with bad lines: see stats->bad), or HERALD_ERR_STORE, HERALD_ERR_INVALID
 *   (h or jsonl NULL), -ENOMEM. */
int herald_key_import(herald_store *h, const char *jsonl, size_t len, size_t group,
                      herald_key_import_bad_fn bad, void *user_data,
                      struct herald_key_import_stats *stats);

/** @brief Remove a signing key.
 *
 * Deliveries read their actor's key when they are signed, so a key that is no longer its
 * actor's key (rotated away), or one of an actor's two keys (RSA and Ed25519: the other
 * serves), is removed at once. An actor's only key is refused while deliveries of the actor
 * still need it: queued, retrying, or dead letters (which can be sent again). The refusal
 * gives their count; remove the key once they have drained (or purge the dead letters).
 * @param[in] h Open store.
 * @param[in] key_id The key's id.
 * @param[out] pending If not NULL, receives on HERALD_ERR_BUSY the deliveries that need the key.
 * @return 0, or HERALD_ERR_NOT_FOUND (no such key), HERALD_ERR_BUSY (refused, see pending),
 *   HERALD_ERR_INVALID (NULL or empty argument), HERALD_ERR_STORE. */
int herald_key_remove(herald_store *h, const char *key_id, uint64_t *pending);

/** @brief The outcome of one envelope. Filled on success and on refusal. */
struct herald_result {
    /** 0 accepted; HERALD_ERR_DUPLICATE (seq is the original); HERALD_ERR_INVALID;
     * HERALD_ERR_NO_KEY; HERALD_ERR_STORE; -ENOMEM. */
    int rc;
    /** Accepted: the new sequence number. Duplicate: the original one. Else 0. */
    uint64_t seq;
    /** Deliveries persisted (distinct inboxes, after the actor's federation choice). */
    size_t deliveries;
    /** 1 when the actor's federation choice withheld the activity (stored, not sent). */
    int withheld;
    /** Human-readable reason when rc != 0 (NUL-terminated, truncated to fit). */
    char why[256];
};

/** @brief Enqueue one envelope: validate it, expand its audience, persist the activity and
 * its deliveries, and commit.
 *
 * When this returns 0 the activity is durable (the write transaction committed and was
 * synced). A refused envelope changes nothing.
 * @param[in] h Open store.
 * @param[in] envelope JSON text of one envelope, len bytes (no NUL needed), at most
 *   HERALD_ENVELOPE_MAX.
 * @param[out] res Receives the outcome (required; filled on refusals too).
 * @return res->rc: 0, HERALD_ERR_DUPLICATE (res->seq is the original sequence number),
 *   HERALD_ERR_INVALID (res->why says why), HERALD_ERR_NO_KEY, HERALD_ERR_STORE, -ENOMEM;
 *   or HERALD_ERR_INVALID when h, envelope or res is NULL (res untouched then). */
int herald_enqueue(herald_store *h, const char *envelope, size_t len, struct herald_result *res);

/** @brief Enqueue up to HERALD_BATCH_MAX envelopes in one write transaction.
 *
 * Each envelope is a nested transaction: a refused one changes nothing and does not affect
 * the others. All accepted ones become durable together when this returns 0.
 * @param[in] h Open store.
 * @param[in] envelopes n pointers to envelope texts; lens[i] is the length of envelopes[i].
 * @param[out] results n results, one per envelope, filled in order.
 * @return 0 when the transaction committed (then look at each results[i].rc); or, with
 *   nothing stored: HERALD_ERR_INVALID (NULL arguments) or HERALD_ERR_FULL
 *   (n > HERALD_BATCH_MAX), with results untouched; HERALD_ERR_STORE or -ENOMEM, with every
 *   results[i].rc set to that error. */
int herald_enqueue_batch(herald_store *h, const char *const *envelopes, const size_t *lens,
                         size_t n, struct herald_result *results);

/** @brief A follow: follower follows actor and receives at inbox (or at shared_inbox, which
 * Herald prefers when set, so that a post costs one request per shared inbox). */
struct herald_follow {
    const char *actor;        /**< the followed actor's id URL */
    const char *follower;     /**< the follower's id URL */
    const char *inbox;        /**< the follower's inbox URL (required for add) */
    const char *shared_inbox; /**< the follower's shared inbox URL, or NULL */
};

/** @brief Add (or update) a follow and commit.
 *
 * Adding the same follow again is not an error. URLs are at most 500 bytes each.
 * @param[in] h Open store.
 * @param[in] f The follow (all strings copied).
 * @param[out] why If not NULL, receives on HERALD_ERR_INVALID a static reason string.
 * @return 0, or one of: HERALD_ERR_INVALID (bad URL, missing inbox), HERALD_ERR_STORE,
 *   -ENOMEM. */
int herald_follow_add(herald_store *h, const struct herald_follow *f, const char **why);

/** @brief Remove a follow and commit. Removing a follow that does not exist returns
 * HERALD_ERR_NOT_FOUND and changes nothing.
 * @param[in] h Open store.
 * @param[in] actor The followed actor's id URL.
 * @param[in] follower The follower's id URL.
 * @param[out] why If not NULL, receives on HERALD_ERR_INVALID a static reason string.
 * @return 0, or one of: HERALD_ERR_NOT_FOUND, HERALD_ERR_INVALID, HERALD_ERR_STORE,
 *   -ENOMEM. */
int herald_follow_remove(herald_store *h, const char *actor, const char *follower,
                         const char **why);

/** @brief Store-wide counts, read in one consistent snapshot. */
struct herald_stats {
    uint64_t activities; /**< activities accepted since the store was created */
    uint64_t pending;    /**< deliveries queued and not waiting for a retry */
    uint64_t retrying;   /**< deliveries waiting for a retry */
    uint64_t done;       /**< deliveries completed (2xx) */
    uint64_t failed;     /**< deliveries dead-lettered */
    uint64_t refused;    /**< envelopes refused */
    uint64_t withheld;   /**< activities withheld by the actor's federation choice */
    uint64_t hosts;      /**< hosts known to the store */
    uint64_t held;       /**< deliveries waiting for their activity's not_before (not in
                              pending) */
};

/** @brief Read store-wide counts.
 * Cost: one read transaction and one pass over the host records (O(hosts)).
 * @param[in] h Open store.
 * @param[out] out Receives the counts (written only on success).
 * @return 0, or one of: HERALD_ERR_INVALID (NULL argument), HERALD_ERR_STORE, -ENOMEM. */
int herald_stats(herald_store *h, struct herald_stats *out);

/** @defgroup admin Actors, blocks, host controls and dead letters
 * The operator's controls, as the CLI's `actor set`, `block`, `host` and `dead` commands make
 * them. Each call is one write transaction: committed when it returns 0, unchanged otherwise.
 * A running `herald run` on the store applies them within a second. Each destructive call
 * (a federation choice of none, a block, a host reset, a dead-letter retry or purge) writes
 * one audit line on stderr: `mod=audit op=... target=... deliveries=N source=api`.
 * @{ */

/** An actor's federation choice (herald_actor_set_federation). */
#define HERALD_FED_ALL 0    /**< deliver everything (the default) */
#define HERALD_FED_PUBLIC 1 /**< deliver only activities addressed to the Public collection */
#define HERALD_FED_NONE 2   /**< deliver nothing; the actor's queued deliveries are dropped */

/** @brief Set an actor's federation choice.
 * @param[in] h Open store.
 * @param[in] actor The actor's id URL (the record is created if needed).
 * @param[in] federation HERALD_FED_ALL, HERALD_FED_PUBLIC or HERALD_FED_NONE.
 * @param[out] dropped If not NULL, receives how many queued deliveries were dropped (with
 *   HERALD_FED_NONE; counted in the stats as dropped).
 * @return 0, or one of: HERALD_ERR_INVALID (bad argument), HERALD_ERR_STORE, -ENOMEM. */
int herald_actor_set_federation(herald_store *h, const char *actor, int federation,
                                uint64_t *dropped);

/** Block severities, as Mastodon's. */
#define HERALD_SEV_NOOP 0    /**< no effect on delivery (flags and comment for the platform) */
#define HERALD_SEV_SILENCE 1 /**< no effect on delivery */
#define HERALD_SEV_SUSPEND 2 /**< nothing is delivered to the domain */

/** @brief A domain block. */
struct herald_block {
    const char *domain;  /**< "example.com" (and subdomains), or "*.example.com" (only them) */
    int severity;        /**< HERALD_SEV_* */
    const char *comment; /**< public comment, UTF-8, at most 1023 bytes; NULL = none */
    int reject_media, reject_reports, obfuscate; /**< Mastodon's flags, kept as given */
};

/** @brief Add or replace a domain block.
 *
 * With HERALD_SEV_SUSPEND the domain's queued deliveries leave the queue at once and are kept
 * as dead letters with the error "blocked" (herald_dead_retry() sends them after the block is
 * removed), and new ones are refused at enqueue.
 * @param[in] h Open store.
 * @param[in] b The block (strings copied).
 * @param[out] dropped If not NULL, receives how many queued deliveries were taken out.
 * @param[out] replaced If not NULL, receives 1 when a block of the domain existed (and was
 *   replaced), else 0.
 * @return 0, or one of: HERALD_ERR_INVALID (not a domain, bad severity, comment too long or
 *   not UTF-8), HERALD_ERR_STORE, -ENOMEM. */
int herald_block_add(herald_store *h, const struct herald_block *b, uint64_t *dropped,
                     int *replaced);

/** @brief Remove a domain block. The deliveries a suspend took out stay dead letters until
 * herald_dead_retry().
 * @return 0, or one of: HERALD_ERR_NOT_FOUND (no block of the domain), HERALD_ERR_INVALID,
 *   HERALD_ERR_STORE. */
int herald_block_remove(herald_store *h, const char *domain);

/** @brief Operator controls of one host (`herald host pause|set`). */
struct herald_host_controls {
    int paused;            /**< 1: nothing is sent to the host */
    unsigned max_inflight; /**< requests in flight at most, 0 = the configured default */
    double rate;           /**< requests per second at most (fractions allowed), 0 = no limit */
};

/** @brief Read a host's controls (all zero when it has none).
 * @param[in] host Host name as in inbox URLs (IDN accepted).
 * @return 0, or HERALD_ERR_INVALID (not a host name), HERALD_ERR_STORE. */
int herald_host_get(herald_store *h, const char *host, struct herald_host_controls *out);

/** @brief Set a host's controls (all of them: read them first to change one). All zero
 * removes the host's controls.
 * @return 0, or HERALD_ERR_INVALID (not a host name, max_inflight over 100000, rate negative
 *   or over 1000000), HERALD_ERR_STORE. */
int herald_host_set(herald_store *h, const char *host, const struct herald_host_controls *c);

/** @brief Forget a host's failures, circuit breaker and dead state (`herald host reset`).
 * @return 0, or HERALD_ERR_INVALID, HERALD_ERR_STORE. */
int herald_host_reset(herald_store *h, const char *host);

/** @brief Count dead letters: all, or host's (host not NULL).
 * @return 0, or HERALD_ERR_INVALID, HERALD_ERR_STORE. */
int herald_dead_count(herald_store *h, const char *host, uint64_t *n);

/** @brief Put dead letters (all, or host's) back in the queue, attempts reset, due now.
 * Letters of hosts the current blocks refuse, or whose activity body is gone, stay.
 * @param[out] requeued If not NULL, receives how many went back.
 * @param[out] kept If not NULL, receives how many stayed.
 * @return 0, or HERALD_ERR_INVALID, HERALD_ERR_STORE. */
int herald_dead_retry(herald_store *h, const char *host, uint64_t *requeued, uint64_t *kept);

/** @brief Delete dead letters (all, or host's), releasing their activity bodies.
 * @param[out] purged If not NULL, receives how many were deleted.
 * @return 0, or HERALD_ERR_INVALID, HERALD_ERR_STORE. */
int herald_dead_purge(herald_store *h, const char *host, uint64_t *purged);

/** @} */

/** @brief The answer of herald_activity_cancel(). */
struct herald_cancel_result {
    uint64_t seq;       /**< the activity's sequence number */
    uint64_t cancelled; /**< queued deliveries removed, never sent */
    uint64_t delivered; /**< deliveries done before the cancel: those hosts need a Delete */
    uint64_t in_flight; /**< deliveries whose request was written and whose outcome is
                             unknown (a timeout after writing, a 5xx): not sent again, but
                             the server may have it. A request on the wire when the cancel
                             commits finishes; if it succeeds, the activity's status counts it
                             done. */
    int already_cancelled; /**< the activity had been cancelled before */
};

/** @brief Take an activity down: cancel every delivery of it not yet sent.
 *
 * Held, pending and retrying deliveries are removed from their queues in one transaction; a
 * running `herald run` drops the ones it holds in memory instead of sending them.
 * @param[in] h Open store.
 * @param[in] activity The activity's id URL, or its sequence number in decimal.
 * @param[out] out Receives the counts (written only on success).
 * @return 0, or one of: HERALD_ERR_NOT_FOUND (no such activity), HERALD_ERR_INVALID (NULL
 *   argument, an empty or over-long name), HERALD_ERR_STORE, -ENOMEM. */
int herald_activity_cancel(herald_store *h, const char *activity,
                           struct herald_cancel_result *out);

/** @brief One host where an activity's delivery failed last, with its error. */
struct herald_failing_host {
    char host[256];
    unsigned status;  /**< HTTP status of the last failure; 0 for a transport error */
    uint64_t at_ms;   /**< when (epoch ms) */
    char error[160];
};

/** @brief The delivery status of one activity (herald_activity_status()).
 * Every delivery is counted in exactly one of the nine counts. */
struct herald_activity_status {
    uint64_t seq;
    uint64_t done;      /**< delivered (2xx) */
    uint64_t pending;   /**< queued, due, never attempted */
    uint64_t held;      /**< queued, waiting for not_before */
    uint64_t retrying;  /**< queued after a failed attempt */
    uint64_t failed;    /**< dead letters */
    uint64_t cancelled; /**< cancelled (takedown, or a Delete before the Create went out) */
    uint64_t withheld;  /**< dropped because the actor's federation choice became none */
    uint64_t dropped;   /**< refused by the domain rules */
    uint64_t expired;   /**< older than the run's maximum age */
    uint64_t first_delivery_ms, last_delivery_ms; /**< 0: none yet */
    uint64_t not_before_ms; /**< the hold; 0: none */
    uint64_t created_ms;    /**< when it was enqueued */
    int priority;           /**< 0 normal, 1 high, 2 low */
    int is_cancelled;       /**< taken down (herald_activity_cancel) */
    int partial;            /**< counted since the store was migrated from schema 1 only */
    size_t nfailing;
    struct herald_failing_host failing[10]; /**< up to 10 failing hosts */
};

/** @brief Read the delivery status of one activity.
 * Cost: one record and at most 10 failing-host records; never a queue scan.
 * @param[in] h Open store.
 * @param[in] activity The activity's id URL, or its sequence number in decimal.
 * @param[out] out Receives the status (written only on success).
 * @return 0, or one of: HERALD_ERR_NOT_FOUND, HERALD_ERR_INVALID, HERALD_ERR_STORE. */
int herald_activity_status(herald_store *h, const char *activity,
                           struct herald_activity_status *out);

#ifdef __cplusplus
}
#endif

#endif

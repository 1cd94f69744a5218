/* The public C API (include/herald/herald.h): thin wrappers over the engine calls the CLI and
 * the ingest endpoint use, translating HD_ERR_* codes into the stable HERALD_ERR_* ones. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "activity.h"
#include "audience.h"
#include "err.h"
#include "api_impl.h"
#include "audit.h"
#include "herald/herald.h"
#include "ingest.h"
#include "keyadd.h"
#include "keys.h"
#include "queue.h"
#include "store.h"


/* The public codes are spelled independently of err.h so that internal renumbering can never
 * change them; these checks catch a drift at compile time. */
_Static_assert(HERALD_ERR_INVALID == HD_ERR_INVALID, "code drift");
_Static_assert(HERALD_ERR_NOT_FOUND == HD_ERR_NOT_FOUND, "code drift");
_Static_assert(HERALD_ERR_DUPLICATE == HD_ERR_DUPLICATE, "code drift");
_Static_assert(HERALD_ERR_SCHEMA == HD_ERR_SCHEMA, "code drift");
_Static_assert(HERALD_ERR_STORE == HD_ERR_STORE, "code drift");
_Static_assert(HERALD_ERR_BUSY == HD_ERR_BUSY, "code drift");
_Static_assert(HERALD_ERR_NO_KEY == HD_ERR_NO_KEY, "code drift");
_Static_assert(HERALD_ERR_FULL == HD_ERR_FULL, "code drift");

/* Internal code -> public code: errno values pass through, the public HD_ERR_* subset keeps
 * its value, every other internal code (transport, TLS, DNS: never produced by these calls)
 * becomes HERALD_ERR_INTERNAL. */
int hd_api_pub_err(int rc)
{
    if (rc >= 0)
        return rc;
    if (rc > HD_ERR_BASE)
        return rc; /* -errno */
    switch (rc) {
    case HD_ERR_INVALID:
    case HD_ERR_NOT_FOUND:
    case HD_ERR_DUPLICATE:
    case HD_ERR_SCHEMA:
    case HD_ERR_STORE:
    case HD_ERR_BUSY:
    case HD_ERR_NO_KEY:
    case HD_ERR_FULL:
        return rc;
    default:
        return HERALD_ERR_INTERNAL;
    }
}

#define pub_err hd_api_pub_err

const char *herald_strerror(int err)
{
    if (err == HERALD_ERR_INTERNAL)
        return "internal error";
    return hd_strerror(err);
}

const char *herald_version(void)
{
    return HD_VERSION;
}

int herald_open(const char *dir, herald_store **out)
{
    struct herald_store *h;
    int rc;

    if (!dir || !out)
        return HERALD_ERR_INVALID;
    h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    rc = hd_store_open(&h->st, dir, 0);
    if (rc) {
        free(h);
        return pub_err(rc);
    }
    *out = h;
    return 0;
}

void herald_close(herald_store *h)
{
    if (!h)
        return;
    hd_store_close(h->st);
    free(h);
}

int herald_key_add(herald_store *h, const char *key_id, const char *actor, const char *pem,
                   size_t pem_len, const char **why)
{
    const char *w = NULL;
    int rc;

    if (!h || !key_id || !actor || !pem || !key_id[0] || !actor[0]) {
        if (why)
            *why = "key_id, actor and pem are required";
        return HERALD_ERR_INVALID;
    }
    rc = hd_keys_add(h->st, key_id, actor, pem, pem_len, &w);
    if (rc == HD_ERR_INVALID && why)
        *why = w ? w : "invalid key";
    return pub_err(rc);
}

int herald_key_import(herald_store *h, const char *jsonl, size_t len, size_t group,
                      herald_key_import_bad_fn bad, void *user_data,
                      struct herald_key_import_stats *stats)
{
    struct hd_key_import_stats s;
    int rc;

    if (stats)
        memset(stats, 0, sizeof(*stats));
    if (!h || (!jsonl && len))
        return HERALD_ERR_INVALID;
    rc = hd_key_import_buf(h->st, jsonl ? jsonl : "", len, group, bad, user_data, &s);
    if (stats) {
        stats->lines = s.lines;
        stats->imported = s.imported;
        stats->bad = s.bad;
    }
    return pub_err(rc);
}

int herald_key_remove(herald_store *h, const char *key_id, uint64_t *pending)
{
    const char *why;
    uint64_t n = 0;
    int rc;

    if (pending)
        *pending = 0;
    if (!h || !key_id || !key_id[0])
        return HERALD_ERR_INVALID;
    rc = hd_keys_remove(h->st, key_id, &n, &why);
    if (pending)
        *pending = n;
    return pub_err(rc);
}

static void fill(struct herald_result *r, const struct hd_ingest_result *ir)
{
    r->rc = pub_err(ir->rc);
    r->seq = ir->seq;
    r->deliveries = ir->deliveries;
    r->withheld = ir->withheld ? 1 : 0;
    snprintf(r->why, sizeof(r->why), "%s", ir->rc ? ir->why : "");
}

static void fail_all(struct herald_result *results, size_t n, int rc)
{
    for (size_t i = 0; i < n; i++) {
        memset(&results[i], 0, sizeof(results[i]));
        results[i].rc = rc;
        snprintf(results[i].why, sizeof(results[i].why), "%s; nothing stored",
                 herald_strerror(rc));
    }
}

int herald_enqueue_batch(herald_store *h, const char *const *envelopes, const size_t *lens,
                         size_t n, struct herald_result *results)
{
    struct hd_ingest_result *ir;
    struct hd_counters c;
    struct hd_txn *txn;
    uint64_t now = hd_wall_ms();
    int rc;

    if (!h || (n && (!envelopes || !lens || !results)))
        return HERALD_ERR_INVALID;
    if (n > HERALD_BATCH_MAX)
        return HERALD_ERR_FULL; /* results untouched: n itself may be wrong */
    if (n == 0)
        return 0;
    ir = calloc(n, sizeof(*ir));
    if (!ir) {
        fail_all(results, n, -ENOMEM);
        return -ENOMEM;
    }
    rc = hd_store_begin(h->st, 1, &txn);
    if (rc)
        goto out;
    rc = hd_counters_get(h->st, txn, &c);
    if (rc) {
        hd_store_abort(txn);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!envelopes[i]) {
            ir[i].rc = HD_ERR_INVALID;
            snprintf(ir[i].why, sizeof(ir[i].why), "NULL envelope");
            continue;
        }
        if (lens[i] > HERALD_ENVELOPE_MAX) {
            ir[i].rc = HD_ERR_INVALID;
            snprintf(ir[i].why, sizeof(ir[i].why), "envelope over %u bytes",
                     HERALD_ENVELOPE_MAX);
            continue;
        }
        hd_ingest_envelope(h->st, txn, &c, envelopes[i], lens[i], now, &ir[i]);
        if (ir[i].rc == -ENOMEM || ir[i].rc == HD_ERR_STORE) {
            /* the transaction itself may be unusable: give up on the whole batch */
            rc = ir[i].rc;
            hd_store_abort(txn);
            goto out;
        }
    }
    rc = hd_counters_put(h->st, txn, &c);
    if (rc) {
        hd_store_abort(txn);
        goto out;
    }
    rc = hd_store_commit(txn);
out:
    if (rc == 0) {
        for (size_t i = 0; i < n; i++)
            fill(&results[i], &ir[i]);
    } else {
        rc = pub_err(rc);
        fail_all(results, n, rc);
    }
    free(ir);
    return rc;
}

int herald_enqueue(herald_store *h, const char *envelope, size_t len, struct herald_result *res)
{
    int rc;

    if (!h || !envelope || !res)
        return HERALD_ERR_INVALID;
    rc = herald_enqueue_batch(h, &envelope, &len, 1, res);
    return rc ? rc : res->rc;
}

/* Applies one follow operation in its own write transaction. */
static int follow_op(herald_store *h, const struct hd_follow *f, int remove, const char **why)
{
    struct hd_follow_batch *b = NULL;
    struct hd_follow_stats s;
    const char *w = NULL;
    struct hd_txn *txn;
    int rc;

    memset(&s, 0, sizeof(s));
    rc = hd_follow_batch_new(&b);
    if (rc)
        return pub_err(rc);
    rc = hd_follow_batch_add(b, f, remove, &w);
    if (rc) {
        if (rc == HD_ERR_INVALID && why)
            *why = w ? w : "invalid follow";
        goto out;
    }
    rc = hd_store_begin(h->st, 1, &txn);
    if (rc)
        goto out;
    rc = hd_follow_batch_apply(h->st, txn, b, &s);
    if (rc) {
        hd_store_abort(txn);
        goto out;
    }
    rc = hd_store_commit(txn);
    if (rc == 0 && remove && s.removed == 0)
        rc = HD_ERR_NOT_FOUND;
out:
    hd_follow_batch_free(b);
    return pub_err(rc);
}

int herald_follow_add(herald_store *h, const struct herald_follow *f, const char **why)
{
    struct hd_follow hf;

    if (!h || !f || !f->actor || !f->follower || !f->inbox) {
        if (why)
            *why = "actor, follower and inbox are required";
        return HERALD_ERR_INVALID;
    }
    hf.actor = f->actor;
    hf.follower = f->follower;
    hf.inbox = f->inbox;
    hf.shared_inbox = f->shared_inbox;
    return follow_op(h, &hf, 0, why);
}

int herald_follow_remove(herald_store *h, const char *actor, const char *follower,
                         const char **why)
{
    struct hd_follow hf;
    int rc;

    if (!h || !actor || !follower) {
        if (why)
            *why = "actor and follower are required";
        return HERALD_ERR_INVALID;
    }
    memset(&hf, 0, sizeof(hf));
    hf.actor = actor;
    hf.follower = follower;
    rc = follow_op(h, &hf, 1, why);
    if (rc == 0)
        hd_audit(HD_AUDIT_API, "follow_remove", actor, 0, "follows=1");
    return rc;
}

int herald_stats(herald_store *h, struct herald_stats *out)
{
    struct herald_stats s;
    struct hd_counters c;
    struct hd_txn *txn;
    struct hd_host_sum sum;
    int rc;

    if (!h || !out)
        return HERALD_ERR_INVALID;
    memset(&s, 0, sizeof(s));
    rc = hd_store_begin(h->st, 0, &txn);
    if (rc)
        return pub_err(rc);
    rc = hd_counters_get(h->st, txn, &c);
    if (rc == 0)
        rc = hd_host_sum(h->st, txn, &sum);
    if (rc == 0)
        rc = hd_holds_count(h->st, txn, hd_wall_ms(), 0, &s.held);
    hd_store_abort(txn);
    if (rc)
        return pub_err(rc);
    s.pending = sum.queued - sum.retrying;
    s.pending = s.pending > s.held ? s.pending - s.held : 0;
    s.retrying = sum.retrying;
    s.hosts = sum.hosts;
    s.activities = c.activities;
    s.done = c.done;
    s.failed = c.failed;
    s.refused = c.refused;
    s.withheld = c.withheld;
    *out = s;
    return 0;
}

int herald_activity_cancel(herald_store *h, const char *activity,
                           struct herald_cancel_result *out)
{
    struct hd_cancel_result r;
    int rc;

    if (!h || !activity || !out)
        return HERALD_ERR_INVALID;
    rc = hd_activity_cancel(h->st, activity, hd_wall_ms(), &r);
    if (rc)
        return pub_err(rc);
    out->seq = r.seq;
    out->cancelled = r.cancelled;
    out->delivered = r.delivered;
    out->in_flight = r.in_flight;
    out->already_cancelled = r.already;
    return 0;
}

int herald_activity_status(herald_store *h, const char *activity,
                           struct herald_activity_status *out)
{
    struct herald_activity_status o;
    struct hd_act_status s;
    int rc;

    if (!h || !activity || !out)
        return HERALD_ERR_INVALID;
    rc = hd_activity_status(h->st, activity, hd_wall_ms(), &s);
    if (rc)
        return pub_err(rc);
    memset(&o, 0, sizeof(o));
    o.seq = s.seq;
    o.done = s.a.done;
    o.pending = s.pending;
    o.held = s.held;
    o.retrying = s.a.retrying;
    o.failed = s.a.failed;
    o.cancelled = s.a.cancelled;
    o.withheld = s.a.withheld;
    o.dropped = s.a.dropped;
    o.expired = s.a.expired;
    o.first_delivery_ms = s.a.first_ms;
    o.last_delivery_ms = s.a.last_ms;
    o.not_before_ms = s.a.not_before_ms;
    o.created_ms = s.a.created_ms;
    o.priority = s.a.priority;
    o.is_cancelled = (s.a.flags & HD_ACTSTAT_CANCELLED) != 0;
    o.partial = !s.recorded || (s.a.flags & HD_ACTSTAT_MIGRATED) != 0;
    o.nfailing = s.nfail;
    for (size_t i = 0; i < s.nfail && i < 10; i++) {
        snprintf(o.failing[i].host, sizeof(o.failing[i].host), "%s", s.fail[i].host);
        o.failing[i].status = s.fail[i].status;
        o.failing[i].at_ms = s.fail[i].at_ms;
        snprintf(o.failing[i].error, sizeof(o.failing[i].error), "%s", s.fail[i].error);
    }
    *out = o;
    return 0;
}

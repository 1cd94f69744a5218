/* The public C API's operator controls (include/herald/herald.h, group "admin"): actors'
 * federation choice, domain blocks, host controls and dead letters, over the same store calls
 * as `herald actor|block|host|dead`, each audited with source=api. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api_impl.h"
#include "audit.h"
#include "clock.h"
#include "enforce.h"
#include "err.h"
#include "herald/herald.h"
#include "hostctl.h"
#include "keys.h"
#include "rules.h"

_Static_assert(HERALD_FED_ALL == HD_FED_ALL && HERALD_FED_PUBLIC == HD_FED_PUBLIC &&
                   HERALD_FED_NONE == HD_FED_NONE,
               "federation drift");
_Static_assert(HERALD_SEV_NOOP == HD_SEV_NOOP && HERALD_SEV_SILENCE == HD_SEV_SILENCE &&
                   HERALD_SEV_SUSPEND == HD_SEV_SUSPEND,
               "severity drift");

/* Ends write txn: commits when rc is 0, else aborts. Returns the public code. */
static int finish(struct hd_txn *txn, int rc)
{
    if (rc) {
        hd_store_abort(txn);
        return hd_api_pub_err(rc);
    }
    return hd_api_pub_err(hd_store_commit(txn));
}

static int host_norm(const char *in, char *out, size_t cap)
{
    return !in || in[0] == '*' || hd_rules_domain_norm(in, out, cap) != 0 ? -1 : 0;
}

int herald_actor_set_federation(herald_store *h, const char *actor, int federation,
                                uint64_t *dropped)
{
    struct hd_counters before, after;
    struct hd_txn *txn;
    int rc;

    if (!h || !actor || !actor[0] || federation < HERALD_FED_ALL || federation > HERALD_FED_NONE)
        return HERALD_ERR_INVALID;
    rc = hd_store_begin(h->st, 1, &txn);
    if (rc)
        return hd_api_pub_err(rc);
    rc = hd_counters_get(h->st, txn, &before);
    if (!rc)
        rc = hd_actor_set_federation(h->st, txn, actor, federation);
    if (!rc)
        rc = hd_counters_get(h->st, txn, &after);
    rc = finish(txn, rc);
    if (rc)
        return rc;
    if (dropped)
        *dropped = after.dropped - before.dropped;
    hd_audit(HD_AUDIT_API, "actor_federation", actor, after.dropped - before.dropped,
             federation == HERALD_FED_NONE     ? "federation=none"
             : federation == HERALD_FED_PUBLIC ? "federation=public"
                                               : "federation=all");
    return 0;
}

/* After a rules change inside txn: takes out what the new rules refuse (rules.h, enforce.h). */
static int enforce(struct hd_store *st, struct hd_txn *txn, uint64_t *dropped)
{
    struct hd_counters c;
    struct hd_rules *r = NULL;
    int rc = hd_counters_get(st, txn, &c);

    if (!rc)
        rc = hd_rules_load(st, txn, &r);
    if (!rc)
        rc = hd_rules_enforce(st, txn, &c, r, dropped, NULL);
    hd_rules_free(r);
    if (!rc)
        rc = hd_counters_put(st, txn, &c);
    return rc;
}

int herald_block_add(herald_store *h, const struct herald_block *b, uint64_t *dropped,
                     int *replaced)
{
    struct hd_block nb, old;
    struct hd_txn *txn;
    uint64_t n = 0;
    int rc, had;

    if (!h || !b || !b->domain || b->severity < HERALD_SEV_NOOP ||
        b->severity > HERALD_SEV_SUSPEND)
        return HERALD_ERR_INVALID;
    memset(&nb, 0, sizeof(nb));
    if (hd_rules_domain_norm(b->domain, nb.domain, sizeof(nb.domain)) != 0)
        return HERALD_ERR_INVALID;
    if (b->comment && (strlen(b->comment) >= sizeof(nb.comment) ||
                       !hd_rules_utf8_valid(b->comment, strlen(b->comment))))
        return HERALD_ERR_INVALID;
    snprintf(nb.comment, sizeof(nb.comment), "%s", b->comment ? b->comment : "");
    nb.severity = b->severity;
    nb.reject_media = b->reject_media != 0;
    nb.reject_reports = b->reject_reports != 0;
    nb.obfuscate = b->obfuscate != 0;
    nb.created_ms = hd_wall_ms();
    rc = hd_store_begin(h->st, 1, &txn);
    if (rc)
        return hd_api_pub_err(rc);
    had = hd_block_get(h->st, txn, nb.domain, &old) == 0;
    if (had)
        nb.created_ms = old.created_ms;
    rc = hd_block_put(h->st, txn, &nb);
    if (!rc)
        rc = enforce(h->st, txn, &n);
    rc = finish(txn, rc);
    if (rc)
        return rc;
    if (dropped)
        *dropped = n;
    if (replaced)
        *replaced = had;
    {
        char detail[64];
        snprintf(detail, sizeof(detail), "severity=%s%s%s", hd_severity_name(nb.severity),
                 had ? " replaced=" : "", had ? hd_severity_name(old.severity) : "");
        hd_audit(HD_AUDIT_API, "block_add", nb.domain, n, detail);
    }
    return 0;
}

int herald_block_remove(herald_store *h, const char *domain)
{
    char dom[HD_DOMAIN_MAX];
    struct hd_txn *txn;
    int rc;

    if (!h || !domain || hd_rules_domain_norm(domain, dom, sizeof(dom)) != 0)
        return HERALD_ERR_INVALID;
    rc = hd_store_begin(h->st, 1, &txn);
    if (rc)
        return hd_api_pub_err(rc);
    rc = finish(txn, hd_block_del(h->st, txn, dom));
    if (!rc)
        hd_audit(HD_AUDIT_API, "block_remove", dom, 0, NULL);
    return rc;
}

int herald_host_get(herald_store *h, const char *host, struct herald_host_controls *out)
{
    char name[HD_HOST_MAX];
    struct hd_hostctl c;
    struct hd_txn *txn;
    int rc;

    if (!h || !out || host_norm(host, name, sizeof(name)) != 0)
        return HERALD_ERR_INVALID;
    rc = hd_store_begin(h->st, 0, &txn);
    if (rc)
        return hd_api_pub_err(rc);
    rc = hd_hostctl_get(h->st, txn, name, &c);
    hd_store_abort(txn);
    if (rc)
        return hd_api_pub_err(rc);
    out->paused = c.paused != 0;
    out->max_inflight = c.max_inflight;
    out->rate = (double)c.rate_milli / 1000.0;
    return 0;
}

int herald_host_set(herald_store *h, const char *host, const struct herald_host_controls *in)
{
    char name[HD_HOST_MAX];
    struct hd_hostctl c;
    struct hd_txn *txn;
    int rc;

    if (!h || !in || host_norm(host, name, sizeof(name)) != 0 || in->max_inflight > 100000 ||
        !(in->rate >= 0 && in->rate <= 1e6))
        return HERALD_ERR_INVALID;
    rc = hd_store_begin(h->st, 1, &txn);
    if (rc)
        return hd_api_pub_err(rc);
    rc = hd_hostctl_get(h->st, txn, name, &c);
    if (!rc) {
        c.paused = in->paused != 0;
        c.max_inflight = in->max_inflight;
        c.rate_milli = (uint64_t)llround(in->rate * 1000.0);
        if (in->rate > 0 && c.rate_milli == 0)
            c.rate_milli = 1; /* a positive rate never silently means "no limit" */
        rc = hd_hostctl_put(h->st, txn, name, &c);
    }
    return finish(txn, rc);
}

int herald_host_reset(herald_store *h, const char *host)
{
    char name[HD_HOST_MAX];
    struct hd_txn *txn;
    int rc;

    if (!h || host_norm(host, name, sizeof(name)) != 0)
        return HERALD_ERR_INVALID;
    rc = hd_store_begin(h->st, 1, &txn);
    if (rc)
        return hd_api_pub_err(rc);
    rc = finish(txn, hd_host_reset(h->st, txn, name));
    if (!rc)
        hd_audit(HD_AUDIT_API, "host_reset", name, 0, NULL);
    return rc;
}

static int count_one(const struct hd_dead_view *d, void *user_data)
{
    (void)d;
    (*(uint64_t *)user_data)++;
    return 0;
}

/* host: NULL for all, else normalised into buf. Returns 0 or HERALD_ERR_INVALID. */
static int dead_host(const char *host, char *buf, size_t cap, const char **out)
{
    *out = NULL;
    if (!host)
        return 0;
    if (host_norm(host, buf, cap) != 0)
        return HERALD_ERR_INVALID;
    *out = buf;
    return 0;
}

int herald_dead_count(herald_store *h, const char *host, uint64_t *n)
{
    char buf[HD_HOST_MAX];
    const char *hn;
    struct hd_txn *txn;
    uint64_t k = 0;
    int rc;

    if (!h || !n || dead_host(host, buf, sizeof(buf), &hn) != 0)
        return HERALD_ERR_INVALID;
    rc = hd_store_begin(h->st, 0, &txn);
    if (rc)
        return hd_api_pub_err(rc);
    rc = hd_dead_foreach(h->st, txn, hn, count_one, &k);
    hd_store_abort(txn);
    if (rc)
        return hd_api_pub_err(rc);
    *n = k;
    return 0;
}

int herald_dead_retry(herald_store *h, const char *host, uint64_t *requeued, uint64_t *kept)
{
    char buf[HD_HOST_MAX];
    const char *hn;
    struct hd_counters c;
    struct hd_txn *txn;
    uint64_t moved = 0, skipped = 0;
    int rc;

    if (!h || dead_host(host, buf, sizeof(buf), &hn) != 0)
        return HERALD_ERR_INVALID;
    rc = hd_store_begin(h->st, 1, &txn);
    if (rc)
        return hd_api_pub_err(rc);
    rc = hd_counters_get(h->st, txn, &c);
    if (!rc)
        rc = hd_dead_retry(h->st, txn, &c, hn, hd_wall_ms(), &moved, &skipped);
    if (!rc)
        rc = hd_counters_put(h->st, txn, &c);
    rc = finish(txn, rc);
    if (rc)
        return rc;
    if (requeued)
        *requeued = moved;
    if (kept)
        *kept = skipped;
    hd_audit(HD_AUDIT_API, "dead_retry", hn ? hn : "all", moved, NULL);
    return 0;
}

int herald_dead_purge(herald_store *h, const char *host, uint64_t *purged)
{
    char buf[HD_HOST_MAX];
    const char *hn;
    struct hd_txn *txn;
    uint64_t n = 0;
    int rc;

    if (!h || dead_host(host, buf, sizeof(buf), &hn) != 0)
        return HERALD_ERR_INVALID;
    rc = hd_store_begin(h->st, 1, &txn);
    if (rc)
        return hd_api_pub_err(rc);
    rc = finish(txn, hd_dead_purge(h->st, txn, hn, &n));
    if (rc)
        return rc;
    if (purged)
        *purged = n;
    hd_audit(HD_AUDIT_API, "dead_purge", hn ? hn : "all", n, NULL);
    return 0;
}

/* Takedown and status of one activity (activity.h). */
#include <stdio.h>
#include <string.h>

#include "activity.h"
#include "err.h"

int hd_activity_cancel(struct hd_store *st, const char *name, uint64_t now_ms,
                       struct hd_cancel_result *out)
{
    struct hd_counters c;
    struct hd_txn *txn;
    uint64_t seq;
    int rc = hd_store_begin(st, 1, &txn);

    if (rc)
        return rc;
    rc = hd_act_resolve(st, txn, name, &seq);
    if (!rc)
        rc = hd_counters_get(st, txn, &c);
    if (!rc)
        rc = hd_act_cancel(st, txn, &c, seq, now_ms, out);
    if (!rc)
        rc = hd_counters_put(st, txn, &c);
    if (rc) {
        hd_store_abort(txn);
        return rc;
    }
    return hd_store_commit(txn);
}

int hd_activity_status(struct hd_store *st, const char *name, uint64_t now_ms,
                       struct hd_act_status *out)
{
    struct hd_txn *txn;
    uint64_t seq;
    int rc = hd_store_begin(st, 0, &txn);

    if (rc)
        return rc;
    rc = hd_act_resolve(st, txn, name, &seq);
    if (!rc)
        rc = hd_act_status(st, txn, seq, now_ms, out);
    hd_store_abort(txn);
    return rc;
}

json_t *hd_activity_cancel_json(const struct hd_cancel_result *r)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:b}", "seq", (json_int_t)r->seq, "cancelled",
                     (json_int_t)r->cancelled, "delivered", (json_int_t)r->delivered,
                     "in_flight", (json_int_t)r->in_flight, "already_cancelled", r->already);
}

static const char *prio_name(unsigned p)
{
    return p == HD_PRIO_HIGH ? "high" : p == HD_PRIO_LOW ? "low" : "normal";
}

json_t *hd_activity_status_json(const struct hd_act_status *s)
{
    const struct hd_actstat *a = &s->a;
    json_t *o, *fails = json_array();

    if (!fails)
        return NULL;
    for (size_t i = 0; i < s->nfail; i++)
        json_array_append_new(fails, json_pack("{s:s, s:i, s:s, s:I}", "host", s->fail[i].host,
                                               "status", (int)s->fail[i].status, "error",
                                               s->fail[i].error, "at_ms",
                                               (json_int_t)s->fail[i].at_ms));
    o = json_pack("{s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:o}", "seq",
                  (json_int_t)s->seq, "counts", "done", (json_int_t)a->done, "pending",
                  (json_int_t)s->pending, "held", (json_int_t)s->held, "retrying",
                  (json_int_t)a->retrying, "failed", (json_int_t)a->failed, "cancelled",
                  (json_int_t)a->cancelled, "withheld", (json_int_t)a->withheld, "dropped",
                  (json_int_t)a->dropped, "expired", (json_int_t)a->expired, "failing_hosts",
                  fails);
    if (!o)
        return NULL;
    json_object_set_new(o, "first_delivery_ms",
                        a->first_ms ? json_integer((json_int_t)a->first_ms) : json_null());
    json_object_set_new(o, "last_delivery_ms",
                        a->last_ms ? json_integer((json_int_t)a->last_ms) : json_null());
    json_object_set_new(o, "not_before_ms",
                        a->not_before_ms ? json_integer((json_int_t)a->not_before_ms)
                                         : json_null());
    json_object_set_new(o, "priority", json_string(prio_name(a->priority)));
    json_object_set_new(o, "cancelled", json_boolean((a->flags & HD_ACTSTAT_CANCELLED) != 0));
    json_object_set_new(o, "created_ms", json_integer((json_int_t)a->created_ms));
    /* Counted from a schema-1 store's migration: deliveries done before it are not here. */
    json_object_set_new(o, "partial", json_boolean(!s->recorded ||
                                                   (a->flags & HD_ACTSTAT_MIGRATED) != 0));
    return o;
}

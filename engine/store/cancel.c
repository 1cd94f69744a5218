/* Takedown (hd_act_cancel) and the cancellation look-ups. The runner owns a host's queue while it runs, so it decides, right
 * before it would send, with these read-only look-ups in its read transaction; the
 * cancellations themselves go through the committer as DROP acks (see queue.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue_impl.h"
#include "actstat.h"
#include "err.h"
#include "hostrec.h"

/* Visits the deliveries of activity seq to host in dbi (queue or dead), in key order, until cb
 * returns nonzero (that value is returned). Returns 0, a cb value, or a store error. */
static int foreach_of_seq(struct hd_txn *txn, MDB_dbi dbi, const char *host, uint64_t seq,
                          int (*cb)(const struct hd_qent *q, void *ud), void *ud)
{
    uint8_t key[HD_QKEY_MAX];
    size_t hl = strlen(host);
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, stop = 0;

    if (hl == 0 || hl >= HD_HOST_MAX)
        return HD_ERR_INVALID;
    rc = hd_store_err(hd_mdb_cursor_open(txn, dbi, &cur));
    if (rc)
        return rc;
    k.mv_size = hd_queue_key(key, host, seq, 0);
    k.mv_data = key;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == hl + 13 && !memcmp(k.mv_data, key, hl + 9)) {
        struct hd_qent q;
        stop = hd_queue_ent_decode(&k, &v, &q);
        if (stop || (stop = cb(&q, ud)) != 0)
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (stop)
        return stop;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : hd_store_err(rc);
}

struct entries_ctx {
    struct hd_qref *out;
    size_t n, max;
};

static int entries_cb(const struct hd_qent *q, void *ud)
{
    struct entries_ctx *c = ud;
    if (c->n == c->max)
        return HD_ERR_FULL;
    memcpy(c->out[c->n].key, q->key, q->keylen);
    c->out[c->n].keylen = (uint16_t)q->keylen;
    c->out[c->n].flags = q->flags;
    c->out[c->n].enqueued_ms = q->enqueued_ms;
    c->n++;
    return 0;
}

int hd_queue_entries(struct hd_store *st, struct hd_txn *txn, const char *host, uint64_t seq,
                     struct hd_qref *out, size_t max)
{
    struct entries_ctx c = {out, 0, max};
    int rc = foreach_of_seq(txn, st->queue, host, seq, entries_cb, &c);
    return rc ? rc : (int)c.n;
}

static int act_type_is(struct hd_store *st, struct hd_txn *txn, uint64_t seq, const char *type,
                       uint64_t *prev)
{
    struct hd_act_view v;
    int rc = hd_queue_get_activity(st, txn, seq, &v);
    if (rc)
        return rc == HD_ERR_NOT_FOUND ? 0 : rc;
    if (prev)
        *prev = v.after[1];
    return type == NULL ||
           (v.type.n == strlen(type) && memcmp(v.type.p, type, v.type.n) == 0);
}

int hd_queue_delete_of(struct hd_store *st, struct hd_txn *txn, const char *object_id,
                       uint64_t create_seq, uint64_t *del_seq)
{
    uint64_t origin, last;
    int rc;

    if (!object_id || !*object_id || strlen(object_id) > 500)
        return 0;
    rc = hd_queue_objseq_get(st, txn, object_id, &origin, &last);
    if (rc || origin != create_seq || last == origin)
        return rc;
    rc = act_type_is(st, txn, last, "Delete", NULL);
    if (rc == 1)
        *del_seq = last;
    return rc;
}

size_t hd_queue_chain(struct hd_store *st, struct hd_txn *txn, uint64_t from, uint64_t origin,
                      uint64_t *out, size_t max)
{
    uint64_t cur = 0;
    size_t n = 0;

    if (act_type_is(st, txn, from, NULL, &cur) != 1)
        return 0;
    while (cur && cur != origin && cur < from && n < max) {
        uint64_t prev = 0;
        out[n++] = cur;
        if (act_type_is(st, txn, cur, NULL, &prev) != 1)
            break;
        if (prev >= cur) /* links go back in time; anything else is damage: stop */
            break;
        cur = prev;
    }
    return n;
}

static int refused_cb(const struct hd_qent *q, void *ud)
{
    if (!(q->flags & HD_QF_REACHED))
        (*(uint32_t *)ud)++;
    return 0;
}

int hd_queue_host_got(struct hd_store *st, struct hd_txn *txn, const char *host, uint64_t create_seq)
{
    uint8_t kb[8];
    size_t hl = strlen(host), lo, hi;
    uint32_t hh = hd_store_hash32(host, hl), count = 0, refused = 0;
    MDB_val k = {8, kb}, v;
    const uint8_t *p;
    int rc;

    if (hl == 0 || hl >= HD_HOST_MAX)
        return HD_ERR_INVALID;
    hd_be64(kb, create_seq);
    rc = hd_mdb_get(txn, st->objhosts, &k, &v);
    if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size % 8))
        return 1; /* nothing recorded (or damaged): the safe answer */
    if (rc)
        return hd_store_err(rc);
    p = v.mv_data;
    lo = 0;
    hi = v.mv_size / 8;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t x = hd_rd32(p + mid * 8);
        if (x == hh) {
            count = hd_rd32(p + mid * 8 + 4);
            break;
        }
        if (x < hh)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!count)
        return 0; /* never addressed to this host */
    /* Addressed: did every delivery there end as a dead letter the server never processed? */
    rc = foreach_of_seq(txn, st->dead, host, create_seq, refused_cb, &refused);
    if (rc)
        return rc;
    return refused >= count ? 0 : 1;
}

/* ------------------------------------------------------------------ takedown */

/* Removes the queued deliveries of seq at host (one key range). Adds to *n, *nretry and
 * *reached. Returns 0 or a store error. */
static int cancel_at_host(struct hd_store *st, struct hd_txn *txn, const char *host, uint64_t seq,
                          uint64_t *n, uint64_t *nretry, uint64_t *reached)
{
    uint8_t key[HD_QKEY_MAX];
    size_t hl = strlen(host);
    uint64_t here = 0, here_retry = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    if (hl == 0 || hl >= HD_HOST_MAX)
        return 0;
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->queue, &cur));
    if (rc)
        return rc;
    k.mv_size = hd_queue_key(key, host, seq, 0);
    k.mv_data = key;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == hl + 13 && !memcmp(k.mv_data, key, hl + 9)) {
        struct hd_qent q;
        uint32_t flags = 0;
        uint8_t qk[HD_QKEY_MAX];
        size_t ql = k.mv_size;
        if (hd_queue_ent_decode(&k, &v, &q) == 0) {
            if (q.attempts)
                here_retry++;
            if (q.flags & HD_QF_REACHED)
                (*reached)++;
            flags = q.flags;
        }
        memcpy(qk, k.mv_data, ql);
        rc = mdb_cursor_del(cur, 0);
        if (rc)
            break;
        rc = hd_queue_prio_del(st, txn, qk, ql, flags);
        if (rc)
            break;
        here++;
        rc = hd_queue_act_done(st, txn, seq);
        if (rc)
            break;
        k.mv_size = hd_queue_key(key, host, seq, 0);
        k.mv_data = key;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return rc < 0 ? rc : hd_store_err(rc);
    if (here) {
        struct hd_host_rec h;
        rc = hd_host_get(st, txn, host, hl, &h);
        if (rc == 0) {
            hd_host_rec_unqueue(&h, here, here_retry);
            rc = hd_host_put(st, txn, host, hl, &h);
        } else if (rc == HD_ERR_NOT_FOUND) {
            rc = 0;
        }
        if (rc)
            return rc;
    }
    *n += here;
    *nretry += here_retry;
    return 0;
}

/* The names of the hosts with queued deliveries (collected first: host records are written
 * after the walk). *names: NUL-separated. Returns 0 or an error. */
static int queued_hosts(struct hd_store *st, struct hd_txn *txn, char **names, size_t *len)
{
    struct hd_host_iter it;
    struct hd_host_rec rec;
    char name[HD_HOST_MAX];
    char *buf = NULL;
    size_t cap = 0, n = 0;
    int rc = hd_host_iter_open(st, txn, &it);

    while (!rc && (rc = hd_host_iter_next(&it, name, &rec)) == 0) {
        size_t l = strlen(name) + 1;
        if (!rec.queued)
            continue;
        if (n + l > cap) {
            size_t nc = cap ? cap * 2 : 4096;
            char *p = realloc(buf, nc);
            if (!p) {
                rc = -ENOMEM;
                break;
            }
            buf = p;
            cap = nc;
        }
        memcpy(buf + n, name, l);
        n += l;
    }
    hd_host_iter_close(&it);
    if (rc != HD_ERR_NOT_FOUND) {
        free(buf);
        return rc ? rc : HD_ERR_STORE;
    }
    *names = buf;
    *len = n;
    return 0;
}

int hd_act_cancel(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c, uint64_t seq,
                  uint64_t now_ms, struct hd_cancel_result *out)
{
    struct hd_actstat as;
    struct hd_act_view av;
    char obj[512] = "";
    char *names = NULL;
    size_t len = 0, off;
    uint64_t n = 0, nretry = 0, reached = 0;
    int is_create = 0, rc;

    memset(out, 0, sizeof(*out));
    out->seq = seq;
    rc = hd_actstat_get(st, txn, seq, &as);
    if (rc == HD_ERR_NOT_FOUND) {
        /* No record: a migrated store's activity with nothing queued, or none at all. */
        rc = hd_queue_has_activity(st, txn, seq);
        if (rc < 0)
            return rc;
        as.flags = HD_ACTSTAT_MIGRATED;
    } else if (rc) {
        return rc;
    }
    out->already = (as.flags & HD_ACTSTAT_CANCELLED) != 0;
    /* The activity's type and object, read before its body may go with its last delivery. */
    if (hd_queue_get_activity(st, txn, seq, &av) == 0) {
        is_create = av.type.n == 6 && !memcmp(av.type.p, "Create", 6);
        if (av.object_id.p && av.object_id.n < sizeof(obj)) {
            memcpy(obj, av.object_id.p, av.object_id.n);
            obj[av.object_id.n] = 0;
        }
    }
    if (as.queued) {
        rc = queued_hosts(st, txn, &names, &len);
        for (off = 0; !rc && off < len && n < as.queued; off += strlen(names + off) + 1)
            rc = cancel_at_host(st, txn, names + off, seq, &n, &nretry, &reached);
        free(names);
        if (rc)
            return rc;
    }
    as.queued = as.queued > n ? as.queued - n : 0;
    as.retrying = as.retrying > nretry ? as.retrying - nretry : 0;
    as.cancelled += n;
    if (!out->already)
        as.cancel_ms = now_ms;
    as.flags |= HD_ACTSTAT_CANCELLED;
    if (as.not_before_ms) {
        rc = hd_holds_del(st, txn, as.not_before_ms, seq);
        if (rc)
            return rc;
    }
    rc = hd_actstat_put(st, txn, seq, &as);
    if (rc == 0)
        rc = hd_gen_bump(st, txn, HD_GEN_TAKEDOWNS);
    if (rc)
        return rc;
    c->cancelled += n;
    /* A Create of which nothing was sent: its object is as if never created, so the edited
     * Create enqueued again under this id starts the object's ordering afresh. */
    if (is_create && obj[0] && !as.attempted && !as.done && !as.queued) {
        uint64_t origin, last;
        rc = hd_queue_objseq_get(st, txn, obj, &origin, &last);
        if (rc)
            return rc;
        if (origin == seq && last == seq) {
            MDB_val k = {strlen(obj), obj};
            uint8_t kb[8];
            MDB_val ok = {8, kb};
            rc = hd_mdb_del(txn, st->objseq, &k, NULL);
            if (rc && rc != MDB_NOTFOUND)
                return hd_store_err(rc);
            if (rc == 0 && (rc = hd_gen_bump(st, txn, HD_GEN_OBJECTS)) != 0)
                return rc;
            hd_be64(kb, seq);
            rc = hd_mdb_del(txn, st->objhosts, &ok, NULL);
            if (rc && rc != MDB_NOTFOUND)
                return hd_store_err(rc);
        }
    }
    out->cancelled = n - reached;
    out->delivered = as.done;
    out->in_flight = reached;
    return 0;
}

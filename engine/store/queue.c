/* Queue records: delivery keys and entries, scans, activities and their reference counts,
 * the ordering check, and dropping deliveries (see queue.h). Enqueue, cancellation look-ups
 * and acknowledgements are in enqueue.c, cancel.c and ack.c. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue_impl.h"
#include "actstat.h"
#include "err.h"
#include "hostrec.h"

size_t hd_queue_key(uint8_t *key, const char *host, uint64_t seq, uint32_t idx)
{
    size_t hl = strlen(host);
    if (hl >= HD_HOST_MAX)
        hl = HD_HOST_MAX - 1;
    memcpy(key, host, hl);
    key[hl] = 0;
    hd_be64(key + hl + 1, seq);
    hd_be32(key + hl + 9, idx);
    return hl + 13;
}

int hd_queue_find_activity(struct hd_store *st, struct hd_txn *txn, const char *id, uint64_t *seq)
{
    MDB_val k = {strlen(id), (void *)id}, v;
    int rc;

    if (k.mv_size == 0 || k.mv_size > 511)
        return HD_ERR_INVALID;
    rc = hd_store_err(hd_mdb_get(txn, st->actid, &k, &v));
    if (rc)
        return rc;
    if (v.mv_size != 8)
        return HD_ERR_INVALID;
    *seq = hd_rd64(v.mv_data);
    return 0;
}

int hd_queue_actrem_put(struct hd_store *st, struct hd_txn *txn, uint64_t seq, uint32_t n)
{
    uint8_t kb[8], vb[4];
    MDB_val k = {8, kb}, v = {4, vb};
    hd_be64(kb, seq);
    hd_be32(vb, n);
    return hd_store_err(hd_mdb_put(txn, st->actrem, &k, &v, 0));
}

int hd_queue_ent_encode(struct hd_enc *e, const char *inbox, size_t inbox_len, uint32_t attempts,
                        uint64_t not_before, uint64_t enq_ms, uint64_t status, const char *error,
                        uint32_t flags, const char *body, size_t body_len)
{
    hd_enc_array(e, body ? 9 : 8);
    hd_enc_uint(e, 1);
    hd_enc_str(e, inbox, inbox_len);
    hd_enc_uint(e, attempts);
    hd_enc_uint(e, not_before);
    hd_enc_uint(e, enq_ms);
    hd_enc_uint(e, status);
    hd_enc_cstr(e, error);
    hd_enc_uint(e, flags);
    if (body)
        hd_enc_bin(e, body, body_len);
    return e->err;
}

int hd_queue_ent_put(struct hd_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t keylen,
                     const char *inbox, size_t inbox_len, uint32_t attempts, uint64_t not_before,
                     uint64_t enq_ms, uint64_t status, const char *error, uint32_t flags,
                     const char *body, size_t body_len)
{
    struct hd_enc e;
    MDB_val k = {keylen, (void *)key}, v;
    int rc;

    hd_enc_init(&e);
    rc = hd_queue_ent_encode(&e, inbox, inbox_len, attempts, not_before, enq_ms, status, error,
                             flags, body, body_len);
    if (!rc) {
        v.mv_size = e.len;
        v.mv_data = e.buf;
        rc = hd_store_err(hd_mdb_put(txn, dbi, &k, &v, 0));
    }
    hd_enc_fini(&e);
    return rc;
}

int hd_queue_ent_decode(const MDB_val *k, const MDB_val *v, struct hd_qent *q)
{
    struct hd_dec d;
    int rc;
    if (k->mv_size < 13)
        return HD_ERR_INVALID;
    rc = hd_dec_record(&d, v->mv_data, v->mv_size, 1, 7);
    if (rc)
        return rc;
    q->key = k->mv_data;
    q->keylen = k->mv_size;
    q->seq = hd_rd64((const uint8_t *)k->mv_data + k->mv_size - 12);
    q->idx = hd_rd32((const uint8_t *)k->mv_data + k->mv_size - 4);
    q->inbox = hd_dec_str(&d, 1);
    q->attempts = (uint32_t)hd_dec_uint(&d, 2);
    q->not_before_ms = hd_dec_uint(&d, 3);
    q->enqueued_ms = hd_dec_uint(&d, 4);
    q->flags = (uint32_t)hd_dec_uint(&d, 7);
    return q->inbox.p ? 0 : HD_ERR_INVALID;
}

int hd_queue_scan(struct hd_store *st, struct hd_txn *txn, const char *host, const uint8_t *after,
                  size_t after_len, size_t max, hd_qent_cb cb, void *user_data, uint8_t *last,
                  size_t *last_len, int *end)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t hl = strlen(host), seen = 0;
    uint8_t start[HD_QKEY_MAX];
    int rc;

    *end = 0;
    *last_len = 0;
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->queue, &cur));
    if (rc)
        return rc;
    if (after && after_len) {
        k.mv_size = after_len;
        k.mv_data = (void *)after;
    } else {
        memcpy(start, host, hl);
        start[hl] = 0;
        k.mv_size = hl + 1;
        k.mv_data = start;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && after && after_len && k.mv_size == after_len &&
        memcmp(k.mv_data, after, after_len) == 0)
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    while (rc == 0) {
        struct hd_qent q;
        if (k.mv_size != hl + 13 || memcmp(k.mv_data, host, hl) != 0 ||
            ((const uint8_t *)k.mv_data)[hl] != 0) {
            *end = 1;
            break;
        }
        if (seen >= max)
            break;
        seen++;
        memcpy(last, k.mv_data, k.mv_size);
        *last_len = k.mv_size;
        if (hd_queue_ent_decode(&k, &v, &q) == 0 && cb(&q, user_data))
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND)
        *end = 1;
    else if (rc)
        seen = 0;
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return hd_store_err(rc);
    return (int)seen;
}

/* ------------------------------------------------------------------ priorities */

/* qprio key: host \0 class(1) seq(8) idx(4), from a queue key host \0 seq(8) idx(4). */
static size_t prio_key(uint8_t *out, const uint8_t *qkey, size_t keylen, int cls)
{
    size_t hl = keylen - 13;
    memcpy(out, qkey, hl + 1);
    out[hl + 1] = (uint8_t)cls;
    memcpy(out + hl + 2, qkey + hl + 1, 12);
    return keylen + 1;
}

static int flags_class(uint32_t flags)
{
    return (flags & HD_QF_HIGH) ? HD_PRIO_HIGH : (flags & HD_QF_LOW) ? HD_PRIO_LOW : 0;
}

int hd_queue_prio_put(struct hd_store *st, struct hd_txn *txn, const uint8_t *qkey, size_t keylen,
                      uint32_t flags)
{
    uint8_t kb[HD_QKEY_MAX + 1];
    int cls = flags_class(flags);
    MDB_val k, v = {0, NULL};

    if (!cls || keylen < 14 || keylen > HD_QKEY_MAX)
        return 0;
    k.mv_size = prio_key(kb, qkey, keylen, cls);
    k.mv_data = kb;
    return hd_store_err(hd_mdb_put(txn, st->qprio, &k, &v, 0));
}

int hd_queue_prio_del(struct hd_store *st, struct hd_txn *txn, const uint8_t *qkey, size_t keylen,
                      uint32_t flags)
{
    uint8_t kb[HD_QKEY_MAX + 1];
    int cls = flags_class(flags), rc;
    MDB_val k;

    if (!cls || keylen < 14 || keylen > HD_QKEY_MAX)
        return 0;
    k.mv_size = prio_key(kb, qkey, keylen, cls);
    k.mv_data = kb;
    rc = hd_mdb_del(txn, st->qprio, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : hd_store_err(rc);
}

int hd_queue_scan_prio(struct hd_store *st, struct hd_txn *txn, const char *host, int prio,
                       size_t max, hd_qent_cb cb, void *user_data, int *end)
{
    uint8_t start[HD_QKEY_MAX + 1], qk[HD_QKEY_MAX];
    size_t hl = strlen(host), seen = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    *end = 0;
    if (hl == 0 || hl >= HD_HOST_MAX)
        return HD_ERR_INVALID;
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->qprio, &cur));
    if (rc)
        return rc;
    memcpy(start, host, hl);
    start[hl] = 0;
    start[hl + 1] = (uint8_t)prio;
    k.mv_size = hl + 2;
    k.mv_data = start;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0) {
        const uint8_t *kp = k.mv_data;
        MDB_val ek, ev;
        struct hd_qent q;
        if (k.mv_size != hl + 14 || memcmp(kp, start, hl + 2) != 0) {
            *end = 1;
            break;
        }
        if (seen >= max)
            break;
        seen++;
        /* The queue entry it stands for (a stale index entry is passed over). */
        memcpy(qk, kp, hl + 1);
        memcpy(qk + hl + 1, kp + hl + 2, 12);
        ek.mv_size = hl + 13;
        ek.mv_data = qk;
        if (hd_mdb_get(txn, st->queue, &ek, &ev) == 0 && hd_queue_ent_decode(&ek, &ev, &q) == 0 &&
            cb(&q, user_data))
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND) {
        *end = 1;
        rc = 0;
    }
    mdb_cursor_close(cur);
    return rc ? hd_store_err(rc) : (int)seen;
}

/* ------------------------------------------------------------------ activities */

int hd_queue_act_done(struct hd_store *st, struct hd_txn *txn, uint64_t seq)
{
    return hd_queue_act_done_n(st, txn, seq, 1);
}

int hd_queue_act_done_n(struct hd_store *st, struct hd_txn *txn, uint64_t seq, uint32_t n)
{
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    uint32_t rem;
    int rc;

    if (n == 0)
        return 0;
    hd_be64(kb, seq);
    rc = hd_mdb_get(txn, st->actrem, &k, &v);
    if (rc == MDB_NOTFOUND || v.mv_size != 4)
        return 0;
    if (rc)
        return hd_store_err(rc);
    rem = hd_rd32(v.mv_data);
    if (rem > n)
        return hd_queue_actrem_put(st, txn, seq, rem - n);
    /* Last delivery of this activity: drop the body, keep the id index for de-duplication. */
    rc = hd_mdb_del(txn, st->actrem, &k, NULL);
    if (rc == 0 || rc == MDB_NOTFOUND)
        rc = hd_mdb_del(txn, st->acts, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : hd_store_err(rc);
}

int hd_queue_get_activity(struct hd_store *st, struct hd_txn *txn, uint64_t seq,
                          struct hd_act_view *out)
{
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    struct hd_dec d;
    int rc;

    hd_be64(kb, seq);
    rc = hd_store_err(hd_mdb_get(txn, st->acts, &k, &v));
    if (rc)
        return rc;
    rc = hd_dec_record(&d, v.mv_data, v.mv_size, 1, 7);
    if (rc)
        return rc;
    out->id = hd_dec_str(&d, 1);
    out->type = hd_dec_str(&d, 2);
    out->actor = hd_dec_str(&d, 3);
    out->object_id = hd_dec_str(&d, 4);
    out->body = hd_dec_str(&d, 6);
    out->after[0] = hd_dec_uint(&d, 7); /* absent before ordering was recorded: 0 */
    out->after[1] = hd_dec_uint(&d, 8);
    return 0;
}

/* Object ids longer than an LMDB key are not ordered (activity ids are limited to 500 bytes
 * too): callers check the length first. */
int hd_queue_objseq_get(struct hd_store *st, struct hd_txn *txn, const char *obj,
                        uint64_t *origin, uint64_t *last)
{
    MDB_val k = {strlen(obj), (void *)obj}, v;
    int rc = hd_mdb_get(txn, st->objseq, &k, &v);
    *origin = *last = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return hd_store_err(rc);
    if (v.mv_size == 16) {
        *origin = hd_rd64(v.mv_data);
        *last = hd_rd64((const uint8_t *)v.mv_data + 8);
    }
    return 0;
}

/* ------------------------------------------------------------------ ordering */

int hd_queue_blocked(struct hd_store *st, struct hd_txn *txn, const char *host,
                     const uint64_t after[2])
{
    uint64_t until;
    return hd_queue_blocked_until(st, txn, host, after, &until);
}

int hd_queue_blocked_until(struct hd_store *st, struct hd_txn *txn, const char *host,
                           const uint64_t after[2], uint64_t *until_ms)
{
    uint8_t key[HD_QKEY_MAX];
    size_t hl = strlen(host);
    MDB_cursor *cur;
    int rc, blocked = 0;

    if (!after[0] && !after[1])
        return 0;
    if (hl == 0 || hl >= HD_HOST_MAX)
        return HD_ERR_INVALID;
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->queue, &cur));
    if (rc)
        return rc;
    for (int i = 0; i < 2 && !blocked; i++) {
        MDB_val k, v;
        if (!after[i])
            continue;
        /* host\0seq with idx 0: the first entry of that activity for this host, if any. */
        k.mv_size = hd_queue_key(key, host, after[i], 0);
        k.mv_data = key;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc) {
            rc = hd_store_err(rc);
            break;
        }
        blocked = k.mv_size == hl + 13 && !memcmp(k.mv_data, key, hl + 9);
        if (blocked) {
            struct hd_qent q;
            *until_ms = hd_queue_ent_decode(&k, &v, &q) == 0 ? q.not_before_ms : 0;
        }
    }
    mdb_cursor_close(cur);
    return rc ? rc : blocked;
}

/* ------------------------------------------------------------------ dropping */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Seqs of actor's activities that still have references (ascending: actrem's key order). */
static int actor_seqs(struct hd_store *st, struct hd_txn *txn, const char *actor, uint64_t **out,
                      size_t *n)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t cap = 0, al = strlen(actor);
    uint64_t *seqs = NULL;
    int rc = hd_store_err(hd_mdb_cursor_open(txn, st->actrem, &cur)), op = MDB_FIRST;

    *out = NULL;
    *n = 0;
    if (rc)
        return rc;
    while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        struct hd_act_view av;
        uint64_t seq;
        op = MDB_NEXT;
        if (k.mv_size != 8)
            continue;
        seq = hd_rd64(k.mv_data);
        if (hd_queue_get_activity(st, txn, seq, &av) != 0 || av.actor.n != al ||
            memcmp(av.actor.p, actor, al))
            continue;
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            uint64_t *p = realloc(seqs, nc * sizeof(*p));
            if (!p) {
                rc = -ENOMEM;
                break;
            }
            seqs = p;
            cap = nc;
        }
        seqs[(*n)++] = seq;
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND) {
        free(seqs);
        *n = 0;
        return rc < 0 ? rc : hd_store_err(rc);
    }
    *out = seqs;
    return 0;
}

/* The deliveries of one host that a drop removed: its record's counts go down by them. */
static int host_dropped(struct hd_store *st, struct hd_txn *txn, const char *host, uint64_t n,
                        uint64_t nretry)
{
    struct hd_host_rec h;
    int rc;

    if (!n)
        return 0;
    rc = hd_host_get(st, txn, host, strlen(host), &h);
    if (rc)
        return rc == HD_ERR_NOT_FOUND ? 0 : rc;
    hd_host_rec_unqueue(&h, n, nretry);
    return hd_host_put(st, txn, host, strlen(host), &h);
}

int hd_queue_drop(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                  const char *host, const char *actor, uint64_t *dropped)
{
    uint8_t kb[HD_QKEY_MAX];
    char cur_host[HD_HOST_MAX] = "";
    uint64_t *seqs = NULL, total = 0, n = 0, nretry = 0;
    size_t hl = host ? strlen(host) : 0, nseqs = 0;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rc;

    if (dropped)
        *dropped = 0;
    if ((!host && !actor) || (host && (hl == 0 || hl >= HD_HOST_MAX)))
        return HD_ERR_INVALID;
    if (actor) {
        rc = actor_seqs(st, txn, actor, &seqs, &nseqs);
        if (rc || nseqs == 0)
            goto out;
    }
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->queue, &cur));
    if (rc)
        goto out;
    /* One pass over host's key range, or over the whole queue: keys are host\0seq\idx, so a
     * host's entries are adjacent and its record is updated once. */
    if (host) {
        memcpy(kb, host, hl);
        kb[hl] = 0;
        k.mv_size = hl + 1;
        k.mv_data = kb;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    } else {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }
    while (rc == 0) {
        const uint8_t *kp = k.mv_data;
        size_t khl;
        struct hd_dec d;
        uint64_t seq;
        uint32_t eflags;
        int was_retry;

        if (host && (k.mv_size != hl + 13 || memcmp(kp, host, hl) != 0 || kp[hl] != 0))
            break;
        khl = k.mv_size >= 14 ? k.mv_size - 13 : HD_HOST_MAX;
        if (khl >= HD_HOST_MAX || kp[khl] != 0) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT); /* not a queue key: never written */
            continue;
        }
        seq = hd_rd64(kp + khl + 1);
        if (seqs && !bsearch(&seq, seqs, nseqs, sizeof(*seqs), cmp_u64)) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        if (strlen(cur_host) != khl || memcmp(cur_host, kp, khl) != 0) {
            rc = host_dropped(st, txn, cur_host, n, nretry);
            if (rc)
                goto out;
            memcpy(cur_host, kp, khl);
            cur_host[khl] = 0;
            n = nretry = 0;
        }
        /* A delivery with attempts made is counted as retrying in its host's record. */
        was_retry = hd_dec_record(&d, v.mv_data, v.mv_size, 1, 3) == 0 && hd_dec_uint(&d, 2) > 0;
        if (was_retry)
            nretry++;
        eflags = hd_dec_record(&d, v.mv_data, v.mv_size, 1, 8) == 0 ? (uint32_t)hd_dec_uint(&d, 7)
                                                                     : 0;
        memcpy(kb, kp, k.mv_size);
        k.mv_data = kb;
        rc = mdb_cursor_del(cur, 0);
        if (rc) {
            rc = hd_store_err(rc);
            goto out;
        }
        rc = hd_queue_prio_del(st, txn, kb, k.mv_size, eflags);
        if (rc)
            goto out;
        /* Its activity's counts: a drop of an actor's deliveries is its federation choice
         * (withheld), a drop at a host the domain rules. */
        {
            struct hd_actstat as;
            rc = hd_actstat_get(st, txn, seq, &as);
            if (rc == 0) {
                as.queued -= as.queued ? 1 : 0;
                as.retrying -= was_retry && as.retrying ? 1 : 0;
                if (actor && !host)
                    as.withheld++;
                else
                    as.dropped++;
                rc = hd_actstat_put(st, txn, seq, &as);
            } else if (rc == HD_ERR_NOT_FOUND) {
                rc = 0;
            }
            if (rc)
                goto out;
        }
        /* Releases this delivery's reference to the activity body (the last one drops it;
         * dead letters keep theirs). */
        rc = hd_queue_act_done(st, txn, seq);
        if (rc)
            goto out;
        n++;
        total++;
        /* Re-seek from the deleted key: the next entry sorts after it. */
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    if (rc != MDB_NOTFOUND && rc != 0) {
        rc = hd_store_err(rc);
        goto out;
    }
    rc = host_dropped(st, txn, cur_host, n, nretry);
    if (rc)
        goto out;
    c->dropped += total;
    if (dropped)
        *dropped = total;
out:
    if (cur)
        mdb_cursor_close(cur);
    free(seqs);
    return rc;
}

int hd_queue_requeue(struct hd_store *st, struct hd_txn *txn, const uint8_t *key, size_t keylen,
                     struct hd_slice inbox, uint64_t enqueued_ms, uint32_t flags, uint64_t now_ms)
{
    struct hd_actstat as;
    int rc;

    /* Attempts reset, due now, no status or error. */
    rc = hd_queue_ent_put(txn, st->queue, key, keylen, inbox.p, inbox.n, 0, now_ms, enqueued_ms,
                          0, NULL, flags, NULL, 0);
    if (!rc)
        rc = hd_queue_prio_put(st, txn, key, keylen, flags);
    if (rc || keylen < 13)
        return rc;
    /* A dead letter back in the queue: its activity counts it queued again. */
    rc = hd_actstat_get(st, txn, hd_rd64(key + keylen - 12), &as);
    if (rc == HD_ERR_NOT_FOUND)
        return 0;
    if (rc)
        return rc;
    if (as.failed)
        as.failed--;
    else if (as.expired)
        as.expired--;
    as.queued++;
    return hd_actstat_put(st, txn, hd_rd64(key + keylen - 12), &as);
}

int hd_queue_has_activity(struct hd_store *st, struct hd_txn *txn, uint64_t seq)
{
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    int rc;

    hd_be64(kb, seq);
    rc = hd_mdb_get(txn, st->acts, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    return rc ? hd_store_err(rc) : 1;
}

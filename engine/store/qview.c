/* The operator's queue view (see qview.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hostctl.h"
#include "qview.h"
#include "queue_impl.h"

static int decode(const MDB_val *k, const MDB_val *v, struct hd_qview_ent *e)
{
    struct hd_dec d;
    const uint8_t *kp = k->mv_data;
    size_t hl;

    if (k->mv_size < 14)
        return HD_ERR_INVALID;
    hl = k->mv_size - 13;
    if (kp[hl] != 0 || memchr(kp, 0, hl))
        return HD_ERR_INVALID;
    if (hd_dec_record(&d, v->mv_data, v->mv_size, 1, 7) != 0)
        return HD_ERR_INVALID;
    e->key = kp;
    e->keylen = k->mv_size;
    e->host = (const char *)kp;
    e->seq = hd_rd64(kp + hl + 1);
    e->idx = hd_rd32(kp + hl + 9);
    e->inbox = hd_dec_str(&d, 1);
    e->attempts = (uint32_t)hd_dec_uint(&d, 2);
    e->not_before_ms = hd_dec_uint(&d, 3);
    e->enqueued_ms = hd_dec_uint(&d, 4);
    e->status = (uint32_t)hd_dec_uint(&d, 5);
    e->error = hd_dec_str(&d, 6);
    e->flags = (uint32_t)hd_dec_uint(&d, 7);
    return e->inbox.p ? 0 : HD_ERR_INVALID;
}

/* Positions cur at the first key of the walk: after `after`, else at host's first key, else at
 * the start. Returns an LMDB code. */
static int seek(MDB_cursor *cur, const char *host, size_t hl, const uint8_t *after,
                size_t after_len, MDB_val *k, MDB_val *v)
{
    uint8_t start[HD_HOST_MAX + 1];
    int rc;

    if (after && after_len) {
        k->mv_size = after_len;
        k->mv_data = (void *)after;
        rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
        if (rc == 0 && k->mv_size == after_len && memcmp(k->mv_data, after, after_len) == 0)
            rc = mdb_cursor_get(cur, k, v, MDB_NEXT);
        return rc;
    }
    if (!host)
        return mdb_cursor_get(cur, k, v, MDB_FIRST);
    memcpy(start, host, hl);
    start[hl] = 0;
    k->mv_size = hl + 1;
    k->mv_data = start;
    return mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
}

static int in_host(const MDB_val *k, const char *host, size_t hl)
{
    return !host || (k->mv_size == hl + 13 && memcmp(k->mv_data, host, hl) == 0 &&
                     ((const uint8_t *)k->mv_data)[hl] == 0);
}

int hd_qview_walk(struct hd_store *st, struct hd_txn *txn, const char *host, const uint8_t *after,
                  size_t after_len, hd_qview_cb cb, void *user_data)
{
    size_t hl = host ? strlen(host) : 0;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, ret = 0;

    if (hl >= HD_HOST_MAX)
        return HD_ERR_INVALID;
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->queue, &cur));
    if (rc)
        return rc;
    rc = seek(cur, host, hl, after, after_len, &k, &v);
    while (rc == 0 && in_host(&k, host, hl)) {
        struct hd_qview_ent e;
        if (decode(&k, &v, &e) == 0) {
            ret = cb(&e, user_data);
            if (ret)
                break;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (ret)
        return ret;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : hd_store_err(rc);
}

int hd_qview_flush(struct hd_store *st, struct hd_txn *txn, const char *host, uint64_t now_ms,
                   uint64_t *n)
{
    size_t hl = host ? strlen(host) : 0;
    uint8_t last[HD_QKEY_MAX];
    size_t last_len = 0;
    uint64_t changed = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, put = 0;

    if (hl >= HD_HOST_MAX)
        return HD_ERR_INVALID;
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->queue, &cur));
    if (rc)
        return rc;
    rc = seek(cur, host, hl, NULL, 0, &k, &v);
    while (rc == 0 && in_host(&k, host, hl)) {
        struct hd_qview_ent e;
        char err[HD_ERRTEXT_MAX];
        if (decode(&k, &v, &e) != 0 || e.not_before_ms <= now_ms) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        /* Rewritten through a plain put, so the cursor is placed again after it. */
        snprintf(err, sizeof(err), "%.*s", (int)e.error.n, e.error.p ? e.error.p : "");
        memcpy(last, k.mv_data, k.mv_size);
        last_len = k.mv_size;
        put = hd_queue_ent_put(txn, st->queue, last, last_len, e.inbox.p, e.inbox.n,
                               e.attempts, 0, e.enqueued_ms, e.status, e.error.p ? err : NULL,
                               e.flags, NULL, 0);
        if (put)
            break;
        changed++;
        rc = seek(cur, host, hl, last, last_len, &k, &v);
    }
    mdb_cursor_close(cur);
    if (put)
        return put;
    if (rc && rc != MDB_NOTFOUND)
        return hd_store_err(rc);
    if (changed) {
        rc = hd_hostctl_touch(st, txn);
        if (rc)
            return rc;
    }
    *n = changed;
    return 0;
}

int hd_qview_block_host(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                        const char *host, uint64_t now_ms, uint64_t *n)
{
    size_t hl = strlen(host);
    uint8_t kb[HD_QKEY_MAX];
    uint64_t moved = 0, nretry = 0;
    struct hd_host_rec h;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, put = 0;

    *n = 0;
    if (hl == 0 || hl >= HD_HOST_MAX)
        return HD_ERR_INVALID;
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->queue, &cur));
    if (rc)
        return rc;
    rc = seek(cur, host, hl, NULL, 0, &k, &v);
    while (rc == 0 && in_host(&k, host, hl)) {
        struct hd_qview_ent e;
        if (decode(&k, &v, &e) != 0) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        memcpy(kb, k.mv_data, k.mv_size);
        k.mv_data = kb;
        /* The letter is written before the entry goes: e's strings point into its value. */
        put = hd_queue_ent_put(txn, st->dead, kb, k.mv_size, e.inbox.p, e.inbox.n, e.attempts,
                               now_ms, e.enqueued_ms, 0, HD_DEAD_BLOCKED, e.flags, "", 0);
        if (put)
            break;
        if (e.attempts)
            nretry++;
        rc = mdb_cursor_del(cur, 0);
        if (rc)
            break;
        moved++;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    if (put)
        return put;
    if (rc && rc != MDB_NOTFOUND)
        return hd_store_err(rc);
    if (!moved)
        return 0;
    rc = hd_host_get(st, txn, host, hl, &h);
    if (rc == 0) {
        hd_host_rec_unqueue(&h, moved, nretry);
        h.failed += moved;
        rc = hd_host_put(st, txn, host, hl, &h);
    } else if (rc == HD_ERR_NOT_FOUND) {
        rc = 0;
    }
    if (rc)
        return rc;
    c->dropped += moved;
    *n = moved;
    return 0;
}

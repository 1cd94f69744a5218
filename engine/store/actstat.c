/* Per-activity status: naming an activity, its counts and failing hosts, holds (actstat.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actstat.h"
#include "codec.h"
#include "store_impl.h"

int hd_act_resolve(struct hd_store *st, struct hd_txn *txn, const char *text, uint64_t *seq)
{
    size_t n = text ? strlen(text) : 0, i;
    MDB_val k, v;
    int rc;

    if (n == 0 || n > 500)
        return HD_ERR_INVALID;
    for (i = 0; i < n && text[i] >= '0' && text[i] <= '9'; i++)
        ;
    if (i == n && n <= 19) {
        /* A sequence number: it names an activity when its record is there. */
        uint64_t s = strtoull(text, NULL, 10);
        struct hd_actstat a;
        uint8_t kb[8];
        if (s == 0)
            return HD_ERR_NOT_FOUND;
        rc = hd_actstat_get(st, txn, s, &a);
        if (rc == HD_ERR_NOT_FOUND) {
            hd_be64(kb, s);
            k.mv_size = 8;
            k.mv_data = kb;
            rc = hd_store_err(hd_mdb_get(txn, st->acts, &k, &v));
        }
        if (rc)
            return rc;
        *seq = s;
        return 0;
    }
    k.mv_size = n;
    k.mv_data = (void *)text;
    rc = hd_store_err(hd_mdb_get(txn, st->actid, &k, &v));
    if (rc)
        return rc;
    if (v.mv_size != 8)
        return HD_ERR_INVALID;
    *seq = hd_rd64(v.mv_data);
    return 0;
}

/* actfail key: seq(8) host. */
static size_t fail_key(uint8_t *kb, uint64_t seq, const char *host, size_t hl)
{
    hd_be64(kb, seq);
    memcpy(kb + 8, host, hl);
    return 8 + hl;
}

int hd_actstat_host(struct hd_store *st, struct hd_txn *txn, uint64_t seq, struct hd_actstat *a,
                    const char *host, int ok, uint32_t status, const char *error,
                    uint64_t now_ms)
{
    uint8_t kb[8 + HD_HOST_MAX];
    size_t hl = strlen(host);
    MDB_val k, v;
    struct hd_enc e;
    int rc, exists;

    if (hl == 0 || hl >= HD_HOST_MAX)
        return HD_ERR_INVALID;
    if (ok && a->nfail == 0)
        return 0;
    k.mv_size = fail_key(kb, seq, host, hl);
    k.mv_data = kb;
    rc = hd_mdb_get(txn, st->actfail, &k, &v);
    if (rc && rc != MDB_NOTFOUND)
        return hd_store_err(rc);
    exists = rc == 0;
    if (ok) {
        if (!exists)
            return 0;
        rc = hd_store_err(hd_mdb_del(txn, st->actfail, &k, NULL));
        if (!rc && a->nfail)
            a->nfail--;
        return rc;
    }
    if (!exists && a->nfail >= HD_ACTSTAT_FAIL_MAX)
        return 0;
    hd_enc_init(&e);
    hd_enc_array(&e, 4);
    hd_enc_uint(&e, 1);
    hd_enc_uint(&e, status);
    hd_enc_cstr(&e, error && *error ? error : NULL);
    hd_enc_uint(&e, now_ms);
    rc = e.err;
    if (!rc) {
        v.mv_size = e.len;
        v.mv_data = e.buf;
        rc = hd_store_err(hd_mdb_put(txn, st->actfail, &k, &v, 0));
    }
    hd_enc_fini(&e);
    if (!rc && !exists)
        a->nfail++;
    return rc;
}

static int read_fails(struct hd_store *st, struct hd_txn *txn, struct hd_act_status *out)
{
    uint8_t kb[8];
    MDB_cursor *cur;
    MDB_val k = {8, kb}, v;
    int rc;

    hd_be64(kb, out->seq);
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->actfail, &cur));
    if (rc)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && out->nfail < HD_ACTSTAT_FAIL_MAX && k.mv_size > 8 &&
           k.mv_size - 8 < HD_HOST_MAX && hd_rd64(k.mv_data) == out->seq) {
        struct hd_act_failhost *f = &out->fail[out->nfail];
        struct hd_dec d;
        if (hd_dec_record(&d, v.mv_data, v.mv_size, 1, 4) == 0) {
            struct hd_slice s = hd_dec_str(&d, 2);
            memcpy(f->host, (const uint8_t *)k.mv_data + 8, k.mv_size - 8);
            f->host[k.mv_size - 8] = 0;
            f->status = (uint32_t)hd_dec_uint(&d, 1);
            f->at_ms = hd_dec_uint(&d, 3);
            snprintf(f->error, sizeof(f->error), "%.*s", (int)(s.p ? s.n : 0),
                     s.p ? (const char *)s.p : "");
            out->nfail++;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : hd_store_err(rc);
}

int hd_act_status(struct hd_store *st, struct hd_txn *txn, uint64_t seq, uint64_t now_ms,
                  struct hd_act_status *out)
{
    int rc;
    uint64_t fresh;

    memset(out, 0, sizeof(*out));
    out->seq = seq;
    rc = hd_actstat_get(st, txn, seq, &out->a);
    if (rc == HD_ERR_NOT_FOUND)
        return 0;
    if (rc)
        return rc;
    out->recorded = 1;
    fresh = out->a.queued > out->a.retrying ? out->a.queued - out->a.retrying : 0;
    if (out->a.not_before_ms > now_ms)
        out->held = fresh;
    else
        out->pending = fresh;
    return read_fails(st, txn, out);
}

static void hold_key(uint8_t *kb, uint64_t not_before_ms, uint64_t seq)
{
    hd_be64(kb, not_before_ms);
    hd_be64(kb + 8, seq);
}

int hd_holds_put(struct hd_store *st, struct hd_txn *txn, uint64_t not_before_ms, uint64_t seq)
{
    uint8_t kb[16];
    MDB_val k = {16, kb}, v = {0, NULL};
    hold_key(kb, not_before_ms, seq);
    return hd_store_err(hd_mdb_put(txn, st->holds, &k, &v, 0));
}

int hd_holds_del(struct hd_store *st, struct hd_txn *txn, uint64_t not_before_ms, uint64_t seq)
{
    uint8_t kb[16];
    MDB_val k = {16, kb};
    int rc;
    hold_key(kb, not_before_ms, seq);
    rc = hd_mdb_del(txn, st->holds, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : hd_store_err(rc);
}

int hd_holds_prune(struct hd_store *st, struct hd_txn *txn, uint64_t now_ms, size_t max)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t n = 0;
    int rc = hd_store_err(hd_mdb_cursor_open(txn, st->holds, &cur));

    if (rc)
        return rc;
    while (n < max && (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0 && k.mv_size == 16 &&
           hd_rd64(k.mv_data) <= now_ms) {
        rc = mdb_cursor_del(cur, 0);
        if (rc)
            break;
        n++;
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : hd_store_err(rc);
}

int hd_holds_count(struct hd_store *st, struct hd_txn *txn, uint64_t now_ms, int write,
                   uint64_t *held)
{
    uint8_t kb[16];
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t sum = 0;
    int rc;

    rc = hd_store_err(hd_mdb_cursor_open(txn, st->holds, &cur));
    if (rc)
        return rc;
    if (write) {
        /* Ended holds: their index entries go (the deliveries themselves are due now). */
        while ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0 && k.mv_size == 16 &&
               hd_rd64(k.mv_data) <= now_ms) {
            rc = mdb_cursor_del(cur, 0);
            if (rc)
                break;
        }
        if (rc && rc != MDB_NOTFOUND) {
            mdb_cursor_close(cur);
            return hd_store_err(rc);
        }
    }
    hold_key(kb, now_ms + 1, 0);
    k.mv_size = 16;
    k.mv_data = kb;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0) {
        struct hd_actstat a;
        if (k.mv_size == 16 &&
            hd_actstat_get(st, txn, hd_rd64((const uint8_t *)k.mv_data + 8), &a) == 0 &&
            a.not_before_ms > now_ms)
            sum += a.queued > a.retrying ? a.queued - a.retrying : 0;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return hd_store_err(rc);
    *held = sum;
    return 0;
}

/* Host records (see hostrec.h). */
#include <string.h>

#include "store_impl.h"
#include "codec.h"
#include "err.h"
#include "hostrec.h"

static int host_dec(const MDB_val *v, struct hd_host_rec *h)
{
    struct hd_dec d;
    struct hd_slice s;
    int rc;

    memset(h, 0, sizeof(*h));
    rc = hd_dec_record(&d, v->mv_data, v->mv_size, 1, 10);
    if (rc)
        return rc;
    h->fail_days = hd_dec_uint(&d, 10);
    h->last_fail_day = hd_dec_uint(&d, 11);
    h->dead = hd_dec_uint(&d, 12);
    h->scheme = hd_dec_uint(&d, 13);
    h->queued = hd_dec_uint(&d, 1);
    h->retrying = hd_dec_uint(&d, 2);
    h->done = hd_dec_uint(&d, 3);
    h->failed = hd_dec_uint(&d, 4);
    h->failures = hd_dec_uint(&d, 5);
    h->last_status = hd_dec_uint(&d, 6);
    s = hd_dec_str(&d, 7);
    if (s.n >= sizeof(h->last_error))
        s.n = sizeof(h->last_error) - 1;
    if (s.p)
        memcpy(h->last_error, s.p, s.n);
    h->last_error[s.n] = 0;
    h->last_ok_ms = hd_dec_uint(&d, 8);
    h->last_fail_ms = hd_dec_uint(&d, 9);
    return 0;
}

int hd_host_get(struct hd_store *st, struct hd_txn *txn, const char *host, size_t host_len,
                struct hd_host_rec *h)
{
    MDB_val k = {host_len, (void *)host}, v;
    int rc;

    memset(h, 0, sizeof(*h));
    rc = hd_mdb_get(txn, st->hosts, &k, &v);
    if (rc == MDB_NOTFOUND)
        return HD_ERR_NOT_FOUND;
    if (rc)
        return hd_store_err(rc);
    return host_dec(&v, h);
}

int hd_host_iter_open(struct hd_store *st, struct hd_txn *txn, struct hd_host_iter *it)
{
    MDB_cursor *cur = NULL;
    int rc = hd_store_err(hd_mdb_cursor_open(txn, st->hosts, &cur));

    it->cur = rc ? NULL : cur;
    it->started = 0;
    return rc;
}

int hd_host_iter_next(struct hd_host_iter *it, char name[HD_HOST_MAX], struct hd_host_rec *rec)
{
    MDB_val k, v;
    int rc;

    if (!it->cur)
        return HD_ERR_NOT_FOUND;
    for (;;) {
        rc = mdb_cursor_get(it->cur, &k, &v, it->started ? MDB_NEXT : MDB_FIRST);
        it->started = 1;
        if (rc == MDB_NOTFOUND)
            return HD_ERR_NOT_FOUND;
        if (rc)
            return hd_store_err(rc);
        if (k.mv_size == 0 || k.mv_size >= HD_HOST_MAX || memchr(k.mv_data, 0, k.mv_size))
            continue; /* not a host name this build can hold: never written by Herald */
        if (rec && host_dec(&v, rec) != 0)
            continue; /* a record of a newer schema: skipped, as hd_host_get refuses it */
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = 0;
        return 0;
    }
}

int hd_host_iter_rec(struct hd_host_iter *it, struct hd_host_rec *rec)
{
    MDB_val k, v;
    int rc;

    if (!it->cur || !it->started)
        return HD_ERR_NOT_FOUND;
    rc = mdb_cursor_get(it->cur, &k, &v, MDB_GET_CURRENT);
    if (rc)
        return rc == MDB_NOTFOUND ? HD_ERR_NOT_FOUND : hd_store_err(rc);
    return host_dec(&v, rec);
}

void hd_host_iter_close(struct hd_host_iter *it)
{
    if (it->cur)
        mdb_cursor_close(it->cur);
    it->cur = NULL;
}

int hd_host_sum(struct hd_store *st, struct hd_txn *txn, struct hd_host_sum *out)
{
    struct hd_host_sum sum = {0, 0, 0};
    struct hd_host_iter it;
    struct hd_host_rec rec;
    char name[HD_HOST_MAX];
    int rc = hd_host_iter_open(st, txn, &it);

    while (rc == 0 && (rc = hd_host_iter_next(&it, name, &rec)) == 0) {
        sum.hosts++;
        sum.queued += rec.queued;
        sum.retrying += rec.retrying;
    }
    hd_host_iter_close(&it);
    if (rc != HD_ERR_NOT_FOUND)
        return rc;
    *out = sum;
    return 0;
}

/* Note: hd_host_add_queued (below) rewrites field 1 (queued) of this record in place; keep
 * `queued` the first field after the version. */
int hd_host_put(struct hd_store *st, struct hd_txn *txn, const char *host, size_t host_len,
                const struct hd_host_rec *h)
{
    struct hd_enc e;
    MDB_val k = {host_len, (void *)host}, v;
    int rc;

    hd_enc_init(&e);
    hd_enc_array(&e, 14);
    hd_enc_uint(&e, 1);
    hd_enc_uint(&e, h->queued);
    hd_enc_uint(&e, h->retrying);
    hd_enc_uint(&e, h->done);
    hd_enc_uint(&e, h->failed);
    hd_enc_uint(&e, h->failures);
    hd_enc_uint(&e, h->last_status);
    hd_enc_cstr(&e, h->last_error);
    hd_enc_uint(&e, h->last_ok_ms);
    hd_enc_uint(&e, h->last_fail_ms);
    hd_enc_uint(&e, h->fail_days);
    hd_enc_uint(&e, h->last_fail_day);
    hd_enc_uint(&e, h->dead);
    hd_enc_uint(&e, h->scheme);
    rc = e.err;
    if (!rc) {
        v.mv_size = e.len;
        v.mv_data = e.buf;
        rc = hd_store_err(hd_mdb_put(txn, st->hosts, &k, &v, 0));
    }
    hd_enc_fini(&e);
    return rc;
}

/* Adds n to a host record's queued count (field 1) by rewriting that one number in the
 * record's msgpack bytes: a fan-out touches tens of thousands of host records, and decoding
 * and re-encoding each (hd_host_get/put) was 40% of the CPU of a post to a million
 * followers. A new host, or a record not shaped [1, queued, ...] as hd_host_put writes it,
 * takes hd_host_get/put. hd_host_put keeps `queued` the first field after the version. */
int hd_host_add_queued(struct hd_store *st, struct hd_txn *txn, const char *host, size_t hl,
                       uint64_t n)
{
    MDB_val k = {hl, (void *)host}, v;
    struct hd_host_rec h;
    uint8_t buf[1024];
    const uint8_t *p;
    size_t hdr, off, used, o;
    uint64_t q;
    int rc = hd_mdb_get(txn, st->hosts, &k, &v);

    if (rc && rc != MDB_NOTFOUND)
        return hd_store_err(rc);
    if (rc || v.mv_size < 3 || v.mv_size > sizeof(buf) - 16)
        goto slow;
    p = v.mv_data;
    if ((p[0] & 0xf0) == 0x90 && (p[0] & 0x0f) >= 2)
        hdr = 1;
    else if (p[0] == 0xdc && v.mv_size > 3 && ((p[1] << 8) | p[2]) >= 2)
        hdr = 3;
    else
        goto slow;
    if (p[hdr] != 0x01)
        goto slow;
    off = hdr + 1;
    if (p[off] < 0x80) {
        q = p[off];
        used = 1;
    } else if (p[off] == 0xcc && off + 2 <= v.mv_size) {
        q = p[off + 1];
        used = 2;
    } else if (p[off] == 0xcd && off + 3 <= v.mv_size) {
        q = ((uint64_t)p[off + 1] << 8) | p[off + 2];
        used = 3;
    } else if (p[off] == 0xce && off + 5 <= v.mv_size) {
        q = hd_rd32(p + off + 1);
        used = 5;
    } else if (p[off] == 0xcf && off + 9 <= v.mv_size) {
        q = hd_rd64(p + off + 1);
        used = 9;
    } else {
        goto slow;
    }
    if (off + used > v.mv_size)
        goto slow;
    memcpy(buf, p, off);
    o = off + hd_mp_uint(buf + off, q + n);
    memcpy(buf + o, p + off + used, v.mv_size - off - used);
    v.mv_size = o + v.mv_size - off - used;
    v.mv_data = buf;
    return hd_store_err(hd_mdb_put(txn, st->hosts, &k, &v, 0));
slow:
    rc = hd_host_get(st, txn, host, hl, &h);
    if (rc && rc != HD_ERR_NOT_FOUND)
        return rc;
    h.queued += n;
    return hd_host_put(st, txn, host, hl, &h);
}

/* Resumable TLS client sessions kept across runs (tlssess.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "store_impl.h"
#include "tlssess.h"
#include "url.h"

#define KEY_MAX (HD_HOST_MAX + 8)

/* "host:port" into buf; returns its length, or 0 when it does not fit. */
static size_t make_key(char *buf, const char *host, uint16_t port)
{
    int n = snprintf(buf, KEY_MAX, "%s:%u", host, (unsigned)port);
    return n > 0 && n < KEY_MAX ? (size_t)n : 0;
}

int hd_tlssess_save(struct hd_store *st, const struct hd_tlssess_rec *recs, size_t n)
{
    struct hd_txn *txn;
    uint8_t *val;
    int rc;

    for (size_t i = 0; i < n; i++)
        if (!recs[i].host || !recs[i].host[0] || !recs[i].der || !recs[i].len ||
            recs[i].len > HD_TLSSESS_VALUE_MAX)
            return HD_ERR_INVALID;
    val = malloc(8 + HD_TLSSESS_VALUE_MAX);
    if (!val)
        return -ENOMEM;
    rc = hd_store_begin(st, 1, &txn);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char key[KEY_MAX];
        MDB_val k, v;

        k.mv_size = make_key(key, recs[i].host, recs[i].port);
        k.mv_data = key;
        if (!k.mv_size) {
            rc = HD_ERR_INVALID;
            break;
        }
        hd_be64(val, recs[i].expires_ms);
        memcpy(val + 8, recs[i].der, recs[i].len);
        v.mv_size = 8 + recs[i].len;
        v.mv_data = val;
        rc = hd_store_err(hd_mdb_put(txn, st->tlssess, &k, &v, 0));
    }
    explicit_bzero(val, 8 + HD_TLSSESS_VALUE_MAX);
    free(val);
    if (rc) {
        hd_store_abort(txn);
        return rc;
    }
    return hd_store_commit(txn);
}

long hd_tlssess_load(struct hd_store *st, uint64_t now_ms, size_t max, hd_tlssess_cb cb,
                     void *user_data)
{
    struct hd_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    long loaded = 0;
    int rc, op = MDB_FIRST;

    rc = hd_store_begin(st, 1, &txn);
    if (rc)
        return rc;
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->tlssess, &cur));
    if (rc) {
        hd_store_abort(txn);
        return rc;
    }
    while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        char host[HD_HOST_MAX];
        const char *colon = k.mv_size ? memrchr(k.mv_data, ':', k.mv_size) : NULL;
        size_t hl = colon ? (size_t)(colon - (const char *)k.mv_data) : 0;
        unsigned long port = 0;
        int bad = !colon || hl == 0 || hl >= sizeof(host) || v.mv_size <= 8 ||
                  v.mv_size > 8 + HD_TLSSESS_VALUE_MAX;
        struct hd_tlssess_rec rec;

        op = MDB_NEXT;
        if (!bad) {
            char digits[8];
            size_t dl = k.mv_size - hl - 1;
            char *end;
            if (dl == 0 || dl >= sizeof(digits)) {
                bad = 1;
            } else {
                memcpy(digits, colon + 1, dl);
                digits[dl] = 0;
                port = strtoul(digits, &end, 10);
                bad = *end != 0 || port == 0 || port > 65535;
            }
        }
        if (bad || hd_rd64(v.mv_data) <= now_ms) {
            rc = mdb_cursor_del(cur, 0);
            if (rc)
                break;
            continue;
        }
        if (max && (size_t)loaded >= max)
            continue;
        memcpy(host, k.mv_data, hl);
        host[hl] = 0;
        rec.host = host;
        rec.port = (uint16_t)port;
        rec.expires_ms = hd_rd64(v.mv_data);
        rec.der = (const uint8_t *)v.mv_data + 8;
        rec.len = v.mv_size - 8;
        if (cb(&rec, user_data) != 0) {
            rc = MDB_NOTFOUND;
            break;
        }
        loaded++;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) {
        hd_store_abort(txn);
        return hd_store_err(rc);
    }
    rc = hd_store_commit(txn);
    return rc ? rc : loaded;
}

long hd_tlssess_count(struct hd_store *st)
{
    struct hd_txn *txn;
    MDB_stat ms;
    int rc = hd_store_begin(st, 0, &txn);

    if (rc)
        return rc;
    rc = hd_store_err(mdb_stat(hd_mdb_txn(txn), st->tlssess, &ms));
    hd_store_abort(txn);
    return rc ? rc : (long)ms.ms_entries;
}

/* Operator controls, live host view and dead letters (see hostctl.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store_impl.h"
#include "err.h"
#include "hostctl.h"
#include "hostrec.h"
#include "queue.h"
#include "rules.h"
#include "url.h"

static const char key_gen[4] = {0, 'g', 'e', 'n'};

static int host_key(const char *host, MDB_val *k)
{
    size_t n = strlen(host);
    if (n == 0 || n >= HD_HOST_MAX)
        return HD_ERR_INVALID;
    k->mv_size = n;
    k->mv_data = (void *)host;
    return 0;
}

static int put_enc(struct hd_txn *txn, MDB_dbi dbi, MDB_val *k, struct hd_enc *e)
{
    MDB_val v;
    int rc = e->err;
    if (!rc) {
        v.mv_size = e->len;
        v.mv_data = e->buf;
        rc = hd_store_err(hd_mdb_put(txn, dbi, k, &v, 0));
    }
    hd_enc_fini(e);
    return rc;
}

/* ------------------------------------------------------------------ hostctl */

uint64_t hd_hostctl_generation(struct hd_store *st, struct hd_txn *txn)
{
    MDB_val k = {sizeof(key_gen), (void *)key_gen}, v;
    if (hd_mdb_get(txn, st->hostctl, &k, &v) != 0 || v.mv_size != 8)
        return 0;
    return hd_rd64(v.mv_data);
}

static int decode_hostctl(const MDB_val *v, struct hd_hostctl *out)
{
    struct hd_dec d;
    int rc = hd_dec_record(&d, v->mv_data, v->mv_size, 1, 5);
    if (rc)
        return rc;
    out->paused = hd_dec_uint(&d, 1) != 0;
    out->max_inflight = (uint32_t)hd_dec_uint(&d, 2);
    out->rate_milli = hd_dec_uint(&d, 3);
    out->reset_gen = hd_dec_uint(&d, 4);
    return 0;
}

int hd_hostctl_get(struct hd_store *st, struct hd_txn *txn, const char *host, struct hd_hostctl *out)
{
    MDB_val k, v;
    struct hd_hostctl c;
    int rc = host_key(host, &k);

    memset(out, 0, sizeof(*out));
    if (rc)
        return rc;
    rc = hd_mdb_get(txn, st->hostctl, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return hd_store_err(rc);
    memset(&c, 0, sizeof(c));
    rc = decode_hostctl(&v, &c);
    if (!rc)
        *out = c;
    return rc;
}

int hd_hostctl_touch(struct hd_store *st, struct hd_txn *txn)
{
    MDB_val gk = {sizeof(key_gen), (void *)key_gen}, gv;
    uint8_t gb[8];

    hd_be64(gb, hd_hostctl_generation(st, txn) + 1);
    gv.mv_size = 8;
    gv.mv_data = gb;
    return hd_store_err(hd_mdb_put(txn, st->hostctl, &gk, &gv, 0));
}

int hd_hostctl_put(struct hd_store *st, struct hd_txn *txn, const char *host,
                   const struct hd_hostctl *in)
{
    MDB_val k;
    struct hd_enc e;
    int rc = host_key(host, &k);

    if (rc)
        return rc;
    if (!in->paused && !in->max_inflight && !in->rate_milli && !in->reset_gen) {
        rc = hd_mdb_del(txn, st->hostctl, &k, NULL);
        rc = rc == MDB_NOTFOUND ? 0 : hd_store_err(rc);
    } else {
        hd_enc_init(&e);
        hd_enc_array(&e, 5);
        hd_enc_uint(&e, 1);
        hd_enc_uint(&e, in->paused ? 1 : 0);
        hd_enc_uint(&e, in->max_inflight);
        hd_enc_uint(&e, in->rate_milli);
        hd_enc_uint(&e, in->reset_gen);
        rc = put_enc(txn, st->hostctl, &k, &e);
    }
    if (rc)
        return rc;
    return hd_hostctl_touch(st, txn);
}

int hd_hostctl_foreach(struct hd_store *st, struct hd_txn *txn, hd_hostctl_cb cb, void *user_data)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = hd_store_err(hd_mdb_cursor_open(txn, st->hostctl, &cur)), mrc, op = MDB_FIRST;

    if (rc)
        return rc;
    for (;;) {
        char host[HD_HOST_MAX];
        struct hd_hostctl c;
        mrc = mdb_cursor_get(cur, &k, &v, op);
        if (mrc)
            break;
        op = MDB_NEXT;
        /* "\0gen" and any other reserved key start with NUL; host names never do. */
        if (k.mv_size == 0 || k.mv_size >= sizeof(host) || ((const char *)k.mv_data)[0] == 0)
            continue;
        memcpy(host, k.mv_data, k.mv_size);
        host[k.mv_size] = 0;
        memset(&c, 0, sizeof(c));
        rc = decode_hostctl(&v, &c);
        if (rc)
            break;
        if (cb(host, &c, user_data))
            break;
    }
    mdb_cursor_close(cur);
    if (rc)
        return rc;
    return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : hd_store_err(mrc);
}

/* ------------------------------------------------------------------ live */

int hd_live_put(struct hd_store *st, struct hd_txn *txn, const char *host, const struct hd_live *l)
{
    MDB_val k;
    struct hd_enc e;
    int rc = host_key(host, &k);

    if (rc)
        return rc;
    hd_enc_init(&e);
    hd_enc_array(&e, 9);
    hd_enc_uint(&e, 1);
    hd_enc_uint(&e, l->in_flight);
    hd_enc_uint(&e, l->window);
    hd_enc_uint(&e, l->ok_per_s_milli);
    hd_enc_uint(&e, l->p50_ms);
    hd_enc_uint(&e, l->p99_ms);
    hd_enc_uint(&e, (uint64_t)l->breaker);
    hd_enc_uint(&e, l->dead ? 1 : 0);
    hd_enc_uint(&e, l->updated_ms);
    return put_enc(txn, st->live, &k, &e);
}

int hd_live_get(struct hd_store *st, struct hd_txn *txn, const char *host, struct hd_live *out)
{
    MDB_val k, v;
    struct hd_dec d;
    int rc = host_key(host, &k);

    if (rc)
        return rc;
    rc = hd_store_err(hd_mdb_get(txn, st->live, &k, &v));
    if (rc)
        return rc;
    rc = hd_dec_record(&d, v.mv_data, v.mv_size, 1, 9);
    if (rc)
        return rc;
    memset(out, 0, sizeof(*out));
    out->in_flight = (uint32_t)hd_dec_uint(&d, 1);
    out->window = (uint32_t)hd_dec_uint(&d, 2);
    out->ok_per_s_milli = hd_dec_uint(&d, 3);
    out->p50_ms = (uint32_t)hd_dec_uint(&d, 4);
    out->p99_ms = (uint32_t)hd_dec_uint(&d, 5);
    out->breaker = (int)hd_dec_uint(&d, 6);
    out->dead = hd_dec_uint(&d, 7) != 0;
    out->updated_ms = hd_dec_uint(&d, 8);
    return 0;
}

int hd_live_del(struct hd_store *st, struct hd_txn *txn, const char *host)
{
    MDB_val k;
    int rc = host_key(host, &k);
    if (rc)
        return rc;
    rc = hd_mdb_del(txn, st->live, &k, NULL);
    if (rc == 0 || rc == MDB_NOTFOUND) {
        char kb[HD_HOST_MAX + 2];
        size_t n = k.mv_size;
        memcpy(kb, host, n);
        kb[n] = 0;
        kb[n + 1] = 'e';
        k.mv_data = kb;
        k.mv_size = n + 2;
        rc = hd_mdb_del(txn, st->live, &k, NULL);
    }
    return rc == MDB_NOTFOUND ? 0 : hd_store_err(rc);
}

/* The failures record sits in the live table under the host name, a NUL and 'e': no host
 * name holds a NUL, so it never meets a live record. Its value: [version 1, number of
 * classes, the struct as bytes] (a report of this process's build for readers on the same
 * machine; another class count reads as HD_ERR_SCHEMA). */
static int err_key(const char *host, char *kb, MDB_val *k)
{
    int rc = host_key(host, k);
    if (rc)
        return rc;
    memcpy(kb, host, k->mv_size);
    kb[k->mv_size] = 0;
    kb[k->mv_size + 1] = 'e';
    k->mv_data = kb;
    k->mv_size += 2;
    return 0;
}

int hd_live_err_put(struct hd_store *st, struct hd_txn *txn, const char *host,
                    const struct hd_errwin *w)
{
    char kb[HD_HOST_MAX + 2];
    MDB_val k;
    struct hd_enc e;
    int rc = err_key(host, kb, &k);

    if (rc)
        return rc;
    hd_enc_init(&e);
    hd_enc_array(&e, 3);
    hd_enc_uint(&e, 1);
    hd_enc_uint(&e, HD_EC__COUNT);
    hd_enc_bin(&e, w, sizeof(*w));
    return put_enc(txn, st->live, &k, &e);
}

int hd_live_err_get(struct hd_store *st, struct hd_txn *txn, const char *host,
                    struct hd_errwin *out)
{
    char kb[HD_HOST_MAX + 2];
    MDB_val k, v;
    struct hd_dec d;
    struct hd_slice b;
    int rc = err_key(host, kb, &k);

    if (rc)
        return rc;
    rc = hd_store_err(hd_mdb_get(txn, st->live, &k, &v));
    if (rc)
        return rc;
    rc = hd_dec_record(&d, v.mv_data, v.mv_size, 1, 3);
    if (rc)
        return rc;
    b = hd_dec_str(&d, 2);
    if (hd_dec_uint(&d, 1) != HD_EC__COUNT || b.n != sizeof(*out))
        return HD_ERR_SCHEMA;
    memcpy(out, b.p, sizeof(*out));
    return 0;
}

int hd_host_reset(struct hd_store *st, struct hd_txn *txn, const char *host)
{
    struct hd_hostctl c;
    struct hd_host_rec h;
    int rc = hd_hostctl_get(st, txn, host, &c);

    if (rc)
        return rc;
    c.reset_gen++;
    rc = hd_hostctl_put(st, txn, host, &c);
    if (rc)
        return rc;
    rc = hd_host_get(st, txn, host, strlen(host), &h);
    if (rc == HD_ERR_NOT_FOUND)
        return 0;
    if (rc)
        return rc;
    h.failures = 0;
    h.last_status = 0;
    h.last_error[0] = 0;
    h.last_fail_ms = 0;
    h.fail_days = 0;
    h.last_fail_day = 0;
    h.dead = HD_HOST_ALIVE;
    return hd_host_put(st, txn, host, strlen(host), &h);
}

/* ------------------------------------------------------------------ dead letters */

/* Dead values: [1, inbox, attempts, at_ms, enqueued_ms, status, error, flags, body]
 * (flags and body appended later; older records have 7 fields). */
static int decode_dead(const MDB_val *k, const MDB_val *v, struct hd_dead_view *o,
                       uint32_t *flags)
{
    struct hd_dec d;
    size_t hl;
    int rc;

    if (k->mv_size < 14)
        return HD_ERR_INVALID;
    hl = k->mv_size - 13;
    if (((const char *)k->mv_data)[hl] != 0)
        return HD_ERR_INVALID;
    rc = hd_dec_record(&d, v->mv_data, v->mv_size, 1, 7);
    if (rc)
        return rc;
    memset(o, 0, sizeof(*o));
    o->host = k->mv_data;
    o->seq = hd_rd64((const uint8_t *)k->mv_data + hl + 1);
    o->idx = hd_rd32((const uint8_t *)k->mv_data + hl + 9);
    o->inbox = hd_dec_str(&d, 1);
    o->attempts = (uint32_t)hd_dec_uint(&d, 2);
    o->at_ms = hd_dec_uint(&d, 3);
    o->enqueued_ms = hd_dec_uint(&d, 4);
    o->status = (int)hd_dec_uint(&d, 5);
    o->error = hd_dec_str(&d, 6);
    if (flags)
        *flags = (uint32_t)hd_dec_uint(&d, 7);
    o->body = hd_dec_str(&d, 8);
    return o->inbox.p ? 0 : HD_ERR_INVALID;
}

/* Positions cur at the first dead letter (of host, if given). Returns an MDB code. */
static int dead_first(MDB_cursor *cur, const char *host, MDB_val *k, MDB_val *v, uint8_t *kb)
{
    if (!host)
        return mdb_cursor_get(cur, k, v, MDB_FIRST);
    size_t hl = strlen(host);
    memcpy(kb, host, hl);
    kb[hl] = 0;
    k->mv_size = hl + 1;
    k->mv_data = kb;
    return mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
}

static int dead_in_range(const MDB_val *k, const char *host)
{
    size_t hl;
    if (!host)
        return 1;
    hl = strlen(host);
    return k->mv_size == hl + 13 && memcmp(k->mv_data, host, hl) == 0 &&
           ((const char *)k->mv_data)[hl] == 0;
}

int hd_dead_foreach(struct hd_store *st, struct hd_txn *txn, const char *host, hd_dead_cb cb,
                    void *user_data)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t kb[HD_QKEY_MAX];
    int rc, mrc;

    if (host && (!*host || strlen(host) >= HD_HOST_MAX))
        return HD_ERR_INVALID;
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->dead, &cur));
    if (rc)
        return rc;
    mrc = dead_first(cur, host, &k, &v, kb);
    while (mrc == 0 && dead_in_range(&k, host)) {
        struct hd_dead_view d;
        if (decode_dead(&k, &v, &d, NULL) == 0 && cb(&d, user_data))
            break;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : hd_store_err(mrc);
}

/* Adjusts host's record by dq queued and -dfailed failed. */
static int host_adjust(struct hd_store *st, struct hd_txn *txn, const char *host, uint64_t dq,
                       uint64_t dfailed)
{
    struct hd_host_rec h;
    int rc = hd_host_get(st, txn, host, strlen(host), &h);
    if (rc && rc != HD_ERR_NOT_FOUND)
        return rc;
    h.queued += dq;
    h.failed = h.failed > dfailed ? h.failed - dfailed : 0;
    return hd_host_put(st, txn, host, strlen(host), &h);
}

int hd_dead_retry(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c, const char *host,
                  uint64_t now_ms, uint64_t *moved, uint64_t *skipped)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t kb[HD_QKEY_MAX], start[HD_QKEY_MAX];
    char cur_host[HD_HOST_MAX] = "";
    uint64_t nmoved = 0, nskip = 0, host_moved = 0;
    int rc, mrc, allowed = 1;

    if (host && (!*host || strlen(host) >= HD_HOST_MAX))
        return HD_ERR_INVALID;
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->dead, &cur));
    if (rc)
        return rc;
    mrc = dead_first(cur, host, &k, &v, start);
    while (mrc == 0 && dead_in_range(&k, host)) {
        struct hd_dead_view d;
        uint32_t flags = 0;
        MDB_val qk;
        int blocked;
        rc = decode_dead(&k, &v, &d, &flags);
        if (rc) {
            nskip++;
            rc = 0;
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        if (strcmp(cur_host, d.host) != 0) {
            if (host_moved) {
                rc = host_adjust(st, txn, cur_host, host_moved, host_moved);
                if (rc)
                    break;
            }
            host_moved = 0;
            snprintf(cur_host, sizeof(cur_host), "%s", d.host);
            rc = hd_rules_check(st, txn, cur_host);
            if (rc < 0)
                break;
            allowed = rc;
            rc = 0;
        }
        /* A dead letter holds a reference to its activity's body (counted in actrem), so
         * moving it back into the queue keeps the count as it is. A letter whose body is gone
         * (written before letters held references) cannot be sent again. */
        rc = allowed ? hd_queue_has_activity(st, txn, d.seq) : 0;
        if (rc == 0) {
            nskip++;
            rc = 0;
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        if (rc < 0)
            break;
        memcpy(kb, k.mv_data, k.mv_size);
        qk.mv_size = k.mv_size;
        qk.mv_data = kb;
        /* A letter a rules change took out of the queue was counted as dropped, not failed. */
        blocked = d.status == 0 && d.error.n == sizeof(HD_DEAD_BLOCKED) - 1 &&
                  memcmp(d.error.p, HD_DEAD_BLOCKED, d.error.n) == 0;
        rc = hd_queue_requeue(st, txn, kb, k.mv_size, d.inbox, d.enqueued_ms, flags, now_ms);
        if (rc)
            break;
        /* d's strings point into the dead value: done with them before deleting it. */
        mrc = mdb_cursor_del(cur, 0);
        if (mrc)
            break;
        nmoved++;
        host_moved++;
        if (blocked && c->dropped)
            c->dropped--;
        else if (!blocked && c->failed)
            c->failed--;
        k = qk;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    if (!rc && mrc && mrc != MDB_NOTFOUND)
        rc = hd_store_err(mrc);
    if (!rc && host_moved)
        rc = host_adjust(st, txn, cur_host, host_moved, host_moved);
    /* A running engine finds new work when activities arrive; requeued letters are not new
     * activities, so tell it through the controls generation it polls every second. */
    if (!rc && nmoved)
        rc = hd_hostctl_touch(st, txn);
    if (rc)
        return rc;
    if (moved)
        *moved = nmoved;
    if (skipped)
        *skipped = nskip;
    return 0;
}

int hd_dead_purge(struct hd_store *st, struct hd_txn *txn, const char *host, uint64_t *purged)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t start[HD_QKEY_MAX];
    uint64_t n = 0;
    int rc, mrc;

    if (host && (!*host || strlen(host) >= HD_HOST_MAX))
        return HD_ERR_INVALID;
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->dead, &cur));
    if (rc)
        return rc;
    mrc = dead_first(cur, host, &k, &v, start);
    while (mrc == 0 && dead_in_range(&k, host)) {
        uint8_t kb[HD_QKEY_MAX];
        size_t hl = k.mv_size >= 14 ? k.mv_size - 13 : HD_HOST_MAX;
        /* Not a letter's key (host\0seq\idx): damage, never written by Herald. Left alone,
         * as the listing and retry skip it: it names no activity to release. */
        if (hl >= HD_HOST_MAX || ((const uint8_t *)k.mv_data)[hl] != 0) {
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        memcpy(kb, k.mv_data, k.mv_size);
        mrc = mdb_cursor_del(cur, 0);
        if (mrc)
            break;
        /* Release the letter's reference to the activity body (the last one drops it). */
        rc = hd_queue_act_done(st, txn, hd_rd64(kb + k.mv_size - 12));
        if (rc)
            break;
        n++;
        k.mv_data = kb;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    if (rc)
        return rc;
    if (mrc && mrc != MDB_NOTFOUND)
        return hd_store_err(mrc);
    if (purged)
        *purged = n;
    return 0;
}

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_impl.h"
#include "audience.h"
#include "err.h"
#include "hostctl.h"
#include "log.h"
#include "queue.h"
#include "strset.h"

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

/* Note: host_add_queued (below) rewrites field 1 (queued) of this record in place; keep
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

static int put_u32(struct hd_txn *txn, MDB_dbi dbi, uint64_t seq, uint32_t val)
{
    uint8_t kb[8], vb[4];
    MDB_val k = {8, kb}, v = {4, vb};
    hd_be64(kb, seq);
    hd_be32(vb, val);
    return hd_store_err(hd_mdb_put(txn, dbi, &k, &v, 0));
}

/* Queue values: [1, inbox, attempts, not_before, enqueued_ms, status, error, flags]; dead
 * letters add the first bytes of the answer's body: [..., flags, body]. */
static int put_qval(struct hd_store *st, struct hd_txn *txn, MDB_dbi dbi, const uint8_t *key,
                    size_t keylen, const char *inbox, size_t inbox_len, uint32_t attempts,
                    uint64_t not_before, uint64_t enq_ms, uint64_t status, const char *error,
                    uint32_t flags, const char *body, size_t body_len)
{
    struct hd_enc e;
    MDB_val k = {keylen, (void *)key}, v;
    int rc;

    (void)st;
    hd_enc_init(&e);
    hd_enc_array(&e, body ? 9 : 8);
    hd_enc_uint(&e, 1);
    hd_enc_str(&e, inbox, inbox_len);
    hd_enc_uint(&e, attempts);
    hd_enc_uint(&e, not_before);
    hd_enc_uint(&e, enq_ms);
    hd_enc_uint(&e, status);
    hd_enc_cstr(&e, error);
    hd_enc_uint(&e, flags);
    if (body)
        hd_enc_bin(&e, body, body_len);
    rc = e.err;
    if (!rc) {
        v.mv_size = e.len;
        v.mv_data = e.buf;
        rc = hd_store_err(hd_mdb_put(txn, dbi, &k, &v, 0));
    }
    hd_enc_fini(&e);
    return rc;
}

/* Deliveries to parsed URLs: formatted and handed to hd_queue_enqueue_dests (one code path,
 * so ordering and per-host aggregation hold for every enqueue). */
int hd_queue_enqueue(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                     const struct hd_activity_in *a, const struct hd_url *urls,
                     const uint8_t *flags, size_t n, uint64_t now_ms, uint64_t *seq)
{
    struct hd_qdest *d = NULL;
    char *arena = NULL;
    size_t alen = 0, acap = 0;
    int rc = 0;

    if (n) {
        d = calloc(n, sizeof(*d));
        if (!d)
            return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        char inbox[HD_URL_MAX + HD_HOST_MAX + 16];
        size_t il;
        rc = hd_url_format(&urls[i], inbox, sizeof(inbox));
        if (rc)
            goto out;
        il = strlen(inbox);
        if (alen + il > acap) {
            size_t nc = acap ? acap * 2 : 4096;
            char *p;
            while (nc < alen + il)
                nc *= 2;
            p = realloc(arena, nc);
            if (!p) {
                rc = -ENOMEM;
                goto out;
            }
            arena = p;
            acap = nc;
        }
        memcpy(arena + alen, inbox, il);
        d[i].inbox = (const char *)(uintptr_t)alen; /* offset until the arena stops moving */
        d[i].inbox_len = (uint32_t)il;
        d[i].host = urls[i].host;
        d[i].host_len = (uint32_t)strlen(urls[i].host);
        d[i].flags = flags ? flags[i] : 0;
        alen += il;
    }
    for (size_t i = 0; i < n; i++)
        d[i].inbox = arena + (uintptr_t)d[i].inbox;
    rc = hd_queue_enqueue_dests(st, txn, c, a, d, n, now_ms, seq);
out:
    free(d);
    free(arena);
    return rc;
}

static int decode_qent(const MDB_val *k, const MDB_val *v, struct hd_qent *q)
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
        if (decode_qent(&k, &v, &q) == 0 && cb(&q, user_data))
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

int hd_queue_act_done(struct hd_store *st, struct hd_txn *txn, uint64_t seq)
{
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    uint32_t rem;
    int rc;

    hd_be64(kb, seq);
    rc = hd_mdb_get(txn, st->actrem, &k, &v);
    if (rc == MDB_NOTFOUND || v.mv_size != 4)
        return 0;
    if (rc)
        return hd_store_err(rc);
    rem = hd_rd32(v.mv_data);
    if (rem > 1)
        return put_u32(txn, st->actrem, seq, rem - 1);
    /* Last delivery of this activity: drop the body, keep the id index for de-duplication. */
    rc = hd_mdb_del(txn, st->actrem, &k, NULL);
    if (rc == 0 || rc == MDB_NOTFOUND)
        rc = hd_mdb_del(txn, st->acts, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : hd_store_err(rc);
}

/* Host health: a host-level failure on a new day counts one more failing day; a success
 * clears the count and revives a dead host. Only our own outbound results come here. */
static void host_health(struct hd_host_rec *h, const struct hd_ack *a, uint64_t now_ms,
                        const struct hd_health_policy *hp)
{
    uint64_t day = now_ms / (hp->day_ms ? hp->day_ms : 86400000ull);
    if (a->kind == HD_ACK_DONE) {
        if (a->scheme_ok)
            h->scheme = a->scheme_ok;
        h->fail_days = 0;
        h->dead = HD_HOST_ALIVE;
        return;
    }
    if (a->host_gone)
        h->dead = HD_HOST_GONE;
    if (!a->host_fail)
        return;
    if (h->fail_days == 0 || day != h->last_fail_day) {
        h->fail_days++;
        h->last_fail_day = day;
    }
    if (h->fail_days >= hp->dead_days && h->dead == HD_HOST_ALIVE)
        h->dead = HD_HOST_DEAD;
}

/* ...and leaves the audience of the actor whose activity it refused (issue 4 item 1). */
static int follower_gone(struct hd_store *st, struct hd_txn *txn, uint64_t seq, const char *inbox)
{
    struct hd_act_view v;
    char actor[HD_FOLLOW_URL_MAX + 1];
    uint64_t removed = 0;
    int rc = hd_queue_get_activity(st, txn, seq, &v);

    if (rc == HD_ERR_NOT_FOUND)
        return 0;
    if (rc)
        return rc;
    if (!v.actor.p || v.actor.n == 0 || v.actor.n > HD_FOLLOW_URL_MAX)
        return 0;
    memcpy(actor, v.actor.p, v.actor.n);
    actor[v.actor.n] = 0;
    rc = hd_follow_remove_gone(st, txn, actor, inbox, &removed);
    if (rc == 0 && removed)
        HD_LOG(HD_LOG_INFO, "queue", "msg=\"follower gone: removed from the audience\" "
               "actor=\"%s\" follows=%llu", actor, (unsigned long long)removed);
    return rc;
}

int hd_queue_apply(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                   const struct hd_ack *acks, size_t n, uint64_t now_ms,
                   const struct hd_health_policy *hp_in)
{
    static const struct hd_health_policy hp_default = {86400000ull, 7};
    const struct hd_health_policy *hp = hp_in ? hp_in : &hp_default;
    struct hd_host_rec h;
    char cur_host[HD_HOST_MAX] = "";
    int have_host = 0, rc = 0;

    for (size_t i = 0; i < n; i++) {
        const struct hd_ack *a = &acks[i];
        const char *host = hd_queue_key_host(a->key);
        MDB_val k = {a->keylen, (void *)a->key}, v;
        struct hd_qent q;
        uint32_t old_attempts;
        char inbox[HD_URL_MAX + HD_HOST_MAX + 16];

        rc = hd_mdb_get(txn, st->queue, &k, &v);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            continue; /* already acknowledged or cancelled */
        }
        if (rc)
            return hd_store_err(rc);
        rc = decode_qent(&k, &v, &q);
        if (rc)
            return rc;
        old_attempts = q.attempts;
        if (q.inbox.n >= sizeof(inbox))
            return HD_ERR_INVALID;
        memcpy(inbox, q.inbox.p, q.inbox.n);
        inbox[q.inbox.n] = 0;

        /* Acks arrive grouped by thread, and mostly by host: keep the host record in hand
         * while consecutive acks share it. */
        if (!have_host || strcmp(cur_host, host) != 0) {
            if (have_host) {
                rc = hd_host_put(st, txn, cur_host, strlen(cur_host), &h);
                if (rc)
                    return rc;
            }
            snprintf(cur_host, sizeof(cur_host), "%s", host);
            rc = hd_host_get(st, txn, cur_host, strlen(cur_host), &h);
            if (rc && rc != HD_ERR_NOT_FOUND)
                return rc;
            have_host = 1;
        }
        host_health(&h, a, now_ms, hp);
        switch (a->kind) {
        case HD_ACK_DONE:
            rc = hd_store_err(hd_mdb_del(txn, st->queue, &k, NULL));
            if (rc)
                return rc;
            if (h.queued)
                h.queued--;
            if (old_attempts && h.retrying)
                h.retrying--;
            h.done++;
            h.last_status = a->status;
            h.last_ok_ms = now_ms;
            c->done++;
            rc = hd_queue_act_done(st, txn, q.seq);
            break;
        case HD_ACK_RETRY:
            if (!old_attempts)
                h.retrying++;
            h.failures++;
            h.last_status = a->status;
            h.last_fail_ms = now_ms;
            snprintf(h.last_error, sizeof(h.last_error), "%s", a->error);
            rc = put_qval(st, txn, st->queue, a->key, a->keylen, inbox, strlen(inbox),
                          a->attempts, a->not_before_ms, q.enqueued_ms, a->status, a->error,
                          q.flags | (a->reached ? HD_QF_REACHED : 0), NULL, 0);
            break;
        case HD_ACK_DEAD:
            rc = put_qval(st, txn, st->dead, a->key, a->keylen, inbox, strlen(inbox), a->attempts,
                          now_ms, q.enqueued_ms, a->status, a->error,
                          q.flags | (a->reached ? HD_QF_REACHED : 0), a->body, a->body_len);
            if (rc)
                return rc;
            rc = hd_store_err(hd_mdb_del(txn, st->queue, &k, NULL));
            if (rc)
                return rc;
            if (h.queued)
                h.queued--;
            if (old_attempts && h.retrying)
                h.retrying--;
            h.failed++;
            h.failures++;
            h.last_status = a->status;
            h.last_fail_ms = now_ms;
            snprintf(h.last_error, sizeof(h.last_error), "%s", a->error);
            c->failed++;
            if (a->expired)
                c->expired++;
            /* A personal inbox answered 404/410: the follower is gone (`herald gone list`). */
            if (a->follower_gone) {
                rc = hd_gone_add(st, txn, inbox, a->status);
                if (rc == 0)
                    rc = follower_gone(st, txn, q.seq, inbox);
            }
            /* The dead letter keeps its reference to the activity body, so that `herald dead
             * retry` can send it again; hd_dead_purge (hostctl.c) releases it. */
            break;
        case HD_ACK_DROP:
            /* Refused by the rules after it was queued (a suspend the engine saw first):
             * dropped and counted, like hd_queue_drop_host does. */
            rc = hd_store_err(hd_mdb_del(txn, st->queue, &k, NULL));
            if (rc)
                return rc;
            if (h.queued)
                h.queued--;
            if (old_attempts && h.retrying)
                h.retrying--;
            if (a->cancelled)
                c->cancelled++;
            else
                c->dropped++;
            rc = hd_queue_act_done(st, txn, q.seq);
            break;
        default:
            rc = HD_ERR_INVALID;
        }
        if (rc)
            return rc;
    }
    if (have_host)
        rc = hd_host_put(st, txn, cur_host, strlen(cur_host), &h);
    return rc;
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

/* ------------------------------------------------------------------ fan-out enqueue, ordering
 * (audience work, issue 3). */

/* msgpack of a fresh queue entry, written by hand: this runs once per delivery of a fan-out
 * (70,000 times for a post to a million followers), where the generic packer's per-element
 * callbacks were a fifth of the time. Same record as put_qval writes:
 * [1, inbox, 0, 0, enqueued_ms, 0, nil, flags]. Returns the length (buf >= inbox_len + 40). */
static size_t pack_uint(uint8_t *p, uint64_t v)
{
    if (v < 128) {
        p[0] = (uint8_t)v;
        return 1;
    }
    if (v < 256) {
        p[0] = 0xcc;
        p[1] = (uint8_t)v;
        return 2;
    }
    if (v < 65536) {
        p[0] = 0xcd;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)v;
        return 3;
    }
    if (v <= UINT32_MAX) {
        p[0] = 0xce;
        hd_be32(p + 1, (uint32_t)v);
        return 5;
    }
    p[0] = 0xcf;
    hd_be64(p + 1, v);
    return 9;
}

static size_t pack_fresh_qval(uint8_t *buf, const char *inbox, size_t inbox_len, uint64_t now_ms,
                              uint32_t flags)
{
    size_t o = 0;
    buf[o++] = 0x98; /* array of 8 */
    buf[o++] = 0x01;
    if (inbox_len < 32) {
        buf[o++] = (uint8_t)(0xa0 | inbox_len);
    } else if (inbox_len < 256) {
        buf[o++] = 0xd9;
        buf[o++] = (uint8_t)inbox_len;
    } else {
        buf[o++] = 0xda;
        buf[o++] = (uint8_t)(inbox_len >> 8);
        buf[o++] = (uint8_t)inbox_len;
    }
    memcpy(buf + o, inbox, inbox_len);
    o += inbox_len;
    buf[o++] = 0x00; /* attempts */
    buf[o++] = 0x00; /* not_before */
    o += pack_uint(buf + o, now_ms);
    buf[o++] = 0x00; /* status */
    buf[o++] = 0xc0; /* error: nil */
    o += pack_uint(buf + o, flags);
    return o;
}

static int cmp_qdest(const void *pa, const void *pb)
{
    const struct hd_qdest *a = pa, *b = pb;
    size_t n = a->host_len < b->host_len ? a->host_len : b->host_len;
    int c = memcmp(a->host, b->host, n);
    if (c)
        return c;
    if (a->host_len != b->host_len)
        return a->host_len < b->host_len ? -1 : 1;
    n = a->inbox_len < b->inbox_len ? a->inbox_len : b->inbox_len;
    c = memcmp(a->inbox, b->inbox, n);
    if (c)
        return c;
    return a->inbox_len < b->inbox_len ? -1 : a->inbox_len > b->inbox_len;
}

static int cmp_host(const struct hd_qdest *a, const struct hd_qdest *b)
{
    size_t n = a->host_len < b->host_len ? a->host_len : b->host_len;
    int c = memcmp(a->host, b->host, n);
    if (c)
        return c;
    return a->host_len < b->host_len ? -1 : a->host_len > b->host_len;
}

/* Orders destinations by host. An audience arrives already in (nearly) host order, since its
 * rows sort by URL, so only the part after the longest ordered prefix is sorted, then merged
 * with the prefix: O(n) for a post to followers plus a few explicit recipients. */
static int sort_dests(struct hd_qdest *d, size_t n)
{
    struct hd_qdest *tmp;
    size_t p = 1, i, j, o;

    while (p < n && cmp_host(&d[p - 1], &d[p]) <= 0)
        p++;
    if (p >= n)
        return 0;
    if (p < n - p) {
        qsort(d, n, sizeof(*d), cmp_qdest);
        return 0;
    }
    qsort(d + p, n - p, sizeof(*d), cmp_qdest);
    tmp = malloc(n * sizeof(*tmp));
    if (!tmp)
        return -ENOMEM;
    for (i = 0, j = p, o = 0; i < p || j < n;) {
        if (j >= n || (i < p && cmp_host(&d[i], &d[j]) <= 0))
            tmp[o++] = d[i++];
        else
            tmp[o++] = d[j++];
    }
    memcpy(d, tmp, n * sizeof(*d));
    free(tmp);
    return 0;
}

/* objseq: object id -> (seq of the first activity about it, seq of the latest). Object ids
 * longer than an LMDB key are not ordered (activity ids are limited to 500 bytes too). */
static int objseq_get(struct hd_store *st, struct hd_txn *txn, const char *obj, uint64_t *origin,
                      uint64_t *last)
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

static int objseq_put(struct hd_store *st, struct hd_txn *txn, const char *obj, uint64_t origin,
                      uint64_t last)
{
    uint8_t b[16];
    MDB_val k = {strlen(obj), (void *)obj}, v = {16, b};
    hd_be64(b, origin);
    hd_be64(b + 8, last);
    return hd_store_err(hd_mdb_put(txn, st->objseq, &k, &v, 0));
}

/* Computes what activity s must not overtake, and records s as the latest about its object. */
static int order_deps(struct hd_store *st, struct hd_txn *txn, const struct hd_activity_in *a,
                      uint64_t s, uint64_t after[2], int *is_origin)
{
    const char *t = a->type, *obj = a->object_id;
    uint64_t origin, last;
    int rc;

    after[0] = after[1] = 0;
    *is_origin = 0;
    if (!t || !obj || !*obj || strlen(obj) > 500)
        return 0;
    if (!strcmp(t, "Undo")) {
        rc = hd_queue_find_activity(st, txn, obj, &origin);
        if (rc == 0)
            after[0] = origin;
        return rc == HD_ERR_NOT_FOUND || rc == HD_ERR_INVALID ? 0 : rc;
    }
    if (strcmp(t, "Create") && strcmp(t, "Update") && strcmp(t, "Delete"))
        return 0;
    rc = objseq_get(st, txn, obj, &origin, &last);
    if (rc)
        return rc;
    if (strcmp(t, "Create") != 0) {
        after[0] = origin;
        after[1] = last != origin ? last : 0;
    } else if (!origin) {
        *is_origin = 1;
    }
    return objseq_put(st, txn, obj, origin ? origin : s, s);
}

/* Adds n to a host record's queued count (field 1) by rewriting that one number in the
 * record's msgpack bytes: a fan-out touches tens of thousands of host records, and decoding
 * and re-encoding each (hd_host_get/put) was 40% of the CPU of a post to a million
 * followers. A new host, or a record not shaped [1, queued, ...] as hd_host_put writes it,
 * takes hd_host_get/put. */
static int host_add_queued(struct hd_store *st, struct hd_txn *txn, const char *host, size_t hl,
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
    o = off + pack_uint(buf + off, q + n);
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

static int cmp_be32(const void *a, const void *b)
{
    uint32_t x = hd_rd32(a), y = hd_rd32(b);
    return x < y ? -1 : x > y;
}

/* Records the hosts a Create was addressed to, for hd_queue_host_got: 8 bytes per host, (32-bit
 * hash of the host name, deliveries there), sorted by hash; a hash shared by two hosts of the
 * Create sums their counts (a false "addressed" answer has odds of hosts / 2^32). */
static int objhosts_put(struct hd_store *st, struct hd_txn *txn, uint64_t seq, uint8_t *h, size_t n)
{
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    size_t i, m = 0;

    qsort(h, n, 8, cmp_be32);
    for (i = 0; i < n; i++) {
        if (m && hd_rd32(h + (m - 1) * 8) == hd_rd32(h + i * 8)) {
            hd_be32(h + (m - 1) * 8 + 4, hd_rd32(h + (m - 1) * 8 + 4) + hd_rd32(h + i * 8 + 4));
            continue;
        }
        memmove(h + m * 8, h + i * 8, 8);
        m++;
    }
    hd_be64(kb, seq);
    v.mv_size = m * 8;
    v.mv_data = h;
    return hd_store_err(hd_mdb_put(txn, st->objhosts, &k, &v, 0));
}

int hd_queue_enqueue_dests(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                           const struct hd_activity_in *a, struct hd_qdest *d, size_t n,
                           uint64_t now_ms, uint64_t *seq)
{
    uint8_t sb[8], key[HD_QKEY_MAX], last[HD_QKEY_MAX], vbuf[HD_URL_MAX + HD_HOST_MAX + 64];
    uint64_t s, after[2];
    struct hd_counters c0 = *c;
    size_t last_len = 0, nhosts = 0;
    int have_last = 0, append, is_origin = 0;
    uint8_t *hosts8 = NULL; /* objhosts record of a Create: (hash, count) per host */
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    struct hd_enc e;
    size_t i, j;
    int rc;

    if (n > UINT32_MAX)
        return HD_ERR_INVALID;
    rc = hd_queue_find_activity(st, txn, a->id, &s);
    if (rc == 0) {
        *seq = s;
        return HD_ERR_DUPLICATE;
    }
    if (rc != HD_ERR_NOT_FOUND)
        return rc;
    s = c->next_seq++;
    c->activities++;
    hd_be64(sb, s);
    hd_enc_init(&e);
    rc = order_deps(st, txn, a, s, after, &is_origin);
    if (rc)
        goto out;
    if (is_origin && n && !(hosts8 = malloc(n * 8))) {
        rc = -ENOMEM;
        goto out;
    }

    hd_enc_array(&e, 9);
    hd_enc_uint(&e, 1);
    hd_enc_cstr(&e, a->id);
    hd_enc_cstr(&e, a->type);
    hd_enc_cstr(&e, a->actor);
    hd_enc_cstr(&e, a->object_id);
    hd_enc_uint(&e, now_ms);
    hd_enc_bin(&e, a->body, a->body_len);
    hd_enc_uint(&e, after[0]);
    hd_enc_uint(&e, after[1]);
    rc = e.err;
    if (rc)
        goto out;
    k.mv_size = 8;
    k.mv_data = sb;
    v.mv_size = e.len;
    v.mv_data = e.buf;
    rc = hd_store_err(hd_mdb_put(txn, st->acts, &k, &v, 0));
    if (rc)
        goto out;
    k.mv_size = strlen(a->id);
    k.mv_data = (void *)a->id;
    v.mv_size = 8;
    v.mv_data = sb;
    rc = hd_store_err(hd_mdb_put(txn, st->actid, &k, &v, 0));
    if (rc)
        goto out;
    rc = put_u32(txn, st->actrem, s, (uint32_t)n);
    if (rc)
        goto out;

    /* Host order: the queue's key order (host\0seq\idx), so consecutive puts touch
     * neighbouring pages, and one host record update per host. */
    rc = sort_dests(d, n);
    if (rc)
        goto out;
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->queue, &cur));
    if (rc)
        goto out;
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size <= sizeof(last)) {
        memcpy(last, k.mv_data, k.mv_size);
        last_len = k.mv_size;
        have_last = 1;
    } else if (rc == 0 || rc != MDB_NOTFOUND) {
        rc = hd_store_err(rc ? rc : MDB_BAD_VALSIZE);
        goto out;
    }
    rc = 0;
    for (i = 0; i < n; i = j) {
        char host[HD_HOST_MAX];

        if (d[i].host_len == 0 || d[i].host_len >= HD_HOST_MAX) {
            rc = HD_ERR_INVALID;
            goto out;
        }
        memcpy(host, d[i].host, d[i].host_len);
        host[d[i].host_len] = 0;
        for (j = i; j < n && d[j].host_len == d[i].host_len &&
                    !memcmp(d[j].host, d[i].host, d[i].host_len);
             j++) {
            size_t kl = hd_queue_key(key, host, s, (uint32_t)j);
            if (d[j].inbox_len > HD_URL_MAX + HD_HOST_MAX + 16) {
                rc = HD_ERR_INVALID;
                goto out;
            }
            k.mv_size = kl;
            k.mv_data = key;
            v.mv_size = pack_fresh_qval(vbuf, d[j].inbox, d[j].inbox_len, now_ms, d[j].flags);
            v.mv_data = vbuf;
            /* Past the last key of the queue (a drained queue, the usual case for a fan-out)
             * append: pages fill up instead of splitting in half, which halves the pages a
             * large fan-out writes. */
            append = !have_last || memcmp(key, last, kl < last_len ? kl : last_len) > 0 ||
                     (memcmp(key, last, kl < last_len ? kl : last_len) == 0 && kl > last_len);
            rc = hd_store_err(mdb_cursor_put(cur, &k, &v, append ? MDB_APPEND : 0));
            if (rc)
                goto out;
            if (append) {
                memcpy(last, key, kl);
                last_len = kl;
                have_last = 1;
            }
        }
        rc = host_add_queued(st, txn, host, strlen(host), j - i);
        if (rc)
            goto out;
        if (hosts8) {
            hd_be32(hosts8 + nhosts * 8, (uint32_t)hd_hash64(host, strlen(host)));
            hd_be32(hosts8 + nhosts * 8 + 4, (uint32_t)(j - i));
            nhosts++;
        }
    }
    if (hosts8) {
        rc = objhosts_put(st, txn, s, hosts8, nhosts);
        if (rc)
            goto out;
    }
    *seq = s;
out:
    if (cur)
        mdb_cursor_close(cur);
    free(hosts8);
    hd_enc_fini(&e);
    if (rc)
        *c = c0;
    return rc;
}

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
            *until_ms = decode_qent(&k, &v, &q) == 0 ? q.not_before_ms : 0;
        }
    }
    mdb_cursor_close(cur);
    return rc ? rc : blocked;
}

/* ------------------------------------------------------------------ cancellation (issue 4) */

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
        stop = decode_qent(&k, &v, &q);
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
    rc = objseq_get(st, txn, object_id, &origin, &last);
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
    uint32_t hh = (uint32_t)hd_hash64(host, hl), count = 0, refused = 0;
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

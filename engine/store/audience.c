/* Audience records and reading them: follows, actors' ids and counts, distinct delivery
 * inboxes. See audience.h for the layout and why it is compact; follow_batch.c writes them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_impl.h"
#include "audience.h"
#include "audience_impl.h"
#include "codec.h"
#include "err.h"
#include "url.h"

/* Follower URL scheme folded into the first key byte. */
enum { FCODE_RAW = 0, FCODE_HTTPS = 1, FCODE_HTTP = 2 };

/* ------------------------------------------------------------------ records */

int hd_url_host_of(const char *url, size_t len, const char **host, size_t *host_len)
{
    const char *p = memchr(url, ':', len), *end = url + len, *a, *e;

    if (!p || end - p < 3 || p[1] != '/' || p[2] != '/')
        return HD_ERR_INVALID;
    a = p + 3;
    e = a;
    while (e < end && *e != '/' && *e != '?' && *e != '#')
        e++;
    if (a < e && *a == '[') {
        const char *rb = memchr(a, ']', (size_t)(e - a));
        if (!rb || rb == a + 1)
            return HD_ERR_INVALID;
        *host = a + 1;
        *host_len = (size_t)(rb - a - 1);
        return 0;
    }
    p = memchr(a, ':', (size_t)(e - a));
    if (p)
        e = p;
    if (e == a)
        return HD_ERR_INVALID;
    *host = a;
    *host_len = (size_t)(e - a);
    return 0;
}

/* Follower URL -> key body (code byte + rest). Returns its length. */
size_t hd_audience_fkey(const char *follower, uint8_t *out)
{
    size_t n = strlen(follower);
    if (!strncmp(follower, "https://", 8)) {
        out[0] = FCODE_HTTPS;
        memcpy(out + 1, follower + 8, n - 8);
        return n - 7;
    }
    if (!strncmp(follower, "http://", 7)) {
        out[0] = FCODE_HTTP;
        memcpy(out + 1, follower + 7, n - 7);
        return n - 6;
    }
    out[0] = FCODE_RAW;
    memcpy(out + 1, follower, n);
    return n + 1;
}

/* Key body -> follower URL in out (cap >= body_len + 8). Returns its length. */
size_t hd_audience_fkey_url(const uint8_t *body, size_t n, char *out)
{
    size_t pl = 0;
    if (n == 0) {
        out[0] = 0;
        return 0;
    }
    if (body[0] == FCODE_HTTPS) {
        memcpy(out, "https://", 8);
        pl = 8;
    } else if (body[0] == FCODE_HTTP) {
        memcpy(out, "http://", 7);
        pl = 7;
    }
    memcpy(out + pl, body + 1, n - 1);
    out[pl + n - 1] = 0;
    return pl + n - 1;
}

/* The rest of an inbox after the prefix it shares with the follower URL is nearly always
 * one of these (https://h/users/x -> https://h/users/x/inbox and https://h/inbox): stored as
 * its index, one byte instead of a string. Append only: stored records refer to them. */
static const char *const sfx_dict[] = {NULL, "/inbox", "inbox"};
#define SFX_N (sizeof(sfx_dict) / sizeof(sfx_dict[0]))

void hd_audience_sfx_enc(struct hd_enc *e, const char *s, size_t n)
{
    for (size_t i = 1; i < SFX_N; i++)
        if (strlen(sfx_dict[i]) == n && !memcmp(sfx_dict[i], s, n)) {
            hd_enc_uint(e, i);
            return;
        }
    hd_enc_str(e, s, n);
}

/* Field i of a follow record: a string, or a sfx_dict index. */
static int dec_sfx(const struct hd_dec *d, uint32_t i, struct hd_slice *out)
{
    if (i < d->n && d->f[i].kind == HD_DEC_UINT) {
        if (d->f[i].u == 0 || d->f[i].u >= SFX_N)
            return HD_ERR_INVALID;
        out->p = sfx_dict[d->f[i].u];
        out->n = strlen(out->p);
        return 0;
    }
    *out = hd_dec_str(d, i);
    return 0;
}

/* Decodes a follow value against its follower URL: inbox and shared inbox (shared NUL-less
 * empty => none) into caller buffers of HD_FOLLOW_URL_MAX + 1. */
int hd_audience_follow_decode(const char *follower, size_t flen, const void *v, size_t vlen,
                              char *inbox, char *shared, int *has_shared)
{
    struct hd_dec d;
    uint64_t ip, sp;
    struct hd_slice is, ss;
    int rc = hd_dec_record(&d, v, vlen, 1, 5);

    if (rc)
        return rc;
    ip = hd_dec_uint(&d, 1);
    sp = hd_dec_uint(&d, 3);
    if (dec_sfx(&d, 2, &is) || dec_sfx(&d, 4, &ss))
        return HD_ERR_INVALID;
    if (ip > flen || ip + is.n > HD_FOLLOW_URL_MAX || sp > flen || sp + ss.n > HD_FOLLOW_URL_MAX)
        return HD_ERR_INVALID;
    memcpy(inbox, follower, ip);
    if (is.n)
        memcpy(inbox + ip, is.p, is.n);
    inbox[ip + is.n] = 0;
    *has_shared = d.n > 4 && d.f[4].kind != HD_DEC_NIL;
    if (*has_shared) {
        memcpy(shared, follower, sp);
        if (ss.n)
            memcpy(shared + sp, ss.p, ss.n);
        shared[sp + ss.n] = 0;
    } else {
        shared[0] = 0;
    }
    return 0;
}

int hd_audience_actor_get(struct hd_store *st, struct hd_txn *txn, const char *actor,
                          struct hd_aud_actor *r)
{
    MDB_val k = {strlen(actor), (void *)actor}, v;
    int rc;

    if (k.mv_size == 0 || k.mv_size > HD_FOLLOW_URL_MAX)
        return HD_ERR_NOT_FOUND;
    rc = hd_store_err(hd_mdb_get(txn, st->fwactors, &k, &v));
    if (rc)
        return rc;
    if (v.mv_size != 20)
        return HD_ERR_INVALID;
    r->aid = hd_rd32(v.mv_data);
    r->follows = hd_rd64((const uint8_t *)v.mv_data + 4);
    r->inboxes = hd_rd64((const uint8_t *)v.mv_data + 12);
    return 0;
}

int hd_audience_actor_put(struct hd_store *st, struct hd_txn *txn, const char *actor,
                          const struct hd_aud_actor *r)
{
    uint8_t b[20];
    MDB_val k = {strlen(actor), (void *)actor}, v = {20, b};
    hd_be32(b, r->aid);
    hd_be64(b + 4, r->follows);
    hd_be64(b + 12, r->inboxes);
    return hd_store_err(hd_mdb_put(txn, st->fwactors, &k, &v, 0));
}

int hd_audience_next_aid(struct hd_store *st, struct hd_txn *txn, uint32_t *aid)
{
    uint8_t b[4];
    MDB_val k = {10, "fwact_next"}, v;
    uint32_t n = 1;
    int rc = hd_mdb_get(txn, st->meta, &k, &v);

    if (rc == 0 && v.mv_size == 4)
        n = hd_rd32(v.mv_data);
    else if (rc && rc != MDB_NOTFOUND)
        return hd_store_err(rc);
    if (n == UINT32_MAX)
        return HD_ERR_FULL;
    *aid = n;
    hd_be32(b, n + 1);
    v.mv_size = 4;
    v.mv_data = b;
    return hd_store_err(hd_mdb_put(txn, st->meta, &k, &v, 0));
}

/* ------------------------------------------------------------------ reading */

int hd_follow_count(struct hd_store *st, struct hd_txn *txn, const char *actor, uint64_t *follows,
                    uint64_t *inboxes)
{
    struct hd_aud_actor r;
    int rc = hd_audience_actor_get(st, txn, actor, &r);

    if (rc == HD_ERR_NOT_FOUND) {
        *follows = *inboxes = 0;
        return 0;
    }
    if (rc)
        return rc;
    *follows = r.follows;
    *inboxes = r.inboxes;
    return 0;
}

int hd_follow_list(struct hd_store *st, struct hd_txn *txn, const char *actor, hd_follow_cb cb,
                   void *user_data)
{
    char follower[HD_FOLLOW_URL_MAX + 16], inbox[HD_FOLLOW_URL_MAX + 1],
        shared[HD_FOLLOW_URL_MAX + 1];
    uint8_t start[4];
    struct hd_aud_actor r;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = hd_audience_actor_get(st, txn, actor, &r);

    if (rc == HD_ERR_NOT_FOUND)
        return 0;
    if (rc)
        return rc;
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->follows, &cur));
    if (rc)
        return rc;
    hd_be32(start, r.aid);
    k.mv_size = 4;
    k.mv_data = start;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0) {
        struct hd_follow_view fv;
        size_t flen;
        int has_shared;
        if (k.mv_size < 5 || k.mv_size > HD_FOLLOW_URL_MAX + 5 || memcmp(k.mv_data, start, 4))
            break;
        flen = hd_audience_fkey_url((const uint8_t *)k.mv_data + 4, k.mv_size - 4, follower);
        if (hd_audience_follow_decode(follower, flen, v.mv_data, v.mv_size, inbox, shared,
                                      &has_shared) == 0) {
            fv.follower = follower;
            fv.inbox = inbox;
            fv.shared_inbox = has_shared ? shared : NULL;
            if (cb(&fv, user_data))
                break;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : hd_store_err(rc);
}

int hd_audience_foreach(struct hd_store *st, struct hd_txn *txn, const char *actor, hd_aud_cb cb,
                        void *user_data)
{
    uint8_t start[4];
    struct hd_aud_actor r;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = hd_audience_actor_get(st, txn, actor, &r), stop = 0;

    if (rc == HD_ERR_NOT_FOUND)
        return 0;
    if (rc)
        return rc;
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->audience, &cur));
    if (rc)
        return rc;
    hd_be32(start, r.aid);
    k.mv_size = 4;
    k.mv_data = start;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0) {
        struct hd_aud_inbox in;
        if (k.mv_size < 5 || memcmp(k.mv_data, start, 4))
            break;
        in.url = (const char *)k.mv_data + 4;
        in.url_len = k.mv_size - 4;
        in.shared_refs = v.mv_size == 8 ? hd_rd32(v.mv_data) : 0;
        in.refs = in.shared_refs + (v.mv_size == 8 ? hd_rd32((const uint8_t *)v.mv_data + 4) : 0);
        if (hd_url_host_of(in.url, in.url_len, &in.host, &in.host_len) == 0 &&
            in.host_len < HD_HOST_MAX) {
            stop = cb(&in, user_data);
            if (stop)
                break;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (stop)
        return stop;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : hd_store_err(rc);
}

int hd_audience_has(struct hd_store *st, struct hd_txn *txn, const char *actor, const char *url)
{
    uint8_t key[HD_AUD_KEY_MAX + 1];
    size_t n = strlen(url);
    struct hd_aud_actor r;
    MDB_val k, v;
    int rc = hd_audience_actor_get(st, txn, actor, &r);

    if (rc == HD_ERR_NOT_FOUND || n == 0 || n > HD_FOLLOW_URL_MAX)
        return 0;
    if (rc)
        return rc;
    hd_be32(key, r.aid);
    memcpy(key + 4, url, n);
    k.mv_size = 4 + n;
    k.mv_data = key;
    rc = hd_mdb_get(txn, st->audience, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    return rc ? hd_store_err(rc) : 1;
}

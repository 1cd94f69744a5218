/* FEP-8fcf Collection-Synchronization digests (see collsync.h). */
#include <openssl/sha.h>
#include <string.h>

#include "audience.h"
#include "audience_impl.h"
#include "collsync.h"
#include "err.h"
#include "store_impl.h"

#define CS_VAL_LEN (4 + HD_COLLSYNC_DIGEST_LEN)

const char *hd_collsync_authority(const char *url, size_t url_len, size_t *len)
{
    const char *p = url_len >= 3 ? memmem(url, url_len, "://", 3) : NULL, *e;
    if (!p)
        return NULL;
    p += 3;
    e = p;
    while (e < url + url_len && *e != '/' && *e != '?' && *e != '#')
        e++;
    *len = (size_t)(e - p);
    return *len ? p : NULL;
}

static size_t cs_key(uint8_t *k, uint32_t aid, const char *auth, size_t alen)
{
    hd_be32(k, aid);
    memcpy(k + 4, auth, alen);
    return 4 + alen;
}

int hd_collsync_follow(struct hd_store *st, struct hd_txn *txn, uint32_t aid, const char *follower,
                       size_t len, int delta)
{
    uint8_t kb[HD_AUD_KEY_MAX + 1], vb[CS_VAL_LEN], h[SHA256_DIGEST_LENGTH];
    size_t alen;
    const char *auth = hd_collsync_authority(follower, len, &alen);
    MDB_val k, v;
    uint32_t count = 0;
    int rc;

    if (!auth || alen > HD_AUD_KEY_MAX - 4)
        return 0; /* no authority: not counted on any host */
    k.mv_size = cs_key(kb, aid, auth, alen);
    k.mv_data = kb;
    rc = hd_mdb_get(txn, st->collsync, &k, &v);
    if (rc == 0 && v.mv_size == CS_VAL_LEN) {
        memcpy(vb, v.mv_data, CS_VAL_LEN);
        count = hd_rd32(vb);
    } else if (rc == 0 || rc == MDB_NOTFOUND) {
        memset(vb, 0, sizeof(vb));
    } else {
        return hd_store_err(rc);
    }
    /* XOR is its own inverse: removing an id is adding it again. */
    SHA256((const unsigned char *)follower, len, h);
    for (size_t i = 0; i < HD_COLLSYNC_DIGEST_LEN; i++)
        vb[4 + i] ^= h[i];
    if (delta > 0)
        count++;
    else if (count)
        count--;
    if (count == 0)
        return rc == 0 ? hd_store_err(hd_mdb_del(txn, st->collsync, &k, NULL)) : 0;
    hd_be32(vb, count);
    v.mv_size = CS_VAL_LEN;
    v.mv_data = vb;
    return hd_store_err(hd_mdb_put(txn, st->collsync, &k, &v, 0));
}

int hd_collsync_get(struct hd_store *st, struct hd_txn *txn, const char *actor,
                    const char *authority, size_t authority_len, uint32_t *count,
                    uint8_t digest[HD_COLLSYNC_DIGEST_LEN])
{
    uint8_t kb[HD_AUD_KEY_MAX + 1];
    struct hd_aud_actor r;
    MDB_val k, v;
    int rc;

    *count = 0;
    memset(digest, 0, HD_COLLSYNC_DIGEST_LEN);
    if (authority_len > HD_AUD_KEY_MAX - 4)
        return 0;
    rc = hd_audience_actor_get(st, txn, actor, &r);
    if (rc == HD_ERR_NOT_FOUND)
        return 0;
    if (rc)
        return rc;
    k.mv_size = cs_key(kb, r.aid, authority, authority_len);
    k.mv_data = kb;
    rc = hd_mdb_get(txn, st->collsync, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return hd_store_err(rc);
    if (v.mv_size != CS_VAL_LEN)
        return HD_ERR_INVALID;
    *count = hd_rd32(v.mv_data);
    memcpy(digest, (const uint8_t *)v.mv_data + 4, HD_COLLSYNC_DIGEST_LEN);
    return 0;
}

int hd_collsync_ensure(struct hd_store *st, struct hd_txn *txn)
{
    MDB_val mk = {14, "collsync_built"}, mv, k, v;
    char url[HD_FOLLOW_URL_MAX + 16];
    MDB_cursor *cur;
    uint8_t one = 1;
    int rc = hd_mdb_get(txn, st->meta, &mk, &mv), op = MDB_FIRST;

    if (rc == 0)
        return 0;
    if (rc != MDB_NOTFOUND)
        return hd_store_err(rc);
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->follows, &cur));
    if (rc)
        return rc;
    while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        size_t n;
        op = MDB_NEXT;
        if (k.mv_size < 5 || k.mv_size - 4 > HD_FOLLOW_URL_MAX + 8)
            continue;
        n = hd_audience_fkey_url((const uint8_t *)k.mv_data + 4, k.mv_size - 4, url);
        rc = hd_collsync_follow(st, txn, hd_rd32(k.mv_data), url, n, 1);
        if (rc)
            break;
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return rc < 0 ? rc : hd_store_err(rc);
    mv.mv_size = 1;
    mv.mv_data = &one;
    return hd_store_err(hd_mdb_put(txn, st->meta, &mk, &mv, 0));
}

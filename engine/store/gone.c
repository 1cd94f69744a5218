/* Gone followers: personal inboxes that answered 404 or 410, and the followers who delivered
 * there leaving the audience (see gone.h). */
#include <string.h>

#include "store_impl.h"
#include "audience.h"
#include "audience_impl.h"
#include "clock.h"
#include "codec.h"
#include "err.h"
#include "gone.h"

/* ------------------------------------------------------------------ gone inboxes */

int hd_gone_add(struct hd_store *st, struct hd_txn *txn, const char *inbox, int status)
{
    MDB_val k = {strlen(inbox), (void *)inbox}, v;
    struct hd_enc e;
    int rc;

    /* LMDB's default key limit is 511 bytes; longer inboxes are refused at ingest anyway. */
    if (k.mv_size == 0 || k.mv_size > 511)
        return HD_ERR_INVALID;
    hd_enc_init(&e);
    hd_enc_array(&e, 3);
    hd_enc_uint(&e, 1);
    hd_enc_uint(&e, hd_wall_ms());
    hd_enc_uint(&e, (uint64_t)(status < 0 ? 0 : status));
    rc = e.err;
    if (!rc) {
        v.mv_size = e.len;
        v.mv_data = e.buf;
        rc = hd_store_err(hd_mdb_put(txn, st->gone, &k, &v, 0));
    }
    hd_enc_fini(&e);
    return rc;
}

int hd_gone_foreach(struct hd_store *st, struct hd_txn *txn, hd_gone_cb cb, void *user_data)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = hd_store_err(hd_mdb_cursor_open(txn, st->gone, &cur)), mrc, op = MDB_FIRST;

    if (rc)
        return rc;
    for (;;) {
        struct hd_dec d;
        struct hd_slice inbox;
        mrc = mdb_cursor_get(cur, &k, &v, op);
        if (mrc)
            break;
        op = MDB_NEXT;
        rc = hd_dec_record(&d, v.mv_data, v.mv_size, 1, 3);
        if (rc)
            break;
        inbox.p = k.mv_data;
        inbox.n = k.mv_size;
        if (cb(inbox, hd_dec_uint(&d, 1), (int)hd_dec_uint(&d, 2), user_data))
            break;
    }
    mdb_cursor_close(cur);
    if (rc)
        return rc;
    return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : hd_store_err(mrc);
}

/* ------------------------------------------------------------------ gone followers */

struct gone_ctx {
    const char *actor, *inbox;
    struct hd_follow_batch *b;
    uint64_t n;
    int err;
};

static void gone_match(struct gone_ctx *g, const char *follower, const char *inbox, int has_shared)
{
    struct hd_follow f = {g->actor, follower, NULL, NULL};
    const char *why;
    int rc;

    if (has_shared || strcmp(inbox, g->inbox) != 0)
        return;
    rc = hd_follow_batch_add(g->b, &f, 1, &why);
    if (rc == 0)
        g->n++;
    else if (!g->err)
        g->err = rc == HD_ERR_INVALID ? 0 : rc; /* an invalid stored URL: leave that follow */
}

static int gone_cb(const struct hd_follow_view *f, void *user_data)
{
    struct gone_ctx *g = user_data;
    gone_match(g, f->follower, f->inbox, f->shared_inbox != NULL);
    return g->err != 0;
}

int hd_follow_remove_gone(struct hd_store *st, struct hd_txn *txn, const char *actor,
                          const char *inbox, uint64_t *removed)
{
    char follower[HD_FOLLOW_URL_MAX + 16], fin[HD_FOLLOW_URL_MAX + 1],
        fsh[HD_FOLLOW_URL_MAX + 1];
    uint8_t key[HD_AUD_KEY_MAX + 1];
    struct gone_ctx g = {actor, inbox, NULL, 0, 0};
    struct hd_follow_stats fs = {0};
    size_t il = strlen(inbox), fl;
    struct hd_aud_actor r;
    MDB_val k, v;
    int rc;

    *removed = 0;
    rc = hd_audience_actor_get(st, txn, actor, &r);
    if (rc == HD_ERR_NOT_FOUND || rc == HD_ERR_INVALID)
        return 0;
    if (rc)
        return rc;
    rc = hd_follow_batch_new(&g.b);
    if (rc)
        return rc;
    /* The follower the inbox is usually built from: one lookup. */
    if (il > 6 && il - 6 <= HD_FOLLOW_URL_MAX && !strcmp(inbox + il - 6, "/inbox")) {
        memcpy(follower, inbox, il - 6);
        follower[il - 6] = 0;
        hd_be32(key, r.aid);
        k.mv_size = 4 + hd_audience_fkey(follower, key + 4);
        k.mv_data = key;
        rc = hd_mdb_get(txn, st->follows, &k, &v);
        if (rc == 0) {
            int has_shared;
            fl = strlen(follower);
            if (hd_audience_follow_decode(follower, fl, v.mv_data, v.mv_size, fin, fsh,
                                          &has_shared) == 0)
                gone_match(&g, follower, fin, has_shared);
        } else if (rc != MDB_NOTFOUND) {
            rc = hd_store_err(rc);
            goto out;
        }
        rc = 0;
    }
    /* Otherwise a scan, bounded: a big actor's stale follow costs one more 404 per post. */
    if (g.n == 0 && r.follows <= HD_GONE_SCAN_MAX) {
        rc = hd_follow_list(st, txn, actor, gone_cb, &g);
        if (!rc)
            rc = g.err;
        if (rc)
            goto out;
    }
    if (g.n) {
        rc = hd_follow_batch_apply(st, txn, g.b, &fs);
        if (rc == 0)
            *removed = fs.removed;
    }
out:
    hd_follow_batch_free(g.b);
    return rc;
}

#include <string.h>

#include "store_impl.h"
#include "err.h"
#include "keys.h"
#include "log.h"
#include "queue.h"

/* Actor records: [1, key_id, federation, ed25519_key_id]. key_id is the RSA key used for
 * draft-cavage (and RFC 9421 where Ed25519 is not accepted); the optional Ed25519 key is
 * used with RFC 9421 for hosts that accept it. Writing one field keeps the others. */
static int write_actor(struct hd_store *st, struct hd_txn *txn, const char *actor, const char *key_id,
                       size_t key_id_len, int federation, const char *ed, size_t ed_len)
{
    struct hd_enc e;
    MDB_val k = {strlen(actor), (void *)actor}, v;
    int rc;

    hd_enc_init(&e);
    hd_enc_array(&e, 4);
    hd_enc_uint(&e, 1);
    if (key_id)
        hd_enc_str(&e, key_id, key_id_len);
    else
        hd_enc_nil(&e);
    hd_enc_uint(&e, (uint64_t)federation);
    if (ed)
        hd_enc_str(&e, ed, ed_len);
    else
        hd_enc_nil(&e);
    rc = e.err;
    if (!rc) {
        v.mv_size = e.len;
        v.mv_data = e.buf;
        rc = hd_store_err(hd_mdb_put(txn, st->actors, &k, &v, 0));
    }
    if (!rc) /* loop threads read an activity's keys again */
        rc = hd_gen_bump(st, txn, HD_GEN_ACTORS);
    hd_enc_fini(&e);
    return rc;
}

static int put_actor(struct hd_store *st, struct hd_txn *txn, const char *actor, const char *key_id,
                     size_t key_id_len, int federation)
{
    struct hd_slice ed = {NULL, 0};
    char buf[1024];
    if (hd_actor_get_ed(st, txn, actor, strlen(actor), &ed) == 0 && ed.p && ed.n < sizeof(buf))
        memcpy(buf, ed.p, ed.n);
    else
        ed.p = NULL;
    return write_actor(st, txn, actor, key_id, key_id_len, federation, ed.p ? buf : NULL, ed.n);
}

int hd_actor_get_ed(struct hd_store *st, struct hd_txn *txn, const char *actor, size_t actor_len,
                    struct hd_slice *ed_key_id)
{
    MDB_val k = {actor_len, (void *)actor}, v;
    struct hd_dec d;
    int rc = hd_store_err(hd_mdb_get(txn, st->actors, &k, &v));
    if (rc)
        return rc;
    rc = hd_dec_record(&d, v.mv_data, v.mv_size, 1, 3);
    if (rc)
        return rc;
    *ed_key_id = hd_dec_str(&d, 3);
    return 0;
}

int hd_actor_get(struct hd_store *st, struct hd_txn *txn, const char *actor, size_t actor_len,
                 struct hd_slice *key_id, int *federation)
{
    MDB_val k = {actor_len, (void *)actor}, v;
    struct hd_dec d;
    int rc = hd_store_err(hd_mdb_get(txn, st->actors, &k, &v));
    if (rc)
        return rc;
    rc = hd_dec_record(&d, v.mv_data, v.mv_size, 1, 3);
    if (rc)
        return rc;
    *key_id = hd_dec_str(&d, 1);
    *federation = (int)hd_dec_uint(&d, 2);
    return 0;
}

int hd_actor_set_federation(struct hd_store *st, struct hd_txn *txn, const char *actor, int federation)
{
    struct hd_slice kid = {NULL, 0};
    int fed, rc = hd_actor_get(st, txn, actor, strlen(actor), &kid, &fed);
    char buf[2048];

    if (rc && rc != HD_ERR_NOT_FOUND)
        return rc;
    if (kid.n >= sizeof(buf))
        return HD_ERR_INVALID;
    if (kid.p)
        memcpy(buf, kid.p, kid.n);
    rc = put_actor(st, txn, actor, kid.p ? buf : NULL, kid.n, federation);
    if (!rc && federation == HD_FED_NONE) {
        /* "none": nothing of this actor is federated any more, including what is queued.
         * The drop is counted (counters.dropped), never silent. */
        struct hd_counters c;
        uint64_t dropped = 0;
        rc = hd_counters_get(st, txn, &c);
        if (!rc)
            rc = hd_queue_drop(st, txn, &c, NULL, actor, &dropped);
        if (!rc)
            rc = hd_counters_put(st, txn, &c);
        if (!rc)
            HD_LOG(HD_LOG_INFO, "actor",
                   "msg=\"federation none: queued deliveries dropped\" actor=\"%s\" dropped=%llu",
                   actor, (unsigned long long)dropped);
    }
    return rc;
}

int hd_keys_put_txn(struct hd_store *st, struct hd_txn *txn, const char *key_id, const char *actor,
                    int type, unsigned bits, const char *pem, size_t pem_len, const char **why)
{
    int fed = HD_FED_ALL, rc;
    struct hd_enc e;
    struct hd_slice old;
    MDB_val k = {strlen(key_id), (void *)key_id}, v;

    *why = NULL;
    if (!*key_id || !*actor || k.mv_size > 500 || strlen(actor) > 500) {
        *why = "key id and actor must be non-empty and at most 500 bytes";
        return HD_ERR_INVALID;
    }
    /* A key id names one actor's key: taking it over for another actor would leave the
     * first actor's record naming a key that is not its own. */
    rc = hd_mdb_get(txn, st->keys, &k, &v);
    if (rc == 0) {
        struct hd_dec d;
        struct hd_slice owner;
        rc = hd_dec_record(&d, v.mv_data, v.mv_size, 1, 5);
        if (rc)
            return rc;
        owner = hd_dec_str(&d, 1);
        if (owner.n != strlen(actor) || memcmp(owner.p, actor, owner.n)) {
            *why = "key id already belongs to another actor";
            return HD_ERR_INVALID;
        }
    } else if (rc != MDB_NOTFOUND) {
        return hd_store_err(rc);
    }
    hd_enc_init(&e);
    hd_enc_array(&e, 5);
    hd_enc_uint(&e, 1);
    hd_enc_cstr(&e, actor);
    hd_enc_uint(&e, (uint64_t)type);
    hd_enc_uint(&e, bits);
    hd_enc_bin(&e, pem, pem_len);
    rc = e.err;
    if (rc)
        goto out;
    v.mv_size = e.len;
    v.mv_data = e.buf;
    rc = hd_store_err(hd_mdb_put(txn, st->keys, &k, &v, 0));
    if (rc)
        goto out;
    /* Keep the actor's federation choice (and its other key) when re-keying. An Ed25519 key
     * becomes the actor's RFC 9421 key; it is the primary key only when there is no RSA key. */
    if (hd_actor_get(st, txn, actor, strlen(actor), &old, &fed) != 0) {
        fed = HD_FED_ALL;
        old.p = NULL;
    }
    if (type == HD_KEY_ED25519) {
        char prim[1024];
        size_t pl = old.p && old.n < sizeof(prim) ? old.n : 0;
        if (pl)
            memcpy(prim, old.p, pl);
        rc = write_actor(st, txn, actor, pl ? prim : key_id, pl ? pl : strlen(key_id), fed, key_id,
                         strlen(key_id));
    } else {
        rc = put_actor(st, txn, actor, key_id, strlen(key_id), fed);
    }
out:
    /* Wipe our encoded copy of the key before freeing it. */
    if (e.buf)
        memset(e.buf, 0, e.len);
    hd_enc_fini(&e);
    return rc;
}

int hd_keys_put(struct hd_store *st, const char *key_id, const char *actor, int type,
                unsigned bits, const char *pem, size_t pem_len, const char **why)
{
    struct hd_txn *txn;
    int rc = hd_store_begin(st, 1, &txn);

    *why = NULL;
    if (rc)
        return rc;
    rc = hd_keys_put_txn(st, txn, key_id, actor, type, bits, pem, pem_len, why);
    if (rc) {
        hd_store_abort(txn);
        return rc;
    }
    return hd_store_commit(txn);
}

/* Deliveries still referring to actor's activities (queued, retrying, dead letters): the sum
 * of the actrem counts of its activities. One pass over actrem, which holds only activities
 * with something left. */
static int actor_pending(struct hd_store *st, struct hd_txn *txn, const char *actor,
                         uint64_t *pending)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t al = strlen(actor);
    int rc = hd_store_err(hd_mdb_cursor_open(txn, st->actrem, &cur)), op = MDB_FIRST;

    *pending = 0;
    if (rc)
        return rc;
    while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        struct hd_act_view av;
        op = MDB_NEXT;
        if (k.mv_size != 8 || v.mv_size != 4)
            continue;
        if (hd_queue_get_activity(st, txn, hd_rd64(k.mv_data), &av) != 0 || av.actor.n != al ||
            memcmp(av.actor.p, actor, al))
            continue;
        *pending += hd_rd32(v.mv_data);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : hd_store_err(rc);
}

int hd_keys_remove(struct hd_store *st, const char *key_id, uint64_t *pending, const char **why)
{
    MDB_val k = {strlen(key_id), (void *)key_id}, v;
    struct hd_slice prim = {NULL, 0}, ed = {NULL, 0};
    char actor[512], pbuf[1024], ebuf[1024];
    struct hd_txn *txn;
    struct hd_dec d;
    struct hd_slice owner;
    int rc, fed = HD_FED_ALL, is_prim, is_ed;

    *why = NULL;
    *pending = 0;
    rc = hd_store_begin(st, 1, &txn);
    if (rc)
        return rc;
    rc = hd_store_err(hd_mdb_get(txn, st->keys, &k, &v));
    if (rc)
        goto out;
    rc = hd_dec_record(&d, v.mv_data, v.mv_size, 1, 5);
    if (rc)
        goto out;
    owner = hd_dec_str(&d, 1);
    if (!owner.p || owner.n >= sizeof(actor)) {
        rc = HD_ERR_INVALID;
        goto out;
    }
    memcpy(actor, owner.p, owner.n);
    actor[owner.n] = 0;
    if (hd_actor_get(st, txn, actor, owner.n, &prim, &fed) == 0 &&
        hd_actor_get_ed(st, txn, actor, owner.n, &ed) == 0) {
        if (prim.n >= sizeof(pbuf) || ed.n >= sizeof(ebuf)) {
            rc = HD_ERR_INVALID;
            goto out;
        }
        if (prim.p)
            memcpy(pbuf, prim.p, prim.n);
        if (ed.p)
            memcpy(ebuf, ed.p, ed.n);
    } else {
        prim.p = ed.p = NULL;
        prim.n = ed.n = 0;
    }
    is_prim = prim.p && prim.n == k.mv_size && !memcmp(pbuf, key_id, prim.n);
    is_ed = ed.p && ed.n == k.mv_size && !memcmp(ebuf, key_id, ed.n);
    if (is_prim && (!ed.p || is_ed)) {
        /* The actor's only key: refused while deliveries still need it. Deliveries read the
         * actor's key when they are signed, so a key rotated away strands nothing. */
        rc = actor_pending(st, txn, actor, pending);
        if (rc)
            goto out;
        if (*pending) {
            *why = "the actor's only signing key is still needed by queued deliveries";
            rc = HD_ERR_BUSY;
            goto out;
        }
        rc = write_actor(st, txn, actor, NULL, 0, fed, NULL, 0);
    } else if (is_prim) {
        /* The actor's Ed25519 key serves in its place (as for an actor added with only one). */
        rc = write_actor(st, txn, actor, ebuf, ed.n, fed, ebuf, ed.n);
    } else if (is_ed) {
        rc = write_actor(st, txn, actor, pbuf, prim.n, fed, NULL, 0);
    }
    if (rc)
        goto out;
    rc = hd_store_err(hd_mdb_del(txn, st->keys, &k, NULL));
    if (rc)
        goto out;
    return hd_store_commit(txn);
out:
    hd_store_abort(txn);
    return rc;
}

int hd_keys_list(struct hd_store *st, hd_key_list_cb cb, void *user_data)
{
    struct hd_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = hd_store_begin(st, 0, &txn), op = MDB_FIRST;

    if (rc)
        return rc;
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->keys, &cur));
    if (rc)
        goto out;
    while (mdb_cursor_get(cur, &k, &v, op) == 0) {
        struct hd_dec d;
        struct hd_key_info ki;
        op = MDB_NEXT;
        rc = hd_dec_record(&d, v.mv_data, v.mv_size, 1, 5);
        if (rc)
            break;
        ki.key_id.p = k.mv_data;
        ki.key_id.n = k.mv_size;
        ki.actor = hd_dec_str(&d, 1);
        ki.type = (int)hd_dec_uint(&d, 2);
        ki.bits = (unsigned)hd_dec_uint(&d, 3);
        if (cb(&ki, user_data))
            break;
    }
    mdb_cursor_close(cur);
out:
    hd_store_abort(txn);
    return rc;
}

int hd_keys_get_pem(struct hd_store *st, struct hd_txn *txn, const char *key_id, struct hd_slice *pem)
{
    MDB_val k = {strlen(key_id), (void *)key_id}, v;
    struct hd_dec d;
    int rc = hd_store_err(hd_mdb_get(txn, st->keys, &k, &v));
    if (rc)
        return rc;
    rc = hd_dec_record(&d, v.mv_data, v.mv_size, 1, 5);
    if (rc)
        return rc;
    *pem = hd_dec_str(&d, 4);
    return pem->p ? 0 : HD_ERR_INVALID;
}

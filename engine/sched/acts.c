/* The activity cache of a loop thread (body, digests, key ids, ordering links), and the
 * signing keys it names, loaded into the thread's signer and loaded again when the signer
 * evicted one that is still needed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "keys.h"
#include "sched_impl.h"
#include "sign.h"
#include "strset.h"

static uint64_t act_hash_seq(uint64_t seq)
{
    return seq * 0x9E3779B97F4A7C15ull;
}

static uint64_t act_hash(const void *p)
{
    return act_hash_seq(((const struct sact *)p)->seq);
}

static void act_free(struct sact *a)
{
    if (!a)
        return;
    free(a->id);
    free(a->key_id);
    free(a->ed_key_id);
    free(a->actor);
    free(a->csync);
    free(a->body);
    free(a->object_id);
    free(a);
}

static void acts_trim(struct sthread *th)
{
    /* Drop unreferenced activities once the cache is over its bound. */
    for (size_t i = 0; i < th->acts_cap && th->nacts > ACT_CACHE_MAX / 2; i++) {
        struct sact **pp = &th->acts[i];
        while (*pp) {
            struct sact *a = *pp;
            if (a->refs == 0) {
                *pp = a->hnext;
                act_free(a);
                th->nacts--;
            } else {
                pp = &a->hnext;
            }
        }
    }
}

static char *slice_dup(struct hd_slice s)
{
    char *p = malloc(s.n + 1);
    if (p) {
        if (s.n)
            memcpy(p, s.p, s.n);
        p[s.n] = 0;
    }
    return p;
}

/* Makes sure the signer holds key_id. The signer caches hd_run_opts.key_cache keys and evicts
 * the least recently used; an activity cached here may outlive its key there (a retry comes
 * back to it much later), so a key that is missing is loaded again from the store. Returns
 * 0, HD_ERR_NO_KEY when the key is gone or unusable (final), or a transient error (store,
 * memory). */
int hd_sched_key_load(struct sthread *th, const char *key_id)
{
    int rc;
    struct hd_slice pem;
    struct hd_txn *txn;

    if (hd_signer_has_key(th->signer, key_id))
        return 0;
    txn = hd_sched_rtxn(th);
    if (!txn)
        return HD_ERR_STORE;
    rc = hd_keys_get_pem(th->st, txn, key_id, &pem);
    if (rc == 0)
        rc = hd_signer_add_key(th->signer, key_id, pem.p, pem.n, 2048);
    /* Called right before sending, maybe from the loop's callbacks: the loop thread ends
     * the snapshot after them (run.c), so none is kept across the loop's wait. */
    return rc && hd_policy_local_final(rc) ? HD_ERR_NO_KEY : rc;
}

/* The actor's Ed25519 key, for RFC 9421. Optional: without one, or with one that cannot be
 * used, RSA serves. Returns 0 or a transient error. */
static int ed_key_load(struct sthread *th, struct hd_txn *txn, struct hd_slice actor,
                       struct sact *a)
{
    struct hd_slice ed = {NULL, 0};
    int rc = hd_actor_get_ed(th->st, txn, actor.p, actor.n, &ed);

    if (rc)
        return hd_policy_local_final(rc) ? 0 : rc;
    if (!ed.p || !ed.n)
        return 0;
    a->ed_key_id = slice_dup(ed);
    if (!a->ed_key_id)
        return -ENOMEM;
    rc = hd_sched_key_load(th, a->ed_key_id);
    if (rc == HD_ERR_NO_KEY) {
        free(a->ed_key_id);
        a->ed_key_id = NULL;
        rc = 0;
    }
    return rc;
}

/* Returns the cached activity seq (loading it and its actor's key on first use), or NULL
 * with *err set: final (hd_policy_local_final: HD_ERR_NOT_FOUND when the activity is gone,
 * HD_ERR_NO_KEY when its actor has no usable key, a damaged record), or transient (a store
 * error, -ENOMEM): the caller then releases the delivery and looks again later. */
struct sact *hd_sched_act_get(struct sthread *th, uint64_t seq, int *err)
{
    struct sact *a = NULL;
    struct hd_act_view v;
    struct hd_slice kid;
    struct hd_txn *txn;
    int fed, rc;
    size_t b;

    if (th->acts_cap) {
        a = th->acts[act_hash_seq(seq) & (th->acts_cap - 1)];
        while (a && a->seq != seq)
            a = a->hnext;
        if (a)
            return a;
    }
    txn = hd_sched_rtxn(th);
    if (!txn) {
        *err = HD_ERR_STORE;
        return NULL;
    }
    rc = hd_queue_get_activity(th->st, txn, seq, &v);
    if (rc) {
        *err = rc;
        return NULL;
    }
    rc = hd_actor_get(th->st, txn, v.actor.p, v.actor.n, &kid, &fed);
    if (rc == 0 && !kid.p)
        rc = HD_ERR_NO_KEY;
    if (rc) {
        *err = hd_policy_local_final(rc) ? HD_ERR_NO_KEY : rc;
        return NULL;
    }
    a = calloc(1, sizeof(*a));
    if (!a) {
        *err = -ENOMEM;
        return NULL;
    }
    a->seq = seq;
    a->id = slice_dup(v.id);
    a->key_id = slice_dup(kid);
    a->actor = slice_dup(v.actor);
    a->keys_gen = th->gen_stamp[HD_GEN_ACTORS];
    a->body = slice_dup(v.body);
    a->body_len = v.body.n;
    a->after[0] = v.after[0];
    a->after[1] = v.after[1];
    if (v.type.n == 6 && !memcmp(v.type.p, "Create", 6))
        a->kind = ACT_CREATE;
    else if (v.type.n == 6 && !memcmp(v.type.p, "Update", 6))
        a->kind = ACT_UPDATE;
    else if (v.type.n == 6 && !memcmp(v.type.p, "Delete", 6))
        a->kind = ACT_DELETE;
    if (v.object_id.p && v.object_id.n && !(a->object_id = slice_dup(v.object_id))) {
        act_free(a);
        *err = -ENOMEM;
        return NULL;
    }
    if (!a->id || !a->key_id || !a->actor || !a->body) {
        act_free(a);
        *err = -ENOMEM;
        return NULL;
    }
    if (hd_sched_csync_act(th, a) != 0) {
        act_free(a);
        *err = -ENOMEM;
        return NULL;
    }
    rc = hd_digests_sha256((const uint8_t *)a->body, a->body_len, a->digest, sizeof(a->digest),
                           a->cdigest, sizeof(a->cdigest));
    if (rc == 0)
        rc = hd_sched_key_load(th, a->key_id);
    if (rc == 0)
        rc = ed_key_load(th, txn, v.actor, a);
    if (rc) {
        act_free(a);
        *err = rc;
        return NULL;
    }
    if (th->nacts >= ACT_CACHE_MAX)
        acts_trim(th);
    if ((th->nacts + 1) * 2 > th->acts_cap &&
        hd_sched_grow_table((void ***)&th->acts, &th->acts_cap, offsetof(struct sact, hnext),
                            act_hash) != 0) {
        act_free(a);
        *err = -ENOMEM;
        return NULL;
    }
    b = act_hash_seq(seq) & (th->acts_cap - 1);
    a->hnext = th->acts[b];
    th->acts[b] = a;
    th->nacts++;
    return a;
}

static int slice_is(struct hd_slice s, const char *c)
{
    return c ? s.p && s.n == strlen(c) && !memcmp(s.p, c, s.n) : !s.p || !s.n;
}

/* Replaces *dst by a copy of s (NULL for an empty one). */
static int set_id(char **dst, struct hd_slice s)
{
    char *p = NULL;
    if (s.p && s.n && !(p = slice_dup(s)))
        return -ENOMEM;
    free(*dst);
    *dst = p;
    return 0;
}

int hd_sched_act_keys(struct sthread *th, struct sact *a)
{
    int fed, rc;
    struct hd_slice kid = {NULL, 0}, ed = {NULL, 0};
    struct hd_txn *txn = hd_sched_rtxn(th);

    if (!txn)
        return HD_ERR_STORE;
    if (a->keys_gen && a->keys_gen == th->gen_stamp[HD_GEN_ACTORS]) /* no actor changed since */
        return a->key_id ? 0 : HD_ERR_NO_KEY;
    rc = hd_actor_get(th->st, txn, a->actor, strlen(a->actor), &kid, &fed);
    if (rc == 0)
        rc = hd_actor_get_ed(th->st, txn, a->actor, strlen(a->actor), &ed);
    if (rc == 0 && !kid.p)
        rc = HD_ERR_NO_KEY;
    if (rc == 0 && !slice_is(kid, a->key_id))
        rc = set_id(&a->key_id, kid);
    if (rc == 0 && !slice_is(ed, a->ed_key_id))
        rc = set_id(&a->ed_key_id, ed);
    if (rc == 0)
        a->keys_gen = th->gen_stamp[HD_GEN_ACTORS];
    /* One read of the actor per activity and change of any actor, not per request; the loop
     * thread ends the snapshot before its next wait (run.c). */
    return rc && hd_policy_local_final(rc) ? HD_ERR_NO_KEY : rc;
}

void hd_sched_acts_free(struct sthread *th)
{
    for (size_t i = 0; i < th->acts_cap; i++) {
        struct sact *a = th->acts[i];
        while (a) {
            struct sact *n = a->hnext;
            act_free(a);
            a = n;
        }
    }
    free(th->acts);
    th->acts = NULL;
    th->acts_cap = th->nacts = 0;
}

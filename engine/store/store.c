/* LMDB environment, DBIs, run lock and counters. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "err.h"
#include "log.h"
#include "store_impl.h"

int hd_store_err(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_NOTFOUND:
        return HD_ERR_NOT_FOUND;
    case ENOMEM:
        return -ENOMEM;
    default:
        HD_LOG(HD_LOG_ERROR, "store", "msg=\"lmdb error\" err=\"%s\"", mdb_strerror(rc));
        return HD_ERR_STORE;
    }
}

uint32_t hd_store_hash32(const void *p, size_t n)
{
    const uint8_t *b = p;
    /* Not FNV's offset basis (14695981039346656037): this seed is one digit short of it, as it
     * was first written. Stores hold values computed with it, so it stays. */
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull; /* the FNV 64-bit prime */
    }
    return (uint32_t)(h ^ (h >> 29));
}

/* Schema 1 -> 2: an actstat record for each activity still referenced by a queued delivery
 * or a dead letter, counted from them. Queue keys end in seq(8) idx(4); an entry's third
 * field is its attempts. Returns 0, -ENOMEM or a store error. */
static int migrate_count(struct hd_store *st, struct hd_txn *txn, MDB_dbi dbi, int dead)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(hd_mdb_txn(txn), dbi, &cur), op = MDB_FIRST;

    if (rc)
        return hd_store_err(rc);
    while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        struct hd_actstat a;
        struct hd_dec d;
        uint64_t seq;
        op = MDB_NEXT;
        if (k.mv_size < 14)
            continue;
        seq = hd_rd64((const uint8_t *)k.mv_data + k.mv_size - 12);
        rc = hd_actstat_get(st, txn, seq, &a);
        if (rc == HD_ERR_NOT_FOUND) {
            uint8_t kb[8];
            MDB_val ak = {8, kb}, av;
            hd_be64(kb, seq);
            a.flags = HD_ACTSTAT_MIGRATED;
            a.priority = HD_PRIO_NORMAL;
            if (mdb_get(hd_mdb_txn(txn), st->acts, &ak, &av) == 0 &&
                hd_dec_record(&d, av.mv_data, av.mv_size, 1, 6) == 0)
                a.created_ms = hd_dec_uint(&d, 5);
            rc = 0;
        }
        if (rc)
            break;
        if (dead) {
            a.failed++;
            a.attempted++;
        } else {
            a.queued++;
            if (hd_dec_record(&d, v.mv_data, v.mv_size, 1, 3) == 0 && hd_dec_uint(&d, 2) > 0) {
                a.retrying++;
                a.attempted++;
            }
        }
        rc = hd_actstat_put(st, txn, seq, &a);
        if (rc)
            break;
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        return 0;
    return rc > 0 ? hd_store_err(rc) : rc;
}

static int migrate_1_2(struct hd_store *st, struct hd_txn *txn)
{
    int rc = migrate_count(st, txn, st->queue, 0);
    return rc ? rc : migrate_count(st, txn, st->dead, 1);
}

static int open_dbs(struct hd_store *st)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc)
        return hd_store_err(rc);
    struct {
        const char *name;
        MDB_dbi *dbi;
    } dbs[] = {{"meta", &st->meta},     {"keys", &st->keys},   {"actors", &st->actors},
               {"acts", &st->acts},     {"actrem", &st->actrem}, {"actid", &st->actid},
               {"queue", &st->queue},   {"hosts", &st->hosts}, {"dead", &st->dead},
               {"fwactors", &st->fwactors}, {"follows", &st->follows},
               {"audience", &st->audience}, {"objseq", &st->objseq},
               {"rules", &st->rules}, {"hostctl", &st->hostctl}, {"live", &st->live},
               {"gone", &st->gone}, {"objhosts", &st->objhosts},
               {"collsync", &st->collsync},

               {"actstat", &st->actstat}, {"actfail", &st->actfail}, {"holds", &st->holds},
               {"hostinbox", &st->hostinbox}, {"qprio", &st->qprio},
               {"tlssess", &st->tlssess}};
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);
        if (rc) {
            mdb_txn_abort(txn);
            return hd_store_err(rc);
        }
    }
    /* Schema marker: written on first use, checked on every open; an older store is migrated
     * in this same transaction, so a failed migration leaves it as it was. */
    MDB_val k = {6, "schema"}, v;
    uint8_t b[4];
    rc = mdb_get(txn, st->meta, &k, &v);
    if (rc == 0) {
        uint32_t found = v.mv_size == 4 ? hd_rd32(v.mv_data) : 0;
        if (found == 1) {
            rc = migrate_1_2(st, hd_txn_of(txn));
            if (rc) {
                mdb_txn_abort(txn);
                return rc;
            }
            HD_LOG(HD_LOG_INFO, "store", "msg=\"store migrated\" from=1 to=%d",
                   HD_STORE_SCHEMA);
        } else if (found != HD_STORE_SCHEMA) {
            mdb_txn_abort(txn);
            return HD_ERR_SCHEMA;
        }
    }
    if (rc == MDB_NOTFOUND || rc == 0) {
        hd_be32(b, HD_STORE_SCHEMA);
        v.mv_size = 4;
        v.mv_data = b;
        rc = mdb_put(txn, st->meta, &k, &v, 0);
    }
    if (rc) {
        mdb_txn_abort(txn);
        return hd_store_err(rc);
    }
    atomic_store_explicit(&st->wtxn, txn, memory_order_relaxed);
    return hd_store_commit(hd_txn_of(txn));
}

int hd_store_open(struct hd_store **out, const char *dir, size_t map_size_mb)
{
    struct hd_store *st;
    struct stat sb;
    int rc, dead = 0;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    if (stat(dir, &sb) != 0)
        return -errno;
    if (!S_ISDIR(sb.st_mode))
        return -ENOTDIR;
    if (sb.st_mode & (S_IWGRP | S_IWOTH)) {
        HD_LOG(HD_LOG_ERROR, "store",
               "msg=\"refusing a store directory writable by group or others\" dir=\"%s\"", dir);
        return -EPERM;
    }
    st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->lock_fd = -1;
    st->dir = strdup(dir);
    if (!st->dir) {
        free(st);
        return -ENOMEM;
    }
    rc = mdb_env_create(&st->env);
    if (rc)
        goto fail;
    mdb_env_set_maxdbs(st->env, 32); /* named DBIs in open_dbs, with room to grow */
    mdb_env_set_maxreaders(st->env, 256);
    rc = mdb_env_set_mapsize(st->env, (map_size_mb ? map_size_mb : 65536) * 1024 * 1024);
    if (rc)
        goto fail;
    /* MDB_NOTLS: read transactions belong to the txn object, not the thread, so a loop
     * thread can keep one across calls. Files are created 0600 (key material lives here). */
    mdb_env_set_userctx(st->env, st);
    /* MDB_NOMETASYNC: a commit writes the meta page without LMDB's synchronous write;
     * hd_store_commit then flushes it itself (the same two flushes as LMDB's own way), and
     * hd_store_commit_relaxed leaves it to the next commit's flush. */
    rc = mdb_env_open(st->env, dir, MDB_NOTLS | MDB_NOMETASYNC, 0600);
    if (rc)
        goto fail;
    mdb_reader_check(st->env, &dead);
    if (dead)
        HD_LOG(HD_LOG_INFO, "store", "msg=\"cleared stale readers\" count=%d", dead);
    rc = open_dbs(st);
    if (rc) {
        hd_store_close(st);
        return rc;
    }
    *out = st;
    return 0;
fail:
    HD_LOG(HD_LOG_ERROR, "store", "msg=\"cannot open store\" dir=\"%s\" err=\"%s\"", dir,
           mdb_strerror(rc));
    if (st->env)
        mdb_env_close(st->env);
    free(st->dir);
    free(st);
    return rc > 0 ? -rc : HD_ERR_STORE;
}

int hd_store_open_existing(struct hd_store **out, const char *dir, size_t map_size_mb)
{
    char path[4096];
    struct stat sb;

    if (stat(dir, &sb) != 0)
        return -errno;
    if (!S_ISDIR(sb.st_mode))
        return -ENOTDIR;
    if ((size_t)snprintf(path, sizeof(path), "%s/data.mdb", dir) >= sizeof(path))
        return -ENAMETOOLONG;
    if (stat(path, &sb) != 0)
        return -errno;
    if (!S_ISREG(sb.st_mode))
        return -ENOENT;
    return hd_store_open(out, dir, map_size_mb);
}

void hd_store_close(struct hd_store *st)
{
    if (!st)
        return;
    if (st->env)
        mdb_env_close(st->env);
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    free(st->dir);
    free(st);
}

int hd_store_lock_run(struct hd_store *st)
{
    char path[4096];
    int fd;

    snprintf(path, sizeof(path), "%s/run.lock", st->dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return HD_ERR_BUSY;
    }
    st->lock_fd = fd;
    return 0;
}

void hd_store_unlock_run(struct hd_store *st)
{
    if (st->lock_fd >= 0)
        close(st->lock_fd); /* closing the descriptor releases the flock */
    st->lock_fd = -1;
}

int hd_store_begin(struct hd_store *st, int write, struct hd_txn **txn)
{
    MDB_txn *t = NULL;
    int rc = mdb_txn_begin(st->env, NULL, write ? 0 : MDB_RDONLY, &t);

    if (rc == 0 && write)
        atomic_store_explicit(&st->wtxn, t, memory_order_relaxed);
    *txn = rc ? NULL : hd_txn_of(t);
    return hd_store_err(rc);
}

int hd_store_begin_nested(struct hd_txn *parent, struct hd_txn **txn)
{
    MDB_txn *t = NULL;
    int rc = mdb_txn_begin(mdb_txn_env(hd_mdb_txn(parent)), hd_mdb_txn(parent), 0, &t);

    *txn = rc ? NULL : hd_txn_of(t);
    return hd_store_err(rc);
}

/* Whether t is the top-level write transaction; it no longer is once this returns (the
 * caller ends it, still holding LMDB's writer lock). */
static int end_top_write(MDB_txn *t)
{
    struct hd_store *st = mdb_env_get_userctx(mdb_txn_env(t));

    if (!st || atomic_load_explicit(&st->wtxn, memory_order_relaxed) != t)
        return 0;
    atomic_store_explicit(&st->wtxn, NULL, memory_order_relaxed);
    return 1;
}

static int commit(struct hd_txn *txn, int durable)
{
    MDB_txn *t = hd_mdb_txn(txn);
    MDB_env *env = mdb_txn_env(t);
    int top = end_top_write(t);
    size_t id = mdb_txn_id(t);
    int rc = mdb_txn_commit(t);

    /* The environment is opened MDB_NOMETASYNC: the commit flushed the pages and wrote the
     * meta page unflushed; this flush makes the meta page, so the commit, durable. A write
     * transaction that changed nothing wrote nothing (its id never became the last). */
    if (rc == 0 && top && durable) {
        MDB_envinfo info;
        if (mdb_env_info(env, &info) != 0 || info.me_last_txnid >= id)
            rc = mdb_env_sync(env, 1);
    }
    return hd_store_err(rc);
}

int hd_store_commit(struct hd_txn *txn)
{
    return commit(txn, 1);
}

int hd_store_commit_relaxed(struct hd_txn *txn)
{
    return commit(txn, 0);
}

void hd_store_abort(struct hd_txn *txn)
{
    if (txn) {
        MDB_txn *t = hd_mdb_txn(txn);
        end_top_write(t);
        mdb_txn_abort(t);
    }
}

void hd_store_reset(struct hd_txn *txn)
{
    mdb_txn_reset(hd_mdb_txn(txn));
}

int hd_store_renew(struct hd_txn *txn)
{
    return hd_store_err(mdb_txn_renew(hd_mdb_txn(txn)));
}

uint64_t hd_store_snapshot_id(struct hd_txn *txn)
{
    return (uint64_t)mdb_txn_id(hd_mdb_txn(txn));
}

const char *hd_store_dir(const struct hd_store *st)
{
    return st->dir;
}

int hd_store_run_mark(struct hd_store *st, int running, int *was_running)
{
    MDB_val k = {7, "running"}, v;
    uint8_t b = (uint8_t)(running != 0);
    struct hd_txn *txn;
    int rc = hd_store_begin(st, 1, &txn);

    if (rc)
        return rc;
    if (was_running) {
        rc = hd_mdb_get(txn, st->meta, &k, &v);
        *was_running = rc == 0 && v.mv_size == 1 && *(const uint8_t *)v.mv_data == 1;
    }
    v.mv_size = 1;
    v.mv_data = &b;
    rc = hd_store_err(hd_mdb_put(txn, st->meta, &k, &v, 0));
    if (rc) {
        hd_store_abort(txn);
        return rc;
    }
    return hd_store_commit(txn);
}

int hd_gens_get(struct hd_store *st, struct hd_txn *txn, uint64_t g[HD_GEN_N])
{
    MDB_val k = {4, "gens"}, v;
    int rc = hd_mdb_get(txn, st->meta, &k, &v);

    for (int i = 0; i < HD_GEN_N; i++)
        g[i] = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return hd_store_err(rc);
    /* Generations added later are absent from older records: 0. */
    for (size_t i = 0; i < HD_GEN_N && (i + 1) * 8 <= v.mv_size; i++)
        g[i] = hd_rd64((const uint8_t *)v.mv_data + i * 8);
    return 0;
}

int hd_gen_bump(struct hd_store *st, struct hd_txn *txn, enum hd_gen which)
{
    uint64_t g[HD_GEN_N];
    uint8_t b[HD_GEN_N * 8];
    MDB_val k = {4, "gens"}, v = {sizeof(b), b};
    int rc = hd_gens_get(st, txn, g);

    if (rc)
        return rc;
    g[which]++;
    for (int i = 0; i < HD_GEN_N; i++)
        hd_be64(b + i * 8, g[i]);
    return hd_store_err(hd_mdb_put(txn, st->meta, &k, &v, 0));
}

int hd_counters_get(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c)
{
    MDB_val k = {8, "counters"}, v;
    struct hd_dec d;
    int rc = hd_mdb_get(txn, st->meta, &k, &v);

    memset(c, 0, sizeof(*c));
    c->next_seq = 1;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return hd_store_err(rc);
    rc = hd_dec_record(&d, v.mv_data, v.mv_size, 1, 8);
    if (rc)
        return rc;
    c->next_seq = hd_dec_uint(&d, 1);
    c->activities = hd_dec_uint(&d, 2);
    c->done = hd_dec_uint(&d, 3);
    c->failed = hd_dec_uint(&d, 4);
    c->refused = hd_dec_uint(&d, 5);
    c->withheld = hd_dec_uint(&d, 6);
    c->expired = hd_dec_uint(&d, 7);
    c->dropped = hd_dec_uint(&d, 8); /* absent in stores written before it existed: 0 */
    c->cancelled = hd_dec_uint(&d, 9);
    return 0;
}

int hd_counters_put(struct hd_store *st, struct hd_txn *txn, const struct hd_counters *c)
{
    struct hd_enc e;
    MDB_val k = {8, "counters"}, v;
    int rc;

    hd_enc_init(&e);
    hd_enc_array(&e, 10);
    hd_enc_uint(&e, 1);
    hd_enc_uint(&e, c->next_seq);
    hd_enc_uint(&e, c->activities);
    hd_enc_uint(&e, c->done);
    hd_enc_uint(&e, c->failed);
    hd_enc_uint(&e, c->refused);
    hd_enc_uint(&e, c->withheld);
    hd_enc_uint(&e, c->expired);
    hd_enc_uint(&e, c->dropped);
    hd_enc_uint(&e, c->cancelled);
    if (e.err) {
        rc = e.err;
        goto out;
    }
    v.mv_size = e.len;
    v.mv_data = e.buf;
    rc = hd_store_err(hd_mdb_put(txn, st->meta, &k, &v, 0));
out:
    hd_enc_fini(&e);
    return rc;
}

int hd_actstat_get(struct hd_store *st, struct hd_txn *txn, uint64_t seq, struct hd_actstat *a)
{
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    struct hd_dec d;
    int rc;

    memset(a, 0, sizeof(*a));
    a->priority = HD_PRIO_NORMAL;
    hd_be64(kb, seq);
    rc = hd_mdb_get(txn, st->actstat, &k, &v);
    if (rc)
        return hd_store_err(rc);
    rc = hd_dec_record(&d, v.mv_data, v.mv_size, 1, 18);
    if (rc)
        return rc;
    a->queued = hd_dec_uint(&d, 1);
    a->retrying = hd_dec_uint(&d, 2);
    a->done = hd_dec_uint(&d, 3);
    a->failed = hd_dec_uint(&d, 4);
    a->cancelled = hd_dec_uint(&d, 5);
    a->withheld = hd_dec_uint(&d, 6);
    a->dropped = hd_dec_uint(&d, 7);
    a->expired = hd_dec_uint(&d, 8);
    a->first_ms = hd_dec_uint(&d, 9);
    a->last_ms = hd_dec_uint(&d, 10);
    a->not_before_ms = hd_dec_uint(&d, 11);
    a->created_ms = hd_dec_uint(&d, 12);
    a->cancel_ms = hd_dec_uint(&d, 13);
    a->attempted = hd_dec_uint(&d, 14);
    a->flags = (uint32_t)hd_dec_uint(&d, 15);
    a->nfail = (uint32_t)hd_dec_uint(&d, 16);
    a->priority = (uint8_t)hd_dec_uint(&d, 17);
    return 0;
}

int hd_actstat_put(struct hd_store *st, struct hd_txn *txn, uint64_t seq,
                   const struct hd_actstat *a)
{
    uint8_t kb[8], vb[18 * 9 + 4], *p = vb;
    MDB_val k = {8, kb}, v;
    const uint64_t f[17] = {a->queued,    a->retrying,  a->done,          a->failed,
                            a->cancelled, a->withheld,  a->dropped,       a->expired,
                            a->first_ms,  a->last_ms,   a->not_before_ms, a->created_ms,
                            a->cancel_ms, a->attempted, a->flags,         a->nfail,
                            a->priority};

    /* Written by hand (hd_mp_uint): one per acknowledged activity in a commit. */
    *p++ = 0xdc; /* array 16 of 18 */
    *p++ = 0;
    *p++ = 18;
    *p++ = 0x01;
    for (size_t i = 0; i < 17; i++)
        p += hd_mp_uint(p, f[i]);
    hd_be64(kb, seq);
    v.mv_size = (size_t)(p - vb);
    v.mv_data = vb;
    return hd_store_err(hd_mdb_put(txn, st->actstat, &k, &v, 0));
}

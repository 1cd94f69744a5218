/* LMDB environment, DBIs, run lock and counters. */
#include <errno.h>
#include <fcntl.h>
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
               {"collsync", &st->collsync}};
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);
        if (rc) {
            mdb_txn_abort(txn);
            return hd_store_err(rc);
        }
    }
    /* Schema marker: written once, checked on every open. */
    MDB_val k = {6, "schema"}, v;
    rc = mdb_get(txn, st->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        uint8_t b[4];
        hd_be32(b, HD_STORE_SCHEMA);
        v.mv_size = 4;
        v.mv_data = b;
        rc = mdb_put(txn, st->meta, &k, &v, 0);
    } else if (rc == 0) {
        if (v.mv_size != 4 || hd_rd32(v.mv_data) != HD_STORE_SCHEMA) {
            mdb_txn_abort(txn);
            return HD_ERR_SCHEMA;
        }
    }
    if (rc) {
        mdb_txn_abort(txn);
        return hd_store_err(rc);
    }
    rc = mdb_txn_commit(txn);
    return hd_store_err(rc);
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
    rc = mdb_env_open(st->env, dir, MDB_NOTLS, 0600);
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

int hd_store_commit(struct hd_txn *txn)
{
    return hd_store_err(mdb_txn_commit(hd_mdb_txn(txn)));
}

void hd_store_abort(struct hd_txn *txn)
{
    if (txn)
        mdb_txn_abort(hd_mdb_txn(txn));
}

void hd_store_reset(struct hd_txn *txn)
{
    mdb_txn_reset(hd_mdb_txn(txn));
}

int hd_store_renew(struct hd_txn *txn)
{
    return hd_store_err(mdb_txn_renew(hd_mdb_txn(txn)));
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

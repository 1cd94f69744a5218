/* The store's internals: the LMDB environment and its tables, and the typed bridges between
 * the opaque transaction handle of store.h and LMDB's. Only engine/store/ includes this
 * header, and so only engine/store/ includes lmdb.h. */
#ifndef HD_STORE_IMPL_H
#define HD_STORE_IMPL_H

#include <lmdb.h>

#include "store.h"

struct hd_store {
    MDB_env *env;
    MDB_dbi meta, keys, actors, acts, actrem, actid, queue, hosts, dead;
    MDB_dbi fwactors, follows, audience, objseq; /* audience*.c; objseq: ordering (queue) */
    MDB_dbi rules, hostctl, live, gone; /* rules.c, hostctl.c, gone.c */
    MDB_dbi objhosts; /* hosts a Create was addressed to (enqueue.c, cancel.c) */
    MDB_dbi collsync; /* FEP-8fcf follower digests per actor and authority (collsync.c) */
    MDB_dbi actstat, actfail, holds, hostinbox; /* per-activity status, holds (actstat.c) */
    MDB_dbi qprio; /* high and low deliveries of each host (queue.c) */
    MDB_dbi tlssess; /* resumable TLS client sessions by origin (tlssess.c) */
    char *dir;
    int lock_fd; /* run lock (flock), -1 when not held */
    /* The top-level write transaction under way (LMDB has one at a time per environment):
     * the one whose commit flushes (hd_store_commit). Atomic: a reader's commit compares. */
    _Atomic(MDB_txn *) wtxn;
};

/* struct hd_txn is never defined: a handle is an MDB_txn pointer under another name. */
static inline MDB_txn *hd_mdb_txn(struct hd_txn *t)
{
    return (MDB_txn *)t;
}
static inline struct hd_txn *hd_txn_of(MDB_txn *t)
{
    return (struct hd_txn *)t;
}
static inline int hd_mdb_get(struct hd_txn *t, MDB_dbi dbi, MDB_val *k, MDB_val *v)
{
    return mdb_get(hd_mdb_txn(t), dbi, k, v);
}
static inline int hd_mdb_put(struct hd_txn *t, MDB_dbi dbi, MDB_val *k, MDB_val *v, unsigned fl)
{
    return mdb_put(hd_mdb_txn(t), dbi, k, v, fl);
}
static inline int hd_mdb_del(struct hd_txn *t, MDB_dbi dbi, MDB_val *k, MDB_val *v)
{
    return mdb_del(hd_mdb_txn(t), dbi, k, v);
}
static inline int hd_mdb_cursor_open(struct hd_txn *t, MDB_dbi dbi, MDB_cursor **cur)
{
    return mdb_cursor_open(hd_mdb_txn(t), dbi, cur);
}

/* A msgpack unsigned integer in its shortest form, as the codec writes it, into p (room for
 * 9 bytes). Returns its length. For the hot paths that write records by hand (a fan-out's
 * queue entries and host counts), where the generic encoder's per-element calls cost. */
static inline size_t hd_mp_uint(uint8_t *p, uint64_t v)
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

#endif

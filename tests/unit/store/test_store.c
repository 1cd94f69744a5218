/* Store transactions and their flushes, the walk over host records, and the hash whose values
 * are on disk. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "t.h"
#include "t_queue.h"

#include "store_impl.h" /* reads and writes objhosts records directly */
#include "err.h"
#include "queue.h"
#include "store.h"

#define READERS 256 /* the store's reader slots (store.c) */

/* A transaction that fails to begin leaves a NULL handle, so the abort that every error path
 * runs is safe: LMDB itself leaves its output unset on failure. Runs out of reader slots to
 * make a begin fail. */
static void test_begin_failure(struct hd_store *st)
{
    struct hd_txn *r[READERS + 1];
    struct hd_txn *txn = (struct hd_txn *)(uintptr_t)0x1; /* what an unset local may hold */
    size_t n = 0;
    int rc = 0;

    while (n < READERS + 1) {
        rc = hd_store_begin(st, 0, &r[n]);
        if (rc)
            break;
        n++;
    }
    T_OK(rc != 0); /* the slots ran out */
    T_OK(n >= READERS - 8);
    rc = hd_store_begin(st, 0, &txn);
    T_OK(rc != 0);
    T_OK(txn == NULL);
    hd_store_abort(txn); /* what callers' error paths do: must be a no-op */
    for (size_t i = 0; i < n; i++)
        hd_store_abort(r[i]);
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_OK(txn != NULL);
    hd_store_abort(txn);
}

static void test_nested(struct hd_store *st)
{
    struct hd_txn *txn, *child;
    struct hd_counters c;

    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    uint64_t before = c.activities;
    T_EQ_INT(hd_store_begin_nested(txn, &child), 0);
    c.activities = before + 5;
    T_EQ_INT(hd_counters_put(st, child, &c), 0);
    hd_store_abort(child); /* undone */
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(c.activities, before);
    T_EQ_INT(hd_store_begin_nested(txn, &child), 0);
    c.activities = before + 7;
    T_EQ_INT(hd_counters_put(st, child, &c), 0);
    T_EQ_INT(hd_store_commit(child), 0); /* kept by the parent */
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(c.activities, before + 7);
    hd_store_abort(txn);
}

/* Device flushes, counted: this definition of fdatasync takes the place of libc's for the
 * LMDB library too (an executable's symbols come first), and passes each call on. */
static unsigned n_fdatasync;

int fdatasync(int fd)
{
    n_fdatasync++;
    return (int)syscall(SYS_fdatasync, fd);
}

static unsigned flushes_of_commit(struct hd_store *st, int relaxed, uint64_t activities)
{
    struct hd_txn *txn;
    struct hd_counters c;

    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    c.activities = activities; /* a change, so that LMDB has pages to write */
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    n_fdatasync = 0;
    T_EQ_INT(relaxed ? hd_store_commit_relaxed(txn) : hd_store_commit(txn), 0);
    return n_fdatasync;
}

/* hd_store_commit: the pages, then the meta page (two flushes, the second ours: the store is
 * opened MDB_NOMETASYNC, so LMDB writes the meta page unflushed); hd_store_commit_relaxed:
 * the pages only. Ending a read transaction, a nested one or one that changed nothing flushes
 * nothing, and an aborted write transaction leaves the next one flushed as it should be. */
static void test_commit_flushes(struct hd_store *st)
{
    struct hd_txn *txn, *child;
    struct hd_counters c;
    unsigned flags = 0;

    T_EQ_INT(mdb_env_get_flags(st->env, &flags), 0);
    T_OK(flags & MDB_NOMETASYNC);
    T_EQ_INT(flushes_of_commit(st, 0, 11), 2);
    T_EQ_INT(flushes_of_commit(st, 1, 12), 1);
    T_EQ_INT(flushes_of_commit(st, 0, 13), 2);

    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    n_fdatasync = 0;
    T_EQ_INT(hd_store_commit(txn), 0);
    T_EQ_INT(n_fdatasync, 0);
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0); /* a write transaction that changed nothing */
    T_EQ_INT(hd_store_commit(txn), 0);
    T_EQ_INT(n_fdatasync, 0);

    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_store_begin_nested(txn, &child), 0);
    T_EQ_INT(hd_counters_get(st, child, &c), 0);
    c.activities = 14;
    T_EQ_INT(hd_counters_put(st, child, &c), 0);
    n_fdatasync = 0;
    T_EQ_INT(hd_store_commit(child), 0);
    T_EQ_INT(n_fdatasync, 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    T_EQ_INT(n_fdatasync, 2);

    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    hd_store_abort(txn);
    T_EQ_INT(flushes_of_commit(st, 0, 15), 2);

    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(c.activities, 15);
    hd_store_abort(txn);
}

static void test_host_iter(struct hd_store *st)
{
    static const char *const inboxes[] = {"https://c.example/inbox", "https://a.example/inbox",
                                          "https://b.example/inbox", "https://a.example/u/x/inbox"};
    struct hd_host_iter it;
    struct hd_host_rec rec;
    struct hd_host_sum sum;
    struct hd_txn *txn;
    char name[HD_HOST_MAX];
    const char *want[] = {"a.example", "b.example", "c.example"};
    uint64_t want_q[] = {2, 1, 1};
    size_t n = 0;
    int rc;

    t_enqueue(st, "https://me.example/act/1", "Create", "https://me.example/note/1", inboxes, 4);
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_host_iter_open(st, txn, &it), 0);
    while ((rc = hd_host_iter_next(&it, name, &rec)) == 0) {
        T_OK(n < 3);
        T_EQ_STR(name, want[n]);
        T_EQ_INT(rec.queued, want_q[n]);
        n++;
    }
    T_EQ_INT(rc, HD_ERR_NOT_FOUND);
    T_EQ_INT(n, 3);
    T_EQ_INT(hd_host_iter_next(&it, name, NULL), HD_ERR_NOT_FOUND); /* stays at the end */
    hd_host_iter_close(&it);
    hd_host_iter_close(&it); /* closing twice is harmless */
    /* names only, then the record of the one wanted */
    T_EQ_INT(hd_host_iter_open(st, txn, &it), 0);
    T_EQ_INT(hd_host_iter_rec(&it, &rec), HD_ERR_NOT_FOUND); /* no host yet */
    T_EQ_INT(hd_host_iter_next(&it, name, NULL), 0);
    T_EQ_STR(name, "a.example");
    T_EQ_INT(hd_host_iter_next(&it, name, NULL), 0);
    T_EQ_STR(name, "b.example");
    T_EQ_INT(hd_host_iter_rec(&it, &rec), 0);
    T_EQ_INT(rec.queued, 1);
    hd_host_iter_close(&it);
    T_EQ_INT(hd_host_sum(st, txn, &sum), 0);
    T_EQ_INT(sum.hosts, 3);
    T_EQ_INT(sum.queued, 4);
    T_EQ_INT(sum.retrying, 0);
    hd_store_abort(txn);
}

/* hd_store_hash32's values are in existing stores' objhosts records: these were computed by
 * the function as first shipped and must never change. */
static void test_hash_frozen(void)
{
    static const struct {
        const char *s;
        uint32_t h;
    } pin[] = {
        {"", 0xd0b57e00u},
        {"a", 0x5621cfa5u},
        {"example.com", 0xe0e0116au},
        {"mastodon.social", 0xf23d83a9u},
        {"xn--bcher-kva.example", 0x029a1c0bu},
        {"2001:db8::1", 0x83e3349eu},
        {"h1.example", 0x1b84d0afu},
    };
    for (size_t i = 0; i < sizeof(pin) / sizeof(pin[0]); i++)
        T_EQ_INT(hd_store_hash32(pin[i].s, strlen(pin[i].s)), pin[i].h);
}

/* What an enqueue writes (hash, deliveries) per host, and what an existing store holds is
 * read the same way: a record written byte by byte as the first release wrote it. */
static void test_objhosts_on_disk(struct hd_store *st)
{
    static const char *const inboxes[] = {"https://h1.example/inbox",
                                          "https://h1.example/u/x/inbox",
                                          "https://example.com/inbox"};
    static const uint8_t want[] = {0x1b, 0x84, 0xd0, 0xaf, 0, 0, 0, 2,  /* h1.example, 2 */
                                   0xe0, 0xe0, 0x11, 0x6a, 0, 0, 0, 1}; /* example.com, 1 */
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    struct hd_txn *txn;
    uint64_t seq = t_enqueue(st, "https://me.example/act/oh", "Create",
                             "https://me.example/note/oh", inboxes, 3);

    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    hd_be64(kb, seq);
    T_EQ_INT(hd_mdb_get(txn, st->objhosts, &k, &v), 0);
    T_EQ_INT(v.mv_size, sizeof(want));
    T_OK(memcmp(v.mv_data, want, sizeof(want)) == 0);
    /* Addressed hosts are found, others are not. */
    T_EQ_INT(hd_queue_host_got(st, txn, "h1.example", seq), 1);
    T_EQ_INT(hd_queue_host_got(st, txn, "example.com", seq), 1);
    T_EQ_INT(hd_queue_host_got(st, txn, "mastodon.social", seq), 0);
    /* A record as an older store holds it, for a Create of seq 999: mastodon.social (3). */
    {
        uint8_t rec[8] = {0xf2, 0x3d, 0x83, 0xa9, 0, 0, 0, 3};
        MDB_val rv = {8, rec};
        hd_be64(kb, 999);
        T_EQ_INT(hd_mdb_put(txn, st->objhosts, &k, &rv, 0), 0);
    }
    T_EQ_INT(hd_queue_host_got(st, txn, "mastodon.social", 999), 1);
    T_EQ_INT(hd_queue_host_got(st, txn, "example.com", 999), 0);
    hd_store_abort(txn);
}

int main(void)
{
    char dir[] = "/tmp/hd_test_store_XXXXXX", path[512];
    struct hd_store *st;

    T_OK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/db", dir);
    T_EQ_INT(hd_store_open(&st, path, 64), 0);
    test_begin_failure(st);
    test_nested(st);
    test_commit_flushes(st);
    test_host_iter(st);
    test_hash_frozen();
    test_objhosts_on_disk(st);
    hd_store_close(st);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    T_OK(system(path) == 0);
    T_DONE();
}

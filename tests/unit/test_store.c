/* Store transactions and the walk over host records. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "t_queue.h"

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
    /* names only */
    T_EQ_INT(hd_host_iter_open(st, txn, &it), 0);
    T_EQ_INT(hd_host_iter_next(&it, name, NULL), 0);
    T_EQ_STR(name, "a.example");
    hd_host_iter_close(&it);
    T_EQ_INT(hd_host_sum(st, txn, &sum), 0);
    T_EQ_INT(sum.hosts, 3);
    T_EQ_INT(sum.queued, 4);
    T_EQ_INT(sum.retrying, 0);
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
    test_host_iter(st);
    hd_store_close(st);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    T_OK(system(path) == 0);
    T_DONE();
}

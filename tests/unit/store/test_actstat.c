/* Per-activity status, takedown, holds, priority index, known hosts, and the schema-1 -> 2
 * migration of a store written by the earlier binary (tests/data/store/v1-data.mdb.gz). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actstat.h"
#include "err.h"
#include "known.h"
#include "queue.h"
#include "store.h"
#include "queue_impl.h"
#include "t.h"
#include "url.h"

static struct hd_store *st;

/* Enqueues id (type Create of obj) to inboxes[n] with a hold and a priority at now 1000. */
static int enq(const char *id, const char *obj, const char *const *inboxes, size_t n,
               uint64_t not_before, uint32_t prio, uint64_t *seq)
{
    struct hd_url u[8];
    struct hd_activity_in a = {id, "Create", "https://me.example/u/a", obj, "{\"x\":1}", 7,
                               not_before, prio, 0};
    struct hd_counters c;
    struct hd_txn *txn;
    int rc;

    for (size_t i = 0; i < n; i++)
        T_EQ_INT(hd_url_parse(inboxes[i], &u[i]), 0);
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    rc = hd_queue_enqueue(st, txn, &c, &a, u, NULL, n, 1000, seq);
    if (rc) {
        hd_store_abort(txn);
        return rc;
    }
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    return 0;
}

static struct hd_act_status status(uint64_t seq, uint64_t now)
{
    struct hd_act_status s;
    struct hd_txn *txn;
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_act_status(st, txn, seq, now, &s), 0);
    hd_store_abort(txn);
    return s;
}

/* One ack of kind for the delivery of seq at host (its only one). */
static void ack(const char *host, uint64_t seq, int kind, int status_code, int flag)
{
    struct hd_qref r[2];
    struct hd_counters c;
    struct hd_ack a;
    struct hd_txn *txn;
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    memset(&a, 0, sizeof(a));
    if (hd_queue_entries(st, txn, host, seq, r, 2) == 1) {
        memcpy(a.key, r[0].key, r[0].keylen);
        a.keylen = r[0].keylen;
    } else { /* gone already (cancelled): the key as the runner would hold it */
        a.keylen = (uint16_t)hd_queue_key(a.key, host, seq, 0);
    }
    a.kind = (uint8_t)kind;
    a.attempts = 1;
    a.status = (uint16_t)status_code;
    a.not_before_ms = 9000;
    a.cancelled = (uint8_t)(kind == HD_ACK_DROP && flag);
    a.reached = (uint8_t)(kind == HD_ACK_RETRY && flag);
    snprintf(a.error, sizeof(a.error), "HTTP %d", status_code);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(hd_queue_apply(st, txn, &c, &a, 1, 2000, NULL), 0);
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
}

static struct hd_cancel_result cancel(const char *name)
{
    struct hd_cancel_result r;
    struct hd_counters c;
    struct hd_txn *txn;
    uint64_t seq;
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_act_resolve(st, txn, name, &seq), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(hd_act_cancel(st, txn, &c, seq, 3000, &r), 0);
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    return r;
}

static int count_cb(const struct hd_qent *e, void *ud)
{
    (void)e;
    (*(int *)ud)++;
    return 0;
}

static int prio_count(const char *host, int prio)
{
    struct hd_txn *txn;
    int n = 0, end = 0;
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_OK(hd_queue_scan_prio(st, txn, host, prio, 100, count_cb, &n, &end) >= 0);
    hd_store_abort(txn);
    return n;
}

static void test_status_cancel_hold(void)
{
    const char *two[] = {"https://a.example/inbox", "https://b.example/inbox"};
    const char *three[] = {"https://a.example/inbox", "https://b.example/inbox",
                           "https://c.example/inbox"};
    struct hd_act_status s;
    struct hd_cancel_result r;
    struct hd_txn *txn;
    uint64_t seq, seq2, seq3, held = 0, x;

    /* a held, high Create: held until 5000, then pending; stats-side count of held */
    T_EQ_INT(enq("https://me.example/c/1", "https://me.example/n/1", two, 2, 5000, HD_PRIO_HIGH,
                 &seq), 0);
    s = status(seq, 2000);
    T_EQ_INT(s.held, 2);
    T_EQ_INT(s.pending, 0);
    T_EQ_INT(s.a.priority, HD_PRIO_HIGH);
    s = status(seq, 6000);
    T_EQ_INT(s.held, 0);
    T_EQ_INT(s.pending, 2);
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_holds_count(st, txn, 2000, 0, &held), 0);
    T_EQ_INT(held, 2);
    T_EQ_INT(hd_holds_count(st, txn, 5000, 0, &held), 0);
    T_EQ_INT(held, 0);
    /* named by seq and by id; an unknown one */
    T_EQ_INT(hd_act_resolve(st, txn, "https://me.example/c/1", &x), 0);
    T_EQ_INT(x, seq);
    T_EQ_INT(hd_act_resolve(st, txn, "1", &x), 0);
    T_EQ_INT(x, seq);
    T_EQ_INT(hd_act_resolve(st, txn, "77", &x), HD_ERR_NOT_FOUND);
    T_EQ_INT(hd_act_resolve(st, txn, "https://me.example/none", &x), HD_ERR_NOT_FOUND);
    T_EQ_INT(hd_act_resolve(st, txn, "", &x), HD_ERR_INVALID);
    hd_store_abort(txn);
    T_EQ_INT(prio_count("a.example", HD_PRIO_HIGH), 1);
    T_EQ_INT(prio_count("a.example", HD_PRIO_LOW), 0);

    /* the same id again: a duplicate while it stands */
    T_EQ_INT(enq("https://me.example/c/1", "https://me.example/n/1", two, 2, 5000, 0, &x),
             HD_ERR_DUPLICATE);
    /* cancelled during the hold: nothing queued, nothing sent; the id may come back */
    r = cancel("https://me.example/c/1");
    T_EQ_INT(r.cancelled, 2);
    T_EQ_INT(r.delivered, 0);
    T_EQ_INT(r.in_flight, 0);
    T_EQ_INT(r.already, 0);
    s = status(seq, 2000);
    T_EQ_INT(s.held, 0);
    T_EQ_INT(s.a.cancelled, 2);
    T_OK(s.a.flags & HD_ACTSTAT_CANCELLED);
    T_EQ_INT(prio_count("a.example", HD_PRIO_HIGH), 0); /* index entries went with them */
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_holds_count(st, txn, 2000, 0, &held), 0);
    T_EQ_INT(held, 0);
    hd_store_abort(txn);
    r = cancel("1");
    T_EQ_INT(r.already, 1);
    T_EQ_INT(r.cancelled, 0);
    /* the edited Create under the same id: a new seq, the id names it, ordering afresh */
    T_EQ_INT(enq("https://me.example/c/1", "https://me.example/n/1", three, 3, 0, HD_PRIO_LOW,
                 &seq2), 0);
    T_OK(seq2 != seq);
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_act_resolve(st, txn, "https://me.example/c/1", &x), 0);
    T_EQ_INT(x, seq2);
    {
        uint64_t origin = 0, last = 0;
        T_EQ_INT(hd_queue_objseq_get(st, txn, "https://me.example/n/1", &origin, &last), 0);
        T_EQ_INT(origin, seq2); /* the re-enqueued Create is its object's origin */
    }
    hd_store_abort(txn);
    T_EQ_INT(prio_count("c.example", HD_PRIO_LOW), 1);

    /* outcomes move the counts: done, retry (failing host), dead (failing host) */
    ack("a.example", seq2, HD_ACK_DONE, 202, 0);
    ack("b.example", seq2, HD_ACK_RETRY, 503, 1);
    s = status(seq2, 2000);
    T_EQ_INT(s.a.done, 1);
    T_EQ_INT(s.a.retrying, 1);
    T_EQ_INT(s.pending, 1);
    T_EQ_INT(s.a.first_ms, 2000);
    T_EQ_INT(s.a.last_ms, 2000);
    T_EQ_INT(s.nfail, 1);
    T_EQ_STR(s.fail[0].host, "b.example");
    T_EQ_INT(s.fail[0].status, 503);
    T_EQ_STR(s.fail[0].error, "HTTP 503");
    T_EQ_INT(prio_count("a.example", HD_PRIO_LOW), 0);
    ack("c.example", seq2, HD_ACK_DEAD, 400, 0);
    s = status(seq2, 2000);
    T_EQ_INT(s.a.failed, 1);
    T_EQ_INT(s.a.queued, 1);
    T_EQ_INT(s.nfail, 2);

    /* takedown after a delivery: b's retry (whose attempt may have arrived) is in flight */
    r = cancel("https://me.example/c/1");
    T_EQ_INT(r.cancelled, 0);
    T_EQ_INT(r.in_flight, 1);
    T_EQ_INT(r.delivered, 1);
    s = status(seq2, 2000);
    T_EQ_INT(s.a.queued, 0);
    T_EQ_INT(s.a.retrying, 0);
    T_EQ_INT(s.a.cancelled, 1);
    /* something was sent: the id stays taken */
    T_EQ_INT(enq("https://me.example/c/1", "https://me.example/n/1", two, 2, 0, 0, &x),
             HD_ERR_DUPLICATE);
    /* a request on the wire at the takedown that then succeeds counts as done */
    ack("b.example", seq2, HD_ACK_DONE, 202, 0);
    s = status(seq2, 2000);
    T_EQ_INT(s.a.done, 2);
    T_EQ_INT(s.a.cancelled, 0);
    T_EQ_INT(s.nfail, 1); /* b.example took it at last: only c.example fails */
    T_EQ_STR(s.fail[0].host, "c.example");

    /* a drop by the rules and one by the federation choice */
    T_EQ_INT(enq("https://me.example/c/3", "https://me.example/n/3", two, 2, 0, 0, &seq3), 0);
    {
        struct hd_counters c;
        uint64_t n = 0;
        T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
        T_EQ_INT(hd_counters_get(st, txn, &c), 0);
        T_EQ_INT(hd_queue_drop(st, txn, &c, "a.example", NULL, &n), 0);
        T_EQ_INT(n, 1);
        T_EQ_INT(hd_queue_drop(st, txn, &c, NULL, "https://me.example/u/a", &n), 0);
        T_EQ_INT(n, 1);
        T_EQ_INT(hd_counters_put(st, txn, &c), 0);
        T_EQ_INT(hd_store_commit(txn), 0);
    }
    s = status(seq3, 2000);
    T_EQ_INT(s.a.dropped, 1);
    T_EQ_INT(s.a.withheld, 1);
    T_EQ_INT(s.a.queued, 0);

    /* known hosts: a.example and b.example took deliveries */
    {
        char inbox[256];
        int shared = -1;
        T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
        T_EQ_INT(hd_known_get(st, txn, "a.example", inbox, sizeof(inbox), &shared), 0);
        T_EQ_STR(inbox, "https://a.example/inbox");
        T_EQ_INT(shared, 0);
        T_EQ_INT(hd_known_get(st, txn, "c.example", inbox, sizeof(inbox), &shared),
                 HD_ERR_NOT_FOUND);
        hd_store_abort(txn);
        T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
        T_EQ_INT(hd_known_note(st, txn, "a.example", "https://a.example/users/x/inbox", 31, 0),
                 0);
        T_EQ_INT(hd_known_note(st, txn, "a.example", "https://a.example/shared", 24, 1), 0);
        T_EQ_INT(hd_store_commit(txn), 0);
        T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
        T_EQ_INT(hd_known_get(st, txn, "a.example", inbox, sizeof(inbox), &shared), 0);
        T_EQ_STR(inbox, "https://a.example/shared"); /* a shared inbox replaces a personal */
        T_EQ_INT(shared, 1);
        hd_store_abort(txn);
    }
}

/* A schema-1 store: migrated on open, its queued deliveries counted per activity; a store of
 * an unknown schema is refused. */
static void test_migration(const char *data, const char *base)
{
    char dir[512], cmd[1200];
    struct hd_txn *txn;
    struct hd_act_status s;
    uint64_t total = 0;
    MDB_val k = {6, "schema"}, v;
    uint8_t b[4];

    snprintf(dir, sizeof(dir), "%s/v1", base);
    snprintf(cmd, sizeof(cmd), "mkdir -m 700 %s && gzip -dc %s/store/v1-data.mdb.gz > %s/data.mdb",
             dir, data, dir);
    T_EQ_INT(system(cmd), 0);
    T_EQ_INT(hd_store_open(&st, dir, 64), 0);
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_mdb_get(txn, st->meta, &k, &v), 0);
    T_EQ_INT(hd_rd32(v.mv_data), HD_STORE_SCHEMA);
    for (uint64_t seq = 1; seq <= 5; seq++) {
        T_EQ_INT(hd_act_status(st, txn, seq, 1000, &s), 0);
        T_EQ_INT(s.recorded, 1);
        T_OK(s.a.flags & HD_ACTSTAT_MIGRATED);
        T_OK(s.a.created_ms > 0);
        total += s.a.queued;
    }
    hd_store_abort(txn);
    T_EQ_INT(total, 55); /* the fixture's 55 queued deliveries */
    hd_store_close(st);
    /* opened again: already schema 2, nothing counted twice */
    T_EQ_INT(hd_store_open(&st, dir, 64), 0);
    total = 0;
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    for (uint64_t seq = 1; seq <= 5; seq++) {
        T_EQ_INT(hd_act_status(st, txn, seq, 1000, &s), 0);
        total += s.a.queued;
    }
    hd_store_abort(txn);
    T_EQ_INT(total, 55);
    /* a store from the future */
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    hd_be32(b, 99);
    v.mv_size = 4;
    v.mv_data = b;
    T_EQ_INT(hd_mdb_put(txn, st->meta, &k, &v, 0), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    hd_store_close(st);
    T_EQ_INT(hd_store_open(&st, dir, 64), HD_ERR_SCHEMA);
    st = NULL;
}

int main(void)
{
    char dir[] = "/tmp/hd-actstat-XXXXXX", path[600], cmd[700];
    const char *data = getenv("HD_TEST_DATA");

    T_OK(data != NULL);
    T_OK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/db", dir);
    T_EQ_INT(hd_store_open(&st, path, 64), 0);
    test_status_cancel_hold();
    hd_store_close(st);
    test_migration(data, dir);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    T_EQ_INT(system(cmd), 0);
    printf("%s: %d checks passed\n", __FILE__, t_checks);
    return 0;
}

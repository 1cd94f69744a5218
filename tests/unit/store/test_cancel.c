/* Cancellation look-ups: the Delete of an object, the Updates between, a
 * host's entries of an activity, whether a host got the object, and the acks' flags. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "keys.h"
#include "queue.h"
#include "store.h"
#include "t.h"
#include "t_queue.h"
#include "url.h"

static struct hd_store *st;

static void begin(struct hd_txn **txn, int write)
{
    T_EQ_INT(hd_store_begin(st, write, txn), 0);
}

static uint64_t enqueue(const char *id, const char *type, const char *obj,
                        const char *const *inboxes, size_t n)
{
    return t_enqueue(st, id, type, obj, inboxes, n);
}

/* One ack for the only delivery of seq on host. */
static void ack(const char *host, uint64_t seq, int kind, int reached, int cancelled)
{
    struct hd_qref r[2];
    struct hd_counters c;
    struct hd_ack a;
    struct hd_txn *txn;
    begin(&txn, 1);
    T_EQ_INT(hd_queue_entries(st, txn, host, seq, r, 2), 1);
    memset(&a, 0, sizeof(a));
    memcpy(a.key, r[0].key, r[0].keylen);
    a.keylen = r[0].keylen;
    a.kind = (uint8_t)kind;
    a.attempts = 1;
    a.status = kind == HD_ACK_DEAD ? 400 : 0;
    a.not_before_ms = 5000;
    a.reached = (uint8_t)reached;
    a.cancelled = (uint8_t)cancelled;
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(hd_queue_apply(st, txn, &c, &a, 1, 2000, NULL), 0);
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
}

int main(void)
{
    char dir[] = "/tmp/hd-cancel-XXXXXX", cmd[64];
    const char *cr[] = {"https://a.example/inbox", "https://b.example/inbox",
                        "https://b.example/users/x/inbox", "https://d.example/inbox"};
    const char *up[] = {"https://a.example/inbox"};
    const char *dl[] = {"https://a.example/inbox", "https://c.example/inbox",
                        "https://b.example/inbox", "https://b.example/users/x/inbox",
                        "https://d.example/inbox"};
    const char *obj = "https://me.example/n/1";
    struct hd_qref r[4];
    struct hd_counters c;
    uint64_t create, upd, upd2, del, other, out[4], d = 0;
    struct hd_txn *txn;

    T_OK(mkdtemp(dir) != NULL);
    T_EQ_INT(hd_store_open(&st, dir, 64), 0);

    create = enqueue("https://me.example/c1", "Create", obj, cr, 4);
    other = enqueue("https://me.example/c2", "Create", "https://me.example/n/2", up, 1);
    begin(&txn, 0);
    T_EQ_INT(hd_queue_delete_of(st, txn, obj, create, &d), 0); /* no Delete yet */
    hd_store_abort(txn);
    upd = enqueue("https://me.example/u1", "Update", obj, up, 1);
    upd2 = enqueue("https://me.example/u2", "Update", obj, up, 1);
    del = enqueue("https://me.example/d1", "Delete", obj, dl, 5);

    begin(&txn, 0);
    T_EQ_INT(hd_queue_delete_of(st, txn, obj, create, &d), 1);
    T_EQ_INT(d, del);
    T_EQ_INT(hd_queue_delete_of(st, txn, obj, other, &d), 0); /* not that object's Create */
    T_EQ_INT(hd_queue_delete_of(st, txn, "https://me.example/n/none", create, &d), 0);
    /* the Updates between, newest first */
    T_EQ_INT(hd_queue_chain(st, txn, del, create, out, 4), 2);
    T_EQ_INT(out[0], upd2);
    T_EQ_INT(out[1], upd);
    T_EQ_INT(hd_queue_chain(st, txn, del, create, out, 1), 1);
    /* entries of an activity on a host */
    T_EQ_INT(hd_queue_entries(st, txn, "a.example", create, r, 4), 1);
    T_EQ_INT(hd_queue_entries(st, txn, "b.example", create, r, 4), 2);
    T_EQ_INT(hd_queue_entries(st, txn, "b.example", create, r, 1), HD_ERR_FULL);
    T_EQ_INT(hd_queue_entries(st, txn, "c.example", create, r, 4), 0);
    T_EQ_INT(hd_queue_entries(st, txn, "c.example", del, r, 4), 1);
    T_EQ_INT(r[0].flags & HD_QF_REACHED, 0);
    /* who got the object: addressed hosts yes, c.example never */
    T_EQ_INT(hd_queue_host_got(st, txn, "a.example", create), 1);
    T_EQ_INT(hd_queue_host_got(st, txn, "b.example", create), 1);
    T_EQ_INT(hd_queue_host_got(st, txn, "c.example", create), 0);
    T_EQ_INT(hd_queue_host_got(st, txn, "a.example", 999), 1); /* nothing recorded: safe yes */
    T_EQ_INT(hd_queue_host_got(st, txn, "a.example", upd), 1); /* only Creates record hosts */
    hd_store_abort(txn);

    /* a RETRY that may have been processed marks the entry; the flag survives */
    ack("a.example", create, HD_ACK_RETRY, 1, 0);
    begin(&txn, 0);
    T_EQ_INT(hd_queue_entries(st, txn, "a.example", create, r, 4), 1);
    T_OK(r[0].flags & HD_QF_REACHED);
    hd_store_abort(txn);

    /* refused dead letters: d.example refused its only delivery -> it never got the object;
     * b.example refused one of two -> the other may have arrived */
    ack("d.example", create, HD_ACK_DEAD, 0, 0);
    begin(&txn, 0);
    T_EQ_INT(hd_queue_host_got(st, txn, "d.example", create), 0);
    hd_store_abort(txn);
    {
        struct hd_ack a;
        memset(&a, 0, sizeof(a));
        begin(&txn, 1);
        T_EQ_INT(hd_queue_entries(st, txn, "b.example", create, r, 4), 2);
        memcpy(a.key, r[0].key, r[0].keylen);
        a.keylen = r[0].keylen;
        a.kind = HD_ACK_DEAD;
        a.status = 400;
        a.attempts = 1;
        T_EQ_INT(hd_counters_get(st, txn, &c), 0);
        T_EQ_INT(hd_queue_apply(st, txn, &c, &a, 1, 2000, NULL), 0);
        T_EQ_INT(hd_counters_put(st, txn, &c), 0);
        T_EQ_INT(hd_store_commit(txn), 0);
    }
    begin(&txn, 0);
    T_EQ_INT(hd_queue_host_got(st, txn, "b.example", create), 1);
    hd_store_abort(txn);
    /* a dead letter that may have been processed (e.g. after a timeout) counts as got */
    {
        const char *one[] = {"https://e.example/inbox"};
        uint64_t c3 = enqueue("https://me.example/c3", "Create", "https://me.example/n/3", one, 1);
        ack("e.example", c3, HD_ACK_DEAD, 1, 0);
        begin(&txn, 0);
        T_EQ_INT(hd_queue_host_got(st, txn, "e.example", c3), 1);
        hd_store_abort(txn);
    }

    /* DROP with cancelled counts as cancelled, not dropped */
    ack("c.example", del, HD_ACK_DROP, 0, 1);
    begin(&txn, 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(c.cancelled, 1);
    T_EQ_INT(c.dropped, 0);
    T_EQ_INT(hd_queue_entries(st, txn, "c.example", del, r, 4), 0);
    hd_store_abort(txn);

    /* The generations loop threads cache their lookups under move with each kind of change
     * in its own transaction, and only with it. */
    {
        const char *one[] = {"https://f.example/inbox"};
        uint64_t g0[HD_GEN_N], g1[HD_GEN_N], s1;
        struct hd_cancel_result res;
        begin(&txn, 0);
        T_EQ_INT(hd_gens_get(st, txn, g0), 0);
        hd_store_abort(txn);
        s1 = enqueue("https://me.example/c9", "Create", "https://me.example/n/9", one, 1);
        begin(&txn, 0);
        T_EQ_INT(hd_gens_get(st, txn, g1), 0);
        hd_store_abort(txn);
        T_OK(g1[HD_GEN_OBJECTS] > g0[HD_GEN_OBJECTS]);
        T_EQ_INT(g1[HD_GEN_TAKEDOWNS], g0[HD_GEN_TAKEDOWNS]);
        T_EQ_INT(g1[HD_GEN_ACTORS], g0[HD_GEN_ACTORS]);
        memcpy(g0, g1, sizeof(g0));
        ack("f.example", s1, HD_ACK_DONE, 1, 0); /* an acknowledgement moves none */
        begin(&txn, 0);
        T_EQ_INT(hd_gens_get(st, txn, g1), 0);
        hd_store_abort(txn);
        T_OK(memcmp(g0, g1, sizeof(g0)) == 0);
        begin(&txn, 1);
        T_EQ_INT(hd_counters_get(st, txn, &c), 0);
        T_EQ_INT(hd_act_cancel(st, txn, &c, s1, 1000, &res), 0);
        T_EQ_INT(hd_gens_get(st, txn, g1), 0);
        T_OK(g1[HD_GEN_TAKEDOWNS] > g0[HD_GEN_TAKEDOWNS]);
        T_EQ_INT(hd_actor_set_federation(st, txn, "https://me.example/users/g", HD_FED_ALL), 0);
        T_EQ_INT(hd_gens_get(st, txn, g1), 0);
        T_OK(g1[HD_GEN_ACTORS] > g0[HD_GEN_ACTORS]);
        T_EQ_INT(hd_store_commit(txn), 0);
    }

    hd_store_close(st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    T_EQ_INT(system(cmd), 0);
    T_DONE();
}

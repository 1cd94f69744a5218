/* Store, codec, ingest and queue: envelopes in, deliveries scanned and acknowledged. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "err.h"
#include "hostctl.h"
#include "hostrec.h"
#include "ingest.h"
#include "keyadd.h"
#include "keys.h"
#include "queue.h"
#include "store.h"
#include "queue_impl.h" /* reads the tables themselves (same_tables, prio_consistent) */
#include "t.h"
#include "url.h"

static int ingest(struct hd_store *st, const char *line, struct hd_ingest_result *res)
{
    struct hd_txn *txn;
    struct hd_counters c;
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    hd_ingest_envelope(st, txn, &c, line, strlen(line), 1000, res);
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    return res->rc;
}

struct collect {
    struct hd_qent e[16];
    char inbox[16][256];
    uint8_t key[16][HD_QKEY_MAX];
    int n;
};

static int on_ent(const struct hd_qent *e, void *ud)
{
    struct collect *c = ud;
    if (c->n >= 16)
        return 1;
    c->e[c->n] = *e;
    memcpy(c->key[c->n], e->key, e->keylen);
    c->e[c->n].key = c->key[c->n];
    snprintf(c->inbox[c->n], sizeof(c->inbox[0]), "%.*s", (int)e->inbox.n, e->inbox.p);
    c->n++;
    return 0;
}

static void scan(struct hd_store *st, const char *host, struct collect *c)
{
    struct hd_txn *txn;
    uint8_t last[HD_QKEY_MAX];
    size_t last_len;
    int end;
    memset(c, 0, sizeof(*c));
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_OK(hd_queue_scan(st, txn, host, NULL, 0, 100, on_ent, c, last, &last_len, &end) >= 0);
    T_EQ_INT(end, 1);
    hd_store_abort(txn);
}

static void apply(struct hd_store *st, const struct collect *c, int i, int kind, uint64_t nb)
{
    struct hd_txn *txn;
    struct hd_counters cn;
    struct hd_ack a;
    memset(&a, 0, sizeof(a));
    memcpy(a.key, c->key[i], c->e[i].keylen);
    a.keylen = (uint16_t)c->e[i].keylen;
    a.kind = (uint8_t)kind;
    a.status = kind == HD_ACK_DONE ? 202 : 503;
    a.attempts = c->e[i].attempts + 1;
    a.not_before_ms = nb;
    snprintf(a.error, sizeof(a.error), "HTTP %d", a.status);
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &cn), 0);
    T_EQ_INT(hd_queue_apply(st, txn, &cn, &a, 1, 5000, NULL), 0);
    T_EQ_INT(hd_counters_put(st, txn, &cn), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
}

static void test_codec(void)
{
    struct hd_enc e;
    struct hd_dec d;
    hd_enc_init(&e);
    hd_enc_array(&e, 3);
    hd_enc_uint(&e, 7);
    hd_enc_cstr(&e, "hello");
    hd_enc_bin(&e, "\0\1\2", 3);
    T_EQ_INT(e.err, 0);
    T_EQ_INT(hd_dec_record(&d, e.buf, e.len, 7, 3), 0);
    T_EQ_INT(hd_dec_str(&d, 1).n, 5);
    T_OK(memcmp(hd_dec_str(&d, 1).p, "hello", 5) == 0);
    T_EQ_INT(hd_dec_str(&d, 2).n, 3);
    /* an unknown version is refused, never misread */
    T_EQ_INT(hd_dec_record(&d, e.buf, e.len, 1, 3), HD_ERR_SCHEMA);
    /* too few fields / truncated / garbage */
    T_EQ_INT(hd_dec_record(&d, e.buf, e.len, 7, 4), HD_ERR_INVALID);
    T_EQ_INT(hd_dec_record(&d, e.buf, e.len - 2, 7, 3), HD_ERR_INVALID);
    T_EQ_INT(hd_dec_record(&d, "\xc1", 1, 7, 1), HD_ERR_INVALID);
    hd_enc_fini(&e);
}

static void test_raw_member(void)
{
    const char *s = "{\"x\": [1, {\"activity\": 2}], \"activity\" :  {\"a\": \"}\\\"\"} , \"y\":1}";
    size_t st, n;
    T_EQ_INT(hd_json_raw_member(s, strlen(s), "activity", &st, &n), 0);
    T_OK(n == strlen("{\"a\": \"}\\\"\"}") && memcmp(s + st, "{\"a\": \"}\\\"\"}", n) == 0);
    T_EQ_INT(hd_json_raw_member(s, strlen(s), "nope", &st, &n), HD_ERR_NOT_FOUND);
}

/* ------------------------------------------------------------------ dropping */

static uint64_t enqueue_by(struct hd_store *st, const char *id, const char *actor,
                           const char *const *inboxes, size_t n)
{
    struct hd_url u[4];
    struct hd_activity_in a = {id, "Note", actor, NULL, "{}", 2, 0, 0, 0};
    struct hd_counters c;
    struct hd_txn *txn;
    uint64_t seq;
    for (size_t i = 0; i < n; i++)
        T_EQ_INT(hd_url_parse(inboxes[i], &u[i]), 0);
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(hd_queue_enqueue(st, txn, &c, &a, u, NULL, n, 1000, &seq), 0);
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    return seq;
}

static void host_counts(struct hd_store *st, const char *host, uint64_t queued, uint64_t retrying)
{
    struct hd_txn *txn;
    struct hd_host_rec h;
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_host_get(st, txn, host, strlen(host), &h), 0);
    T_EQ_INT(h.queued, queued);
    T_EQ_INT(h.retrying, retrying);
    hd_store_abort(txn);
}

/* Drops in one write transaction; returns how many were dropped, checks the counter moved by
 * as many. */
static uint64_t drop(struct hd_store *st, const char *host, const char *actor)
{
    struct hd_txn *txn;
    struct hd_counters c;
    uint64_t before, n = 99;
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    before = c.dropped;
    T_EQ_INT(hd_queue_drop(st, txn, &c, host, actor, &n), 0);
    T_EQ_INT(c.dropped, before + n);
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    return n;
}

static int has_body(struct hd_store *st, uint64_t seq)
{
    struct hd_txn *txn;
    int rc;
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    rc = hd_queue_has_activity(st, txn, seq);
    hd_store_abort(txn);
    T_OK(rc == 0 || rc == 1);
    return rc;
}

/* One drop for a host's deliveries, an actor's, or an actor's to a host: host counts,
 * retrying counts, counters and activity bodies stay exact; dead letters keep their body. */
static void test_drop(void)
{
    static const char *const in_a1[] = {"https://h1.example/inbox", "https://h1.example/u/x/inbox",
                                        "https://h2.example/inbox"};
    static const char *const in_a2[] = {"https://h1.example/u/y/inbox"};
    static const char *const in_b1[] = {"https://h1.example/inbox", "https://h2.example/inbox"};
    const char *A = "https://me.example/u/a", *B = "https://me.example/u/b";
    char dir[] = "/tmp/hd-test-drop-XXXXXX", path[256], longhost[HD_HOST_MAX + 1];
    struct hd_store *st;
    struct hd_txn *txn;
    struct hd_counters c;
    struct collect h1, h2;
    uint64_t a1, a2, b1, n;

    T_OK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/db", dir);
    T_EQ_INT(hd_store_open(&st, path, 64), 0);
    a1 = enqueue_by(st, "https://me.example/a/1", A, in_a1, 3);
    a2 = enqueue_by(st, "https://me.example/a/2", A, in_a2, 1);
    b1 = enqueue_by(st, "https://me.example/b/1", B, in_b1, 2);
    host_counts(st, "h1.example", 4, 0);
    host_counts(st, "h2.example", 2, 0);
    /* a1 on h1 waits for a retry; a1 on h2 ends as a dead letter (it keeps a1's body) */
    scan(st, "h1.example", &h1);
    T_EQ_INT(h1.n, 4);
    T_EQ_INT(h1.e[0].seq, a1);
    apply(st, &h1, 0, HD_ACK_RETRY, 99999);
    scan(st, "h2.example", &h2);
    T_EQ_INT(h2.e[0].seq, a1);
    apply(st, &h2, 0, HD_ACK_DEAD, 0);
    host_counts(st, "h1.example", 4, 1);
    host_counts(st, "h2.example", 1, 0);

    /* neither host nor actor, or a bad host: refused, nothing changes */
    memset(longhost, 'x', sizeof(longhost) - 1);
    longhost[sizeof(longhost) - 1] = 0;
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(hd_queue_drop(st, txn, &c, NULL, NULL, &n), HD_ERR_INVALID);
    T_EQ_INT(hd_queue_drop(st, txn, &c, "", A, &n), HD_ERR_INVALID);
    T_EQ_INT(hd_queue_drop(st, txn, &c, longhost, NULL, &n), HD_ERR_INVALID);
    hd_store_abort(txn);

    /* B's deliveries to h1 only */
    T_EQ_INT(drop(st, "h1.example", B), 1);
    host_counts(st, "h1.example", 3, 1);
    host_counts(st, "h2.example", 1, 0);
    T_EQ_INT(has_body(st, b1), 1); /* still queued on h2 */

    /* all of A's, on every host */
    T_EQ_INT(drop(st, NULL, A), 3);
    host_counts(st, "h1.example", 0, 0);
    host_counts(st, "h2.example", 1, 0);
    T_EQ_INT(has_body(st, a2), 0);  /* its last delivery went */
    T_EQ_INT(has_body(st, a1), 1);  /* the dead letter on h2 still refers to it */
    scan(st, "h1.example", &h1);
    T_EQ_INT(h1.n, 0);

    /* all of h2's */
    T_EQ_INT(drop(st, "h2.example", NULL), 1);
    host_counts(st, "h2.example", 0, 0);
    T_EQ_INT(has_body(st, b1), 0);

    /* nothing left: zero, no error; the ids still de-duplicate */
    T_EQ_INT(drop(st, "h1.example", NULL), 0);
    T_EQ_INT(drop(st, NULL, B), 0);
    T_EQ_INT(drop(st, "none.example", A), 0);
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(c.dropped, 5);
    T_EQ_INT(hd_queue_find_activity(st, txn, "https://me.example/a/2", &n), 0);
    T_EQ_INT(n, a2);
    hd_store_abort(txn);
    hd_store_close(st);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    T_EQ_INT(system(path), 0);
}

/* A batch of acks that touches more hosts and activities than the committer keeps in hand
 * (it writes them out and starts again), and more acks than it sorts at once, leaves the
 * store exactly as the same acks applied one by one: every table compared byte for byte
 * (queue, dead letters, priority index, host records, activity counts and failing hosts,
 * known inboxes, gone inboxes, bodies released, counters). The acks come in no key order,
 * mix every kind and outcome, and some keys are acknowledged twice or more in one batch,
 * close together and far apart. */
#define AB_HOSTS 70
#define AB_ACTS 270
#define AB_SHARED(h) ((h) % 5 == 0) /* hosts with a shared inbox too */
#define AB_URLS (AB_HOSTS + (AB_HOSTS + 4) / 5)

struct allkeys {
    uint8_t (*key)[HD_QKEY_MAX];
    uint16_t *keylen;
    uint32_t *attempts;
    size_t n, cap;
};

static int on_all(const struct hd_qent *e, void *ud)
{
    struct allkeys *k = ud;
    T_OK(k->n < k->cap);
    memcpy(k->key[k->n], e->key, e->keylen);
    k->keylen[k->n] = (uint16_t)e->keylen;
    k->attempts[k->n] = e->attempts;
    k->n++;
    return 0;
}

static struct hd_store *ab_store(const char *dir, const char *name, struct hd_url *u,
                                 const uint8_t *flags)
{
    char path[256];
    struct hd_store *st;
    struct hd_txn *txn;
    struct hd_counters c;
    struct hd_cancel_result cr;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    T_EQ_INT(hd_store_open(&st, path, 256), 0);
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    for (int a = 0; a < AB_ACTS; a++) {
        char id[64];
        struct hd_activity_in in = {id, "Note", "https://me.example/u/a", NULL, "{}", 2, 0, 0, 0};
        uint64_t seq;
        snprintf(id, sizeof(id), "https://me.example/act/%d", a);
        in.priority = a % 4 == 1 ? HD_PRIO_HIGH : a % 4 == 2 ? HD_PRIO_LOW : HD_PRIO_NORMAL;
        T_EQ_INT(hd_queue_enqueue(st, txn, &c, &in, u, flags, AB_URLS, 1000, &seq), 0);
        T_EQ_INT(seq, (uint64_t)a + 1);
    }
    /* Activity 2's deliveries are cancelled: its acks find them gone (a success still counts
     * as done). */
    T_EQ_INT(hd_act_cancel(st, txn, &c, 2, 1500, &cr), 0);
    T_EQ_INT(cr.cancelled, AB_URLS);
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    return st;
}

/* Every table of x and y holds the same records. Returns how many records that is. */
static size_t same_tables(struct hd_store *x, struct hd_store *y)
{
#define AB_DBI(f) {#f, offsetof(struct hd_store, f)}
    static const struct {
        const char *name;
        size_t off;
    } dbis[] = {AB_DBI(meta),     AB_DBI(keys),     AB_DBI(actors),    AB_DBI(acts),
                AB_DBI(actrem),   AB_DBI(actid),    AB_DBI(queue),     AB_DBI(hosts),
                AB_DBI(dead),     AB_DBI(fwactors), AB_DBI(follows),   AB_DBI(audience),
                AB_DBI(objseq),   AB_DBI(rules),    AB_DBI(hostctl),   AB_DBI(live),
                AB_DBI(gone),     AB_DBI(objhosts), AB_DBI(collsync),  AB_DBI(actstat),
                AB_DBI(actfail),  AB_DBI(holds),    AB_DBI(hostinbox), AB_DBI(qprio),
                AB_DBI(tlssess)};
#undef AB_DBI
    struct hd_txn *tx, *ty;
    size_t total = 0;

    T_EQ_INT(hd_store_begin(x, 0, &tx), 0);
    T_EQ_INT(hd_store_begin(y, 0, &ty), 0);
    for (size_t d = 0; d < sizeof(dbis) / sizeof(dbis[0]); d++) {
        MDB_dbi dx = *(const MDB_dbi *)((const char *)x + dbis[d].off);
        MDB_dbi dy = *(const MDB_dbi *)((const char *)y + dbis[d].off);
        MDB_cursor *cx, *cy;
        MDB_val kx, vx, ky, vy;
        int rx, ry;
        T_EQ_INT(hd_mdb_cursor_open(tx, dx, &cx), 0);
        T_EQ_INT(hd_mdb_cursor_open(ty, dy, &cy), 0);
        rx = mdb_cursor_get(cx, &kx, &vx, MDB_FIRST);
        ry = mdb_cursor_get(cy, &ky, &vy, MDB_FIRST);
        while (rx == 0 && ry == 0) {
            int same = kx.mv_size == ky.mv_size && !memcmp(kx.mv_data, ky.mv_data, kx.mv_size);
            if (same && dx == x->gone) {
                /* [1, when (the wall clock), status]: the same status */
                struct hd_dec gx, gy;
                same = hd_dec_record(&gx, vx.mv_data, vx.mv_size, 1, 3) == 0 &&
                       hd_dec_record(&gy, vy.mv_data, vy.mv_size, 1, 3) == 0 &&
                       hd_dec_uint(&gx, 2) == hd_dec_uint(&gy, 2);
            } else if (same) {
                same = vx.mv_size == vy.mv_size && !memcmp(vx.mv_data, vy.mv_data, vx.mv_size);
            }
            if (!same)
                T_FAIL("table %s differs at record %zu", dbis[d].name, total);
            total++;
            rx = mdb_cursor_get(cx, &kx, &vx, MDB_NEXT);
            ry = mdb_cursor_get(cy, &ky, &vy, MDB_NEXT);
        }
        if (rx != MDB_NOTFOUND || ry != MDB_NOTFOUND)
            T_FAIL("table %s: one store has more records (%d, %d)", dbis[d].name, rx, ry);
        mdb_cursor_close(cx);
        mdb_cursor_close(cy);
    }
    hd_store_abort(tx);
    hd_store_abort(ty);
    return total;
}

/* The priority index of st holds exactly the queued deliveries flagged high or low: none
 * that left the queue, and every one a retry rewrote. Returns how many. */
static size_t prio_consistent(struct hd_store *st)
{
    struct hd_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    size_t flagged = 0, indexed = 0;
    int rc;

    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_mdb_cursor_open(txn, st->queue, &cur), 0);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct hd_qent q;
        T_EQ_INT(hd_queue_ent_decode(&k, &v, &q), 0);
        flagged += (q.flags & (HD_QF_HIGH | HD_QF_LOW)) != 0;
    }
    T_EQ_INT(rc, MDB_NOTFOUND);
    mdb_cursor_close(cur);
    T_EQ_INT(hd_mdb_cursor_open(txn, st->qprio, &cur), 0);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        /* host \0 class seq idx -> the queue key host \0 seq idx */
        uint8_t qk[HD_QKEY_MAX];
        const uint8_t *p = k.mv_data;
        size_t hl = k.mv_size - 14;
        MDB_val ek = {hl + 13, qk}, ev;
        T_OK(k.mv_size >= 14 && k.mv_size <= HD_QKEY_MAX + 1);
        memcpy(qk, p, hl + 1);
        memcpy(qk + hl + 1, p + hl + 2, 12);
        T_EQ_INT(hd_mdb_get(txn, st->queue, &ek, &ev), 0);
        indexed++;
    }
    T_EQ_INT(rc, MDB_NOTFOUND);
    mdb_cursor_close(cur);
    hd_store_abort(txn);
    T_EQ_INT(indexed, flagged);
    return indexed;
}

/* The ack of delivery a (of activity a at host h, attempts made before) of one of the kinds. */
static void ab_ack(struct hd_ack *x, const uint8_t *key, uint16_t keylen, uint32_t attempts,
                   int kind, int a, int h)
{
    memset(x, 0, sizeof(*x));
    memcpy(x->key, key, keylen);
    x->keylen = keylen;
    x->attempts = attempts + 1;
    x->kind = (uint8_t)kind;
    switch (kind) {
    case HD_ACK_DONE:
        x->status = 202;
        x->scheme_ok = (uint8_t)(1 + (a + h) % 3);
        break;
    case HD_ACK_RETRY:
        x->status = (a + h) % 2 ? 503 : 0;
        x->host_fail = 1;
        x->reached = (uint8_t)((a + h) % 3 == 0);
        x->not_before_ms = 99999 + (uint64_t)a;
        break;
    case HD_ACK_DEAD:
        x->status = (a + h) % 3 == 0 ? 410 : 400;
        x->host_fail = (a + h) % 4 == 0;
        x->host_gone = (a + h) % 7 == 0;
        x->expired = (a + h) % 5 == 0;
        x->follower_gone = x->status == 410;
        x->reached = 1;
        x->body_len = (uint16_t)snprintf(x->body, sizeof(x->body), "gone %d", a);
        break;
    case HD_ACK_DROP:
        x->cancelled = (uint8_t)(a % 2);
        break;
    }
    snprintf(x->error, sizeof(x->error), "HTTP %u at %d", x->status, a);
}

static void test_apply_batch(void)
{
    char dir[] = "/tmp/hd-test-batch-XXXXXX", cmd[300], host[64];
    struct hd_url *u = calloc(AB_URLS, sizeof(*u));
    uint8_t flags[AB_URLS];
    struct allkeys k = {0};
    struct hd_ack *acks;
    struct hd_store *one, *batch;
    struct hd_txn *t1, *t2;
    struct hd_counters c1, c2;
    size_t n = 0, nu = 0, ndone_acts = 0, *perm, ndup = 0;
    uint64_t rnd = 88172645463325252ull;

    T_OK(u != NULL);
    T_OK(mkdtemp(dir) != NULL);
    for (int h = 0; h < AB_HOSTS; h++) {
        char in[128];
        snprintf(in, sizeof(in), "https://h%d.example/u/x/inbox", h);
        flags[nu] = 0;
        T_EQ_INT(hd_url_parse(in, &u[nu++]), 0);
        if (AB_SHARED(h)) {
            snprintf(in, sizeof(in), "https://h%d.example/inbox", h);
            flags[nu] = HD_QF_SHARED;
            T_EQ_INT(hd_url_parse(in, &u[nu++]), 0);
        }
    }
    T_EQ_INT(nu, AB_URLS);
    one = ab_store(dir, "one", u, flags);
    batch = ab_store(dir, "batch", u, flags);

    k.cap = (size_t)AB_URLS * AB_ACTS;
    k.key = calloc(k.cap, sizeof(*k.key));
    k.keylen = calloc(k.cap, sizeof(*k.keylen));
    k.attempts = calloc(k.cap, sizeof(*k.attempts));
    perm = calloc(k.cap, sizeof(*perm));
    acks = calloc(2 * k.cap + 1, sizeof(*acks));
    T_OK(k.key && k.keylen && k.attempts && perm && acks);
    T_EQ_INT(hd_store_begin(one, 0, &t1), 0);
    for (int h = 0; h < AB_HOSTS; h++) {
        uint8_t last[HD_QKEY_MAX];
        size_t last_len;
        int end, per = AB_SHARED(h) ? 2 : 1;
        snprintf(host, sizeof(host), "h%d.example", h);
        T_EQ_INT(hd_queue_scan(one, t1, host, NULL, 0, (size_t)AB_URLS * AB_ACTS, on_all, &k,
                               last, &last_len, &end),
                 (AB_ACTS - 1) * per); /* activity 2's were cancelled */
    }
    hd_store_abort(t1);
    /* In no key order: the deliveries shuffled (xorshift, fixed seed). */
    for (size_t i = 0; i < k.n; i++)
        perm[i] = i;
    for (size_t i = k.n; i > 1; i--) {
        size_t j, t;
        rnd ^= rnd << 13;
        rnd ^= rnd >> 7;
        rnd ^= rnd << 17;
        j = (size_t)(rnd % i);
        t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    for (size_t p = 0; p < k.n; p++) {
        size_t i = perm[p];
        const uint8_t *key = k.key[i];
        uint16_t kl = k.keylen[i];
        int h = atoi((const char *)key + 1), a = (int)hd_rd64(key + kl - 12) - 1;
        int r = a % 3 == 0 ? 5 : (a * 7 + h) % 10; /* a third all done */
        int kind = r == 0 ? HD_ACK_RETRY : r == 1 ? HD_ACK_DEAD : r == 2 ? HD_ACK_DROP
                                                                           : HD_ACK_DONE;
        if (a % 3 == 0 && (a + h) % 11 == 0)
            kind = HD_ACK_DROP; /* all done or dropped */
        ab_ack(&acks[n++], key, kl, k.attempts[i], kind, a, h);
        /* Acknowledged again in the batch, close after (within one sort) or far: a retry
         * then a success of the same key, a success then a retry (found gone), and so on. */
        if (p % 29 == 0 && p >= 6) {
            const struct hd_ack *o = &acks[n - 1 - (p % 58 ? 0 : 5)];
            int kinds[4] = {HD_ACK_DONE, HD_ACK_RETRY, HD_ACK_DEAD, HD_ACK_DROP};
            int h2 = atoi((const char *)o->key + 1), a2 = (int)hd_rd64(o->key + o->keylen - 12) - 1;
            ab_ack(&acks[n], o->key, o->keylen, o->attempts, kinds[(p / 29) % 4], a2, h2);
            n++;
            ndup++;
        }
    }
    acks[n] = acks[3]; /* acknowledged twice in the batch, far apart: the second finds it gone */
    n++;
    /* And a few from before activity 2 was cancelled. */
    for (int h = 0; h < 4; h++) {
        uint8_t key[HD_QKEY_MAX];
        snprintf(host, sizeof(host), "h%d.example", h);
        ab_ack(&acks[n++], key, (uint16_t)hd_queue_key(key, host, 2, 0), 0,
               h % 2 ? HD_ACK_RETRY : HD_ACK_DONE, 1, h);
    }
    T_OK(ndup > 100);

    T_EQ_INT(hd_store_begin(one, 1, &t1), 0);
    T_EQ_INT(hd_counters_get(one, t1, &c1), 0);
    for (size_t i = 0; i < n; i++)
        T_EQ_INT(hd_queue_apply(one, t1, &c1, &acks[i], 1, 5000, NULL), 0);
    T_EQ_INT(hd_counters_put(one, t1, &c1), 0);
    T_EQ_INT(hd_store_commit(t1), 0);
    T_EQ_INT(hd_store_begin(batch, 1, &t2), 0);
    T_EQ_INT(hd_counters_get(batch, t2, &c2), 0);
    T_EQ_INT(hd_queue_apply(batch, t2, &c2, acks, n, 5000, NULL), 0);
    T_EQ_INT(hd_counters_put(batch, t2, &c2), 0);
    T_EQ_INT(hd_store_commit(t2), 0);

    T_OK(same_tables(one, batch) > 1000);
    T_OK(prio_consistent(batch) > 0);
    T_EQ_INT(hd_store_begin(batch, 0, &t2), 0);
    T_EQ_INT(hd_counters_get(batch, t2, &c2), 0);
    T_OK(c2.done > 0 && c2.failed > 0 && c2.expired > 0 && c2.dropped > 0 && c2.cancelled > 0);
    for (int h = 0; h < AB_HOSTS; h++) {
        struct hd_host_rec r2;
        snprintf(host, sizeof(host), "h%d.example", h);
        T_EQ_INT(hd_host_get(batch, t2, host, strlen(host), &r2), 0);
        T_OK(r2.retrying > 0 && r2.done > 0);
    }
    for (uint64_t seq = 1; seq <= AB_ACTS; seq++) {
        struct hd_actstat s2;
        int b2 = hd_queue_has_activity(batch, t2, seq);
        T_EQ_INT(hd_actstat_get(batch, t2, seq, &s2), 0);
        T_EQ_INT(s2.done + s2.failed + s2.expired + s2.queued + s2.dropped + s2.cancelled,
                 AB_URLS);
        T_OK(b2 == 0 || b2 == 1);
        ndone_acts += b2 == 0;
    }
    /* the bodies released are those of the activities done or dropped everywhere (a third,
     * and the one cancelled); the others keep theirs for a retry or a dead letter */
    T_EQ_INT(ndone_acts, AB_ACTS / 3 + 1);
    hd_store_abort(t2);
    hd_store_close(one);
    hd_store_close(batch);
    free(k.key);
    free(k.keylen);
    free(k.attempts);
    free(perm);
    free(acks);
    free(u);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    T_EQ_INT(system(cmd), 0);
}

int main(void)
{
    char dir[] = "/tmp/hd-test-queue-XXXXXX", path[256], *pem;
    struct hd_store *st;
    struct hd_ingest_result r;
    struct collect c;
    struct stat sb;
    const char *why;
    size_t len;
    const char *data = getenv("HD_TEST_DATA");

    test_codec();
    test_raw_member();
    test_drop();
    test_apply_batch();
    T_OK(data != NULL);
    T_OK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/db", dir);
    T_EQ_INT(hd_store_open(&st, path, 64), 0);
    snprintf(path, sizeof(path), "%s/db/data.mdb", dir);
    T_EQ_INT(stat(path, &sb), 0);
    T_EQ_INT(sb.st_mode & 0777, 0600);

    /* keys */
    snprintf(path, sizeof(path), "%s/keys/test-only-rsa1024.pem", data);
    pem = t_slurp(path, &len);
    T_OK(pem != NULL);
    T_EQ_INT(hd_keys_add(st, "https://a.example/u/al#key", "https://a.example/u/al", pem, len, &why),
             HD_ERR_INVALID);
    free(pem);
    T_EQ_INT(hd_keys_add(st, "k", "https://a.example/u/al", "garbage", 7, &why), HD_ERR_INVALID);
    snprintf(path, sizeof(path), "%s/keys/test-only-rsa2048.pem", data);
    pem = t_slurp(path, &len);
    T_EQ_INT(hd_keys_add(st, "https://a.example/u/al#key", "https://a.example/u/al", pem, len, &why),
             0);
    free(pem);

    /* bad envelopes change nothing */
    T_EQ_INT(ingest(st, "{not json", &r), HD_ERR_INVALID);
    T_EQ_INT(ingest(st, "{\"activity\":{\"id\":\"x\",\"type\":\"Create\",\"actor\":\"https://a.example/u/al\"},\"inboxs\":[]}", &r),
             HD_ERR_INVALID);
    T_OK(strstr(r.why, "unknown envelope key") != NULL);
    T_EQ_INT(ingest(st, "{\"activity\":{\"type\":\"Create\",\"actor\":\"https://a.example/u/al\"},\"inboxes\":[]}", &r),
             HD_ERR_INVALID);
    T_EQ_INT(ingest(st, "{\"activity\":{\"id\":\"x\",\"type\":\"Create\",\"actor\":\"https://nokey.example/u\"},\"inboxes\":[\"https://b.example/inbox\"]}", &r),
             HD_ERR_NO_KEY);
    T_EQ_INT(ingest(st, "{\"activity\":{\"id\":\"x\",\"type\":\"Create\",\"actor\":\"https://a.example/u/al\"},\"inboxes\":[\"ftp://b.example/inbox\"]}", &r),
             HD_ERR_INVALID);

    /* a good one: same inbox twice (differently spelled) is one delivery; body byte for byte */
    const char *env = "{\"activity\": {\"id\":\"https://a.example/act/1\", \"type\":\"Create\",  "
                      "\"actor\":\"https://a.example/u/al\",\"object\":{\"id\":\"https://a.example/n/1\"}},"
                      "\"inboxes\":[\"https://b.example/inbox\",\"https://B.example:443/inbox\","
                      "\"https://b.example/users/x/inbox\",\"https://c.example/inbox\"]}";
    T_EQ_INT(ingest(st, env, &r), 0);
    T_EQ_INT(r.seq, 1);
    T_EQ_INT(r.deliveries, 3);
    T_EQ_INT(ingest(st, env, &r), HD_ERR_DUPLICATE);
    T_EQ_INT(r.seq, 1);
    {
        struct hd_txn *txn;
        struct hd_act_view v;
        T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
        T_EQ_INT(hd_queue_get_activity(st, txn, 1, &v), 0);
        const char *want = "{\"id\":\"https://a.example/act/1\", \"type\":\"Create\",  "
                           "\"actor\":\"https://a.example/u/al\",\"object\":{\"id\":\"https://a.example/n/1\"}}";
        T_OK(v.body.n == strlen(want) && memcmp(v.body.p, want, v.body.n) == 0);
        T_OK(v.object_id.n == strlen("https://a.example/n/1"));
        hd_store_abort(txn);
    }

    scan(st, "b.example", &c);
    T_EQ_INT(c.n, 2);
    T_EQ_STR(c.inbox[0], "https://b.example/inbox");
    T_EQ_STR(c.inbox[1], "https://b.example/users/x/inbox");
    T_EQ_INT(c.e[0].seq, 1);
    T_EQ_INT(c.e[0].attempts, 0);

    /* retry: attempts and not_before persist; host counts it */
    apply(st, &c, 0, HD_ACK_RETRY, 99999);
    scan(st, "b.example", &c);
    T_EQ_INT(c.n, 2);
    T_EQ_INT(c.e[0].attempts, 1);
    T_EQ_INT(c.e[0].not_before_ms, 99999);
    {
        struct hd_txn *txn;
        struct hd_host_rec h;
        T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
        T_EQ_INT(hd_host_get(st, txn, "b.example", 9, &h), 0);
        T_EQ_INT(h.queued, 2);
        T_EQ_INT(h.retrying, 1);
        T_EQ_STR(h.last_error, "HTTP 503");
        hd_store_abort(txn);
    }
    /* done and dead remove from the queue; the body goes with the last delivery */
    apply(st, &c, 0, HD_ACK_DONE, 0);
    apply(st, &c, 0, HD_ACK_DONE, 0); /* twice: already gone, skipped */
    apply(st, &c, 1, HD_ACK_DEAD, 0);
    scan(st, "b.example", &c);
    T_EQ_INT(c.n, 0);
    scan(st, "c.example", &c);
    T_EQ_INT(c.n, 1);
    apply(st, &c, 0, HD_ACK_DONE, 0);
    {
        struct hd_txn *txn;
        struct hd_act_view v;
        struct hd_counters cn;
        struct hd_host_rec h;
        uint64_t seq;
        T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
        /* the dead letter keeps the body (dead retry sends it again) until it is purged */
        T_EQ_INT(hd_queue_get_activity(st, txn, 1, &v), 0);
        T_EQ_INT(hd_queue_find_activity(st, txn, "https://a.example/act/1", &seq), 0);
        T_EQ_INT(hd_counters_get(st, txn, &cn), 0);
        T_EQ_INT(cn.done, 2);
        T_EQ_INT(cn.failed, 1);
        T_EQ_INT(cn.activities, 1);
        T_EQ_INT(hd_host_get(st, txn, "b.example", 9, &h), 0);
        T_EQ_INT(h.queued, 0);
        T_EQ_INT(h.retrying, 0);
        T_EQ_INT(h.done, 1);
        T_EQ_INT(h.failed, 1);
        hd_store_abort(txn);
    }
    {
        struct hd_txn *txn;
        struct hd_act_view v;
        uint64_t purged = 0;
        T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
        T_EQ_INT(hd_dead_purge(st, txn, NULL, &purged), 0);
        T_EQ_INT(purged, 1);
        T_EQ_INT(hd_queue_get_activity(st, txn, 1, &v), HD_ERR_NOT_FOUND);
        T_EQ_INT(hd_store_commit(txn), 0);
    }

    /* federation choices */
    {
        struct hd_txn *txn;
        T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
        T_EQ_INT(hd_actor_set_federation(st, txn, "https://a.example/u/al", HD_FED_PUBLIC), 0);
        T_EQ_INT(hd_store_commit(txn), 0);
    }
    T_EQ_INT(ingest(st, "{\"activity\":{\"id\":\"https://a.example/act/2\",\"type\":\"Create\",\"actor\":\"https://a.example/u/al\",\"to\":[\"https://a.example/u/al/followers\"]},\"inboxes\":[\"https://b.example/inbox\"]}", &r),
             HD_ERR_INVALID);
    T_EQ_INT(r.withheld, 1);
    T_EQ_INT(ingest(st, "{\"activity\":{\"id\":\"https://a.example/act/3\",\"type\":\"Create\",\"actor\":\"https://a.example/u/al\",\"object\":{\"cc\":\"as:Public\"}},\"inboxes\":[\"https://b.example/inbox\"]}", &r),
             0);
    T_EQ_INT(ingest(st, "{\"activity\":{\"id\":\"https://a.example/act/4\",\"type\":\"Like\",\"actor\":\"https://a.example/u/al\"},\"inboxes\":[\"https://b.example/inbox\"]}", &r),
             0);
    {
        struct hd_txn *txn;
        T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
        T_EQ_INT(hd_actor_set_federation(st, txn, "https://a.example/u/al", HD_FED_NONE), 0);
        T_EQ_INT(hd_store_commit(txn), 0);
    }
    T_EQ_INT(ingest(st, "{\"activity\":{\"id\":\"https://a.example/act/5\",\"type\":\"Like\",\"actor\":\"https://a.example/u/al\"},\"inboxes\":[\"https://b.example/inbox\"]}", &r),
             HD_ERR_INVALID);
    {
        struct hd_txn *txn;
        struct hd_counters cn;
        T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
        T_EQ_INT(hd_counters_get(st, txn, &cn), 0);
        T_EQ_INT(cn.withheld, 1);
        T_EQ_INT(cn.refused, 2); /* no key + federation none */
        T_EQ_INT(cn.activities, 3);
        hd_store_abort(txn);
    }
    hd_store_close(st);

    /* a store directory writable by others is refused */
    snprintf(path, sizeof(path), "%s/open", dir);
    T_EQ_INT(mkdir(path, 0777), 0);
    T_EQ_INT(chmod(path, 0777), 0);
    T_EQ_INT(hd_store_open(&st, path, 64), -EPERM);

    snprintf(path, sizeof(path), "rm -rf %s", dir);
    T_EQ_INT(system(path), 0);
    T_DONE();
}

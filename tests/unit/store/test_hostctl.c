/* Operator controls: hostctl and live records, host reset, gone followers, dead letters
 * (list, retry with counts fixed, purge). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_impl.h" /* reads tables directly */
#include "err.h"
#include "hostctl.h"
#include "queue.h"
#include "rules.h"
#include "store.h"
#include "t.h"
#include "t_queue.h"
#include "url.h"

static struct hd_store *st;

static void begin(struct hd_txn **txn, int write)
{
    T_EQ_INT(hd_store_begin(st, write, txn), 0);
}

struct seen {
    int n;
    char host[8][64];
    struct hd_hostctl c[8];
};

static int on_ctl(const char *host, const struct hd_hostctl *c, void *ud)
{
    struct seen *s = ud;
    if (s->n < 8) {
        snprintf(s->host[s->n], sizeof(s->host[0]), "%s", host);
        s->c[s->n] = *c;
    }
    s->n++;
    return 0;
}

static void test_hostctl(void)
{
    struct hd_hostctl c;
    struct seen s;
    struct hd_txn *txn;
    uint64_t g0, g1;

    begin(&txn, 1);
    g0 = hd_hostctl_generation(st, txn);
    T_EQ_INT(g0, 0);
    T_EQ_INT(hd_hostctl_get(st, txn, "a.example", &c), 0);
    T_EQ_INT(c.paused, 0);
    T_EQ_INT(c.max_inflight, 0);
    T_EQ_INT(c.rate_milli, 0);
    c.paused = 1;
    T_EQ_INT(hd_hostctl_put(st, txn, "a.example", &c), 0);
    c.paused = 0;
    c.max_inflight = 8;
    c.rate_milli = 2500;
    T_EQ_INT(hd_hostctl_put(st, txn, "b.example", &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);

    begin(&txn, 0);
    g1 = hd_hostctl_generation(st, txn);
    T_EQ_INT(g1, 2);
    T_EQ_INT(hd_hostctl_get(st, txn, "a.example", &c), 0);
    T_EQ_INT(c.paused, 1);
    T_EQ_INT(hd_hostctl_get(st, txn, "b.example", &c), 0);
    T_EQ_INT(c.max_inflight, 8);
    T_EQ_INT(c.rate_milli, 2500);
    memset(&s, 0, sizeof(s));
    T_EQ_INT(hd_hostctl_foreach(st, txn, on_ctl, &s), 0);
    T_EQ_INT(s.n, 2); /* the generation key is not a host */
    T_EQ_STR(s.host[0], "a.example");
    T_EQ_STR(s.host[1], "b.example");
    T_EQ_INT(s.c[1].rate_milli, 2500);
    T_EQ_INT(hd_hostctl_get(st, txn, "", &c), HD_ERR_INVALID);
    hd_store_abort(txn);

    /* back to the defaults: the record goes away, the generation still moves */
    begin(&txn, 1);
    memset(&c, 0, sizeof(c));
    T_EQ_INT(hd_hostctl_put(st, txn, "a.example", &c), 0);
    T_EQ_INT(hd_hostctl_generation(st, txn), 3);
    memset(&s, 0, sizeof(s));
    T_EQ_INT(hd_hostctl_foreach(st, txn, on_ctl, &s), 0);
    T_EQ_INT(s.n, 1);
    T_EQ_INT(hd_store_commit(txn), 0);
}

static void test_live(void)
{
    struct hd_live l = {7, 16, 123456, 40, 900, 2, 1, 1795000000000ull}, o;
    struct hd_txn *txn;

    begin(&txn, 1);
    T_EQ_INT(hd_live_get(st, txn, "a.example", &o), HD_ERR_NOT_FOUND);
    T_EQ_INT(hd_live_put(st, txn, "a.example", &l), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    begin(&txn, 0);
    T_EQ_INT(hd_live_get(st, txn, "a.example", &o), 0);
    T_EQ_INT(o.in_flight, 7);
    T_EQ_INT(o.window, 16);
    T_EQ_INT(o.ok_per_s_milli, 123456);
    T_EQ_INT(o.p50_ms, 40);
    T_EQ_INT(o.p99_ms, 900);
    T_EQ_INT(o.breaker, 2);
    T_EQ_INT(o.dead, 1);
    T_EQ_INT(o.updated_ms, 1795000000000ull);
    hd_store_abort(txn);
    begin(&txn, 1);
    T_EQ_INT(hd_live_del(st, txn, "a.example"), 0);
    T_EQ_INT(hd_live_get(st, txn, "a.example", &o), HD_ERR_NOT_FOUND);
    T_EQ_INT(hd_store_commit(txn), 0);
}

static void test_reset(void)
{
    struct hd_host_rec h;
    struct hd_hostctl c;
    struct hd_txn *txn;

    memset(&h, 0, sizeof(h));
    h.queued = 5;
    h.done = 9;
    h.failed = 2;
    h.failures = 40;
    h.last_status = 503;
    snprintf(h.last_error, sizeof(h.last_error), "HTTP 503");
    h.last_fail_ms = 1234;
    h.last_ok_ms = 999;
    h.fail_days = 7;
    h.last_fail_day = 20000;
    h.dead = HD_HOST_DEAD;
    begin(&txn, 1);
    T_EQ_INT(hd_host_put(st, txn, "sick.example", 12, &h), 0);
    T_EQ_INT(hd_host_reset(st, txn, "sick.example"), 0);
    T_EQ_INT(hd_host_reset(st, txn, "never-seen.example"), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    begin(&txn, 0);
    T_EQ_INT(hd_host_get(st, txn, "sick.example", 12, &h), 0);
    T_EQ_INT(h.failures, 0);
    T_EQ_INT(h.fail_days, 0);
    T_EQ_INT(h.dead, HD_HOST_ALIVE);
    T_EQ_INT(h.last_status, 0);
    T_EQ_STR(h.last_error, "");
    T_EQ_INT(h.last_fail_ms, 0);
    /* what is history, not failure state, stays */
    T_EQ_INT(h.queued, 5);
    T_EQ_INT(h.done, 9);
    T_EQ_INT(h.failed, 2);
    T_EQ_INT(h.last_ok_ms, 999);
    T_EQ_INT(hd_hostctl_get(st, txn, "sick.example", &c), 0);
    T_EQ_INT(c.reset_gen, 1);
    T_EQ_INT(hd_hostctl_get(st, txn, "never-seen.example", &c), 0);
    T_EQ_INT(c.reset_gen, 1);
    hd_store_abort(txn);
}

static int on_gone(struct hd_slice inbox, uint64_t at_ms, int status, void *ud)
{
    int *n = ud;
    if (*n == 0) {
        T_OK(inbox.n == strlen("https://a.example/users/x/inbox"));
        T_EQ_INT(status, 410);
    } else {
        T_EQ_INT(status, 404);
    }
    T_OK(at_ms > 0);
    (*n)++;
    return 0;
}

static void test_gone(void)
{
    struct hd_txn *txn;
    int n = 0;
    begin(&txn, 1);
    T_EQ_INT(hd_gone_add(st, txn, "https://b.example/users/y/inbox", 404), 0);
    T_EQ_INT(hd_gone_add(st, txn, "https://a.example/users/x/inbox", 404), 0);
    T_EQ_INT(hd_gone_add(st, txn, "https://a.example/users/x/inbox", 410), 0); /* replaces */
    T_EQ_INT(hd_gone_add(st, txn, "", 410), HD_ERR_INVALID);
    T_EQ_INT(hd_store_commit(txn), 0);
    begin(&txn, 0);
    T_EQ_INT(hd_gone_foreach(st, txn, on_gone, &n), 0);
    T_EQ_INT(n, 2);
    hd_store_abort(txn);
}

/* ------------------------------------------------------------------ dead letters */

static uint64_t enqueue(const char *id, const char *const *inboxes, size_t n)
{
    return t_enqueue(st, id, "Create", NULL, inboxes, n);
}

/* Dead-letters every queued delivery of host whose inbox contains `match`. */
struct kill_ctx {
    struct hd_ack a[8];
    int n;
    const char *match;
};

static int on_kill(const struct hd_qent *e, void *ud)
{
    struct kill_ctx *k = ud;
    if (k->n < 8 && memmem(e->inbox.p, e->inbox.n, k->match, strlen(k->match))) {
        struct hd_ack *a = &k->a[k->n++];
        memset(a, 0, sizeof(*a));
        memcpy(a->key, e->key, e->keylen);
        a->keylen = (uint16_t)e->keylen;
        a->kind = HD_ACK_DEAD;
        a->status = 400;
        a->attempts = e->attempts + 1;
        snprintf(a->error, sizeof(a->error), "HTTP 400");
    }
    return 0;
}

static void dead_letter(const char *host, const char *match)
{
    struct kill_ctx k;
    struct hd_counters c;
    struct hd_txn *txn;
    uint8_t last[HD_QKEY_MAX];
    size_t last_len;
    int end;
    memset(&k, 0, sizeof(k));
    k.match = match;
    begin(&txn, 1);
    T_OK(hd_queue_scan(st, txn, host, NULL, 0, 100, on_kill, &k, last, &last_len, &end) >= 0);
    T_OK(k.n > 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(hd_queue_apply(st, txn, &c, k.a, (size_t)k.n, 3000, NULL), 0);
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
}

struct dead_seen {
    int n;
    char inbox[8][128];
    int status[8];
    uint32_t attempts[8];
};

static int on_dead(const struct hd_dead_view *d, void *ud)
{
    struct dead_seen *s = ud;
    if (s->n < 8) {
        snprintf(s->inbox[s->n], sizeof(s->inbox[0]), "%.*s", (int)d->inbox.n, d->inbox.p);
        s->status[s->n] = d->status;
        s->attempts[s->n] = d->attempts;
    }
    s->n++;
    return 0;
}

static int count_q(const struct hd_qent *e, void *ud)
{
    int *n = ud;
    if (e->attempts == 0)
        (*n)++;
    return 0;
}

static int queued_fresh(const char *host)
{
    struct hd_txn *txn;
    uint8_t last[HD_QKEY_MAX];
    size_t last_len;
    int end, n = 0;
    begin(&txn, 0);
    T_OK(hd_queue_scan(st, txn, host, NULL, 0, 100, count_q, &n, last, &last_len, &end) >= 0);
    hd_store_abort(txn);
    return n;
}

static uint32_t actrem(struct hd_txn *txn, const char *id)
{
    uint64_t seq;
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    T_EQ_INT(hd_queue_find_activity(st, txn, id, &seq), 0);
    hd_be64(kb, seq);
    if (hd_mdb_get(txn, st->actrem, &k, &v) != 0)
        return 0;
    return hd_rd32(v.mv_data);
}

static void test_dead(void)
{
    const char *in1[] = {"https://d.example/a/inbox", "https://d.example/b/inbox",
                         "https://e.example/inbox"};
    const char *in2[] = {"https://d.example/solo/inbox"};
    struct dead_seen s;
    struct hd_counters c;
    struct hd_host_rec h;
    struct hd_txn *txn;
    uint64_t moved = 0, skipped = 0, purged = 0;

    struct hd_act_view av;
    uint64_t x2, gen;

    enqueue("https://me.example/act/x1", in1, 3);
    x2 = enqueue("https://me.example/act/x2", in2, 1);
    dead_letter("d.example", "/a/");
    dead_letter("d.example", "/solo/"); /* the last delivery of x2 */

    begin(&txn, 0);
    memset(&s, 0, sizeof(s));
    T_EQ_INT(hd_dead_foreach(st, txn, "d.example", on_dead, &s), 0);
    T_EQ_INT(s.n, 2);
    T_EQ_STR(s.inbox[0], "https://d.example/a/inbox");
    T_EQ_INT(s.status[0], 400);
    T_EQ_INT(s.attempts[0], 1);
    memset(&s, 0, sizeof(s));
    T_EQ_INT(hd_dead_foreach(st, txn, "e.example", on_dead, &s), 0);
    T_EQ_INT(s.n, 0);
    memset(&s, 0, sizeof(s));
    T_EQ_INT(hd_dead_foreach(st, txn, NULL, on_dead, &s), 0);
    T_EQ_INT(s.n, 2);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(c.failed, 2);
    T_EQ_INT(hd_host_get(st, txn, "d.example", 9, &h), 0);
    T_EQ_INT(h.queued, 1);
    T_EQ_INT(h.failed, 2);
    hd_store_abort(txn);

    /* retry: both letters go back (a dead letter keeps its activity body alive) */
    begin(&txn, 1);
    gen = hd_hostctl_generation(st, txn);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(hd_dead_retry(st, txn, &c, "d.example", 5000, &moved, &skipped), 0);
    T_EQ_INT(hd_hostctl_generation(st, txn), gen + 1); /* a running engine rescans */
    T_EQ_INT(moved, 2);
    T_EQ_INT(skipped, 0);
    T_EQ_INT(c.failed, 0);
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    T_EQ_INT(queued_fresh("d.example"), 3);
    begin(&txn, 0);
    T_EQ_INT(hd_host_get(st, txn, "d.example", 9, &h), 0);
    T_EQ_INT(h.queued, 3);
    T_EQ_INT(h.failed, 0);
    memset(&s, 0, sizeof(s));
    T_EQ_INT(hd_dead_foreach(st, txn, NULL, on_dead, &s), 0);
    T_EQ_INT(s.n, 0);
    T_EQ_INT(actrem(txn, "https://me.example/act/x1"), 3);
    T_EQ_INT(actrem(txn, "https://me.example/act/x2"), 1);
    hd_store_abort(txn);

    /* a dead letter for a host the rules refuse is not requeued */
    dead_letter("e.example", "inbox");
    {
        struct hd_block b;
        memset(&b, 0, sizeof(b));
        snprintf(b.domain, sizeof(b.domain), "e.example");
        b.severity = HD_SEV_SUSPEND;
        begin(&txn, 1);
        T_EQ_INT(hd_block_put(st, txn, &b), 0);
        T_EQ_INT(hd_counters_get(st, txn, &c), 0);
        T_EQ_INT(hd_dead_retry(st, txn, &c, NULL, 6000, &moved, &skipped), 0);
        T_EQ_INT(moved, 0);
        T_EQ_INT(skipped, 1);
        T_EQ_INT(hd_block_del(st, txn, "e.example"), 0);
        T_EQ_INT(hd_store_commit(txn), 0);
    }

    /* purge: one host, then all; the last reference to a body drops it */
    dead_letter("d.example", "/solo/");
    begin(&txn, 1);
    T_EQ_INT(hd_dead_purge(st, txn, "e.example", &purged), 0);
    T_EQ_INT(purged, 1);
    T_EQ_INT(hd_queue_get_activity(st, txn, x2, &av), 0);
    T_EQ_INT(hd_dead_purge(st, txn, NULL, &purged), 0);
    T_EQ_INT(purged, 1);
    T_EQ_INT(hd_queue_get_activity(st, txn, x2, &av), HD_ERR_NOT_FOUND);
    T_EQ_INT(actrem(txn, "https://me.example/act/x1"), 2);
    memset(&s, 0, sizeof(s));
    T_EQ_INT(hd_dead_foreach(st, txn, NULL, on_dead, &s), 0);
    T_EQ_INT(s.n, 0);
    T_EQ_INT(hd_dead_purge(st, txn, "", &purged), HD_ERR_INVALID);
    T_EQ_INT(hd_store_commit(txn), 0);
}

/* Records in the dead-letter table whose keys are not letters' (host\0seq\idx): damage from
 * outside Herald. Listing, retry and purge skip them; purge used to take a seq from before
 * the start of its key buffer and count them as purged. */
static void test_dead_damaged(void)
{
    const char *in[] = {"https://g.example/u/1/inbox"};
    uint8_t longkey[300];
    MDB_val k1 = {3, "abc"}, k2 = {sizeof(longkey), longkey}, v = {1, "\x90"}, got;
    struct dead_seen s;
    struct hd_counters c;
    struct hd_txn *txn;
    uint64_t moved = 0, skipped = 0, purged = 0, x;
    struct hd_act_view av;

    x = enqueue("https://me.example/act/dmg", in, 1);
    dead_letter("g.example", "/u/1/");
    memset(longkey, 'z', sizeof(longkey));
    begin(&txn, 1);
    T_EQ_INT(hd_mdb_put(txn, st->dead, &k1, &v, 0), 0);
    T_EQ_INT(hd_mdb_put(txn, st->dead, &k2, &v, 0), 0);
    T_EQ_INT(hd_store_commit(txn), 0);

    begin(&txn, 1);
    memset(&s, 0, sizeof(s));
    T_EQ_INT(hd_dead_foreach(st, txn, NULL, on_dead, &s), 0);
    T_EQ_INT(s.n, 1);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(hd_dead_retry(st, txn, &c, NULL, 7000, &moved, &skipped), 0);
    T_EQ_INT(moved, 1);
    T_EQ_INT(skipped, 2);
    hd_store_abort(txn);

    begin(&txn, 1);
    T_EQ_INT(hd_dead_purge(st, txn, NULL, &purged), 0);
    T_EQ_INT(purged, 1);
    T_EQ_INT(hd_queue_get_activity(st, txn, x, &av), HD_ERR_NOT_FOUND); /* its last reference */
    T_EQ_INT(hd_mdb_get(txn, st->dead, &k1, &got), 0);    /* left alone */
    T_EQ_INT(hd_mdb_get(txn, st->dead, &k2, &got), 0);
    T_EQ_INT(hd_mdb_del(txn, st->dead, &k1, NULL), 0);
    T_EQ_INT(hd_mdb_del(txn, st->dead, &k2, NULL), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
}

/* Failures by class beside the live record: written, read back, not mixed with the live
 * record of the same host, a record of another layout refused, deleted with the live one. */
static void test_live_err(void)
{
    struct hd_txn *txn;
    struct hd_errwin w, o;
    struct hd_live l = {.in_flight = 1, .updated_ms = 1795000000000ull}, lo;
    struct hd_enc e;
    char kb[64];
    MDB_val k, v;

    memset(&w, 0, sizeof(w));
    hd_errwin_add(&w, HD_EC_DNS, 1795000000000ull);
    hd_errwin_add(&w, HD_EC_404, 1795000000000ull);
    begin(&txn, 1);
    T_EQ_INT(hd_live_err_get(st, txn, "e.example", &o), HD_ERR_NOT_FOUND);
    T_EQ_INT(hd_live_put(st, txn, "e.example", &l), 0);
    T_EQ_INT(hd_live_err_put(st, txn, "e.example", &w), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    begin(&txn, 0);
    T_EQ_INT(hd_live_err_get(st, txn, "e.example", &o), 0);
    T_OK(memcmp(&o, &w, sizeof(w)) == 0);
    T_EQ_INT(hd_live_get(st, txn, "e.example", &lo), 0);
    T_EQ_INT(lo.in_flight, 1);
    T_EQ_INT(hd_live_err_get(st, txn, "f.example", &o), HD_ERR_NOT_FOUND);
    hd_store_abort(txn);

    /* another class count (an older or newer build) reads as a schema error */
    memcpy(kb, "g.example", 9);
    kb[9] = 0;
    kb[10] = 'e';
    k.mv_data = kb;
    k.mv_size = 11;
    hd_enc_init(&e);
    hd_enc_array(&e, 3);
    hd_enc_uint(&e, 1);
    hd_enc_uint(&e, HD_EC__COUNT + 1);
    hd_enc_bin(&e, &w, sizeof(w));
    v.mv_data = e.buf;
    v.mv_size = e.len;
    begin(&txn, 1);
    T_EQ_INT(hd_mdb_put(txn, st->live, &k, &v, 0), 0);
    hd_enc_fini(&e);
    T_EQ_INT(hd_live_err_get(st, txn, "g.example", &o), HD_ERR_SCHEMA);
    T_EQ_INT(hd_live_del(st, txn, "e.example"), 0);
    T_EQ_INT(hd_live_err_get(st, txn, "e.example", &o), HD_ERR_NOT_FOUND);
    T_EQ_INT(hd_live_get(st, txn, "e.example", &lo), HD_ERR_NOT_FOUND);
    T_EQ_INT(hd_live_del(st, txn, "e.example"), 0); /* absent: fine */
    T_EQ_INT(hd_store_commit(txn), 0);
}

int main(void)
{
    char dir[] = "/tmp/hd-test-hostctl-XXXXXX", path[256];

    T_OK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/db", dir);
    T_EQ_INT(hd_store_open(&st, path, 64), 0);
    test_hostctl();
    test_live();
    test_live_err();
    test_reset();
    test_gone();
    test_dead();
    test_dead_damaged();
    hd_store_close(st);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    T_EQ_INT(system(path), 0);
    T_DONE();
}

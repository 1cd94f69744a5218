/* libFuzzer target: msgpack records read back from a damaged store. A temporary store is
 * filled once through the engine's own writers (key, actor, activity with queued deliveries on
 * two hosts, a dead letter, follows, a block, an allow, host controls, live state, a gone
 * inbox). Each input then, inside a write transaction that is aborted afterwards:
 *   byte 0      which DBI to damage (modulo the list below)
 *   byte 1      length K of an extra key (0: none)
 *   K bytes     that key; the rest is the damaged value
 * overwrites the value of every record of that DBI with the rest (and puts the extra key),
 * then runs every reader over the store: queue scan, activities, host records, dead letters,
 * follows, audiences, rules, host controls, live state, gone list, counters, keys, actors,
 * the cancellation look-ups (objhosts), and then the writers that walk stored records: drops
 * of a host's and of an actor's deliveries, rule enforcement, dead-letter retry and purge.
 * They must report damage (HD_ERR_INVALID / HD_ERR_SCHEMA / a store error), never crash.
 * The raw input also goes through hd_dec_record directly. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_impl.h" /* reads tables directly */
#include "audience.h"
#include "codec.h"
#include "enforce.h"
#include "hostctl.h"
#include "ingest.h"
#include "keyadd.h"
#include "keys.h"
#include "log.h"
#include "queue.h"
#include "rules.h"
#include "store.h"

#ifndef HD_FUZZ_KEY
#define HD_FUZZ_KEY "tests/data/keys/test-only-rsa2048.pem"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ACTOR "https://social.example/users/alice"

static const char ENVELOPE[] =
    "{\"activity\":{\"id\":\"https://social.example/a/1\",\"type\":\"Create\",\"actor\":\"" ACTOR
    "\",\"object\":{\"id\":\"https://social.example/n/1\",\"type\":\"Note\"}},\"inboxes\":["
    "\"https://a.example/inbox\",\"https://b.example/users/x/inbox\"]}";

static void must(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "fuzz_store_records: set-up failed at %s: %d\n", what, rc);
        abort();
    }
}

static int count_q(const struct hd_qent *e, void *ud)
{
    (void)e;
    (*(size_t *)ud)++;
    return 0;
}

static int count_dead(const struct hd_dead_view *d, void *ud)
{
    (void)d;
    (*(size_t *)ud)++;
    return 0;
}

static int count_follow(const struct hd_follow_view *f, void *ud)
{
    (void)f;
    (*(size_t *)ud)++;
    return 0;
}

static int count_aud(const struct hd_aud_inbox *in, void *ud)
{
    (void)in;
    (*(size_t *)ud)++;
    return 0;
}

static int count_block(const struct hd_block *b, void *ud)
{
    (void)b;
    (*(size_t *)ud)++;
    return 0;
}

static int count_allow(const char *d, uint64_t ms, void *ud)
{
    (void)d;
    (void)ms;
    (*(size_t *)ud)++;
    return 0;
}

static int count_ctl(const char *h, const struct hd_hostctl *c, void *ud)
{
    (void)h;
    (void)c;
    (*(size_t *)ud)++;
    return 0;
}

static int count_gone(struct hd_slice inbox, uint64_t at, int status, void *ud)
{
    (void)inbox;
    (void)at;
    (void)status;
    (*(size_t *)ud)++;
    return 0;
}

static struct hd_store *setup(void)
{
    static struct hd_store *st;
    char dir[] = "/tmp/hd-fuzz-store-XXXXXX", pem[8192];
    const char *why = NULL;
    struct hd_ingest_result res;
    struct hd_follow_batch *b;
    struct hd_follow_stats fs = {0, 0, 0, 0, 0};
    struct hd_follow f = {ACTOR, "https://c.example/users/y", "https://c.example/users/y/inbox",
                          "https://c.example/inbox"};
    struct hd_block bl;
    struct hd_hostctl ctl = {1, 3, 2000, 0};
    struct hd_live live;
    struct hd_counters c;
    struct hd_ack ack;
    uint8_t key[HD_QKEY_MAX];
    struct hd_txn *txn;
    FILE *fp;
    size_t n;

    if (st)
        return st;
    hd_log_level = HD_LOG_ERROR;
    fp = fopen(HD_FUZZ_KEY, "r");
    if (!fp || !mkdtemp(dir))
        must(-1, "key file / temp dir");
    n = fread(pem, 1, sizeof(pem), fp);
    fclose(fp);
    must(hd_store_open(&st, dir, 1024), "open");
    must(hd_keys_add(st, ACTOR "#main-key", ACTOR, pem, n, &why), "key");
    must(hd_store_begin(st, 1, &txn), "begin");
    must(hd_counters_get(st, txn, &c), "counters");
    must(hd_ingest_envelope(st, txn, &c, ENVELOPE, sizeof(ENVELOPE) - 1, 1700000000000ull, &res),
         "enqueue");
    memset(&ack, 0, sizeof(ack));
    ack.keylen = (uint16_t)hd_queue_key(ack.key, "a.example", res.seq, 0);
    ack.kind = HD_ACK_DEAD;
    ack.status = 403;
    ack.attempts = 1;
    snprintf(ack.error, sizeof(ack.error), "HTTP 403");
    ack.body_len = 9;
    memcpy(ack.body, "forbidden", 9);
    must(hd_queue_apply(st, txn, &c, &ack, 1, 1700000000000ull, NULL), "dead letter");
    must(hd_counters_put(st, txn, &c), "counters put");
    must(hd_follow_batch_new(&b), "batch");
    must(hd_follow_batch_add(b, &f, 0, &why), "follow");
    must(hd_follow_batch_apply(st, txn, b, &fs), "follow apply");
    hd_follow_batch_free(b);
    memset(&bl, 0, sizeof(bl));
    snprintf(bl.domain, sizeof(bl.domain), "spam.example");
    bl.severity = HD_SEV_SUSPEND;
    snprintf(bl.comment, sizeof(bl.comment), "spam");
    must(hd_block_put(st, txn, &bl), "block");
    must(hd_allow_put(st, txn, "friends.example", 1), "allow");
    must(hd_hostctl_put(st, txn, "b.example", &ctl), "hostctl");
    memset(&live, 0, sizeof(live));
    live.in_flight = 2;
    live.window = 4;
    live.updated_ms = 1700000000000ull;
    must(hd_live_put(st, txn, "b.example", &live), "live");
    must(hd_gone_add(st, txn, "https://b.example/users/x/inbox", 410), "gone");
    must(hd_store_commit(txn), "commit");
    (void)key;
    return st;
}

static void read_everything(struct hd_store *st, struct hd_txn *txn)
{
    static const char *const hosts[] = {"a.example", "b.example", "c.example"};
    struct hd_counters c;
    struct hd_host_rec h;
    struct hd_act_view av;
    struct hd_hostctl ctl;
    struct hd_live live;
    struct hd_slice s;
    struct hd_rules *r = NULL;
    uint8_t last[HD_QKEY_MAX];
    size_t n = 0, last_len;
    const uint64_t after[2] = {1, 0};
    uint64_t a, b, seq;
    int end, fed, mode;

    (void)hd_counters_get(st, txn, &c);
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        (void)hd_host_get(st, txn, hosts[i], strlen(hosts[i]), &h);
        (void)hd_queue_scan(st, txn, hosts[i], NULL, 0, 64, count_q, &n, last, &last_len, &end);
        (void)hd_queue_blocked(st, txn, hosts[i], after);
        (void)hd_hostctl_get(st, txn, hosts[i], &ctl);
        (void)hd_live_get(st, txn, hosts[i], &live);
        (void)hd_rules_check(st, txn, hosts[i]);
    }
    for (seq = 0; seq < 4; seq++)
        (void)hd_queue_get_activity(st, txn, seq, &av);
    (void)hd_queue_find_activity(st, txn, "https://social.example/a/1", &seq);
    (void)hd_dead_foreach(st, txn, NULL, count_dead, &n);
    (void)hd_follow_list(st, txn, ACTOR, count_follow, &n);
    (void)hd_follow_count(st, txn, ACTOR, &a, &b);
    (void)hd_audience_foreach(st, txn, ACTOR, count_aud, &n);
    (void)hd_audience_has(st, txn, ACTOR, "https://c.example/inbox");
    (void)hd_block_foreach(st, txn, count_block, &n);
    (void)hd_allow_foreach(st, txn, count_allow, &n);
    (void)hd_rules_mode_get(st, txn, &mode);
    if (hd_rules_load(st, txn, &r) == 0) {
        (void)hd_rules_allows(r, "spam.example");
        hd_rules_free(r);
    }
    (void)hd_hostctl_foreach(st, txn, count_ctl, &n);
    (void)hd_gone_foreach(st, txn, count_gone, &n);
    (void)hd_keys_get_pem(st, txn, ACTOR "#main-key", &s);
    (void)hd_actor_get(st, txn, ACTOR, strlen(ACTOR), &s, &fed);
    (void)hd_actor_get_ed(st, txn, ACTOR, strlen(ACTOR), &s);
    for (seq = 0; seq < 4; seq++) {
        struct hd_qref refs[4];
        uint64_t chain[4], del;
        for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
            (void)hd_queue_host_got(st, txn, hosts[i], seq);
            (void)hd_queue_entries(st, txn, hosts[i], seq, refs, 4);
        }
        (void)hd_queue_delete_of(st, txn, "https://social.example/n/1", seq, &del);
        (void)hd_queue_chain(st, txn, seq + 1, seq, chain, 4);
    }
    {
        struct hd_host_sum sum;
        (void)hd_host_sum(st, txn, &sum);
    }
}

/* The writers that walk stored records, inside the write transaction the caller aborts. */
static void write_everything(struct hd_store *st, struct hd_txn *txn)
{
    struct hd_counters c;
    struct hd_rules *r = NULL;
    uint64_t n, m;

    memset(&c, 0, sizeof(c));
    (void)hd_queue_drop(st, txn, &c, "b.example", NULL, &n);
    (void)hd_queue_drop(st, txn, &c, NULL, ACTOR, &n);
    if (hd_rules_load(st, txn, &r) == 0) {
        (void)hd_rules_enforce(st, txn, &c, r, &n, &m);
        hd_rules_free(r);
    }
    (void)hd_dead_retry(st, txn, &c, NULL, 1700000000000ull, &n, &m);
    (void)hd_dead_purge(st, txn, NULL, &n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hd_store *st = setup();
    const MDB_dbi dbis[] = {st->meta,     st->keys,     st->actors,   st->acts,    st->actrem,
                            st->actid,    st->queue,    st->hosts,    st->dead,    st->fwactors,
                            st->follows,  st->audience, st->objseq,   st->rules,   st->hostctl,
                            st->live,     st->gone,     st->objhosts};
    struct hd_dec d;
    MDB_cursor *cur;
    struct hd_txn *txn;
    MDB_val k, v;
    static uint8_t keys[64][512];
    size_t klens[64], nk = 0, klen;
    MDB_dbi dbi;
    int op;

    for (uint64_t ver = 0; ver < 3; ver++)
        if (hd_dec_record(&d, data, size, ver, 1) == 0 && d.n > HD_DEC_MAX_FIELDS)
            abort();
    if (size < 2)
        return 0;
    klen = data[1];
    if (klen > size - 2 || klen > 500)
        return 0;
    if (hd_store_begin(st, 1, &txn) != 0)
        abort();
    dbi = dbis[data[0] % (sizeof(dbis) / sizeof(dbis[0]))];
    if (hd_mdb_cursor_open(txn, dbi, &cur) == 0) {
        v.mv_data = (void *)(uintptr_t)(data + 2 + klen);
        v.mv_size = size - 2 - klen;
        /* Keys are copied out and the records deleted and put again: LMDB's in-place
         * MDB_CURRENT overwrite with a different size trips ASan (memcpy-param-overlap inside
         * liblmdb), which would be a harness artefact, not a Herald bug. */
        for (op = MDB_FIRST; nk < 64 && mdb_cursor_get(cur, &k, NULL, op) == 0; op = MDB_NEXT) {
            if (k.mv_size > sizeof(keys[0]))
                continue;
            memcpy(keys[nk], k.mv_data, k.mv_size);
            klens[nk++] = k.mv_size;
        }
        for (size_t i = 0; i < nk; i++) {
            k.mv_data = keys[i];
            k.mv_size = klens[i];
            if (hd_mdb_del(txn, dbi, &k, NULL) != 0 || hd_mdb_put(txn, dbi, &k, &v, 0) != 0)
                break;
        }
        if (klen > 0) {
            k.mv_data = (void *)(uintptr_t)(data + 2);
            k.mv_size = klen;
            (void)hd_mdb_put(txn, dbi, &k, &v, 0);
        }
        mdb_cursor_close(cur);
    }
    read_everything(st, txn);
    write_everything(st, txn);
    hd_store_abort(txn);
    return 0;
}

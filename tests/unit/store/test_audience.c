/* Audiences: follows and reference counts through add / update / remove, de-duplication
 * across followers and explicit recipients, the three federation choices, and ordering
 * (an Update/Delete/Undo never overtakes its Create or the activity it undoes). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audience.h"
#include "err.h"
#include "ingest.h"
#include "keyadd.h"
#include "keys.h"
#include "queue.h"
#include "store.h"
#include "t.h"
#include "t_queue.h"
#include "url.h"

#define ALICE "https://a.example/u/al"
#define PUB "\"to\":[\"https://www.w3.org/ns/activitystreams#Public\"]"

static struct hd_store *st;
static char *g_pem;
static size_t g_pem_len;

/* Applies one follow operation; returns the stats. */
static struct hd_follow_stats follow(const char *actor, const char *follower, const char *inbox,
                                     const char *shared, int remove)
{
    struct hd_follow f = {actor, follower, inbox, shared};
    struct hd_follow_stats s = {0, 0, 0, 0, 0};
    struct hd_follow_batch *b;
    const char *why;
    struct hd_txn *txn;

    T_EQ_INT(hd_follow_batch_new(&b), 0);
    T_EQ_INT(hd_follow_batch_add(b, &f, remove, &why), 0);
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_follow_batch_apply(st, txn, b, &s), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    hd_follow_batch_free(b);
    return s;
}

struct inboxes {
    char url[32][128];
    uint32_t refs[32], shared[32];
    int n;
};

static int on_inbox(const struct hd_aud_inbox *in, void *ud)
{
    struct inboxes *x = ud;
    if (x->n >= 32)
        return 1;
    snprintf(x->url[x->n], sizeof(x->url[0]), "%.*s", (int)in->url_len, in->url);
    x->refs[x->n] = in->refs;
    x->shared[x->n] = in->shared_refs;
    x->n++;
    return 0;
}

static void audience(const char *actor, struct inboxes *x)
{
    struct hd_txn *txn;
    memset(x, 0, sizeof(*x));
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_audience_foreach(st, txn, actor, on_inbox, x), 0);
    hd_store_abort(txn);
}

static uint32_t refs_of(const struct inboxes *x, const char *url)
{
    for (int i = 0; i < x->n; i++)
        if (!strcmp(x->url[i], url))
            return x->refs[i];
    return 0;
}

static void counts(const char *actor, uint64_t *f, uint64_t *i)
{
    struct hd_txn *txn;
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_follow_count(st, txn, actor, f, i), 0);
    hd_store_abort(txn);
}

static void test_refcounts(void)
{
    struct hd_follow_stats s;
    struct inboxes x;
    uint64_t nf, ni;
    const char *why;
    struct hd_follow bad = {ALICE, "https://b.example/u/x", "ftp://b.example/inbox", NULL};
    struct hd_follow_batch *b;

    s = follow(ALICE, "https://b.example/u/bob", "https://b.example/u/bob/inbox",
               "https://b.example/inbox", 0);
    T_EQ_INT(s.added, 1);
    /* adding twice is one follow */
    s = follow(ALICE, "https://b.example/u/bob", "https://b.example/u/bob/inbox",
               "https://b.example/inbox", 0);
    T_EQ_INT(s.unchanged, 1);
    s = follow(ALICE, "https://b.example/u/carol", "https://b.example/u/carol/inbox",
               "https://B.EXAMPLE:443/inbox", 0); /* normalised: same shared inbox */
    T_EQ_INT(s.added, 1);
    s = follow(ALICE, "https://c.example/dave", "https://c.example/dave/inbox", NULL, 0);
    T_EQ_INT(s.added, 1);
    audience(ALICE, &x);
    T_EQ_INT(x.n, 2);
    T_EQ_INT(refs_of(&x, "https://b.example/inbox"), 2);
    T_EQ_INT(refs_of(&x, "https://c.example/dave/inbox"), 1);
    counts(ALICE, &nf, &ni);
    T_EQ_INT(nf, 3);
    T_EQ_INT(ni, 2);

    /* update: carol loses her shared inbox -> her own inbox becomes a delivery inbox */
    s = follow(ALICE, "https://b.example/u/carol", "https://b.example/u/carol/inbox", NULL, 0);
    T_EQ_INT(s.updated, 1);
    audience(ALICE, &x);
    T_EQ_INT(x.n, 3);
    T_EQ_INT(refs_of(&x, "https://b.example/inbox"), 1);
    T_EQ_INT(refs_of(&x, "https://b.example/u/carol/inbox"), 1);
    /* update: dave moves to a shared inbox bob also uses */
    s = follow(ALICE, "https://c.example/dave", "https://c.example/dave/inbox2",
               "https://b.example/inbox", 0);
    T_EQ_INT(s.updated, 1);
    audience(ALICE, &x);
    T_EQ_INT(x.n, 2);
    T_EQ_INT(refs_of(&x, "https://b.example/inbox"), 2);
    T_EQ_INT(refs_of(&x, "https://c.example/dave/inbox"), 0);

    /* remove; removing an absent follow is a no-op that says so */
    s = follow(ALICE, "https://b.example/u/bob", NULL, NULL, 1);
    T_EQ_INT(s.removed, 1);
    s = follow(ALICE, "https://b.example/u/bob", NULL, NULL, 1);
    T_EQ_INT(s.absent, 1);
    s = follow("https://nobody.example/x", "https://b.example/u/bob", NULL, NULL, 1);
    T_EQ_INT(s.absent, 1);
    audience(ALICE, &x);
    T_EQ_INT(refs_of(&x, "https://b.example/inbox"), 1);
    /* the last follower leaving an inbox removes it */
    s = follow(ALICE, "https://c.example/dave", NULL, NULL, 1);
    T_EQ_INT(s.removed, 1);
    audience(ALICE, &x);
    T_EQ_INT(x.n, 1);
    T_EQ_STR(x.url[0], "https://b.example/u/carol/inbox");
    counts(ALICE, &nf, &ni);
    T_EQ_INT(nf, 1);
    T_EQ_INT(ni, 1);

    /* bad input changes nothing */
    T_EQ_INT(hd_follow_batch_new(&b), 0);
    T_EQ_INT(hd_follow_batch_add(b, &bad, 0, &why), HD_ERR_INVALID);
    T_OK(why != NULL);
    bad.inbox = NULL;
    T_EQ_INT(hd_follow_batch_add(b, &bad, 0, &why), HD_ERR_INVALID);
    bad.inbox = "https://b.example/i";
    bad.follower = "has space";
    T_EQ_INT(hd_follow_batch_add(b, &bad, 0, &why), HD_ERR_INVALID);
    T_EQ_INT(hd_follow_batch_len(b), 0);

    /* within one batch the last operation on a follower wins, in any key order */
    {
        struct hd_follow f1 = {ALICE, "https://z.example/u/1", "https://z.example/u/1/inbox",
                               NULL};
        struct hd_follow f2 = {ALICE, "https://z.example/u/1", "https://z.example/u/1/inbox",
                               "https://z.example/inbox"};
        struct hd_follow f3 = {ALICE, "https://a.example/u/0", "https://a.example/u/0/inbox",
                               "https://z.example/inbox"};
        struct hd_follow_stats s2 = {0, 0, 0, 0, 0};
        struct hd_txn *txn;
        T_EQ_INT(hd_follow_batch_add(b, &f1, 0, &why), 0);
        T_EQ_INT(hd_follow_batch_add(b, &f2, 0, &why), 0);
        T_EQ_INT(hd_follow_batch_add(b, &f3, 0, &why), 0);
        T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
        T_EQ_INT(hd_follow_batch_apply(st, txn, b, &s2), 0);
        T_EQ_INT(hd_store_commit(txn), 0);
        T_EQ_INT(s2.added, 2);
        audience(ALICE, &x);
        T_EQ_INT(refs_of(&x, "https://z.example/inbox"), 2);
        T_EQ_INT(refs_of(&x, "https://z.example/u/1/inbox"), 0);
        T_EQ_INT(hd_follow_batch_len(b), 0);
    }
    hd_follow_batch_free(b);
    /* clean up for the next tests */
    follow(ALICE, "https://z.example/u/1", NULL, NULL, 1);
    follow(ALICE, "https://a.example/u/0", NULL, NULL, 1);
    follow(ALICE, "https://b.example/u/carol", NULL, NULL, 1);
    counts(ALICE, &nf, &ni);
    T_EQ_INT(nf, 0);
    T_EQ_INT(ni, 0);
}

struct model_ctx {
    const int *last_shared; /* per follower: -1 removed, else its shared-inbox host */
    int seen, bad;
};

static int on_model(const struct hd_follow_view *f, void *ud)
{
    struct model_ctx *m = ud;
    int i, h;
    char want[128];
    if (sscanf(f->follower, "https://m%d.example/u/x", &i) != 1 || i < 0 || i >= 3000) {
        m->bad++;
        return 0;
    }
    h = m->last_shared[i];
    snprintf(want, sizeof(want), "https://s%d.example/inbox", h);
    if (h < 0 || !f->shared_inbox || strcmp(f->shared_inbox, want))
        m->bad++;
    m->seen++;
    return 0;
}

/* Many operations in one batch, in random order, with repeats: the sort (multikey
 * quicksort over shared prefixes) must leave the last operation per follower in force, and
 * the reference counts must match. */
static void test_batch_model(void)
{
    const char *A2 = "https://a.example/u/model";
    static int last[3000];
    struct hd_follow_batch *b;
    struct hd_follow_stats s = {0, 0, 0, 0, 0};
    struct model_ctx m = {last, 0, 0};
    struct inboxes x;
    uint64_t seed = 42, nf, ni, want_f = 0;
    int refs[20] = {0}, want_i = 0;
    const char *why;
    struct hd_txn *txn;

    for (int i = 0; i < 3000; i++)
        last[i] = -1;
    T_EQ_INT(hd_follow_batch_new(&b), 0);
    for (int k = 0; k < 20000; k++) {
        char fol[64], inb[80], sh[64];
        struct hd_follow f = {A2, fol, inb, sh};
        int i, h, rm;
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        i = (int)((seed >> 33) % 3000);
        h = (int)((seed >> 20) % 20);
        rm = ((seed >> 10) % 7) == 0;
        snprintf(fol, sizeof(fol), "https://m%d.example/u/x", i);
        snprintf(inb, sizeof(inb), "https://m%d.example/u/x/inbox", i);
        snprintf(sh, sizeof(sh), "https://s%d.example/inbox", h);
        T_EQ_INT(hd_follow_batch_add(b, &f, rm, &why), 0);
        last[i] = rm ? -1 : h;
    }
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_follow_batch_apply(st, txn, b, &s), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    hd_follow_batch_free(b);
    for (int i = 0; i < 3000; i++)
        if (last[i] >= 0) {
            want_f++;
            refs[last[i]]++;
        }
    for (int h = 0; h < 20; h++)
        want_i += refs[h] > 0;
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_follow_list(st, txn, A2, on_model, &m), 0);
    hd_store_abort(txn);
    T_EQ_INT(m.bad, 0);
    T_EQ_INT(m.seen, want_f);
    counts(A2, &nf, &ni);
    T_EQ_INT(nf, want_f);
    T_EQ_INT(ni, want_i);
    audience(A2, &x);
    for (int h = 0; h < 20; h++) {
        char u[64];
        snprintf(u, sizeof(u), "https://s%d.example/inbox", h);
        T_EQ_INT(refs_of(&x, u), refs[h]);
    }
}

struct one_view {
    char inbox[600], shared[600];
    int n;
};

static int on_one(const struct hd_follow_view *f, void *ud)
{
    struct one_view *o = ud;
    snprintf(o->inbox, sizeof(o->inbox), "%s", f->inbox);
    snprintf(o->shared, sizeof(o->shared), "%s", f->shared_inbox ? f->shared_inbox : "");
    o->n++;
    return 0;
}

/* The import's normalisation (origin cache + plain paths) must equal hd_url_parse +
 * hd_url_format for every URL, and refuse what they refuse. */
static void test_normalise(void)
{
    static const char *const urls[] = {
        "https://h.example/users/a/inbox", "HTTPS://H.Example:443/users/a/inbox",
        "https://h.example:8443/i", "http://h.example:80/x?y=1", "http://h.example:8080/x",
        "https://h.example./users/a", "https://h.example/p%41th", "https://h.example/a b",
        "https://h.example/a#frag", "https://h.example/caf\xc3\xa9", "https://u@h.example/x",
        "https://[::1]:8443/in", "https://127.0.0.1/in", "https://bücher.example/in",
        "https://h.example", "https://h.example?q", "https://h.example/a\\b",
        "ftp://h.example/x", "https://h.example/~u/(x)!$&'*+,;=:@/in", "https://h_x.example/i",
    };
    const char *A3 = "https://a.example/u/norm";
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        struct hd_follow f = {A3, "https://f.example/x", urls[i], urls[i]};
        struct hd_follow_stats s = {0, 0, 0, 0, 0};
        struct hd_follow_batch *b;
        struct one_view o;
        struct hd_url u;
        char want[HD_URL_MAX + HD_HOST_MAX + 16];
        const char *why;
        int ok = hd_url_parse(urls[i], &u) == 0 && hd_url_format(&u, want, sizeof(want)) == 0;
        struct hd_txn *txn;

        T_EQ_INT(hd_follow_batch_new(&b), 0);
        if (!ok) {
            T_EQ_INT(hd_follow_batch_add(b, &f, 0, &why), HD_ERR_INVALID);
            hd_follow_batch_free(b);
            continue;
        }
        T_EQ_INT(hd_follow_batch_add(b, &f, 0, &why), 0);
        T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
        T_EQ_INT(hd_follow_batch_apply(st, txn, b, &s), 0);
        T_EQ_INT(hd_store_commit(txn), 0);
        hd_follow_batch_free(b);
        memset(&o, 0, sizeof(o));
        T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
        T_EQ_INT(hd_follow_list(st, txn, A3, on_one, &o), 0);
        hd_store_abort(txn);
        T_EQ_INT(o.n, 1);
        T_EQ_STR(o.inbox, want);
        T_EQ_STR(o.shared, want);
    }
    follow(A3, "https://f.example/x", NULL, NULL, 1);
}

static int ingest(const char *line, struct hd_ingest_result *res)
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

struct qlist {
    char inbox[64][128];
    uint64_t seq[64];
    uint8_t key[64][HD_QKEY_MAX];
    size_t keylen[64];
    uint32_t flags[64];
    int n;
};

static int on_q(const struct hd_qent *e, void *ud)
{
    struct qlist *q = ud;
    if (q->n >= 64)
        return 1;
    snprintf(q->inbox[q->n], sizeof(q->inbox[0]), "%.*s", (int)e->inbox.n, e->inbox.p);
    q->seq[q->n] = e->seq;
    memcpy(q->key[q->n], e->key, e->keylen);
    q->keylen[q->n] = e->keylen;
    q->flags[q->n] = e->flags;
    q->n++;
    return 0;
}

/* Appends host's queued deliveries to q. */
static void scan(const char *host, struct qlist *q)
{
    struct hd_txn *txn;
    uint8_t last[HD_QKEY_MAX];
    size_t last_len;
    int end;
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_OK(hd_queue_scan(st, txn, host, NULL, 0, 64, on_q, q, last, &last_len, &end) >= 0);
    hd_store_abort(txn);
}

static int count_for(const struct qlist *q, uint64_t seq, const char *inbox)
{
    int n = 0;
    for (int i = 0; i < q->n; i++)
        if (q->seq[i] == seq && (!inbox || !strcmp(q->inbox[i], inbox)))
            n++;
    return n;
}

static uint64_t host_queued(const char *host);

static void test_dedup(void)
{
    struct hd_ingest_result r;
    struct qlist q;
    char env[2048];
    const char *why;

    follow(ALICE, "https://b.example/u/bob", "https://b.example/u/bob/inbox",
           "https://b.example/inbox", 0);
    follow(ALICE, "https://b.example/u/carol", "https://b.example/u/carol/inbox",
           "https://b.example/inbox", 0);
    follow(ALICE, "https://c.example/dave", "https://c.example/dave/inbox", NULL, 0);
    /* explicit: a new inbox; a mention whose shared inbox is the followers' (no delivery); a
     * new shared inbox and then its member's personal inbox (one delivery); a follower's own
     * inbox (already there); the same URL twice, spelled differently (one delivery). */
    snprintf(env, sizeof(env),
             "{\"activity\":{\"id\":\"https://a.example/act/d1\",\"type\":\"Create\","
             "\"actor\":\"%s\",\"object\":{\"id\":\"https://a.example/n/d1\"," PUB "}},"
             "\"to_followers\":true,\"inboxes\":[\"https://x.example/inbox\","
             "{\"inbox\":\"https://b.example/u/zed/inbox\",\"shared_inbox\":"
             "\"https://b.example/inbox\"},"
             "{\"inbox\":\"https://y.example/u/inbox\",\"shared_inbox\":\"https://y.example/inbox\"},"
             "\"https://y.example/u/inbox\",\"https://c.example/dave/inbox\","
             "\"https://X.example:443/inbox\"]}",
             ALICE);
    T_EQ_INT(ingest(env, &r), 0);
    /* b shared, c dave, x, y shared */
    T_EQ_INT(r.deliveries, 4);
    memset(&q, 0, sizeof(q));
    scan("b.example", &q);
    scan("c.example", &q);
    scan("x.example", &q);
    scan("y.example", &q);
    T_EQ_INT(count_for(&q, r.seq, NULL), 4);
    T_EQ_INT(count_for(&q, r.seq, "https://b.example/inbox"), 1);
    T_EQ_INT(count_for(&q, r.seq, "https://c.example/dave/inbox"), 1);
    T_EQ_INT(count_for(&q, r.seq, "https://x.example/inbox"), 1);
    T_EQ_INT(count_for(&q, r.seq, "https://y.example/inbox"), 1);
    /* per-host queued counts are aggregated, not lost */
    T_EQ_INT(host_queued("b.example"), 1);
    T_EQ_INT(host_queued("c.example"), 1);
    T_EQ_INT(host_queued("x.example"), 1);
    T_EQ_INT(host_queued("y.example"), 1);
    for (int i = 0; i < q.n; i++)
        T_EQ_INT(q.flags[i] & HD_QF_SHARED,
                 strstr(q.inbox[i], "dave") || strstr(q.inbox[i], "x.example") ? 0 : HD_QF_SHARED);

    /* without to_followers only the explicit ones (de-duplicated among themselves) */
    snprintf(env, sizeof(env),
             "{\"activity\":{\"id\":\"https://a.example/act/d2\",\"type\":\"Like\","
             "\"actor\":\"%s\",\"object\":\"https://b.example/n/9\"},"
             "\"inboxes\":[{\"inbox\":\"https://b.example/u/bob/inbox\",\"shared_inbox\":null},"
             "\"https://b.example/u/bob/inbox\"]}",
             ALICE);
    T_EQ_INT(ingest(env, &r), 0);
    T_EQ_INT(r.deliveries, 1);
    /* a follower list and no explicit recipient */
    snprintf(env, sizeof(env),
             "{\"activity\":{\"id\":\"https://a.example/act/d3\",\"type\":\"Announce\","
             "\"actor\":\"%s\",\"object\":\"https://b.example/n/9\"," PUB "},"
             "\"to_followers\":true}",
             ALICE);
    T_EQ_INT(ingest(env, &r), 0);
    T_EQ_INT(r.deliveries, 2);
    /* an actor nobody follows: to_followers adds nothing, explicit recipients still go */
    T_EQ_INT(hd_keys_add(st, "https://a.example/u/lonely#key", "https://a.example/u/lonely",
                         g_pem, g_pem_len, &why), 0);
    T_EQ_INT(ingest("{\"activity\":{\"id\":\"https://a.example/act/l1\",\"type\":\"Create\","
                    "\"actor\":\"https://a.example/u/lonely\",\"object\":{\"id\":\"https://"
                    "a.example/n/l1\"}},\"to_followers\":true,\"inboxes\":[\"https://q.example/"
                    "inbox\"]}",
                    &r),
             0);
    T_EQ_INT(r.deliveries, 1);
    /* bad recipients refuse the envelope */
    snprintf(env, sizeof(env),
             "{\"activity\":{\"id\":\"https://a.example/act/d4\",\"type\":\"Like\","
             "\"actor\":\"%s\",\"object\":\"x\"},\"inboxes\":[{\"inbox\":\"https://b.example/i\","
             "\"sharedInbox\":\"https://b.example/inbox\"}]}",
             ALICE);
    T_EQ_INT(ingest(env, &r), HD_ERR_INVALID);
    snprintf(env, sizeof(env),
             "{\"activity\":{\"id\":\"https://a.example/act/d4\",\"type\":\"Like\","
             "\"actor\":\"%s\",\"object\":\"x\"},\"inboxes\":[{\"shared_inbox\":"
             "\"https://b.example/inbox\"}]}",
             ALICE);
    T_EQ_INT(ingest(env, &r), HD_ERR_INVALID);
    snprintf(env, sizeof(env),
             "{\"activity\":{\"id\":\"https://a.example/act/d4\",\"type\":\"Like\","
             "\"actor\":\"%s\",\"object\":\"x\"},\"inboxes\":[42]}",
             ALICE);
    T_EQ_INT(ingest(env, &r), HD_ERR_INVALID);
}

static void set_fed(int fed)
{
    struct hd_txn *txn;
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_actor_set_federation(st, txn, ALICE, fed), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
}

static uint64_t host_queued(const char *host)
{
    struct hd_host_rec h;
    struct hd_txn *txn;
    int rc;
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    rc = hd_host_get(st, txn, host, strlen(host), &h);
    hd_store_abort(txn);
    return rc ? 0 : h.queued;
}

static void test_federation(void)
{
    struct hd_ingest_result r;
    struct hd_counters c0, c1;
    struct qlist q;
    char env[1024];
    int n = 0;

#define POST(id, type, public)                                                                     \
    snprintf(env, sizeof(env),                                                                     \
             "{\"activity\":{\"id\":\"https://a.example/act/f%s\",\"type\":\"%s\","               \
             "\"actor\":\"" ALICE "\",\"object\":{\"id\":\"https://a.example/n/f%s\"%s}},"        \
             "\"to_followers\":true}",                                                             \
             id, type, id, public ? "," PUB : "")

    /* all: everything passes */
    set_fed(HD_FED_ALL);
    POST("1", "Create", 0);
    T_EQ_INT(ingest(env, &r), 0);
    T_EQ_INT(r.deliveries, 2);
    /* public: non-public Create/Update/Announce withheld and counted; public ones and other
     * activities pass */
    set_fed(HD_FED_PUBLIC);
    c0 = t_counters(st);
    POST("2", "Create", 0);
    T_EQ_INT(ingest(env, &r), HD_ERR_INVALID);
    T_EQ_INT(r.withheld, 1);
    POST("3", "Update", 0);
    T_EQ_INT(ingest(env, &r), HD_ERR_INVALID);
    POST("4", "Create", 1);
    T_EQ_INT(ingest(env, &r), 0);
    POST("5", "Like", 0);
    T_EQ_INT(ingest(env, &r), 0);
    c1 = t_counters(st);
    T_EQ_INT(c1.withheld - c0.withheld, 2);
    T_EQ_INT(c1.activities - c0.activities, 2);
    /* none: switching drops the actor's queued deliveries (counted); enqueue refuses */
    memset(&q, 0, sizeof(q));
    scan("b.example", &q);
    scan("c.example", &q);
    scan("x.example", &q);
    scan("y.example", &q);
    n = q.n;
    T_OK(n > 0);
    c0 = t_counters(st);
    set_fed(HD_FED_NONE);
    c1 = t_counters(st);
    T_EQ_INT(c1.dropped - c0.dropped, n);
    memset(&q, 0, sizeof(q));
    scan("b.example", &q);
    scan("c.example", &q);
    T_EQ_INT(q.n, 0);
    T_EQ_INT(host_queued("b.example"), 0);
    T_EQ_INT(host_queued("c.example"), 0);
    POST("6", "Create", 1);
    T_EQ_INT(ingest(env, &r), HD_ERR_INVALID);
    T_OK(strstr(r.why, "none") != NULL);
    T_EQ_INT(t_counters(st).refused - c1.refused, 1);
    set_fed(HD_FED_ALL);
#undef POST
}

static int blocked(const char *host, uint64_t seq)
{
    struct hd_act_view v;
    struct hd_txn *txn;
    int rc;
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_queue_get_activity(st, txn, seq, &v), 0);
    rc = hd_queue_blocked(st, txn, host, v.after);
    hd_store_abort(txn);
    T_OK(rc == 0 || rc == 1);
    return rc;
}

static void ack_done(const struct qlist *q, uint64_t seq)
{
    struct hd_txn *txn;
    struct hd_counters c;
    struct hd_ack a;
    for (int i = 0; i < q->n; i++) {
        if (q->seq[i] != seq)
            continue;
        memset(&a, 0, sizeof(a));
        memcpy(a.key, q->key[i], q->keylen[i]);
        a.keylen = (uint16_t)q->keylen[i];
        a.kind = HD_ACK_DONE;
        a.status = 202;
        a.attempts = 1;
        T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
        T_EQ_INT(hd_counters_get(st, txn, &c), 0);
        T_EQ_INT(hd_queue_apply(st, txn, &c, &a, 1, 5000, NULL), 0);
        T_EQ_INT(hd_counters_put(st, txn, &c), 0);
        T_EQ_INT(hd_store_commit(txn), 0);
    }
}

/* The fan-out's in-place update of host records (queued) across every msgpack width, and
 * the other fields kept. */
static void test_host_counts(void)
{
    static const uint64_t starts[] = {0, 126, 127, 254, 255, 65534, 65535, 4294967294ull,
                                      4294967295ull, 1ull << 40};
    for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
        struct hd_host_rec h, h2;
        struct hd_counters c;
        struct hd_qdest d[3];
        struct hd_activity_in a = {0};
        char id[64];
        uint64_t seq;
        struct hd_txn *txn;

        memset(&h, 0, sizeof(h));
        h.queued = starts[i];
        h.done = 77;
        h.failures = 5;
        snprintf(h.last_error, sizeof(h.last_error), "HTTP 503");
        T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
        T_EQ_INT(hd_host_put(st, txn, "hc.example", 10, &h), 0);
        T_EQ_INT(hd_counters_get(st, txn, &c), 0);
        snprintf(id, sizeof(id), "https://a.example/act/hc%zu", i);
        memset(&a, 0, sizeof(a));
        a.id = id;
        a.type = "Like";
        a.actor = ALICE;
        a.body = "{}";
        a.body_len = 2;
        for (int k = 0; k < 3; k++) {
            d[k].host = "hc.example";
            d[k].host_len = 10;
            d[k].inbox = k == 0 ? "https://hc.example/a" : k == 1 ? "https://hc.example/b"
                                                                  : "https://hc.example/c";
            d[k].inbox_len = 20;
            d[k].flags = 0;
        }
        T_EQ_INT(hd_queue_enqueue_dests(st, txn, &c, &a, d, 3, 1000, &seq), 0);
        T_EQ_INT(hd_counters_put(st, txn, &c), 0);
        T_EQ_INT(hd_host_get(st, txn, "hc.example", 10, &h2), 0);
        T_OK(h2.queued == starts[i] + 3);
        T_EQ_INT(h2.done, 77);
        T_EQ_INT(h2.failures, 5);
        T_EQ_STR(h2.last_error, "HTTP 503");
        hd_store_abort(txn);
    }
}

static void test_ordering(void)
{
    struct hd_ingest_result r;
    uint64_t create, update, del, like, undo, other;
    struct qlist q;
    char env[1024];

    snprintf(env, sizeof(env),
             "{\"activity\":{\"id\":\"https://a.example/act/o1\",\"type\":\"Create\",\"actor\":\""
             ALICE "\",\"object\":{\"id\":\"https://a.example/n/o1\"," PUB "}},"
             "\"to_followers\":true}");
    T_EQ_INT(ingest(env, &r), 0);
    create = r.seq;
    /* the Update also goes to a host the Create never went to */
    snprintf(env, sizeof(env),
             "{\"activity\":{\"id\":\"https://a.example/act/o2\",\"type\":\"Update\",\"actor\":\""
             ALICE "\",\"object\":{\"id\":\"https://a.example/n/o1\"," PUB "}},"
             "\"to_followers\":true,\"inboxes\":[\"https://w.example/inbox\"]}");
    T_EQ_INT(ingest(env, &r), 0);
    update = r.seq;
    snprintf(env, sizeof(env),
             "{\"activity\":{\"id\":\"https://a.example/act/o3\",\"type\":\"Delete\",\"actor\":\""
             ALICE "\",\"object\":\"https://a.example/n/o1\"},\"to_followers\":true}");
    T_EQ_INT(ingest(env, &r), 0);
    del = r.seq;
    snprintf(env, sizeof(env),
             "{\"activity\":{\"id\":\"https://a.example/act/o4\",\"type\":\"Like\",\"actor\":\""
             ALICE "\",\"object\":\"https://b.example/n/9\"},\"inboxes\":[\"https://b.example/inbox\"]}");
    T_EQ_INT(ingest(env, &r), 0);
    like = r.seq;
    snprintf(env, sizeof(env),
             "{\"activity\":{\"id\":\"https://a.example/act/o5\",\"type\":\"Undo\",\"actor\":\""
             ALICE "\",\"object\":{\"id\":\"https://a.example/act/o4\",\"type\":\"Like\"}},"
             "\"inboxes\":[\"https://b.example/inbox\",\"https://c.example/dave/inbox\"]}");
    T_EQ_INT(ingest(env, &r), 0);
    undo = r.seq;
    snprintf(env, sizeof(env),
             "{\"activity\":{\"id\":\"https://a.example/act/o6\",\"type\":\"Create\",\"actor\":\""
             ALICE "\",\"object\":{\"id\":\"https://a.example/n/o6\"," PUB "}},"
             "\"to_followers\":true}");
    T_EQ_INT(ingest(env, &r), 0);
    other = r.seq;

    /* While the Create is queued on a host, its Update and Delete wait there; elsewhere (a
     * host the Create never went to) they may go. Unrelated activities never wait. */
    T_EQ_INT(blocked("b.example", update), 1);
    T_EQ_INT(blocked("b.example", del), 1);
    T_EQ_INT(blocked("c.example", update), 1);
    T_EQ_INT(blocked("w.example", update), 0);
    T_EQ_INT(blocked("b.example", create), 0);
    T_EQ_INT(blocked("b.example", other), 0);
    T_EQ_INT(blocked("b.example", like), 0);
    /* the Undo waits for the Like on b.example only */
    T_EQ_INT(blocked("b.example", undo), 1);
    T_EQ_INT(blocked("c.example", undo), 0);

    /* Create delivered on b.example: the Update may go there; the Delete still waits for the
     * Update (the previous activity about the object). c.example still waits for its Create. */
    memset(&q, 0, sizeof(q));
    scan("b.example", &q);
    ack_done(&q, create);
    T_EQ_INT(blocked("b.example", update), 0);
    T_EQ_INT(blocked("b.example", del), 1);
    T_EQ_INT(blocked("c.example", update), 1);
    ack_done(&q, update);
    T_EQ_INT(blocked("b.example", del), 0);
    ack_done(&q, like);
    T_EQ_INT(blocked("b.example", undo), 0);
}

int main(void)
{
    char dir[] = "/tmp/hd-test-audience-XXXXXX", path[256], *pem;
    const char *data = getenv("HD_TEST_DATA"), *why;
    size_t len;

    T_OK(data != NULL);
    T_OK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/db", dir);
    T_EQ_INT(hd_store_open(&st, path, 64), 0);
    snprintf(path, sizeof(path), "%s/keys/test-only-rsa2048.pem", data);
    pem = t_slurp(path, &len);
    T_OK(pem != NULL);
    T_EQ_INT(hd_keys_add(st, ALICE "#key", ALICE, pem, len, &why), 0);
    g_pem = pem;
    g_pem_len = len;

    test_refcounts();
    test_batch_model();
    test_normalise();
    test_dedup();
    test_federation();
    test_host_counts();
    test_ordering();

    hd_store_close(st);
    free(pem);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    T_OK(system(path) == 0);
    T_DONE();
}

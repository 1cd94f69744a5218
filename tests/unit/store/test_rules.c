/* Defederation rules: domain normalisation, suffix matching (snapshot and store lookups
 * agree), wildcards, allowlist, generation, drop counts, Mastodon CSV import/export. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_impl.h" /* reads tables directly */
#include "enforce.h"
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

static void block(const char *dom, int sev)
{
    struct hd_block b;
    struct hd_txn *txn;
    memset(&b, 0, sizeof(b));
    T_EQ_INT(hd_rules_domain_norm(dom, b.domain, sizeof(b.domain)), 0);
    b.severity = sev;
    begin(&txn, 1);
    T_EQ_INT(hd_block_put(st, txn, &b), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
}

static void allow(const char *dom, int add)
{
    char d[HD_DOMAIN_MAX];
    struct hd_txn *txn;
    T_EQ_INT(hd_rules_domain_norm(dom, d, sizeof(d)), 0);
    begin(&txn, 1);
    if (add)
        T_EQ_INT(hd_allow_put(st, txn, d, 1), 0);
    else
        T_EQ_INT(hd_allow_del(st, txn, d), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
}

static void set_mode(int mode)
{
    struct hd_txn *txn;
    begin(&txn, 1);
    T_EQ_INT(hd_rules_mode_set(st, txn, mode), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
}

/* Both decision paths (snapshot and store lookups) must agree with the expectation. */
static void expect(const char *host, int want)
{
    struct hd_txn *txn;
    struct hd_rules *r;
    begin(&txn, 0);
    T_EQ_INT(hd_rules_load(st, txn, &r), 0);
    if (hd_rules_allows(r, host) != want)
        T_FAIL("snapshot: %s should be %s", host, want ? "allowed" : "refused");
    if (hd_rules_check(st, txn, host) != want)
        T_FAIL("store check: %s should be %s", host, want ? "allowed" : "refused");
    t_checks += 2;
    hd_rules_free(r);
    hd_store_abort(txn);
}

static uint64_t generation(void)
{
    struct hd_txn *txn;
    uint64_t g;
    begin(&txn, 0);
    g = hd_rules_generation(st, txn);
    hd_store_abort(txn);
    return g;
}

static void test_norm(void)
{
    char out[HD_DOMAIN_MAX];
    T_EQ_INT(hd_rules_domain_norm("Example.COM.", out, sizeof(out)), 0);
    T_EQ_STR(out, "example.com");
    T_EQ_INT(hd_rules_domain_norm("  *.Foo.org ", out, sizeof(out)), 0);
    T_EQ_STR(out, "*.foo.org");
    T_EQ_INT(hd_rules_domain_norm("straße.example", out, sizeof(out)), 0);
    T_EQ_STR(out, "xn--strae-oqa.example");
    T_EQ_INT(hd_rules_domain_norm("10.1.2.3", out, sizeof(out)), 0);
    T_EQ_STR(out, "10.1.2.3");
    const char *bad[] = {"", "*", "*.", "a b", "x.org:80", "https://x.org", "x.org/path",
                         "u@x.org", "a..b", "*.*.x.org", "x*.org", "-x.org"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (hd_rules_domain_norm(bad[i], out, sizeof(out)) != HD_ERR_INVALID)
            T_FAIL("accepted bad domain \"%s\"", bad[i]);
}

static void test_matching(void)
{
    uint64_t g0 = generation(), g1;

    expect("anything.example", 1); /* no rules at all */
    block("example.com", HD_SEV_SUSPEND);
    g1 = generation();
    T_OK(g1 > g0);
    block("*.wild.org", HD_SEV_SUSPEND);
    block("silenced.net", HD_SEV_SILENCE);
    block("noop.net", HD_SEV_NOOP);
    T_OK(generation() == g1 + 3);

    expect("example.com", 0);
    expect("a.example.com", 0);
    expect("a.b.example.com", 0);
    expect("EXAMPLE.com.", 0);
    expect("badexample.com", 1);
    expect("example.com.au", 1);
    expect("com", 1);
    expect("wild.org", 1); /* "*." covers subdomains only */
    expect("x.wild.org", 0);
    expect("y.x.wild.org", 0);
    expect("notwild.org", 1);
    expect("silenced.net", 1); /* silence and noop do not stop delivery */
    expect("a.silenced.net", 1);
    expect("noop.net", 1);

    /* a silence on a parent does not hide a suspend of the child */
    block("bad.silenced.net", HD_SEV_SUSPEND);
    expect("x.bad.silenced.net", 0);
    expect("silenced.net", 1);

    /* severity change and removal */
    block("example.com", HD_SEV_SILENCE);
    expect("a.example.com", 1);
    block("example.com", HD_SEV_SUSPEND);
    {
        struct hd_txn *txn;
        struct hd_block b;
        begin(&txn, 1);
        T_EQ_INT(hd_block_get(st, txn, "example.com", &b), 0);
        T_EQ_INT(b.severity, HD_SEV_SUSPEND);
        T_EQ_INT(hd_block_del(st, txn, "example.com"), 0);
        T_EQ_INT(hd_block_del(st, txn, "example.com"), HD_ERR_NOT_FOUND);
        T_EQ_INT(hd_store_commit(txn), 0);
    }
    expect("a.example.com", 1);
    block("example.com", HD_SEV_SUSPEND);
}

static void test_allowlist(void)
{
    int mode;
    struct hd_txn *txn;

    allow("ok.org", 1);
    allow("*.sub.net", 1);
    expect("other.com", 1); /* mode is still open */
    set_mode(HD_MODE_ALLOWLIST);
    begin(&txn, 0);
    T_EQ_INT(hd_rules_mode_get(st, txn, &mode), 0);
    T_EQ_INT(mode, HD_MODE_ALLOWLIST);
    hd_store_abort(txn);
    expect("ok.org", 1);
    expect("a.ok.org", 1);
    expect("notok.org", 0);
    expect("sub.net", 0);
    expect("x.sub.net", 1);
    expect("other.com", 0);
    expect("example.com", 0);
    /* a suspend wins over an allow */
    block("a.ok.org", HD_SEV_SUSPEND);
    expect("a.ok.org", 0);
    expect("b.a.ok.org", 0);
    expect("ok.org", 1);
    expect("c.ok.org", 1);
    allow("example.com", 1);
    expect("example.com", 0); /* allowed, but suspended */
    allow("example.com", 0);
    {
        begin(&txn, 1);
        T_EQ_INT(hd_allow_del(st, txn, "nope.org"), HD_ERR_NOT_FOUND);
        hd_store_abort(txn);
    }
    set_mode(HD_MODE_OPEN);
    expect("other.com", 1);
    expect("a.ok.org", 0);
    begin(&txn, 1);
    T_EQ_INT(hd_block_del(st, txn, "a.ok.org"), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
}

/* ------------------------------------------------------------------ drops */

static uint64_t enqueue(const char *id, const char *const *inboxes, size_t n)
{
    return t_enqueue(st, id, "Create", NULL, inboxes, n);
}

static int first_key(const struct hd_qent *e, void *ud)
{
    struct hd_ack *a = ud;
    memcpy(a->key, e->key, e->keylen);
    a->keylen = (uint16_t)e->keylen;
    a->attempts = e->attempts + 1;
    return 1;
}

static void retry_first(const char *host)
{
    struct hd_ack a;
    struct hd_counters c;
    struct hd_txn *txn;
    uint8_t last[HD_QKEY_MAX];
    size_t last_len;
    int end;
    memset(&a, 0, sizeof(a));
    begin(&txn, 1);
    T_EQ_INT(hd_queue_scan(st, txn, host, NULL, 0, 1, first_key, &a, last, &last_len, &end), 1);
    a.kind = HD_ACK_RETRY;
    a.status = 503;
    a.not_before_ms = 99999;
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(hd_queue_apply(st, txn, &c, &a, 1, 2000, NULL), 0);
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
}

static uint32_t actrem(struct hd_txn *txn, uint64_t seq)
{
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    hd_be64(kb, seq);
    if (hd_mdb_get(txn, st->actrem, &k, &v) != 0)
        return 0;
    return hd_rd32(v.mv_data);
}

static int count_blocked(const struct hd_dead_view *d, void *user_data)
{
    if (d->status == 0 && d->error.n == 7 && memcmp(d->error.p, HD_DEAD_BLOCKED, 7) == 0)
        (*(uint64_t *)user_data)++;
    return 0;
}

static void test_drop(void)
{
    const char *in1[] = {"https://drop.test/inbox", "https://a.drop.test/u/1/inbox",
                         "https://keep.test/inbox"};
    const char *in2[] = {"https://a.drop.test/u/2/inbox", "https://keep.test/u/2/inbox"};
    uint64_t s1 = enqueue("https://me.example/act/d1", in1, 3);
    uint64_t s2 = enqueue("https://me.example/act/d2", in2, 2);
    struct hd_counters c;
    struct hd_rules *r;
    struct hd_host_rec h;
    struct hd_act_view av;
    uint64_t dropped = 0, hosts = 0;
    struct hd_txn *txn;

    retry_first("a.drop.test");
    block("drop.test", HD_SEV_SUSPEND);
    begin(&txn, 1);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(c.dropped, 0);
    T_EQ_INT(hd_rules_load(st, txn, &r), 0);
    T_EQ_INT(hd_rules_enforce(st, txn, &c, r, &dropped, &hosts), 0);
    hd_rules_free(r);
    T_EQ_INT(dropped, 3);
    T_EQ_INT(hosts, 2);
    T_EQ_INT(c.dropped, 3);
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);

    begin(&txn, 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(c.dropped, 3);
    T_EQ_INT(hd_host_get(st, txn, "a.drop.test", 11, &h), 0);
    T_EQ_INT(h.queued, 0);
    T_EQ_INT(h.retrying, 0);
    T_EQ_INT(hd_host_get(st, txn, "drop.test", 9, &h), 0);
    T_EQ_INT(h.queued, 0);
    T_EQ_INT(hd_host_get(st, txn, "keep.test", 9, &h), 0);
    T_EQ_INT(h.queued, 2);
    /* what was taken out is kept as dead letters "blocked", each holding its body */
    T_EQ_INT(h.failed, 0);
    T_EQ_INT(hd_host_get(st, txn, "a.drop.test", 11, &h), 0);
    T_EQ_INT(h.failed, 2);
    T_EQ_INT(actrem(txn, s1), 3);
    T_EQ_INT(actrem(txn, s2), 2);
    T_EQ_INT(hd_queue_get_activity(st, txn, s1, &av), 0);
    {
        uint64_t nblocked = 0;
        T_EQ_INT(hd_dead_foreach(st, txn, NULL, count_blocked, &nblocked), 0);
        T_EQ_INT(nblocked, 3);
    }
    hd_store_abort(txn);

    /* enforcing again finds nothing more */
    begin(&txn, 1);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(hd_rules_load(st, txn, &r), 0);
    T_EQ_INT(hd_rules_enforce(st, txn, &c, r, &dropped, &hosts), 0);
    hd_rules_free(r);
    T_EQ_INT(dropped, 0);
    T_EQ_INT(hosts, 0);
    /* dropping the last deliveries of an activity drops its body */
    dropped = 0;
    T_EQ_INT(hd_queue_drop(st, txn, &c, "keep.test", NULL, &dropped), 0);
    T_EQ_INT(dropped, 2);
    T_EQ_INT(c.dropped, 5);
    /* the blocked dead letters still hold the bodies; purging them releases the last ones */
    T_EQ_INT(hd_queue_get_activity(st, txn, s1, &av), 0);
    dropped = 0;
    T_EQ_INT(hd_dead_purge(st, txn, NULL, &dropped), 0);
    T_EQ_INT(dropped, 3);
    T_EQ_INT(hd_queue_get_activity(st, txn, s1, &av), HD_ERR_NOT_FOUND);
    T_EQ_INT(hd_queue_get_activity(st, txn, s2, &av), HD_ERR_NOT_FOUND);
    T_EQ_INT(hd_queue_find_activity(st, txn, "https://me.example/act/d1", &s1), 0);
    hd_store_abort(txn);
}

/* ------------------------------------------------------------------ CSV */

static const char mastodon_csv[] =
    "\xEF\xBB\xBF#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\r\n"
    "spam.example,suspend,true,true,\"Spam, and lots of it\",false\r\n"
    "*.wildcard.example,silence,false,false,,true\r\n"
    "media.example,noop,true,false,\"He said \"\"hi\"\"\nover two lines\",false\r\n"
    "\r\n"
    "Upper.Example,Suspend,TRUE,False,plain comment,FALSE\r\n";

static int collect_block(const struct hd_block *b, void *ud)
{
    struct hd_import *im = ud;
    im->blocks[im->n++] = *b;
    return 0;
}

static void test_csv(void)
{
    struct hd_import im, im2;
    char row[4096], *out;
    size_t olen = 0;
    struct hd_txn *txn;

    T_EQ_INT(hd_blocks_parse_csv(mastodon_csv, strlen(mastodon_csv), &im), 0);
    T_EQ_INT(im.nerr_total, 0);
    T_EQ_INT(im.n, 4);
    T_EQ_STR(im.blocks[0].domain, "spam.example");
    T_EQ_INT(im.blocks[0].severity, HD_SEV_SUSPEND);
    T_EQ_INT(im.blocks[0].reject_media, 1);
    T_EQ_INT(im.blocks[0].reject_reports, 1);
    T_EQ_STR(im.blocks[0].comment, "Spam, and lots of it");
    T_EQ_STR(im.blocks[1].domain, "*.wildcard.example");
    T_EQ_INT(im.blocks[1].severity, HD_SEV_SILENCE);
    T_EQ_INT(im.blocks[1].obfuscate, 1);
    T_EQ_STR(im.blocks[2].comment, "He said \"hi\"\nover two lines");
    T_EQ_INT(im.blocks[2].severity, HD_SEV_NOOP);
    T_EQ_STR(im.blocks[3].domain, "upper.example");
    T_EQ_INT(im.blocks[3].reject_media, 1);

    /* into a fresh rules table, export, re-import: identical */
    begin(&txn, 1);
    for (size_t i = 0; i < im.n; i++)
        T_EQ_INT(hd_block_put(st, txn, &im.blocks[i]), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    hd_import_fini(&im);

    out = malloc(1 << 16);
    olen = (size_t)snprintf(out, 1 << 16, "%s\n", HD_BLOCKS_CSV_HEADER);
    memset(&im, 0, sizeof(im));
    im.blocks = calloc(64, sizeof(*im.blocks));
    begin(&txn, 0);
    T_EQ_INT(hd_block_foreach(st, txn, collect_block, &im), 0);
    hd_store_abort(txn);
    for (size_t i = 0; i < im.n; i++) {
        int n = hd_block_csv_row(&im.blocks[i], row, sizeof(row));
        T_OK(n > 0);
        olen += (size_t)snprintf(out + olen, (1 << 16) - olen, "%s\n", row);
    }
    T_OK(strstr(out, "spam.example,suspend,true,true,\"Spam, and lots of it\",false\n") != NULL);
    T_OK(strstr(out, "*.wildcard.example,silence,false,false,,true\n") != NULL);
    T_OK(strstr(out, "\"He said \"\"hi\"\"\nover two lines\"") != NULL);
    T_EQ_INT(hd_blocks_parse_csv(out, olen, &im2), 0);
    T_EQ_INT(im2.nerr_total, 0);
    T_EQ_INT(im2.n, im.n);
    for (size_t i = 0; i < im.n; i++) {
        struct hd_block *a = &im.blocks[i], *b = &im2.blocks[i];
        T_EQ_STR(a->domain, b->domain);
        T_EQ_STR(a->comment, b->comment);
        T_EQ_INT(a->severity, b->severity);
        T_EQ_INT(a->reject_media, b->reject_media);
        T_EQ_INT(a->reject_reports, b->reject_reports);
        T_EQ_INT(a->obfuscate, b->obfuscate);
    }
    free(out);
    hd_import_fini(&im);
    hd_import_fini(&im2);

    /* wildcard rule from the CSV applies to subdomains only */
    expect("wildcard.example", 1);
    expect("a.wildcard.example", 1); /* silence */
    expect("x.spam.example", 0);

    /* columns by name in another order; missing severity = suspend; no header = positional */
    const char *reordered = "#severity,#domain,#public_comment\nsilence,a.example,x\n,b.example,\n";
    T_EQ_INT(hd_blocks_parse_csv(reordered, strlen(reordered), &im), 0);
    T_EQ_INT(im.nerr_total, 0);
    T_EQ_INT(im.n, 2);
    T_EQ_STR(im.blocks[0].domain, "a.example");
    T_EQ_INT(im.blocks[0].severity, HD_SEV_SILENCE);
    T_EQ_STR(im.blocks[0].comment, "x");
    T_EQ_INT(im.blocks[1].severity, HD_SEV_SUSPEND);
    hd_import_fini(&im);
    const char *plain = "# a comment line\nc.example,noop\nd.example\n";
    T_EQ_INT(hd_blocks_parse_csv(plain, strlen(plain), &im), 0);
    T_EQ_INT(im.nerr_total, 0);
    T_EQ_INT(im.n, 2);
    T_EQ_INT(im.blocks[0].severity, HD_SEV_NOOP);
    T_EQ_INT(im.blocks[1].severity, HD_SEV_SUSPEND);
    hd_import_fini(&im);

    /* bad lines are reported with their line numbers */
    const char *bad = HD_BLOCKS_CSV_HEADER "\n"
                      "ok.example,suspend,false,false,,false\n"
                      "x.example,destroy,false,false,,false\n"
                      "\"multi\nline\",suspend\n"
                      "not a domain,suspend\n"
                      "y.example,silence,maybe\n"
                      "z.example,silence,false,false,\"unterminated\n";
    T_EQ_INT(hd_blocks_parse_csv(bad, strlen(bad), &im), 0);
    T_EQ_INT(im.nerr_total, 5);
    T_EQ_INT(im.errs[0].line, 3);
    T_OK(strstr(im.errs[0].why, "severity") != NULL);
    T_EQ_INT(im.errs[1].line, 4);
    T_EQ_INT(im.errs[2].line, 6);
    T_EQ_INT(im.errs[3].line, 7);
    T_OK(strstr(im.errs[3].why, "reject_media") != NULL);
    T_EQ_INT(im.errs[4].line, 8);
    T_OK(strstr(im.errs[4].why, "unterminated") != NULL);
    hd_import_fini(&im);
    /* the one-label domain "domain" is data, not a header; "domain,severity" is a header */
    const char *dom = "domain,suspend\nDomain,Severity\nx.example,silence\n";
    T_EQ_INT(hd_blocks_parse_csv(dom, strlen(dom), &im), 0);
    T_EQ_INT(im.nerr_total, 1); /* a header after data is a bad row (severity "Severity") */
    T_EQ_INT(im.errs[0].line, 2);
    T_EQ_STR(im.blocks[0].domain, "domain");
    hd_import_fini(&im);
    const char *dom2 = "Domain,Severity\ndomain,noop\n";
    T_EQ_INT(hd_blocks_parse_csv(dom2, strlen(dom2), &im), 0);
    T_EQ_INT(im.nerr_total, 0);
    T_EQ_INT(im.n, 1);
    T_EQ_STR(im.blocks[0].domain, "domain");
    T_EQ_INT(im.blocks[0].severity, HD_SEV_NOOP);
    hd_import_fini(&im);

    /* a comment reading "#domain" does not make a data row a header (found by fuzzing) */
    const char *hashc = "z.example,suspend,false,true,\"#domain\",false\n";
    T_EQ_INT(hd_blocks_parse_csv(hashc, strlen(hashc), &im), 0);
    T_EQ_INT(im.nerr_total, 0);
    T_EQ_INT(im.n, 1);
    T_EQ_STR(im.blocks[0].comment, "#domain");
    hd_import_fini(&im);

    /* comments must be UTF-8 (they appear in JSON listings) */
    const char *badutf = "x.example,suspend,false,false,\"caf\xc3\xa9\",false\n"
                         "y.example,suspend,false,false,\"bad \xc3\x28\",false\n"
                         "z.example,suspend,false,false,\xed\xa0\x80,false\n";
    T_EQ_INT(hd_blocks_parse_csv(badutf, strlen(badutf), &im), 0);
    T_EQ_INT(im.nerr_total, 2);
    T_EQ_INT(im.errs[0].line, 2);
    T_EQ_INT(im.errs[1].line, 3);
    T_EQ_STR(im.blocks[0].comment, "caf\xc3\xa9");
    hd_import_fini(&im);
    /* a '#' row that names no domain column is a comment; the next row is then positional */
    const char *nodomain = "#severity,#comment\nsuspend,x\n";
    T_EQ_INT(hd_blocks_parse_csv(nodomain, strlen(nodomain), &im), 0);
    T_EQ_INT(im.nerr_total, 1);
    T_EQ_INT(im.errs[0].line, 2);
    hd_import_fini(&im);
}

/* Thousands of rules: the snapshot answers by hash lookups per suffix. */
static void test_scale(void)
{
    struct hd_txn *txn;
    struct hd_rules *r;
    struct timespec t0, t1;
    double secs;
    int refused = 0;

    begin(&txn, 1);
    for (int i = 0; i < 5000; i++) {
        struct hd_block b;
        memset(&b, 0, sizeof(b));
        snprintf(b.domain, sizeof(b.domain), "%sblocked%d.example", i % 2 ? "*." : "", i);
        b.severity = HD_SEV_SUSPEND;
        T_EQ_INT(hd_block_put(st, txn, &b), 0);
    }
    T_EQ_INT(hd_store_commit(txn), 0);
    begin(&txn, 0);
    T_EQ_INT(hd_rules_load(st, txn, &r), 0);
    hd_store_abort(txn);
    T_OK(hd_rules_count(r) >= 5000);
    T_EQ_INT(hd_rules_allows(r, "blocked10.example"), 0);
    T_EQ_INT(hd_rules_allows(r, "blocked11.example"), 1);
    T_EQ_INT(hd_rules_allows(r, "a.blocked11.example"), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* Correctness over many lookups; the speed is printed for information only (speed is
     * measured in bench/, not asserted in unit tests that also run under sanitizers). */
    for (int i = 0; i < 100000; i++) {
        char h[64];
        snprintf(h, sizeof(h), "inbox%d.host%d.blocked%d.example", i, i % 97, i % 10000);
        refused += !hd_rules_allows(r, h);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("100,000 lookups over %zu rules: %.3f s (including snprintf)\n", hd_rules_count(r),
           secs);
    T_EQ_INT(refused, 50000); /* blocked0..4999 match i % 10000 < 5000 */
    hd_rules_free(r);
    T_EQ_INT(hd_rules_allows(NULL, "x.example"), 1);
}

int main(void)
{
    char dir[] = "/tmp/hd-test-rules-XXXXXX", path[256];

    T_OK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/db", dir);
    T_EQ_INT(hd_store_open(&st, path, 64), 0);
    test_norm();
    test_matching();
    test_allowlist();
    test_drop();
    test_csv();
    test_scale();
    hd_store_close(st);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    T_EQ_INT(system(path), 0);
    T_DONE();
}

/* Unit checks of fedisim's parts that need no sockets: the JSON id scanner (against jansson
 * as the oracle), the pair set at a million pairs, pair hashing, host parsing, profile
 * loading and matching, latency distributions, request header caps. ctest: unit.fedisim. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "json_id.h"
#include "profile.h"
#include "req.h"
#include "stats.h"
#include "t.h"

static void check_json(const char *s, size_t len)
{
    char out[256];
    size_t ol = 0;
    json_error_t e;
    int mine = fs_json_activity_id((const uint8_t *)s, len, out, sizeof(out), &ol);
    json_t *d = json_loadb(s, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
    json_t *id = json_is_object(d) ? json_object_get(d, "id") : NULL;
    int want = json_is_string(id) ? 0 : -1;

    if (mine != want)
        T_FAIL("json [%.*s]: scanner %d, jansson %d", (int)len, s, mine, want);
    if (mine == 0 && (ol != json_string_length(id) || memcmp(out, json_string_value(id), ol)))
        T_FAIL("json [%.*s]: id differs", (int)len, s);
    t_checks++;
    json_decref(d);
}

#define J(x) check_json(x, sizeof(x) - 1)

static void test_json(void)
{
    char deep[300];
    size_t n = 0;
    char out[8];
    size_t ol;

    J("{\"id\":\"x\"}");
    J(" {\"id\" : \"https:\\/\\/a\\u00e9\\ud83d\\ude00\" } ");
    J("{\"a\":[1,2.5e3,-0,true,false,null,{\"id\":\"no\"}],\"id\":\"yes\"}");
    J("{\"id\":1}");
    J("[]");
    J("{}");
    J("{\"id\":\"x\",}");
    J("{\"id\":\"x\"");
    J("{\"id\":\"x\"} x");
    J("{\"a\":01}");
    J("{\"a\":1.}");
    J("{\"a\":\"\\x\"}");
    J("{\"a\":\"\x01\"}");
    J("{\"a\":tru}");
    J("{\"id\":\"a\\ud800\"}");
    J("{\"b\":{\"c\":[[[[]]]]},\"id\":\"z\"}");
    J("{\"a\":-}");
    J("{\"a\":1e+}");
    J("{\"id\":\"\"}");
    J("");
    J("   ");
    J("{\"a\" 1}");
    J("{\"a\":[1 2]}");
    J("{\"id\":\"caf\xc3\xa9\"}");
    J("{\"id\":\"\xc3\"}");
    J("{\"id\":\"\xc0\xaf\"}");
    J("{\"id\":\"\xed\xa0\x80\"}");
    J("{\"id\":\"\xf4\x90\x80\x80\"}");
    J("{\"id\":\"\xf0\x9f\x98\x80\"}");
    J("{\"id\":\"\xe2\x82\"}");
    J("{\"x\":\"\xff\",\"id\":\"a\"}");
    J("{\"id\":\"a\",\"id\":\"b\"}");
    J("{\"id\":\"a\",\"o\":{\"id\":\"b\"}}");
    J("{\"id\":\"a\"}\n");
    J("{\"id\":\"a\\u0000b\"}");
    J("{\"id\":\"a\\\"b\\\\c\\n\"}");
    /* Nesting beyond the depth cap is refused, not a stack overflow. */
    for (int i = 0; i < 100; i++)
        deep[n++] = '[';
    for (int i = 0; i < 100; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    {
        char doc[400];
        int len = snprintf(doc, sizeof(doc), "{\"id\":\"a\",\"x\":%s}", deep);
        T_EQ_INT(fs_json_activity_id((const uint8_t *)doc, (size_t)len, out, sizeof(out), &ol), -1);
    }
    /* An id longer than the caller's buffer is refused. */
    T_EQ_INT(
        fs_json_activity_id((const uint8_t *)"{\"id\":\"0123456789\"}", 19, out, sizeof(out), &ol),
        -1);
}

static void test_pairs(void)
{
    struct fs_pairset s;
    uint64_t a, b, a2, b2;
    char id[64], inbox[64];

    fs_pair_hash("ab", 2, "c", 1, &a, &b);
    fs_pair_hash("a", 1, "bc", 2, &a2, &b2);
    T_OK(a != a2 || b != b2);
    T_OK(a != 0);

    T_EQ_INT(fs_pairset_init(&s, (size_t)1 << 25), 0);
    for (int i = 0; i < 1000000; i++) {
        int il = snprintf(id, sizeof(id), "https://o.test/act/%d", i / 100);
        int nl = snprintf(inbox, sizeof(inbox), "https://h%d.fedi.test/inbox", i % 100);
        fs_pair_hash(id, (size_t)il, inbox, (size_t)nl, &a, &b);
        if (fs_pairset_add(&s, a, b) != 1)
            T_FAIL("pair %d reported as duplicate", i);
    }
    T_EQ_INT(s.count, 1000000);
    T_OK(s.nslots <= ((size_t)1 << 21)); /* 32 MiB for a million pairs */
    for (int i = 0; i < 1000; i++) {
        int il = snprintf(id, sizeof(id), "https://o.test/act/%d", i / 100);
        int nl = snprintf(inbox, sizeof(inbox), "https://h%d.fedi.test/inbox", i % 100);
        fs_pair_hash(id, (size_t)il, inbox, (size_t)nl, &a, &b);
        T_EQ_INT(fs_pairset_add(&s, a, b), 0);
        T_EQ_INT(fs_pairset_add(&s, a, b), 0);
        T_OK(fs_pairset_has(&s, a, b));
    }
    T_EQ_INT(s.dup_pairs, 1000);
    T_EQ_INT(s.count, 1000000);
    fs_pair_hash("never", 5, "added", 5, &a, &b);
    T_OK(!fs_pairset_has(&s, a, b));
    fs_pairset_fini(&s);

    /* A full table refuses new pairs instead of probing forever. */
    T_EQ_INT(fs_pairset_init(&s, 1u << 16), 0);
    int refused = 0;
    for (int i = 0; i < 70000; i++) {
        fs_pair_hash((const char *)&i, sizeof(i), "x", 1, &a, &b);
        if (fs_pairset_add(&s, a, b) < 0)
            refused++;
    }
    T_OK(refused > 0);
    T_EQ_INT(s.overflow, refused);
    T_OK(s.count < s.nslots);
    fs_pairset_fini(&s);
}

static void test_hosts(void)
{
    char h[64];

    T_EQ_INT(fs_host_from_authority("A.Fedi.Test:443", h, sizeof(h)), 11);
    T_EQ_STR(h, "a.fedi.test");
    fs_host_from_authority("[::1]:8080", h, sizeof(h));
    T_EQ_STR(h, "::1");
    fs_host_from_authority("x.test.", h, sizeof(h));
    T_EQ_STR(h, "x.test");
    fs_host_from_authority("", h, sizeof(h));
    T_EQ_STR(h, "");
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static void test_profiles(void)
{
    char path[] = "/tmp/fedisim_test_XXXXXX";
    int fd = mkstemp(path);
    struct fs_profiles p;
    const struct fs_profile *q;

    T_OK(fd >= 0);
    close(fd);
    T_EQ_INT(write_file(path, "[a.fedi.test]\nstatus = 200\n"
                              "[*.fedi.test]\nlatency = uniform 1 5\nerror_503 = 0.5\n"
                              "retry_after = 9\nretry_after_format = date\n"
                              "[*.deep.fedi.test]\ndead = hang\n"
                              "[mid-*.fedi.test]\nstatus = 201\n"
                              "[mid-1?.fedi.test]\nstatus = 204\n"
                              "[*]\nlatency = lognormal 10 100\nsignature = rfc9421\n"),
             0);
    fs_profiles_init(&p);
    T_EQ_INT(fs_profiles_load(&p, path), 0);
    q = fs_profiles_match(&p, "a.fedi.test");
    T_EQ_INT(q->status, 200);
    q = fs_profiles_match(&p, "b.fedi.test");
    T_EQ_INT(q->lat, FS_LAT_UNIFORM);
    T_EQ_INT(q->nerrs, 1);
    T_EQ_INT(q->errs[0].status, 503);
    T_EQ_INT(q->retry_after, 9);
    T_EQ_INT(q->retry_after_date, 1);
    T_EQ_INT(q->schemes, FS_SIG_ANY);
    T_EQ_INT(fs_profiles_match(&p, "mid-7.fedi.test")->status, 201);
    T_EQ_INT(fs_profiles_match(&p, "mid-12.fedi.test")->status, 204);
    T_EQ_INT(fs_profiles_match(&p, "mid-123.fedi.test")->status, 201);
    /* Globs are anchored: "mid-*" does not match "x.mid-7", which falls to "*.fedi.test". */
    T_EQ_INT(fs_profiles_match(&p, "x.mid-7.fedi.test")->status, 202);
    q = fs_profiles_match(&p, "x.deep.fedi.test");
    T_EQ_INT(q->dead, FS_DEAD_HANG);
    q = fs_profiles_match(&p, "fedi.test"); /* "*.fedi.test" does not cover the apex */
    T_EQ_INT(q->lat, FS_LAT_LOGNORMAL);
    T_EQ_INT(q->schemes, FS_SIG_RFC9421);
    q = fs_profiles_match(&p, "elsewhere.example");
    T_EQ_INT(q->lat, FS_LAT_LOGNORMAL);

    /* Latency draws follow their distribution. */
    {
        struct fs_rng r;
        static unsigned v[20000];
        int below_med = 0, below_p99 = 0;
        fs_rng_seed(&r, 42);
        for (int i = 0; i < 20000; i++) {
            v[i] = fs_profile_latency(q, &r);
            below_med += v[i] <= 10;
            below_p99 += v[i] <= 100;
        }
        T_OK(below_med > 9000 && below_med < 11500);
        T_OK(below_p99 > 19600 && below_p99 < 19950);
        q = fs_profiles_match(&p, "b.fedi.test");
        for (int i = 0; i < 1000; i++) {
            unsigned ms = fs_profile_latency(q, &r);
            T_OK(ms >= 1 && ms <= 5);
        }
    }
    fs_profiles_fini(&p);

    /* Refused: unknown keys, bad values, fractions over 1 (their log lines are silenced). */
    hd_log_level = -1;
    const char *bad[] = {"[x]\nlatency = often\n",
                         "[x]\nfrobnicate = 1\n",
                         "[x]\nerror_500 = 0.7\nerror_502 = 0.4\n",
                         "[x]\nstatus = 99\n",
                         "[x]\ndead = maybe\n",
                         "[x]\nsignature = jws\n",
                         "orphan = 1\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        T_EQ_INT(write_file(path, bad[i]), 0);
        fs_profiles_init(&p);
        if (fs_profiles_load(&p, path) == 0)
            T_FAIL("profile accepted: %s", bad[i]);
        t_checks++;
        fs_profiles_fini(&p);
    }
    unlink(path);
}

static void test_req(void)
{
    struct fs_req r;
    static char big[FS_MAX_HEADER_BYTES];

    fs_req_init(&r);
    T_EQ_INT(fs_req_add(&r, ":method", 7, "POST", 4), 0);
    T_EQ_INT(fs_req_add(&r, "Content-Type", 12, "application/activity+json", 25), 0);
    T_EQ_INT(fs_req_add(&r, "Host", 4, "a.test", 6), 0);
    T_EQ_STR(fs_req_get(&r, "content-type"), "application/activity+json");
    T_EQ_STR(fs_req_field(&r, r.method), "POST");
    T_EQ_STR(fs_req_field(&r, r.authority), "a.test");
    memset(big, 'x', sizeof(big));
    T_EQ_INT(fs_req_add(&r, "x-big", 5, big, sizeof(big)), HD_ERR_TOO_LARGE);
    T_OK(r.headers_too_large);
    T_EQ_INT(fs_req_body(&r, (const uint8_t *)big, sizeof(big)), 0);
    for (int i = 0; i < 80; i++)
        fs_req_body(&r, (const uint8_t *)big, sizeof(big));
    T_OK(r.body_too_large);
    T_OK(r.body_len <= FS_MAX_BODY);
    fs_req_fini(&r);
}

static void test_report(void)
{
    struct fs_stats st;
    struct fs_profiles p;
    json_t *o, *ph;
    char name[32];

    fs_profiles_init(&p);
    T_EQ_INT(fs_stats_init(&st, 1u << 16, 1000), 0);
    for (int i = 0; i < 120; i++) {
        int n = snprintf(name, sizeof(name), "h%d.fedi.test", i);
        struct fs_host *h = fs_stats_host(&st, &p, name, (size_t)n);
        h->requests = (uint64_t)((i * 37) % 120) + 1; /* a permutation of 1..120 */
        T_OK(fs_stats_host(&st, &p, name, (size_t)n) == h);
    }
    o = fs_stats_report(&st, 50);
    T_OK(o != NULL);
    ph = json_object_get(o, "per_host");
    T_EQ_INT(json_object_size(ph), 50);
    T_EQ_INT(json_integer_value(json_object_get(o, "hosts")), 120);
    /* The busiest 50 are those with 71..120 requests. */
    const char *k;
    json_t *v;
    json_object_foreach(ph, k, v)
    {
        T_OK(json_integer_value(json_object_get(v, "requests")) >= 71);
    }
    json_decref(o);
    fs_stats_fini(&st);
    fs_profiles_fini(&p);
}

int main(void)
{
    test_json();
    test_pairs();
    test_hosts();
    test_profiles();
    test_req();
    test_report();
    T_DONE();
}

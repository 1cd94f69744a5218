/* Counting: the (activity id, inbox) pair set, the host table and the JSON report. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "profile.h"
#include "stats.h"
#include "verify.h"

/* ---- hashing ---- */

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

/* Two 64-bit lanes over the same bytes, each a multiply-rotate chain with its own constants,
 * finalised with murmur3's fmix64. Not cryptographic; 128 bits make a false duplicate among
 * millions of pairs vanishingly unlikely. */
struct hash2 {
    uint64_t a, b;
};

static void hash_bytes(struct hash2 *h, const void *p, size_t len)
{
    const unsigned char *s = p;
    uint64_t w;

    while (len >= 8) {
        memcpy(&w, s, 8);
        h->a = rotl64(h->a ^ (w * 0x87c37b91114253d5ULL), 31) * 0x4cf5ad432745937fULL;
        h->b = rotl64(h->b ^ (w * 0x9e3779b97f4a7c15ULL), 29) * 0xbf58476d1ce4e5b9ULL;
        s += 8;
        len -= 8;
    }
    w = 0;
    memcpy(&w, s, len);
    w ^= (uint64_t)len << 56;
    h->a = rotl64(h->a ^ (w * 0x87c37b91114253d5ULL), 31) * 0x4cf5ad432745937fULL;
    h->b = rotl64(h->b ^ (w * 0x9e3779b97f4a7c15ULL), 29) * 0xbf58476d1ce4e5b9ULL;
}

void fs_pair_hash(const char *id, size_t idlen, const char *inbox, size_t inlen, uint64_t *a,
                  uint64_t *b)
{
    struct hash2 h = {0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL};

    hash_bytes(&h, id, idlen);
    /* The lengths separate the two strings: ("ab","c") differs from ("a","bc"). */
    h.a ^= idlen * 0x94d049bb133111ebULL;
    h.b ^= idlen * 0xd6e8feb86659fd93ULL;
    hash_bytes(&h, inbox, inlen);
    *a = fmix64(h.a ^ inlen) | 1; /* never 0: (0,0) marks an empty slot */
    *b = fmix64(h.b + inlen) & ~(uint64_t)1;
}

/* ---- pair set ---- */

int fs_pairset_init(struct fs_pairset *s, size_t max_slots)
{
    memset(s, 0, sizeof(*s));
    s->nslots = 1u << 16;
    s->max_slots = max_slots < s->nslots ? s->nslots : max_slots;
    s->slots = calloc(s->nslots * 2, sizeof(uint64_t));
    return s->slots ? 0 : -ENOMEM;
}

void fs_pairset_fini(struct fs_pairset *s)
{
    free(s->slots);
    s->slots = NULL;
}

static size_t probe(const uint64_t *slots, size_t mask, uint64_t a, uint64_t b)
{
    size_t i = (size_t)(a ^ (b >> 17)) & mask;

    for (;;) {
        const uint64_t *e = slots + 2 * i;
        if ((e[0] == 0 && e[1] == 0) || (e[0] == a && (e[1] & ~(uint64_t)1) == b))
            return i;
        i = (i + 1) & mask;
    }
}

static int pairset_grow(struct fs_pairset *s)
{
    size_t n = s->nslots * 2, mask = n - 1;
    uint64_t *ns = calloc(n * 2, sizeof(uint64_t));

    if (!ns)
        return -ENOMEM;
    for (size_t i = 0; i < s->nslots; i++) {
        const uint64_t *e = s->slots + 2 * i;
        if (e[0] == 0 && e[1] == 0)
            continue;
        size_t j = probe(ns, mask, e[0], e[1] & ~(uint64_t)1);
        ns[2 * j] = e[0];
        ns[2 * j + 1] = e[1];
    }
    free(s->slots);
    s->slots = ns;
    s->nslots = n;
    return 0;
}

int fs_pairset_add(struct fs_pairset *s, uint64_t a, uint64_t b)
{
    size_t i;

    b &= ~(uint64_t)1;
    /* Keep the load under 0.7 so linear probing stays short. */
    if ((s->count + 1) * 10 > s->nslots * 7) {
        if (s->nslots * 2 > s->max_slots) {
            if ((s->count + 1) * 20 > s->nslots * 19) {
                s->overflow++;
                return HD_ERR_FULL;
            }
        } else if (pairset_grow(s) < 0) {
            if ((s->count + 1) * 20 > s->nslots * 19) {
                s->overflow++;
                return -ENOMEM;
            }
        }
    }
    i = probe(s->slots, s->nslots - 1, a, b);
    uint64_t *e = s->slots + 2 * i;
    if (e[0] == 0 && e[1] == 0) {
        e[0] = a;
        e[1] = b;
        s->count++;
        return 1;
    }
    if (!(e[1] & 1)) {
        e[1] |= 1;
        s->dup_pairs++;
    }
    return 0;
}

int fs_pairset_has(const struct fs_pairset *s, uint64_t a, uint64_t b)
{
    b &= ~(uint64_t)1;
    size_t i = probe(s->slots, s->nslots - 1, a, b);
    const uint64_t *e = s->slots + 2 * i;
    return !(e[0] == 0 && e[1] == 0);
}

/* ---- hosts ---- */

static uint64_t str_hash(const char *s, size_t len)
{
    struct hash2 h = {0x452821e638d01377ULL, 0xbe5466cf34e90c6cULL};
    hash_bytes(&h, s, len);
    return fmix64(h.a);
}

static int hosts_init(struct fs_hosts *t, size_t max)
{
    memset(t, 0, sizeof(*t));
    t->nslots = 1024;
    t->max = max;
    t->slots = calloc(t->nslots, sizeof(*t->slots));
    t->other.name = strdup("_other");
    if (!t->slots || !t->other.name) {
        free(t->slots);
        free(t->other.name);
        return -ENOMEM;
    }
    return 0;
}

static void hosts_fini(struct fs_hosts *t)
{
    for (size_t i = 0; i < t->nslots; i++) {
        if (t->slots[i]) {
            free(t->slots[i]->name);
            free(t->slots[i]);
        }
    }
    free(t->slots);
    free(t->other.name);
    t->slots = NULL;
}

static int hosts_grow(struct fs_hosts *t)
{
    size_t n = t->nslots * 2;
    struct fs_host **ns = calloc(n, sizeof(*ns));

    if (!ns)
        return -ENOMEM;
    for (size_t i = 0; i < t->nslots; i++) {
        struct fs_host *h = t->slots[i];
        if (!h)
            continue;
        size_t j = (size_t)str_hash(h->name, strlen(h->name)) & (n - 1);
        while (ns[j])
            j = (j + 1) & (n - 1);
        ns[j] = h;
    }
    free(t->slots);
    t->slots = ns;
    t->nslots = n;
    return 0;
}

struct fs_host *fs_stats_host(struct fs_stats *st, const struct fs_profiles *profs,
                              const char *name, size_t len)
{
    struct fs_hosts *t = &st->hosts;
    size_t i = (size_t)str_hash(name, len) & (t->nslots - 1);
    struct fs_host *h;

    while (t->slots[i]) {
        h = t->slots[i];
        if (strncmp(h->name, name, len) == 0 && h->name[len] == '\0')
            return h;
        i = (i + 1) & (t->nslots - 1);
    }
    if (t->count >= t->max)
        goto other;
    if ((t->count + 1) * 2 > t->nslots) {
        if (hosts_grow(t) < 0)
            goto other;
        return fs_stats_host(st, profs, name, len);
    }
    h = calloc(1, sizeof(*h));
    if (!h)
        goto other;
    h->name = strndup(name, len);
    if (!h->name) {
        free(h);
        goto other;
    }
    h->prof = fs_profiles_match(profs, h->name);
    h->bucket.tokens = -1; /* filled on first use */
    t->slots[i] = h;
    t->count++;
    return h;
other:
    if (!t->other.prof)
        t->other.prof = fs_profiles_match(profs, "");
    return &t->other;
}

int fs_stats_init(struct fs_stats *st, size_t max_pair_slots, size_t max_hosts)
{
    int rv;

    memset(st, 0, sizeof(*st));
    rv = fs_pairset_init(&st->pairs, max_pair_slots);
    if (rv < 0)
        return rv;
    rv = hosts_init(&st->hosts, max_hosts);
    if (rv < 0) {
        fs_pairset_fini(&st->pairs);
        return rv;
    }
    st->started = time(NULL);
    return 0;
}

void fs_stats_fini(struct fs_stats *st)
{
    fs_pairset_fini(&st->pairs);
    hosts_fini(&st->hosts);
    if (st->expect) {
        fs_pairset_fini(st->expect);
        free(st->expect);
        st->expect = NULL;
    }
}

void fs_stats_reset(struct fs_stats *st)
{
    struct fs_pairset pairs = st->pairs;
    struct fs_hosts hosts = st->hosts;
    struct fs_pairset *expect = st->expect;
    uint64_t expect_count = st->expect_count;

    memset(pairs.slots, 0, pairs.nslots * 2 * sizeof(uint64_t));
    pairs.count = 0;
    pairs.dup_pairs = 0;
    pairs.overflow = 0;
    for (size_t i = 0; i < hosts.nslots; i++) {
        struct fs_host *h = hosts.slots[i];
        if (!h)
            continue;
        h->requests = h->accepted = h->s4xx = h->s5xx = h->bad_signature = 0;
        h->rate_limited = 0;
    }
    memset(st, 0, sizeof(*st));
    st->pairs = pairs;
    st->hosts = hosts;
    st->expect = expect;
    st->expect_count = expect_count;
    st->started = time(NULL);
}

/* ---- --expect ---- */

int fs_stats_load_expect(struct fs_stats *st, const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rv = 0;
    unsigned long lineno = 0;

    if (!f) {
        rv = -errno;
        HD_LOG(HD_LOG_ERROR, "fedisim", "msg=\"cannot open --expect\" path=%s err=%d", path, rv);
        return rv;
    }
    st->expect = calloc(1, sizeof(*st->expect));
    if (!st->expect || fs_pairset_init(st->expect, (size_t)1 << 28) < 0) {
        free(st->expect);
        st->expect = NULL;
        fclose(f);
        return -ENOMEM;
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        json_error_t jerr;
        json_t *o, *id, *inbox;
        uint64_t a, b;

        lineno++;
        if (n <= 1)
            continue;
        o = json_loadb(line, (size_t)n, 0, &jerr);
        id = o ? json_object_get(o, "id") : NULL;
        if (!id && o)
            id = json_object_get(o, "activity_id");
        inbox = o ? json_object_get(o, "inbox") : NULL;
        if (!json_is_string(id) || !json_is_string(inbox)) {
            HD_LOG(HD_LOG_ERROR, "fedisim", "msg=\"bad --expect line\" line=%lu", lineno);
            json_decref(o);
            rv = HD_ERR_INVALID;
            break;
        }
        fs_pair_hash(json_string_value(id), json_string_length(id), json_string_value(inbox),
                     json_string_length(inbox), &a, &b);
        if (fs_pairset_add(st->expect, a, b) == 1)
            st->expect_count++;
        json_decref(o);
    }
    free(line);
    fclose(f);
    return rv;
}

/* ---- report ---- */

static int cmp_host(const void *x, const void *y)
{
    const struct fs_host *a = *(const struct fs_host *const *)x;
    const struct fs_host *b = *(const struct fs_host *const *)y;
    if (a->requests != b->requests)
        return a->requests < b->requests ? 1 : -1;
    return strcmp(a->name, b->name);
}

static json_t *host_json(const struct fs_host *h)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "requests", (json_int_t)h->requests,
                     "accepted", (json_int_t)h->accepted, "4xx", (json_int_t)h->s4xx, "5xx",
                     (json_int_t)h->s5xx, "bad_signature", (json_int_t)h->bad_signature,
                     "rate_limited", (json_int_t)h->rate_limited, "first_ms",
                     (json_int_t)h->first_ms, "last_ms", (json_int_t)h->last_ms);
}

json_t *fs_stats_report(const struct fs_stats *st, size_t top)
{
    json_t *o = json_object(), *bs = json_object(), *bp = json_object(), *ph = json_object();
    json_t *br = json_object();
    struct fs_host **all = NULL;
    size_t n = 0;

    if (!o || !bs || !bp || !ph || !br)
        goto fail;
    for (int i = 0; i < 600; i++) {
        char k[16];
        if (!st->by_status[i])
            continue;
        snprintf(k, sizeof(k), "%d", i);
        json_object_set_new(bs, k, json_integer((json_int_t)st->by_status[i]));
    }
    json_object_set_new(bp, "h2", json_integer((json_int_t)st->h2));
    json_object_set_new(bp, "h1", json_integer((json_int_t)st->h1));
    for (int i = 1; i < FS_BAD_LAST; i++)
        if (st->badsig_reason[i])
            json_object_set_new(br, fs_badsig_name((enum fs_badsig)i),
                                json_integer((json_int_t)st->badsig_reason[i]));

    /* The busiest `top` hosts by insertion into a small sorted array: one pass, no sort of
     * every host under the lock. */
    if (top > 0)
        all = malloc(top * sizeof(*all));
    if (all) {
        for (size_t i = 0; i < st->hosts.nslots; i++) {
            struct fs_host *h = st->hosts.slots[i];
            size_t at;
            if (!h || (n == top && cmp_host(&h, &all[n - 1]) >= 0))
                continue;
            at = n < top ? n : top - 1;
            while (at > 0 && cmp_host(&h, &all[at - 1]) < 0) {
                all[at] = all[at - 1];
                at--;
            }
            all[at] = h;
            if (n < top)
                n++;
        }
        for (size_t i = 0; i < n; i++)
            json_object_set_new(ph, all[i]->name, host_json(all[i]));
        free(all);
    }
    if (st->hosts.other.requests)
        json_object_set_new(ph, "_other", host_json(&st->hosts.other));

#define SETI(k, v) json_object_set_new(o, (k), json_integer((json_int_t)(v)))
    SETI("requests", st->requests);
    SETI("accepted", st->accepted);
    SETI("unique_pairs", st->pairs.count);
    SETI("duplicates", st->duplicates);
    SETI("duplicate_pairs", st->pairs.dup_pairs);
    SETI("pair_overflow", st->pairs.overflow);
    SETI("bad_signature", st->bad_signature);
    SETI("verified", st->verified);
    SETI("unverified", st->unverified);
    SETI("verified_cavage", st->verified_cavage);
    SETI("verified_rfc9421", st->verified_rfc9421);
    SETI("bad_json", st->bad_json);
    SETI("too_large", st->too_large);
    SETI("malformed", st->malformed);
    SETI("rate_limited", st->rate_limited);
    SETI("hangs", st->hangs);
    SETI("resets", st->resets);
    SETI("closes", st->closes);
    SETI("goaways", st->goaways);
    json_object_set_new(o, "by_status", bs);
    json_object_set_new(o, "by_proto", bp);
    json_object_set_new(o, "bad_signature_reasons", br);
    SETI("hosts", st->hosts.count + (st->hosts.other.requests ? 1 : 0));
    SETI("hosts_over_cap", st->hosts.other.requests ? 1 : 0);
    SETI("bytes_in", st->bytes_in);
    SETI("bytes_out", st->bytes_out);
    SETI("body_bytes", st->body_bytes);
    SETI("connections", st->conns);
    SETI("connections_refused", st->conns_refused);
    SETI("connections_hung", st->conns_hung);
    SETI("connections_over_limit", st->conns_over_limit);
    SETI("accept_errors", st->accept_errors);
    SETI("tls_failures", st->tls_failures);
    SETI("tls_full", st->tls_full);
    SETI("tls_resumed", st->tls_resumed);
    SETI("h1_preface_rejects", st->h1_preface_rejects);
    SETI("elapsed_s", time(NULL) - st->started);
    SETI("first_request_ms", st->first_request_ms);
    SETI("last_request_ms", st->last_request_ms);
    SETI("first_accept_ms", st->first_accept_ms);
    SETI("last_accept_ms", st->last_accept_ms);
    if (st->last_accept_ms > st->first_accept_ms)
        json_object_set_new(o, "accept_rate_per_s",
                            json_real((double)(st->accepted > 0 ? st->accepted - 1 : 0) * 1000.0 /
                                      (double)(st->last_accept_ms - st->first_accept_ms)));
    if (st->expect) {
        /* expected_seen counts first accepts of listed pairs as they happen: no scan of the
         * --expect table under the lock, which the runner polls twice a second. */
        uint64_t missing = st->expect_count - st->expected_seen;
        SETI("expected", st->expect_count);
        SETI("missing", missing);
        SETI("unexpected", st->unexpected);
    }
#undef SETI
    json_object_set_new(o, "per_host", ph);
    return o;
fail:
    json_decref(o);
    json_decref(bs);
    json_decref(bp);
    json_decref(ph);
    json_decref(br);
    return NULL;
}

/* Defederation rules: storage and the per-delivery snapshot. See rules.h for what each
 * severity means and why; rules_csv.c reads and writes Mastodon's domain-block CSV, and the
 * enforcement on queued deliveries is policy/enforce.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store_impl.h"
#include "codec.h"
#include "err.h"
#include "rules.h"
#include "strset.h"
#include "url.h"

#define KEY_BLOCK "block:"
#define KEY_ALLOW "allow:"
#define KEY_BLOCK_LEN 6
#define KEY_ALLOW_LEN 6
static const char key_gen[4] = {0, 'g', 'e', 'n'};
static const char key_mode[5] = {0, 'm', 'o', 'd', 'e'};

/* ------------------------------------------------------------------ names */

int hd_severity_parse(const char *s, size_t n)
{
    if (n == 7 && strncasecmp(s, "suspend", 7) == 0)
        return HD_SEV_SUSPEND;
    if (n == 7 && strncasecmp(s, "silence", 7) == 0)
        return HD_SEV_SILENCE;
    if ((n == 4 && strncasecmp(s, "noop", 4) == 0) || (n == 4 && strncasecmp(s, "none", 4) == 0))
        return HD_SEV_NOOP;
    return -1;
}

const char *hd_severity_name(int sev)
{
    switch (sev) {
    case HD_SEV_SUSPEND:
        return "suspend";
    case HD_SEV_SILENCE:
        return "silence";
    default:
        return "noop";
    }
}

int hd_rules_domain_norm(const char *in, char *out, size_t cap)
{
    char url[HD_DOMAIN_MAX + 16];
    struct hd_url u;
    size_t n;
    int wild = 0;

    while (*in == ' ' || *in == '\t')
        in++;
    n = strlen(in);
    while (n && (in[n - 1] == ' ' || in[n - 1] == '\t'))
        n--;
    if (n >= 2 && in[0] == '*' && in[1] == '.') {
        wild = 1;
        in += 2;
        n -= 2;
    }
    if (n == 0 || n >= HD_HOST_MAX)
        return HD_ERR_INVALID;
    /* Only a host name: the URL parser would read these as port, path, userinfo, etc. */
    for (size_t i = 0; i < n; i++)
        if (strchr(":/?#@%*[]\\ \t", in[i]) || (unsigned char)in[i] < 0x20)
            return HD_ERR_INVALID;
    snprintf(url, sizeof(url), "https://%.*s/", (int)n, in);
    if (hd_url_parse(url, &u) != 0)
        return HD_ERR_INVALID;
    if (strlen(u.host) + 3 > cap)
        return HD_ERR_INVALID;
    snprintf(out, cap, "%s%s", wild ? "*." : "", u.host);
    return 0;
}

/* ------------------------------------------------------------------ store */

static int bump_generation(struct hd_store *st, struct hd_txn *txn)
{
    uint8_t b[8];
    MDB_val k = {sizeof(key_gen), (void *)key_gen}, v = {8, b};

    hd_be64(b, hd_rules_generation(st, txn) + 1);
    return hd_store_err(hd_mdb_put(txn, st->rules, &k, &v, 0));
}

uint64_t hd_rules_generation(struct hd_store *st, struct hd_txn *txn)
{
    MDB_val k = {sizeof(key_gen), (void *)key_gen}, v;

    if (hd_mdb_get(txn, st->rules, &k, &v) != 0 || v.mv_size != 8)
        return 0;
    return hd_rd64(v.mv_data);
}

static size_t rule_key(char *key, const char *prefix, const char *domain)
{
    size_t pl = strlen(prefix), dl = strlen(domain);
    memcpy(key, prefix, pl);
    memcpy(key + pl, domain, dl);
    return pl + dl;
}

int hd_block_put(struct hd_store *st, struct hd_txn *txn, const struct hd_block *b)
{
    char key[HD_DOMAIN_MAX + 8];
    struct hd_enc e;
    MDB_val k, v;
    int rc;

    if (!b->domain[0] || strlen(b->domain) >= HD_DOMAIN_MAX)
        return HD_ERR_INVALID;
    k.mv_size = rule_key(key, KEY_BLOCK, b->domain);
    k.mv_data = key;
    hd_enc_init(&e);
    hd_enc_array(&e, 7);
    hd_enc_uint(&e, 1);
    hd_enc_uint(&e, (uint64_t)b->severity);
    hd_enc_uint(&e, b->reject_media ? 1 : 0);
    hd_enc_uint(&e, b->reject_reports ? 1 : 0);
    hd_enc_cstr(&e, b->comment);
    hd_enc_uint(&e, b->obfuscate ? 1 : 0);
    hd_enc_uint(&e, b->created_ms);
    rc = e.err;
    if (!rc) {
        v.mv_size = e.len;
        v.mv_data = e.buf;
        rc = hd_store_err(hd_mdb_put(txn, st->rules, &k, &v, 0));
    }
    hd_enc_fini(&e);
    return rc ? rc : bump_generation(st, txn);
}

static int decode_block(const MDB_val *k, const MDB_val *v, struct hd_block *b)
{
    struct hd_dec d;
    struct hd_slice s;
    size_t dl = k->mv_size - KEY_BLOCK_LEN;
    int rc = hd_dec_record(&d, v->mv_data, v->mv_size, 1, 7);

    if (rc)
        return rc;
    if (dl >= sizeof(b->domain))
        return HD_ERR_INVALID;
    memset(b, 0, sizeof(*b));
    memcpy(b->domain, (const char *)k->mv_data + KEY_BLOCK_LEN, dl);
    b->severity = (int)hd_dec_uint(&d, 1);
    b->reject_media = hd_dec_uint(&d, 2) != 0;
    b->reject_reports = hd_dec_uint(&d, 3) != 0;
    s = hd_dec_str(&d, 4);
    if (s.n >= sizeof(b->comment))
        s.n = sizeof(b->comment) - 1;
    if (s.p)
        memcpy(b->comment, s.p, s.n);
    b->obfuscate = hd_dec_uint(&d, 5) != 0;
    b->created_ms = hd_dec_uint(&d, 6);
    return 0;
}

int hd_block_get(struct hd_store *st, struct hd_txn *txn, const char *domain, struct hd_block *out)
{
    char key[HD_DOMAIN_MAX + 8];
    MDB_val k, v;
    int rc;

    if (strlen(domain) >= HD_DOMAIN_MAX)
        return HD_ERR_INVALID;
    k.mv_size = rule_key(key, KEY_BLOCK, domain);
    k.mv_data = key;
    rc = hd_store_err(hd_mdb_get(txn, st->rules, &k, &v));
    if (rc)
        return rc;
    return decode_block(&k, &v, out);
}

static int del_rule(struct hd_store *st, struct hd_txn *txn, const char *prefix, const char *domain)
{
    char key[HD_DOMAIN_MAX + 8];
    MDB_val k;
    int rc;

    if (strlen(domain) >= HD_DOMAIN_MAX)
        return HD_ERR_INVALID;
    k.mv_size = rule_key(key, prefix, domain);
    k.mv_data = key;
    rc = hd_store_err(hd_mdb_del(txn, st->rules, &k, NULL));
    return rc ? rc : bump_generation(st, txn);
}

int hd_block_del(struct hd_store *st, struct hd_txn *txn, const char *domain)
{
    return del_rule(st, txn, KEY_BLOCK, domain);
}

int hd_allow_del(struct hd_store *st, struct hd_txn *txn, const char *domain)
{
    return del_rule(st, txn, KEY_ALLOW, domain);
}

int hd_allow_put(struct hd_store *st, struct hd_txn *txn, const char *domain, uint64_t now_ms)
{
    char key[HD_DOMAIN_MAX + 8];
    struct hd_enc e;
    MDB_val k, v;
    int rc;

    if (!domain[0] || strlen(domain) >= HD_DOMAIN_MAX)
        return HD_ERR_INVALID;
    k.mv_size = rule_key(key, KEY_ALLOW, domain);
    k.mv_data = key;
    hd_enc_init(&e);
    hd_enc_array(&e, 2);
    hd_enc_uint(&e, 1);
    hd_enc_uint(&e, now_ms);
    rc = e.err;
    if (!rc) {
        v.mv_size = e.len;
        v.mv_data = e.buf;
        rc = hd_store_err(hd_mdb_put(txn, st->rules, &k, &v, 0));
    }
    hd_enc_fini(&e);
    return rc ? rc : bump_generation(st, txn);
}

/* Visits the rules whose key starts with prefix, in key order. */
typedef int (*rule_cb)(const MDB_val *k, const MDB_val *v, void *user_data);
static int foreach_prefix(struct hd_store *st, struct hd_txn *txn, const char *prefix, rule_cb cb,
                          void *user_data)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t pl = strlen(prefix);
    int rc = hd_store_err(hd_mdb_cursor_open(txn, st->rules, &cur)), mrc;

    if (rc)
        return rc;
    k.mv_size = pl;
    k.mv_data = (void *)prefix;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (mrc == 0) {
        if (k.mv_size <= pl || memcmp(k.mv_data, prefix, pl) != 0)
            break;
        rc = cb(&k, &v, user_data); /* <0 error, >0 stop */
        if (rc)
            break;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc)
        return rc < 0 ? rc : 0;
    return mrc == MDB_NOTFOUND ? 0 : hd_store_err(mrc);
}

struct block_it {
    hd_block_cb cb;
    hd_allow_cb acb;
    void *ud;
    int stopped;
};

static int on_block_rule(const MDB_val *k, const MDB_val *v, void *user_data)
{
    struct block_it *it = user_data;
    struct hd_block b;
    int rc = decode_block(k, v, &b);
    if (rc)
        return rc;
    if (it->cb(&b, it->ud)) {
        it->stopped = 1;
        return 1;
    }
    return 0;
}

int hd_block_foreach(struct hd_store *st, struct hd_txn *txn, hd_block_cb cb, void *user_data)
{
    struct block_it it = {cb, NULL, user_data, 0};
    return foreach_prefix(st, txn, KEY_BLOCK, on_block_rule, &it);
}

static int on_allow_rule(const MDB_val *k, const MDB_val *v, void *user_data)
{
    struct block_it *it = user_data;
    char dom[HD_DOMAIN_MAX];
    struct hd_dec d;
    size_t dl = k->mv_size - KEY_ALLOW_LEN;
    int rc = hd_dec_record(&d, v->mv_data, v->mv_size, 1, 2);

    if (rc)
        return rc;
    if (dl >= sizeof(dom))
        return HD_ERR_INVALID;
    memcpy(dom, (const char *)k->mv_data + KEY_ALLOW_LEN, dl);
    dom[dl] = 0;
    if (it->acb(dom, hd_dec_uint(&d, 1), it->ud)) {
        it->stopped = 1;
        return 1;
    }
    return 0;
}

int hd_allow_foreach(struct hd_store *st, struct hd_txn *txn, hd_allow_cb cb, void *user_data)
{
    struct block_it it = {NULL, cb, user_data, 0};
    return foreach_prefix(st, txn, KEY_ALLOW, on_allow_rule, &it);
}

int hd_rules_mode_get(struct hd_store *st, struct hd_txn *txn, int *mode)
{
    MDB_val k = {sizeof(key_mode), (void *)key_mode}, v;
    struct hd_dec d;
    int rc = hd_mdb_get(txn, st->rules, &k, &v);

    *mode = HD_MODE_OPEN;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return hd_store_err(rc);
    rc = hd_dec_record(&d, v.mv_data, v.mv_size, 1, 2);
    if (rc)
        return rc;
    *mode = hd_dec_uint(&d, 1) == HD_MODE_ALLOWLIST ? HD_MODE_ALLOWLIST : HD_MODE_OPEN;
    return 0;
}

int hd_rules_mode_set(struct hd_store *st, struct hd_txn *txn, int mode)
{
    MDB_val k = {sizeof(key_mode), (void *)key_mode}, v;
    struct hd_enc e;
    int rc;

    if (mode != HD_MODE_OPEN && mode != HD_MODE_ALLOWLIST)
        return HD_ERR_INVALID;
    hd_enc_init(&e);
    hd_enc_array(&e, 2);
    hd_enc_uint(&e, 1);
    hd_enc_uint(&e, (uint64_t)mode);
    rc = e.err;
    if (!rc) {
        v.mv_size = e.len;
        v.mv_data = e.buf;
        rc = hd_store_err(hd_mdb_put(txn, st->rules, &k, &v, 0));
    }
    hd_enc_fini(&e);
    return rc ? rc : bump_generation(st, txn);
}

/* ------------------------------------------------------------------ snapshot */

#define F_BLOCK 1     /* a suspend covering the domain and its subdomains */
#define F_BLOCK_SUB 2 /* a suspend covering the subdomains only ("*.") */
#define F_ALLOW 4
#define F_ALLOW_SUB 8

struct rslot {
    uint64_t hash;
    uint32_t off, len; /* into arena; len 0 = empty slot */
    uint8_t flags;
};

struct hd_rules {
    int mode;
    uint64_t generation;
    size_t n, mask;
    struct rslot *tab;
    char *arena;
    size_t arena_len, arena_cap;
};

static const struct rslot *find_slot(const struct hd_rules *r, const char *p, size_t n,
                                     uint64_t h)
{
    for (size_t i = h & r->mask;; i = (i + 1) & r->mask) {
        const struct rslot *s = &r->tab[i];
        if (!s->len)
            return s;
        if (s->hash == h && s->len == n && memcmp(r->arena + s->off, p, n) == 0)
            return s;
    }
}

static void add_rule(struct hd_rules *r, const char *dom, size_t n, uint8_t flag)
{
    uint64_t h;
    struct rslot *s;

    if (n == 0 || r->arena_len + n > r->arena_cap)
        return; /* cannot happen: sized by the counting pass in the same txn */
    h = hd_hash64(dom, n);
    s = (struct rslot *)find_slot(r, dom, n, h);
    if (!s->len) {
        memcpy(r->arena + r->arena_len, dom, n);
        s->hash = h;
        s->off = (uint32_t)r->arena_len;
        s->len = (uint32_t)n;
        r->arena_len += n;
        r->n++;
    }
    s->flags |= flag;
}

struct load_ctx {
    struct hd_rules *r;
    int counting;
    size_t count, bytes;
    int is_allow;
};

static int on_load_rule(const MDB_val *k, const MDB_val *v, void *user_data)
{
    struct load_ctx *lc = user_data;
    const char *dom = (const char *)k->mv_data + KEY_BLOCK_LEN; /* both prefixes are 6 long */
    size_t n = k->mv_size - KEY_BLOCK_LEN;
    int wild = n > 2 && dom[0] == '*' && dom[1] == '.';
    uint8_t flag;

    if (!lc->is_allow) {
        struct hd_dec d;
        if (hd_dec_record(&d, v->mv_data, v->mv_size, 1, 2) != 0)
            return HD_ERR_INVALID;
        if (hd_dec_uint(&d, 1) != HD_SEV_SUSPEND)
            return 0;
    }
    if (lc->counting) {
        lc->count++;
        lc->bytes += n;
        return 0;
    }
    if (wild) {
        dom += 2;
        n -= 2;
    }
    flag = lc->is_allow ? (wild ? F_ALLOW_SUB : F_ALLOW) : (wild ? F_BLOCK_SUB : F_BLOCK);
    add_rule(lc->r, dom, n, flag);
    return 0;
}

int hd_rules_load(struct hd_store *st, struct hd_txn *txn, struct hd_rules **out)
{
    struct load_ctx lc = {NULL, 1, 0, 0, 0};
    struct hd_rules *r;
    size_t cap = 16;
    int rc;

    /* Counting pass, then a table sized once: no rehashing, and a snapshot is one arena. */
    rc = foreach_prefix(st, txn, KEY_BLOCK, on_load_rule, &lc);
    lc.is_allow = 1;
    if (!rc)
        rc = foreach_prefix(st, txn, KEY_ALLOW, on_load_rule, &lc);
    if (rc)
        return rc;
    while (cap < lc.count * 2 + 2)
        cap *= 2;
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->tab = calloc(cap, sizeof(*r->tab));
    r->arena_cap = lc.bytes + 1;
    r->arena = malloc(r->arena_cap);
    if (!r->tab || !r->arena) {
        hd_rules_free(r);
        return -ENOMEM;
    }
    r->mask = cap - 1;
    lc.r = r;
    lc.counting = 0;
    lc.is_allow = 0;
    rc = foreach_prefix(st, txn, KEY_BLOCK, on_load_rule, &lc);
    lc.is_allow = 1;
    if (!rc)
        rc = foreach_prefix(st, txn, KEY_ALLOW, on_load_rule, &lc);
    if (!rc)
        rc = hd_rules_mode_get(st, txn, &r->mode);
    if (rc) {
        hd_rules_free(r);
        return rc;
    }
    r->generation = hd_rules_generation(st, txn);
    *out = r;
    return 0;
}

void hd_rules_free(struct hd_rules *r)
{
    if (!r)
        return;
    free(r->tab);
    free(r->arena);
    free(r);
}

int hd_rules_snapshot_mode(const struct hd_rules *r)
{
    return r->mode;
}

uint64_t hd_rules_snapshot_generation(const struct hd_rules *r)
{
    return r ? r->generation : 0;
}

size_t hd_rules_count(const struct hd_rules *r)
{
    return r ? r->n : 0;
}

/* Copies host into buf lower-cased without a trailing dot. Returns its length, 0 if empty
 * or too long. */
static size_t host_fold(const char *host, char *buf, size_t cap)
{
    size_t n = strlen(host);
    while (n && host[n - 1] == '.')
        n--;
    if (n == 0 || n >= cap)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = host[i];
        buf[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
    }
    buf[n] = 0;
    return n;
}

int hd_rules_allows(const struct hd_rules *r, const char *host)
{
    char buf[HD_HOST_MAX];
    size_t n, pos = 0;
    int allowed = 0;

    if (!r)
        return 1;
    if (r->n == 0)
        return r->mode == HD_MODE_OPEN;
    n = host_fold(host, buf, sizeof(buf));
    if (n == 0)
        return r->mode == HD_MODE_OPEN;
    for (;;) {
        const char *s = buf + pos, *dot;
        size_t sl = n - pos;
        uint8_t f = find_slot(r, s, sl, hd_hash64(s, sl))->flags;
        uint8_t blk = pos == 0 ? F_BLOCK : F_BLOCK | F_BLOCK_SUB;
        uint8_t alw = pos == 0 ? F_ALLOW : F_ALLOW | F_ALLOW_SUB;
        if (f & blk)
            return 0;
        if (f & alw)
            allowed = 1;
        dot = memchr(s, '.', sl);
        if (!dot)
            break;
        pos = (size_t)(dot - buf) + 1;
    }
    return r->mode == HD_MODE_ALLOWLIST ? allowed : 1;
}

/* Store-backed lookups for hd_rules_check: 1 if a rule with prefix exists for the "*."
 * form (wild) or the plain form of suffix s; for blocks, only a suspend counts. */
static int rule_exists(struct hd_store *st, struct hd_txn *txn, const char *prefix, int wild,
                       const char *s, size_t n)
{
    char key[HD_DOMAIN_MAX + 8];
    size_t pl = strlen(prefix), kl = pl;
    MDB_val k, v;
    struct hd_dec d;
    int rc;

    memcpy(key, prefix, pl);
    if (wild) {
        memcpy(key + kl, "*.", 2);
        kl += 2;
    }
    memcpy(key + kl, s, n);
    k.mv_size = kl + n;
    k.mv_data = key;
    rc = hd_mdb_get(txn, st->rules, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return hd_store_err(rc);
    if (prefix[0] == 'a')
        return 1;
    if (hd_dec_record(&d, v.mv_data, v.mv_size, 1, 2) != 0)
        return HD_ERR_INVALID;
    return hd_dec_uint(&d, 1) == HD_SEV_SUSPEND;
}

int hd_rules_check(struct hd_store *st, struct hd_txn *txn, const char *host)
{
    char buf[HD_HOST_MAX];
    size_t n, pos = 0;
    int mode, rc, allowed = 0;

    rc = hd_rules_mode_get(st, txn, &mode);
    if (rc)
        return rc;
    if (hd_rules_generation(st, txn) == 0)
        return 1; /* never had a rule */
    n = host_fold(host, buf, sizeof(buf));
    if (n == 0)
        return mode == HD_MODE_OPEN;
    for (;;) {
        const char *s = buf + pos, *dot;
        size_t sl = n - pos;
        rc = rule_exists(st, txn, KEY_BLOCK, 0, s, sl);
        if (!rc && pos)
            rc = rule_exists(st, txn, KEY_BLOCK, 1, s, sl);
        if (rc < 0)
            return rc;
        if (rc)
            return 0;
        if (mode == HD_MODE_ALLOWLIST && !allowed) {
            rc = rule_exists(st, txn, KEY_ALLOW, 0, s, sl);
            if (!rc && pos)
                rc = rule_exists(st, txn, KEY_ALLOW, 1, s, sl);
            if (rc < 0)
                return rc;
            allowed = rc;
        }
        dot = memchr(s, '.', sl);
        if (!dot)
            break;
        pos = (size_t)(dot - buf) + 1;
    }
    return mode == HD_MODE_ALLOWLIST ? allowed : 1;
}

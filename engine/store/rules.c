/* Defederation rules: storage, the per-delivery snapshot, enforcement on the queue, and
 * Mastodon's domain-block CSV. See rules.h for what each severity means and why. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store_impl.h"
#include "codec.h"
#include "err.h"
#include "queue.h"
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

/* ------------------------------------------------------------------ enforcement */

int hd_queue_drop_host(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                       const char *host, uint64_t *dropped)
{
    size_t hl = strlen(host);
    uint8_t kb[HD_QKEY_MAX];
    uint64_t n = 0, nretry = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    struct hd_host_rec h;
    int rc;

    if (hl == 0 || hl >= HD_HOST_MAX)
        return HD_ERR_INVALID;
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->queue, &cur));
    if (rc)
        return rc;
    memcpy(kb, host, hl);
    kb[hl] = 0;
    k.mv_size = hl + 1;
    k.mv_data = kb;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0) {
        struct hd_dec d;
        uint64_t seq;
        if (k.mv_size != hl + 13 || memcmp(k.mv_data, host, hl) != 0 ||
            ((const uint8_t *)k.mv_data)[hl] != 0)
            break;
        if (hd_dec_record(&d, v.mv_data, v.mv_size, 1, 3) == 0 && hd_dec_uint(&d, 2) > 0)
            nretry++;
        memcpy(kb, k.mv_data, k.mv_size);
        seq = hd_rd64(kb + hl + 1);
        rc = mdb_cursor_del(cur, 0);
        if (rc)
            break;
        rc = hd_queue_act_done(st, txn, seq);
        if (rc) {
            mdb_cursor_close(cur);
            return rc;
        }
        n++;
        /* Re-seek from the deleted key: the next entry sorts after it. */
        k.mv_size = hl + 13;
        k.mv_data = kb;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return hd_store_err(rc);
    if (n) {
        rc = hd_host_get(st, txn, host, hl, &h);
        if (rc == 0) {
            h.queued = h.queued > n ? h.queued - n : 0;
            h.retrying = h.retrying > nretry ? h.retrying - nretry : 0;
            rc = hd_host_put(st, txn, host, hl, &h);
        } else if (rc == HD_ERR_NOT_FOUND) {
            rc = 0;
        }
        if (rc)
            return rc;
    }
    c->dropped += n;
    if (dropped)
        *dropped += n;
    return 0;
}

#define ENFORCE_NAMES_MAX (64u << 20)

int hd_rules_enforce(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                     const struct hd_rules *r, uint64_t *dropped, uint64_t *hosts)
{
    MDB_cursor *cur;
    MDB_val k, v;
    char *names = NULL;
    size_t len = 0, cap = 0;
    uint64_t nh = 0, nd = 0;
    int rc, mrc = 0, op = MDB_FIRST;

    if (r->n == 0 && r->mode == HD_MODE_OPEN)
        goto done;
    /* Collect first, then drop: dropping rewrites host records under this cursor. */
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->hosts, &cur));
    if (rc)
        return rc;
    rc = 0;
    for (;;) {
        char host[HD_HOST_MAX];
        mrc = mdb_cursor_get(cur, &k, &v, op);
        if (mrc)
            break;
        op = MDB_NEXT;
        if (k.mv_size == 0 || k.mv_size >= sizeof(host))
            continue;
        memcpy(host, k.mv_data, k.mv_size);
        host[k.mv_size] = 0;
        if (hd_rules_allows(r, host))
            continue;
        if (len + k.mv_size + 1 > cap) {
            size_t nc = cap ? cap * 2 : 4096;
            char *p;
            while (nc < len + k.mv_size + 1)
                nc *= 2;
            if (nc > ENFORCE_NAMES_MAX) {
                rc = HD_ERR_FULL;
                break;
            }
            p = realloc(names, nc);
            if (!p) {
                rc = -ENOMEM;
                break;
            }
            names = p;
            cap = nc;
        }
        memcpy(names + len, host, k.mv_size + 1);
        len += k.mv_size + 1;
    }
    mdb_cursor_close(cur);
    if (!rc && mrc != MDB_NOTFOUND)
        rc = hd_store_err(mrc);
    if (rc) {
        free(names);
        return rc;
    }
    for (size_t off = 0; off < len; off += strlen(names + off) + 1) {
        uint64_t before = nd;
        rc = hd_queue_drop_host(st, txn, c, names + off, &nd);
        if (rc) {
            free(names);
            return rc;
        }
        if (nd > before)
            nh++;
    }
    free(names);
done:
    if (dropped)
        *dropped = nd;
    if (hosts)
        *hosts = nh;
    return 0;
}

/* ------------------------------------------------------------------ CSV */

enum { COL_DOMAIN, COL_SEVERITY, COL_MEDIA, COL_REPORTS, COL_COMMENT, COL_OBFUSCATE, NCOLS };
static const char *const col_names[NCOLS] = {"domain",         "severity",      "reject_media",
                                             "reject_reports", "public_comment", "obfuscate"};

#define CSV_MAX_FIELDS 32
#define CSV_SCRATCH 16384

struct csv_rec {
    size_t line;
    size_t nf;
    size_t off[CSV_MAX_FIELDS], len[CSV_MAX_FIELDS];
    char buf[CSV_SCRATCH];
    size_t used;
    const char *err;
};

static void import_error(struct hd_import *im, size_t line, const char *fmt, const char *arg)
{
    im->nerr_total++;
    if (im->nerr >= HD_IMPORT_MAX_ERRORS)
        return;
    if (!im->errs) {
        im->errs = calloc(HD_IMPORT_MAX_ERRORS, sizeof(*im->errs));
        if (!im->errs)
            return;
    }
    im->errs[im->nerr].line = line;
    snprintf(im->errs[im->nerr].why, sizeof(im->errs[0].why), fmt, arg ? arg : "");
    im->nerr++;
}

static void rec_put(struct csv_rec *r, char c)
{
    if (r->used + 1 >= CSV_SCRATCH) {
        r->err = "record longer than 16 KiB";
        return;
    }
    r->buf[r->used++] = c;
}

/* Reads one record starting at buf[*i]; advances *i and *line. Returns 0, or -1 when the
 * rest of the input cannot be parsed (unterminated quote). */
static int csv_read(const char *buf, size_t len, size_t *i, size_t *line, struct csv_rec *r)
{
    size_t p = *i;

    r->line = *line;
    r->nf = 0;
    r->used = 0;
    r->err = NULL;
    for (;;) {
        size_t start = r->used;
        if (p < len && buf[p] == '"') {
            p++;
            for (;;) {
                if (p >= len) {
                    r->err = "unterminated quoted field";
                    *i = len;
                    return -1;
                }
                if (buf[p] == '"') {
                    if (p + 1 < len && buf[p + 1] == '"') {
                        rec_put(r, '"');
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                if (buf[p] == '\n')
                    (*line)++;
                rec_put(r, buf[p++]);
            }
            if (p < len && buf[p] == '\r' && p + 1 < len && buf[p + 1] == '\n')
                p++;
            if (p < len && buf[p] != ',' && buf[p] != '\n') {
                r->err = "characters after a closing quote";
                while (p < len && buf[p] != '\n')
                    p++;
            }
        } else {
            while (p < len && buf[p] != ',' && buf[p] != '\n') {
                if (buf[p] == '"' && !r->err)
                    r->err = "quote inside an unquoted field";
                rec_put(r, buf[p++]);
            }
            if (r->used > start && r->buf[r->used - 1] == '\r' && (p >= len || buf[p] == '\n'))
                r->used--;
        }
        if (r->nf < CSV_MAX_FIELDS) {
            r->off[r->nf] = start;
            r->len[r->nf] = r->used - start;
            r->nf++;
        } else if (!r->err) {
            r->err = "too many columns";
        }
        if (p < len && buf[p] == ',') {
            p++;
            continue;
        }
        if (p < len && buf[p] == '\n') {
            p++;
            (*line)++;
        }
        break;
    }
    *i = p;
    return 0;
}

static void trim(const char **p, size_t *n)
{
    while (*n && (**p == ' ' || **p == '\t')) {
        (*p)++;
        (*n)--;
    }
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
        (*n)--;
}

static int parse_bool(const char *p, size_t n)
{
    trim(&p, &n);
    if (n == 0)
        return 0;
    if ((n == 4 && !strncasecmp(p, "true", 4)) || (n == 1 && (*p == '1' || *p == 't' || *p == 'T')) ||
        (n == 3 && !strncasecmp(p, "yes", 3)))
        return 1;
    if ((n == 5 && !strncasecmp(p, "false", 5)) || (n == 1 && (*p == '0' || *p == 'f' || *p == 'F')) ||
        (n == 2 && !strncasecmp(p, "no", 2)))
        return 0;
    return -1;
}

/* Comments end up in JSON listings: only well-formed UTF-8 (no overlongs, surrogates or
 * code points past U+10FFFF) is accepted. */
int hd_rules_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        unsigned c = *p++;
        size_t more;
        unsigned cp, min;
        if (c < 0x80)
            continue;
        if (c >= 0xC2 && c <= 0xDF) {
            more = 1;
            cp = c & 0x1F;
            min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            more = 2;
            cp = c & 0x0F;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return 0;
        }
        if ((size_t)(e - p) < more)
            return 0;
        for (size_t i = 0; i < more; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        p += more;
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
    }
    return 1;
}

static int add_block(struct hd_import *im, const struct hd_block *b)
{
    if (im->n == im->cap) {
        size_t nc = im->cap ? im->cap * 2 : 64;
        struct hd_block *p;
        if (im->n >= HD_IMPORT_MAX_ROWS)
            return HD_ERR_FULL;
        p = realloc(im->blocks, nc * sizeof(*p));
        if (!p)
            return -ENOMEM;
        im->blocks = p;
        im->cap = nc;
    }
    im->blocks[im->n++] = *b;
    return 0;
}

/* Validates one data record into a block. Returns 0, 1 (bad: error recorded), or <0. */
static int import_row(struct hd_import *im, const struct csv_rec *r, const int *map)
{
    struct hd_block b;
    char dom[HD_DOMAIN_MAX + 1];
    const char *p;
    size_t n;
    int v;

    memset(&b, 0, sizeof(b));
    b.severity = HD_SEV_SUSPEND;
    for (int c = 0; c < NCOLS; c++) {
        if (map[c] < 0 || (size_t)map[c] >= r->nf) {
            if (c == COL_DOMAIN) {
                import_error(im, r->line, "no domain%s", NULL);
                return 1;
            }
            continue;
        }
        p = r->buf + r->off[map[c]];
        n = r->len[map[c]];
        switch (c) {
        case COL_DOMAIN:
            trim(&p, &n);
            if (n >= sizeof(dom)) {
                import_error(im, r->line, "domain too long%s", NULL);
                return 1;
            }
            memcpy(dom, p, n);
            dom[n] = 0;
            if (hd_rules_domain_norm(dom, b.domain, sizeof(b.domain)) != 0) {
                import_error(im, r->line, "invalid domain \"%.100s\"", dom);
                return 1;
            }
            break;
        case COL_SEVERITY:
            trim(&p, &n);
            if (n == 0)
                break; /* Mastodon's import default */
            v = hd_severity_parse(p, n);
            if (v < 0) {
                char sev[64];
                snprintf(sev, sizeof(sev), "%.*s", (int)(n < 40 ? n : 40), p);
                import_error(im, r->line, "unknown severity \"%s\" (suspend, silence or noop)",
                             sev);
                return 1;
            }
            b.severity = v;
            break;
        case COL_COMMENT:
            if (n >= sizeof(b.comment)) {
                import_error(im, r->line, "public comment longer than 1023 bytes%s", NULL);
                return 1;
            }
            if (!hd_rules_utf8_valid(p, n) || memchr(p, 0, n)) {
                import_error(im, r->line, "public comment is not valid UTF-8 text%s", NULL);
                return 1;
            }
            memcpy(b.comment, p, n);
            b.comment[n] = 0;
            break;
        default:
            v = parse_bool(p, n);
            if (v < 0) {
                import_error(im, r->line, "%s must be true or false", col_names[c]);
                return 1;
            }
            if (c == COL_MEDIA)
                b.reject_media = v;
            else if (c == COL_REPORTS)
                b.reject_reports = v;
            else
                b.obfuscate = v;
        }
    }
    return add_block(im, &b);
}

/* A header row names a "#domain" column (Mastodon's spelling) and nothing but column names
 * ("#anything" or a known name), so a data row cannot be taken for one even when a comment
 * says "#domain". "domain" without '#' counts only next to another known column name, so a
 * block of the one-label domain "domain" ("domain,suspend,...") still reads as data. */
static int is_header(const struct csv_rec *r)
{
    int hash_domain = 0, plain_domain = 0, other_col = 0;
    for (size_t f = 0; f < r->nf; f++) {
        const char *p = r->buf + r->off[f];
        size_t n = r->len[f];
        int hash = 0, known = 0;
        trim(&p, &n);
        if (n == 0)
            continue;
        if (*p == '#') {
            hash = 1;
            p++;
            n--;
        }
        for (int c = 0; c < NCOLS; c++)
            if (strlen(col_names[c]) == n && !strncasecmp(p, col_names[c], n))
                known = c == COL_DOMAIN ? 1 : 2;
        if (known == 1 && hash)
            hash_domain = 1;
        else if (known == 1)
            plain_domain = 1;
        else if (known == 2)
            other_col = 1;
        else if (!hash)
            return 0; /* a value, not a column name */
    }
    return hash_domain || (plain_domain && other_col);
}

int hd_blocks_parse_csv(const char *buf, size_t len, struct hd_import *out)
{
    struct csv_rec *r = malloc(sizeof(*r));
    size_t i = 0, line = 1;
    int map[NCOLS], have_map = 0, rc = 0;

    memset(out, 0, sizeof(*out));
    if (!r)
        return -ENOMEM;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        i = 3; /* UTF-8 byte order mark (spreadsheet exports) */
    for (int c = 0; c < NCOLS; c++)
        map[c] = c;
    while (i < len && rc >= 0) {
        int stop = csv_read(buf, len, &i, &line, r);
        const char *f0 = r->buf + (r->nf ? r->off[0] : 0);
        size_t n0 = r->nf ? r->len[0] : 0;
        if (r->err) {
            import_error(out, r->line, "%s", r->err);
            if (stop)
                break;
            continue;
        }
        trim(&f0, &n0);
        if (r->nf == 1 && n0 == 0)
            continue; /* blank line */
        if (!have_map && is_header(r)) {
            /* Header row: columns by name, in any order. */
            have_map = 1;
            for (int c = 0; c < NCOLS; c++)
                map[c] = -1;
            for (size_t f = 0; f < r->nf; f++) {
                const char *p = r->buf + r->off[f];
                size_t n = r->len[f];
                trim(&p, &n);
                if (n && *p == '#') {
                    p++;
                    n--;
                }
                for (int c = 0; c < NCOLS; c++)
                    if (strlen(col_names[c]) == n && !strncasecmp(p, col_names[c], n))
                        map[c] = (int)f;
            }
            if (map[COL_DOMAIN] < 0) {
                import_error(out, r->line, "header row has no #domain column%s", NULL);
                break;
            }
            continue;
        }
        if (n0 > 0 && f0[0] == '#')
            continue; /* a comment line (domains never start with '#') */
        have_map = 1; /* a header may come only before the first data row */
        rc = import_row(out, r, map);
        if (rc > 0)
            rc = 0;
    }
    free(r);
    return rc < 0 ? rc : 0;
}

void hd_import_fini(struct hd_import *im)
{
    free(im->blocks);
    free(im->errs);
    memset(im, 0, sizeof(*im));
}

static int csv_needs_quotes(const char *s)
{
    size_t n = strlen(s);
    if (n && (s[0] == ' ' || s[n - 1] == ' ' || s[0] == '#'))
        return 1;
    return strpbrk(s, ",\"\r\n") != NULL;
}

int hd_block_csv_row(const struct hd_block *b, char *buf, size_t cap)
{
    size_t n = 0;
    int w = snprintf(buf, cap, "%s,%s,%s,%s,", b->domain, hd_severity_name(b->severity),
                     b->reject_media ? "true" : "false", b->reject_reports ? "true" : "false");
    if (w < 0 || (size_t)w >= cap)
        return HD_ERR_FULL;
    n = (size_t)w;
    if (csv_needs_quotes(b->comment)) {
        if (n + 1 >= cap)
            return HD_ERR_FULL;
        buf[n++] = '"';
        for (const char *p = b->comment; *p; p++) {
            if (n + 2 >= cap)
                return HD_ERR_FULL;
            if (*p == '"')
                buf[n++] = '"';
            buf[n++] = *p;
        }
        if (n + 1 >= cap)
            return HD_ERR_FULL;
        buf[n++] = '"';
    } else {
        size_t cl = strlen(b->comment);
        if (n + cl >= cap)
            return HD_ERR_FULL;
        memcpy(buf + n, b->comment, cl);
        n += cl;
    }
    w = snprintf(buf + n, cap - n, ",%s", b->obfuscate ? "true" : "false");
    if (w < 0 || (size_t)w >= cap - n)
        return HD_ERR_FULL;
    return (int)(n + (size_t)w);
}

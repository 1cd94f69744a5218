/* The writer of audiences: a batch of follows and unfollows, validated and normalised as
 * they are added, applied in key order with aggregated reference-count changes (see
 * audience.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_impl.h"
#include "audience.h"
#include "audience_impl.h"
#include "collsync.h"
#include "codec.h"
#include "err.h"
#include "log.h"
#include "strset.h"
#include "url.h"

#define BATCH_MAX_OPS (1u << 24)
#define ARENA_MAX ((size_t)1 << 30)

struct op {
    uint64_t off;   /* arena: key body (code + rest), value, delivery URL */
    uint32_t actor; /* index in the batch's actor table */
    uint32_t aid;   /* its actor id, set by apply (the sort key's first part) */
    uint32_t seq;   /* order of addition: the last operation on a key wins */
    uint16_t klen, vlen, dlen;
    uint8_t remove;
    uint8_t dshared; /* the delivery inbox is the follower's shared inbox */
};

struct bactor {
    char *name;
    uint32_t aid;
    int has_add, exists;
    uint64_t follows, inboxes; /* as stored, then updated by apply */
};

/* Normalised-origin cache: every follower on a host shares its origin, and hd_url_parse was
 * the bulk of an import's CPU after JSON. Direct-mapped, exact-match. */
#define NCACHE_SLOTS 4096
#define NCACHE_LEN 160
struct ncache {
    uint64_t h;
    uint16_t in_len, out_len;
    char in[NCACHE_LEN], out[NCACHE_LEN];
};

struct hd_follow_batch {
    struct ncache *nc; /* NCACHE_SLOTS, allocated on first use */
    struct op *ops;
    size_t nops, capops;
    char *arena;
    size_t alen, acap;
    struct bactor *actors;
    size_t nactors, capactors;
    uint32_t *amap; /* actor name hash -> index + 1 */
    size_t amap_cap;
    struct hd_enc enc;
};

/* A reference-count change of one delivery inbox of one actor. */
struct delta {
    uint64_t off; /* URL in the arena */
    uint32_t aid;
    uint16_t len;
    int32_t ds, dp; /* changes of the shared and the personal reference counts */
};

struct dmap {
    struct delta *slot; /* len == 0: empty */
    size_t cap, n;
};

static size_t common_prefix(const char *a, size_t an, const char *b, size_t bn)
{
    size_t i = 0, n = an < bn ? an : bn;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* Normalises an inbox URL into out (cap HD_FOLLOW_URL_MAX + 1). */
static int normalise_url(const char *in, char *out, const char **why)
{
    struct hd_url u;
    char buf[HD_URL_MAX + HD_HOST_MAX + 16];

    if (hd_url_parse(in, &u) != 0) {
        *why = "not an absolute http(s) URL";
        return HD_ERR_INVALID;
    }
    if (hd_url_format(&u, buf, sizeof(buf)) != 0 || strlen(buf) > HD_FOLLOW_URL_MAX) {
        *why = "URL longer than 500 bytes";
        return HD_ERR_INVALID;
    }
    memcpy(out, buf, strlen(buf) + 1);
    return 0;
}

/* Path characters hd_url_parse copies unchanged (no percent sign, no fragment, nothing it
 * re-encodes or refuses). */
static int path_char_plain(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-._~/!$&'()*+,;=:@?", c));
}

/* Normalises through the cache: the origin ("https://Host:443") of a URL whose path is
 * plain is normalised once per origin and the path appended as is, which is exactly what
 * hd_url_parse + hd_url_format produce; anything else takes the full parser. */
static int normalise(struct hd_follow_batch *b, const char *in, char *out, const char **why)
{
    const char *sep = strstr(in, "://"), *path;
    size_t n = strlen(in), ol, pl;
    struct ncache *e;
    uint64_t h;

    if (!sep || n > HD_FOLLOW_URL_MAX)
        return normalise_url(in, out, why);
    path = sep + 3 + strcspn(sep + 3, "/?#\\");
    if (*path != '/')
        return normalise_url(in, out, why);
    for (const char *q = path; *q; q++)
        if (!path_char_plain((unsigned char)*q))
            return normalise_url(in, out, why);
    ol = (size_t)(path - in);
    pl = n - ol;
    if (ol + 1 >= NCACHE_LEN)
        return normalise_url(in, out, why);
    if (!b->nc) {
        b->nc = calloc(NCACHE_SLOTS, sizeof(*b->nc));
        if (!b->nc)
            return normalise_url(in, out, why);
    }
    h = hd_hash64(in, ol);
    e = &b->nc[h & (NCACHE_SLOTS - 1)];
    if (!(e->h == h && e->in_len == ol && e->out_len && !memcmp(e->in, in, ol))) {
        char origin[NCACHE_LEN + 1], norm[HD_FOLLOW_URL_MAX + 1];
        size_t nl;
        int rc;
        memcpy(origin, in, ol);
        origin[ol] = '/';
        origin[ol + 1] = 0;
        rc = normalise_url(origin, norm, why);
        if (rc)
            return rc;
        nl = strlen(norm);
        if (nl < 2 || norm[nl - 1] != '/' || nl - 1 >= NCACHE_LEN)
            return normalise_url(in, out, why);
        e->h = h;
        e->in_len = (uint16_t)ol;
        e->out_len = (uint16_t)(nl - 1);
        memcpy(e->in, in, ol);
        memcpy(e->out, norm, nl - 1);
    }
    if (e->out_len + pl > HD_FOLLOW_URL_MAX) {
        *why = "URL longer than 500 bytes";
        return HD_ERR_INVALID;
    }
    memcpy(out, e->out, e->out_len);
    memcpy(out + e->out_len, path, pl + 1);
    return 0;
}

static int valid_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > HD_FOLLOW_URL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ batch */

int hd_follow_batch_new(struct hd_follow_batch **out)
{
    struct hd_follow_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    hd_enc_init(&b->enc);
    *out = b;
    return 0;
}

static void reset_actors(struct hd_follow_batch *b)
{
    for (size_t i = 0; i < b->nactors; i++)
        free(b->actors[i].name);
    b->nactors = 0;
    if (b->amap)
        memset(b->amap, 0, b->amap_cap * sizeof(*b->amap));
}

void hd_follow_batch_free(struct hd_follow_batch *b)
{
    if (!b)
        return;
    reset_actors(b);
    free(b->actors);
    free(b->amap);
    free(b->ops);
    free(b->arena);
    free(b->nc);
    hd_enc_fini(&b->enc);
    free(b);
}

size_t hd_follow_batch_len(const struct hd_follow_batch *b)
{
    return b->nops;
}

static int arena_reserve(struct hd_follow_batch *b, size_t n)
{
    size_t nc;
    char *p;

    if (b->alen + n <= b->acap)
        return 0;
    if (b->alen + n > ARENA_MAX)
        return HD_ERR_FULL;
    nc = b->acap ? b->acap : 1 << 16;
    while (nc < b->alen + n)
        nc *= 2;
    if (nc > ARENA_MAX)
        nc = ARENA_MAX;
    p = realloc(b->arena, nc);
    if (!p)
        return -ENOMEM;
    b->arena = p;
    b->acap = nc;
    return 0;
}

static int amap_grow(struct hd_follow_batch *b)
{
    size_t nc = b->amap_cap ? b->amap_cap * 2 : 16;
    uint32_t *m = calloc(nc, sizeof(*m));
    if (!m)
        return -ENOMEM;
    for (size_t i = 0; i < b->nactors; i++) {
        size_t j = hd_hash64(b->actors[i].name, strlen(b->actors[i].name)) & (nc - 1);
        while (m[j])
            j = (j + 1) & (nc - 1);
        m[j] = (uint32_t)i + 1;
    }
    free(b->amap);
    b->amap = m;
    b->amap_cap = nc;
    return 0;
}

/* Index of actor in the batch table, adding it. Returns >= 0 or a negative error. */
static long actor_index(struct hd_follow_batch *b, const char *actor)
{
    size_t j;
    int rc;

    /* Imports are mostly one actor: check the last one first. */
    if (b->nactors && !strcmp(b->actors[b->nactors - 1].name, actor))
        return (long)b->nactors - 1;
    if ((b->nactors + 1) * 2 > b->amap_cap) {
        rc = amap_grow(b);
        if (rc)
            return rc;
    }
    j = hd_hash64(actor, strlen(actor)) & (b->amap_cap - 1);
    while (b->amap[j]) {
        if (!strcmp(b->actors[b->amap[j] - 1].name, actor))
            return (long)b->amap[j] - 1;
        j = (j + 1) & (b->amap_cap - 1);
    }
    if (b->nactors == b->capactors) {
        size_t nc = b->capactors ? b->capactors * 2 : 4;
        struct bactor *p = realloc(b->actors, nc * sizeof(*p));
        if (!p)
            return -ENOMEM;
        b->actors = p;
        b->capactors = nc;
    }
    memset(&b->actors[b->nactors], 0, sizeof(b->actors[0]));
    b->actors[b->nactors].name = strdup(actor);
    if (!b->actors[b->nactors].name)
        return -ENOMEM;
    b->amap[j] = (uint32_t)b->nactors + 1;
    return (long)b->nactors++;
}

int hd_follow_batch_add(struct hd_follow_batch *b, const struct hd_follow *f, int remove,
                        const char **why)
{
    char inbox[HD_FOLLOW_URL_MAX + 1], shared[HD_FOLLOW_URL_MAX + 1];
    uint8_t kb[HD_FOLLOW_URL_MAX + 2];
    const char *deliv = NULL;
    size_t klen, flen, vlen = 0, dlen = 0;
    long ai;
    struct op *o;
    int rc;

    *why = NULL;
    if (!valid_id(f->actor)) {
        *why = "actor must be 1 to 500 bytes without spaces or control characters";
        return HD_ERR_INVALID;
    }
    if (!valid_id(f->follower)) {
        *why = "follower must be 1 to 500 bytes without spaces or control characters";
        return HD_ERR_INVALID;
    }
    flen = strlen(f->follower);
    if (!remove) {
        if (!f->inbox || !*f->inbox) {
            *why = "inbox is required";
            return HD_ERR_INVALID;
        }
        rc = normalise(b, f->inbox, inbox, why);
        if (rc)
            return rc;
        if (f->shared_inbox && *f->shared_inbox) {
            rc = normalise(b, f->shared_inbox, shared, why);
            if (rc) {
                *why = "shared_inbox is not an absolute http(s) URL of at most 500 bytes";
                return rc;
            }
        }
        deliv = f->shared_inbox && *f->shared_inbox ? shared : inbox;
        dlen = strlen(deliv);
    }
    if (b->nops >= BATCH_MAX_OPS)
        return HD_ERR_FULL;
    if (b->nops == b->capops) {
        size_t nc = b->capops ? b->capops * 2 : 1024;
        struct op *p = realloc(b->ops, nc * sizeof(*p));
        if (!p)
            return -ENOMEM;
        b->ops = p;
        b->capops = nc;
    }
    ai = actor_index(b, f->actor);
    if (ai < 0)
        return (int)ai;
    klen = hd_audience_fkey(f->follower, kb);
    if (!remove) {
        size_t ip = common_prefix(f->follower, flen, inbox, strlen(inbox));
        hd_enc_reset(&b->enc);
        hd_enc_array(&b->enc, 5);
        hd_enc_uint(&b->enc, 1);
        hd_enc_uint(&b->enc, ip);
        hd_audience_sfx_enc(&b->enc, inbox + ip, strlen(inbox) - ip);
        if (f->shared_inbox && *f->shared_inbox) {
            size_t sp = common_prefix(f->follower, flen, shared, strlen(shared));
            hd_enc_uint(&b->enc, sp);
            hd_audience_sfx_enc(&b->enc, shared + sp, strlen(shared) - sp);
        } else {
            hd_enc_uint(&b->enc, 0);
            hd_enc_nil(&b->enc);
        }
        if (b->enc.err)
            return b->enc.err;
        vlen = b->enc.len;
        b->actors[ai].has_add = 1;
    }
    rc = arena_reserve(b, klen + vlen + dlen);
    if (rc)
        return rc;
    o = &b->ops[b->nops];
    o->off = b->alen;
    o->actor = (uint32_t)ai;
    o->seq = (uint32_t)b->nops;
    o->klen = (uint16_t)klen;
    o->vlen = (uint16_t)vlen;
    o->dlen = (uint16_t)dlen;
    o->remove = remove ? 1 : 0;
    o->dshared = !remove && f->shared_inbox && *f->shared_inbox;
    memcpy(b->arena + b->alen, kb, klen);
    if (vlen)
        memcpy(b->arena + b->alen + klen, b->enc.buf, vlen);
    if (dlen)
        memcpy(b->arena + b->alen + klen + vlen, deliv, dlen);
    b->alen += klen + vlen + dlen;
    b->nops++;
    return 0;
}

/* Sorting a million operations by key: the keys share long prefixes (every follower on a
 * host starts with "\x01host/users/"), so a comparison sort through the arena spends its
 * time re-comparing them and missing the cache (a quarter of an import's CPU with qsort).
 * Each operation gets a 40-byte record holding the first 32 bytes of its key as four
 * big-endian words; a multikey quicksort (Bentley & Sedgewick) partitions on one word at a
 * time, so a common prefix is looked at once per word and the partitioning walks one
 * contiguous array. Keys still equal after 32 bytes (longer keys, rare) are finished with a
 * full comparison. An explicit stack bounds the work whatever the input. Equal keys end up
 * ordered by seq (the last operation last), then the operations are permuted once. */
#define SKEY_WORDS 4
struct skey {
    uint64_t w[SKEY_WORDS]; /* key bytes 0..31, zero-padded, as big-endian numbers */
    uint32_t len;           /* key length */
    uint32_t i;             /* index in ops */
};

static void skey_fill(struct skey *k, const struct op *o, const char *arena, uint32_t i)
{
    uint8_t b[SKEY_WORDS * 8];
    size_t n = o->klen < sizeof(b) - 4 ? o->klen : sizeof(b) - 4;

    memset(b, 0, sizeof(b));
    hd_be32(b, o->aid);
    memcpy(b + 4, arena + o->off, n);
    for (int w = 0; w < SKEY_WORDS; w++)
        k->w[w] = hd_rd64(b + 8 * w);
    k->len = 4 + (uint32_t)o->klen;
    k->i = i;
}

struct tie_ctx {
    const struct op *ops;
    const char *arena;
};

/* Keys whose first 32 bytes are equal: shorter first (a prefix sorts first), then the
 * rest of the key, then seq. */
static int cmp_tie(const void *pa, const void *pb, void *ctx)
{
    const struct skey *x = pa, *y = pb;
    const struct tie_ctx *t = ctx;
    const struct op *a = &t->ops[x->i], *b = &t->ops[y->i];
    size_t n = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(t->arena + a->off, t->arena + b->off, n);

    if (c)
        return c;
    if (a->klen != b->klen)
        return a->klen < b->klen ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

struct mkq_seg {
    size_t lo, n;
    int w; /* word being partitioned on */
};

static void swap_skey(struct skey *a, struct skey *b)
{
    struct skey t = *a;
    *a = *b;
    *b = t;
}

static int sort_ops(struct op *ops, size_t n, const char *arena)
{
    struct tie_ctx tc = {ops, arena};
    struct mkq_seg *stack = NULL;
    struct skey *v = NULL;
    struct op *tmp = NULL;
    size_t sp = 0, cap = 64;
    int rc = -ENOMEM;

    if (n < 2)
        return 0;
    stack = malloc(cap * sizeof(*stack));
    v = malloc(n * sizeof(*v));
    tmp = malloc(n * sizeof(*tmp));
    if (!stack || !v || !tmp)
        goto out;
    for (size_t i = 0; i < n; i++)
        skey_fill(&v[i], &ops[i], arena, (uint32_t)i);
    stack[sp++] = (struct mkq_seg){0, n, 0};
    while (sp) {
        struct mkq_seg s = stack[--sp];
        struct skey *e = v + s.lo;
        size_t lt, gt, i;
        uint64_t p;

        if (s.w == SKEY_WORDS) {
            /* First 32 bytes equal: finish with the full keys. */
            qsort_r(e, s.n, sizeof(*e), cmp_tie, &tc);
            continue;
        }
        if (s.n < 8) {
            for (i = 1; i < s.n; i++)
                for (size_t j = i; j > 0; j--) {
                    int c = 0;
                    for (int w = s.w; w < SKEY_WORDS && !c; w++)
                        c = e[j - 1].w[w] < e[j].w[w] ? -1 : e[j - 1].w[w] > e[j].w[w];
                    if (!c)
                        c = cmp_tie(&e[j - 1], &e[j], &tc);
                    if (c <= 0)
                        break;
                    swap_skey(&e[j - 1], &e[j]);
                }
            continue;
        }
        {
            uint64_t x = e[0].w[s.w], y = e[s.n / 2].w[s.w], z = e[s.n - 1].w[s.w];
            p = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        }
        /* Three-way partition: [0, lt) < p, [lt, gt] == p, (gt, n) > p. */
        lt = 0;
        gt = s.n - 1;
        i = 0;
        while (i <= gt) {
            if (e[i].w[s.w] < p) {
                swap_skey(&e[lt++], &e[i++]);
            } else if (e[i].w[s.w] > p) {
                swap_skey(&e[i], &e[gt]);
                if (gt == 0)
                    break;
                gt--;
            } else {
                i++;
            }
        }
        if (sp + 3 > cap) {
            struct mkq_seg *ns = realloc(stack, cap * 2 * sizeof(*stack));
            if (!ns)
                goto out;
            stack = ns;
            cap *= 2;
        }
        if (lt > 1)
            stack[sp++] = (struct mkq_seg){s.lo, lt, s.w};
        if (s.n - gt - 1 > 1)
            stack[sp++] = (struct mkq_seg){s.lo + gt + 1, s.n - gt - 1, s.w};
        if (gt + 1 - lt > 1)
            stack[sp++] = (struct mkq_seg){s.lo + lt, gt + 1 - lt, s.w + 1};
    }
    for (size_t i = 0; i < n; i++)
        tmp[i] = ops[v[i].i];
    memcpy(ops, tmp, n * sizeof(*ops));
    rc = 0;
out:
    free(stack);
    free(v);
    free(tmp);
    return rc;
}

/* Records a reference-count change; the URL is already in the arena at off. */
static int dmap_add(struct dmap *m, const char *arena, uint32_t aid, uint64_t off, uint16_t len,
                    int shared, int32_t d)
{
    uint64_t h;
    size_t j;

    if ((m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 1024;
        struct delta *s = calloc(nc, sizeof(*s));
        if (!s)
            return -ENOMEM;
        for (size_t i = 0; i < m->cap; i++) {
            struct delta *e = &m->slot[i];
            if (!e->len)
                continue;
            j = (hd_hash64(arena + e->off, e->len) ^ e->aid) & (nc - 1);
            while (s[j].len)
                j = (j + 1) & (nc - 1);
            s[j] = *e;
        }
        free(m->slot);
        m->slot = s;
        m->cap = nc;
    }
    h = hd_hash64(arena + off, len) ^ aid;
    j = h & (m->cap - 1);
    while (m->slot[j].len) {
        struct delta *e = &m->slot[j];
        if (e->aid == aid && e->len == len && !memcmp(arena + e->off, arena + off, len)) {
            if (shared)
                e->ds += d;
            else
                e->dp += d;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->slot[j].off = off;
    m->slot[j].aid = aid;
    m->slot[j].len = len;
    m->slot[j].ds = shared ? d : 0;
    m->slot[j].dp = shared ? 0 : d;
    m->n++;
    return 0;
}

static int cmp_delta(const void *pa, const void *pb, void *ctx)
{
    const struct delta *a = pa, *b = pb;
    const char *arena = ctx;
    size_t n = a->len < b->len ? a->len : b->len;
    int c;

    if (a->aid != b->aid)
        return a->aid < b->aid ? -1 : 1;
    c = memcmp(arena + a->off, arena + b->off, n);
    if (c)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* Puts k/v, appending when k sorts after every key of the DBI (no page split in the middle:
 * a fresh import fills pages instead of leaving them half empty). */
static int put_sorted(MDB_cursor *cur, MDB_val *k, MDB_val *v, uint8_t *last, size_t *last_len,
                      int *have_last)
{
    int append = 0, rc;

    if (!*have_last) {
        append = 1;
    } else {
        size_t n = k->mv_size < *last_len ? k->mv_size : *last_len;
        int c = memcmp(k->mv_data, last, n);
        append = c > 0 || (c == 0 && k->mv_size > *last_len);
    }
    rc = mdb_cursor_put(cur, k, v, append ? MDB_APPEND : 0);
    if (rc)
        return hd_store_err(rc);
    if (append) {
        memcpy(last, k->mv_data, k->mv_size);
        *last_len = k->mv_size;
        *have_last = 1;
    }
    return 0;
}

static int last_key(MDB_cursor *cur, uint8_t *last, size_t *last_len, int *have_last)
{
    MDB_val k, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);

    *have_last = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return hd_store_err(rc);
    if (k.mv_size > HD_AUD_KEY_MAX)
        return HD_ERR_INVALID;
    memcpy(last, k.mv_data, k.mv_size);
    *last_len = k.mv_size;
    *have_last = 1;
    return 0;
}

static int resolve_actors(struct hd_store *st, struct hd_txn *txn, struct hd_follow_batch *b)
{
    for (size_t i = 0; i < b->nactors; i++) {
        struct bactor *a = &b->actors[i];
        struct hd_aud_actor r;
        int rc = hd_audience_actor_get(st, txn, a->name, &r);
        if (rc == 0) {
            a->aid = r.aid;
            a->follows = r.follows;
            a->inboxes = r.inboxes;
            a->exists = 1;
        } else if (rc == HD_ERR_NOT_FOUND) {
            a->aid = 0;
            a->follows = a->inboxes = 0;
            a->exists = 0;
            if (a->has_add) {
                rc = hd_audience_next_aid(st, txn, &a->aid);
                if (rc)
                    return rc;
            }
        } else {
            return rc;
        }
    }
    return 0;
}

/* Appends the old delivery inbox of an existing follow to the arena. */
static int old_delivery(struct hd_follow_batch *b, const struct op *o, const MDB_val *v,
                        uint64_t *off, uint16_t *len, int *is_shared)
{
    char follower[HD_FOLLOW_URL_MAX + 16], inbox[HD_FOLLOW_URL_MAX + 1],
        shared[HD_FOLLOW_URL_MAX + 1];
    const char *d;
    size_t flen = hd_audience_fkey_url((const uint8_t *)b->arena + o->off, o->klen, follower), dl;
    int has_shared, rc = hd_audience_follow_decode(follower, flen, v->mv_data, v->mv_size, inbox,
                                                   shared, &has_shared);
    if (rc)
        return rc;
    d = has_shared ? shared : inbox;
    *is_shared = has_shared;
    dl = strlen(d);
    rc = arena_reserve(b, dl);
    if (rc)
        return rc;
    memcpy(b->arena + b->alen, d, dl);
    *off = b->alen;
    *len = (uint16_t)dl;
    b->alen += dl;
    return 0;
}

/* The follower's FEP-8fcf digest on its authority (collsync.h): O(1) per follow. */
static int collsync_follow(struct hd_store *st, struct hd_txn *txn, struct hd_follow_batch *b,
                           const struct op *o, uint32_t aid, int delta)
{
    char url[HD_AUD_KEY_MAX + 16];
    size_t n;
    if (o->klen > HD_AUD_KEY_MAX)
        return 0;
    n = hd_audience_fkey_url((const uint8_t *)b->arena + o->off, o->klen, url);
    return hd_collsync_follow(st, txn, aid, url, n, delta);
}

static int apply_follows(struct hd_store *st, struct hd_txn *txn, struct hd_follow_batch *b,
                         struct dmap *m, struct hd_follow_stats *s)
{
    uint8_t key[HD_AUD_KEY_MAX + 1], last[HD_AUD_KEY_MAX + 1];
    size_t last_len = 0;
    int have_last, rc;
    MDB_cursor *cur;

    rc = hd_store_err(hd_mdb_cursor_open(txn, st->follows, &cur));
    if (rc)
        return rc;
    rc = last_key(cur, last, &last_len, &have_last);
    for (size_t i = 0; i < b->nops && !rc; i++) {
        struct op *o = &b->ops[i];
        struct bactor *a = &b->actors[o->actor];
        MDB_val k, v, nv;
        uint64_t ooff = 0;
        uint16_t olen = 0;
        int found, oshared = 0;

        /* Only the last operation on a key counts. */
        if (i + 1 < b->nops && o[1].aid == o->aid && o[1].actor == o->actor &&
            o[1].klen == o->klen &&
            !memcmp(b->arena + o[1].off, b->arena + o->off, o->klen))
            continue;
        if (!a->aid) {
            s->absent++;
            continue;
        }
        hd_be32(key, a->aid);
        memcpy(key + 4, b->arena + o->off, o->klen);
        k.mv_size = 4 + (size_t)o->klen;
        k.mv_data = key;
        rc = a->exists ? hd_mdb_get(txn, st->follows, &k, &v) : MDB_NOTFOUND;
        found = rc == 0;
        if (rc && rc != MDB_NOTFOUND) {
            rc = hd_store_err(rc);
            break;
        }
        rc = 0;
        if (o->remove) {
            if (!found) {
                s->absent++;
                continue;
            }
            rc = old_delivery(b, o, &v, &ooff, &olen, &oshared);
            if (!rc)
                rc = hd_store_err(hd_mdb_del(txn, st->follows, &k, NULL));
            if (!rc)
                rc = collsync_follow(st, txn, b, o, a->aid, -1);
            if (!rc)
                rc = dmap_add(m, b->arena, a->aid, ooff, olen, oshared, -1);
            if (a->follows)
                a->follows--;
            s->removed++;
            continue;
        }
        nv.mv_size = o->vlen;
        nv.mv_data = b->arena + o->off + o->klen;
        if (found) {
            if (v.mv_size == nv.mv_size && !memcmp(v.mv_data, nv.mv_data, nv.mv_size)) {
                s->unchanged++;
                continue;
            }
            rc = old_delivery(b, o, &v, &ooff, &olen, &oshared);
            if (rc)
                break;
            nv.mv_data = b->arena + o->off + o->klen; /* the arena may have moved */
            rc = hd_store_err(hd_mdb_put(txn, st->follows, &k, &nv, 0));
            if (!rc && (olen != o->dlen || oshared != o->dshared ||
                        memcmp(b->arena + ooff, b->arena + o->off + o->klen + o->vlen, olen))) {
                rc = dmap_add(m, b->arena, a->aid, ooff, olen, oshared, -1);
                if (!rc)
                    rc = dmap_add(m, b->arena, a->aid, o->off + o->klen + o->vlen, o->dlen,
                                  o->dshared, 1);
            }
            s->updated++;
            continue;
        }
        rc = put_sorted(cur, &k, &nv, last, &last_len, &have_last);
        if (!rc)
            rc = dmap_add(m, b->arena, a->aid, o->off + o->klen + o->vlen, o->dlen, o->dshared,
                          1);
        if (!rc)
            rc = collsync_follow(st, txn, b, o, a->aid, 1);
        a->follows++;
        s->added++;
    }
    mdb_cursor_close(cur);
    return rc;
}

static int apply_deltas(struct hd_store *st, struct hd_txn *txn, struct hd_follow_batch *b,
                        struct dmap *m)
{
    uint8_t key[HD_AUD_KEY_MAX + 1], last[HD_AUD_KEY_MAX + 1];
    size_t last_len = 0, n = 0;
    int have_last, rc;
    MDB_cursor *cur;
    struct delta *ds;
    struct bactor *a;

    /* Compact the live entries to the front and sort them: key order for the puts. */
    ds = m->slot;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slot[i].len && (m->slot[i].ds || m->slot[i].dp))
            ds[n++] = m->slot[i];
    if (!n)
        return 0;
    qsort_r(ds, n, sizeof(*ds), cmp_delta, b->arena);
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->audience, &cur));
    if (rc)
        return rc;
    rc = last_key(cur, last, &last_len, &have_last);
    a = NULL;
    for (size_t i = 0; i < n && !rc; i++) {
        struct delta *e = &ds[i];
        MDB_val k, v;
        int64_t rs = 0, rp = 0;
        uint8_t vb[8];
        int found;

        /* Sorted by aid: look the actor up only when it changes. */
        if (!a || a->aid != e->aid) {
            a = NULL;
            for (size_t j = 0; j < b->nactors && !a; j++)
                if (b->actors[j].aid == e->aid)
                    a = &b->actors[j];
        }
        hd_be32(key, e->aid);
        memcpy(key + 4, b->arena + e->off, e->len);
        k.mv_size = 4 + (size_t)e->len;
        k.mv_data = key;
        rc = hd_mdb_get(txn, st->audience, &k, &v);
        found = rc == 0;
        if (rc && rc != MDB_NOTFOUND) {
            rc = hd_store_err(rc);
            break;
        }
        rc = 0;
        if (found && v.mv_size == 8) {
            rs = hd_rd32(v.mv_data);
            rp = hd_rd32((const uint8_t *)v.mv_data + 4);
        }
        rs += e->ds;
        rp += e->dp;
        if (rs < 0 || rp < 0) {
            HD_LOG(HD_LOG_WARN, "audience", "msg=\"reference count below zero\" inbox=\"%.*s\"",
                   (int)e->len, b->arena + e->off);
            rs = rs < 0 ? 0 : rs;
            rp = rp < 0 ? 0 : rp;
        }
        if (rs == 0 && rp == 0) {
            if (found) {
                rc = hd_store_err(hd_mdb_del(txn, st->audience, &k, NULL));
                if (a && a->inboxes)
                    a->inboxes--;
            }
            continue;
        }
        hd_be32(vb, rs > UINT32_MAX ? UINT32_MAX : (uint32_t)rs);
        hd_be32(vb + 4, rp > UINT32_MAX ? UINT32_MAX : (uint32_t)rp);
        v.mv_size = 8;
        v.mv_data = vb;
        if (found) {
            rc = hd_store_err(hd_mdb_put(txn, st->audience, &k, &v, 0));
        } else {
            rc = put_sorted(cur, &k, &v, last, &last_len, &have_last);
            if (a)
                a->inboxes++;
        }
    }
    mdb_cursor_close(cur);
    return rc;
}

int hd_follow_batch_apply(struct hd_store *st, struct hd_txn *txn, struct hd_follow_batch *b,
                          struct hd_follow_stats *s)
{
    struct dmap m = {NULL, 0, 0};
    int rc;

    rc = hd_collsync_ensure(st, txn); /* digests of follows stored before they existed */
    if (rc)
        goto out;
    rc = resolve_actors(st, txn, b);
    if (rc)
        goto out;
    for (size_t i = 0; i < b->nops; i++)
        b->ops[i].aid = b->actors[b->ops[i].actor].aid;
    rc = sort_ops(b->ops, b->nops, b->arena);
    if (rc)
        goto out;
    rc = apply_follows(st, txn, b, &m, s);
    if (rc)
        goto out;
    rc = apply_deltas(st, txn, b, &m);
    if (rc)
        goto out;
    for (size_t i = 0; i < b->nactors && !rc; i++) {
        struct bactor *a = &b->actors[i];
        struct hd_aud_actor r = {a->aid, a->follows, a->inboxes};
        if (a->aid)
            rc = hd_audience_actor_put(st, txn, a->name, &r);
    }
out:
    free(m.slot);
    b->nops = 0;
    b->alen = 0;
    reset_actors(b);
    return rc;
}

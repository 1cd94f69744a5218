/* Envelope validation and persistence. jansson parses (strictly: duplicate keys refused),
 * and a small scanner finds the activity's raw bytes so the stored body is exactly what the
 * platform sent: receivers may compare digests of re-fetched objects, and re-serialising
 * would change key order and escapes. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audience.h"
#include "err.h"
#include "ingest.h"
#include "hostrec.h"
#include "keys.h"
#include "known.h"
#include "queue.h"
#include "rules.h"
#include "strset.h"
#include "url.h"

#define HD_INGEST_MAX_INBOXES 1000000

static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* Returns the index just past the JSON string starting at s[i] == '"', or 0 on error. */
static size_t skip_string(const char *s, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return 0;
}

/* Returns the index just past the JSON value at s[i], or 0 on error. Depth-bounded. */
static size_t skip_value(const char *s, size_t i, size_t n, int depth)
{
    if (i >= n || depth > 64)
        return 0;
    if (s[i] == '"')
        return skip_string(s, i, n);
    if (s[i] == '{' || s[i] == '[') {
        char close = s[i] == '{' ? '}' : ']';
        i = skip_ws(s, i + 1, n);
        if (i < n && s[i] == close)
            return i + 1;
        for (;;) {
            if (close == '}') {
                if (i >= n || s[i] != '"')
                    return 0;
                i = skip_string(s, i, n);
                if (!i)
                    return 0;
                i = skip_ws(s, i, n);
                if (i >= n || s[i] != ':')
                    return 0;
                i = skip_ws(s, i + 1, n);
            }
            i = skip_value(s, i, n, depth + 1);
            if (!i)
                return 0;
            i = skip_ws(s, i, n);
            if (i < n && s[i] == ',') {
                i = skip_ws(s, i + 1, n);
                continue;
            }
            if (i < n && s[i] == close)
                return i + 1;
            return 0;
        }
    }
    while (i < n && !strchr(",}] \t\r\n", s[i]))
        i++;
    return i;
}

int hd_json_raw_member(const char *s, size_t n, const char *key, size_t *start, size_t *vlen)
{
    size_t kl = strlen(key), i = skip_ws(s, 0, n);

    if (i >= n || s[i] != '{')
        return HD_ERR_INVALID;
    i = skip_ws(s, i + 1, n);
    while (i < n && s[i] == '"') {
        size_t ks = i + 1, ke = skip_string(s, i, n), vs, ve;
        if (!ke)
            return HD_ERR_INVALID;
        i = skip_ws(s, ke, n);
        if (i >= n || s[i] != ':')
            return HD_ERR_INVALID;
        vs = skip_ws(s, i + 1, n);
        ve = skip_value(s, vs, n, 0);
        if (!ve)
            return HD_ERR_INVALID;
        /* Keys with escapes never match a plain key; jansson has validated the rest. */
        if (ke - 1 - ks == kl && memcmp(s + ks, key, kl) == 0) {
            *start = vs;
            *vlen = ve - vs;
            return 0;
        }
        i = skip_ws(s, ve, n);
        if (i < n && s[i] == ',')
            i = skip_ws(s, i + 1, n);
    }
    return HD_ERR_NOT_FOUND;
}

static int refuse(struct hd_ingest_result *res, int rc, const char *fmt, const char *arg)
{
    res->rc = rc;
    snprintf(res->why, sizeof(res->why), fmt, arg ? arg : "");
    return rc;
}

static const char *str_member(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The activity's object id (string object or object.id), for ordering and cancellation. */
static const char *object_id(json_t *act)
{
    json_t *o = json_object_get(act, "object");
    if (json_is_string(o))
        return json_string_value(o);
    if (json_is_object(o))
        return str_member(o, "id");
    return NULL;
}

static int is_public_uri(const char *s)
{
    return s && (!strcmp(s, "https://www.w3.org/ns/activitystreams#Public") ||
                 !strcmp(s, "as:Public") || !strcmp(s, "Public"));
}

static int addressed_public_in(json_t *o)
{
    static const char *const keys[] = {"to", "cc"};
    for (size_t k = 0; k < 2; k++) {
        json_t *v = json_object_get(o, keys[k]), *it;
        size_t i;
        if (json_is_string(v) && is_public_uri(json_string_value(v)))
            return 1;
        json_array_foreach(v, i, it)
        {
            if (is_public_uri(json_string_value(it)))
                return 1;
        }
    }
    return 0;
}

/* An embedded object with an addressing of its own (to or cc) answers for itself; one
 * without answers through the activity that carries it. */
static int object_public(json_t *obj, int act_public)
{
    if (!json_object_get(obj, "to") && !json_object_get(obj, "cc"))
        return act_public;
    return addressed_public_in(obj);
}

/* Actor kinds: an Update of one is a profile (and key) change, public by nature. */
static int is_actor_kind(const char *t)
{
    static const char *const kinds[] = {"Person", "Service", "Application", "Group",
                                        "Organization"};
    for (size_t i = 0; t && i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (!strcmp(t, kinds[i]))
            return 1;
    return 0;
}

/* The federation table of the "public" choice (docs/operations.md, "Federation choice"):
 *   Create, Update, Announce  withheld unless public: the embedded object's own to/cc when it
 *                             has any, else the activity's; a quote post (FEP-e232 "quote",
 *                             "quoteUrl", Misskey "_misskey_quote") is withheld as well when
 *                             it embeds the quoted object and that object is not public
 *   Update of an actor        goes out (profile and key changes)
 *   everything else           goes out (Like, EmojiReact, Follow, Accept, Reject, Undo,
 *                             Delete, Block, Move, Add, Remove, Flag, ...)
 * Returns 1 when the activity is withheld. */
static int withheld_for_public(json_t *act, const char *type)
{
    static const char *const quote_keys[] = {"quote", "quoteUrl", "_misskey_quote"};
    json_t *obj;
    int pub;
    if (strcmp(type, "Create") && strcmp(type, "Update") && strcmp(type, "Announce"))
        return 0;
    obj = json_object_get(act, "object");
    if (!strcmp(type, "Update") && json_is_object(obj) &&
        is_actor_kind(json_string_value(json_object_get(obj, "type"))))
        return 0;
    pub = addressed_public_in(act);
    if (!json_is_object(obj))
        return !pub;
    if (!object_public(obj, pub))
        return 1;
    for (size_t i = 0; i < sizeof(quote_keys) / sizeof(quote_keys[0]); i++) {
        json_t *q = json_object_get(obj, quote_keys[i]);
        if (json_is_object(q) && !object_public(q, 0))
            return 1;
    }
    return 0;
}

/* Recipients. Explicit recipients are parsed and normalised before the store is touched; at
 * enqueue time they are merged with the actor's audience (its distinct delivery inboxes) so
 * that each distinct delivery inbox gets exactly one delivery. Strings live in one arena and
 * are referred to by offset until it stops growing. */
struct rcpt {
    size_t deliv, host, personal; /* arena offsets; personal == SIZE_MAX: none */
    uint32_t deliv_len, host_len;
    uint8_t shared;
};

struct rcpts {
    struct rcpt *x; /* explicit recipients */
    size_t nx, capx;
    struct hd_qdest *d; /* final destinations */
    size_t nd, capd;
    char *arena;
    size_t alen, acap;
    struct hd_strset *seen; /* delivery inboxes, and personal inboxes they cover */
};

static void rcpts_fini(struct rcpts *r)
{
    free(r->x);
    free(r->d);
    free(r->arena);
    hd_strset_free(r->seen);
}

/* Copies n bytes and a NUL into the arena. Returns the offset or SIZE_MAX (-ENOMEM). */
static size_t arena_put(struct rcpts *r, const char *s, size_t n)
{
    size_t off = r->alen;
    if (r->alen + n + 1 > r->acap) {
        size_t nc = r->acap ? r->acap * 2 : 4096;
        char *p;
        while (nc < r->alen + n + 1)
            nc *= 2;
        p = realloc(r->arena, nc);
        if (!p)
            return SIZE_MAX;
        r->arena = p;
        r->acap = nc;
    }
    memcpy(r->arena + off, s, n);
    r->arena[off + n] = 0;
    r->alen += n + 1;
    return off;
}

static int norm_url(const char *s, struct hd_url *u, char *norm, size_t cap,
                    struct hd_ingest_result *res)
{
    if (hd_url_parse(s, u) != 0)
        return refuse(res, HD_ERR_INVALID, "invalid inbox URL: %.200s", s);
    if (hd_url_format(u, norm, cap) != 0)
        return refuse(res, HD_ERR_INVALID, "inbox URL too long: %.200s", s);
    return 0;
}

/* One element of "inboxes": a URL string or {"inbox": URL, "shared_inbox": URL|null}. */
static int add_explicit(struct rcpts *r, json_t *v, struct hd_ingest_result *res)
{
    char norm[HD_URL_MAX + HD_HOST_MAX + 16], pnorm[HD_URL_MAX + HD_HOST_MAX + 16];
    const char *inbox = NULL, *shared = NULL, *k;
    struct hd_url u, su;
    struct rcpt *x;
    json_t *m;
    int rc;

    if (json_is_string(v)) {
        inbox = json_string_value(v);
    } else if (json_is_object(v)) {
        json_object_foreach(v, k, m)
        {
            if (!strcmp(k, "inbox") && json_is_string(m))
                inbox = json_string_value(m);
            else if (!strcmp(k, "shared_inbox") && (json_is_string(m) || json_is_null(m)))
                shared = json_string_value(m);
            else
                return refuse(res, HD_ERR_INVALID,
                              "recipient objects have only \"inbox\" and \"shared_inbox\" (URL "
                              "strings; shared_inbox may be null); got \"%.80s\"",
                              k);
        }
        if (!inbox)
            return refuse(res, HD_ERR_INVALID, "a recipient object needs an \"inbox\" URL%s",
                          NULL);
    } else {
        return refuse(res, HD_ERR_INVALID,
                      "each recipient is an inbox URL string or {\"inbox\", \"shared_inbox\"}%s",
                      NULL);
    }
    rc = norm_url(inbox, &u, pnorm, sizeof(pnorm), res);
    if (rc)
        return rc;
    if (shared && *shared) {
        rc = norm_url(shared, &su, norm, sizeof(norm), res);
        if (rc)
            return rc;
    }
    if (r->nx == r->capx) {
        size_t nc = r->capx ? r->capx * 2 : 16;
        struct rcpt *p;
        if (nc > HD_INGEST_MAX_INBOXES)
            return refuse(res, HD_ERR_INVALID, "too many inboxes%s", NULL);
        p = realloc(r->x, nc * sizeof(*p));
        if (!p)
            return refuse(res, -ENOMEM, "out of memory%s", NULL);
        r->x = p;
        r->capx = nc;
    }
    x = &r->x[r->nx];
    if (shared && *shared) {
        x->deliv = arena_put(r, norm, strlen(norm));
        x->host = arena_put(r, su.host, strlen(su.host));
        x->personal = arena_put(r, pnorm, strlen(pnorm));
        x->deliv_len = (uint32_t)strlen(norm);
        x->host_len = (uint32_t)strlen(su.host);
        x->shared = 1;
    } else {
        x->deliv = arena_put(r, pnorm, strlen(pnorm));
        x->host = arena_put(r, u.host, strlen(u.host));
        x->personal = 0;
        x->deliv_len = (uint32_t)strlen(pnorm);
        x->host_len = (uint32_t)strlen(u.host);
        x->shared = 0;
    }
    if (x->deliv == SIZE_MAX || x->host == SIZE_MAX || x->personal == SIZE_MAX)
        return refuse(res, -ENOMEM, "out of memory%s", NULL);
    if (!x->shared)
        x->personal = SIZE_MAX;
    r->nx++;
    return 0;
}

static int add_dest(struct rcpts *r, size_t deliv, uint32_t deliv_len, size_t host,
                    uint32_t host_len, uint32_t flags)
{
    if (r->nd == r->capd) {
        size_t nc = r->capd ? r->capd * 2 : 64;
        struct hd_qdest *p = realloc(r->d, nc * sizeof(*p));
        if (!p)
            return -ENOMEM;
        r->d = p;
        r->capd = nc;
    }
    /* Offsets for now: the arena may still move. */
    r->d[r->nd].inbox = (const char *)(uintptr_t)deliv;
    r->d[r->nd].host = (const char *)(uintptr_t)host;
    r->d[r->nd].inbox_len = deliv_len;
    r->d[r->nd].host_len = host_len;
    r->d[r->nd].flags = flags;
    r->nd++;
    return 0;
}

struct aud_ctx {
    struct rcpts *r;
    int err;
};

static int on_audience(const struct hd_aud_inbox *in, void *ud)
{
    struct aud_ctx *a = ud;
    struct rcpts *r = a->r;
    size_t off = arena_put(r, in->url, in->url_len), hoff;

    if (off == SIZE_MAX) {
        a->err = -ENOMEM;
        return 1;
    }
    /* An explicit recipient already reaching this inbox (as its personal inbox covered by a
     * shared one) means no second delivery. */
    if (r->nx && hd_strset_has(r->seen, r->arena + off)) {
        r->alen = off;
        return 0;
    }
    hoff = arena_put(r, in->host, in->host_len);
    if (hoff == SIZE_MAX || add_dest(r, off, (uint32_t)in->url_len, hoff,
                                     (uint32_t)in->host_len,
                                     in->shared_refs ? HD_QF_SHARED : 0) != 0) {
        a->err = -ENOMEM;
        return 1;
    }
    return 0;
}

/* to_known_hosts: every host that took at least one of our deliveries (for any actor) and is
 * neither dead nor gone gets one delivery, to its known inbox (known.h: its shared inbox once
 * one took a delivery). Hosts already among the destinations get no second one; the domain
 * rules are applied after (filter_by_rules). One pass over the host records. */
static int add_known(struct hd_store *st, struct hd_txn *txn, struct rcpts *r,
                     struct hd_ingest_result *res)
{
    struct hd_strset *hosts = NULL;
    struct hd_host_iter it;
    struct hd_host_rec rec;
    char name[HD_HOST_MAX], inbox[HD_URL_MAX + HD_HOST_MAX + 16];
    int rc = hd_strset_new(&hosts, r->nd + 64), shared;

    if (rc)
        return refuse(res, rc, "out of memory%s", NULL);
    for (size_t i = 0; i < r->nd && !rc; i++)
        rc = hd_strset_add(hosts, r->arena + (uintptr_t)r->d[i].host) < 0 ? -ENOMEM : 0;
    if (!rc)
        rc = hd_host_iter_open(st, txn, &it);
    while (!rc && (rc = hd_host_iter_next(&it, name, &rec)) == 0) {
        size_t off, hoff;
        if (!rec.done || rec.dead != HD_HOST_ALIVE || hd_strset_has(hosts, name))
            continue;
        rc = hd_known_get(st, txn, name, inbox, sizeof(inbox), &shared);
        if (rc == HD_ERR_NOT_FOUND || rc == HD_ERR_FULL || rc == HD_ERR_INVALID ||
            rc == HD_ERR_SCHEMA) {
            rc = 0; /* no usable inbox recorded for it */
            continue;
        }
        if (rc)
            break;
        off = arena_put(r, inbox, strlen(inbox));
        hoff = off == SIZE_MAX ? SIZE_MAX : arena_put(r, name, strlen(name));
        if (hoff == SIZE_MAX ||
            add_dest(r, off, (uint32_t)strlen(inbox), hoff, (uint32_t)strlen(name),
                     shared ? HD_QF_SHARED : 0) != 0)
            rc = -ENOMEM;
    }
    hd_host_iter_close(&it);
    hd_strset_free(hosts);
    if (rc == HD_ERR_NOT_FOUND)
        return 0;
    return refuse(res, rc, "cannot read the known hosts: %s", hd_strerror(rc));
}

/* Digits s[0..n) as a number; -1 when one is not a digit. */
static long digits(const char *s, int n)
{
    long v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM). Returns 0 with *ms
 * (epoch milliseconds) or -1. */
static int parse_rfc3339(const char *s, uint64_t *ms)
{
    struct tm tm;
    long y, mo, d, h, mi, sec, frac = 0, off = 0;
    size_t n = strlen(s), i = 19;
    time_t t;

    if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
        s[13] != ':' || s[16] != ':')
        return -1;
    y = digits(s, 4);
    mo = digits(s + 5, 2);
    d = digits(s + 8, 2);
    h = digits(s + 11, 2);
    mi = digits(s + 14, 2);
    sec = digits(s + 17, 2);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 ||
        mi > 59 || sec < 0 || sec > 60)
        return -1;
    if (s[i] == '.') {
        int nd = 0;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, nd++)
            if (nd < 3)
                frac = frac * 10 + (s[i] - '0');
        if (nd == 0)
            return -1;
        for (; nd < 3; nd++)
            frac *= 10;
    }
    if (i < n && (s[i] == 'Z' || s[i] == 'z') && i + 1 == n) {
        off = 0;
    } else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        long oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -1;
        off = (oh * 60 + om) * 60 * (s[i] == '+' ? 1 : -1);
    } else {
        return -1;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = (int)(y - 1900);
    tm.tm_mon = (int)(mo - 1);
    tm.tm_mday = (int)d;
    tm.tm_hour = (int)h;
    tm.tm_min = (int)mi;
    tm.tm_sec = (int)(sec == 60 ? 59 : sec);
    t = timegm(&tm);
    if (t == (time_t)-1 || (long long)t - off < 0)
        return -1;
    *ms = (uint64_t)((long long)t - off) * 1000u + (uint64_t)frac;
    return 0;
}

/* "not_before": epoch milliseconds (a non-negative integer) or an RFC 3339 string. */
static int parse_not_before(json_t *v, uint64_t *ms, struct hd_ingest_result *res)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *ms = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v) && parse_rfc3339(json_string_value(v), ms) == 0)
        return 0;
    return refuse(res, HD_ERR_INVALID,
                  "\"not_before\" is epoch milliseconds or an RFC 3339 date-time "
                  "(2026-12-07T05:00:00Z)%s",
                  NULL);
}

/* "priority": "high", "normal" or "low". Returns HD_PRIO_* or -1. */
static int parse_priority(json_t *v)
{
    const char *s = json_string_value(v);
    if (!s)
        return -1;
    if (!strcmp(s, "high"))
        return HD_PRIO_HIGH;
    if (!strcmp(s, "normal"))
        return HD_PRIO_NORMAL;
    if (!strcmp(s, "low"))
        return HD_PRIO_LOW;
    return -1;
}

/* Merges the explicit recipients with actor's audience (to_followers) into r->d. */
static int build_dests(struct hd_store *st, struct hd_txn *txn, const char *actor, int to_followers,
                       int to_known, struct rcpts *r, struct hd_ingest_result *res)
{
    int rc;

    rc = hd_strset_new(&r->seen, r->nx + 1);
    if (rc)
        return refuse(res, rc, "out of memory%s", NULL);
    for (size_t i = 0; i < r->nx; i++) {
        struct rcpt *x = &r->x[i];
        const char *dv = r->arena + x->deliv;
        const char *pv = x->personal != SIZE_MAX ? r->arena + x->personal : NULL;
        if (hd_strset_has(r->seen, dv) || (pv && hd_strset_has(r->seen, pv)))
            continue; /* the same inbox twice, or a shared inbox already in the set */
        if (to_followers) {
            rc = hd_audience_has(st, txn, actor, dv);
            if (rc == 0 && pv)
                rc = hd_audience_has(st, txn, actor, pv);
            if (rc < 0)
                return refuse(res, rc, "store error reading the audience%s", NULL);
            if (rc == 1)
                continue; /* a follower already delivers there */
        }
        if (hd_strset_add(r->seen, dv) < 0 || (pv && hd_strset_add(r->seen, pv) < 0))
            return refuse(res, -ENOMEM, "out of memory%s", NULL);
        rc = add_dest(r, x->deliv, x->deliv_len, x->host, x->host_len,
                      x->shared ? HD_QF_SHARED : 0);
        if (rc)
            return refuse(res, rc, "out of memory%s", NULL);
    }
    if (to_followers) {
        struct aud_ctx a = {r, 0};
        rc = hd_audience_foreach(st, txn, actor, on_audience, &a);
        if (a.err)
            return refuse(res, a.err, "out of memory%s", NULL);
        if (rc < 0)
            return refuse(res, rc, "store error reading the audience%s", NULL);
    }
    if (to_known) {
        rc = add_known(st, txn, r, res);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < r->nd; i++) {
        r->d[i].inbox = r->arena + (uintptr_t)r->d[i].inbox;
        r->d[i].host = r->arena + (uintptr_t)r->d[i].host;
    }
    return 0;
}

/* Defederation (rules.h): destinations on hosts the rules refuse (suspended, or not
 * allowlisted in allowlist mode) get no delivery. The envelope is still accepted for the other
 * inboxes; res->refused_rules says how many were refused. A few destinations are checked with
 * store lookups (the verdict of the previous host is reused: destinations come mostly grouped
 * by host); a fan-out to many hosts builds a rules snapshot once and uses its hash lookups. */
#define RULES_SNAPSHOT_MIN 64
static int filter_by_rules(struct hd_store *st, struct hd_txn *txn, struct rcpts *r,
                           struct hd_ingest_result *res)
{
    char host[HD_HOST_MAX], last[HD_HOST_MAX] = "";
    struct hd_rules *snap = NULL;
    size_t j = 0;
    int ok = 1, rc = 0;

    if (hd_rules_generation(st, txn) == 0)
        return 0; /* this store never had a rule */
    if (r->nd >= RULES_SNAPSHOT_MIN) {
        rc = hd_rules_load(st, txn, &snap);
        if (rc)
            return refuse(res, rc, "cannot load defederation rules%s", NULL);
    }
    for (size_t i = 0; i < r->nd; i++) {
        size_t hl = r->d[i].host_len < sizeof(host) ? r->d[i].host_len : sizeof(host) - 1;
        memcpy(host, r->d[i].host, hl);
        host[hl] = 0;
        if (i == 0 || strcmp(host, last) != 0) {
            rc = snap ? hd_rules_allows(snap, host) : hd_rules_check(st, txn, host);
            if (rc < 0)
                break;
            ok = rc;
            memcpy(last, host, hl + 1);
        }
        if (ok)
            r->d[j++] = r->d[i];
        else
            res->refused_rules++;
    }
    hd_rules_free(snap);
    if (rc < 0)
        return refuse(res, rc, "store error reading defederation rules%s", NULL);
    r->nd = j;
    return 0;
}

/* Keeps the destinations f->keep accepts (cluster mode: the partitions this node owns). */
static void filter_owned(struct rcpts *r, const struct hd_ingest_filter *f)
{
    size_t j = 0;

    for (size_t i = 0; i < r->nd; i++)
        if (f->keep(r->d[i].host, r->d[i].host_len, f->user_data))
            r->d[j++] = r->d[i];
    r->nd = j;
}

int hd_ingest_envelope(struct hd_store *st, struct hd_txn *parent, struct hd_counters *c,
                       const char *line, size_t len, uint64_t now_ms, struct hd_ingest_result *res)
{
    return hd_ingest_envelope_filtered(st, parent, c, line, len, now_ms, NULL, res);
}

int hd_ingest_envelope_filtered(struct hd_store *st, struct hd_txn *parent, struct hd_counters *c,
                                const char *line, size_t len, uint64_t now_ms,
                                const struct hd_ingest_filter *f, struct hd_ingest_result *res)
{
    json_error_t jerr;
    json_t *env = NULL, *act, *inboxes, *v, *tof, *tok, *pv;
    uint64_t not_before = 0;
    int prio = HD_PRIO_NORMAL;
    const char *id, *type, *actor, *key;
    struct hd_slice kid;
    struct rcpts rc_list;
    size_t raw_start, raw_len, i;
    struct hd_activity_in ain;
    struct hd_counters c2 = *c;
    struct hd_txn *txn = NULL;
    int fed, rc;

    memset(res, 0, sizeof(*res));
    memset(&rc_list, 0, sizeof(rc_list));
    if (len > HD_INGEST_MAX_LINE)
        return refuse(res, HD_ERR_INVALID, "envelope larger than 1 MiB%s", NULL);
    env = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!env) {
        rc = refuse(res, HD_ERR_INVALID, "malformed JSON: %s", jerr.text);
        goto out;
    }
    if (!json_is_object(env)) {
        rc = refuse(res, HD_ERR_INVALID, "envelope must be a JSON object%s", NULL);
        goto out;
    }
    json_object_foreach(env, key, v)
    {
        if (strcmp(key, "activity") && strcmp(key, "inboxes") && strcmp(key, "to_followers") &&
            strcmp(key, "not_before") && strcmp(key, "priority") &&
            strcmp(key, "to_known_hosts")) {
            rc = refuse(res, HD_ERR_INVALID, "unknown envelope key \"%.100s\"", key);
            goto out;
        }
    }
    act = json_object_get(env, "activity");
    if (!json_is_object(act)) {
        rc = refuse(res, HD_ERR_INVALID, "\"activity\" must be an object%s", NULL);
        goto out;
    }
    id = str_member(act, "id");
    type = str_member(act, "type");
    actor = str_member(act, "actor");
    if (!actor && json_is_object(json_object_get(act, "actor")))
        actor = str_member(json_object_get(act, "actor"), "id");
    if (!id || !*id || strlen(id) > 500) {
        rc = refuse(res, HD_ERR_INVALID, "activity needs a string \"id\" (at most 500 bytes)%s",
                    NULL);
        goto out;
    }
    if (!type || !*type) {
        rc = refuse(res, HD_ERR_INVALID, "activity needs a string \"type\"%s", NULL);
        goto out;
    }
    if (!actor || !*actor || strlen(actor) > 500) {
        rc = refuse(res, HD_ERR_INVALID, "activity needs an \"actor\"%s", NULL);
        goto out;
    }
    tof = json_object_get(env, "to_followers");
    if (tof && !json_is_boolean(tof)) {
        rc = refuse(res, HD_ERR_INVALID, "\"to_followers\" must be true or false%s", NULL);
        goto out;
    }
    tok = json_object_get(env, "to_known_hosts");
    if (tok && !json_is_boolean(tok)) {
        rc = refuse(res, HD_ERR_INVALID, "\"to_known_hosts\" must be true or false%s", NULL);
        goto out;
    }
    /* An account Delete to every known host is background work: low unless told. */
    if (json_is_true(tok))
        prio = HD_PRIO_LOW;
    pv = json_object_get(env, "priority");
    if (pv && (prio = parse_priority(pv)) < 0) {
        rc = refuse(res, HD_ERR_INVALID, "\"priority\" is \"high\", \"normal\" or \"low\"%s",
                    NULL);
        goto out;
    }
    v = json_object_get(env, "not_before");
    if (v) {
        rc = parse_not_before(v, &not_before, res);
        if (rc)
            goto out;
    }
    inboxes = json_object_get(env, "inboxes");
    if (inboxes && !json_is_array(inboxes)) {
        rc = refuse(res, HD_ERR_INVALID, "\"inboxes\" must be an array of recipients%s", NULL);
        goto out;
    }
    json_array_foreach(inboxes, i, v)
    {
        rc = add_explicit(&rc_list, v, res);
        if (rc)
            goto out;
    }
    if (hd_json_raw_member(line, len, "activity", &raw_start, &raw_len) != 0) {
        rc = refuse(res, HD_ERR_INVALID, "cannot locate the activity text%s", NULL);
        goto out;
    }

    rc = hd_store_begin_nested(parent, &txn);
    if (rc) {
        refuse(res, rc, "store error%s", NULL);
        goto out;
    }
    rc = hd_actor_get(st, txn, actor, strlen(actor), &kid, &fed);
    if (rc == HD_ERR_NOT_FOUND || (rc == 0 && !kid.p)) {
        rc = refuse(res, HD_ERR_NO_KEY, "actor has no signing key: %.200s", actor);
        c2.refused++;
        goto commit_counters;
    }
    if (rc) {
        refuse(res, rc, "store error reading actor%s", NULL);
        goto out;
    }
    if (fed == HD_FED_NONE) {
        rc = refuse(res, HD_ERR_INVALID, "actor's federation choice is none: nothing is federated%s",
                    NULL);
        c2.refused++;
        goto commit_counters;
    }
    if (fed == HD_FED_PUBLIC && withheld_for_public(act, type)) {
        rc = refuse(res, HD_ERR_INVALID,
                    "withheld: actor federates public posts only and this %s is not public", type);
        res->withheld = 1;
        c2.withheld++;
        goto commit_counters;
    }
    memset(&ain, 0, sizeof(ain));
    ain.id = id;
    ain.type = type;
    ain.actor = actor;
    ain.object_id = object_id(act);
    ain.body = line + raw_start;
    ain.body_len = raw_len;
    ain.not_before_ms = not_before > now_ms ? not_before : 0;
    ain.priority = (uint32_t)prio;
    rc = build_dests(st, txn, actor, json_is_true(tof), json_is_true(tok), &rc_list, res);
    if (rc)
        goto out;
    rc = filter_by_rules(st, txn, &rc_list, res);
    if (rc)
        goto out;
    c2.dropped += res->refused_rules;
    if (f && f->keep) {
        filter_owned(&rc_list, f);
        if (rc_list.nd == 0) { /* every destination belongs to other nodes */
            *c = c2;
            res->rc = 0;
            goto out;
        }
    }
    if (f && f->local_id)
        ain.id = f->local_id;
    ain.dropped = res->refused_rules;
    rc = hd_queue_enqueue_dests(st, txn, &c2, &ain, rc_list.d, rc_list.nd, now_ms, &res->seq);
    if (rc == HD_ERR_DUPLICATE) {
        refuse(res, rc, "duplicate activity id (first enqueued as seq %s)", NULL);
        snprintf(res->why, sizeof(res->why), "duplicate activity id (first enqueued as seq %llu)",
                 (unsigned long long)res->seq);
        goto out;
    }
    if (rc) {
        refuse(res, rc, "store error: %s", hd_strerror(rc));
        goto out;
    }
    res->deliveries = rc_list.nd;
    rc = hd_store_commit(txn);
    txn = NULL;
    if (rc) {
        refuse(res, rc, "store commit failed%s", NULL);
        goto out;
    }
    *c = c2;
    res->rc = 0;
    goto out;
commit_counters:
    /* Refused and withheld activities are counted, never silently lost; nothing else of
     * this envelope is written. */
    hd_store_abort(txn);
    txn = NULL;
    c->refused = c2.refused;
    c->withheld = c2.withheld;
out:
    hd_store_abort(txn);
    rcpts_fini(&rc_list);
    json_decref(env);
    return res->rc;
}

/* Resumable TLS sessions by origin, shared between loop threads (see tlscache.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "tls.h"
#include "tlscache.h"

struct tc_entry {
    struct tc_entry *hnext;        /* hash chain */
    struct tc_entry *prev, *next;  /* LRU list: head is the most recently used */
    uint64_t expires_ms;
    uint16_t port;
    int dirty;
    size_t len;
    uint8_t *der;
    char host[]; /* NUL-terminated */
};

struct hd_tls_cache {
    pthread_mutex_t mu;
    struct tc_entry **buckets;
    size_t nbuckets, n, max;
    struct tc_entry *head, *tail;
    size_t ndirty;
};

static uint64_t key_hash(const char *host, uint16_t port)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)host; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return ((h ^ port) * 1099511628211ull);
}

int hd_tls_cache_new(struct hd_tls_cache **out, size_t max)
{
    struct hd_tls_cache *c = calloc(1, sizeof(*c));

    if (!c)
        return -ENOMEM;
    c->max = max ? max : HD_TLS_CACHE_MAX_DEFAULT;
    c->nbuckets = 64;
    while (c->nbuckets < c->max && c->nbuckets < (1u << 20))
        c->nbuckets <<= 1;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (!c->buckets) {
        free(c);
        return -ENOMEM;
    }
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c->buckets);
        free(c);
        return -ENOMEM;
    }
    *out = c;
    return 0;
}

static void entry_free(struct tc_entry *e)
{
    explicit_bzero(e->der, e->len);
    free(e->der);
    free(e);
}

void hd_tls_cache_free(struct hd_tls_cache *c)
{
    if (!c)
        return;
    for (struct tc_entry *e = c->head, *next; e; e = next) {
        next = e->next;
        entry_free(e);
    }
    pthread_mutex_destroy(&c->mu);
    free(c->buckets);
    free(c);
}

static struct tc_entry **find_slot(struct hd_tls_cache *c, const char *host, uint16_t port)
{
    struct tc_entry **pp = &c->buckets[key_hash(host, port) & (c->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->hnext)
        if ((*pp)->port == port && strcmp((*pp)->host, host) == 0)
            return pp;
    return pp;
}

static void lru_unlink(struct hd_tls_cache *c, struct tc_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(struct hd_tls_cache *c, struct tc_entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

/* Unlinks *pp (the slot that points at it) and frees it. */
static void remove_at(struct hd_tls_cache *c, struct tc_entry **pp)
{
    struct tc_entry *e = *pp;

    *pp = e->hnext;
    lru_unlink(c, e);
    c->ndirty -= e->dirty != 0;
    c->n--;
    entry_free(e);
}

static void remove_entry(struct hd_tls_cache *c, struct tc_entry *e)
{
    remove_at(c, find_slot(c, e->host, e->port));
}

int hd_tls_cache_put(struct hd_tls_cache *c, const char *host, uint16_t port,
                     const uint8_t *der, size_t len, uint64_t expires_ms, int dirty,
                     uint64_t now_ms)
{
    struct tc_entry **pp, *e;
    uint8_t *copy;
    size_t hl;

    if (!host || !*host || !der || len == 0 || len > HD_TLS_SESSION_MAX)
        return HD_ERR_INVALID;
    if (expires_ms <= now_ms)
        return 0;
    copy = malloc(len);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, der, len);
    pthread_mutex_lock(&c->mu);
    pp = find_slot(c, host, port);
    e = *pp;
    if (e) {
        explicit_bzero(e->der, e->len);
        free(e->der);
        lru_unlink(c, e);
    } else {
        hl = strlen(host);
        e = calloc(1, sizeof(*e) + hl + 1);
        if (!e) {
            pthread_mutex_unlock(&c->mu);
            explicit_bzero(copy, len);
            free(copy);
            return -ENOMEM;
        }
        memcpy(e->host, host, hl + 1);
        e->port = port;
        e->hnext = NULL;
        *pp = e;
        c->n++;
    }
    e->der = copy;
    e->len = len;
    e->expires_ms = expires_ms;
    if (dirty && !e->dirty)
        c->ndirty++;
    else if (!dirty && e->dirty)
        c->ndirty--;
    e->dirty = dirty != 0;
    lru_push_front(c, e);
    while (c->n > c->max)
        remove_entry(c, c->tail);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

long hd_tls_cache_get(struct hd_tls_cache *c, const char *host, uint16_t port, uint8_t *buf,
                      size_t cap, uint64_t now_ms)
{
    struct tc_entry **pp, *e;
    long rv = 0;

    pthread_mutex_lock(&c->mu);
    pp = find_slot(c, host, port);
    e = *pp;
    if (e && e->expires_ms <= now_ms) {
        remove_at(c, pp);
    } else if (e && e->len > cap) {
        rv = HD_ERR_TOO_LARGE;
    } else if (e) {
        memcpy(buf, e->der, e->len);
        rv = (long)e->len;
        lru_unlink(c, e);
        lru_push_front(c, e);
    }
    pthread_mutex_unlock(&c->mu);
    return rv;
}

void hd_tls_cache_drop(struct hd_tls_cache *c, const char *host, uint16_t port)
{
    struct tc_entry **pp;

    pthread_mutex_lock(&c->mu);
    pp = find_slot(c, host, port);
    if (*pp)
        remove_at(c, pp);
    pthread_mutex_unlock(&c->mu);
}

size_t hd_tls_cache_count(struct hd_tls_cache *c)
{
    size_t n;

    pthread_mutex_lock(&c->mu);
    n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* Copies of dirty entries, made under the mutex. */
struct tc_copy {
    struct hd_tls_cache_rec rec;
    char *host;
    uint8_t *der;
};

static void copies_free(struct tc_copy *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].host);
        if (v[i].der)
            explicit_bzero(v[i].der, v[i].rec.len);
        free(v[i].der);
    }
    free(v);
}

/* Marks the entries of these copies dirty again (a failed save), when still the same. */
static void remark(struct hd_tls_cache *c, const struct tc_copy *v, size_t n)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        struct tc_entry *e = *find_slot(c, v[i].host, v[i].rec.port);
        if (e && !e->dirty && e->expires_ms == v[i].rec.expires_ms) {
            e->dirty = 1;
            c->ndirty++;
        }
    }
    pthread_mutex_unlock(&c->mu);
}

long hd_tls_cache_take_dirty(struct hd_tls_cache *c, size_t max, uint64_t now_ms,
                             hd_tls_cache_save_cb cb, void *user_data)
{
    long total = 0;

    for (;;) {
        struct tc_copy *v;
        struct hd_tls_cache_rec *recs;
        size_t n = 0, want;
        int rv;

        pthread_mutex_lock(&c->mu);
        want = c->ndirty;
        if (max && want > max)
            want = max;
        if (want == 0) {
            pthread_mutex_unlock(&c->mu);
            return total;
        }
        v = calloc(want, sizeof(*v));
        recs = calloc(want, sizeof(*recs));
        if (!v || !recs) {
            pthread_mutex_unlock(&c->mu);
            free(v);
            free(recs);
            return -ENOMEM;
        }
        for (struct tc_entry *e = c->head, *next; e && n < want; e = next) {
            next = e->next;
            if (!e->dirty)
                continue;
            if (e->expires_ms <= now_ms) {
                remove_entry(c, e);
                continue;
            }
            v[n].host = strdup(e->host);
            v[n].der = malloc(e->len);
            if (!v[n].host || !v[n].der) {
                n++;
                pthread_mutex_unlock(&c->mu);
                remark(c, v, n - 1);
                copies_free(v, n);
                free(recs);
                return -ENOMEM;
            }
            memcpy(v[n].der, e->der, e->len);
            v[n].rec.host = v[n].host;
            v[n].rec.port = e->port;
            v[n].rec.der = v[n].der;
            v[n].rec.len = e->len;
            v[n].rec.expires_ms = e->expires_ms;
            e->dirty = 0;
            c->ndirty--;
            n++;
        }
        pthread_mutex_unlock(&c->mu);
        for (size_t i = 0; i < n; i++)
            recs[i] = v[i].rec;
        rv = n ? cb(recs, n, user_data) : 0;
        if (rv != 0)
            remark(c, v, n);
        copies_free(v, n);
        free(recs);
        if (rv != 0)
            return rv;
        total += (long)n;
        if (n < want || n == 0)
            return total;
    }
}

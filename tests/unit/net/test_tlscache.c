/* engine/net/tlscache.c: the shared table of resumable TLS sessions. Bounded by count (least
 * recently used first out) and by each session's expiry; a session is handed back only for
 * the exact host name and port it was stored under; changed entries are handed out for
 * saving once, and again after a failed save; threads may use it at once. */
#include <pthread.h>

#include "err.h"
#include "t.h"
#include "tls.h"
#include "tlscache.h"

static const uint64_t NOW = 1700000000000ull;

static int put(struct hd_tls_cache *c, const char *host, uint16_t port, uint8_t tag,
               uint64_t exp)
{
    uint8_t der[100];
    memset(der, tag, sizeof(der));
    return hd_tls_cache_put(c, host, port, der, sizeof(der), exp, 1, NOW);
}

/* The tag byte of host:port's session, 0 when none. */
static int tag_of(struct hd_tls_cache *c, const char *host, uint16_t port, uint64_t now)
{
    uint8_t buf[HD_TLS_SESSION_MAX];
    long n = hd_tls_cache_get(c, host, port, buf, sizeof(buf), now);
    T_OK(n == 0 || n == 100);
    return n ? buf[0] : 0;
}

struct saved {
    int calls, fail;
    size_t n;
    char hosts[64][32];
};

static int on_save(const struct hd_tls_cache_rec *recs, size_t n, void *user_data)
{
    struct saved *s = user_data;
    s->calls++;
    if (s->fail)
        return HD_ERR_STORE;
    for (size_t i = 0; i < n && s->n < 64; i++)
        snprintf(s->hosts[s->n++], sizeof(s->hosts[0]), "%s:%u", recs[i].host, recs[i].port);
    return 0;
}

static void *hammer(void *arg)
{
    struct hd_tls_cache *c = arg;
    char host[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(host, sizeof(host), "t%d.example", i % 300);
        if (i % 3)
            put(c, host, 443, (uint8_t)(1 + i % 200), NOW + 60000);
        else
            (void)tag_of(c, host, 443, NOW);
    }
    return NULL;
}

int main(void)
{
    struct hd_tls_cache *c = NULL;
    struct saved sv;
    uint8_t small[8];
    char host[32];

    T_EQ_INT(hd_tls_cache_new(&c, 4), 0);
    /* Host name and port are the key: nothing crosses over. */
    T_EQ_INT(put(c, "a.example", 443, 'a', NOW + 1000), 0);
    T_EQ_INT(tag_of(c, "a.example", 443, NOW), 'a');
    T_EQ_INT(tag_of(c, "b.example", 443, NOW), 0);
    T_EQ_INT(tag_of(c, "a.example", 8443, NOW), 0);
    T_EQ_INT(tag_of(c, "a.example.", 443, NOW), 0);
    T_EQ_INT(tag_of(c, "A.example", 443, NOW), 0);
    T_EQ_INT(hd_tls_cache_get(c, "a.example", 443, small, sizeof(small), NOW), HD_ERR_TOO_LARGE);
    /* Replacing keeps one entry. */
    T_EQ_INT(put(c, "a.example", 443, 'A', NOW + 1000), 0);
    T_EQ_INT(hd_tls_cache_count(c), 1);
    T_EQ_INT(tag_of(c, "a.example", 443, NOW), 'A');

    /* Count bound: 4 entries; the least recently used goes first, and a get counts as use. */
    T_EQ_INT(put(c, "b.example", 443, 'b', NOW + 1000), 0);
    T_EQ_INT(put(c, "c.example", 443, 'c', NOW + 1000), 0);
    T_EQ_INT(put(c, "d.example", 443, 'd', NOW + 1000), 0);
    T_EQ_INT(tag_of(c, "a.example", 443, NOW), 'A'); /* a is now the most recent */
    T_EQ_INT(put(c, "e.example", 443, 'e', NOW + 1000), 0);
    T_EQ_INT(hd_tls_cache_count(c), 4);
    T_EQ_INT(tag_of(c, "b.example", 443, NOW), 0); /* b was the least recently used */
    T_EQ_INT(tag_of(c, "a.example", 443, NOW), 'A');
    for (int i = 0; i < 100; i++) {
        snprintf(host, sizeof(host), "x%d.example", i);
        T_EQ_INT(put(c, host, 443, 'x', NOW + 1000), 0);
        T_OK(hd_tls_cache_count(c) <= 4);
    }
    T_EQ_INT(hd_tls_cache_count(c), 4);
    T_EQ_INT(tag_of(c, "x99.example", 443, NOW), 'x');
    T_EQ_INT(tag_of(c, "x95.example", 443, NOW), 0);

    /* Age bound: an expired session is never handed out, and is dropped when met; one
     * expired already is not stored. */
    T_EQ_INT(put(c, "old.example", 443, 'o', NOW + 10), 0);
    T_EQ_INT(tag_of(c, "old.example", 443, NOW + 9), 'o');
    T_EQ_INT(tag_of(c, "old.example", 443, NOW + 10), 0);
    T_EQ_INT(tag_of(c, "old.example", 443, NOW), 0); /* gone, not just hidden */
    T_EQ_INT(put(c, "dead.example", 443, 'd', NOW), 0);
    T_EQ_INT(tag_of(c, "dead.example", 443, NOW - 1), 0);
    /* Bad input. */
    T_EQ_INT(hd_tls_cache_put(c, "", 443, small, 1, NOW + 1, 1, NOW), HD_ERR_INVALID);
    T_EQ_INT(hd_tls_cache_put(c, "z.example", 443, small, 0, NOW + 1, 1, NOW), HD_ERR_INVALID);
    {
        static uint8_t big[HD_TLS_SESSION_MAX + 1];
        T_EQ_INT(hd_tls_cache_put(c, "z.example", 443, big, sizeof(big), NOW + 1, 1, NOW),
                 HD_ERR_INVALID);
    }
    /* Drop. */
    T_EQ_INT(tag_of(c, "x98.example", 443, NOW), 'x');
    hd_tls_cache_drop(c, "x98.example", 443);
    T_EQ_INT(tag_of(c, "x98.example", 443, NOW), 0);
    hd_tls_cache_free(c);

    /* Saving: each changed entry once, in groups; a failed save hands them out again;
     * entries that came from the store (dirty 0) are not written back. */
    T_EQ_INT(hd_tls_cache_new(&c, 100), 0);
    for (int i = 0; i < 10; i++) {
        snprintf(host, sizeof(host), "s%d.example", i);
        T_EQ_INT(put(c, host, (uint16_t)(440 + i), 's', NOW + 1000), 0);
    }
    {
        uint8_t der[10] = {1};
        T_EQ_INT(hd_tls_cache_put(c, "loaded.example", 443, der, sizeof(der), NOW + 1000, 0, NOW),
                 0);
    }
    memset(&sv, 0, sizeof(sv));
    sv.fail = 1;
    T_EQ_INT(hd_tls_cache_take_dirty(c, 4, NOW, on_save, &sv), HD_ERR_STORE);
    T_EQ_INT(sv.calls, 1);
    memset(&sv, 0, sizeof(sv));
    T_EQ_INT(hd_tls_cache_take_dirty(c, 4, NOW, on_save, &sv), 10);
    T_EQ_INT(sv.calls, 3); /* 4 + 4 + 2 */
    T_EQ_INT(sv.n, 10);
    for (size_t i = 0; i < sv.n; i++)
        T_OK(strstr(sv.hosts[i], "loaded") == NULL);
    memset(&sv, 0, sizeof(sv));
    T_EQ_INT(hd_tls_cache_take_dirty(c, 0, NOW, on_save, &sv), 0);
    T_EQ_INT(sv.calls, 0);
    /* A new session for a host marks it again; expired changed entries are dropped, not
     * saved. */
    T_EQ_INT(put(c, "s3.example", 443, 't', NOW + 1000), 0);
    T_EQ_INT(put(c, "soon.example", 443, 't', NOW + 5), 0);
    memset(&sv, 0, sizeof(sv));
    T_EQ_INT(hd_tls_cache_take_dirty(c, 0, NOW + 5, on_save, &sv), 1);
    T_EQ_STR(sv.hosts[0], "s3.example:443");
    T_EQ_INT(tag_of(c, "soon.example", 443, NOW), 0);
    hd_tls_cache_free(c);

    /* Threads at once (ASan/TSan builds see the locking). */
    {
        pthread_t a, b;
        T_EQ_INT(hd_tls_cache_new(&c, 128), 0);
        T_EQ_INT(pthread_create(&a, NULL, hammer, c), 0);
        T_EQ_INT(pthread_create(&b, NULL, hammer, c), 0);
        for (int i = 0; i < 50; i++) {
            memset(&sv, 0, sizeof(sv));
            T_OK(hd_tls_cache_take_dirty(c, 16, NOW, on_save, &sv) >= 0);
        }
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        T_OK(hd_tls_cache_count(c) <= 128);
        hd_tls_cache_free(c);
    }
    hd_tls_cache_free(NULL);
    T_DONE();
}

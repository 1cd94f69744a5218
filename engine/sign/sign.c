/* The signer: its key cache (least recently used evicted), the choice of a crypto backend
 * per key type, and signing one message with a cached key. The signature formats (Digest,
 * Date, draft-cavage-12, RFC 9421) are in sign_http.c. Crypto happens behind struct
 * hd_sign_be (sign_be.h); this file includes neither wolfSSL nor OpenSSL.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "log.h"
#include "sign.h"
#include "sign_be.h"
#include "sign_impl.h"

/* Compiled-in backends, in preference order when measurements tie. */
static const struct hd_sign_be *const sign_backends[] = {&hd_sign_be_ossl, &hd_sign_be_wolf};
#define NBE (sizeof(sign_backends) / sizeof(sign_backends[0]))
#define NTYPES 3 /* index by enum hd_key_type (1, 2) */

/* Why 15 ms of CPU per backend and key type: measurement may cost at most 100 ms in all;
 * two backends x two key types x at most ~19 ms of wall time (the measurement stops at
 * 5/4 of the CPU budget) is 75 ms, leaving room for key loading. At wolfSSL's ~545
 * RSA-2048 signatures/s that is still ~8 samples, enough to tell a 7x difference. */
#define MEASURE_NS_PER_BACKEND 15000000LL
/* ... or this many signatures per backend, whichever comes first. An Ed25519 signature takes
 * 18-50 us depending on the backend: 64 of each cost about 5.6 ms of CPU at every start in
 * a profile (0.3 us per delivery of a 20,000-delivery run), and the median of 32 samples taken in rounds of 4
 * tells two backends apart as well as it is needed here (they differ by 2x or more; a
 * disturbance must last 4 rounds of both to move it), as 8 do for RSA. */
#define MEASURE_SIGNS_MAX 32
/* Signatures per backend and round of the interleaved measurement (measure_all). */
#define MEASURE_ROUND 4

struct hd_sign_key {
    struct hd_sign_key *hnext;       /* hash chain */
    struct hd_sign_key *prev, *next; /* LRU list, most recent first */
    int type;
    unsigned bits;
    size_t be; /* index into sign_backends */
    void *bk;  /* backend key */
    char id[];
};

struct hd_signer {
    void *ctx[NBE];           /* per-backend state; NULL if the backend failed */
    int forced;               /* backend index named by the caller, or -1 */
    int chosen[NTYPES];       /* backend index per key type, -1 until measured */
    double rate[NTYPES][NBE]; /* measured signatures per second */
    struct hd_sign_key **buckets;
    size_t nbuckets, nkeys, max_keys;
    struct hd_sign_key *mru, *lru; /* recency list ends: most and least recently used */
    char base[HD_SIGN_BASE_MAX];   /* signing string scratch, reused per signature */
};

/* ---- hashing, clocks, names ---- */

static uint64_t hash_str(const char *s)
{
    /* FNV-1a, unseeded: key ids name our own platform's actors, not peer input, and the
     * table is capped (max_keys), so flooding it costs at worst a long chain. */
    uint64_t h = 1469598103934665603ULL;

    while (*s) {
        h ^= (uint8_t)*s++;
        h *= 1099511628211ULL;
    }
    return h;
}

static long long now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int be_index(const char *name)
{
    size_t i;

    for (i = 0; i < NBE; i++)
        if (strcmp(sign_backends[i]->name, name) == 0)
            return (int)i;
    return -1;
}

int hd_sign_alg_from_name(const char *name)
{
    if (strcmp(name, "rsa-v1_5-sha256") == 0)
        return HD_SIGN_ALG_RSA_V15_SHA256;
    if (strcmp(name, "rsa-pss-sha512") == 0)
        return HD_SIGN_ALG_RSA_PSS_SHA512;
    if (strcmp(name, "ed25519") == 0)
        return HD_SIGN_ALG_ED25519;
    return -1;
}

size_t hd_sign_backend_count(void)
{
    return NBE;
}

const char *hd_sign_backend_at(size_t i)
{
    return i < NBE ? sign_backends[i]->name : NULL;
}

/* ---- signer lifecycle ---- */

int hd_signer_new_ex(struct hd_signer **out, const char *backend)
{
    struct hd_signer *s;
    size_t i, ok = 0;
    int forced = -1;

    if (backend && strcmp(backend, "auto") != 0) {
        forced = be_index(backend);
        if (forced < 0)
            return HD_ERR_INVALID;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->forced = forced;
    for (i = 0; i < NTYPES; i++)
        s->chosen[i] = -1;
    s->nbuckets = 256;
    s->max_keys = HD_SIGNER_MAX_KEYS_DEFAULT;
    s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
    if (!s->buckets) {
        free(s);
        return -ENOMEM;
    }
    for (i = 0; i < NBE; i++) {
        if (forced >= 0 && (size_t)forced != i)
            continue;
        if (sign_backends[i]->ctx_new(&s->ctx[i]) == 0)
            ok++;
        else
            s->ctx[i] = NULL;
    }
    if (ok == 0) {
        hd_signer_free(s);
        return HD_ERR_CRYPTO;
    }
    *out = s;
    return 0;
}

int hd_signer_new(struct hd_signer **out)
{
    return hd_signer_new_ex(out, NULL);
}

static void key_free(struct hd_sign_key *k)
{
    sign_backends[k->be]->key_free(k->bk);
    free(k);
}

/* The recency list is NULL-terminated at both ends (no sentinel: struct hd_sign_key ends
 * in a flexible array member and cannot be embedded). */
static void list_remove(struct hd_signer *s, struct hd_sign_key *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        s->mru = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        s->lru = k->prev;
    k->prev = k->next = NULL;
}

static void list_push_front(struct hd_signer *s, struct hd_sign_key *k)
{
    k->prev = NULL;
    k->next = s->mru;
    if (s->mru)
        s->mru->prev = k;
    else
        s->lru = k;
    s->mru = k;
}

static void key_unlink(struct hd_signer *s, struct hd_sign_key *k)
{
    struct hd_sign_key **pp = &s->buckets[hash_str(k->id) & (s->nbuckets - 1)];

    while (*pp != k)
        pp = &(*pp)->hnext;
    *pp = k->hnext;
    list_remove(s, k);
    s->nkeys--;
}

void hd_signer_free(struct hd_signer *s)
{
    size_t i;

    if (!s)
        return;
    if (s->buckets) {
        while (s->mru) {
            struct hd_sign_key *k = s->mru;

            key_unlink(s, k);
            key_free(k);
        }
        free(s->buckets);
    }
    for (i = 0; i < NBE; i++)
        if (s->ctx[i])
            sign_backends[i]->ctx_free(s->ctx[i]);
    /* The scratch buffer held signing strings (no secrets); wipe anyway, it is cheap. */
    explicit_bzero(s, sizeof(*s));
    free(s);
}

void hd_signer_set_max_keys(struct hd_signer *s, size_t n)
{
    s->max_keys = n ? n : 1;
    while (s->nkeys > s->max_keys) {
        struct hd_sign_key *k = s->lru;

        key_unlink(s, k);
        key_free(k);
    }
}

static struct hd_sign_key *key_find(const struct hd_signer *s, const char *id)
{
    struct hd_sign_key *k = s->buckets[hash_str(id) & (s->nbuckets - 1)];

    while (k && strcmp(k->id, id) != 0)
        k = k->hnext;
    return k;
}

/* Doubles the bucket array when the load factor passes 1 (bounded by max_keys). */
static void maybe_grow(struct hd_signer *s)
{
    struct hd_sign_key **nb;
    size_t n = s->nbuckets * 2, i;

    if (s->nkeys < s->nbuckets || n > (1u << 24))
        return;
    nb = calloc(n, sizeof(*nb));
    if (!nb)
        return; /* keep the old table: slower chains, still correct */
    for (i = 0; i < s->nbuckets; i++) {
        struct hd_sign_key *k = s->buckets[i], *next;

        for (; k; k = next) {
            size_t b = hash_str(k->id) & (n - 1);

            next = k->hnext;
            k->hnext = nb[b];
            nb[b] = k;
        }
    }
    free(s->buckets);
    s->buckets = nb;
    s->nbuckets = n;
}

int hd_signer_has_key(const struct hd_signer *s, const char *key_id)
{
    return key_id && key_find(s, key_id) != NULL;
}

int hd_signer_key_info(const struct hd_signer *s, const char *key_id, int *type, unsigned *bits)
{
    const struct hd_sign_key *k = key_id ? key_find(s, key_id) : NULL;

    if (!k)
        return HD_ERR_NOT_FOUND;
    *type = k->type;
    *bits = k->bits;
    return 0;
}

/* ---- backend measurement ---- */

int hd_sign_default_alg(int type)
{
    return type == HD_KEY_ED25519 ? HD_SIGN_ALG_ED25519 : HD_SIGN_ALG_RSA_V15_SHA256;
}

/* Signs a fixed message on one backend (at most max_signs times after the first) and returns
 * signatures per second of thread CPU time, or 0 with *err set when the backend cannot sign
 * with this key.
 * Why CPU time: the signer runs on a loop thread that owns its core; wall-clock rates taken
 * while other processes compete for the CPU (a busy build machine, a neighbour) swing by 5x
 * and could pick the slower backend. The wall clock bounds the call: it stops after
 * budget_ns of CPU time or budget_ns * 5 / 4 of wall time, whichever comes first, the first
 * (warm-up) signature included. That first signature carries one-time costs (blinding
 * set-up) and is not counted, unless it alone used up the budget (RSA-4096 on a slow
 * backend): then it is the only sample. */
static double measure_one(const struct hd_sign_be *be, void *ctx, void *bk, int alg,
                          long long budget_ns, unsigned max_signs, int *err)
{
    uint8_t msg[256], sig[HD_SIGN_SIG_MAX];
    size_t sig_len = sizeof(sig);
    long long c0, w0, cel, wel, wall_cap = budget_ns / 4 * 5;
    unsigned n = 0;
    int rc;

    memset(msg, 'h', sizeof(msg));
    w0 = now_ns();
    c0 = cpu_ns();
    rc = be->sign(ctx, bk, alg, msg, sizeof(msg), sig, &sig_len);
    if (rc != 0) {
        *err = rc;
        return 0;
    }
    cel = cpu_ns() - c0;
    *err = 0;
    if (now_ns() - w0 >= wall_cap / 2)
        return cel > 0 ? 1e9 / (double)cel : 0;
    c0 = cpu_ns();
    do {
        sig_len = sizeof(sig);
        rc = be->sign(ctx, bk, alg, msg, sizeof(msg), sig, &sig_len);
        if (rc != 0) {
            *err = rc;
            return 0;
        }
        n++;
        cel = cpu_ns() - c0;
        wel = now_ns() - w0;
    } while (cel < budget_ns && wel < wall_cap && n < max_signs);
    return cel > 0 ? (double)n * 1e9 / (double)cel : 0;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;

    return (x > y) - (x < y);
}

/* Measures every backend with a loaded key (bks[i] != NULL) on the same key and returns in
 * rate[i] signatures per second of thread CPU time: 1 s over the median CPU time of one
 * signature. On error the backend's key is freed, bks[i] set to NULL and rate[i] to 0.
 * Why interleaved rounds and the median: the CPU clock of a virtual machine also runs while
 * the host has taken the vCPU away (no steal time is reported here), and a busy start (TLS
 * handshakes on the other loop thread, a neighbour) can stretch a few signatures tenfold. One
 * backend measured after the other, by its mean, once read OpenSSL at 296 RSA-2048
 * signatures/s against its usual 2,500-4,000 and chose wolfSSL (439/s): six times the CPU
 * for every delivery of the run. Rounds of MEASURE_ROUND signatures per backend, taken in
 * turn, put a disturbance on both backends alike, and the median ignores it unless it lasts
 * for half the samples. The first signature of each backend (one-time costs such as
 * blinding set-up) is not counted; one round is always made, so a slow key (RSA-4096 on a
 * slow backend) costs at most five signatures per backend beyond the budget. */
static void measure_all(const struct hd_signer *s, int type, void *bks[NBE], double rate[NBE])
{
    uint8_t msg[256], sig[HD_SIGN_SIG_MAX];
    long long samp[NBE][MEASURE_SIGNS_MAX], w0, c0, c1, spent = 0;
    long long budget = MEASURE_NS_PER_BACKEND * (long long)NBE;
    long long wall_cap = budget / 4 * 5;
    unsigned n[NBE] = {0}, live = 0;
    int alg = hd_sign_default_alg(type);
    size_t i, sig_len;

    memset(msg, 'h', sizeof(msg));
    w0 = now_ns();
    for (i = 0; i < NBE; i++) {
        rate[i] = 0;
        if (!bks[i])
            continue;
        sig_len = sizeof(sig);
        c0 = cpu_ns();
        if (sign_backends[i]->sign(s->ctx[i], bks[i], alg, msg, sizeof(msg), sig, &sig_len) !=
            0) {
            sign_backends[i]->key_free(bks[i]);
            bks[i] = NULL;
            continue;
        }
        spent += cpu_ns() - c0;
        live++;
    }
    /* At least one round, whatever the warm-up cost: a first signature stretched by a
     * disturbance must not be the only sample. */
    for (int first = 1; live > 0 && (first || (spent < budget && now_ns() - w0 < wall_cap));
         first = 0) {
        live = 0;
        for (i = 0; i < NBE; i++) {
            unsigned k;

            if (!bks[i] || n[i] >= MEASURE_SIGNS_MAX)
                continue;
            for (k = 0; k < MEASURE_ROUND && n[i] < MEASURE_SIGNS_MAX; k++) {
                sig_len = sizeof(sig);
                c0 = cpu_ns();
                if (sign_backends[i]->sign(s->ctx[i], bks[i], alg, msg, sizeof(msg), sig,
                                           &sig_len) != 0) {
                    sign_backends[i]->key_free(bks[i]);
                    bks[i] = NULL;
                    n[i] = 0;
                    break;
                }
                c1 = cpu_ns() - c0;
                spent += c1;
                samp[i][n[i]++] = c1 > 0 ? c1 : 1;
            }
            if (bks[i] && n[i] < MEASURE_SIGNS_MAX)
                live++;
        }
    }
    for (i = 0; i < NBE; i++) {
        if (!bks[i] || n[i] == 0)
            continue;
        qsort(samp[i], n[i], sizeof(samp[i][0]), cmp_ll);
        rate[i] = 1e9 / (double)samp[i][n[i] / 2];
    }
}

/* The measurement is made once per process and key type, by the first signer choosing
 * freely ("auto") that needs it, and reused by the others: each loop thread has its own
 * signer, and measuring two backends costs about 30 ms of CPU per key type, which in a
 * 20,000-delivery run with two loop threads was 3 us of CPU per delivery. Signers that
 * load their first key of a type at the same time wait for that one measurement. */
static pthread_mutex_t measured_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int have;
    int chosen;
    double rate[NBE];
} measured[NTYPES];

static int load_key_locked(struct hd_signer *s, const struct hd_sign_parsed *pk,
                           size_t *be_out, void **bk_out);

/* Loads the parsed key into the backend used for its type; the first key of a type picks
 * that backend by measuring every available one with this very key (or by the process's
 * earlier measurement: see measured). */
static int load_key(struct hd_signer *s, const struct hd_sign_parsed *pk, size_t *be_out,
                    void **bk_out)
{
    int rc, t = pk->type;

    if (s->chosen[t] >= 0 || s->forced >= 0 || t < 0 || t >= NTYPES)
        return load_key_locked(s, pk, be_out, bk_out);
    pthread_mutex_lock(&measured_mu);
    if (measured[t].have && s->ctx[measured[t].chosen]) {
        s->chosen[t] = measured[t].chosen;
        memcpy(s->rate[t], measured[t].rate, sizeof(s->rate[t]));
    }
    rc = load_key_locked(s, pk, be_out, bk_out);
    if (rc == 0 && !measured[t].have && s->chosen[t] >= 0) {
        measured[t].have = 1;
        measured[t].chosen = s->chosen[t];
        memcpy(measured[t].rate, s->rate[t], sizeof(measured[t].rate));
    }
    pthread_mutex_unlock(&measured_mu);
    return rc;
}

static int load_key_locked(struct hd_signer *s, const struct hd_sign_parsed *pk,
                           size_t *be_out, void **bk_out)
{
    void *bks[NBE] = {0};
    size_t i;
    int best = -1, rc = HD_ERR_INVALID;

    if (s->chosen[pk->type] >= 0) {
        i = (size_t)s->chosen[pk->type];
        rc = sign_backends[i]->key_load(s->ctx[i], pk->type, pk->key, pk->key_len, bk_out);
        if (rc == 0) {
            *be_out = i;
            return 0;
        }
        /* Fall through: another backend may accept a key this one refuses. */
    }
    for (i = 0; i < NBE; i++) {
        int err;

        if (!s->ctx[i] || (s->chosen[pk->type] >= 0 && (size_t)s->chosen[pk->type] == i))
            continue;
        err = sign_backends[i]->key_load(s->ctx[i], pk->type, pk->key, pk->key_len, &bks[i]);
        if (err != 0) {
            bks[i] = NULL;
            if (err == -ENOMEM)
                rc = err;
            continue;
        }
        if (s->chosen[pk->type] >= 0) { /* fallback load: no measuring */
            best = (int)i;
            break;
        }
    }
    if (s->chosen[pk->type] < 0) {
        measure_all(s, pk->type, bks, s->rate[pk->type]);
        for (i = 0; i < NBE; i++)
            if (bks[i] && s->rate[pk->type][i] > 0 &&
                (best < 0 || s->rate[pk->type][i] > s->rate[pk->type][best]))
                best = (int)i;
    }
    for (i = 0; i < NBE; i++)
        if (bks[i] && (int)i != best)
            sign_backends[i]->key_free(bks[i]);
    if (best < 0)
        return rc;
    if (s->chosen[pk->type] < 0) {
        s->chosen[pk->type] = best;
        /* Once per process (or per signer with a backend named) and key type: operators
         * see which library signs. */
        HD_LOG(HD_LOG_INFO, "sign",
               "msg=\"signing backend chosen\" key_type=%s backend=%s rate=%.0f "
               "openssl_rate=%.0f wolfssl_rate=%.0f forced=%d",
               pk->type == HD_KEY_RSA ? "rsa" : "ed25519", sign_backends[best]->name,
               s->rate[pk->type][best], s->rate[pk->type][be_index("openssl")],
               s->rate[pk->type][be_index("wolfssl")], s->forced >= 0);
    }
    *be_out = (size_t)best;
    *bk_out = bks[best];
    return 0;
}

const char *hd_signer_backend_name(const struct hd_signer *s, int key_type)
{
    if (key_type < 1 || key_type >= NTYPES || s->chosen[key_type] < 0)
        return NULL;
    return sign_backends[s->chosen[key_type]]->name;
}

double hd_signer_rate(const struct hd_signer *s, int key_type)
{
    if (key_type < 1 || key_type >= NTYPES || s->chosen[key_type] < 0)
        return 0;
    return s->rate[key_type][s->chosen[key_type]];
}

double hd_signer_backend_rate(const struct hd_signer *s, int key_type, const char *backend)
{
    int i = be_index(backend);

    if (key_type < 1 || key_type >= NTYPES || i < 0)
        return 0;
    return s->rate[key_type][i];
}

int hd_signer_add_key(struct hd_signer *s, const char *key_id, const char *pem, size_t pem_len,
                      unsigned min_rsa_bits)
{
    struct hd_sign_parsed pk;
    struct hd_sign_key *k, *old;
    size_t id_len, b;
    int rc;

    if (!key_id || !*key_id)
        return HD_ERR_INVALID;
    id_len = strlen(key_id);
    if (id_len > 2048)
        return HD_ERR_INVALID;
    rc = hd_sign_parse_pem(pem, pem_len, &pk);
    if (rc != 0)
        return rc;
    if (pk.type == HD_KEY_RSA && pk.bits < min_rsa_bits) {
        rc = HD_ERR_INVALID;
        goto out;
    }
    k = calloc(1, sizeof(*k) + id_len + 1);
    if (!k) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(k->id, key_id, id_len + 1);
    k->type = pk.type;
    k->bits = pk.bits;
    rc = load_key(s, &pk, &k->be, &k->bk);
    if (rc != 0) {
        free(k);
        goto out;
    }
    old = key_find(s, key_id);
    if (old) {
        key_unlink(s, old);
        key_free(old);
    }
    while (s->nkeys >= s->max_keys) {
        struct hd_sign_key *victim = s->lru;

        key_unlink(s, victim);
        key_free(victim);
    }
    maybe_grow(s);
    b = hash_str(key_id) & (s->nbuckets - 1);
    k->hnext = s->buckets[b];
    s->buckets[b] = k;
    list_push_front(s, k);
    s->nkeys++;
out:
    hd_sign_parsed_fini(&pk);
    return rc;
}

struct hd_sign_key *hd_signer_key_use(struct hd_signer *s, const char *key_id)
{
    struct hd_sign_key *k = key_id ? key_find(s, key_id) : NULL;

    if (k && s->mru != k) {
        list_remove(s, k);
        list_push_front(s, k);
    }
    return k;
}

int hd_signer_measure(const char *backend, const char *alg, const char *pem, size_t pem_len,
                      unsigned ms, double *ops_per_sec)
{
    struct hd_sign_parsed pk;
    const struct hd_sign_be *be;
    void *ctx = NULL, *bk = NULL;
    int bi = backend ? be_index(backend) : -1, a = alg ? hd_sign_alg_from_name(alg) : -1;
    int rc, err = 0;
    double r;

    if (bi < 0 || a < 0)
        return HD_ERR_INVALID;
    be = sign_backends[bi];
    rc = hd_sign_parse_pem(pem, pem_len, &pk);
    if (rc != 0)
        return rc;
    if ((a == HD_SIGN_ALG_ED25519) != (pk.type == HD_KEY_ED25519)) {
        rc = HD_ERR_INVALID;
        goto out;
    }
    rc = be->ctx_new(&ctx);
    if (rc != 0)
        goto out;
    rc = be->key_load(ctx, pk.type, pk.key, pk.key_len, &bk);
    if (rc != 0)
        goto out;
    r = measure_one(be, ctx, bk, a, (long long)(ms ? ms : 1) * 1000000LL, 1000000, &err);
    if (err != 0) {
        rc = err;
        goto out;
    }
    *ops_per_sec = r;
out:
    if (bk)
        be->key_free(bk);
    if (ctx)
        be->ctx_free(ctx);
    hd_sign_parsed_fini(&pk);
    return rc;
}

/* One-shot sign or verify on a named backend (tests). */
static int be_oneshot(const char *be_name, const char *alg_name, const char *pem, size_t pem_len,
                      const uint8_t *msg, size_t len, uint8_t *sig, size_t *sig_len, int verify)
{
    struct hd_sign_parsed pk;
    const struct hd_sign_be *be;
    void *ctx = NULL, *bk = NULL;
    int bi = be_name ? be_index(be_name) : -1, a = alg_name ? hd_sign_alg_from_name(alg_name) : -1;
    int rc;

    if (bi < 0 || a < 0)
        return HD_ERR_INVALID;
    be = sign_backends[bi];
    rc = hd_sign_parse_pem(pem, pem_len, &pk);
    if (rc != 0)
        return rc;
    rc = be->ctx_new(&ctx);
    if (rc == 0)
        rc = be->key_load(ctx, pk.type, pk.key, pk.key_len, &bk);
    if (rc == 0)
        rc = verify ? be->verify(ctx, bk, a, msg, len, sig, *sig_len)
                    : be->sign(ctx, bk, a, msg, len, sig, sig_len);
    if (bk)
        be->key_free(bk);
    if (ctx)
        be->ctx_free(ctx);
    hd_sign_parsed_fini(&pk);
    return rc;
}

int hd_sign_be_sign(const char *be_name, const char *alg_name, const char *pem, size_t pem_len,
                    const uint8_t *msg, size_t len, uint8_t *sig, size_t *sig_len)
{
    return be_oneshot(be_name, alg_name, pem, pem_len, msg, len, sig, sig_len, 0);
}

int hd_sign_be_verify(const char *be_name, const char *alg_name, const char *pem, size_t pem_len,
                      const uint8_t *msg, size_t len, const uint8_t *sig, size_t sig_len)
{
    return be_oneshot(be_name, alg_name, pem, pem_len, msg, len, (uint8_t *)sig, &sig_len, 1);
}

int hd_sign_key_type(const struct hd_sign_key *k)
{
    return k->type;
}

int hd_sign_key_sign(struct hd_signer *s, const struct hd_sign_key *k, int alg, const uint8_t *msg,
                     size_t len, uint8_t *sig, size_t *sig_len)
{
    return sign_backends[k->be]->sign(s->ctx[k->be], k->bk, alg, msg, len, sig, sig_len);
}

char *hd_signer_scratch(struct hd_signer *s)
{
    return s->base;
}

const char *hd_signer_last_base(const struct hd_signer *s)
{
    return s->base;
}

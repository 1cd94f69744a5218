/* TLS client over memory buffers (see tls.h). The only file that includes wolfSSL (its ECDSA
 * verifications go through tls_pk.c, which includes OpenSSL). */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/asn_public.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "tls.h"
#include "tls_pk.h"

struct hd_tls_trust {
    _Atomic(WOLFSSL_CTX *) ctx; /* set once, complete, under mu; then only read */
    atomic_uint refs;
    pthread_mutex_t mu;
    int failed; /* under mu: the system bundle did not load (logged once) */
};

struct hd_tls_ctx {
    struct hd_tls_trust *trust; /* a reference */
    struct hd_tls_pk *pk; /* ECDSA verification: OpenSSL, valid signatures (tls_pk.h) */
};

struct hd_tls {
    WOLFSSL *ssl;
    const uint8_t *in;
    size_t in_len, in_off;
    hd_tls_sink_cb sink;
    void *user_data;
    int new_session; /* a session worth keeping appeared (handshake done, or a new ticket) */
};

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    struct hd_tls *t = ctx;
    size_t avail = t->in_len - t->in_off;

    (void)ssl;
    if (avail == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    if ((size_t)sz < avail)
        avail = (size_t)sz;
    memcpy(buf, t->in + t->in_off, avail);
    t->in_off += avail;
    return (int)avail;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    struct hd_tls *t = ctx;

    (void)ssl;
    if (t->sink((const uint8_t *)buf, (size_t)sz, t->user_data) != 0)
        return WOLFSSL_CBIO_ERR_WANT_WRITE;
    return sz;
}

/* wolfSSL_Init is reference counted but its first call is not safe to race, and each loop
 * thread creates its own client: initialise once per process and never clean up (the library
 * may be in use by another thread's client, or by the signer). */
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_init_rv;

static void tls_init(void)
{
    tls_init_rv = wolfSSL_Init();
}

#ifdef HAVE_PK_CALLBACKS
/* wolfSSL's public-key callback for every ECDSA verification of a handshake: the server's
 * certificate chain (one call per certificate signature) and its CertificateVerify. It only
 * replaces the signature primitive; wolfSSL still decides what is verified with which key.
 * A signature already found valid with the same key and digest is not computed again
 * (tls_pk.h); else OpenSSL verifies it (P-256, P-521), or wolfCrypt as without the callback
 * (P-384 and other curves). ctx is the hd_tls_ctx (set on each session by hd_tls_new). */
static int on_ecc_verify(WOLFSSL *ssl, const unsigned char *sig, unsigned int sig_len,
                         const unsigned char *hash, unsigned int hash_len,
                         const unsigned char *key, unsigned int key_len, int *result, void *ctx)
{
    struct hd_tls_ctx *c = ctx;
    ecc_key k;
    word32 idx = 0;
    int rv = HD_ERR_INVALID;

    (void)ssl;
    *result = 0;
    if (c) {
        if (hd_tls_pk_known(c->pk, key, key_len, hash, hash_len, sig, sig_len)) {
            *result = 1;
            return 0;
        }
        rv = hd_tls_pk_ecdsa_verify(c->pk, key, key_len, hash, hash_len, sig, sig_len);
    }
    if (rv == -ENOMEM)
        return MEMORY_E;
    if (rv >= 0) {
        *result = rv;
    } else {
        if (wc_ecc_init(&k) != 0)
            return MEMORY_E;
        rv = wc_EccPublicKeyDecode(key, &idx, &k, key_len);
        if (rv == 0)
            rv = wc_ecc_verify_hash(sig, sig_len, hash, hash_len, result, &k);
        wc_ecc_free(&k);
        if (rv != 0)
            return rv;
    }
    if (*result == 1 && c)
        hd_tls_pk_remember(c->pk, key, key_len, hash, hash_len, sig, sig_len);
    return 0;
}
#endif

/* Key-exchange groups offered, most preferred first; the TLS 1.3 ClientHello carries a key
 * share for the first only. wolfSSL's default list starts with P-521 and sends a P-256 share;
 * Debian builds it without its SP code, so a P-256 ECDH against the server's fresh ephemeral
 * point costs about 0.5-0.9 ms of CPU, X25519 (key generation and shared secret) about
 * 0.17 ms: X25519 first roughly halves a full handshake's client CPU (measured, see
 * tests/integration/tls_groups.sh for the fallback). A server without X25519 answers with a
 * HelloRetryRequest for P-256 (one more round trip, same result as before). The list keeps
 * the usual web groups (P-256/384/521, X448, FFDHE for TLS 1.2 DHE servers) and drops the
 * ones no public server negotiates (brainpool, secp256k1, secp224). */
static const int key_groups[] = {
    WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_SECP384R1, WOLFSSL_ECC_SECP521R1,
    WOLFSSL_ECC_X448,   WOLFSSL_FFDHE_2048,    WOLFSSL_FFDHE_3072,
};

/* Builds the shared wolfSSL context: trust store, versions, verification, groups, callbacks.
 * Returns it, or NULL (logged). */
static WOLFSSL_CTX *wctx_build(const char *ca_file)
{
    WOLFSSL_CTX *w = wolfSSL_CTX_new(wolfSSLv23_client_method());
    WOLFSSL *probe;
    int rv;

    if (!w) {
        HD_LOG(HD_LOG_ERROR, "tls", "msg=\"cannot create the TLS context\"");
        return NULL;
    }
    if (wolfSSL_CTX_SetMinVersion(w, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS)
        goto fail;
    if (ca_file) {
        rv = wolfSSL_CTX_load_verify_locations(w, ca_file, NULL);
    } else {
        rv = wolfSSL_CTX_load_system_CA_certs(w);
        if (rv != WOLFSSL_SUCCESS)
            rv = wolfSSL_CTX_load_verify_locations(w, "/etc/ssl/certs/ca-certificates.crt", NULL);
    }
    if (rv != WOLFSSL_SUCCESS) {
        HD_LOG(HD_LOG_ERROR, "tls", "msg=\"cannot load CA certificates\" file=%s rv=%d",
               ca_file ? ca_file : "(system)", rv);
        goto fail;
    }
    wolfSSL_CTX_set_verify(w, WOLFSSL_VERIFY_PEER, NULL);
    if (wolfSSL_CTX_set_groups(w, (int *)key_groups,
                               (int)(sizeof(key_groups) / sizeof(key_groups[0]))) !=
        WOLFSSL_SUCCESS)
        goto fail;
#ifdef HAVE_PK_CALLBACKS
    wolfSSL_CTX_SetEccVerifyCb(w, on_ecc_verify);
#endif
    wolfSSL_CTX_SetIORecv(w, io_recv);
    wolfSSL_CTX_SetIOSend(w, io_send);
    /* One session made and freed before the context is shared, so that whatever wolfSSL
     * sets up in a context on its first session is done here, by one thread. */
    probe = wolfSSL_new(w);
    if (!probe)
        goto fail;
    wolfSSL_free(probe);
    HD_LOG(HD_LOG_DEBUG, "tls", "msg=\"trust store loaded\" file=%s",
           ca_file ? ca_file : "(system)");
    return w;
fail:
    wolfSSL_CTX_free(w);
    return NULL;
}

int hd_tls_trust_new(struct hd_tls_trust **out, const char *ca_file)
{
    struct hd_tls_trust *tr;

    pthread_once(&tls_once, tls_init);
    if (tls_init_rv != WOLFSSL_SUCCESS)
        return HD_ERR_TLS;
    tr = calloc(1, sizeof(*tr));
    if (!tr)
        return -ENOMEM;
    atomic_init(&tr->refs, 1);
    atomic_init(&tr->ctx, NULL);
    if (pthread_mutex_init(&tr->mu, NULL) != 0) {
        free(tr);
        return -ENOMEM;
    }
    if (ca_file) {
        WOLFSSL_CTX *w = wctx_build(ca_file);
        if (!w) {
            pthread_mutex_destroy(&tr->mu);
            free(tr);
            return HD_ERR_TLS;
        }
        atomic_store(&tr->ctx, w);
    }
    *out = tr;
    return 0;
}

void hd_tls_trust_free(struct hd_tls_trust *tr)
{
    if (!tr || atomic_fetch_sub(&tr->refs, 1) != 1)
        return;
    wolfSSL_CTX_free(atomic_load(&tr->ctx));
    pthread_mutex_destroy(&tr->mu);
    free(tr);
}

int hd_tls_trust_loaded(struct hd_tls_trust *tr)
{
    return atomic_load_explicit(&tr->ctx, memory_order_acquire) != NULL;
}

/* The shared wolfSSL context, built from the system bundle at the first call. NULL when it
 * cannot be (logged once). */
static WOLFSSL_CTX *trust_get(struct hd_tls_trust *tr)
{
    WOLFSSL_CTX *w = atomic_load_explicit(&tr->ctx, memory_order_acquire);

    if (w)
        return w;
    pthread_mutex_lock(&tr->mu);
    w = atomic_load_explicit(&tr->ctx, memory_order_relaxed);
    if (!w && !tr->failed) {
        w = wctx_build(NULL);
        if (w)
            atomic_store_explicit(&tr->ctx, w, memory_order_release);
        else
            tr->failed = 1;
    }
    pthread_mutex_unlock(&tr->mu);
    return w;
}

int hd_tls_ctx_new_shared(struct hd_tls_ctx **out, struct hd_tls_trust *trust)
{
    struct hd_tls_ctx *c = calloc(1, sizeof(*c));
    int rv;

    if (!c)
        return -ENOMEM;
    rv = hd_tls_pk_new(&c->pk);
    if (rv != 0) {
        free(c);
        return rv;
    }
    atomic_fetch_add(&trust->refs, 1);
    c->trust = trust;
    *out = c;
    return 0;
}

int hd_tls_ctx_new(struct hd_tls_ctx **out, const char *ca_file)
{
    struct hd_tls_trust *tr;
    int rv = hd_tls_trust_new(&tr, ca_file);

    if (rv != 0)
        return rv;
    rv = hd_tls_ctx_new_shared(out, tr);
    hd_tls_trust_free(tr); /* the context holds its own reference */
    return rv;
}

void hd_tls_ctx_free(struct hd_tls_ctx *c)
{
    if (!c)
        return;
    hd_tls_trust_free(c->trust);
    hd_tls_pk_free(c->pk);
    free(c);
}

static int is_ip_literal(const char *host)
{
    unsigned char tmp[16];
    return inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;
}

/* TLS 1.3 tickets arrive after the handshake; only a session holding a ticket of *this*
 * connection may be resumed (an old ticket with this connection's secrets fails the binder). */
static int on_ticket(WOLFSSL *ssl, const unsigned char *ticket, int len, void *ctx)
{
    struct hd_tls *t = ctx;
    (void)ssl;
    (void)ticket;
    (void)len;
    t->new_session = 1;
    return 0;
}

int hd_tls_new(struct hd_tls **out, struct hd_tls_ctx *ctx, const char *host,
               hd_tls_sink_cb sink, void *user_data)
{
    static const char alpn[] = "h2,http/1.1";
    WOLFSSL_CTX *w = trust_get(ctx->trust);
    struct hd_tls *t;

    if (!w)
        return HD_ERR_TLS;
    t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->sink = sink;
    t->user_data = user_data;
    t->ssl = wolfSSL_new(w);
    if (!t->ssl) {
        free(t);
        return -ENOMEM;
    }
    wolfSSL_SetIOReadCtx(t->ssl, t);
    wolfSSL_SetIOWriteCtx(t->ssl, t);
#ifdef HAVE_PK_CALLBACKS
    wolfSSL_SetEccVerifyCtx(t->ssl, ctx);
#endif
    if (is_ip_literal(host)) {
        /* No SNI for IP literals (RFC 6066 3); the certificate must carry the IP in a SAN. */
        WOLFSSL_X509_VERIFY_PARAM *param = wolfSSL_get0_param(t->ssl);
        if (!param || wolfSSL_X509_VERIFY_PARAM_set1_ip_asc(param, host) != WOLFSSL_SUCCESS)
            goto fail;
    } else {
        if (wolfSSL_UseSNI(t->ssl, WOLFSSL_SNI_HOST_NAME, host, (unsigned short)strlen(host)) !=
            WOLFSSL_SUCCESS)
            goto fail;
        if (wolfSSL_check_domain_name(t->ssl, host) != WOLFSSL_SUCCESS)
            goto fail;
    }
    wolfSSL_set_SessionTicket_cb(t->ssl, on_ticket, t);
    wolfSSL_UseSessionTicket(t->ssl);
    if (wolfSSL_UseALPN(t->ssl, (char *)alpn, sizeof(alpn) - 1,
                        WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) != WOLFSSL_SUCCESS)
        goto fail;
    *out = t;
    return 0;
fail:
    wolfSSL_free(t->ssl);
    free(t);
    return HD_ERR_TLS;
}

void hd_tls_free(struct hd_tls *t)
{
    if (!t)
        return;
    wolfSSL_free(t->ssl);
    free(t);
}

/* wolfSSL's serialised session (wolfSSL_i2d_SSL_SESSION, 5.x with SESSION_CERTS): side(1)
 * bornOn(4) timeout(4) idLen(1) id masterSecret(48) haveEMS(1) altIdLen(1: 0 or 32) altId
 * chainCount(1) then per certificate len(2) DER, then the rest. The chain is not needed to
 * resume (a resumed handshake carries no certificate) and is most of the size, so it is cut
 * out: returns the new length, or n unchanged when the layout is not the expected one (the
 * session then keeps its chain, which is only bigger). */
#define WIRE_SECRET_LEN 48
#define WIRE_ID_LEN 32
static size_t strip_chain(uint8_t *d, size_t n)
{
#ifdef SESSION_CERTS
    size_t idx = 1 + 4 + 4, at, end;
    unsigned count;

    if (idx >= n)
        return n;
    idx += 1 + d[idx] + WIRE_SECRET_LEN + 1;
    if (idx >= n || (d[idx] != 0 && d[idx] != WIRE_ID_LEN))
        return n;
    idx += 1 + d[idx];
    if (idx >= n)
        return n;
    at = idx;
    count = d[idx++];
    end = idx;
    for (unsigned i = 0; i < count; i++) {
        if (end + 2 > n)
            return n;
        end += 2 + (((size_t)d[end] << 8) | d[end + 1]);
        if (end > n)
            return n;
    }
    d[at] = 0;
    memmove(d + at + 1, d + end, n - end);
    return n - (end - at - 1);
#else
    (void)d;
    return n;
#endif
}

int hd_tls_session_export(struct hd_tls *t, uint8_t *buf, size_t cap, size_t *len,
                          uint64_t *expires_ms)
{
    WOLFSSL_SESSION *s;
    unsigned char *p = NULL, *w;
    long born, life;
    int n, rv = 1;

    if (!t->new_session || !wolfSSL_is_init_finished(t->ssl))
        return 0;
    t->new_session = 0;
    s = wolfSSL_get1_session(t->ssl);
    if (!s)
        return 0;
    n = wolfSSL_i2d_SSL_SESSION(s, NULL);
    if (n <= 0) {
        rv = HD_ERR_TLS;
        goto out;
    }
    p = malloc((size_t)n);
    if (!p) {
        rv = -ENOMEM;
        goto out;
    }
    w = p; /* i2d may move the pointer it is given past what it wrote */
    if (wolfSSL_i2d_SSL_SESSION(s, &w) != n) {
        rv = HD_ERR_TLS;
        goto out;
    }
    n = (int)strip_chain(p, (size_t)n);
    if ((size_t)n > cap) {
        rv = HD_ERR_TOO_LARGE;
        goto out;
    }
    born = wolfSSL_SESSION_get_time(s);
    life = wolfSSL_SESSION_get_timeout(s);
    if (life <= 0 || life > (long)HD_TLS_TICKET_MAX_S)
        life = HD_TLS_TICKET_MAX_S;
    memcpy(buf, p, (size_t)n);
    *len = (size_t)n;
    *expires_ms = ((uint64_t)born + (uint64_t)life) * 1000u;
out:
    if (p) {
        explicit_bzero(p, (size_t)n); /* a resumption secret */
        free(p);
    }
    wolfSSL_SESSION_free(s);
    return rv;
}

int hd_tls_session_import(struct hd_tls *t, const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    WOLFSSL_SESSION *s;
    int rv;

    if (len == 0 || len > HD_TLS_SESSION_MAX)
        return HD_ERR_INVALID;
    s = wolfSSL_d2i_SSL_SESSION(NULL, &p, (long)len);
    if (!s)
        return HD_ERR_INVALID;
    /* The session is copied into the connection; it fails on an expired one. */
    rv = wolfSSL_set_session(t->ssl, s) == WOLFSSL_SUCCESS ? 0 : HD_ERR_INVALID;
    wolfSSL_SESSION_free(s);
    return rv;
}

int hd_tls_resumed(struct hd_tls *t)
{
    return wolfSSL_session_reused(t->ssl) == 1;
}

void hd_tls_feed(struct hd_tls *t, const uint8_t *data, size_t n)
{
    t->in = data;
    t->in_len = n;
    t->in_off = 0;
}

size_t hd_tls_pending_input(const struct hd_tls *t)
{
    return t->in_len - t->in_off;
}

static int is_verify_error(int e)
{
    switch (e) {
    case DOMAIN_NAME_MISMATCH:
    case IPADDR_MISMATCH:
    case VERIFY_CERT_ERROR:
    case NO_PEER_CERT:
    case OCSP_CERT_REVOKED:
    case CRL_CERT_REVOKED:
    case ASN_BEFORE_DATE_E:
    case ASN_AFTER_DATE_E:
    case ASN_SIG_CONFIRM_E:
    case ASN_NO_SIGNER_E:
    case ASN_NAME_INVALID_E:
    case ASN_PATHLEN_SIZE_E:
    case ASN_PATHLEN_INV_E:
    case ASN_SELF_SIGNED_E:
        return 1;
    default:
        return 0;
    }
}

int hd_tls_handshake(struct hd_tls *t)
{
    int rv = wolfSSL_connect(t->ssl), e;
    char msg[80];

    if (rv == WOLFSSL_SUCCESS) {
        /* The key-exchange group is logged so that tests can see which one was negotiated
         * (tests/integration/tls_groups.sh). */
        HD_LOG(HD_LOG_DEBUG, "tls", "msg=\"handshake done\" version=%s group=%s resumed=%d",
               wolfSSL_get_version(t->ssl),
               wolfSSL_get_curve_name(t->ssl) ? wolfSSL_get_curve_name(t->ssl) : "none",
               wolfSSL_session_reused(t->ssl) == 1);
        /* Debian's wolfSSL is built with post-handshake authentication, so a TLS 1.3
         * client keeps its handshake state (transcript hashes, key-exchange arrays, ...)
         * for the life of the connection, for a CertificateRequest that never comes: Herald
         * offers no client certificate (and does not send post_handshake_auth). Freed here;
         * what resumption needs (the session's secret, the tickets) is in the session. */
        wolfSSL_FreeHandshakeResources(t->ssl);
        /* TLS 1.2 sessions (id or ticket) are complete now; TLS 1.3 waits for on_ticket. */
        if (wolfSSL_version(t->ssl) != TLS1_3_VERSION)
            t->new_session = 1;
        return 0;
    }
    e = wolfSSL_get_error(t->ssl, rv);
    if (e == WOLFSSL_ERROR_WANT_READ)
        return 1;
    wolfSSL_ERR_error_string_n((unsigned long)e, msg, sizeof(msg));
    HD_LOG(HD_LOG_DEBUG, "tls", "msg=\"handshake failed\" err=%d reason=\"%s\"", e, msg);
    if (is_verify_error(e) || wolfSSL_get_verify_result(t->ssl) != 0)
        return HD_ERR_TLS_VERIFY;
    return HD_ERR_TLS;
}

int hd_tls_alpn_h2(struct hd_tls *t)
{
    char *name = NULL;
    unsigned short len = 0;

    if (wolfSSL_ALPN_GetProtocol(t->ssl, &name, &len) != WOLFSSL_SUCCESS)
        return 0;
    return len == 2 && memcmp(name, "h2", 2) == 0;
}

ssize_t hd_tls_read(struct hd_tls *t, uint8_t *buf, size_t cap)
{
    int rv = wolfSSL_read(t->ssl, buf, (int)(cap > 65536 ? 65536 : cap)), e;

    if (rv > 0)
        return rv;
    e = wolfSSL_get_error(t->ssl, rv);
    if (e == WOLFSSL_ERROR_WANT_READ)
        return 0;
    if (e == WOLFSSL_ERROR_ZERO_RETURN)
        return HD_ERR_RESET;
    HD_LOG(HD_LOG_DEBUG, "tls", "msg=\"read failed\" err=%d", e);
    return HD_ERR_TLS;
}

int hd_tls_write(struct hd_tls *t, const uint8_t *data, size_t n)
{
    int rv;

    if (n == 0)
        return 0;
    rv = wolfSSL_write(t->ssl, data, (int)n);
    if (rv == (int)n)
        return 0;
    HD_LOG(HD_LOG_DEBUG, "tls", "msg=\"write failed\" err=%d", wolfSSL_get_error(t->ssl, rv));
    return HD_ERR_TLS;
}

/* wolfSSL is built with FP_ECC (Debian): each thread that did ECDHE keeps a cache of
 * fixed-point tables that only wc_ecc_fp_free() on that same thread releases. */
void hd_tls_thread_cleanup(void)
{
#ifdef FP_ECC
    wc_ecc_fp_free();
#endif
}

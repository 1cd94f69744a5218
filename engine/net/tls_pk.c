/* Public-key verification for TLS handshakes (see tls_pk.h). Only non-deprecated OpenSSL 3
 * APIs (EVP_PKEY). */
#include <openssl/evp.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "tls_pk.h"

/* Distinct keys kept parsed: the CA and intermediate keys of the servers being delivered to
 * (a handful in practice) plus recent leaf keys. Parsing is cheap (parse_ec) but not free,
 * and a cached key skips the point check. 32 x (a DER copy + an EVP_PKEY, about 1.5 KB)
 * per loop thread. */
#define HD_TLS_PK_KEYS 32
/* Longest SubjectPublicKeyInfo handled or remembered: a P-521 key is 158 bytes. */
#define HD_TLS_PK_DER_MAX 256
/* Signatures remembered as valid (see tls_pk.h): 64 x about 0.5 KB per loop thread. */
#define HD_TLS_PK_SIGS 64
#define HD_TLS_PK_DIGEST_MAX 64 /* SHA-512 */
#define HD_TLS_PK_SIG_MAX 160   /* a DER ECDSA signature on P-521 is at most 139 bytes */

struct pk_key {
    EVP_PKEY *pkey; /* NULL: free slot */
    uint64_t used;  /* last use (LRU) */
    size_t len;
    uint8_t der[HD_TLS_PK_DER_MAX];
};

struct pk_sig {
    uint64_t used; /* last use (LRU); 0: free slot */
    uint16_t klen, dlen, slen;
    uint8_t key[HD_TLS_PK_DER_MAX];
    uint8_t digest[HD_TLS_PK_DIGEST_MAX];
    uint8_t sig[HD_TLS_PK_SIG_MAX];
};

struct hd_tls_pk {
    EVP_PKEY *p256, *p521; /* curve parameters (no key) */
    uint64_t tick;
    struct pk_key keys[HD_TLS_PK_KEYS];
    struct pk_sig sigs[HD_TLS_PK_SIGS];
};

/* The two SubjectPublicKeyInfo layouts handed to OpenSSL, up to the uncompressed point:
 * id-ecPublicKey with the named curve P-256 (prime256v1) or P-521 (secp521r1). Any other
 * encoding (compressed point, explicit parameters, another curve) stays with wolfCrypt. */
static const uint8_t spki_p256[] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
};
static const uint8_t spki_p521[] = {
    0x30, 0x81, 0x9b, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
    0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23, 0x03, 0x81, 0x86, 0x00,
};
#define HD_TLS_PK_P256_POINT 65  /* 0x04 || x || y */
#define HD_TLS_PK_P521_POINT 133

/* A parameters-only key for a named curve (the template keys are built from). */
static EVP_PKEY *curve_params(const char *group)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *params = NULL;

    if (c && EVP_PKEY_paramgen_init(c) == 1 && EVP_PKEY_CTX_set_group_name(c, group) == 1 &&
        EVP_PKEY_paramgen(c, &params) != 1)
        params = NULL;
    EVP_PKEY_CTX_free(c);
    return params;
}

/* Builds the EC public key in spki when it is a P-256 or P-521 key in one of the layouts
 * above, else NULL. The curve's parameters are copied from a template and the point set
 * from its encoding (OpenSSL checks that it is on the curve): about 10 us, against 120-220 us
 * for d2i_PUBKEY, whose generic decoder rebuilds the group each time. */
static EVP_PKEY *parse_ec(struct hd_tls_pk *pk, const uint8_t *spki, size_t len)
{
    const EVP_PKEY *params = NULL;
    size_t off = 0;
    EVP_PKEY *key;

    if (len == sizeof(spki_p256) + HD_TLS_PK_P256_POINT &&
        memcmp(spki, spki_p256, sizeof(spki_p256)) == 0) {
        params = pk->p256;
        off = sizeof(spki_p256);
    } else if (len == sizeof(spki_p521) + HD_TLS_PK_P521_POINT &&
               memcmp(spki, spki_p521, sizeof(spki_p521)) == 0) {
        params = pk->p521;
        off = sizeof(spki_p521);
    }
    if (!params || spki[off] != 0x04)
        return NULL;
    key = EVP_PKEY_new();
    if (!key)
        return NULL;
    if (EVP_PKEY_copy_parameters(key, params) != 1 ||
        EVP_PKEY_set1_encoded_public_key(key, spki + off, len - off) != 1) {
        EVP_PKEY_free(key);
        return NULL;
    }
    return key;
}

int hd_tls_pk_new(struct hd_tls_pk **out)
{
    struct hd_tls_pk *pk = calloc(1, sizeof(*pk));

    if (!pk)
        return -ENOMEM;
    /* Without them every key goes to wolfCrypt, as without this module: not an error. */
    pk->p256 = curve_params("P-256");
    pk->p521 = curve_params("P-521");
    *out = pk;
    return 0;
}

void hd_tls_pk_free(struct hd_tls_pk *pk)
{
    if (!pk)
        return;
    for (size_t i = 0; i < HD_TLS_PK_KEYS; i++)
        EVP_PKEY_free(pk->keys[i].pkey);
    EVP_PKEY_free(pk->p256);
    EVP_PKEY_free(pk->p521);
    free(pk);
}

/* Returns the parsed key for spki (cached, or parsed and cached now), NULL when it is not
 * one we handle (OpenSSL does not tell a parse failure for lack of memory apart: it is
 * treated the same way, and wolfCrypt gets its chance). */
static EVP_PKEY *key_for(struct hd_tls_pk *pk, const uint8_t *spki, size_t len)
{
    struct pk_key *slot = &pk->keys[0];
    EVP_PKEY *key;

    pk->tick++;
    for (size_t i = 0; i < HD_TLS_PK_KEYS; i++) {
        struct pk_key *k = &pk->keys[i];
        if (k->pkey && k->len == len && memcmp(k->der, spki, len) == 0) {
            k->used = pk->tick;
            return k->pkey;
        }
        /* The victim: a free slot, else the least recently used. */
        if (slot->pkey && (!k->pkey || k->used < slot->used))
            slot = k;
    }
    key = parse_ec(pk, spki, len);
    if (!key)
        return NULL;
    EVP_PKEY_free(slot->pkey);
    slot->pkey = key;
    slot->used = pk->tick;
    slot->len = len;
    memcpy(slot->der, spki, len);
    return key;
}

int hd_tls_pk_ecdsa_verify(struct hd_tls_pk *pk, const uint8_t *spki, size_t spki_len,
                           const uint8_t *digest, size_t digest_len, const uint8_t *sig,
                           size_t sig_len)
{
    EVP_PKEY *key = key_for(pk, spki, spki_len);
    EVP_PKEY_CTX *pctx;
    int rc;

    if (!key)
        return HD_ERR_INVALID;
    pctx = EVP_PKEY_CTX_new(key, NULL);
    if (!pctx)
        return -ENOMEM;
    /* No digest is set on the context: ECDSA verifies the given digest as is (truncated to
     * the order's length, as wolfCrypt does). EVP_PKEY_verify returns 1 only for a valid
     * signature; 0 or a negative value (malformed DER, error) count as invalid: fail closed. */
    rc = EVP_PKEY_verify_init(pctx) == 1 &&
         EVP_PKEY_verify(pctx, sig, sig_len, digest, digest_len) == 1;
    EVP_PKEY_CTX_free(pctx);
    return rc;
}

static int fits(size_t klen, size_t dlen, size_t slen)
{
    return klen <= HD_TLS_PK_DER_MAX && dlen <= HD_TLS_PK_DIGEST_MAX && slen <= HD_TLS_PK_SIG_MAX;
}

/* Returns the entry holding exactly these bytes, else NULL and *victim receives the slot to
 * record them in (a free one, else the least recently used). */
static struct pk_sig *sig_find(struct hd_tls_pk *pk, const uint8_t *spki, size_t klen,
                               const uint8_t *digest, size_t dlen, const uint8_t *sig,
                               size_t slen, struct pk_sig **victim)
{
    struct pk_sig *slot = &pk->sigs[0];

    for (size_t i = 0; i < HD_TLS_PK_SIGS; i++) {
        struct pk_sig *e = &pk->sigs[i];
        if (e->used && e->klen == klen && e->dlen == dlen && e->slen == slen &&
            memcmp(e->sig, sig, slen) == 0 && memcmp(e->digest, digest, dlen) == 0 &&
            memcmp(e->key, spki, klen) == 0)
            return e;
        if (slot->used && (!e->used || e->used < slot->used))
            slot = e;
    }
    *victim = slot;
    return NULL;
}

int hd_tls_pk_known(struct hd_tls_pk *pk, const uint8_t *spki, size_t spki_len,
                    const uint8_t *digest, size_t digest_len, const uint8_t *sig, size_t sig_len)
{
    struct pk_sig *e, *victim;

    if (!fits(spki_len, digest_len, sig_len))
        return 0;
    e = sig_find(pk, spki, spki_len, digest, digest_len, sig, sig_len, &victim);
    if (!e)
        return 0;
    e->used = ++pk->tick;
    return 1;
}

void hd_tls_pk_remember(struct hd_tls_pk *pk, const uint8_t *spki, size_t spki_len,
                        const uint8_t *digest, size_t digest_len, const uint8_t *sig,
                        size_t sig_len)
{
    struct pk_sig *e, *victim = NULL;

    if (!fits(spki_len, digest_len, sig_len))
        return;
    e = sig_find(pk, spki, spki_len, digest, digest_len, sig, sig_len, &victim);
    if (e) {
        e->used = ++pk->tick;
        return;
    }
    victim->used = ++pk->tick;
    victim->klen = (uint16_t)spki_len;
    victim->dlen = (uint16_t)digest_len;
    victim->slen = (uint16_t)sig_len;
    memcpy(victim->key, spki, spki_len);
    memcpy(victim->digest, digest, digest_len);
    memcpy(victim->sig, sig, sig_len);
}

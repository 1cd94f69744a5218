/* ECDSA verification for TLS handshakes with OpenSSL 3 libcrypto (see tls_ossl.h). Only
 * non-deprecated OpenSSL 3 APIs (EVP_PKEY). */
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "tls_ossl.h"

/* Distinct keys kept parsed: the CA and intermediate keys of the servers being delivered to
 * (a handful in practice) plus recent leaf keys. 32 x (a DER copy + an EVP_PKEY, about
 * 1.5 KB) per loop thread. */
#define HD_TLS_OSSL_KEYS 32
/* Longest SubjectPublicKeyInfo kept: a P-521 key is 158 bytes. */
#define HD_TLS_OSSL_DER_MAX 256
/* Signatures remembered as valid: the certificate signatures of the chains seen (a CA or
 * intermediate signature is the same on every connection to every host under it; a leaf's
 * on every full handshake with its host). CertificateVerify signatures cover the transcript
 * and never repeat: they are always computed. 64 x about 0.5 KB per loop thread. */
#define HD_TLS_OSSL_SIGS 64
#define HD_TLS_OSSL_DIGEST_MAX 64 /* SHA-512 */
#define HD_TLS_OSSL_SIG_MAX 160   /* a DER ECDSA signature on P-521 is at most 139 bytes */

struct ossl_key {
    EVP_PKEY *pkey; /* NULL: free slot */
    uint64_t used;  /* last use (LRU) */
    size_t len;
    uint8_t der[HD_TLS_OSSL_DER_MAX];
};

/* A verification known to be valid: the exact key, digest and signature bytes (ECDSA
 * verification is a function of these three alone, so the same inputs give the same answer;
 * comparing every byte keeps that exact, with no hash in between). */
struct ossl_sig {
    uint64_t used; /* 0: free slot */
    uint16_t klen, dlen, slen;
    uint8_t key[HD_TLS_OSSL_DER_MAX];
    uint8_t digest[HD_TLS_OSSL_DIGEST_MAX];
    uint8_t sig[HD_TLS_OSSL_SIG_MAX];
};

struct hd_tls_ossl {
    uint64_t tick;
    struct ossl_key keys[HD_TLS_OSSL_KEYS];
    struct ossl_sig sigs[HD_TLS_OSSL_SIGS];
};

int hd_tls_ossl_new(struct hd_tls_ossl **out)
{
    struct hd_tls_ossl *v = calloc(1, sizeof(*v));

    if (!v)
        return -ENOMEM;
    *out = v;
    return 0;
}

void hd_tls_ossl_free(struct hd_tls_ossl *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < HD_TLS_OSSL_KEYS; i++)
        EVP_PKEY_free(v->keys[i].pkey);
    free(v);
}

/* Parses spki as an EC public key on a curve we hand to OpenSSL, else NULL. Named curves
 * only: a key with explicit curve parameters stays with wolfCrypt, as before. */
static EVP_PKEY *parse_ec(const uint8_t *spki, size_t len)
{
    const unsigned char *p = spki;
    EVP_PKEY *pk;
    char group[32];
    size_t glen = 0;

    if (len > HD_TLS_OSSL_DER_MAX)
        return NULL;
    pk = d2i_PUBKEY(NULL, &p, (long)len);
    if (!pk)
        return NULL;
    if (p != spki + len || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC ||
        EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen) != 1 ||
        (strcmp(group, "prime256v1") != 0 && strcmp(group, "secp384r1") != 0 &&
         strcmp(group, "secp521r1") != 0)) {
        EVP_PKEY_free(pk);
        return NULL;
    }
    return pk;
}

/* Returns the parsed key for spki (cached, or parsed and cached now), NULL when it is not
 * one we handle (OpenSSL does not tell a parse failure for lack of memory apart: it is
 * treated the same way, and wolfCrypt gets its chance). */
static EVP_PKEY *key_for(struct hd_tls_ossl *v, const uint8_t *spki, size_t len)
{
    struct ossl_key *slot = &v->keys[0];
    EVP_PKEY *pk;

    v->tick++;
    for (size_t i = 0; i < HD_TLS_OSSL_KEYS; i++) {
        struct ossl_key *k = &v->keys[i];
        if (k->pkey && k->len == len && memcmp(k->der, spki, len) == 0) {
            k->used = v->tick;
            return k->pkey;
        }
        /* The victim: a free slot, else the least recently used. */
        if (slot->pkey && (!k->pkey || k->used < slot->used))
            slot = k;
    }
    pk = parse_ec(spki, len);
    if (!pk)
        return NULL;
    EVP_PKEY_free(slot->pkey);
    slot->pkey = pk;
    slot->used = v->tick;
    slot->len = len;
    memcpy(slot->der, spki, len);
    return pk;
}

/* Returns the remembered valid verification of exactly these bytes, else NULL and *victim
 * receives the slot to record it in (a free one, else the least recently used). */
static struct ossl_sig *sig_find(struct hd_tls_ossl *v, const uint8_t *spki, size_t klen,
                                 const uint8_t *digest, size_t dlen, const uint8_t *sig,
                                 size_t slen, struct ossl_sig **victim)
{
    struct ossl_sig *slot = &v->sigs[0];

    for (size_t i = 0; i < HD_TLS_OSSL_SIGS; i++) {
        struct ossl_sig *e = &v->sigs[i];
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

int hd_tls_ossl_ecdsa_verify(struct hd_tls_ossl *v, const uint8_t *spki, size_t spki_len,
                             const uint8_t *digest, size_t digest_len, const uint8_t *sig,
                             size_t sig_len)
{
    int remember = spki_len <= HD_TLS_OSSL_DER_MAX && digest_len <= HD_TLS_OSSL_DIGEST_MAX &&
                   sig_len <= HD_TLS_OSSL_SIG_MAX;
    struct ossl_sig *known = NULL, *victim = NULL;
    EVP_PKEY *pk;
    EVP_PKEY_CTX *pctx;
    int rc;

    if (remember) {
        known = sig_find(v, spki, spki_len, digest, digest_len, sig, sig_len, &victim);
        if (known) {
            known->used = ++v->tick;
            return 1;
        }
    }
    pk = key_for(v, spki, spki_len);
    if (!pk)
        return HD_ERR_INVALID;
    pctx = EVP_PKEY_CTX_new(pk, NULL);
    if (!pctx)
        return -ENOMEM;
    /* No digest is set on the context: ECDSA verifies the given digest as is (truncated to
     * the order's length, as wolfCrypt does). EVP_PKEY_verify returns 1 only for a valid
     * signature; 0 or a negative value (malformed DER, error) count as invalid: fail closed. */
    rc = EVP_PKEY_verify_init(pctx) == 1 &&
         EVP_PKEY_verify(pctx, sig, sig_len, digest, digest_len) == 1;
    EVP_PKEY_CTX_free(pctx);
    if (rc == 1 && remember) {
        /* Only valid signatures are remembered: an invalid one is computed (and refused)
         * again each time. */
        victim->used = ++v->tick;
        victim->klen = (uint16_t)spki_len;
        victim->dlen = (uint16_t)digest_len;
        victim->slen = (uint16_t)sig_len;
        memcpy(victim->key, spki, spki_len);
        memcpy(victim->digest, digest, digest_len);
        memcpy(victim->sig, sig, sig_len);
    }
    return rc;
}

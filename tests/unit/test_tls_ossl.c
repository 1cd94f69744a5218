/* engine/tls_ossl.c: ECDSA verification for TLS handshakes with OpenSSL, its key cache and
 * its memory of valid signatures. Keys and signatures are made here with OpenSSL (P-256,
 * P-384), plus an Ed25519 key and a secp256k1 key, which must be refused as "not handled"
 * (the caller then uses wolfCrypt). */
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"
#include "t.h"
#include "tls_ossl.h"

struct keypair {
    EVP_PKEY *pk;
    unsigned char spki[512];
    size_t spki_len;
};

static void make_key(struct keypair *k, const char *type, const char *group)
{
    unsigned char *p = k->spki;
    int n;

    if (group)
        k->pk = EVP_PKEY_Q_keygen(NULL, NULL, type, group);
    else
        k->pk = EVP_PKEY_Q_keygen(NULL, NULL, type);
    T_OK(k->pk != NULL);
    n = i2d_PUBKEY(k->pk, NULL);
    T_OK(n > 0 && (size_t)n <= sizeof(k->spki));
    T_EQ_INT(i2d_PUBKEY(k->pk, &p), n);
    k->spki_len = (size_t)n;
}

static size_t sign_digest(struct keypair *k, const unsigned char *dg, size_t dlen,
                          unsigned char *sig, size_t cap)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k->pk, NULL);
    size_t n = cap;

    T_OK(c != NULL);
    T_EQ_INT(EVP_PKEY_sign_init(c), 1);
    T_EQ_INT(EVP_PKEY_sign(c, sig, &n, dg, dlen), 1);
    EVP_PKEY_CTX_free(c);
    return n;
}

int main(void)
{
    struct hd_tls_ossl *v = NULL;
    struct keypair p256, p384, other, ed, k1;
    unsigned char dg[48], sig[160], sig2[160], bad[160];
    size_t slen, slen2;

    T_EQ_INT(hd_tls_ossl_new(&v), 0);
    make_key(&p256, "EC", "P-256");
    make_key(&p384, "EC", "P-384");
    make_key(&other, "EC", "P-256");
    make_key(&ed, "ED25519", NULL);
    make_key(&k1, "EC", "secp256k1");
    for (size_t i = 0; i < sizeof(dg); i++)
        dg[i] = (unsigned char)(i * 7 + 1);

    /* P-256 over a SHA-256-sized digest: valid, then again (now remembered), then every kind of
     * mismatch refused, remembered or not. */
    slen = sign_digest(&p256, dg, 32, sig, sizeof(sig));
    for (int round = 0; round < 3; round++)
        T_EQ_INT(hd_tls_ossl_ecdsa_verify(v, p256.spki, p256.spki_len, dg, 32, sig, slen), 1);
    memcpy(bad, sig, slen);
    bad[slen - 1] ^= 1; /* the last byte of s: still DER, wrong value */
    T_EQ_INT(hd_tls_ossl_ecdsa_verify(v, p256.spki, p256.spki_len, dg, 32, bad, slen), 0);
    T_EQ_INT(hd_tls_ossl_ecdsa_verify(v, p256.spki, p256.spki_len, dg, 32, bad, slen), 0);
    dg[0] ^= 1;
    T_EQ_INT(hd_tls_ossl_ecdsa_verify(v, p256.spki, p256.spki_len, dg, 32, sig, slen), 0);
    dg[0] ^= 1;
    T_EQ_INT(hd_tls_ossl_ecdsa_verify(v, other.spki, other.spki_len, dg, 32, sig, slen), 0);
    T_EQ_INT(hd_tls_ossl_ecdsa_verify(v, p256.spki, p256.spki_len, dg, 31, sig, slen), 0);
    T_EQ_INT(hd_tls_ossl_ecdsa_verify(v, p256.spki, p256.spki_len, dg, 32, sig, slen - 1), 0);
    memset(bad, 0xff, 8); /* not DER at all */
    T_EQ_INT(hd_tls_ossl_ecdsa_verify(v, p256.spki, p256.spki_len, dg, 32, bad, 8), 0);
    T_EQ_INT(hd_tls_ossl_ecdsa_verify(v, p256.spki, p256.spki_len, dg, 32, sig, slen), 1);

    /* P-384 with a SHA-384 digest. */
    slen2 = sign_digest(&p384, dg, 48, sig2, sizeof(sig2));
    T_EQ_INT(hd_tls_ossl_ecdsa_verify(v, p384.spki, p384.spki_len, dg, 48, sig2, slen2), 1);
    T_EQ_INT(hd_tls_ossl_ecdsa_verify(v, p384.spki, p384.spki_len, dg, 48, sig, slen), 0);

    /* More distinct valid signatures than remembered and more keys than cached: evictions
     * keep the answers right. */
    for (int i = 0; i < 100; i++) {
        struct keypair k;
        unsigned char s[160];
        size_t n;

        make_key(&k, "EC", "P-256");
        dg[1] = (unsigned char)i;
        n = sign_digest(&k, dg, 32, s, sizeof(s));
        T_EQ_INT(hd_tls_ossl_ecdsa_verify(v, k.spki, k.spki_len, dg, 32, s, n), 1);
        s[n - 1] ^= 0x80;
        T_EQ_INT(hd_tls_ossl_ecdsa_verify(v, k.spki, k.spki_len, dg, 32, s, n), 0);
        EVP_PKEY_free(k.pk);
    }
    dg[1] = (unsigned char)(1 * 7 + 1);
    T_EQ_INT(hd_tls_ossl_ecdsa_verify(v, p256.spki, p256.spki_len, dg, 32, sig, slen), 1);

    /* Keys this module leaves to wolfCrypt: not EC, or a curve other than P-256/384/521, or not
     * a key at all (a truncated SubjectPublicKeyInfo, trailing bytes). */
    T_EQ_INT(hd_tls_ossl_ecdsa_verify(v, ed.spki, ed.spki_len, dg, 32, sig, slen), HD_ERR_INVALID);
    T_EQ_INT(hd_tls_ossl_ecdsa_verify(v, k1.spki, k1.spki_len, dg, 32, sig, slen), HD_ERR_INVALID);
    T_EQ_INT(hd_tls_ossl_ecdsa_verify(v, p256.spki, p256.spki_len - 1, dg, 32, sig, slen),
             HD_ERR_INVALID);
    {
        unsigned char longer[600];

        memcpy(longer, p256.spki, p256.spki_len);
        longer[p256.spki_len] = 0;
        T_EQ_INT(hd_tls_ossl_ecdsa_verify(v, longer, p256.spki_len + 1, dg, 32, sig, slen),
                 HD_ERR_INVALID);
    }

    EVP_PKEY_free(p256.pk);
    EVP_PKEY_free(p384.pk);
    EVP_PKEY_free(other.pk);
    EVP_PKEY_free(ed.pk);
    EVP_PKEY_free(k1.pk);
    hd_tls_ossl_free(v);
    hd_tls_ossl_free(NULL);
    T_DONE();
}

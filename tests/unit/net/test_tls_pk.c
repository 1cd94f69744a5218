/* engine/net/tls_pk.c: ECDSA verification for TLS handshakes with OpenSSL and its key cache, and
 * the memory of valid signatures. Keys and signatures are made here with OpenSSL (P-256,
 * P-521), plus P-384, Ed25519 and secp256k1 keys, which must be refused as "not handled"
 * (the caller then uses wolfCrypt). */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"
#include "t.h"
#include "tls_pk.h"

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
    struct hd_tls_pk *v = NULL;
    struct keypair p256, p384, p521, other, ed, k1;
    unsigned char dg[48], sig[160], sig2[160], bad[160];
    size_t slen, slen2;

    T_EQ_INT(hd_tls_pk_new(&v), 0);
    make_key(&p256, "EC", "P-256");
    make_key(&p384, "EC", "P-384");
    make_key(&p521, "EC", "P-521");
    make_key(&other, "EC", "P-256");
    make_key(&ed, "ED25519", NULL);
    make_key(&k1, "EC", "secp256k1");
    for (size_t i = 0; i < sizeof(dg); i++)
        dg[i] = (unsigned char)(i * 7 + 1);

    /* P-256 over a SHA-256-sized digest: valid (three times: the key is cached after the
     * first), then every kind of mismatch refused. */
    slen = sign_digest(&p256, dg, 32, sig, sizeof(sig));
    for (int round = 0; round < 3; round++)
        T_EQ_INT(hd_tls_pk_ecdsa_verify(v, p256.spki, p256.spki_len, dg, 32, sig, slen), 1);
    memcpy(bad, sig, slen);
    bad[slen - 1] ^= 1; /* the last byte of s: still DER, wrong value */
    T_EQ_INT(hd_tls_pk_ecdsa_verify(v, p256.spki, p256.spki_len, dg, 32, bad, slen), 0);
    T_EQ_INT(hd_tls_pk_ecdsa_verify(v, p256.spki, p256.spki_len, dg, 32, bad, slen), 0);
    dg[0] ^= 1;
    T_EQ_INT(hd_tls_pk_ecdsa_verify(v, p256.spki, p256.spki_len, dg, 32, sig, slen), 0);
    dg[0] ^= 1;
    T_EQ_INT(hd_tls_pk_ecdsa_verify(v, other.spki, other.spki_len, dg, 32, sig, slen), 0);
    T_EQ_INT(hd_tls_pk_ecdsa_verify(v, p256.spki, p256.spki_len, dg, 31, sig, slen), 0);
    T_EQ_INT(hd_tls_pk_ecdsa_verify(v, p256.spki, p256.spki_len, dg, 32, sig, slen - 1), 0);
    memset(bad, 0xff, 8); /* not DER at all */
    T_EQ_INT(hd_tls_pk_ecdsa_verify(v, p256.spki, p256.spki_len, dg, 32, bad, 8), 0);
    T_EQ_INT(hd_tls_pk_ecdsa_verify(v, p256.spki, p256.spki_len, dg, 32, sig, slen), 1);

    /* P-521 with a SHA-512 digest. */
    {
        unsigned char dg64[64], s521[160];
        size_t n521;

        memset(dg64, 0x5a, sizeof(dg64));
        n521 = sign_digest(&p521, dg64, 64, s521, sizeof(s521));
        T_EQ_INT(hd_tls_pk_ecdsa_verify(v, p521.spki, p521.spki_len, dg64, 64, s521, n521), 1);
        s521[n521 - 1] ^= 4;
        T_EQ_INT(hd_tls_pk_ecdsa_verify(v, p521.spki, p521.spki_len, dg64, 64, s521, n521), 0);
    }

    /* More keys than cached: evictions keep the answers right. */
    for (int i = 0; i < 100; i++) {
        struct keypair k;
        unsigned char s[160];
        size_t n;

        make_key(&k, "EC", "P-256");
        dg[1] = (unsigned char)i;
        n = sign_digest(&k, dg, 32, s, sizeof(s));
        T_EQ_INT(hd_tls_pk_ecdsa_verify(v, k.spki, k.spki_len, dg, 32, s, n), 1);
        s[n - 1] ^= 0x80;
        T_EQ_INT(hd_tls_pk_ecdsa_verify(v, k.spki, k.spki_len, dg, 32, s, n), 0);
        EVP_PKEY_free(k.pk);
    }
    dg[1] = (unsigned char)(1 * 7 + 1);
    T_EQ_INT(hd_tls_pk_ecdsa_verify(v, p256.spki, p256.spki_len, dg, 32, sig, slen), 1);

    /* Keys this module leaves to wolfCrypt: P-384 (faster there), not EC, another curve, or
     * not a key at all (a truncated SubjectPublicKeyInfo, trailing bytes). */
    slen2 = sign_digest(&p384, dg, 48, sig2, sizeof(sig2));
    T_EQ_INT(hd_tls_pk_ecdsa_verify(v, p384.spki, p384.spki_len, dg, 48, sig2, slen2),
             HD_ERR_INVALID);
    T_EQ_INT(hd_tls_pk_ecdsa_verify(v, ed.spki, ed.spki_len, dg, 32, sig, slen), HD_ERR_INVALID);
    T_EQ_INT(hd_tls_pk_ecdsa_verify(v, k1.spki, k1.spki_len, dg, 32, sig, slen), HD_ERR_INVALID);
    T_EQ_INT(hd_tls_pk_ecdsa_verify(v, p256.spki, p256.spki_len - 1, dg, 32, sig, slen),
             HD_ERR_INVALID);
    {
        /* A point not on the curve (y changed), and a compressed point. */
        unsigned char off[512], cmp[512], *q = cmp;
        int n;

        memcpy(off, p256.spki, p256.spki_len);
        off[p256.spki_len - 1] ^= 1;
        T_EQ_INT(hd_tls_pk_ecdsa_verify(v, off, p256.spki_len, dg, 32, sig, slen),
                 HD_ERR_INVALID);
        T_EQ_INT(EVP_PKEY_set_utf8_string_param(p256.pk, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                                "compressed"),
                 1);
        n = i2d_PUBKEY(p256.pk, &q);
        T_OK(n > 0 && (size_t)n < p256.spki_len);
        T_EQ_INT(hd_tls_pk_ecdsa_verify(v, cmp, (size_t)n, dg, 32, sig, slen), HD_ERR_INVALID);
    }
    {
        unsigned char longer[600];

        memcpy(longer, p256.spki, p256.spki_len);
        longer[p256.spki_len] = 0;
        T_EQ_INT(hd_tls_pk_ecdsa_verify(v, longer, p256.spki_len + 1, dg, 32, sig, slen),
                 HD_ERR_INVALID);
    }

    /* The memory of valid signatures: only the exact bytes remembered are known; a changed
     * byte of the key, the digest or the signature, or another length, is not. */
    T_EQ_INT(hd_tls_pk_known(v, p256.spki, p256.spki_len, dg, 32, sig, slen), 0);
    hd_tls_pk_remember(v, p256.spki, p256.spki_len, dg, 32, sig, slen);
    T_EQ_INT(hd_tls_pk_known(v, p256.spki, p256.spki_len, dg, 32, sig, slen), 1);
    hd_tls_pk_remember(v, p256.spki, p256.spki_len, dg, 32, sig, slen); /* no duplicate */
    T_EQ_INT(hd_tls_pk_known(v, p256.spki, p256.spki_len, dg, 32, sig, slen), 1);
    for (size_t i = 0; i < slen; i++) {
        memcpy(bad, sig, slen);
        bad[i] ^= 0x10;
        T_EQ_INT(hd_tls_pk_known(v, p256.spki, p256.spki_len, dg, 32, bad, slen), 0);
    }
    for (size_t i = 0; i < 32; i++) {
        dg[i] ^= 1;
        T_EQ_INT(hd_tls_pk_known(v, p256.spki, p256.spki_len, dg, 32, sig, slen), 0);
        dg[i] ^= 1;
    }
    {
        unsigned char key2[512];

        for (size_t i = 0; i < p256.spki_len; i++) {
            memcpy(key2, p256.spki, p256.spki_len);
            key2[i] ^= 0x40;
            T_EQ_INT(hd_tls_pk_known(v, key2, p256.spki_len, dg, 32, sig, slen), 0);
        }
    }
    T_EQ_INT(hd_tls_pk_known(v, other.spki, other.spki_len, dg, 32, sig, slen), 0);
    T_EQ_INT(hd_tls_pk_known(v, p256.spki, p256.spki_len, dg, 31, sig, slen), 0);
    T_EQ_INT(hd_tls_pk_known(v, p256.spki, p256.spki_len, dg, 32, sig, slen - 1), 0);
    /* Oversized inputs are never remembered. */
    {
        unsigned char big[600];

        memset(big, 7, sizeof(big));
        hd_tls_pk_remember(v, big, sizeof(big), dg, 32, sig, slen);
        T_EQ_INT(hd_tls_pk_known(v, big, sizeof(big), dg, 32, sig, slen), 0);
        hd_tls_pk_remember(v, p256.spki, p256.spki_len, big, 65, sig, slen);
        T_EQ_INT(hd_tls_pk_known(v, p256.spki, p256.spki_len, big, 65, sig, slen), 0);
        hd_tls_pk_remember(v, p256.spki, p256.spki_len, dg, 32, big, 161);
        T_EQ_INT(hd_tls_pk_known(v, p256.spki, p256.spki_len, dg, 32, big, 161), 0);
    }
    /* Bounded: after 200 other entries (each used once), the first is gone, the latest kept. */
    for (int i = 0; i < 200; i++) {
        dg[2] = (unsigned char)i;
        dg[3] = (unsigned char)(i >> 8);
        hd_tls_pk_remember(v, other.spki, other.spki_len, dg, 32, sig, slen);
    }
    T_EQ_INT(hd_tls_pk_known(v, other.spki, other.spki_len, dg, 32, sig, slen), 1);
    dg[2] = 0;
    dg[3] = 0;
    T_EQ_INT(hd_tls_pk_known(v, other.spki, other.spki_len, dg, 32, sig, slen), 0);

    EVP_PKEY_free(p256.pk);
    EVP_PKEY_free(p384.pk);
    EVP_PKEY_free(p521.pk);
    EVP_PKEY_free(other.pk);
    EVP_PKEY_free(ed.pk);
    EVP_PKEY_free(k1.pk);
    hd_tls_pk_free(v);
    hd_tls_pk_free(NULL);
    T_DONE();
}

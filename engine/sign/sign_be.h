/* Internal interface between sign.c and its crypto backends (sign_wolf.c, sign_ossl.c).
 *
 * Why an interface: on this machine OpenSSL 3 signs RSA-2048 about 7x faster than Debian's
 * wolfSSL 5.5.4 (built without its SP assembly), yet wolfSSL stays the TLS library. Each
 * backend is the only file that includes its library's headers: wolfSSL's OpenSSL-compat
 * headers (OPENSSL_EXTRA) #define many OpenSSL names and would clash with the real
 * OpenSSL headers in one translation unit. The exported symbols do not overlap (wolfSSL
 * prefixes its compat functions with wolfSSL_), so both link into one binary.
 *
 * Keys cross this interface in a neutral form parsed once by sign.c: RSA as a PKCS#1
 * RSAPrivateKey DER, Ed25519 as its 32-byte seed. Backends never see PEM.
 */
#ifndef HD_SIGN_BE_H
#define HD_SIGN_BE_H

#include <stddef.h>
#include <stdint.h>

/* Signature algorithms (the hash is part of the algorithm, the message is passed whole). */
enum hd_sign_alg {
    HD_SIGN_ALG_RSA_V15_SHA256 = 1, /* RSASSA-PKCS1-v1_5 with SHA-256 (cavage rsa-sha256) */
    HD_SIGN_ALG_RSA_PSS_SHA512 = 2, /* RSASSA-PSS, SHA-512, MGF1-SHA-512, 64-byte salt */
    HD_SIGN_ALG_ED25519 = 3,        /* pure Ed25519 (RFC 8032) */
};

/* Largest signature we produce: RSA-8192 (1024 bytes). */
#define HD_SIGN_SIG_MAX 1024

struct hd_sign_be {
    const char *name;
    /* Creates the per-signer state (wolfSSL: a WC_RNG). Returns 0, -ENOMEM, HD_ERR_CRYPTO. */
    int (*ctx_new)(void **ctx);
    void (*ctx_free)(void *ctx); /* NULL ok */
    /* Loads a key: type HD_KEY_RSA with der = PKCS#1 RSAPrivateKey, or HD_KEY_ED25519 with
     * der = 32-byte seed. The backend keeps its own copy; the caller wipes der.
     * Returns 0, HD_ERR_INVALID, -ENOMEM, HD_ERR_CRYPTO. */
    int (*key_load)(void *ctx, int type, const uint8_t *der, size_t len, void **key);
    void (*key_free)(void *key); /* NULL ok; wipes the private key */
    /* Signs msg with key using alg (which must suit the key type). *sig_len in: capacity,
     * out: length. Returns 0, HD_ERR_INVALID (alg/key mismatch), HD_ERR_FULL, HD_ERR_CRYPTO. */
    int (*sign)(void *ctx, void *key, int alg, const uint8_t *msg, size_t len, uint8_t *sig,
                size_t *sig_len);
    /* Verifies sig over msg with the public half of key (tests: a signature made by one
     * backend must verify with the other). Returns 0, HD_ERR_CRYPTO (bad signature),
     * HD_ERR_INVALID (alg/key mismatch). */
    int (*verify)(void *ctx, void *key, int alg, const uint8_t *msg, size_t len, const uint8_t *sig,
                  size_t sig_len);
    /* Derives the Ed25519 public key from its seed (for hd_key_inspect). Returns 0 or
     * HD_ERR_CRYPTO. */
    int (*ed25519_pub)(const uint8_t seed[32], uint8_t pub[32]);
};

/* The backends, const tables (allowed globals). hd_sign_be_ossl is NULL-free and always
 * built; a backend whose library lacks an algorithm returns HD_ERR_INVALID from sign. */
extern const struct hd_sign_be hd_sign_be_wolf;
extern const struct hd_sign_be hd_sign_be_ossl;

/* SHA-256 / SHA-512 of data (body digests). Implemented with OpenSSL libcrypto (always
 * linked; faster than Debian's wolfCrypt here, see sign_ossl.c). Returns 0 or HD_ERR_CRYPTO. */
int hd_sign_sha256(const uint8_t *data, size_t len, uint8_t out[32]);
int hd_sign_sha512(const uint8_t *data, size_t len, uint8_t out[64]);

/* A private key parsed from PEM by sign_key.c, in the neutral form backends load. */
struct hd_sign_parsed {
    int type;      /* HD_KEY_RSA or HD_KEY_ED25519 */
    unsigned bits; /* RSA modulus size; 256 for Ed25519 */
    uint8_t *buf;  /* decoded DER (owned; wiped and freed by hd_sign_parsed_fini) */
    size_t buf_len;
    const uint8_t *key; /* RSA: PKCS#1 RSAPrivateKey DER; Ed25519: 32-byte seed (in buf) */
    size_t key_len;
    const uint8_t *n, *e; /* RSA public modulus and exponent, DER INTEGER contents (in buf) */
    size_t n_len, e_len;
};

/* Parses the first supported PEM private key block in pem: "RSA PRIVATE KEY" (PKCS#1) or
 * "PRIVATE KEY" (PKCS#8 with rsaEncryption, RSASSA-PSS or Ed25519). Encrypted keys are
 * refused. Returns 0, HD_ERR_INVALID, -ENOMEM. */
/* Signs or verifies with a key parsed from pem on the backend named be_name, with a fresh
 * backend context: cross-backend tests, not the hot path. alg_name as in
 * hd_signer_measure. hd_sign_be_sign: *sig_len in = capacity, out = length.
 * Return 0 or a negative HD_ERR_* / errno. */
int hd_sign_be_sign(const char *be_name, const char *alg_name, const char *pem, size_t pem_len,
                    const uint8_t *msg, size_t len, uint8_t *sig, size_t *sig_len);
int hd_sign_be_verify(const char *be_name, const char *alg_name, const char *pem, size_t pem_len,
                      const uint8_t *msg, size_t len, const uint8_t *sig, size_t sig_len);

int hd_sign_parse_pem(const char *pem, size_t len, struct hd_sign_parsed *out);
void hd_sign_parsed_fini(struct hd_sign_parsed *p);

#endif

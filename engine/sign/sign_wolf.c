/* wolfSSL (wolfCrypt) signing backend. The only signing file that includes wolfSSL. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ed25519.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/signature.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "sign.h"
#include "sign_be.h"

/* Per-signer state: the RNG RSA blinding and PSS salts draw from. One per signer (thread),
 * because WC_RNG is not thread-safe and a shared one would need a lock on the hot path. */
struct wolf_ctx {
    WC_RNG rng;
};

struct wolf_key {
    int type;
    union {
        RsaKey rsa;
        ed25519_key ed;
    } u;
};

static int wolf_ctx_new(void **out)
{
    struct wolf_ctx *c = calloc(1, sizeof(*c));

    if (!c)
        return -ENOMEM;
    if (wc_InitRng(&c->rng) != 0) {
        free(c);
        return HD_ERR_CRYPTO;
    }
    *out = c;
    return 0;
}

static void wolf_ctx_free(void *ctx)
{
    struct wolf_ctx *c = ctx;

    if (!c)
        return;
    wc_FreeRng(&c->rng);
    explicit_bzero(c, sizeof(*c));
    free(c);
}

static void wolf_key_free(void *key)
{
    struct wolf_key *k = key;

    if (!k)
        return;
    if (k->type == HD_KEY_RSA)
        wc_FreeRsaKey(&k->u.rsa); /* zeroes d, p, q, dP, dQ, u */
    else
        wc_ed25519_free(&k->u.ed);
    /* The structs hold key words inline (sp_int digits); wipe all of it regardless. */
    explicit_bzero(k, sizeof(*k));
    free(k);
}

static int wolf_key_load(void *ctx, int type, const uint8_t *der, size_t len, void **out)
{
    struct wolf_ctx *c = ctx;
    struct wolf_key *k;
    uint8_t pub[ED25519_PUB_KEY_SIZE];
    word32 idx = 0;

    if (len > UINT32_MAX)
        return HD_ERR_INVALID;
    k = calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    k->type = type;
    if (type == HD_KEY_RSA) {
        if (wc_InitRsaKey(&k->u.rsa, NULL) != 0) {
            free(k);
            return HD_ERR_CRYPTO;
        }
        if (wc_RsaPrivateKeyDecode(der, &idx, &k->u.rsa, (word32)len) != 0)
            goto invalid;
        /* With WC_RSA_BLINDING the private operation needs an RNG attached to the key. */
        if (wc_RsaSetRNG(&k->u.rsa, &c->rng) != 0)
            goto invalid;
    } else if (type == HD_KEY_ED25519) {
        if (len != ED25519_KEY_SIZE || wc_ed25519_init(&k->u.ed) != 0) {
            free(k);
            return HD_ERR_INVALID;
        }
        /* Import the seed, derive the public half, then import both: wolfSSL's sign needs
         * the public key present. */
        if (wc_ed25519_import_private_only(der, ED25519_KEY_SIZE, &k->u.ed) != 0 ||
            wc_ed25519_make_public(&k->u.ed, pub, sizeof(pub)) != 0 ||
            wc_ed25519_import_private_key(der, ED25519_KEY_SIZE, pub, sizeof(pub), &k->u.ed) != 0)
            goto invalid;
    } else {
        free(k);
        return HD_ERR_INVALID;
    }
    *out = k;
    return 0;
invalid:
    wolf_key_free(k);
    return HD_ERR_INVALID;
}

static int wolf_sign(void *ctx, void *key, int alg, const uint8_t *msg, size_t len, uint8_t *sig,
                     size_t *sig_len)
{
    struct wolf_ctx *c = ctx;
    struct wolf_key *k = key;
    word32 cap = *sig_len > HD_SIGN_SIG_MAX ? HD_SIGN_SIG_MAX : (word32)*sig_len;
    uint8_t hash[WC_SHA512_DIGEST_SIZE];
    int rc;

    if (len > UINT32_MAX)
        return HD_ERR_INVALID;
    switch (alg) {
    case HD_SIGN_ALG_RSA_V15_SHA256: {
        word32 n = cap;

        if (k->type != HD_KEY_RSA)
            return HD_ERR_INVALID;
        if ((word32)wc_RsaEncryptSize(&k->u.rsa) > cap)
            return HD_ERR_FULL;
        /* Hashes, wraps the digest in a DigestInfo (RSA_W_ENC) and signs: PKCS#1 v1.5. */
        rc = wc_SignatureGenerate(WC_HASH_TYPE_SHA256, WC_SIGNATURE_TYPE_RSA_W_ENC, msg,
                                  (word32)len, sig, &n, &k->u.rsa, sizeof(k->u.rsa), &c->rng);
        if (rc != 0)
            return HD_ERR_CRYPTO;
        *sig_len = n;
        return 0;
    }
    case HD_SIGN_ALG_RSA_PSS_SHA512:
        if (k->type != HD_KEY_RSA)
            return HD_ERR_INVALID;
        if (wc_Sha512Hash(msg, (word32)len, hash) != 0)
            return HD_ERR_CRYPTO;
        /* RFC 9421 section 3.3.1: MGF1 with SHA-512 and a 64-byte salt. */
        rc = wc_RsaPSS_Sign_ex(hash, WC_SHA512_DIGEST_SIZE, sig, cap, WC_HASH_TYPE_SHA512,
                               WC_MGF1SHA512, WC_SHA512_DIGEST_SIZE, &k->u.rsa, &c->rng);
        if (rc == RSA_BUFFER_E)
            return HD_ERR_FULL;
        if (rc <= 0)
            return HD_ERR_CRYPTO;
        *sig_len = (size_t)rc;
        return 0;
    case HD_SIGN_ALG_ED25519: {
        word32 n = cap;

        if (k->type != HD_KEY_ED25519)
            return HD_ERR_INVALID;
        if (cap < ED25519_SIG_SIZE)
            return HD_ERR_FULL;
        if (wc_ed25519_sign_msg(msg, (word32)len, sig, &n, &k->u.ed) != 0)
            return HD_ERR_CRYPTO;
        *sig_len = n;
        return 0;
    }
    default:
        return HD_ERR_INVALID;
    }
}

static int wolf_verify(void *ctx, void *key, int alg, const uint8_t *msg, size_t len,
                       const uint8_t *sig, size_t sig_len)
{
    struct wolf_key *k = key;
    uint8_t hash[WC_SHA512_DIGEST_SIZE], buf[HD_SIGN_SIG_MAX];
    int res = 0;

    if (len > UINT32_MAX || sig_len > sizeof(buf))
        return HD_ERR_INVALID;
    switch (alg) {
    case HD_SIGN_ALG_RSA_V15_SHA256:
        if (k->type != HD_KEY_RSA)
            return HD_ERR_INVALID;
        return wc_SignatureVerify(WC_HASH_TYPE_SHA256, WC_SIGNATURE_TYPE_RSA_W_ENC, msg,
                                  (word32)len, sig, (word32)sig_len, &k->u.rsa,
                                  sizeof(k->u.rsa)) == 0
                   ? 0
                   : HD_ERR_CRYPTO;
    case HD_SIGN_ALG_RSA_PSS_SHA512:
        if (k->type != HD_KEY_RSA)
            return HD_ERR_INVALID;
        if (wc_Sha512Hash(msg, (word32)len, hash) != 0)
            return HD_ERR_CRYPTO;
        /* VerifyCheck takes a mutable input; the salt length defaults to the hash size. */
        memcpy(buf, sig, sig_len);
        return wc_RsaPSS_VerifyCheck(buf, (word32)sig_len, buf, sizeof(buf), hash,
                                     WC_SHA512_DIGEST_SIZE, WC_HASH_TYPE_SHA512, WC_MGF1SHA512,
                                     &k->u.rsa) > 0
                   ? 0
                   : HD_ERR_CRYPTO;
    case HD_SIGN_ALG_ED25519:
        if (k->type != HD_KEY_ED25519)
            return HD_ERR_INVALID;
        if (wc_ed25519_verify_msg(sig, (word32)sig_len, msg, (word32)len, &res, &k->u.ed) != 0)
            return HD_ERR_CRYPTO;
        return res == 1 ? 0 : HD_ERR_CRYPTO;
    default:
        return HD_ERR_INVALID;
    }
}

static int wolf_ed25519_pub(const uint8_t seed[32], uint8_t pub[32])
{
    ed25519_key k;
    int rc = HD_ERR_CRYPTO;

    if (wc_ed25519_init(&k) != 0)
        return HD_ERR_CRYPTO;
    if (wc_ed25519_import_private_only(seed, ED25519_KEY_SIZE, &k) == 0 &&
        wc_ed25519_make_public(&k, pub, ED25519_PUB_KEY_SIZE) == 0)
        rc = 0;
    wc_ed25519_free(&k);
    explicit_bzero(&k, sizeof(k));
    return rc;
}

const struct hd_sign_be hd_sign_be_wolf = {
    .name = "wolfssl",
    .ctx_new = wolf_ctx_new,
    .ctx_free = wolf_ctx_free,
    .key_load = wolf_key_load,
    .key_free = wolf_key_free,
    .sign = wolf_sign,
    .verify = wolf_verify,
    .ed25519_pub = wolf_ed25519_pub,
};

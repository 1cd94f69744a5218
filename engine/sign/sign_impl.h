/* The signer's private interface, between sign.c (key cache, backends) and sign_http.c
 * (signature formats). */
#ifndef HD_SIGN_IMPL_H
#define HD_SIGN_IMPL_H

#include <stddef.h>
#include <stdint.h>

struct hd_signer;
struct hd_sign_key;

/* Looks key_id up and marks it most recently used. NULL when it is not cached. */
struct hd_sign_key *hd_signer_key_use(struct hd_signer *s, const char *key_id);
/* HD_KEY_RSA or HD_KEY_ED25519. */
int hd_sign_key_type(const struct hd_sign_key *k);
/* Signs msg with k on the backend that loaded it (sign_be.h's sign: *sig_len in: capacity,
 * out: length). Returns 0, HD_ERR_INVALID, HD_ERR_FULL, HD_ERR_CRYPTO. */
int hd_sign_key_sign(struct hd_signer *s, const struct hd_sign_key *k, int alg, const uint8_t *msg,
                     size_t len, uint8_t *sig, size_t *sig_len);
/* The signer's scratch buffer for signing strings (HD_SIGN_BASE_MAX bytes); it holds the
 * last one made (hd_signer_last_base). */
char *hd_signer_scratch(struct hd_signer *s);
/* enum hd_sign_alg of "rsa-v1_5-sha256", "rsa-pss-sha512", "ed25519"; -1 for another name. */
int hd_sign_alg_from_name(const char *name);
/* The algorithm a key type signs with when none is named. */
int hd_sign_default_alg(int key_type);

#endif

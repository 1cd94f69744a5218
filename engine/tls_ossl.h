/* Public-key verification for TLS handshakes with OpenSSL 3 libcrypto (internal to tls.c).
 *
 * Why: Debian's wolfSSL 5.5.4 is built without its SP code, so each ECDSA P-256 verification
 * of a handshake (the server's chain, and its CertificateVerify) costs 0.2 ms when wolfSSL's
 * fixed-point cache already holds the key and 0.8-1.0 ms when it does not; OpenSSL's
 * assembly P-256 verifies in about 0.075 ms. wolfSSL stays the TLS library: it hands each
 * ECDSA verification to a public-key callback (HAVE_PK_CALLBACKS) that calls this module,
 * and everything else (chain building, names, dates, key usage, the transcript) is
 * unchanged. Like sign_ossl.c, this is the only TLS file that includes OpenSSL headers:
 * wolfSSL's OpenSSL-compat headers clash with the real ones in one translation unit.
 */
#ifndef HD_TLS_OSSL_H
#define HD_TLS_OSSL_H

#include <stddef.h>
#include <stdint.h>

/* Per-thread verifier: a small cache of parsed public keys (parsing a key costs OpenSSL
 * about as much as a verification, and the CA and intermediate keys repeat across
 * connections). Not thread-safe: one per TLS context, which is one per loop thread. */
struct hd_tls_ossl;

/* Returns 0, -ENOMEM or HD_ERR_CRYPTO. */
int hd_tls_ossl_new(struct hd_tls_ossl **out);
void hd_tls_ossl_free(struct hd_tls_ossl *v); /* NULL ok */

/* Verifies the DER ECDSA signature sig over digest with the key spki (a DER
 * SubjectPublicKeyInfo). Only keys on P-256, P-384 and P-521 (named curves) are handled.
 * Returns 1 when the signature is valid, 0 when it is not (malformed signatures included),
 * HD_ERR_INVALID when the key is not one this module handles (the caller then verifies with
 * wolfCrypt), -ENOMEM. */
int hd_tls_ossl_ecdsa_verify(struct hd_tls_ossl *v, const uint8_t *spki, size_t spki_len,
                             const uint8_t *digest, size_t digest_len, const uint8_t *sig,
                             size_t sig_len);

#endif

/* Public-key verification for TLS handshakes (internal to tls.c): ECDSA with OpenSSL 3
 * libcrypto where it is faster than Debian's wolfSSL, and a memory of valid signatures.
 *
 * Why: Debian's wolfSSL 5.5.4 is built without its SP code, so an ECDSA P-256 verification
 * (the server's chain, and its CertificateVerify) costs 0.13-0.3 ms when wolfSSL's
 * fixed-point cache already holds the key and about 0.8 ms when it does not (every new leaf
 * key); OpenSSL's assembly P-256 verifies in about 0.08 ms. wolfSSL stays the TLS library:
 * it hands each ECDSA verification to a public-key callback (HAVE_PK_CALLBACKS) in tls.c,
 * which uses this module, and everything else (chain building, names, dates, key usage, the
 * transcript) is unchanged. Like sign_ossl.c, this is the only TLS file that includes OpenSSL
 * headers: wolfSSL's OpenSSL-compat headers clash with the real ones in one translation unit.
 */
#ifndef HD_TLS_PK_H
#define HD_TLS_PK_H

#include <stddef.h>
#include <stdint.h>

/* Per-thread state: a small cache of keys parsed for OpenSSL (CA and intermediate keys
 * repeat across connections) and the memory of valid signatures. Not thread-safe: one per
 * TLS context, which is one per loop thread. */
struct hd_tls_pk;

/* Returns 0 or -ENOMEM. */
int hd_tls_pk_new(struct hd_tls_pk **out);
void hd_tls_pk_free(struct hd_tls_pk *pk); /* NULL ok */

/* Verifies the DER ECDSA signature sig over digest with the key spki (a DER
 * SubjectPublicKeyInfo) with OpenSSL. Only keys on the named curves P-256 and P-521, with
 * an uncompressed point, are handled: OpenSSL 3.0 has no optimised P-384 (1.2 ms per
 * verification here, where wolfSSL takes 0.6 ms with a cached key and 1.3 ms without), and
 * other curves and encodings stay with wolfCrypt.
 * Returns 1 when the signature is valid, 0 when it is not (malformed signatures included),
 * HD_ERR_INVALID when the key is not one this module handles (the caller then verifies with
 * wolfCrypt), -ENOMEM. */
int hd_tls_pk_ecdsa_verify(struct hd_tls_pk *pk, const uint8_t *spki, size_t spki_len,
                           const uint8_t *digest, size_t digest_len, const uint8_t *sig,
                           size_t sig_len);

/* The memory of valid signatures: certificate signatures repeat on every full handshake (a
 * CA's or an intermediate's on every connection to every host under it, a leaf's on every
 * connection to its host); CertificateVerify signatures cover the transcript and never do.
 * A verification is a function of the key, the digest and the signature alone, so the exact
 * same bytes give the same answer: entries are compared byte for byte, with no hash in
 * between. Only signatures found valid are remembered (hd_tls_pk_remember after a
 * successful verification, by whichever library); oversized inputs are not.
 * hd_tls_pk_known returns 1 when exactly these bytes were remembered as valid, else 0. */
int hd_tls_pk_known(struct hd_tls_pk *pk, const uint8_t *spki, size_t spki_len,
                    const uint8_t *digest, size_t digest_len, const uint8_t *sig, size_t sig_len);
void hd_tls_pk_remember(struct hd_tls_pk *pk, const uint8_t *spki, size_t spki_len,
                        const uint8_t *digest, size_t digest_len, const uint8_t *sig,
                        size_t sig_len);

#endif

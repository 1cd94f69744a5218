/* Base64 (RFC 4648 section 4, standard alphabet, with padding), used for Digest,
 * Content-Digest and signature values, and to decode PEM bodies.
 *
 * Why our own: wolfSSL's Base64_Encode inserts line breaks (PEM style) unless the
 * _NoNl variant is used, and OpenSSL's EVP_EncodeBlock is not available to modules that
 * must not include OpenSSL; 60 lines here keep both backends out of the string code.
 */
#ifndef HD_B64_H
#define HD_B64_H

#include <stddef.h>
#include <stdint.h>

/* Encoded length of n bytes, without the terminating NUL. */
#define HD_B64_LEN(n) ((((n) + 2) / 3) * 4)

/* Writes the base64 encoding of in[0..len) and a NUL into out. Returns the length written
 * (without the NUL), or HD_ERR_FULL when cap < HD_B64_LEN(len) + 1 (out untouched). */
int hd_b64_encode(const uint8_t *in, size_t len, char *out, size_t cap);

/* Decodes base64 text, skipping ASCII whitespace (PEM line breaks). Padding is optional at
 * the end; any other character, or data after padding, is an error. Writes *out_len.
 * Returns 0, HD_ERR_INVALID (bad input) or HD_ERR_FULL (out too small). On error the
 * partially written out is wiped, since the caller may be decoding key material. */
int hd_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);

#endif

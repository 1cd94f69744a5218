/* HTTP request signing: Digest (RFC 3230), draft-cavage-http-signatures-12, and (later)
 * RFC 9421 / RFC 9530, over pluggable crypto backends.
 *
 * A struct hd_signer belongs to one thread (it owns an RNG and a parsed-key cache); each
 * loop thread has its own. Keys are parsed once per signer and cached by key id.
 */
#ifndef HD_SIGN_H
#define HD_SIGN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct hd_signer;

enum hd_key_type { HD_KEY_RSA = 1, HD_KEY_ED25519 = 2 };

struct hd_sign_header {
    const char *name;  /* any case; matched case-insensitively */
    const char *value;
};

/* Inputs of one signature. */
struct hd_sign_req {
    const char *method;      /* "POST" */
    const char *target;      /* request target: path and query, e.g. "/inbox?x=1" */
    const struct hd_sign_header *headers; /* header values the components may name */
    size_t nheaders;
    const char *components;  /* space-separated, e.g. "(request-target) host date digest content-type" */
    const char *key_id;
};

/* Creates a signer. Returns 0, -ENOMEM or HD_ERR_CRYPTO (RNG init failed). */
int hd_signer_new(struct hd_signer **out);
void hd_signer_free(struct hd_signer *s); /* NULL ok; wipes cached private keys */

/* Parses a PEM private key (RSA PKCS#1 "RSA PRIVATE KEY" or PKCS#8 "PRIVATE KEY"; Ed25519
 * PKCS#8 once supported) and caches it under key_id (replacing any previous one).
 * min_rsa_bits: refuse smaller RSA keys (2048 for stored keys, 0 for `herald sign`).
 * Returns 0, HD_ERR_INVALID (not a supported PEM key, or too small), -ENOMEM. */
int hd_signer_add_key(struct hd_signer *s, const char *key_id, const char *pem, size_t pem_len,
                      unsigned min_rsa_bits);
/* Nonzero if key_id is cached. */
int hd_signer_has_key(const struct hd_signer *s, const char *key_id);

/* Validates a PEM private key without caching it: writes its type and size in bits, and the
 * public key as SPKI PEM ("PUBLIC KEY") into pub (NUL-terminated) when pub is not NULL.
 * Returns 0, HD_ERR_INVALID, or HD_ERR_FULL (pub too small). Never copies key material
 * anywhere but pub. */
int hd_key_inspect(const char *pem, size_t pem_len, int *type, unsigned *bits, char *pub,
                   size_t pub_cap);

/* Writes "SHA-256=<base64>" of body (RFC 3230 Digest value) into out. cap >= 53.
 * Returns the length written, or HD_ERR_FULL. */
int hd_digest_sha256(const uint8_t *body, size_t len, char *out, size_t cap);

/* Writes an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into out (cap >= 30). */
void hd_http_date(time_t t, char *out, size_t cap);

/* Builds the draft-cavage-12 signing string from req and signs it with req->key_id's cached key,
 * writing the whole Signature header value
 *   keyId="...",algorithm="rsa-sha256",headers="...",signature="..."
 * into out (NUL-terminated). Returns the length, HD_ERR_NOT_FOUND (no such key),
 * HD_ERR_INVALID (a component names a header absent from req), HD_ERR_FULL, HD_ERR_CRYPTO. */
int hd_sign_cavage(struct hd_signer *s, const struct hd_sign_req *req, char *out, size_t cap);

#endif

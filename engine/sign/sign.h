/* HTTP request signing: Digest (RFC 3230), draft-cavage-http-signatures-12, RFC 9421
 * (rsa-v1_5-sha256, rsa-pss-sha512, ed25519) and Content-Digest (RFC 9530), over two crypto
 * backends: OpenSSL 3 libcrypto and wolfCrypt (sign_be.h). A signer measures both with the
 * first key of each type and signs with the faster (OpenSSL for RSA, wolfSSL for Ed25519 on
 * this machine), unless created with a backend named; the measurement is made once per
 * process and key type, and the signers created later reuse it.
 *
 * A struct hd_signer belongs to one thread (it owns an RNG and a parsed-key cache); each
 * loop thread has its own. Keys are parsed once per signer and cached by key id; the
 * process's first key of a type costs the measurement (~30-40 ms for RSA,
 * ~10 ms for Ed25519), later ones ~0.5 ms.
 * Nothing here logs or copies key material; private keys are wiped when freed.
 */
#ifndef HD_SIGN_H
#define HD_SIGN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct hd_signer;

#include "keytype.h" /* enum hd_key_type */

struct hd_sign_header {
    const char *name; /* any case; matched case-insensitively */
    const char *value;
};

/* Inputs of one signature. */
struct hd_sign_req {
    const char *method;                   /* "POST" */
    const char *target;                   /* request target: path and query, e.g. "/inbox?x=1" */
    const struct hd_sign_header *headers; /* header values the components may name */
    size_t nheaders;
    const char
        *components; /* space-separated, e.g. "(request-target) host date digest content-type" */
    const char *key_id;
};

/* Creates a signer. Returns 0, -ENOMEM or HD_ERR_CRYPTO (RNG init failed). */
int hd_signer_new(struct hd_signer **out);
void hd_signer_free(struct hd_signer *s); /* NULL ok; wipes cached private keys */

/* Parses a PEM private key (RSA PKCS#1 "RSA PRIVATE KEY" or PKCS#8 "PRIVATE KEY"; Ed25519
 * PKCS#8) and caches it under key_id (replacing any previous one).
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

/* Checks that pem is a key Herald can sign with: RSA of at least 2048 bits (PKCS#1 or
 * PKCS#8) or Ed25519 (PKCS#8). Writes its type and bits. Returns 0 or HD_ERR_INVALID with
 * *why set to a static reason. */
int hd_key_check(const char *pem, size_t pem_len, int *type, unsigned *bits, const char **why);

/* Writes "SHA-256=<base64>" of body (RFC 3230 Digest value) into out. cap >= 53.
 * Returns the length written, or HD_ERR_FULL. */
int hd_digest_sha256(const uint8_t *body, size_t len, char *out, size_t cap);

/* Writes an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into out (cap >= 30). */
void hd_http_date(time_t t, char *out, size_t cap);

/* Builds the draft-cavage-12 signing string from req and signs it with req->key_id's cached key,
 * writing the whole Signature header value
 *   keyId="...",algorithm="rsa-sha256",headers="...",signature="..."
 * into out (NUL-terminated). Returns the length, HD_ERR_NOT_FOUND (no such key),
 * HD_ERR_INVALID (a component names a header absent from req), HD_ERR_FULL, HD_ERR_CRYPTO.
 * On error the contents of out are unspecified (it is built in place: no copy on the hot
 * path). The same holds for hd_sign_cavage_ex and for hd_sign_rfc9421's input and sig. */
int hd_sign_cavage(struct hd_signer *s, const struct hd_sign_req *req, char *out, size_t cap);

/* ---- Additions (sign module owner) ---- */

/* Maximum signature base / signing string we build (bytes). Larger inputs: HD_ERR_FULL. */
#define HD_SIGN_BASE_MAX 8192
/* Default cap on cached keys per signer; the least recently used key is evicted beyond it
 * (the caller re-adds on hd_signer_has_key() == 0). */
#define HD_SIGNER_MAX_KEYS_DEFAULT 10000

/* Like hd_signer_new, but with a crypto backend named: "wolfssl", "openssl", or NULL /
 * "auto" to measure the available ones when the first key of each type is added (at most
 * at most ~20 ms per backend and key type, 100 ms in all) and use the fastest.
 * Returns 0, -ENOMEM, HD_ERR_CRYPTO, HD_ERR_INVALID (unknown backend name). */
int hd_signer_new_ex(struct hd_signer **out, const char *backend);

/* Caps the number of cached keys (n >= 1). */
void hd_signer_set_max_keys(struct hd_signer *s, size_t n);

/* The backend chosen for keys of key_type (HD_KEY_RSA / HD_KEY_ED25519), or NULL while no
 * key of that type has been added. Static string. */
const char *hd_signer_backend_name(const struct hd_signer *s, int key_type);
/* Signatures per second measured for the chosen backend of key_type with the first key of
 * that type (0 if not measured). */
double hd_signer_rate(const struct hd_signer *s, int key_type);
/* Same for one named backend (0 if it was not measured or failed). */
double hd_signer_backend_rate(const struct hd_signer *s, int key_type, const char *backend);

/* Number of compiled-in backends and their names (i < count), for tools and stats. */
size_t hd_sign_backend_count(void);
const char *hd_sign_backend_at(size_t i);

/* Writes the type and size of the cached key key_id. Returns 0 or HD_ERR_NOT_FOUND. */
int hd_signer_key_info(const struct hd_signer *s, const char *key_id, int *type, unsigned *bits);

/* Measures signing speed: signs a 256-byte message repeatedly for about ms milliseconds with
 * the PEM key on the named backend and algorithm ("rsa-v1_5-sha256", "rsa-pss-sha512",
 * "ed25519"), and writes signatures per second (one thread). For tools/bench.
 * Returns 0, HD_ERR_INVALID (unknown backend/alg, bad key, alg does not suit the key),
 * -ENOMEM, HD_ERR_CRYPTO. */
int hd_signer_measure(const char *backend, const char *alg, const char *pem, size_t pem_len,
                      unsigned ms, double *ops_per_sec);

/* Writes the RFC 9530 Content-Digest value "sha-256=:<base64>:" (cap >= 55).
 * Returns the length, HD_ERR_FULL or HD_ERR_CRYPTO. */
int hd_content_digest_sha256(const uint8_t *body, size_t len, char *out, size_t cap);

/* Both of the above from one hash of body: the Digest value into digest (dcap >= 53) and the
 * Content-Digest value into cdigest (ccap >= 55). Returns 0, HD_ERR_FULL or HD_ERR_CRYPTO. */
int hd_digests_sha256(const uint8_t *body, size_t len, char *digest, size_t dcap,
                      char *cdigest, size_t ccap);

/* Like hd_sign_cavage, with the (created) and (expires) pseudo-headers available: when
 * created (or expires) is >= 0 the value is used for "(created)" ("(expires)") and emitted
 * as a created= (expires=) parameter. draft-cavage-12 forbids (created) with rsa-sha256,
 * so whenever created or expires is given (>= 0), or the key is Ed25519, algorithm="hs2019"
 * is written instead of "rsa-sha256". Returns as hd_sign_cavage. */
int hd_sign_cavage_ex(struct hd_signer *s, const struct hd_sign_req *req, int64_t created,
                      int64_t expires, char *out, size_t cap);

/* Inputs of one RFC 9421 signature over a request. */
struct hd_sign9421_req {
    const char *method;    /* "POST", case kept */
    const char *scheme;    /* "https" */
    const char *authority; /* "example.com" or "example.com:8443"; lower-cased when signed */
    const char *target;    /* path and query: "/inbox?x=1" */
    const struct hd_sign_header *headers;
    size_t nheaders;
    /* Component identifiers, space separated, quoted or not:
     * "@method" "@authority" "@path" "content-digest". Supported derived components:
     * @method @authority @scheme @target-uri @request-target @path @query; any header name.
     * Component parameters (;sf ;key ;bs ;req) are not supported (HD_ERR_INVALID). */
    const char *components;
    const char *key_id;
    const char *label;  /* signature label, NULL = "sig1" */
    const char *alg;    /* "rsa-v1_5-sha256", "rsa-pss-sha512", "ed25519"; emitted as the
                         * alg parameter. NULL: rsa-v1_5-sha256 for RSA keys, ed25519 for
                         * Ed25519 keys, and no alg parameter. */
    int64_t created;    /* < 0: no created parameter */
    int64_t expires;    /* < 0: no expires parameter */
    int omit_alg_param; /* nonzero: sign with alg but do not emit the alg parameter (as
                         * RFC 9421 B.2.1-B.2.3 do: the verifier knows the key's alg) */
};

/* Signs per RFC 9421 with req->key_id's cached key. Writes the Signature-Input value
 * (label=(...);created=..;keyid="..";alg="..";expires=..) into input and the Signature
 * value (label=:<base64>:) into sig, both NUL-terminated. Parameters are emitted in the
 * order created, keyid, alg, expires. Returns the length of sig, HD_ERR_NOT_FOUND,
 * HD_ERR_INVALID (bad component, missing header, alg not suited to the key), HD_ERR_FULL,
 * HD_ERR_CRYPTO. */
int hd_sign_rfc9421(struct hd_signer *s, const struct hd_sign9421_req *req, char *input,
                    size_t input_cap, char *sig, size_t sig_cap);

/* The signing string (cavage) or signature base (RFC 9421) of the last signature made by s,
 * NUL-terminated; valid until the next signature. For `herald sign --show-base` and tests:
 * it holds only header values, never key material. */
const char *hd_signer_last_base(const struct hd_signer *s);

#endif

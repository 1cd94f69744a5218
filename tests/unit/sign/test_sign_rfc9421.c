/* RFC 9421 (HTTP Message Signatures) and RFC 9530 (Content-Digest) on every backend.
 *
 * Published values reproduced byte for byte (both checked beforehand with the openssl CLI
 * over the signature bases below: `openssl pkeyutl -sign -rawin` for Ed25519 and
 * `openssl dgst -sha256 -sign` for RSA; both give the RFC's bytes):
 * - B.2.6, ed25519 with test-key-ed25519 (B.1.4): Signature-Input and Signature.
 * - Section 4.3, the proxy_sig rsa-v1_5-sha256 signature with test-key-rsa (B.1.1), which
 *   also shows the parameter order created, keyid, alg, expires.
 * RSA-PSS (B.2.1-B.2.3) is randomised: for B.2.3 we reproduce the Signature-Input and the
 * signature base byte for byte; tests/integration/sign_cli.sh verifies our PSS signatures
 * with openssl, and the published B.2.3 signature over our base.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "sign.h"
#include "sign_be.h"
#include "t.h"

static char *load(const char *name, size_t *len)
{
    const char *dir = getenv("HD_TEST_DATA");
    char path[1024];
    FILE *f;
    char *buf = malloc(65536);
    size_t n;

    snprintf(path, sizeof(path), "%s/sign/%s", dir ? dir : "tests/data", name);
    f = fopen(path, "rb");
    if (!f)
        T_FAIL("cannot open %s", path);
    n = fread(buf, 1, 65535, f);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The RFC 9421 test request (section 2.x / B.2), with Content-Digest sha-512 as published. */
static const struct hd_sign_header REQ_HDRS[] = {
    {"Host", "example.com"},
    {"Date", "Tue, 20 Apr 2021 02:07:55 GMT"},
    {"Content-Type", "application/json"},
    {"Content-Digest", "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYll"
                       "u7BNNyealdVLvRwEmTHWXvJwew==:"},
    {"Content-Length", "18"},
    {"Forwarded", "for=192.0.2.123;host=example.com;proto=https"},
};

static void test_b26(const char *backend, const char *pem, size_t len)
{
    struct hd_signer *s;
    char in[1024], sig[1024];
    struct hd_sign9421_req r = {
        .method = "POST",
        .scheme = "https",
        .authority = "example.com",
        .target = "/foo?param=Value&Pet=dog",
        .headers = REQ_HDRS,
        .nheaders = 6,
        .components = "\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" "
                      "\"content-length\"",
        .key_id = "test-key-ed25519",
        .label = "sig-b26",
        .created = 1618884473,
        .expires = -1,
    };
    int type;
    unsigned bits;

    T_EQ_INT(hd_signer_new_ex(&s, backend), 0);
    T_EQ_INT(hd_signer_add_key(s, "test-key-ed25519", pem, len, 2048), 0);
    T_EQ_INT(hd_signer_key_info(s, "test-key-ed25519", &type, &bits), 0);
    T_EQ_INT(type, HD_KEY_ED25519);
    T_EQ_STR(hd_signer_backend_name(s, HD_KEY_ED25519), backend);
    T_OK(hd_signer_backend_name(s, HD_KEY_RSA) == NULL);
    T_OK(hd_sign_rfc9421(s, &r, in, sizeof(in), sig, sizeof(sig)) > 0);
    T_EQ_STR(in, "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" "
                 "\"content-length\");created=1618884473;keyid=\"test-key-ed25519\"");
    T_EQ_STR(sig, "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6v"
                  "uQv5lIp5WPpBKRCw==:");
    T_EQ_STR(hd_signer_last_base(s),
             "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\"@method\": POST\n\"@path\": /foo\n"
             "\"@authority\": example.com\n\"content-type\": application/json\n"
             "\"content-length\": 18\n\"@signature-params\": (\"date\" \"@method\" \"@path\" "
             "\"@authority\" \"content-type\" \"content-length\");created=1618884473;"
             "keyid=\"test-key-ed25519\"");
    /* Same with alg named: the alg parameter appears, the base changes accordingly. */
    r.alg = "ed25519";
    T_OK(hd_sign_rfc9421(s, &r, in, sizeof(in), sig, sizeof(sig)) > 0);
    T_OK(strstr(in, ";created=1618884473;keyid=\"test-key-ed25519\";alg=\"ed25519\"") != NULL);
    /* An RSA alg does not suit an Ed25519 key. */
    r.alg = "rsa-pss-sha512";
    T_EQ_INT(hd_sign_rfc9421(s, &r, in, sizeof(in), sig, sizeof(sig)), HD_ERR_INVALID);
    r.alg = "hmac-sha256";
    T_EQ_INT(hd_sign_rfc9421(s, &r, in, sizeof(in), sig, sizeof(sig)), HD_ERR_INVALID);
    /* Ed25519 under cavage: hs2019. */
    {
        struct hd_sign_req c = {.method = "POST",
                                .target = "/foo",
                                .headers = REQ_HDRS,
                                .nheaders = 6,
                                .components = "(request-target) host date",
                                .key_id = "test-key-ed25519"};
        char out[1024];

        T_OK(hd_sign_cavage(s, &c, out, sizeof(out)) > 0);
        T_OK(strncmp(out, "keyId=\"test-key-ed25519\",algorithm=\"hs2019\",headers=", 52) == 0);
    }
    hd_signer_free(s);
}

static void test_proxy_sig(const char *backend, const char *pem, size_t len)
{
    struct hd_signer *s;
    char in[1024], sig[1024];
    struct hd_sign9421_req r = {
        .method = "POST",
        .scheme = "https",
        .authority = "origin.host.internal.example",
        .target = "/foo?param=Value&Pet=dog",
        .headers = REQ_HDRS,
        .nheaders = 6,
        .components = "\"@method\" \"@authority\" \"@path\" \"content-digest\" \"content-type\" "
                      "\"content-length\" \"forwarded\"",
        .key_id = "test-key-rsa",
        .label = "proxy_sig",
        .alg = "rsa-v1_5-sha256",
        .created = 1618884480,
        .expires = 1618884540,
    };

    T_EQ_INT(hd_signer_new_ex(&s, backend), 0);
    T_EQ_INT(hd_signer_add_key(s, "test-key-rsa", pem, len, 2048), 0);
    T_OK(hd_sign_rfc9421(s, &r, in, sizeof(in), sig, sizeof(sig)) > 0);
    T_EQ_STR(in, "proxy_sig=(\"@method\" \"@authority\" \"@path\" \"content-digest\" "
                 "\"content-type\" \"content-length\" \"forwarded\");created=1618884480;"
                 "keyid=\"test-key-rsa\";alg=\"rsa-v1_5-sha256\";expires=1618884540");
    T_EQ_STR(sig, "proxy_sig=:S6ZzPXSdAMOPjN/6KXfXWNO/f7V6cHm7BXYUh3YD/fRad4BCaRZxP+JH+8XY1I6+8Cy+"
                  "CM5g92iHgxtRPz+MjniOaYmdkDcnL9cCpXJleXsOckpURl49GwiyUpZ10KHgOEe11sx3G2gxI8S0jnxQ"
                  "B+Pu68U9vVcasqOWAEObtNKKZd8tSFu7LB5YAv0RAGhB8tmpv7sFnIm9y+7X5kXQfi8NMaZaA8i2ZHwp"
                  "Bdg7a6CMfwnnrtflzvZdXAsD3LH2TwevU+/PBPv0B6NMNk93wUs/vfJvye+YuI87HU38lZHowtznbLVd"
                  "p770I6VHR6WfgS9ddzirrswsE1w5o0LV/g==:");
    /* Default alg for RSA without alg: v1.5 and no alg parameter; same signature bytes
     * would need the same base, so just check the parameter is absent. */
    r.alg = NULL;
    T_OK(hd_sign_rfc9421(s, &r, in, sizeof(in), sig, sizeof(sig)) > 0);
    T_OK(strstr(in, "alg=") == NULL);
    /* Derived components. */
    r.components = "@method @target-uri @scheme @request-target @path @query @authority";
    r.method = "post";
    r.authority = "Origin.Host.Internal.Example:8443";
    T_OK(hd_sign_rfc9421(s, &r, in, sizeof(in), sig, sizeof(sig)) > 0);
    T_OK(strncmp(
             hd_signer_last_base(s),
             "\"@method\": post\n"
             "\"@target-uri\": https://origin.host.internal.example:8443/foo?param=Value&Pet=dog\n"
             "\"@scheme\": https\n\"@request-target\": /foo?param=Value&Pet=dog\n"
             "\"@path\": /foo\n\"@query\": ?param=Value&Pet=dog\n"
             "\"@authority\": origin.host.internal.example:8443\n\"@signature-params\": "
             "(\"@method\" \"@target-uri\" \"@scheme\" \"@request-target\" \"@path\" "
             "\"@query\" \"@authority\");created=1618884480;keyid=\"test-key-rsa\";"
             "expires=1618884540",
             1000) == 0);
    r.target = "";
    r.components = "\"@path\" \"@query\"";
    T_OK(hd_sign_rfc9421(s, &r, in, sizeof(in), sig, sizeof(sig)) > 0);
    T_OK(strncmp(hd_signer_last_base(s), "\"@path\": /\n\"@query\": ?\n", 23) == 0);
    /* Unsupported or bad components and labels. */
    r.target = "/";
    r.components = "\"@status\"";
    T_EQ_INT(hd_sign_rfc9421(s, &r, in, sizeof(in), sig, sizeof(sig)), HD_ERR_INVALID);
    r.components = "\"@query-param\";name=\"Pet\"";
    T_EQ_INT(hd_sign_rfc9421(s, &r, in, sizeof(in), sig, sizeof(sig)), HD_ERR_INVALID);
    r.components = "\"@method\" \"@path\" \"@METHOD\"";
    T_EQ_INT(hd_sign_rfc9421(s, &r, in, sizeof(in), sig, sizeof(sig)), HD_ERR_INVALID);
    r.components = "\"date\" date";
    T_EQ_INT(hd_sign_rfc9421(s, &r, in, sizeof(in), sig, sizeof(sig)), HD_ERR_INVALID);
    r.components = "\"host\" \"@authority\" \"host\"";
    T_EQ_INT(hd_sign_rfc9421(s, &r, in, sizeof(in), sig, sizeof(sig)), HD_ERR_INVALID);
    r.components = "\"@method\"";
    r.method = "PO ST";
    T_EQ_INT(hd_sign_rfc9421(s, &r, in, sizeof(in), sig, sizeof(sig)), HD_ERR_INVALID);
    r.method = "POST";
    r.key_id = "caf\xc3\xa9";
    T_EQ_INT(hd_sign_rfc9421(s, &r, in, sizeof(in), sig, sizeof(sig)), HD_ERR_INVALID);
    r.key_id = "test-key-rsa";
    r.components = "\"x-absent\"";
    T_EQ_INT(hd_sign_rfc9421(s, &r, in, sizeof(in), sig, sizeof(sig)), HD_ERR_INVALID);
    r.components = "\"@method\"";
    r.label = "Bad";
    T_EQ_INT(hd_sign_rfc9421(s, &r, in, sizeof(in), sig, sizeof(sig)), HD_ERR_INVALID);
    r.label = NULL; /* default sig1 */
    T_OK(hd_sign_rfc9421(s, &r, in, sizeof(in), sig, sizeof(sig)) > 0);
    T_OK(strncmp(in, "sig1=(\"@method\");created=", 25) == 0);
    T_OK(strncmp(sig, "sig1=:", 6) == 0);
    T_EQ_INT(hd_sign_rfc9421(s, &r, in, 10, sig, sizeof(sig)), HD_ERR_FULL);
    T_EQ_INT(hd_sign_rfc9421(s, &r, in, sizeof(in), sig, 50), HD_ERR_FULL);
    r.key_id = "nope";
    T_EQ_INT(hd_sign_rfc9421(s, &r, in, sizeof(in), sig, sizeof(sig)), HD_ERR_NOT_FOUND);
    hd_signer_free(s);
}

static void test_b23(const char *backend, const char *pem, size_t len)
{
    struct hd_signer *s;
    char in[1024], sig[1024];
    struct hd_sign9421_req r = {
        .method = "POST",
        .scheme = "https",
        .authority = "example.com",
        .target = "/foo?param=Value&Pet=dog",
        .headers = REQ_HDRS,
        .nheaders = 6,
        .components = "\"date\" \"@method\" \"@path\" \"@query\" \"@authority\" \"content-type\" "
                      "\"content-digest\" \"content-length\"",
        .key_id = "test-key-rsa-pss",
        .label = "sig-b23",
        .alg = "rsa-pss-sha512",
        .omit_alg_param = 1,
        .created = 1618884473,
        .expires = -1,
    };
    int n;

    T_EQ_INT(hd_signer_new_ex(&s, backend), 0);
    /* PKCS#8 with the RSASSA-PSS OID (1.2.840.113549.1.1.10). */
    T_EQ_INT(hd_signer_add_key(s, "test-key-rsa-pss", pem, len, 2048), 0);
    n = hd_sign_rfc9421(s, &r, in, sizeof(in), sig, sizeof(sig));
    T_EQ_INT(n, 7 + 2 + 344 + 1); /* "sig-b23=:" + base64(256 bytes) + ":" */
    T_EQ_STR(in, "sig-b23=(\"date\" \"@method\" \"@path\" \"@query\" \"@authority\" "
                 "\"content-type\" \"content-digest\" \"content-length\");created=1618884473;"
                 "keyid=\"test-key-rsa-pss\"");
    T_EQ_STR(hd_signer_last_base(s),
             "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\"@method\": POST\n\"@path\": /foo\n"
             "\"@query\": ?param=Value&Pet=dog\n\"@authority\": example.com\n"
             "\"content-type\": application/json\n\"content-digest\": sha-512=:WZDPaVn/7XgHaAy8"
             "pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:\n"
             "\"content-length\": 18\n\"@signature-params\": (\"date\" \"@method\" \"@path\" "
             "\"@query\" \"@authority\" \"content-type\" \"content-digest\" \"content-length\");"
             "created=1618884473;keyid=\"test-key-rsa-pss\"");
    hd_signer_free(s);
}

static void test_measure(const char *rsa, size_t rsa_len, const char *ed, size_t ed_len)
{
    double r = 0;
    size_t i;

    T_EQ_INT(hd_sign_backend_count(), 2);
    for (i = 0; i < hd_sign_backend_count(); i++) {
        const char *be = hd_sign_backend_at(i);

        T_EQ_INT(hd_signer_measure(be, "rsa-v1_5-sha256", rsa, rsa_len, 5, &r), 0);
        T_OK(r > 0);
        T_EQ_INT(hd_signer_measure(be, "rsa-pss-sha512", rsa, rsa_len, 5, &r), 0);
        T_OK(r > 0);
        T_EQ_INT(hd_signer_measure(be, "ed25519", ed, ed_len, 5, &r), 0);
        T_OK(r > 0);
        T_EQ_INT(hd_signer_measure(be, "ed25519", rsa, rsa_len, 5, &r), HD_ERR_INVALID);
    }
    T_OK(hd_sign_backend_at(2) == NULL);
    T_EQ_INT(hd_signer_measure("nope", "ed25519", ed, ed_len, 5, &r), HD_ERR_INVALID);
    T_EQ_INT(hd_signer_measure("openssl", "rsa-sha1", rsa, rsa_len, 5, &r), HD_ERR_INVALID);
}

/* Auto selection measures every backend for the first key of each type. */
static void test_auto(const char *rsa, size_t rsa_len, const char *ed, size_t ed_len)
{
    struct hd_signer *s;
    const char *name;

    T_EQ_INT(hd_signer_new(&s), 0);
    T_EQ_INT(hd_signer_add_key(s, "r", rsa, rsa_len, 2048), 0);
    T_EQ_INT(hd_signer_add_key(s, "e", ed, ed_len, 2048), 0);
    name = hd_signer_backend_name(s, HD_KEY_RSA);
    T_OK(name != NULL);
    T_OK(hd_signer_backend_rate(s, HD_KEY_RSA, "wolfssl") > 0);
    T_OK(hd_signer_backend_rate(s, HD_KEY_RSA, "openssl") > 0);
    T_OK(hd_signer_rate(s, HD_KEY_RSA) >= hd_signer_backend_rate(s, HD_KEY_RSA, "wolfssl"));
    T_OK(hd_signer_rate(s, HD_KEY_RSA) >= hd_signer_backend_rate(s, HD_KEY_RSA, "openssl"));
    T_OK(hd_signer_backend_name(s, HD_KEY_ED25519) != NULL);
    printf("auto: rsa %s (openssl %.0f/s, wolfssl %.0f/s), ed25519 %s (openssl %.0f/s, "
           "wolfssl %.0f/s)\n",
           name, hd_signer_backend_rate(s, HD_KEY_RSA, "openssl"),
           hd_signer_backend_rate(s, HD_KEY_RSA, "wolfssl"),
           hd_signer_backend_name(s, HD_KEY_ED25519),
           hd_signer_backend_rate(s, HD_KEY_ED25519, "openssl"),
           hd_signer_backend_rate(s, HD_KEY_ED25519, "wolfssl"));
    hd_signer_free(s);
}

static void test_content_digest(void)
{
    char out[64];

    /* RFC 9530 B.1-style: sha-256 of {"hello": "world"}. */
    T_EQ_INT(
        hd_content_digest_sha256((const uint8_t *)"{\"hello\": \"world\"}", 18, out, sizeof(out)),
        54);
    T_EQ_STR(out, "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:");
    T_EQ_INT(hd_content_digest_sha256((const uint8_t *)"", 0, out, 54), HD_ERR_FULL);
}

/* hd_key_inspect: SPKI PEM identical to `openssl pkey -pubout` (files made with it). */
static void test_inspect(void)
{
    static const char *const pairs[][2] = {
        {"rfc9421-test-key-ed25519.pem", "rfc9421-test-key-ed25519.pub.pem"},
        {"rsa2048-test.pem", "rsa2048-test.pub.pem"},
    };
    char pub[4096];
    size_t i;

    for (i = 0; i < 2; i++) {
        size_t kl, pl;
        char *k = load(pairs[i][0], &kl), *p = load(pairs[i][1], &pl);
        int type = 0;
        unsigned bits = 0;

        T_EQ_INT(hd_key_inspect(k, kl, &type, &bits, pub, sizeof(pub)), 0);
        T_EQ_INT(type, i == 0 ? HD_KEY_ED25519 : HD_KEY_RSA);
        T_EQ_INT(bits, i == 0 ? 256 : 2048);
        T_EQ_STR(pub, p);
        free(k);
        free(p);
    }
}

/* A signature made by one backend verifies with the other, for every algorithm; a
 * corrupted one verifies with neither. */
static void test_cross(const char *rsa, size_t rsa_len, const char *ed, size_t ed_len)
{
    static const char *const algs[] = {"rsa-v1_5-sha256", "rsa-pss-sha512", "ed25519"};
    static const char *const bes[] = {"wolfssl", "openssl"};
    const uint8_t msg[] = "\"@method\": POST\n\"@signature-params\": (\"@method\")";
    uint8_t sig[1024];
    size_t a, i, j;

    for (a = 0; a < 3; a++) {
        const char *pem = a == 2 ? ed : rsa;
        size_t pl = a == 2 ? ed_len : rsa_len;

        for (i = 0; i < 2; i++) {
            size_t sl = sizeof(sig);

            T_EQ_INT(hd_sign_be_sign(bes[i], algs[a], pem, pl, msg, sizeof(msg) - 1, sig, &sl), 0);
            T_EQ_INT(sl, a == 2 ? 64 : 256);
            for (j = 0; j < 2; j++) {
                T_EQ_INT(hd_sign_be_verify(bes[j], algs[a], pem, pl, msg, sizeof(msg) - 1, sig, sl),
                         0);
                sig[10] ^= 1;
                T_EQ_INT(hd_sign_be_verify(bes[j], algs[a], pem, pl, msg, sizeof(msg) - 1, sig, sl),
                         HD_ERR_CRYPTO);
                sig[10] ^= 1;
            }
        }
    }
}

int main(void)
{
    size_t ed_len, rsa_len, pss_len;
    char *ed = load("rfc9421-test-key-ed25519.pem", &ed_len);
    char *rsa = load("rfc9421-test-key-rsa.pem", &rsa_len);
    char *pss = load("rfc9421-test-key-rsa-pss.pem", &pss_len);
    const char *bes[] = {"wolfssl", "openssl"};
    size_t i;

    test_content_digest();
    test_inspect();
    for (i = 0; i < 2; i++) {
        test_b26(bes[i], ed, ed_len);
        test_proxy_sig(bes[i], rsa, rsa_len);
        test_b23(bes[i], pss, pss_len);
    }
    test_cross(rsa, rsa_len, ed, ed_len);
    test_cross(pss, pss_len, ed, ed_len);
    test_measure(rsa, rsa_len, ed, ed_len);
    test_auto(rsa, rsa_len, ed, ed_len);
    free(ed);
    free(rsa);
    free(pss);
    T_DONE();
}

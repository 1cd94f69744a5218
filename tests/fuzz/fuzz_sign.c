/* libFuzzer target for the sign module's parsers and string builders: PEM / DER key parsing
 * (hd_key_inspect, hd_signer_add_key on the raw input and on the input wrapped as a PKCS#8
 * PEM body), base64 decoding, and both signature builders with fuzzed component lists,
 * header values, targets and labels ("components|value").
 *
 * Built with clang by tests/fuzz/CMakeLists.txt (hd_fuzz_target(sign)); run it as the other
 * targets: build-fuzz/tests/fuzz/fuzz_sign -max_total_time=60 tests/fuzz/corpus/sign
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "log.h"
#include "sign.h"

/* RFC 9421's published test-key-ed25519 (not a secret). */
static const char KEY[] = "-----BEGIN PRIVATE KEY-----\n"
                          "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n"
                          "-----END PRIVATE KEY-----\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct hd_signer *s; /* one signer for the process: keys are parsed once */
    char pub[4096], in[2048], sig[2048], pem[5000], *str, *split;
    const char *val = "v";
    uint8_t out[4096];
    size_t n;
    int type, l;
    unsigned bits;

    if (!s) {
        hd_log_level = HD_LOG_ERROR;
        if (hd_signer_new_ex(&s, "wolfssl") != 0 ||
            hd_signer_add_key(s, "k", KEY, sizeof(KEY) - 1, 0) != 0)
            abort();
    }
    hd_key_inspect((const char *)data, size, &type, &bits, pub, sizeof(pub));
    hd_b64_decode((const char *)data, size, out, sizeof(out), &n);
    if (size < 3000) {
        l = hd_b64_encode(data, size, pem + 28, sizeof(pem) - 60);
        if (l >= 0) {
            memcpy(pem, "-----BEGIN PRIVATE KEY-----\n", 28);
            memcpy(pem + 28 + l, "\n-----END PRIVATE KEY-----\n", 27);
            hd_key_inspect(pem, 28 + (size_t)l + 27, &type, &bits, pub, sizeof(pub));
            hd_signer_add_key(s, "x", pem, 28 + (size_t)l + 27, 0);
        }
    }
    str = malloc(size + 1);
    if (!str)
        return 0;
    memcpy(str, data, size);
    str[size] = '\0';
    split = strchr(str, '|');
    if (split) {
        *split = '\0';
        val = split + 1;
    }
    {
        struct hd_sign_header h[3] = {{"X-A", "1"}, {"x-b", val}, {val, str}};
        struct hd_sign_req r = {.method = "POST", .target = val, .headers = h, .nheaders = 3,
                                .components = str, .key_id = "k"};
        struct hd_sign9421_req q = {.method = "POST", .scheme = "https", .authority = val,
                                    .target = val, .headers = h, .nheaders = 3,
                                    .components = str, .key_id = "k", .label = val,
                                    .created = 1, .expires = -1};

        hd_sign_cavage_ex(s, &r, 1, 2, sig, sizeof(sig));
        hd_sign_rfc9421(s, &q, in, sizeof(in), sig, sizeof(sig));
        q.label = NULL;
        hd_sign_rfc9421(s, &q, in, sizeof(in), sig, sizeof(sig));
    }
    free(str);
    return 0;
}

/* signrate: signatures per second, one thread, for every signing backend and algorithm,
 * printed as one JSON object (for bench/ and operators sizing a machine).
 *
 *   signrate [--rsa RSA.pem] [--ed25519 ED.pem] [--ms N] [--backend NAME] [--alg ALG]
 *
 * Default keys under $HD_SRC/tests/data/sign (else ./tests/data/sign): rsa2048-test.pem,
 * a generated RSA-2048 test key, and RFC 9421's test-key-ed25519. Not RFC 9421's
 * test-key-rsa: its primes are 1096 and 968 bits, which keeps OpenSSL off its fast path
 * for two 1024-bit primes and measures ~3x slower than a normal key. Default 300 ms of CPU
 * time per measurement (rates are per CPU-second of the signing thread).
 * Output: {"ms":300,"rsa_bits":2048,"results":[{"backend":"openssl",
 *          "alg":"rsa-v1_5-sha256","ops_per_sec":4091.0},...],
 *          "auto":{"rsa":"openssl","ed25519":"wolfssl"},
 *          "cavage_rsa_ops_per_sec":4000.0,"rfc9421_ed25519_ops_per_sec":38000.0}
 * "auto" is what a signer picks by itself (hd_signer_new); the last two time the whole
 * per-delivery path (signing string, signature, base64, header) with that signer.
 * Exit 0, or 1 if any measurement failed (the failed ones carry "error").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "log.h"
#include "sign.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (!f)
        return NULL;
    buf = malloc(65537);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, 65536, f);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static double cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Whole-path rates with an auto-selecting signer, as the runner uses it. */
static int full_path(const char *rsa, size_t rsa_len, const char *ed, size_t ed_len, unsigned ms)
{
    static const struct hd_sign_header h[] = {
        {"Host", "mastodon.example"},
        {"Date", "Tue, 20 Apr 2021 02:07:55 GMT"},
        {"Digest", "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="},
        {"Content-Type", "application/activity+json"},
        {"Content-Digest", "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"},
    };
    struct hd_sign_req c = {.method = "POST",
                            .target = "/inbox",
                            .headers = h,
                            .nheaders = 5,
                            .components = "(request-target) host date digest content-type",
                            .key_id = "https://social.example/users/alice#main-key"};
    struct hd_sign9421_req r = {.method = "POST",
                                .scheme = "https",
                                .authority = "mastodon.example",
                                .target = "/inbox",
                                .headers = h,
                                .nheaders = 5,
                                .components = "\"@method\" \"@target-uri\" \"content-digest\" "
                                              "\"content-type\"",
                                .key_id = "https://social.example/users/alice#ed",
                                .created = 1618884473,
                                .expires = -1};
    struct hd_signer *s;
    char out[2048], in[1024];
    double t0, el, rate_c = 0, rate_r = 0;
    unsigned n;

    if (hd_signer_new(&s) != 0 || hd_signer_add_key(s, c.key_id, rsa, rsa_len, 0) != 0 ||
        hd_signer_add_key(s, r.key_id, ed, ed_len, 0) != 0)
        return 1;
    t0 = cpu_s();
    n = 0;
    do {
        if (hd_sign_cavage(s, &c, out, sizeof(out)) < 0)
            return 1;
        n++;
        el = cpu_s() - t0;
    } while (el * 1000 < ms);
    rate_c = n / el;
    t0 = cpu_s();
    n = 0;
    do {
        if (hd_sign_rfc9421(s, &r, in, sizeof(in), out, sizeof(out)) < 0)
            return 1;
        n++;
        el = cpu_s() - t0;
    } while (el * 1000 < ms);
    rate_r = n / el;
    printf(",\"auto\":{\"rsa\":\"%s\",\"ed25519\":\"%s\"},\"cavage_rsa_ops_per_sec\":%.1f,"
           "\"rfc9421_ed25519_ops_per_sec\":%.1f",
           hd_signer_backend_name(s, HD_KEY_RSA), hd_signer_backend_name(s, HD_KEY_ED25519), rate_c,
           rate_r);
    hd_signer_free(s);
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const algs[] = {"rsa-v1_5-sha256", "rsa-pss-sha512", "ed25519"};
    const char *src = getenv("HD_SRC");
    const char *rsa_path = NULL, *ed_path = NULL, *only_be = NULL, *only_alg = NULL;
    char rsa_def[1024], ed_def[1024];
    char *rsa, *ed;
    size_t rsa_len = 0, ed_len = 0, i, a;
    unsigned ms = 300, bits = 0;
    int first = 1, rc = 0, type;

    hd_log_level = HD_LOG_WARN; /* stdout is JSON; keep the signer's INFO lines quiet */

    for (int k = 1; k < argc; k++) {
        if (k + 1 < argc && strcmp(argv[k], "--rsa") == 0)
            rsa_path = argv[++k];
        else if (k + 1 < argc && strcmp(argv[k], "--ed25519") == 0)
            ed_path = argv[++k];
        else if (k + 1 < argc && strcmp(argv[k], "--ms") == 0)
            ms = (unsigned)strtoul(argv[++k], NULL, 10);
        else if (k + 1 < argc && strcmp(argv[k], "--backend") == 0)
            only_be = argv[++k];
        else if (k + 1 < argc && strcmp(argv[k], "--alg") == 0)
            only_alg = argv[++k];
        else {
            fprintf(stderr, "usage: signrate [--rsa PEM] [--ed25519 PEM] [--ms N] "
                            "[--backend NAME] [--alg ALG]\n");
            return 2;
        }
    }
    snprintf(rsa_def, sizeof(rsa_def), "%s/tests/data/sign/rsa2048-test.pem", src ? src : ".");
    snprintf(ed_def, sizeof(ed_def), "%s/tests/data/sign/rfc9421-test-key-ed25519.pem",
             src ? src : ".");
    rsa = slurp(rsa_path ? rsa_path : rsa_def, &rsa_len);
    ed = slurp(ed_path ? ed_path : ed_def, &ed_len);
    if (!rsa || !ed) {
        fprintf(stderr, "signrate: cannot read the keys (--rsa, --ed25519, or set HD_SRC)\n");
        return 2;
    }
    if (hd_key_inspect(rsa, rsa_len, &type, &bits, NULL, 0) != 0 || type != HD_KEY_RSA) {
        fprintf(stderr, "signrate: --rsa is not an RSA private key\n");
        return 2;
    }
    printf("{\"ms\":%u,\"rsa_bits\":%u,\"results\":[", ms, bits);
    for (i = 0; i < hd_sign_backend_count(); i++) {
        const char *be = hd_sign_backend_at(i);

        if (only_be && strcmp(only_be, be) != 0)
            continue;
        for (a = 0; a < sizeof(algs) / sizeof(algs[0]); a++) {
            int is_ed = strcmp(algs[a], "ed25519") == 0;
            double r = 0;
            int err;

            if (only_alg && strcmp(only_alg, algs[a]) != 0)
                continue;
            err =
                hd_signer_measure(be, algs[a], is_ed ? ed : rsa, is_ed ? ed_len : rsa_len, ms, &r);
            printf("%s{\"backend\":\"%s\",\"alg\":\"%s\",", first ? "" : ",", be, algs[a]);
            if (err == 0)
                printf("\"ops_per_sec\":%.1f}", r);
            else
                printf("\"error\":\"%s\"}", hd_strerror(err));
            if (err != 0)
                rc = 1;
            first = 0;
        }
    }
    printf("]");
    if (!only_be && !only_alg && full_path(rsa, rsa_len, ed, ed_len, ms) != 0)
        rc = 1;
    printf("}\n");
    free(rsa);
    free(ed);
    return rc;
}

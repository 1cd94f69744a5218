/* Secrets: nothing the signer logs at debug level or returns as an error text contains key
 * material, even for damaged or refused keys, and creating a signer does not change the
 * process (the herald program makes itself non-dumpable: tests/integration/nodump.sh). The
 * integration test tests/integration/secrets.sh checks the logs on every output of a full
 * `herald run`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "sign.h"
#include "t.h"

/* Fails when any base64 line of the PEM's body (40+ characters) appears in text. */
static void no_key_lines(const char *pem, const char *text, const char *what)
{
    const char *p = pem;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char line[128];
        if (n >= 40 && n < sizeof(line) && p[0] != '-') {
            memcpy(line, p, n);
            line[n] = 0;
            if (strstr(text, line))
                T_FAIL("%s contains key material: %s", what, line);
            line[24] = 0; /* a distinctive part of it, too */
            if (strstr(text, line))
                T_FAIL("%s contains part of the key: %s", what, line);
        }
        p = e ? e + 1 : p + n;
    }
}

int main(void)
{
    const char *data = getenv("HD_TEST_DATA");
    char path[4096], logpath[] = "/tmp/hd-test-secrets-XXXXXX", sig[4096], errs[8192] = "";
    char *pem, *small, *bad, *log;
    size_t pem_len, small_len, log_len;
    struct hd_signer *s;
    struct hd_sign_req rq;
    const struct hd_sign_header hdrs[] = {
        {"host", "a.example"},
        {"date", "Thu, 26 Nov 2026 08:00:00 GMT"},
        {"digest", "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}};
    int fd, saved, rc;

    if (!data)
        T_SKIP("HD_TEST_DATA not set");
    snprintf(path, sizeof(path), "%s/keys/test-only-rsa2048.pem", data);
    pem = t_slurp(path, &pem_len);
    snprintf(path, sizeof(path), "%s/keys/test-only-rsa1024.pem", data);
    small = t_slurp(path, &small_len);
    T_OK(pem && small);

    /* all log output of the signer at debug level goes to a file we read back */
    fd = mkstemp(logpath);
    T_OK(fd >= 0);
    fflush(stderr);
    saved = dup(2);
    T_OK(dup2(fd, 2) == 2);
    hd_log_level = HD_LOG_DEBUG;

    /* A library call leaves the process as it is: the program (herald's main) decides that
     * it is not dumpable. */
    T_EQ_INT(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);
    T_EQ_INT(hd_signer_new(&s), 0);
    T_EQ_INT(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);
    T_EQ_INT(hd_signer_add_key(s, "k", pem, pem_len, 2048), 0);
    /* refused and damaged keys: error codes and their texts never echo the input */
    rc = hd_signer_add_key(s, "small", small, small_len, 2048);
    T_OK(rc != 0);
    strncat(errs, hd_strerror(rc), sizeof(errs) - strlen(errs) - 1);
    bad = strdup(pem);
    T_OK(bad != NULL);
    for (size_t i = pem_len / 2; i < pem_len / 2 + 40; i++)
        if (bad[i] != '\n')
            bad[i] = bad[i] == 'A' ? 'B' : 'A';
    rc = hd_signer_add_key(s, "bad", bad, pem_len, 2048);
    strncat(errs, hd_strerror(rc), sizeof(errs) - strlen(errs) - 1);
    rc = hd_signer_add_key(s, "cut", pem, pem_len / 3, 2048);
    T_OK(rc != 0);
    strncat(errs, hd_strerror(rc), sizeof(errs) - strlen(errs) - 1);
    memset(&rq, 0, sizeof(rq));
    rq.key_id = "k";
    rq.method = "POST";
    rq.target = "/inbox";
    rq.headers = hdrs;
    rq.nheaders = sizeof(hdrs) / sizeof(hdrs[0]);
    rq.components = "(request-target) host date digest";
    T_OK(hd_sign_cavage(s, &rq, sig, sizeof(sig)) > 0);
    hd_signer_free(s);

    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    log = t_slurp(logpath, &log_len);
    unlink(logpath);
    T_OK(log != NULL);
    no_key_lines(pem, log, "debug log");
    no_key_lines(small, log, "debug log");
    no_key_lines(pem, errs, "error texts");
    no_key_lines(pem, sig, "Signature header");
    T_OK(strstr(log, "PRIVATE KEY") == NULL);
    free(pem);
    free(small);
    free(bad);
    free(log);
    T_DONE();
}

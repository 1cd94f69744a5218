/* libFuzzer target for hd_url_parse / hd_url_format.
 *
 * Beyond "does not crash": an accepted URL must be normalised (lower-case host, no control
 * characters or spaces anywhere, path starting with '/'), and formatting then re-parsing it
 * must give the same result (the normal form is a fixed point), since the connection pool,
 * the signer and the rules all key on these strings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_clean(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || *s == '\\')
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char in[HD_URL_MAX + 64];
    static char out[HD_URL_MAX + HD_HOST_MAX + 64];
    struct hd_url u, u2;
    const char *h;

    if (size >= sizeof(in))
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    if (hd_url_parse(in, &u) != 0)
        return 0;
    if (u.host[0] == '\0' || u.port == 0 || u.path[0] != '/' || u.authority[0] == '\0')
        abort();
    for (h = u.host; *h; h++)
        if (*h >= 'A' && *h <= 'Z')
            abort();
    check_clean(u.host);
    check_clean(u.authority);
    check_clean(u.path);
    if (hd_url_format(&u, out, sizeof(out)) != 0)
        return 0; /* only when the normal form outgrows HD_URL_MAX-ish buffers */
    if (hd_url_parse(out, &u2) != 0) {
        if (strlen(out) < HD_URL_MAX)
            abort();
        return 0;
    }
    if (u.tls != u2.tls || u.port != u2.port || strcmp(u.host, u2.host) != 0 ||
        strcmp(u.authority, u2.authority) != 0 || strcmp(u.path, u2.path) != 0)
        abort();
    return 0;
}

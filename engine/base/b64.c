#include <string.h>

#include "b64.h"
#include "err.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int hd_b64_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
    size_t need = HD_B64_LEN(len);
    size_t i, o = 0;

    if (cap < need + 1)
        return HD_ERR_FULL;
    for (i = 0; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return (int)o;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int hd_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    uint32_t acc = 0;
    size_t o = 0, i;
    int nbits = 0, pad = 0, rc = HD_ERR_INVALID;

    for (i = 0; i < len; i++) {
        char c = in[i];
        int v;

        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
            if (pad > 2)
                goto fail;
            continue;
        }
        if (pad) /* data after padding */
            goto fail;
        v = b64_value(c);
        if (v < 0)
            goto fail;
        acc = (acc << 6) | (uint32_t)v;
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            if (o >= cap) {
                rc = HD_ERR_FULL;
                goto fail;
            }
            out[o++] = (uint8_t)(acc >> nbits);
            acc &= (1u << nbits) - 1;
        }
    }
    /* 6 leftover bits can never be a whole input; 2 or 4 leftover bits must be zero. */
    if (nbits >= 6 || acc != 0)
        goto fail;
    *out_len = o;
    return 0;
fail:
    memset(out, 0, o);
    return rc;
}

/* libFuzzer target: the HTTP/1.1 response parser (engine/h1.h) on hostile bytes, fed in
 * pieces whose sizes come from the input, then end of stream. Checks the parser's own
 * contract: it never consumes more than it was given, a complete response has a status in
 * 100..999, header callbacks never see more than the line buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_header(const char *name, size_t nlen, const char *value, size_t vlen,
                     int truncated, void *ud)
{
    size_t *n = ud;
    (void)name;
    (void)value;
    (void)truncated;
    if (nlen + vlen > HD_H1_LINE_MAX)
        abort();
    (*n)++;
    return 0;
}

static void on_body(const uint8_t *d, size_t len, void *ud)
{
    (void)d;
    (void)len;
    (void)ud;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hd_h1_parser *p;
    size_t off = 2, nh = 0;
    int rc = 0;

    if (size < 2)
        return 0;
    p = malloc(sizeof(*p));
    if (!p)
        return 0;
    /* byte 0: piece size (1..256); byte 1 bit 0: HEAD request, bit 1: small header cap */
    hd_h1_parser_init(p, data[1] & 2 ? 256 : 65536, data[1] & 1, on_header, on_body, &nh);
    while (off < size && rc == 0) {
        size_t piece = (size_t)data[0] + 1, used = 0;
        if (piece > size - off)
            piece = size - off;
        rc = hd_h1_parse(p, data + off, piece, &used);
        if (used > piece)
            abort();
        if (rc == 1 && (p->status < 100 || p->status > 999))
            abort();
        off += rc == 0 ? piece : used;
    }
    if (rc == 0)
        (void)hd_h1_parse_eof(p);
    free(p);
    return 0;
}

/* A small msgpack encoder/decoder for flat array records, on msgpack-c.
 *
 * Encoding goes through msgpack-c's packer into our own capped buffer (no sbuffer realloc
 * without a bound). Decoding reads the top-level array in place (hd_dec_record: no msgpack-c,
 * no allocation) into struct hd_dec, so callers never touch msgpack objects. */
#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "err.h"

static int enc_write(void *data, const char *buf, size_t len)
{
    struct hd_enc *e = data;
    if (e->err)
        return -1;
    if (e->len + len > e->cap) {
        size_t cap = e->cap ? e->cap : 256;
        char *p;
        while (cap < e->len + len)
            cap *= 2;
        if (cap > HD_CODEC_MAX) {
            e->err = HD_ERR_FULL;
            return -1;
        }
        p = realloc(e->buf, cap);
        if (!p) {
            e->err = -ENOMEM;
            return -1;
        }
        e->buf = p;
        e->cap = cap;
    }
    memcpy(e->buf + e->len, buf, len);
    e->len += len;
    return 0;
}

void hd_enc_init(struct hd_enc *e)
{
    memset(e, 0, sizeof(*e));
}

void hd_enc_fini(struct hd_enc *e)
{
    free(e->buf);
    e->buf = NULL;
    e->len = e->cap = 0;
}

void hd_enc_reset(struct hd_enc *e)
{
    e->len = 0;
    e->err = 0;
}

#define PK(e) msgpack_packer pk_ = {.data = (e), .callback = enc_write}

void hd_enc_array(struct hd_enc *e, uint32_t n)
{
    PK(e);
    msgpack_pack_array(&pk_, n);
}

void hd_enc_uint(struct hd_enc *e, uint64_t v)
{
    PK(e);
    msgpack_pack_uint64(&pk_, v);
}

void hd_enc_int(struct hd_enc *e, int64_t v)
{
    PK(e);
    msgpack_pack_int64(&pk_, v);
}

void hd_enc_str(struct hd_enc *e, const char *s, size_t n)
{
    PK(e);
    msgpack_pack_str(&pk_, n);
    msgpack_pack_str_body(&pk_, s, n);
}

void hd_enc_cstr(struct hd_enc *e, const char *s)
{
    if (!s)
        hd_enc_nil(e);
    else
        hd_enc_str(e, s, strlen(s));
}

void hd_enc_bin(struct hd_enc *e, const void *p, size_t n)
{
    PK(e);
    msgpack_pack_bin(&pk_, n);
    msgpack_pack_bin_body(&pk_, p, n);
}

void hd_enc_nil(struct hd_enc *e)
{
    PK(e);
    msgpack_pack_nil(&pk_);
}

/* 1 when the first msgpack object in p[0..len) is complete and no container in it claims
 * more elements than there are bytes left (each element takes at least one byte). msgpack-c
 * allocates a container's elements up front from the count in its header, so a damaged
 * record claiming 2^32 entries would otherwise cost a huge allocation before the decoder
 * finds the data missing (found by tests/fuzz/fuzz_store_records). */
static int msgpack_plausible(const uint8_t *p, size_t len)
{
    uint64_t pending = 1;
    size_t i = 0;

    while (pending > 0) {
        uint64_t n = 0, skip = 0;
        uint8_t b;
        if (i >= len)
            return 0;
        b = p[i++];
        pending--;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* fixint, nil, bool */
        } else if (b <= 0x8f) {
            n = 2u * (b & 0x0f);
        } else if (b <= 0x9f) {
            n = b & 0x0f;
        } else if (b <= 0xbf) {
            skip = b & 0x1f;
        } else {
            static const uint8_t hdr[32] = {
                /* c0 */ 0, 0, 0, 0, 1, 2, 4, 1, 2, 4, 4, 8, 1, 2, 4, 8,
                /* d0 */ 1, 2, 4, 8, 2, 3, 5, 9, 17, 1, 2, 4, 2, 4, 2, 4};
            uint8_t h = hdr[b - 0xc0];
            uint64_t v = 0;
            if (b == 0xc1 || h > len - i)
                return 0;
            if ((b >= 0xc4 && b <= 0xc9) || (b >= 0xd9 && b <= 0xdf)) {
                for (uint8_t k = 0; k < h; k++)
                    v = v << 8 | p[i + k];
                i += h;
                if (b >= 0xc7 && b <= 0xc9)
                    skip = v + 1; /* ext: size bytes plus the type byte */
                else if (b == 0xdc || b == 0xdd)
                    n = v;
                else if (b == 0xde || b == 0xdf)
                    n = 2 * v;
                else
                    skip = v;
            } else {
                skip = h; /* numbers and fixext: fixed payload */
            }
        }
        if (skip > len - i)
            return 0;
        i += (size_t)skip;
        pending += n;
        if (pending > len - i)
            return 0;
    }
    return 1;
}

/* msgpack-c refuses a container opened inside this many open ones (its
 * MSGPACK_EMBED_STACK_SIZE, 32): a damaged or hostile record nested deeper stays invalid. */
#define DEC_MAX_DEPTH 32

static uint64_t be_uint(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned k = 0; k < n; k++)
        v = v << 8 | p[k];
    return v;
}

/* Skips the element at p[*i] of a buffer msgpack_plausible accepted (so every length read
 * here is in bounds). depth: containers open around it. Returns 0, or -1 for what msgpack-c
 * refuses (a container at depth DEC_MAX_DEPTH or more, empty or not). */
static int dec_skip(const uint8_t *p, size_t *i, unsigned depth)
{
    uint8_t b = p[(*i)++];
    uint64_t n;

    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return 0;
    if (b >= 0xa0 && b <= 0xbf) {
        *i += b & 0x1f;
        return 0;
    }
    if (b >= 0x80 && b <= 0x9f) {
        n = (b & 0x0f) * (b <= 0x8f ? 2u : 1u);
    } else if (b == 0xdc || b == 0xdd || b == 0xde || b == 0xdf) {
        unsigned h = (b == 0xdc || b == 0xde) ? 2 : 4;
        n = be_uint(p + *i, h) * (b >= 0xde ? 2u : 1u);
        *i += h;
    } else {
        /* Other scalars: payload after the type byte (c1 never gets here: not plausible). */
        switch (b) {
        case 0xc4: case 0xd9: *i += 1 + p[*i]; break;
        case 0xc5: case 0xda: *i += 2 + be_uint(p + *i, 2); break;
        case 0xc6: case 0xdb: *i += 4 + be_uint(p + *i, 4); break;
        case 0xc7: *i += 2 + p[*i]; break;
        case 0xc8: *i += 3 + be_uint(p + *i, 2); break;
        case 0xc9: *i += 5 + be_uint(p + *i, 4); break;
        case 0xca: case 0xce: case 0xd2: *i += 4; break;
        case 0xcb: case 0xcf: case 0xd3: *i += 8; break;
        case 0xcc: case 0xd0: *i += 1; break;
        case 0xcd: case 0xd1: *i += 2; break;
        case 0xd4: *i += 2; break;
        case 0xd5: *i += 3; break;
        case 0xd6: *i += 5; break;
        case 0xd7: *i += 9; break;
        case 0xd8: *i += 17; break;
        default: return -1;
        }
        return 0;
    }
    if (depth >= DEC_MAX_DEPTH)
        return -1;
    while (n-- > 0)
        if (dec_skip(p, i, depth + 1) != 0)
            return -1;
    return 0;
}

/* Decodes in place, without msgpack-c: its unpacker allocates a zone (an 8 KB malloc) per
 * call, and this runs for every queue entry read and written. Same results as msgpack-c's
 * msgpack_unpack_next on the first object (types, values, strings pointing into buf,
 * trailing bytes ignored, nesting limit), checked against it by tests/unit/test_codec.c. */
int hd_dec_record(struct hd_dec *d, const void *buf, size_t len, uint64_t version,
                  uint32_t min_fields)
{
    const uint8_t *p = buf;
    struct hd_dec t;
    size_t i = 1;
    uint64_t size;

    if (!msgpack_plausible(buf, len))
        return HD_ERR_INVALID;
    if (p[0] >= 0x90 && p[0] <= 0x9f) {
        size = p[0] & 0x0f;
    } else if (p[0] == 0xdc || p[0] == 0xdd) {
        size = be_uint(p + 1, p[0] == 0xdc ? 2 : 4);
        i += p[0] == 0xdc ? 2 : 4;
    } else {
        return HD_ERR_INVALID; /* not an array (msgpack-c would decode it; we refuse it) */
    }
    if (size < 1)
        return HD_ERR_INVALID;
    t.n = size < HD_DEC_MAX_FIELDS ? (uint32_t)size : HD_DEC_MAX_FIELDS;
    for (uint64_t k = 0; k < size; k++) {
        uint8_t b = p[i];
        uint32_t f = (uint32_t)k;
        size_t at = i;

        if (dec_skip(p, &i, 1) != 0)
            return HD_ERR_INVALID;
        if (k >= t.n)
            continue; /* beyond the fields we keep: only checked, as msgpack-c does */
        t.f[f].u = 0;
        t.f[f].s.p = NULL;
        t.f[f].s.n = 0;
        if (b <= 0x7f) {
            t.f[f].kind = HD_DEC_UINT;
            t.f[f].u = b;
        } else if (b >= 0xe0) {
            t.f[f].kind = HD_DEC_INT;
            t.f[f].u = (uint64_t)(int64_t)(int8_t)b;
        } else if (b == 0xc0) {
            t.f[f].kind = HD_DEC_NIL;
        } else if (b >= 0xcc && b <= 0xcf) {
            t.f[f].kind = HD_DEC_UINT;
            t.f[f].u = be_uint(p + at + 1, 1u << (b - 0xcc));
        } else if (b >= 0xd0 && b <= 0xd3) {
            /* msgpack-c types a signed encoding by its value: >= 0 is a positive integer. */
            unsigned w = 1u << (b - 0xd0);
            uint64_t v = be_uint(p + at + 1, w);
            int64_t sv;
            if (w < 8 && (v >> (8 * w - 1)) & 1)
                v |= ~0ull << (8 * w); /* sign-extend */
            sv = (int64_t)v;
            t.f[f].kind = sv >= 0 ? HD_DEC_UINT : HD_DEC_INT;
            t.f[f].u = v;
        } else if ((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb) ||
                   (b >= 0xc4 && b <= 0xc6)) {
            unsigned h = b >= 0xa0 && b <= 0xbf ? 0 : 1u << ((b >= 0xd9 ? b - 0xd9 : b - 0xc4));
            t.f[f].kind = (b >= 0xc4 && b <= 0xc6) ? HD_DEC_BIN : HD_DEC_STR;
            t.f[f].s.p = (const char *)p + at + 1 + h;
            t.f[f].s.n = (size_t)(p + i - (p + at + 1 + h));
        } else {
            t.f[f].kind = HD_DEC_OTHER;
        }
    }
    /* The version is the first field: a positive integer equal to version. */
    if (t.f[0].kind != HD_DEC_UINT)
        return HD_ERR_INVALID;
    if (t.f[0].u != version)
        return HD_ERR_SCHEMA;
    if (size < min_fields)
        return HD_ERR_INVALID;
    /* Only on success is *d written (as before). */
    d->n = t.n;
    memcpy(d->f, t.f, t.n * sizeof(t.f[0]));
    return 0;
}

uint64_t hd_dec_uint(const struct hd_dec *d, uint32_t i)
{
    if (i >= d->n || d->f[i].kind != HD_DEC_UINT)
        return 0;
    return d->f[i].u;
}

struct hd_slice hd_dec_str(const struct hd_dec *d, uint32_t i)
{
    struct hd_slice s = {NULL, 0};
    if (i >= d->n || (d->f[i].kind != HD_DEC_STR && d->f[i].kind != HD_DEC_BIN))
        return s;
    return d->f[i].s;
}

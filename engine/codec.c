/* A small msgpack encoder/decoder for flat array records, on msgpack-c.
 *
 * Encoding goes through msgpack-c's packer into our own capped buffer (no sbuffer realloc
 * without a bound). Decoding uses msgpack_unpack_next into a stack-sized zone and copies the
 * top-level fields into struct hd_dec, so callers never touch msgpack objects. */
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

int hd_dec_record(struct hd_dec *d, const void *buf, size_t len, uint64_t version,
                  uint32_t min_fields)
{
    msgpack_unpacked u;
    msgpack_object_array *a;
    size_t off = 0;
    int rv = HD_ERR_INVALID;

    if (!msgpack_plausible(buf, len))
        return HD_ERR_INVALID;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS)
        goto out;
    if (u.data.type != MSGPACK_OBJECT_ARRAY || u.data.via.array.size < 1)
        goto out;
    a = &u.data.via.array;
    if (a->ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        goto out;
    if (a->ptr[0].via.u64 != version) {
        rv = HD_ERR_SCHEMA;
        goto out;
    }
    if (a->size < min_fields)
        goto out;
    d->n = a->size < HD_DEC_MAX_FIELDS ? a->size : HD_DEC_MAX_FIELDS;
    for (uint32_t i = 0; i < d->n; i++) {
        msgpack_object *o = &a->ptr[i];
        d->f[i].u = 0;
        d->f[i].s.p = NULL;
        d->f[i].s.n = 0;
        switch (o->type) {
        case MSGPACK_OBJECT_NIL:
            d->f[i].kind = HD_DEC_NIL;
            break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            d->f[i].kind = HD_DEC_UINT;
            d->f[i].u = o->via.u64;
            break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            d->f[i].kind = HD_DEC_INT;
            d->f[i].u = (uint64_t)o->via.i64;
            break;
        case MSGPACK_OBJECT_STR:
            d->f[i].kind = HD_DEC_STR;
            d->f[i].s.p = o->via.str.ptr;
            d->f[i].s.n = o->via.str.size;
            break;
        case MSGPACK_OBJECT_BIN:
            d->f[i].kind = HD_DEC_BIN;
            d->f[i].s.p = o->via.bin.ptr;
            d->f[i].s.n = o->via.bin.size;
            break;
        default:
            d->f[i].kind = HD_DEC_OTHER;
            break;
        }
        /* msgpack-c's unpack_next references str/bin inside the input buffer rather than
         * copying (they point into buf), which is what lets us free the zone below. Verify
         * that so a future msgpack-c that copies cannot leave us with dangling pointers. */
        if (d->f[i].s.p && (d->f[i].s.p < (const char *)buf ||
                            d->f[i].s.p + d->f[i].s.n > (const char *)buf + len)) {
            rv = HD_ERR_INVALID;
            goto out;
        }
    }
    rv = 0;
out:
    msgpack_unpacked_destroy(&u);
    return rv;
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

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

int hd_dec_record(struct hd_dec *d, const void *buf, size_t len, uint64_t version,
                  uint32_t min_fields)
{
    msgpack_unpacked u;
    msgpack_object_array *a;
    size_t off = 0;
    int rv = HD_ERR_INVALID;

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

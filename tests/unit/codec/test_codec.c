/* codec: records round-trip, and damaged records are refused cheaply. Regression for
 * tests/fuzz/corpus/store_records/regress-map32-huge-count: a container header claiming
 * billions of elements made msgpack-c allocate hundreds of GiB before noticing the data was
 * missing; hd_dec_record now refuses any container larger than the bytes left.
 * hd_dec_record decodes without msgpack-c: random records (and their mutations) are checked
 * against msgpack-c's msgpack_unpack_next, which it replaced. */
#include <msgpack.h>
#include <stdint.h>
#include <string.h>

#include "codec.h"
#include "err.h"
#include "t.h"

static int dec(const char *bytes, size_t n, uint64_t version, uint32_t min_fields)
{
    struct hd_dec d;
    return hd_dec_record(&d, bytes, n, version, min_fields);
}

/* ---- differential check against msgpack-c (the decoder hd_dec_record used before) ---- */

/* What hd_dec_record returned when it decoded through msgpack_unpack_next. Only called on
 * buffers without array32/map32 headers (0xdd, 0xdf): msgpack-c allocates a container's
 * elements before reading them, and a random 32-bit count would ask for gigabytes. */
static int ref_dec(struct hd_dec *d, const void *buf, size_t len, uint64_t version,
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
        case MSGPACK_OBJECT_NIL: d->f[i].kind = HD_DEC_NIL; break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER: d->f[i].kind = HD_DEC_UINT; d->f[i].u = o->via.u64; break;
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
        default: d->f[i].kind = HD_DEC_OTHER; break;
        }
    }
    rv = 0;
out:
    msgpack_unpacked_destroy(&u);
    return rv;
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* A random byte that is never an array32/map32 header. */
static uint8_t rbyte(void)
{
    uint8_t b = (uint8_t)rnd();
    return b == 0xdd || b == 0xdf ? 0x42 : b;
}

struct gbuf {
    uint8_t b[4096];
    size_t n;
};

static void put(struct gbuf *g, uint8_t v)
{
    if (g->n < sizeof(g->b))
        g->b[g->n++] = v;
}

static void put_be(struct gbuf *g, uint64_t v, unsigned w)
{
    for (unsigned k = w; k-- > 0;)
        put(g, (uint8_t)(v >> (8 * k)));
}

static void put_rnd(struct gbuf *g, unsigned n)
{
    for (unsigned k = 0; k < n; k++)
        put(g, rbyte());
}

static void gen(struct gbuf *g, unsigned depth)
{
    unsigned t = (unsigned)(rnd() % 24), n;

    switch (t) {
    case 0: put(g, (uint8_t)(rnd() % 0x80)); break;
    case 1: put(g, (uint8_t)(0xe0 | (rnd() % 32))); break;
    case 2: put(g, 0xc0); break;
    case 3: put(g, rnd() % 2 ? 0xc2 : 0xc3); break;
    case 4: case 5: /* uint 8..64 */
        n = (unsigned)(rnd() % 4);
        put(g, (uint8_t)(0xcc + n));
        put_rnd(g, 1u << n);
        break;
    case 6: case 7: /* int 8..64, either sign */
        n = (unsigned)(rnd() % 4);
        put(g, (uint8_t)(0xd0 + n));
        put_rnd(g, 1u << n);
        break;
    case 8: put(g, 0xca); put_rnd(g, 4); break;
    case 9: put(g, 0xcb); put_rnd(g, 8); break;
    case 10: case 11: n = (unsigned)(rnd() % 32); put(g, (uint8_t)(0xa0 | n)); put_rnd(g, n); break;
    case 12: n = (unsigned)(rnd() % 40); put(g, 0xd9); put(g, (uint8_t)n); put_rnd(g, n); break;
    case 13: n = (unsigned)(rnd() % 40); put(g, 0xda); put_be(g, n, 2); put_rnd(g, n); break;
    case 14: n = (unsigned)(rnd() % 40); put(g, 0xc4); put(g, (uint8_t)n); put_rnd(g, n); break;
    case 15: n = (unsigned)(rnd() % 40); put(g, 0xc5); put_be(g, n, 2); put_rnd(g, n); break;
    case 16: n = (unsigned)(rnd() % 5); put(g, (uint8_t)(0xd4 + n)); put_rnd(g, 1 + (1u << n)); break;
    case 17: n = (unsigned)(rnd() % 20); put(g, 0xc7); put(g, (uint8_t)n); put_rnd(g, n + 1); break;
    case 18: n = (unsigned)(rnd() % 20); put(g, 0xc8); put_be(g, n, 2); put_rnd(g, n + 1); break;
    case 19: n = (unsigned)(rnd() % 20); put(g, 0xdb); put_be(g, n, 4); put_rnd(g, n); break;
    default: /* containers, sometimes deep */
        n = depth > 36 ? 0 : (unsigned)(rnd() % (depth > 3 ? 2 : 5));
        if (t == 20 || t == 21) {
            if (rnd() % 2) put(g, (uint8_t)(0x90 | n)); else { put(g, 0xdc); put_be(g, n, 2); }
            for (unsigned k = 0; k < n; k++)
                gen(g, depth + 1);
        } else {
            if (rnd() % 2) put(g, (uint8_t)(0x80 | n)); else { put(g, 0xde); put_be(g, n, 2); }
            for (unsigned k = 0; k < 2 * n; k++)
                gen(g, depth + 1);
        }
        break;
    }
}

static void same(const void *buf, size_t len, uint64_t version, uint32_t min_fields)
{
    struct hd_dec a = {0}, b = {0};
    int ra, rb;

    if (memchr(buf, 0xdd, len) || memchr(buf, 0xdf, len))
        return;
    ra = hd_dec_record(&a, buf, len, version, min_fields);
    rb = ref_dec(&b, buf, len, version, min_fields);
    T_EQ_INT(ra, rb);
    if (ra != 0)
        return;
    T_EQ_INT(a.n, b.n);
    for (uint32_t i = 0; i < a.n; i++) {
        T_EQ_INT(a.f[i].kind, b.f[i].kind);
        T_OK(a.f[i].u == b.f[i].u);
        T_EQ_INT(a.f[i].s.n, b.f[i].s.n);
        /* msgpack-c leaves an empty string's pointer stale (or NULL); ours points at it */
        if (b.f[i].s.n > 0)
            T_OK(a.f[i].s.p == b.f[i].s.p);
        if (a.f[i].kind == HD_DEC_STR || a.f[i].kind == HD_DEC_BIN)
            T_OK(a.f[i].s.p && a.f[i].s.p >= (const char *)buf &&
                 a.f[i].s.p + a.f[i].s.n <= (const char *)buf + len);
    }
}

static void differential(void)
{
    static struct gbuf g;
    uint8_t m[sizeof(g.b)];

    for (int iter = 0; iter < 20000; iter++) {
        unsigned n = (unsigned)(rnd() % 40);
        g.n = 0;
        if (n < 16 && rnd() % 2)
            put(&g, (uint8_t)(0x90 | n));
        else {
            put(&g, 0xdc);
            put_be(&g, n, 2);
        }
        for (unsigned k = 0; k < n; k++) {
            if (k == 0 && rnd() % 8)
                put(&g, (uint8_t)(rnd() % 3)); /* the version, mostly */
            else
                gen(&g, 1);
        }
        if (rnd() % 4 == 0)
            put_rnd(&g, (unsigned)(rnd() % 4)); /* trailing bytes */
        same(g.b, g.n, 1, (uint32_t)(rnd() % 8));
        /* every truncation, and a few one-byte changes */
        for (size_t t = 0; t < g.n && t < 64; t++)
            same(g.b, t, 1, 1);
        for (int k = 0; k < 8 && g.n > 0; k++) {
            memcpy(m, g.b, g.n);
            m[rnd() % g.n] = rbyte();
            same(m, g.n, 1, 1);
        }
    }
    /* nesting at msgpack-c's limit: 32 open containers are fine, a 33rd is refused */
    for (unsigned depth = 30; depth <= 34; depth++)
        for (int empty = 0; empty < 2; empty++) {
            g.n = 0;
            put(&g, 0x92);
            put(&g, 0x01);
            for (unsigned k = 1; k < depth; k++)
                put(&g, 0x91);
            if (empty)
                put(&g, 0x90);
            else
                put(&g, 0xc0);
            same(g.b, g.n, 1, 1);
        }
}

int main(void)
{
    struct hd_enc e;
    struct hd_dec d;
    struct hd_slice s;

    hd_enc_init(&e);
    hd_enc_array(&e, 5);
    hd_enc_uint(&e, 1);
    hd_enc_cstr(&e, "hello");
    hd_enc_int(&e, -7);
    hd_enc_bin(&e, "\0\1\2", 3);
    hd_enc_nil(&e);
    T_EQ_INT(e.err, 0);
    T_EQ_INT(hd_dec_record(&d, e.buf, e.len, 1, 5), 0);
    T_EQ_INT(d.n, 5);
    s = hd_dec_str(&d, 1);
    T_OK(s.n == 5 && memcmp(s.p, "hello", 5) == 0);
    T_EQ_INT((int64_t)d.f[2].u, -7);
    T_EQ_INT(hd_dec_str(&d, 3).n, 3);
    T_EQ_INT(d.f[4].kind, HD_DEC_NIL);
    T_EQ_INT(hd_dec_record(&d, e.buf, e.len, 2, 1), HD_ERR_SCHEMA);
    T_EQ_INT(hd_dec_record(&d, e.buf, e.len, 1, 6), HD_ERR_INVALID);
    /* every truncation of a valid record is refused */
    for (size_t n = 0; n < e.len; n++)
        T_EQ_INT(hd_dec_record(&d, e.buf, n, 1, 5), HD_ERR_INVALID);
    hd_enc_fini(&e);

    /* the fuzzer's record: map32 with 0xdfdfdfdf entries and a few bytes */
    T_EQ_INT(dec("\xdf\xdf\xdf\xdf\xdf\xdf\xdf\x93\x0e\x00", 10, 1, 1), HD_ERR_INVALID);
    /* array32 of 2^32-1 inside a valid-looking record, array16 and map16 larger than the rest */
    T_EQ_INT(dec("\x92\x01\xdd\xff\xff\xff\xff\x01", 8, 1, 1), HD_ERR_INVALID);
    T_EQ_INT(dec("\x92\x01\xdc\x00\x10\x01\x02", 7, 1, 1), HD_ERR_INVALID);
    T_EQ_INT(dec("\x92\x01\xde\x00\x02\x01\x02\x03", 8, 1, 1), HD_ERR_INVALID);
    /* str32 / bin32 / ext32 lengths beyond the buffer */
    T_EQ_INT(dec("\x92\x01\xdb\xff\xff\xff\xf0" "ab", 9, 1, 1), HD_ERR_INVALID);
    T_EQ_INT(dec("\x92\x01\xc6\x7f\xff\xff\xff" "ab", 9, 1, 1), HD_ERR_INVALID);
    T_EQ_INT(dec("\x92\x01\xc9\x00\x00\x00\x05\x01" "ab", 10, 1, 1), HD_ERR_INVALID);
    /* the reserved byte 0xc1 */
    T_EQ_INT(dec("\x92\x01\xc1", 3, 1, 1), HD_ERR_INVALID);
    /* nested containers that do fit are still fine; the nested one decodes as OTHER */
    T_EQ_INT(hd_dec_record(&d, "\x93\x01\x92\xa1x\xc0\xd4\x01\x02", 9, 1, 3), 0);
    T_EQ_INT(d.f[1].kind, HD_DEC_OTHER);
    T_EQ_INT(d.f[2].kind, HD_DEC_OTHER);
    /* trailing bytes after the record are ignored, as before */
    T_EQ_INT(dec("\x91\x01garbage", 9, 1, 1), 0);
    /* array32 / map32 (left out of the differential check): small ones decode */
    T_EQ_INT(hd_dec_record(&d, "\xdd\x00\x00\x00\x03\x01\xdf\x00\x00\x00\x00\xd0\xff", 13, 1, 3), 0);
    T_EQ_INT(d.n, 3);
    T_EQ_INT(d.f[1].kind, HD_DEC_OTHER);
    T_EQ_INT(d.f[2].kind, HD_DEC_INT);
    T_EQ_INT((int64_t)d.f[2].u, -1);
    T_EQ_INT(hd_dec_record(&d, "\x93\x01\xd3\x00\x00\x00\x00\x00\x00\x00\x05\xa0", 12, 1, 3), 0);
    T_EQ_INT(d.f[1].kind, HD_DEC_UINT); /* a signed encoding of 5 is a positive integer */
    T_EQ_INT(d.f[1].u, 5);
    T_EQ_INT(d.f[2].kind, HD_DEC_STR);
    T_EQ_INT(d.f[2].s.n, 0);
    differential();
    T_DONE();
}

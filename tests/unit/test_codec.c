/* codec: records round-trip, and damaged records are refused cheaply. Regression for
 * tests/fuzz/corpus/store_records/regress-map32-huge-count: a container header claiming
 * billions of elements made msgpack-c allocate hundreds of GiB before noticing the data was
 * missing; hd_dec_record now refuses any container larger than the bytes left. */
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
    T_DONE();
}

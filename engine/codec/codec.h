/* msgpack records stored in LMDB.
 *
 * Every record is a msgpack array whose first element is the schema version of that record
 * kind. A decoder refuses (HD_ERR_SCHEMA) any version it does not know, so a store written
 * by a newer Herald is never misread. Arrays rather than maps: a follow or a queued delivery
 * is stored millions of times, and field names would double its size.
 *
 * Decoded strings and blobs point into the encoded buffer (an LMDB value): they are valid
 * only as long as that buffer is (for LMDB values: until the transaction ends).
 */
#ifndef HD_CODEC_H
#define HD_CODEC_H

#include <stddef.h>
#include <stdint.h>

struct hd_slice {
    const char *p;
    size_t n;
};

/* A growable, capped output buffer (records are at most HD_CODEC_MAX bytes). */
#define HD_CODEC_MAX (1u << 20)
struct hd_enc {
    char *buf;
    size_t len, cap;
    int err;
};

void hd_enc_init(struct hd_enc *e);
void hd_enc_fini(struct hd_enc *e);
void hd_enc_reset(struct hd_enc *e);
/* Appenders: on failure they set e->err (-ENOMEM or HD_ERR_FULL) and later calls do nothing. */
void hd_enc_array(struct hd_enc *e, uint32_t n);
void hd_enc_uint(struct hd_enc *e, uint64_t v);
void hd_enc_int(struct hd_enc *e, int64_t v);
void hd_enc_str(struct hd_enc *e, const char *s, size_t n);
void hd_enc_cstr(struct hd_enc *e, const char *s); /* NULL encodes nil */
void hd_enc_bin(struct hd_enc *e, const void *p, size_t n);
void hd_enc_nil(struct hd_enc *e);

/* A decoded record: the top-level array. */
#define HD_DEC_MAX_FIELDS 32
struct hd_dec {
    uint32_t n;
    struct {
        uint8_t kind; /* HD_DEC_* */
        uint64_t u;   /* UINT/INT value (INT stored two's complement) */
        struct hd_slice s; /* STR/BIN */
    } f[HD_DEC_MAX_FIELDS];
};
enum { HD_DEC_NIL = 0, HD_DEC_UINT, HD_DEC_INT, HD_DEC_STR, HD_DEC_BIN, HD_DEC_OTHER };

/* Decodes an array record of the expected version with at least min_fields fields (counting
 * the version). Returns 0, HD_ERR_SCHEMA (other version), or HD_ERR_INVALID (damaged). */
int hd_dec_record(struct hd_dec *d, const void *buf, size_t len, uint64_t version,
                  uint32_t min_fields);
uint64_t hd_dec_uint(const struct hd_dec *d, uint32_t i);          /* 0 if absent / not int */
struct hd_slice hd_dec_str(const struct hd_dec *d, uint32_t i);     /* {NULL,0} if absent/nil */

#endif

/* Known inboxes of the hosts that took a delivery (known.h). */
#include <string.h>

#include "codec.h"
#include "err.h"
#include "known.h"
#include "store_impl.h"

int hd_known_get(struct hd_store *st, struct hd_txn *txn, const char *host, char *buf, size_t cap,
                 int *shared)
{
    MDB_val k = {strlen(host), (void *)host}, v;
    struct hd_dec d;
    struct hd_slice s;
    int rc;

    if (k.mv_size == 0 || k.mv_size >= HD_HOST_MAX)
        return HD_ERR_INVALID;
    rc = hd_store_err(hd_mdb_get(txn, st->hostinbox, &k, &v));
    if (rc)
        return rc;
    rc = hd_dec_record(&d, v.mv_data, v.mv_size, 1, 3);
    if (rc)
        return rc;
    s = hd_dec_str(&d, 2);
    if (!s.p || s.n == 0)
        return HD_ERR_NOT_FOUND;
    if (s.n >= cap)
        return HD_ERR_FULL;
    memcpy(buf, s.p, s.n);
    buf[s.n] = 0;
    *shared = hd_dec_uint(&d, 1) != 0;
    return 0;
}

int hd_known_note(struct hd_store *st, struct hd_txn *txn, const char *host, const char *inbox,
                  size_t inbox_len, int shared)
{
    MDB_val k = {strlen(host), (void *)host}, v;
    struct hd_dec d;
    struct hd_enc e;
    int rc;

    if (k.mv_size == 0 || k.mv_size >= HD_HOST_MAX || inbox_len == 0)
        return HD_ERR_INVALID;
    rc = hd_mdb_get(txn, st->hostinbox, &k, &v);
    if (rc == 0 && (!shared || (hd_dec_record(&d, v.mv_data, v.mv_size, 1, 3) == 0 &&
                                hd_dec_uint(&d, 1) != 0)))
        return 0; /* one recorded already, and this one is no better */
    if (rc && rc != MDB_NOTFOUND)
        return hd_store_err(rc);
    hd_enc_init(&e);
    hd_enc_array(&e, 3);
    hd_enc_uint(&e, 1);
    hd_enc_uint(&e, shared ? 1 : 0);
    hd_enc_str(&e, inbox, inbox_len);
    rc = e.err;
    if (!rc) {
        v.mv_size = e.len;
        v.mv_data = e.buf;
        rc = hd_store_err(hd_mdb_put(txn, st->hostinbox, &k, &v, 0));
    }
    hd_enc_fini(&e);
    return rc;
}

/* Herald error codes.
 *
 * Functions return 0 on success and a negative value on failure: either a
 * negative errno passed through unchanged (as liburing does) or one of the
 * HD_ERR_* codes below, which live in -1999..-1000. hd_strerror() covers both.
 */
#ifndef HD_ERR_H
#define HD_ERR_H

/* Room for one short error reason, NUL included (queue records, metrics, logs). */
#define HD_ERRTEXT_MAX 160

enum {
    HD_ERR_BASE = -1000,
    HD_ERR_INVALID = -1001,        /* malformed input (JSON, URL, PEM, flag) */
    HD_ERR_NOT_FOUND = -1002,      /* no such record */
    HD_ERR_DUPLICATE = -1003,      /* record already exists (activity id) */
    HD_ERR_SCHEMA = -1004,         /* stored record of unknown schema version */
    HD_ERR_STORE = -1005,          /* LMDB failure */
    HD_ERR_CRYPTO = -1006,         /* signing / key failure */
    HD_ERR_DNS = -1007,            /* name resolution failed */
    HD_ERR_DNS_NXDOMAIN = -1008,   /* name does not exist */
    HD_ERR_PRIVATE_ADDR = -1009,   /* destination is not a public address */
    HD_ERR_CONNECT = -1010,        /* TCP connect failed / refused */
    HD_ERR_TLS = -1011,            /* TLS handshake or record failure */
    HD_ERR_TLS_VERIFY = -1012,     /* certificate or host name verification failed */
    HD_ERR_TIMEOUT_CONNECT = -1013,
    HD_ERR_TIMEOUT_TLS = -1014,
    HD_ERR_TIMEOUT_RESPONSE = -1015,
    HD_ERR_PROTOCOL = -1016,       /* peer violated HTTP/1.1 or HTTP/2 */
    HD_ERR_RESET = -1017,          /* connection reset / closed before a complete response */
    HD_ERR_TOO_LARGE = -1018,      /* response headers over their cap */
    HD_ERR_CANCELLED = -1019,      /* request cancelled locally (shutdown) */
    HD_ERR_REFUSED_STREAM = -1020, /* h2 stream refused / GOAWAY before processing: safe to retry */
    HD_ERR_BUSY = -1021,           /* store locked by another process */
    HD_ERR_NO_KEY = -1022,         /* actor has no signing key */
    HD_ERR_FULL = -1023,           /* a bounded queue or buffer is full */
    HD_ERR_LAST = -1024
};

/* Returns a static, human-readable description of err (negative errno or HD_ERR_*). */
const char *hd_strerror(int err);

/* Returns 1 when a delivery that failed with transport error err should be retried later. */
int hd_err_is_transient(int err);

#endif

#include <string.h>

#include "err.h"

static const char *const hd_errstr[] = {
    [0] = "unknown Herald error",
    [1] = "invalid input",
    [2] = "not found",
    [3] = "duplicate",
    [4] = "stored record has an unknown schema version",
    [5] = "store (LMDB) failure",
    [6] = "cryptographic failure",
    [7] = "DNS resolution failed",
    [8] = "DNS: no such name",
    [9] = "destination address is not public",
    [10] = "connection failed",
    [11] = "TLS failure",
    [12] = "TLS certificate verification failed",
    [13] = "connect timeout",
    [14] = "TLS handshake timeout",
    [15] = "response timeout",
    [16] = "HTTP protocol error",
    [17] = "connection closed before a complete response",
    [18] = "response headers too large",
    [19] = "cancelled",
    [20] = "stream refused by peer",
    [21] = "store is in use by another process",
    [22] = "actor has no signing key",
    [23] = "queue full",
};

const char *hd_strerror(int err)
{
    if (err <= HD_ERR_BASE && err > HD_ERR_LAST) {
        int i = HD_ERR_BASE - err;
        if ((size_t)i < sizeof(hd_errstr) / sizeof(hd_errstr[0]) && hd_errstr[i])
            return hd_errstr[i];
        return hd_errstr[0];
    }
    if (err < 0)
        return strerror(-err);
    return "success";
}

int hd_err_is_transient(int err)
{
    switch (err) {
    case HD_ERR_INVALID:
    case HD_ERR_PRIVATE_ADDR:
    case HD_ERR_NO_KEY:
    case HD_ERR_SCHEMA:
        return 0;
    default:
        return 1;
    }
}

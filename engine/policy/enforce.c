/* Rule enforcement on queued deliveries (see enforce.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "enforce.h"
#include "err.h"
#include "hostrec.h"
#include "qview.h"
#include "queue.h"

#define ENFORCE_NAMES_MAX (64u << 20)

/* Appends name (with its NUL) to the growing list *names. Returns 0, -ENOMEM or HD_ERR_FULL. */
static int names_add(char **names, size_t *len, size_t *cap, const char *name)
{
    size_t n = strlen(name) + 1;

    if (*len + n > *cap) {
        size_t nc = *cap ? *cap * 2 : 4096;
        char *p;
        while (nc < *len + n)
            nc *= 2;
        if (nc > ENFORCE_NAMES_MAX)
            return HD_ERR_FULL;
        p = realloc(*names, nc);
        if (!p)
            return -ENOMEM;
        *names = p;
        *cap = nc;
    }
    memcpy(*names + *len, name, n);
    *len += n;
    return 0;
}

int hd_rules_enforce(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                     const struct hd_rules *r, uint64_t *dropped, uint64_t *hosts)
{
    struct hd_host_iter it;
    char host[HD_HOST_MAX], *names = NULL;
    size_t len = 0, cap = 0;
    uint64_t nh = 0, nd = 0;
    int rc;

    if (hd_rules_count(r) == 0 && hd_rules_snapshot_mode(r) == HD_MODE_OPEN)
        goto done; /* nothing refused */
    /* Collect first, then drop: dropping rewrites host records under the walk. */
    rc = hd_host_iter_open(st, txn, &it);
    while (rc == 0 && (rc = hd_host_iter_next(&it, host, NULL)) == 0)
        if (!hd_rules_allows(r, host))
            rc = names_add(&names, &len, &cap, host);
    hd_host_iter_close(&it);
    if (rc != HD_ERR_NOT_FOUND)
        goto out;
    for (size_t off = 0; off < len; off += strlen(names + off) + 1) {
        uint64_t n = 0;
        /* Kept as dead letters ("blocked"): `herald dead retry` after an unblock. */
        rc = hd_qview_block_host(st, txn, c, names + off, hd_wall_ms(), &n);
        if (rc)
            goto out;
        nd += n;
        if (n)
            nh++;
    }
done:
    if (dropped)
        *dropped = nd;
    if (hosts)
        *hosts = nh;
    rc = 0;
out:
    free(names);
    return rc;
}

/* What the command-line modules share (see cli_util.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "clock.h"
#include "err.h"

int hd_cli_open_store(const char *db, struct hd_store **st, const char *cmd)
{
    int rc = hd_store_open(st, db, 0);
    if (rc) {
        fprintf(stderr, "herald%s%s: cannot open store %s: %s\n", cmd ? " " : "", cmd ? cmd : "",
                db, hd_strerror(rc));
        return 1;
    }
    return 0;
}

void hd_cli_print_json(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(o);
}

/* Moves buf (n bytes used) to a buffer of cap + 1 bytes and wipes the old one: realloc could
 * leave a copy of a key behind in freed memory. */
static char *grow(char *buf, size_t n, size_t cap)
{
    char *p = malloc(cap + 1);
    if (p && n)
        memcpy(p, buf, n);
    if (buf) {
        explicit_bzero(buf, n);
        free(buf);
    }
    return p;
}

int hd_cli_read_file(const char *path, size_t max, int flags, char **out, size_t *len)
{
    int use_stdin = (flags & HD_CLI_READ_STDIN) && strcmp(path, "-") == 0;
    FILE *f = use_stdin ? stdin : fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    if (!f)
        return -errno;
    for (;;) {
        size_t r;
        if (n == cap) {
            if (cap > max) {
                rc = -EFBIG;
                break;
            }
            cap = cap ? cap * 2 : 65536;
            if (cap > max)
                cap = max + 1; /* one byte more than allowed tells "too long" from "exactly max" */
            buf = grow(buf, n, cap);
            if (!buf) {
                rc = -ENOMEM;
                break;
            }
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    if (!rc && ferror(f))
        rc = -EIO;
    if (!rc && n > max)
        rc = -EFBIG;
    if (!use_stdin)
        fclose(f);
    if (rc) {
        if (buf) {
            explicit_bzero(buf, n);
            free(buf);
        }
        return rc;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

int hd_cli_live_get(struct hd_store *st, struct hd_txn *txn, const char *host, uint64_t now_ms,
                    struct hd_live *out)
{
    if (hd_live_get(st, txn, host, out) == 0 && out->updated_ms + HD_LIVE_FRESH_MS >= now_ms)
        return 1;
    memset(out, 0, sizeof(*out));
    return 0;
}

int hd_cli_hosts_walk(struct hd_store *st, struct hd_txn *txn, size_t limit, hd_cli_host_cb cb,
                      void *user_data)
{
    struct hd_host_iter it;
    struct hd_host_rec rec;
    struct hd_live live;
    char name[HD_HOST_MAX];
    uint64_t now = hd_wall_ms();
    size_t n = 0;
    int rc;

    rc = hd_host_iter_open(st, txn, &it);
    if (rc)
        return rc;
    while ((limit == 0 || n < limit) && (rc = hd_host_iter_next(&it, name, &rec)) == 0) {
        int fresh = hd_cli_live_get(st, txn, name, now, &live);
        n++;
        rc = cb(name, &rec, fresh ? &live : NULL, user_data);
        if (rc)
            break;
    }
    hd_host_iter_close(&it);
    return rc == HD_ERR_NOT_FOUND ? 0 : rc;
}

/* TLS sessions of a run: the table the loop threads' HTTP clients share (net/tlscache.h),
 * filled from the store when the run starts and written back to it in batches, by the run's
 * main thread every TICKETS_SAVE_MS and once more at the stop (store/tlssess.h). A
 * handshake never waits for the store. */
#include <errno.h>
#include <stdlib.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "sched_impl.h"
#include "tlscache.h"
#include "tlssess.h"

static int load_one(const struct hd_tlssess_rec *rec, void *user_data)
{
    /* A record the table refuses (too big) is skipped: its host gets a full handshake. */
    int rc = hd_tls_cache_put(user_data, rec->host, rec->port, rec->der, rec->len,
                              rec->expires_ms, 0, hd_wall_ms());
    return rc == -ENOMEM ? rc : 0;
}

int hd_sched_tickets_open(struct hd_store *st, size_t max, struct hd_tls_cache **out)
{
    struct hd_tls_cache *c;
    long n;
    int rc = hd_tls_cache_new(&c, max);

    if (rc)
        return rc;
    n = hd_tlssess_load(st, hd_wall_ms(), max ? max : HD_TLS_CACHE_MAX_DEFAULT, load_one, c);
    if (n < 0) {
        /* Resumption is an optimisation: a store that cannot give its sessions costs full
         * handshakes, not the run. */
        HD_LOG(HD_LOG_WARN, "run", "msg=\"cannot load saved TLS sessions\" err=\"%s\"",
               hd_strerror((int)n));
    } else if (n > 0) {
        HD_LOG(HD_LOG_INFO, "run", "msg=\"TLS sessions loaded\" count=%ld", n);
    }
    *out = c;
    return 0;
}

static int save_group(const struct hd_tls_cache_rec *recs, size_t n, void *user_data)
{
    struct hd_tlssess_rec *v = calloc(n, sizeof(*v));
    int rc;

    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        v[i].host = recs[i].host;
        v[i].port = recs[i].port;
        v[i].der = recs[i].der;
        v[i].len = recs[i].len;
        v[i].expires_ms = recs[i].expires_ms;
    }
    rc = hd_tlssess_save(user_data, v, n);
    free(v);
    return rc;
}

long hd_sched_tickets_save(struct hd_store *st, struct hd_tls_cache *c)
{
    long n;

    if (!c)
        return 0;
    n = hd_tls_cache_take_dirty(c, TICKETS_SAVE_GROUP, hd_wall_ms(), save_group, st);
    if (n < 0)
        HD_LOG(HD_LOG_WARN, "run", "msg=\"cannot save TLS sessions\" err=\"%s\"",
               hd_strerror((int)n));
    return n;
}

/* Enqueue: an activity stored once, one queue entry per destination, host counts, and the
 * ordering and cancellation records of the activity (see queue.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue_impl.h"
#include "actstat.h"
#include "err.h"
#include "hostrec.h"

/* Deliveries to parsed URLs: formatted and handed to hd_queue_enqueue_dests (one code path,
 * so ordering and per-host aggregation hold for every enqueue). */
int hd_queue_enqueue(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                     const struct hd_activity_in *a, const struct hd_url *urls,
                     const uint8_t *flags, size_t n, uint64_t now_ms, uint64_t *seq)
{
    struct hd_qdest *d = NULL;
    char *arena = NULL;
    size_t alen = 0, acap = 0;
    int rc = 0;

    if (n) {
        d = calloc(n, sizeof(*d));
        if (!d)
            return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        char inbox[HD_URL_MAX + HD_HOST_MAX + 16];
        size_t il;
        rc = hd_url_format(&urls[i], inbox, sizeof(inbox));
        if (rc)
            goto out;
        il = strlen(inbox);
        if (alen + il > acap) {
            size_t nc = acap ? acap * 2 : 4096;
            char *p;
            while (nc < alen + il)
                nc *= 2;
            p = realloc(arena, nc);
            if (!p) {
                rc = -ENOMEM;
                goto out;
            }
            arena = p;
            acap = nc;
        }
        memcpy(arena + alen, inbox, il);
        d[i].inbox = (const char *)(uintptr_t)alen; /* offset until the arena stops moving */
        d[i].inbox_len = (uint32_t)il;
        d[i].host = urls[i].host;
        d[i].host_len = (uint32_t)strlen(urls[i].host);
        d[i].flags = flags ? flags[i] : 0;
        alen += il;
    }
    for (size_t i = 0; i < n; i++)
        d[i].inbox = arena + (uintptr_t)d[i].inbox;
    rc = hd_queue_enqueue_dests(st, txn, c, a, d, n, now_ms, seq);
out:
    free(d);
    free(arena);
    return rc;
}

/* msgpack of a fresh queue entry, written by hand: this runs once per delivery of a fan-out
 * (70,000 times for a post to a million followers), where the generic packer's per-element
 * callbacks were a fifth of the time. Same record as hd_queue_ent_put writes:
 * [1, inbox, 0, not_before, enqueued_ms, 0, nil, flags]. Returns the length (buf >= inbox_len
 * + 48). */
static size_t pack_fresh_qval(uint8_t *buf, const char *inbox, size_t inbox_len, uint64_t now_ms,
                              uint64_t not_before, uint32_t flags)
{
    size_t o = 0;
    buf[o++] = 0x98; /* array of 8 */
    buf[o++] = 0x01;
    if (inbox_len < 32) {
        buf[o++] = (uint8_t)(0xa0 | inbox_len);
    } else if (inbox_len < 256) {
        buf[o++] = 0xd9;
        buf[o++] = (uint8_t)inbox_len;
    } else {
        buf[o++] = 0xda;
        buf[o++] = (uint8_t)(inbox_len >> 8);
        buf[o++] = (uint8_t)inbox_len;
    }
    memcpy(buf + o, inbox, inbox_len);
    o += inbox_len;
    buf[o++] = 0x00; /* attempts */
    o += hd_mp_uint(buf + o, not_before); /* a hold, or 0 */
    o += hd_mp_uint(buf + o, now_ms);
    buf[o++] = 0x00; /* status */
    buf[o++] = 0xc0; /* error: nil */
    o += hd_mp_uint(buf + o, flags);
    return o;
}

static int cmp_qdest(const void *pa, const void *pb)
{
    const struct hd_qdest *a = pa, *b = pb;
    size_t n = a->host_len < b->host_len ? a->host_len : b->host_len;
    int c = memcmp(a->host, b->host, n);
    if (c)
        return c;
    if (a->host_len != b->host_len)
        return a->host_len < b->host_len ? -1 : 1;
    n = a->inbox_len < b->inbox_len ? a->inbox_len : b->inbox_len;
    c = memcmp(a->inbox, b->inbox, n);
    if (c)
        return c;
    return a->inbox_len < b->inbox_len ? -1 : a->inbox_len > b->inbox_len;
}

static int cmp_host(const struct hd_qdest *a, const struct hd_qdest *b)
{
    size_t n = a->host_len < b->host_len ? a->host_len : b->host_len;
    int c = memcmp(a->host, b->host, n);
    if (c)
        return c;
    return a->host_len < b->host_len ? -1 : a->host_len > b->host_len;
}

/* Orders destinations by host. An audience arrives already in (nearly) host order, since its
 * rows sort by URL, so only the part after the longest ordered prefix is sorted, then merged
 * with the prefix: O(n) for a post to followers plus a few explicit recipients. */
static int sort_dests(struct hd_qdest *d, size_t n)
{
    struct hd_qdest *tmp;
    size_t p = 1, i, j, o;

    while (p < n && cmp_host(&d[p - 1], &d[p]) <= 0)
        p++;
    if (p >= n)
        return 0;
    if (p < n - p) {
        qsort(d, n, sizeof(*d), cmp_qdest);
        return 0;
    }
    qsort(d + p, n - p, sizeof(*d), cmp_qdest);
    tmp = malloc(n * sizeof(*tmp));
    if (!tmp)
        return -ENOMEM;
    for (i = 0, j = p, o = 0; i < p || j < n;) {
        if (j >= n || (i < p && cmp_host(&d[i], &d[j]) <= 0))
            tmp[o++] = d[i++];
        else
            tmp[o++] = d[j++];
    }
    memcpy(d, tmp, n * sizeof(*d));
    free(tmp);
    return 0;
}

static int objseq_put(struct hd_store *st, struct hd_txn *txn, const char *obj, uint64_t origin,
                      uint64_t last)
{
    uint8_t b[16];
    MDB_val k = {strlen(obj), (void *)obj}, v = {16, b};
    hd_be64(b, origin);
    hd_be64(b + 8, last);
    int rc = hd_store_err(hd_mdb_put(txn, st->objseq, &k, &v, 0));
    return rc ? rc : hd_gen_bump(st, txn, HD_GEN_OBJECTS); /* a Delete may now be queued */
}

/* Computes what activity s must not overtake, and records s as the latest about its object. */
static int order_deps(struct hd_store *st, struct hd_txn *txn, const struct hd_activity_in *a,
                      uint64_t s, uint64_t after[2], int *is_origin)
{
    const char *t = a->type, *obj = a->object_id;
    uint64_t origin, last;
    int rc;

    after[0] = after[1] = 0;
    *is_origin = 0;
    if (!t || !obj || !*obj || strlen(obj) > 500)
        return 0;
    if (!strcmp(t, "Undo")) {
        rc = hd_queue_find_activity(st, txn, obj, &origin);
        if (rc == 0)
            after[0] = origin;
        return rc == HD_ERR_NOT_FOUND || rc == HD_ERR_INVALID ? 0 : rc;
    }
    if (strcmp(t, "Create") && strcmp(t, "Update") && strcmp(t, "Delete"))
        return 0;
    rc = hd_queue_objseq_get(st, txn, obj, &origin, &last);
    if (rc)
        return rc;
    if (strcmp(t, "Create") != 0) {
        after[0] = origin;
        after[1] = last != origin ? last : 0;
    } else if (!origin) {
        *is_origin = 1;
    }
    return objseq_put(st, txn, obj, origin ? origin : s, s);
}

static int cmp_be32(const void *a, const void *b)
{
    uint32_t x = hd_rd32(a), y = hd_rd32(b);
    return x < y ? -1 : x > y;
}

/* Records the hosts a Create was addressed to, for hd_queue_host_got: 8 bytes per host,
 * (hd_store_hash32 of the host name, deliveries there), sorted by hash; a hash shared by two
 * hosts of the Create sums their counts (a false "addressed" answer has odds of hosts / 2^32). */
static int objhosts_put(struct hd_store *st, struct hd_txn *txn, uint64_t seq, uint8_t *h, size_t n)
{
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    size_t i, m = 0;

    qsort(h, n, 8, cmp_be32);
    for (i = 0; i < n; i++) {
        if (m && hd_rd32(h + (m - 1) * 8) == hd_rd32(h + i * 8)) {
            hd_be32(h + (m - 1) * 8 + 4, hd_rd32(h + (m - 1) * 8 + 4) + hd_rd32(h + i * 8 + 4));
            continue;
        }
        memmove(h + m * 8, h + i * 8, 8);
        m++;
    }
    hd_be64(kb, seq);
    v.mv_size = m * 8;
    v.mv_data = h;
    return hd_store_err(hd_mdb_put(txn, st->objhosts, &k, &v, 0));
}

int hd_queue_enqueue_dests(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                           const struct hd_activity_in *a, struct hd_qdest *d, size_t n,
                           uint64_t now_ms, uint64_t *seq)
{
    uint8_t sb[8], key[HD_QKEY_MAX], last[HD_QKEY_MAX], vbuf[HD_URL_MAX + HD_HOST_MAX + 64];
    uint64_t s, after[2];
    struct hd_counters c0 = *c;
    struct hd_actstat as;
    uint32_t pflags = a->priority == HD_PRIO_HIGH  ? HD_QF_HIGH
                      : a->priority == HD_PRIO_LOW ? HD_QF_LOW
                                                   : 0;
    size_t last_len = 0, nhosts = 0;
    int have_last = 0, append, is_origin = 0;
    uint8_t *hosts8 = NULL; /* objhosts record of a Create: (hash, count) per host */
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    struct hd_enc e;
    size_t i, j;
    int rc;

    if (n > UINT32_MAX)
        return HD_ERR_INVALID;
    rc = hd_queue_find_activity(st, txn, a->id, &s);
    if (rc == 0) {
        /* A duplicate, unless every delivery of it was cancelled before any was sent (an
         * edit during a hold: the platform cancels and enqueues the edited activity). */
        struct hd_actstat old;
        rc = hd_actstat_get(st, txn, s, &old);
        if (rc && rc != HD_ERR_NOT_FOUND)
            return rc;
        if (rc || !(old.flags & HD_ACTSTAT_CANCELLED) || old.attempted || old.done ||
            old.queued) {
            *seq = s;
            return HD_ERR_DUPLICATE;
        }
    } else if (rc != HD_ERR_NOT_FOUND) {
        return rc;
    }
    s = c->next_seq++;
    c->activities++;
    hd_be64(sb, s);
    hd_enc_init(&e);
    rc = order_deps(st, txn, a, s, after, &is_origin);
    if (rc)
        goto out;
    if (is_origin && n && !(hosts8 = malloc(n * 8))) {
        rc = -ENOMEM;
        goto out;
    }

    hd_enc_array(&e, 9);
    hd_enc_uint(&e, 1);
    hd_enc_cstr(&e, a->id);
    hd_enc_cstr(&e, a->type);
    hd_enc_cstr(&e, a->actor);
    hd_enc_cstr(&e, a->object_id);
    hd_enc_uint(&e, now_ms);
    hd_enc_bin(&e, a->body, a->body_len);
    hd_enc_uint(&e, after[0]);
    hd_enc_uint(&e, after[1]);
    rc = e.err;
    if (rc)
        goto out;
    k.mv_size = 8;
    k.mv_data = sb;
    v.mv_size = e.len;
    v.mv_data = e.buf;
    rc = hd_store_err(hd_mdb_put(txn, st->acts, &k, &v, 0));
    if (rc)
        goto out;
    k.mv_size = strlen(a->id);
    k.mv_data = (void *)a->id;
    v.mv_size = 8;
    v.mv_data = sb;
    rc = hd_store_err(hd_mdb_put(txn, st->actid, &k, &v, 0));
    if (rc)
        goto out;
    rc = hd_queue_actrem_put(st, txn, s, (uint32_t)n);
    if (rc)
        goto out;

    /* Host order: the queue's key order (host\0seq\idx), so consecutive puts touch
     * neighbouring pages, and one host record update per host. */
    rc = sort_dests(d, n);
    if (rc)
        goto out;
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->queue, &cur));
    if (rc)
        goto out;
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size <= sizeof(last)) {
        memcpy(last, k.mv_data, k.mv_size);
        last_len = k.mv_size;
        have_last = 1;
    } else if (rc == 0 || rc != MDB_NOTFOUND) {
        rc = hd_store_err(rc ? rc : MDB_BAD_VALSIZE);
        goto out;
    }
    rc = 0;
    for (i = 0; i < n; i = j) {
        char host[HD_HOST_MAX];

        if (d[i].host_len == 0 || d[i].host_len >= HD_HOST_MAX) {
            rc = HD_ERR_INVALID;
            goto out;
        }
        memcpy(host, d[i].host, d[i].host_len);
        host[d[i].host_len] = 0;
        for (j = i; j < n && d[j].host_len == d[i].host_len &&
                    !memcmp(d[j].host, d[i].host, d[i].host_len);
             j++) {
            size_t kl = hd_queue_key(key, host, s, (uint32_t)j);
            if (d[j].inbox_len > HD_URL_MAX + HD_HOST_MAX + 16) {
                rc = HD_ERR_INVALID;
                goto out;
            }
            k.mv_size = kl;
            k.mv_data = key;
            v.mv_size = pack_fresh_qval(vbuf, d[j].inbox, d[j].inbox_len, now_ms,
                                        a->not_before_ms, d[j].flags | pflags);
            v.mv_data = vbuf;
            /* Past the last key of the queue (a drained queue, the usual case for a fan-out)
             * append: pages fill up instead of splitting in half, which halves the pages a
             * large fan-out writes. */
            append = !have_last || memcmp(key, last, kl < last_len ? kl : last_len) > 0 ||
                     (memcmp(key, last, kl < last_len ? kl : last_len) == 0 && kl > last_len);
            rc = hd_store_err(mdb_cursor_put(cur, &k, &v, append ? MDB_APPEND : 0));
            if (rc)
                goto out;
            if (pflags) {
                rc = hd_queue_prio_put(st, txn, key, kl, pflags);
                if (rc)
                    goto out;
            }
            if (append) {
                memcpy(last, key, kl);
                last_len = kl;
                have_last = 1;
            }
        }
        rc = hd_host_add_queued(st, txn, host, strlen(host), j - i);
        if (rc)
            goto out;
        if (hosts8) {
            hd_be32(hosts8 + nhosts * 8, hd_store_hash32(host, strlen(host)));
            hd_be32(hosts8 + nhosts * 8 + 4, (uint32_t)(j - i));
            nhosts++;
        }
    }
    if (hosts8) {
        rc = objhosts_put(st, txn, s, hosts8, nhosts);
        if (rc)
            goto out;
    }
    memset(&as, 0, sizeof(as));
    as.queued = n;
    as.dropped = a->dropped;
    as.created_ms = now_ms;
    as.priority = (uint8_t)(a->priority <= HD_PRIO_LOW ? a->priority : HD_PRIO_NORMAL);
    if (a->not_before_ms > now_ms) {
        as.not_before_ms = a->not_before_ms;
        rc = hd_holds_put(st, txn, a->not_before_ms, s);
        if (rc)
            goto out;
    }
    rc = hd_actstat_put(st, txn, s, &as);
    if (!rc)
        rc = hd_holds_prune(st, txn, now_ms, 16);
    if (rc)
        goto out;
    *seq = s;
out:
    if (cur)
        mdb_cursor_close(cur);
    free(hosts8);
    hd_enc_fini(&e);
    if (rc)
        *c = c0;
    return rc;
}

/* Ownership of partitions: leases in the bucket, the node's heartbeat, checkpoints, and
 * dropping the local queue of a partition that moved away.
 *
 * A lease is the key "p.<n>" = {"node","epoch","expires_ms"}. It is claimed with a create
 * (no key yet) or a revision-checked update of a released or expired lease, and renewed
 * every heartbeat with a revision-checked update: two nodes can never both succeed from the
 * same revision. The owner sends to the partition's hosts only until the start of its last
 * successful renewal + lease - margin by its own monotonic clock (the fence); another node
 * claims only after expires_ms by its wall clock, so clocks may differ by up to the margin.
 *
 * Who should own a partition: rendezvous hashing over the live nodes (a heartbeat within one
 * lease), so a node joining or leaving moves only the partitions it gains or had. An owner
 * that is no longer the choice releases the lease (checkpoint written first), and the chosen
 * node claims it. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "hostrec.h"
#include "log.h"
#include "node_impl.h"
#include "queue.h"

/* ------------------------------------------------------------- the bucket's mirror */

static void apply_entry(struct hd_cluster_node *n, kvEntry *e)
{
    const char *key = kvEntry_Key(e);
    int del = kvEntry_Operation(e) != kvOp_Put;
    json_t *v = NULL;
    json_error_t jerr;
    char *end;

    if (!del)
        v = json_loadb(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), 0, &jerr);
    if (strncmp(key, "p.", 2) == 0) {
        unsigned long i = strtoul(key + 2, &end, 10);
        struct hd_cn_part *p;
        if (*end || i >= n->o.partitions)
            goto out;
        p = &n->p[i];
        p->rev = kvEntry_Revision(e);
        p->present = !del && v;
        if (p->present) {
            snprintf(p->owner, sizeof(p->owner), "%s",
                     json_string_value(json_object_get(v, "node")) ?: "");
            p->epoch = (uint64_t)json_integer_value(json_object_get(v, "epoch"));
            p->expires_ms = (uint64_t)json_integer_value(json_object_get(v, "expires_ms"));
        } else {
            p->owner[0] = 0;
            p->expires_ms = 0;
        }
    } else if (strncmp(key, "cp.", 3) == 0) {
        unsigned long i = strtoul(key + 3, &end, 10);
        if (*end || i >= n->o.partitions)
            goto out;
        n->p[i].cp_known = !del && v;
        n->p[i].cp = v ? (uint64_t)json_integer_value(json_object_get(v, "seq")) : 0;
    } else if (strncmp(key, "n.", 2) == 0) {
        size_t j;
        for (j = 0; j < n->nnodes; j++)
            if (strcmp(n->nodes[j].name, key + 2) == 0)
                break;
        if (del) {
            if (j < n->nnodes)
                n->nodes[j] = n->nodes[--n->nnodes];
            goto out;
        }
        if (j == n->nnodes) {
            if (n->nnodes == HD_CLUSTER_MAX_NODES || hd_cluster_node_name_ok(key + 2))
                goto out;
            n->nnodes++;
            snprintf(n->nodes[j].name, sizeof(n->nodes[j].name), "%s", key + 2);
        }
        n->nodes[j].ts_ms = (uint64_t)json_integer_value(json_object_get(v, "ts_ms"));
        n->nodes[j].backlog = (uint64_t)json_integer_value(json_object_get(v, "backlog"));
    }
out:
    json_decref(v);
}

int hd_cn_watch_start(struct hd_cluster_node *n)
{
    uint64_t end = hd_cn_mono_ms() + 10000;
    kvEntry *e;
    natsStatus s = kvStore_WatchAll(&n->w, n->c->kv, NULL);

    if (s != NATS_OK) {
        HD_LOG(HD_LOG_ERROR, "cluster", "msg=\"cannot watch the bucket: %s\"",
               natsStatus_GetText(s));
        n->w = NULL;
        return HD_ERR_CONNECT;
    }
    /* The current values first, up to the marker (a NULL entry). */
    while (hd_cn_mono_ms() < end) {
        e = NULL;
        s = kvWatcher_Next(&e, n->w, 1000);
        if (s == NATS_TIMEOUT)
            continue;
        if (s != NATS_OK)
            break;
        if (!e)
            return 0;
        apply_entry(n, e);
        kvEntry_Destroy(e);
    }
    HD_LOG(HD_LOG_ERROR, "cluster", "msg=\"cannot read the bucket\"");
    kvWatcher_Destroy(n->w);
    n->w = NULL;
    return HD_ERR_CONNECT;
}

void hd_cn_watch_stop(struct hd_cluster_node *n)
{
    if (n->w) {
        kvWatcher_Stop(n->w);
        kvWatcher_Destroy(n->w);
        n->w = NULL;
    }
}

void hd_cn_watch(struct hd_cluster_node *n, int64_t wait_ms)
{
    for (int i = 0; i < 4096; i++) {
        kvEntry *e = NULL;
        natsStatus s;

        if (!n->w) { /* lost with the connection: start again (its current values first) */
            if (hd_cn_watch_start(n) != 0)
                return;
        }
        s = kvWatcher_Next(&e, n->w, i == 0 && wait_ms > 0 ? wait_ms : 1);
        if (s == NATS_TIMEOUT)
            return;
        if (s != NATS_OK) {
            HD_LOG(HD_LOG_WARN, "cluster", "msg=\"bucket watcher: %s\"", natsStatus_GetText(s));
            hd_cn_watch_stop(n);
            return;
        }
        if (e) {
            apply_entry(n, e);
            kvEntry_Destroy(e);
        }
    }
}

/* ------------------------------------------------------------- local queues */

/* Drops this store's queued deliveries of partition part (all partitions: part < 0). */
static int drop_partition(struct hd_cluster_node *n, long part)
{
    struct hd_host_iter it;
    struct hd_host_rec rec;
    struct hd_txn *txn = NULL;
    struct hd_counters c;
    char name[HD_HOST_MAX], *names = NULL;
    size_t nn = 0, cap = 0;
    int rc;

    rc = hd_store_begin(n->st, 0, &txn);
    if (rc)
        return rc;
    rc = hd_host_iter_open(n->st, txn, &it);
    while (rc == 0 && (rc = hd_host_iter_next(&it, name, NULL)) == 0) {
        if (part >= 0 && hd_cluster_partition(name, strlen(name), n->o.partitions) != part)
            continue;
        rc = hd_host_iter_rec(&it, &rec);
        if (rc || rec.queued == 0)
            continue;
        if (nn == cap) {
            char *p2 = realloc(names, (cap ? cap * 2 : 16) * HD_HOST_MAX);
            if (!p2) {
                rc = -ENOMEM;
                break;
            }
            names = p2;
            cap = cap ? cap * 2 : 16;
        }
        memcpy(names + nn++ * HD_HOST_MAX, name, HD_HOST_MAX);
    }
    hd_host_iter_close(&it);
    hd_store_abort(txn);
    if (rc != HD_ERR_NOT_FOUND && rc != 0) {
        free(names);
        return rc;
    }
    rc = 0;
    if (nn) {
        rc = hd_store_begin(n->st, 1, &txn);
        if (rc == 0)
            rc = hd_counters_get(n->st, txn, &c);
        for (size_t i = 0; rc == 0 && i < nn; i++)
            rc = hd_queue_drop(n->st, txn, &c, names + i * HD_HOST_MAX, NULL, NULL);
        if (rc == 0)
            rc = hd_counters_put(n->st, txn, &c);
        if (rc == 0)
            rc = hd_store_commit(txn);
        else
            hd_store_abort(txn);
    }
    free(names);
    return rc;
}

int hd_cn_drop_all(struct hd_cluster_node *n)
{
    return drop_partition(n, -1);
}

/* ------------------------------------------------------------- checkpoints */

static int first_seq_cb(const struct hd_qent *e, void *user_data)
{
    *(uint64_t *)user_data = e->seq;
    return 1;
}

/* Computes each owned partition's checkpoint into cp[] (UINT64_MAX: nothing outstanding). */
static int compute_cps(struct hd_cluster_node *n, uint64_t *cp)
{
    struct hd_host_iter it;
    struct hd_host_rec rec;
    struct hd_txn *txn = NULL;
    char name[HD_HOST_MAX];
    uint64_t min_local = UINT64_MAX, backlog = 0;
    int rc;

    for (unsigned i = 0; i < n->o.partitions; i++)
        cp[i] = UINT64_MAX;
    rc = hd_store_begin(n->st, 0, &txn);
    if (rc)
        return rc;
    rc = hd_host_iter_open(n->st, txn, &it);
    while (rc == 0 && (rc = hd_host_iter_next(&it, name, NULL)) == 0) {
        uint32_t p = hd_cluster_partition(name, strlen(name), n->o.partitions);
        uint64_t local = UINT64_MAX, s;
        uint8_t last[HD_QKEY_MAX];
        size_t last_len;
        int end;

        rc = hd_host_iter_rec(&it, &rec);
        if (rc || rec.queued == 0)
            continue;
        backlog += rec.queued;
        if (!n->p[p].owned)
            continue;
        if (hd_queue_scan(n->st, txn, name, NULL, 0, 1, first_seq_cb, &local, last, &last_len,
                          &end) < 0)
            continue;
        if (local == UINT64_MAX)
            continue;
        if (local < min_local)
            min_local = local;
        s = hd_cn_map_stream(n, local);
        if (s == UINT64_MAX) /* not from this run's stream: keep the partition where it is */
            s = n->p[p].cp_written ? n->p[p].cp_written : 1;
        if (s < cp[p])
            cp[p] = s;
    }
    hd_host_iter_close(&it);
    hd_store_abort(txn);
    n->backlog = backlog;
    if (rc != HD_ERR_NOT_FOUND && rc != 0)
        return rc;
    hd_cn_map_prune(n, min_local);
    return 0;
}

static int put_json(struct hd_cluster_node *n, const char *key, json_t *v, uint64_t last,
                    int check, uint64_t *rev, jsErrCode *jerr)
{
    char *s = json_dumps(v, JSON_COMPACT);
    natsStatus st;

    json_decref(v);
    if (!s)
        return -ENOMEM;
    if (check == 1)
        st = kvStore_Create(rev, n->c->kv, key, s, (int)strlen(s));
    else if (check == 2)
        st = kvStore_Update(rev, n->c->kv, key, s, (int)strlen(s), last);
    else
        st = kvStore_Put(rev, n->c->kv, key, s, (int)strlen(s));
    free(s);
    if (jerr)
        *jerr = 0;
    if (st != NATS_OK) {
        /* A revision mismatch ("wrong last sequence") is an answer; anything else a failure. */
        const char *t = nats_GetLastError(NULL);
        if (jerr && t && strstr(t, "wrong last sequence"))
            *jerr = JSStreamWrongLastSequenceErr;
        return HD_ERR_CONNECT;
    }
    return 0;
}

static void write_checkpoints(struct hd_cluster_node *n, int only_part)
{
    uint64_t *cp = malloc(n->o.partitions * sizeof(*cp)), now = hd_cn_mono_ms();
    char key[32];

    if (!cp)
        return;
    if (compute_cps(n, cp) != 0) {
        free(cp);
        return;
    }
    for (unsigned i = 0; i < n->o.partitions; i++) {
        struct hd_cn_part *p = &n->p[i];
        uint64_t v = cp[i];
        if (!p->owned || (only_part >= 0 && (unsigned)only_part != i))
            continue;
        if (p->rpos && p->rpos < v)
            v = p->rpos;
        if (!p->rpos && n->cursor < v)
            v = n->cursor;
        if (v == p->cp_written || now >= atomic_load(&n->valid_until[i]))
            continue; /* unchanged, or the lease is no longer ours to write under */
        snprintf(key, sizeof(key), "cp.%u", i);
        if (put_json(n, key, json_pack("{s:I}", "seq", (json_int_t)v), 0, 0, NULL, NULL) == 0)
            p->cp_written = v;
    }
    free(cp);
}

/* ------------------------------------------------------------- leases */

static int node_live(const struct hd_cluster_node *n, const struct hd_cn_nodeinfo *x, uint64_t now)
{
    return strcmp(x->name, n->name) == 0 || x->ts_ms + n->o.lease_ms >= now;
}

/* murmur3's finaliser: every input bit moves every output bit. */
static uint32_t fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/* Rendezvous hashing: the live node with the highest weight fmix32(hash32(node) ^
 * fmix32(partition + golden ratio)); FNV alone orders similar names alike in most partitions. */
static const char *desired(const struct hd_cluster_node *n, unsigned part, uint64_t now)
{
    const char *best = n->name;
    uint32_t best_h = 0;
    int have = 0;
    char buf[96];

    for (size_t j = 0; j <= n->nnodes; j++) {
        const char *name = j < n->nnodes ? n->nodes[j].name : n->name;
        uint32_t h;
        size_t len;
        if (j < n->nnodes && (!node_live(n, &n->nodes[j], now) || !strcmp(name, n->name)))
            continue;
        len = (size_t)snprintf(buf, sizeof(buf), "%s", name);
        h = fmix32(hd_store_hash32(buf, len) ^ fmix32(part + 0x9e3779b9u));
        if (!have || h > best_h || (h == best_h && strcmp(name, best) < 0)) {
            best = name;
            best_h = h;
            have = 1;
        }
    }
    return best;
}

static json_t *lease_json(const struct hd_cluster_node *n, const char *owner, uint64_t epoch,
                          uint64_t expires)
{
    (void)n;
    return json_pack("{s:s,s:I,s:I}", "node", owner, "epoch", (json_int_t)epoch, "expires_ms",
                     (json_int_t)expires);
}

static void period_end(struct hd_cluster_node *n, unsigned i, const char *how)
{
    struct hd_cn_part *p = &n->p[i];
    struct hd_cn_period *e;

    if (!p->nper)
        return;
    e = &p->per[(p->nper - 1) % HD_CN_PERIODS];
    if (e->end)
        return;
    e->end = how;
    e->to_ms = hd_wall_ms();
    e->sends = atomic_load(&n->sends[i]) - e->sends0;
    e->last_send_ms = atomic_load(&n->last_send_ms[i]);
}

static void lose(struct hd_cluster_node *n, unsigned i, const char *why)
{
    struct hd_cn_part *p = &n->p[i];

    atomic_store(&n->valid_until[i], 0); /* the fence closes first */
    period_end(n, i, "lost");
    p->owned = 0;
    p->rpos = 0;
    n->lost++;
    HD_LOG(HD_LOG_WARN, "cluster", "msg=\"partition lost: %s\" partition=%u sends=%" PRIu64, why,
           i, (uint64_t)atomic_load(&n->sends[i]));
    if (drop_partition(n, i) != 0)
        HD_LOG(HD_LOG_ERROR, "cluster", "msg=\"cannot drop the local queue\" partition=%u", i);
}

static void release(struct hd_cluster_node *n, unsigned i)
{
    struct hd_cn_part *p = &n->p[i];
    uint64_t rev = 0;
    char key[32];

    write_checkpoints(n, (int)i);
    atomic_store(&n->valid_until[i], 0);
    period_end(n, i, "released");
    snprintf(key, sizeof(key), "p.%u", i);
    if (put_json(n, key, lease_json(n, "", p->epoch, 0), p->my_rev, 2, &rev, NULL) != 0)
        HD_LOG(HD_LOG_WARN, "cluster", "msg=\"lease not released: it expires\" partition=%u", i);
    p->owned = 0;
    p->rpos = 0;
    n->released++;
    if (drop_partition(n, i) != 0)
        HD_LOG(HD_LOG_ERROR, "cluster", "msg=\"cannot drop the local queue\" partition=%u", i);
}

static void acquire(struct hd_cluster_node *n, unsigned i, uint64_t rev, uint64_t epoch,
                    uint64_t t0)
{
    struct hd_cn_part *p = &n->p[i];
    uint64_t cp = p->cp_known && p->cp ? p->cp : 1;

    p->owned = 1;
    p->my_rev = rev;
    p->epoch = epoch;
    p->renew_t0 = t0;
    p->cp_written = cp;
    if (cp < n->cursor) {
        p->rpos = cp; /* re-derive what the previous owner had not finished */
        p->from = 0;
    } else {
        p->rpos = 0;
        p->from = cp;
    }
    n->acquired++;
    p->per[p->nper % HD_CN_PERIODS] = (struct hd_cn_period){
        .epoch = epoch, .from_ms = hd_wall_ms(), .sends0 = atomic_load(&n->sends[i])};
    p->nper++;
    atomic_store(&n->valid_until[i], t0 + n->o.lease_ms - n->margin_ms);
    HD_LOG(HD_LOG_INFO, "cluster",
           "msg=\"partition acquired\" partition=%u epoch=%" PRIu64 " checkpoint=%" PRIu64, i,
           epoch, cp);
}

static void leases(struct hd_cluster_node *n)
{
    uint64_t wall = hd_wall_ms();
    char key[32];

    for (unsigned i = 0; i < n->o.partitions; i++) {
        struct hd_cn_part *p = &n->p[i];
        const char *want = desired(n, i, wall);
        uint64_t t0 = hd_cn_mono_ms(), rev = 0;
        jsErrCode jerr = 0;
        int rc;

        snprintf(key, sizeof(key), "p.%u", i);
        if (p->owned) {
            if (t0 >= atomic_load(&n->valid_until[i])) {
                lose(n, i, "lease not renewed in time");
                continue;
            }
            if (strcmp(want, n->name) != 0) {
                release(n, i);
                continue;
            }
            rc = put_json(n, key, lease_json(n, n->name, p->epoch, wall + n->o.lease_ms),
                          p->my_rev, 2, &rev, &jerr);
            if (rc == 0) {
                p->my_rev = rev;
                p->renew_t0 = t0;
                atomic_store(&n->valid_until[i], t0 + n->o.lease_ms - n->margin_ms);
            } else if (jerr == JSStreamWrongLastSequenceErr) {
                lose(n, i, "lease taken by another node");
            }
            continue;
        }
        if (strcmp(want, n->name) != 0)
            continue;
        if (!p->present) {
            rc = put_json(n, key, lease_json(n, n->name, p->epoch + 1, wall + n->o.lease_ms), 0,
                          p->rev ? 2 : 1, &rev, NULL);
        } else if (!p->owner[0] || wall > p->expires_ms) {
            rc = put_json(n, key, lease_json(n, n->name, p->epoch + 1, wall + n->o.lease_ms),
                          p->rev, 2, &rev, NULL);
        } else {
            continue; /* held by another live lease: its owner releases or it expires */
        }
        if (rc == 0)
            acquire(n, i, rev, p->epoch + 1, t0);
    }
}

static void heartbeat(struct hd_cluster_node *n)
{
    json_t *parts = json_array(), *v;
    char key[80];

    if (!parts)
        return;
    for (unsigned i = 0; i < n->o.partitions; i++)
        if (n->p[i].owned)
            json_array_append_new(parts, json_integer(i));
    v = json_pack("{s:I,s:I,s:I,s:o,s:I,s:I,s:I,s:I,s:I,s:b}", "ts_ms", (json_int_t)hd_wall_ms(),
                  "lease_ms", (json_int_t)n->o.lease_ms,
                  "backlog", (json_int_t)n->backlog, "partitions", parts, "stream_seq",
                  (json_int_t)n->cursor, "enqueued", (json_int_t)n->enqueued, "replayed",
                  (json_int_t)n->replayed, "refused", (json_int_t)n->refused, "lost",
                  (json_int_t)n->lost, "schema_blocked", n->schema_blocked);
    if (!v)
        return;
    snprintf(key, sizeof(key), "n.%s", n->name);
    put_json(n, key, v, 0, 0, NULL, NULL);
}

void hd_cn_tick(struct hd_cluster_node *n)
{
    heartbeat(n);
    leases(n);
    write_checkpoints(n, -1);
}

void hd_cn_release_all(struct hd_cluster_node *n)
{
    uint64_t end = hd_cn_mono_ms() + n->o.lease_ms; /* leases left expire by themselves */
    char key[80];

    if (natsConnection_Status(n->c->nc) != NATS_CONN_STATUS_CONNECTED)
        return;
    write_checkpoints(n, -1);
    for (unsigned i = 0; i < n->o.partitions; i++) {
        if (!n->p[i].owned)
            continue;
        if (hd_cn_mono_ms() >= end ||
            natsConnection_Status(n->c->nc) != NATS_CONN_STATUS_CONNECTED)
            break;
        release(n, i);
    }
    snprintf(key, sizeof(key), "n.%s", n->name);
    kvStore_Delete(n->c->kv, key); /* no longer live: others stop choosing this node */
}

void hd_cn_periods_close(struct hd_cluster_node *n)
{
    for (unsigned i = 0; i < n->o.partitions; i++)
        period_end(n, i, "stopped");
}

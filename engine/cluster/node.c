/* A cluster node: its thread follows the activity stream and enqueues the deliveries of the
 * partitions it owns; lease.c keeps the ownership (leases in the bucket), checkpoint.c the
 * per-partition high-water marks. docs/cluster.md has the design. */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "ingest.h"
#include "log.h"
#include "node_impl.h"

uint64_t hd_cn_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct hd_cluster_conn *hd_cluster_node_conn(struct hd_cluster_node *n)
{
    return n->c;
}

int hd_cluster_gate(void *user_data, const char *host, int sending)
{
    struct hd_cluster_node *n = user_data;
    uint32_t p = hd_cluster_partition(host, strlen(host), n->o.partitions);
    uint64_t now = hd_cn_mono_ms();

    if (now >= atomic_load_explicit(&n->valid_until[p], memory_order_acquire))
        return 0;
    if (sending) {
        atomic_fetch_add_explicit(&n->sends[p], 1, memory_order_relaxed);
        atomic_store_explicit(&n->last_send_ms[p], hd_wall_ms(), memory_order_relaxed);
    }
    return 1;
}

/* ------------------------------------------------------------- local seq -> stream seq */

static int map_add(struct hd_cluster_node *n, uint64_t local, uint64_t stream)
{
    if (n->nmap == n->capmap) {
        size_t nc = n->capmap ? n->capmap * 2 : 256;
        struct hd_cn_seqmap *m = realloc(n->map, nc * sizeof(*m));
        if (!m)
            return -ENOMEM;
        n->map = m;
        n->capmap = nc;
    }
    n->map[n->nmap].local = local;
    n->map[n->nmap].stream = stream;
    n->nmap++;
    return 0;
}

uint64_t hd_cn_map_stream(const struct hd_cluster_node *n, uint64_t local)
{
    uint64_t best = UINT64_MAX;
    size_t lo = 0, hi = n->nmap;

    while (lo < hi) { /* local seqs are appended in increasing order */
        size_t mid = (lo + hi) / 2;
        if (n->map[mid].local < local)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < n->nmap; i++)
        if (n->map[i].stream < best)
            best = n->map[i].stream;
    return best;
}

void hd_cn_map_prune(struct hd_cluster_node *n, uint64_t min_local)
{
    size_t i = 0;

    while (i < n->nmap && n->map[i].local < min_local)
        i++;
    if (i) {
        memmove(n->map, n->map + i, (n->nmap - i) * sizeof(*n->map));
        n->nmap -= i;
    }
}

/* ------------------------------------------------------------- expanding messages */

struct keep_ctx {
    struct hd_cluster_node *n;
    uint64_t seq;
    int replay;
};

/* Head: partitions owned, caught up, and whose checkpoint is at or below seq. Replay: the
 * partitions whose replay stands at seq. */
static int keep_host(const char *host, size_t host_len, void *user_data)
{
    struct keep_ctx *k = user_data;
    struct hd_cn_part *p = &k->n->p[hd_cluster_partition(host, host_len, k->n->o.partitions)];

    if (!p->owned)
        return 0;
    if (k->replay)
        return p->rpos == k->seq;
    return p->rpos == 0 && k->seq >= p->from;
}

/* The schema header: 1 when this version reads the message. */
static int schema_ok(natsMsg *m)
{
    const char *v = NULL;
    char want[16];

    snprintf(want, sizeof(want), "%d", HD_CLUSTER_SCHEMA);
    return natsMsgHeader_Get(m, HD_CLUSTER_SCHEMA_HEADER, &v) == NATS_OK && v &&
           strcmp(v, want) == 0;
}

/* Enqueues the owned part of message seq in txn. Returns 0 (done, refused or withheld: the
 * producer's matter, logged and counted) or a store error. */
static int expand(struct hd_cluster_node *n, struct hd_txn *txn, struct hd_counters *c,
                  natsMsg *m, uint64_t seq, int replay)
{
    struct keep_ctx k = {n, seq, replay};
    struct hd_ingest_filter f = {keep_host, &k, NULL};
    struct hd_ingest_result res;
    const char *data = natsMsg_GetData(m);
    size_t len = (size_t)natsMsg_GetDataLength(m);
    char local_id[96];
    int rc;

    rc = hd_ingest_envelope_filtered(n->st, txn, c, data, len, hd_wall_ms(), &f, &res);
    if (rc == HD_ERR_DUPLICATE && replay) {
        /* This store had the activity before (an earlier ownership of other partitions, or
         * an earlier run): the replayed deliveries get an activity record of their own. */
        n->replay_nonce++;
        snprintf(local_id, sizeof(local_id), "herald:replay:%s:%" PRIu64 ":%" PRIu64,
                 n->name, seq, n->replay_nonce ^ ((uint64_t)hd_wall_ms() << 20));
        f.local_id = local_id;
        rc = hd_ingest_envelope_filtered(n->st, txn, c, data, len, hd_wall_ms(), &f, &res);
    }
    if (rc == HD_ERR_STORE || rc == -ENOMEM)
        return rc;
    if (rc) {
        n->refused++;
        HD_LOG(rc == HD_ERR_DUPLICATE ? HD_LOG_INFO : HD_LOG_WARN, "cluster",
               "msg=\"activity not enqueued\" stream_seq=%" PRIu64 " why=\"%s\"", seq, res.why);
        return 0;
    }
    if (res.seq && res.deliveries) {
        rc = map_add(n, res.seq, seq);
        if (rc)
            return rc;
        n->enqueued += res.deliveries;
        if (replay)
            n->replayed += res.deliveries;
    }
    return 0;
}

/* Fetches message seq. Returns 1 with *m, 0 when the stream has no such message (deleted, or
 * past retention), -1 on a connection error (try later). */
static int get_msg(struct hd_cluster_node *n, uint64_t seq, natsMsg **m)
{
    jsErrCode jerr = 0;
    natsStatus s = js_GetMsg(m, n->c->js, HD_CLUSTER_STREAM, seq, NULL, &jerr);

    if (s == NATS_OK)
        return 1;
    *m = NULL;
    if (jerr == JSNoMessageFoundErr || s == NATS_NOT_FOUND)
        return 0;
    return -1;
}

/* ------------------------------------------------------------- replay reader */

/* A replay reads a run of consecutive stream messages (from a partition's checkpoint up to
 * the head), so it fetches them in batches through an ephemeral pull consumer (no acks, in
 * memory, dropped by the server after 30 s without a fetch) instead of one js_GetMsg round
 * trip each. Anything unexpected (a fetch error or time-out, a consumer that cannot be made,
 * a position the consumer is not at) closes the reader and falls back to js_GetMsg, so the
 * reader only saves round trips and never decides what is replayed. */
#define HD_CN_FETCH_MAX_BYTES (8 << 20) /* per batch; one envelope is at most 1 MiB */
#define HD_CN_FETCH_WAIT_MS 1000
#define HD_CN_READER_IDLE_S 30

static void reader_drop_batch(struct hd_cluster_node *n)
{
    if (n->rlist.Msgs)
        natsMsgList_Destroy(&n->rlist); /* the messages not taken (taken ones are NULL) */
    memset(&n->rlist, 0, sizeof(n->rlist));
    n->ridx = 0;
}

static void reader_close(struct hd_cluster_node *n)
{
    reader_drop_batch(n);
    if (n->rsub) {
        natsSubscription_Unsubscribe(n->rsub); /* deletes the ephemeral consumer */
        natsSubscription_Destroy(n->rsub);
        n->rsub = NULL;
    }
    n->rnext = 0;
}

static int reader_open(struct hd_cluster_node *n, uint64_t seq)
{
    jsSubOptions so;
    jsErrCode jerr = 0;

    reader_close(n);
    jsSubOptions_Init(&so);
    so.Stream = HD_CLUSTER_STREAM;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = seq;
    so.Config.AckPolicy = js_AckNone;
    so.Config.MemoryStorage = true;
    so.Config.InactiveThreshold = (int64_t)HD_CN_READER_IDLE_S * 1000000000;
    if (js_PullSubscribe(&n->rsub, n->c->js, HD_CLUSTER_SUBJECT, NULL, NULL, &so, &jerr) !=
        NATS_OK) {
        n->rsub = NULL;
        return -1;
    }
    n->rnext = seq;
    return 0;
}

static uint64_t msg_seq(natsMsg *m)
{
    jsMsgMetaData *md = NULL;
    uint64_t seq = 0;

    if (natsMsg_GetMetaData(&md, m) == NATS_OK) {
        seq = md->Sequence.Stream;
        jsMsgMetaData_Destroy(md);
    }
    return seq;
}

/* Message seq from the reader: 1 with *m (the caller's to destroy), 0 when the stream has no
 * such message (the next one the consumer gave is further on), -1 when the reader cannot
 * answer (the caller falls back to js_GetMsg). */
static int reader_get(struct hd_cluster_node *n, uint64_t seq, natsMsg **m)
{
    *m = NULL;
    /* rnext: every message below it was read (taken or skipped) through the reader, so the
     * next buffered one is the stream's first at or after rnext. Behind it: start again. */
    if (seq < n->rnext)
        reader_close(n);
    for (int fetched = 0;;) {
        while (n->ridx < n->rlist.Count) {
            natsMsg *x = n->rlist.Msgs[n->ridx];
            uint64_t s = x ? msg_seq(x) : 0;
            if (!s) {
                reader_close(n);
                return -1;
            }
            if (s < seq) { /* before what is asked: skipped */
                natsMsg_Destroy(x);
                n->rlist.Msgs[n->ridx++] = NULL;
                n->rnext = s + 1;
                continue;
            }
            if (s > seq)
                return 0; /* rnext <= seq < s: the stream has no message seq (deleted) */
            n->rlist.Msgs[n->ridx++] = NULL;
            n->rnext = s + 1;
            n->rmsgs++;
            *m = x;
            return 1;
        }
        if (fetched)
            return -1; /* a batch that did not reach seq */
        reader_drop_batch(n);
        if ((!n->rsub || n->rnext != seq) && reader_open(n, seq) != 0)
            return -1;
        jsFetchRequest fr;
        jsFetchRequest_Init(&fr);
        fr.Batch = HD_CN_REPLAY_BATCH;
        fr.MaxBytes = HD_CN_FETCH_MAX_BYTES;
        fr.Expires = (int64_t)HD_CN_FETCH_WAIT_MS * 1000000;
        if (natsSubscription_FetchRequest(&n->rlist, n->rsub, &fr) != NATS_OK ||
            n->rlist.Count == 0) {
            reader_close(n);
            return -1;
        }
        fetched = 1;
        n->rfetches++;
    }
}

static int refresh_last(struct hd_cluster_node *n)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;

    if (js_GetStreamInfo(&si, n->c->js, HD_CLUSTER_STREAM, NULL, &jerr) != NATS_OK)
        return -1;
    n->last_seq = si->State.LastSeq;
    n->first_seq = si->State.FirstSeq;
    jsStreamInfo_Destroy(si);
    return 0;
}

/* What step() moves in memory while its transaction is open, put back when it aborts: the
 * stream position, the replay positions, the seq map and the counters. Otherwise a failed
 * commit would leave positions past deliveries that never reached the store, and the next
 * checkpoint could skip them. */
struct step_undo {
    uint64_t pos;
    size_t nmap;
    uint64_t enqueued, replayed, refused, nonce;
    uint64_t *rpos; /* per partition, replay steps only */
};

static int undo_save(struct hd_cluster_node *n, int replay, uint64_t pos, struct step_undo *u)
{
    u->pos = pos;
    u->nmap = n->nmap;
    u->enqueued = n->enqueued;
    u->replayed = n->replayed;
    u->refused = n->refused;
    u->nonce = n->replay_nonce;
    u->rpos = NULL;
    if (replay) {
        u->rpos = malloc(n->o.partitions * sizeof(*u->rpos));
        if (!u->rpos)
            return -ENOMEM;
        for (unsigned i = 0; i < n->o.partitions; i++)
            u->rpos[i] = n->p[i].rpos;
    }
    return 0;
}

static void undo_apply(struct hd_cluster_node *n, const struct step_undo *u, uint64_t *pos)
{
    *pos = u->pos;
    n->nmap = u->nmap;
    n->enqueued = u->enqueued;
    n->replayed = u->replayed;
    n->refused = u->refused;
    n->replay_nonce = u->nonce;
    if (u->rpos)
        for (unsigned i = 0; i < n->o.partitions; i++)
            n->p[i].rpos = u->rpos[i];
}

/* Processes up to max messages from *pos (the head cursor, or the lowest replay position)
 * up to end, in one write transaction. A replay step advances every partition whose replay
 * stands at the message just read, so partitions acquired at different checkpoints share the
 * reads, and one that starts further on joins when the batch reaches it. Returns the number
 * processed (>= 0) or an error (then nothing of the step is kept, in memory or on disk). */
static int step(struct hd_cluster_node *n, int replay, uint64_t *pos, uint64_t end, int max)
{
    struct hd_txn *txn = NULL;
    struct hd_counters c;
    struct step_undo u;
    int done = 0, rc;

    if (*pos >= end)
        return 0;
    rc = undo_save(n, replay, *pos, &u);
    if (rc)
        return rc;
    rc = hd_store_begin(n->st, 1, &txn);
    if (rc == 0)
        rc = hd_counters_get(n->st, txn, &c);
    while (rc == 0 && done < max && *pos < end) {
        natsMsg *m = NULL;
        int g = replay ? reader_get(n, *pos, &m) : -1;
        if (g < 0)
            g = get_msg(n, *pos, &m);
        if (g < 0)
            break;
        if (g == 1 && !schema_ok(m)) {
            /* A newer producer's message: never misread, never skipped. Wait for an upgrade. */
            if (!n->schema_blocked)
                HD_LOG(HD_LOG_ERROR, "cluster",
                       "msg=\"message of an unknown schema: waiting for an upgrade\""
                       " stream_seq=%" PRIu64, *pos);
            n->schema_blocked = 1;
            natsMsg_Destroy(m);
            break;
        }
        n->schema_blocked = 0;
        if (g == 1)
            rc = expand(n, txn, &c, m, *pos, replay);
        natsMsg_Destroy(m);
        if (rc)
            break;
        if (replay) {
            for (unsigned i = 0; i < n->o.partitions; i++)
                if (n->p[i].owned && n->p[i].rpos == *pos)
                    n->p[i].rpos = *pos + 1;
        }
        (*pos)++;
        done++;
    }
    if (rc == 0)
        rc = hd_counters_put(n->st, txn, &c);
    if (rc == 0)
        rc = hd_store_commit(txn);
    else if (txn)
        hd_store_abort(txn);
    if (rc)
        undo_apply(n, &u, pos);
    free(u.rpos);
    return rc ? rc : done;
}

/* One round of replays: from the lowest replay position, a batch of up to
 * HD_CN_REPLAY_BATCH messages in one write transaction (up to the head: a partition that
 * reaches it joins the head at the next round), so that partitions acquired at different
 * times share reads and a long replay costs one commit per batch, not per message. */
static int replay_round(struct hd_cluster_node *n)
{
    uint64_t lo = UINT64_MAX, pos;
    int rc;

    for (unsigned i = 0; i < n->o.partitions; i++) {
        struct hd_cn_part *p = &n->p[i];
        if (!p->owned || !p->rpos)
            continue;
        if (p->rpos < n->first_seq)
            p->rpos = n->first_seq; /* past retention: docs/cluster.md */
        if (p->rpos >= n->cursor) {
            p->rpos = 0;
            p->from = n->cursor;
            continue;
        }
        if (p->rpos < lo)
            lo = p->rpos;
    }
    if (lo == UINT64_MAX) {
        if (n->rsub)
            reader_close(n); /* every replay reached the head */
        return 0;
    }
    pos = lo;
    rc = step(n, 1, &pos, n->cursor, HD_CN_REPLAY_BATCH);
    return rc;
}

static void *node_main(void *arg)
{
    struct hd_cluster_node *n = arg;
    uint64_t next_tick = 0, next_info = 0, next_follow = 0, next_ctl = 0;

    while (!atomic_load(&n->stop)) {
        uint64_t now = hd_cn_mono_ms();
        int work = 0, rc;

        hd_cn_watch(n, 0);
        if (now >= next_tick) {
            hd_cn_tick(n);
            next_tick = now + n->o.heartbeat_ms;
        }
        if (now >= next_info && n->cursor > n->last_seq) {
            refresh_last(n);
            next_info = now + 50;
        }
        /* Follows first: an activity sees every follow acknowledged before it was published. */
        if (n->cursor <= n->last_seq || now >= next_follow) {
            if (hd_cn_follow_sync(n) != 0 && n->cursor <= n->last_seq) {
                hd_cn_watch(n, 20);
                continue; /* not before the follows: try again */
            }
            next_follow = now + 200;
        }
        /* Operator controls: applied within about a second of their acknowledgement. */
        if (now >= next_ctl) {
            if (hd_cn_control_sync(n) == HD_ERR_CONNECT)
                HD_LOG(HD_LOG_DEBUG, "cluster", "msg=\"control stream not readable now\"");
            next_ctl = now + 200;
        }
        rc = step(n, 0, &n->cursor, n->last_seq + 1, 64);
        if (rc > 0)
            work = 1;
        /* Replays in slices of at most 200 ms, so that heartbeats and lease renewals (every
         * heartbeat_ms, a third of the lease at most) are never starved by a long replay. */
        for (int i = 0; i < 256 && hd_cn_mono_ms() - now < 200; i++) {
            rc = replay_round(n);
            if (rc <= 0)
                break;
            work = 1;
        }
        if (!work)
            hd_cn_watch(n, 20); /* idle: wait for a bucket change or 20 ms */
    }
    return NULL;
}

int hd_cluster_node_start(struct hd_store *st, const struct hd_cluster_opts *o,
                          struct hd_cluster_node **out)
{
    struct hd_cluster_node *n;
    char why[256] = "";
    int rc;

    *out = NULL;
    if (hd_cluster_node_name_ok(o->node) || !o->partitions ||
        o->partitions > HD_CLUSTER_MAX_PARTITIONS || o->lease_ms < 1000 || !o->heartbeat_ms ||
        o->heartbeat_ms * 3 > o->lease_ms) {
        HD_LOG(HD_LOG_ERROR, "cluster", "msg=\"bad cluster settings: node name [A-Za-z0-9_-]"
                                        "{1,64}, partitions 1..4096, lease >= 3 heartbeats\"");
        return HD_ERR_INVALID;
    }
    n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->st = st;
    n->o = *o;
    snprintf(n->name, sizeof(n->name), "%s", o->node);
    n->o.node = n->name;
    n->margin_ms = o->lease_ms / 5;
    n->p = calloc(o->partitions, sizeof(*n->p));
    n->valid_until = calloc(o->partitions, sizeof(*n->valid_until));
    n->sends = calloc(o->partitions, sizeof(*n->sends));
    n->last_send_ms = calloc(o->partitions, sizeof(*n->last_send_ms));
    rc = -ENOMEM;
    if (!n->p || !n->valid_until || !n->sends || !n->last_send_ms)
        goto fail_alloc;
    rc = hd_cluster_connect(o, &n->c, why, sizeof(why));
    if (rc) {
        HD_LOG(HD_LOG_ERROR, "cluster", "msg=\"%s\"", why);
        goto fail_alloc;
    }
    rc = hd_cn_drop_all(n); /* re-derived from the stream for what this node acquires */
    if (rc)
        goto fail_conn;
    if (refresh_last(n) != 0) {
        HD_LOG(HD_LOG_ERROR, "cluster", "msg=\"cannot read the stream's state\"");
        rc = HD_ERR_CONNECT;
        goto fail_conn;
    }
    n->cursor = n->last_seq + 1;
    rc = hd_cn_watch_start(n);
    if (rc)
        goto fail_conn;
    rc = pthread_create(&n->thr, NULL, node_main, n);
    if (rc) {
        rc = -rc;
        goto fail_watch;
    }
    HD_LOG(HD_LOG_INFO, "cluster", "msg=\"node started\" node=%s partitions=%u stream_seq=%" PRIu64,
           n->name, o->partitions, n->cursor);
    *out = n;
    return 0;
fail_watch:
    hd_cn_watch_stop(n);
fail_conn:
    hd_cluster_disconnect(n->c);
fail_alloc:
    free(n->p);
    free((void *)n->valid_until);
    free((void *)n->sends);
    free((void *)n->last_send_ms);
    free(n);
    return rc;
}

void hd_cluster_node_stop(struct hd_cluster_node *n, FILE *report)
{
    if (!n)
        return;
    atomic_store(&n->stop, 1);
    pthread_join(n->thr, NULL);
    reader_close(n);
    hd_cn_release_all(n); /* checkpoints first, then the leases: survivors take over now */
    hd_cn_periods_close(n);
    if (report) {
        fprintf(report, "{\"cluster_node\":\"%s\",\"enqueued\":%" PRIu64 ",\"replayed\":%" PRIu64
                        ",\"refused\":%" PRIu64 ",\"acquired\":%" PRIu64 ",\"lost\":%" PRIu64
                        ",\"released\":%" PRIu64 ",\"replay_fetches\":%" PRIu64
                        ",\"replay_fetched\":%" PRIu64 ",\"partitions\":{",
                n->name, n->enqueued, n->replayed, n->refused, n->acquired, n->lost, n->released,
                n->rfetches, n->rmsgs);
        for (unsigned i = 0, first = 1; i < n->o.partitions; i++) {
            const struct hd_cn_part *p = &n->p[i];
            uint64_t s = atomic_load(&n->sends[i]), inside = 0;
            unsigned k0 = p->nper > HD_CN_PERIODS ? p->nper - HD_CN_PERIODS : 0;
            if (!s && !p->nper)
                continue;
            fprintf(report, "%s\"%u\":{\"sends\":%" PRIu64 ",\"last_send_ms\":%" PRIu64
                            ",\"periods\":[",
                    first ? "" : ",", i, s, (uint64_t)atomic_load(&n->last_send_ms[i]));
            for (unsigned k = k0; k < p->nper; k++) {
                const struct hd_cn_period *e = &p->per[k % HD_CN_PERIODS];
                inside += e->sends;
                fprintf(report,
                        "%s{\"epoch\":%" PRIu64 ",\"from_ms\":%" PRIu64 ",\"to_ms\":%" PRIu64
                        ",\"sends\":%" PRIu64 ",\"last_send_ms\":%" PRIu64 ",\"end\":\"%s\"}",
                        k == k0 ? "" : ",", e->epoch, e->from_ms, e->to_ms, e->sends,
                        e->last_send_ms, e->end ? e->end : "open");
            }
            /* Requests written while this node held no lease on the partition: the fence
             * makes this 0 (exact when every period is still in the report). */
            fprintf(report, "],\"sends_outside_leases\":%" PRIu64 "}",
                    p->nper <= HD_CN_PERIODS ? s - inside : 0);
            first = 0;
        }
        fprintf(report, "}}\n");
        fflush(report);
    }
    hd_cn_watch_stop(n);
    hd_cluster_disconnect(n->c);
    free(n->map);
    free(n->p);
    free((void *)n->valid_until);
    free((void *)n->sends);
    free((void *)n->last_send_ms);
    free(n);
}

/* Acknowledgements: what the committer writes for the deliveries the runner finished (done,
 * retry, dead letter, drop), with the host records' counts and health, the counters, and the
 * gone followers a personal inbox's 404 or 410 reveals (see queue.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_impl.h"
#include "actstat.h"
#include "audience.h"
#include "err.h"
#include "gone.h"
#include "hostrec.h"
#include "known.h"
#include "log.h"
#include "strset.h"

/* Host health: a host-level failure on a new day counts one more failing day; a success
 * clears the count and revives a dead host. Only our own outbound results come here. */
static void host_health(struct hd_host_rec *h, const struct hd_ack *a, uint64_t now_ms,
                        const struct hd_health_policy *hp)
{
    uint64_t day = now_ms / (hp->day_ms ? hp->day_ms : 86400000ull);
    if (a->kind == HD_ACK_DONE) {
        if (a->scheme_ok)
            h->scheme = a->scheme_ok;
        h->fail_days = 0;
        h->dead = HD_HOST_ALIVE;
        return;
    }
    if (a->host_gone)
        h->dead = HD_HOST_GONE;
    if (!a->host_fail)
        return;
    if (h->fail_days == 0 || day != h->last_fail_day) {
        h->fail_days++;
        h->last_fail_day = day;
    }
    if (h->fail_days >= hp->dead_days && h->dead == HD_HOST_ALIVE)
        h->dead = HD_HOST_DEAD;
}

/* A personal inbox answered 404 or 410: its follower leaves the audience of the actor whose
 * activity it refused. */
static int follower_gone(struct hd_store *st, struct hd_txn *txn, uint64_t seq, const char *inbox)
{
    struct hd_act_view v;
    char actor[HD_FOLLOW_URL_MAX + 1];
    uint64_t removed = 0;
    int rc = hd_queue_get_activity(st, txn, seq, &v);

    if (rc == HD_ERR_NOT_FOUND)
        return 0;
    if (rc)
        return rc;
    if (!v.actor.p || v.actor.n == 0 || v.actor.n > HD_FOLLOW_URL_MAX)
        return 0;
    memcpy(actor, v.actor.p, v.actor.n);
    actor[v.actor.n] = 0;
    rc = hd_follow_remove_gone(st, txn, actor, inbox, &removed);
    if (rc == 0 && removed)
        HD_LOG(HD_LOG_INFO, "queue", "msg=\"follower gone: removed from the audience\" "
               "actor=\"%s\" follows=%llu", actor, (unsigned long long)removed);
    return rc;
}

static inline void dec(uint64_t *x)
{
    if (*x)
        (*x)--;
}

/* What a batch of acks changes, kept in hand and written once per batch: the records of the
 * hosts and the counts of the activities it touches. A fan-out's acks interleave hosts and,
 * over a few activities, share them; one get and one put per host and per activity instead
 * of one per ack. A hand that fills up is written out and starts again, so any number of
 * distinct hosts or activities costs what one get and put each did before. */
#define HAND_HOSTS 64
#define HAND_ACTS 256

struct host_hand {
    uint64_t hash;
    uint8_t noted; /* one of its inboxes was noted for to_known_hosts in this batch */
    char name[HD_HOST_MAX];
    struct hd_host_rec h;
};

struct act_hand {
    uint64_t seq;
    uint32_t done; /* references released (hd_queue_act_done), applied when written */
    struct hd_actstat a;
};

struct hands {
    unsigned nhosts, nacts, lasthost, lastact; /* the last ones used: the next ack's likely */
    struct host_hand hosts[HAND_HOSTS];
    struct act_hand acts[HAND_ACTS];
};

static int hosts_flush(struct hd_store *st, struct hd_txn *txn, struct hands *hs)
{
    for (unsigned i = 0; i < hs->nhosts; i++) {
        struct host_hand *x = &hs->hosts[i];
        int rc = hd_host_put(st, txn, x->name, strlen(x->name), &x->h);
        if (rc)
            return rc;
    }
    hs->nhosts = 0;
    return 0;
}

static int acts_flush(struct hd_store *st, struct hd_txn *txn, struct hands *hs)
{
    for (unsigned i = 0; i < hs->nacts; i++) {
        struct act_hand *x = &hs->acts[i];
        int rc = hd_actstat_put(st, txn, x->seq, &x->a);
        if (!rc)
            rc = hd_queue_act_done_n(st, txn, x->seq, x->done);
        if (rc)
            return rc;
    }
    hs->nacts = 0;
    return 0;
}

/* The record of host (hl = strlen(host), hash = hd_hash64(host, hl)) in hand (read on first
 * use), or NULL with *rc set. */
static struct host_hand *host_load(struct hd_store *st, struct hd_txn *txn, struct hands *hs,
                                   const char *host, size_t hl, uint64_t hash, int *rc)
{
    struct host_hand *x;

    if (hs->lasthost < hs->nhosts && hs->hosts[hs->lasthost].hash == hash &&
        strcmp(hs->hosts[hs->lasthost].name, host) == 0)
        return &hs->hosts[hs->lasthost];
    for (unsigned i = 0; i < hs->nhosts; i++)
        if (hs->hosts[i].hash == hash && strcmp(hs->hosts[i].name, host) == 0)
            return &hs->hosts[hs->lasthost = i];
    *rc = hl < HD_HOST_MAX ? 0 : HD_ERR_INVALID;
    if (!*rc && hs->nhosts == HAND_HOSTS)
        *rc = hosts_flush(st, txn, hs);
    if (*rc)
        return NULL;
    x = &hs->hosts[hs->nhosts];
    *rc = hd_host_get(st, txn, host, hl, &x->h);
    if (*rc && *rc != HD_ERR_NOT_FOUND)
        return NULL;
    *rc = 0;
    memcpy(x->name, host, hl + 1);
    x->hash = hash;
    x->noted = 0;
    hs->lasthost = hs->nhosts++;
    return x;
}

/* The counts of activity seq in hand (read on first use), or NULL with *rc set. */
static struct act_hand *as_load(struct hd_store *st, struct hd_txn *txn, struct hands *hs,
                                uint64_t seq, int *rc)
{
    struct act_hand *x;

    if (hs->lastact < hs->nacts && hs->acts[hs->lastact].seq == seq)
        return &hs->acts[hs->lastact];
    for (unsigned i = 0; i < hs->nacts; i++)
        if (hs->acts[i].seq == seq)
            return &hs->acts[hs->lastact = i];
    *rc = hs->nacts == HAND_ACTS ? acts_flush(st, txn, hs) : 0;
    if (*rc)
        return NULL;
    x = &hs->acts[hs->nacts];
    *rc = hd_actstat_get(st, txn, seq, &x->a);
    if (*rc == HD_ERR_NOT_FOUND) {
        memset(&x->a, 0, sizeof(x->a));
        x->a.flags = HD_ACTSTAT_MIGRATED; /* no record: counted from here on */
        *rc = 0;
    }
    if (*rc)
        return NULL;
    x->seq = seq;
    x->done = 0;
    hs->lastact = hs->nacts++;
    return x;
}

/* The acknowledged delivery (old_attempts made before) changes its activity's counts. */
static int as_apply(struct hd_store *st, struct hd_txn *txn, struct act_hand *x,
                    const struct hd_ack *a, uint64_t seq, uint32_t old_attempts, uint64_t now_ms)
{
    struct hd_actstat *s = &x->a;
    const char *host = hd_queue_key_host(a->key);

    if (a->kind != HD_ACK_RETRY) {
        dec(&s->queued);
        if (old_attempts)
            dec(&s->retrying);
    }
    switch (a->kind) {
    case HD_ACK_DONE:
        s->done++;
        if (!old_attempts)
            s->attempted++;
        if (!s->first_ms)
            s->first_ms = now_ms;
        s->last_ms = now_ms;
        return hd_actstat_host(st, txn, seq, s, host, 1, 0, NULL, now_ms);
    case HD_ACK_RETRY:
        if (!old_attempts) {
            s->retrying++;
            s->attempted++;
        }
        return hd_actstat_host(st, txn, seq, s, host, 0, a->status, a->error, now_ms);
    case HD_ACK_DEAD:
        if (a->expired)
            s->expired++;
        else
            s->failed++;
        if (!old_attempts && !a->expired && (a->status || a->host_fail || a->reached))
            s->attempted++;
        return hd_actstat_host(st, txn, seq, s, host, 0, a->status, a->error, now_ms);
    case HD_ACK_DROP:
        if (a->cancelled)
            s->cancelled++;
        else
            s->dropped++;
        return 0;
    }
    return 0;
}

/* An ack whose delivery is no longer queued: already acknowledged or cancelled. A request
 * that was on the wire when its activity was cancelled and then succeeded counts as done,
 * not cancelled. */
static int apply_gone(struct hd_store *st, struct hd_txn *txn, struct hands *hs,
                      const struct hd_ack *a, uint64_t now_ms)
{
    struct act_hand *x;
    uint64_t seq;
    int rc = 0;

    if (a->kind != HD_ACK_DONE || a->keylen < 13)
        return 0;
    seq = hd_rd64(a->key + a->keylen - 12);
    x = as_load(st, txn, hs, seq, &rc);
    if (!x)
        return rc;
    if ((x->a.flags & HD_ACTSTAT_CANCELLED) && x->a.cancelled) {
        x->a.cancelled--;
        x->a.done++;
        x->a.attempted++;
        if (!x->a.first_ms)
            x->a.first_ms = now_ms;
        x->a.last_ms = now_ms;
        rc = hd_actstat_host(st, txn, seq, &x->a, hd_queue_key_host(a->key), 1, 0, NULL, now_ms);
    }
    return rc;
}

/* ---- A batch in two passes, chunk by chunk.
 *
 * First the queue's side of each ack: its entry is read, then deleted or rewritten, and a
 * dead letter written. The acks of a chunk are visited in key order through one cursor, so
 * that a seek landing on the leaf page the cursor is already on skips LMDB's descent from the
 * root, and the delete or rewrite that follows uses the seek's position instead of a descent
 * of its own. Acks of the same key keep their order (a second one finds the entry as the
 * first left it: gone, or rewritten by a retry), and no two keys' records depend on each
 * other, so the queue, the dead letters and the priority index end as one ack at a time
 * leaves them.
 *
 * Then the counts, in the acks' own order, from what the first pass found: the hands, host
 * health, counters, known inboxes and gone followers depend on that order (a host's last
 * status, the inbox noted), and none of them reads the queue, the dead letters or the
 * priority index. */
#define CHUNK_ACKS 512
#define INBOX_MAX (HD_URL_MAX + HD_HOST_MAX + 16) /* longer: the entry is refused */

/* What the first pass found of one ack's entry, and its host's name length and hash. */
struct found {
    uint64_t seq, enqueued_ms, host_hash;
    uint32_t attempts, flags, host_len;
    uint32_t inbox_off; /* in struct chunk's inb, NUL-terminated */
    uint8_t present;    /* 0: no longer queued (apply_gone) */
};

/* An ack's place in the chunk, and the key it is sorted by (see sort_key). */
struct sortent {
    uint64_t key;
    uint32_t pos;
};

struct chunk {
    struct sortent order[CHUNK_ACKS], tmp[CHUNK_ACKS]; /* the chunk's acks, sorted */
    uint32_t count[8][256];                            /* radix_sort's */
    struct found f[CHUNK_ACKS];                        /* by position in the chunk */
    /* The inboxes of the entries found, copied before the entries go. At most CHUNK_ACKS
     * of fewer than INBOX_MAX bytes each: the capacity never passes CHUNK_ACKS * INBOX_MAX. */
    char *inb;
    size_t inb_len, inb_cap;
    struct hd_enc enc; /* a retry's rewritten entry */
    MDB_cursor *cur;   /* on the queue */
};

/* The order the first pass visits a chunk's acks in: by host (the high half of its hash),
 * then by activity seq and index within an activity (the low 16 bits of each), so that a
 * host's acks, whose keys are adjacent, come one after another in key order. Equal keys have
 * equal sort keys, and the sort is stable: the acks of one key keep their order, which is all
 * that correctness asks of it. Where the low bits wrap or two hosts' hashes meet, keys only
 * come out of order, and a seek costs a descent. */
static uint64_t sort_key(const struct hd_ack *a, uint64_t host_hash)
{
    uint32_t low = 0;

    if (a->keylen >= 13)
        low = (uint32_t)(hd_rd64(a->key + a->keylen - 12) << 16 |
                         (hd_rd32(a->key + a->keylen - 4) & 0xffff));
    return (host_hash & 0xffffffff00000000ull) | low;
}

/* Sorts the chunk's m entries in order by key, stably: a least significant digit radix sort,
 * a byte at a time, that skips a byte all the keys share (most of them: a batch's seqs are
 * close). Cheaper than qsort's calls of a comparison per pair. */
static void radix_sort(struct chunk *ch, size_t m)
{
    struct sortent *a = ch->order, *b = ch->tmp, *t;

    if (m < 2)
        return;
    memset(ch->count, 0, sizeof(ch->count));
    for (size_t i = 0; i < m; i++)
        for (unsigned d = 0; d < 8; d++)
            ch->count[d][(a[i].key >> (8 * d)) & 0xff]++;
    for (unsigned d = 0; d < 8; d++) {
        uint32_t *c = ch->count[d], sum = 0;
        if (c[(a[0].key >> (8 * d)) & 0xff] == m)
            continue;
        for (unsigned j = 0; j < 256; j++) {
            uint32_t x = c[j];
            c[j] = sum;
            sum += x;
        }
        for (size_t i = 0; i < m; i++)
            b[c[(a[i].key >> (8 * d)) & 0xff]++] = a[i];
        t = a;
        a = b;
        b = t;
    }
    if (a != ch->order)
        memcpy(ch->order, a, m * sizeof(*a));
}

/* Copies inbox into the chunk's inboxes, NUL-terminated; *off receives where. */
static int keep_inbox(struct chunk *ch, struct hd_slice inbox, uint32_t *off)
{
    size_t need = ch->inb_len + inbox.n + 1;

    if (need > ch->inb_cap) {
        size_t cap = ch->inb_cap ? ch->inb_cap : 16384;
        char *p;
        while (cap < need)
            cap *= 2;
        p = realloc(ch->inb, cap);
        if (!p)
            return -ENOMEM;
        ch->inb = p;
        ch->inb_cap = cap;
    }
    memcpy(ch->inb + ch->inb_len, inbox.p, inbox.n);
    ch->inb[ch->inb_len + inbox.n] = 0;
    *off = (uint32_t)ch->inb_len;
    ch->inb_len = need;
    return 0;
}

/* The queue's side of ack a, with the cursor: f receives what its entry was. */
static int take_entry(struct hd_store *st, struct hd_txn *txn, struct chunk *ch,
                      const struct hd_ack *a, struct found *f, uint64_t now_ms)
{
    MDB_val k = {a->keylen, (void *)a->key}, v;
    struct hd_qent q;
    const char *inbox;
    uint32_t flags;
    int rc = mdb_cursor_get(ch->cur, &k, &v, MDB_SET); /* as mdb_get: k is left as it was */

    f->present = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return hd_store_err(rc);
    rc = hd_queue_ent_decode(&k, &v, &q);
    if (rc)
        return rc;
    if (q.inbox.n >= INBOX_MAX || a->kind < HD_ACK_DONE || a->kind > HD_ACK_DROP)
        return HD_ERR_INVALID;
    rc = keep_inbox(ch, q.inbox, &f->inbox_off);
    if (rc)
        return rc;
    inbox = ch->inb + f->inbox_off;
    f->seq = q.seq;
    f->enqueued_ms = q.enqueued_ms;
    f->attempts = q.attempts;
    f->flags = q.flags;
    f->present = 1;
    flags = q.flags | (a->reached ? HD_QF_REACHED : 0);
    switch (a->kind) {
    case HD_ACK_RETRY:
        /* Rewritten in place: the cursor is on it, so the put finds it without a descent. */
        hd_enc_reset(&ch->enc);
        rc = hd_queue_ent_encode(&ch->enc, inbox, q.inbox.n, a->attempts, a->not_before_ms,
                                 q.enqueued_ms, a->status, a->error, flags, NULL, 0);
        if (rc)
            return rc;
        v.mv_size = ch->enc.len;
        v.mv_data = ch->enc.buf;
        return hd_store_err(mdb_cursor_put(ch->cur, &k, &v, 0));
    case HD_ACK_DEAD:
        rc = hd_queue_ent_put(txn, st->dead, a->key, a->keylen, inbox, q.inbox.n,
                              a->attempts, now_ms, q.enqueued_ms, a->status, a->error, flags,
                              a->body, a->body_len);
        if (rc)
            return rc;
        break;
    default:
        break;
    }
    /* It leaves the queue (DONE, DEAD, DROP). */
    rc = hd_store_err(mdb_cursor_del(ch->cur, 0));
    if (!rc)
        rc = hd_queue_prio_del(st, txn, a->key, a->keylen, f->flags);
    return rc;
}

/* The first pass over the chunk's m acks. */
static int take_entries(struct hd_store *st, struct hd_txn *txn, struct chunk *ch,
                        const struct hd_ack *acks, size_t m, uint64_t now_ms)
{
    int rc = 0;

    for (size_t i = 0; i < m; i++) {
        /* As host_load would compute them (the host is NUL-terminated in the key). */
        struct found *f = &ch->f[i];
        f->host_len = (uint32_t)strnlen((const char *)acks[i].key, sizeof(acks[i].key));
        f->host_hash = hd_hash64(acks[i].key, f->host_len);
        ch->order[i].key = sort_key(&acks[i], f->host_hash);
        ch->order[i].pos = (uint32_t)i;
    }
    radix_sort(ch, m);
    ch->inb_len = 0;
    for (size_t i = 0; i < m && !rc; i++) {
        uint32_t pos = ch->order[i].pos;
        rc = take_entry(st, txn, ch, &acks[pos], &ch->f[pos], now_ms);
    }
    return rc;
}

/* The counts of ack a, whose entry the first pass found as f (the entry with inbox). */
static int apply_one(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                     struct hands *hs, const struct hd_ack *a, const struct found *f,
                     const char *inbox, uint64_t now_ms, const struct hd_health_policy *hp)
{
    struct host_hand *hh;
    struct act_hand *ah;
    struct hd_host_rec *h;
    uint32_t old_attempts = f->attempts;
    int rc = 0;

    if (!f->present)
        return apply_gone(st, txn, hs, a, now_ms);
    hh = host_load(st, txn, hs, hd_queue_key_host(a->key), f->host_len, f->host_hash, &rc);
    if (!hh)
        return rc;
    h = &hh->h;
    host_health(h, a, now_ms, hp);
    ah = as_load(st, txn, hs, f->seq, &rc);
    if (!ah)
        return rc;
    rc = as_apply(st, txn, ah, a, f->seq, old_attempts, now_ms);
    if (rc)
        return rc;
    /* The entries that left the queue: their host's counts go down. */
    if (a->kind != HD_ACK_RETRY)
        hd_host_rec_unqueue(h, 1, old_attempts ? 1 : 0);
    switch (a->kind) {
    case HD_ACK_DONE:
        h->done++;
        h->last_status = a->status;
        h->last_ok_ms = now_ms;
        c->done++;
        /* The host knows us now: one of its inboxes is kept for to_known_hosts (looked at
         * once per host and batch). */
        if (!hh->noted) {
            rc = hd_known_note(st, txn, hh->name, inbox, strlen(inbox),
                               (f->flags & HD_QF_SHARED) != 0);
            if (rc)
                return rc;
            hh->noted = 1;
        }
        ah->done++;
        return 0;
    case HD_ACK_RETRY:
        if (!old_attempts)
            h->retrying++;
        h->failures++;
        h->last_status = a->status;
        h->last_fail_ms = now_ms;
        snprintf(h->last_error, sizeof(h->last_error), "%s", a->error);
        return 0;
    case HD_ACK_DEAD:
        h->failed++;
        h->failures++;
        h->last_status = a->status;
        h->last_fail_ms = now_ms;
        snprintf(h->last_error, sizeof(h->last_error), "%s", a->error);
        c->failed++;
        if (a->expired)
            c->expired++;
        /* A personal inbox answered 404/410: the follower is gone (`herald gone list`). */
        if (a->follower_gone) {
            rc = hd_gone_add(st, txn, inbox, a->status);
            if (rc == 0)
                rc = follower_gone(st, txn, f->seq, inbox);
        }
        /* The dead letter keeps its reference to the activity body, so that `herald dead
         * retry` can send it again; hd_dead_purge releases it. */
        return rc;
    case HD_ACK_DROP:
        /* Refused by the rules after it was queued (a suspend the engine saw first), or
         * cancelled by a Delete: dropped and counted, as hd_queue_drop does. */
        if (a->cancelled)
            c->cancelled++;
        else
            c->dropped++;
        ah->done++;
        return 0;
    }
    return HD_ERR_INVALID;
}

struct apply {
    struct hands hs;
    struct chunk ch;
};

int hd_queue_apply(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                   const struct hd_ack *acks, size_t n, uint64_t now_ms,
                   const struct hd_health_policy *hp_in)
{
    static const struct hd_health_policy hp_default = {86400000ull, 7};
    const struct hd_health_policy *hp = hp_in ? hp_in : &hp_default;
    struct apply *ap = malloc(sizeof(*ap));
    struct hands *hs;
    struct chunk *ch;
    int rc;

    if (!ap)
        return -ENOMEM;
    hs = &ap->hs;
    ch = &ap->ch;
    hs->nhosts = hs->nacts = hs->lasthost = hs->lastact = 0;
    ch->inb = NULL;
    ch->inb_len = ch->inb_cap = 0;
    hd_enc_init(&ch->enc);
    rc = hd_store_err(hd_mdb_cursor_open(txn, st->queue, &ch->cur));
    if (rc) {
        free(ap);
        return rc;
    }
    for (size_t off = 0, m; off < n && !rc; off += m) {
        m = n - off < CHUNK_ACKS ? n - off : CHUNK_ACKS;
        rc = take_entries(st, txn, ch, acks + off, m, now_ms);
        for (size_t i = 0; i < m && !rc; i++)
            rc = apply_one(st, txn, c, hs, &acks[off + i], &ch->f[i],
                           ch->f[i].present ? ch->inb + ch->f[i].inbox_off : NULL, now_ms, hp);
    }
    mdb_cursor_close(ch->cur);
    if (!rc)
        rc = hosts_flush(st, txn, hs);
    if (!rc)
        rc = acts_flush(st, txn, hs);
    hd_enc_fini(&ch->enc);
    free(ch->inb);
    free(ap);
    return rc;
}

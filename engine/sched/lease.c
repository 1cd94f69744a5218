/* The leased set: deliveries read from the store and not yet settled (ready, in flight, or
 * waiting for their acknowledgement to commit). A leased delivery is never read again, so it
 * is never sent twice; giving one back (released) lets the next scan find it. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "sched_impl.h"
#include "strset.h"

static uint64_t del_hash(const void *p)
{
    const struct sdel *d = p;
    return d->lhash; /* of every delivery in the set (hd_sched_leased_add) */
}

int hd_sched_leased_has(struct sthread *th, const uint8_t *key, size_t keylen)
{
    if (!th->leased_cap)
        return 0;
    uint64_t h = hd_hash64(key, keylen);
    struct sdel *d = th->leased[h & (th->leased_cap - 1)];
    while (d && (d->lhash != h || d->keylen != keylen || memcmp(d->key, key, keylen) != 0))
        d = d->lnext;
    return d != NULL;
}

int hd_sched_leased_add(struct sthread *th, struct sdel *d)
{
    size_t b;
    d->lhash = hd_hash64(d->key, d->keylen);
    if ((th->nleased + 1) * 2 > th->leased_cap &&
        hd_sched_grow_table((void ***)&th->leased, &th->leased_cap, offsetof(struct sdel, lnext),
                            del_hash) != 0)
        return -ENOMEM;
    b = del_hash(d) & (th->leased_cap - 1);
    d->lnext = th->leased[b];
    th->leased[b] = d;
    th->nleased++;
    return 0;
}

static void leased_del(struct sthread *th, struct sdel *d)
{
    struct sdel **pp = &th->leased[del_hash(d) & (th->leased_cap - 1)];
    while (*pp && *pp != d)
        pp = &(*pp)->lnext;
    if (*pp) {
        *pp = d->lnext;
        th->nleased--;
    }
}

static int in_slab(const struct sthread *th, const struct sdel *d)
{
    return th->del_slab && d >= th->del_slab && d < th->del_slab + th->del_slab_cap;
}

int hd_sched_sig_bufs(struct sdel *d, int rfc9421, int big)
{
    if (big && !d->sig_heap && !(d->sig_heap = malloc(SDEL_SIG_HEAP + SDEL_SIGINPUT_HEAP)))
        return -ENOMEM;
    if (big) {
        d->sig = d->sig_heap;
        d->sig_cap = SDEL_SIG_HEAP;
        d->siginput = d->sig_heap + SDEL_SIG_HEAP;
        d->siginput_cap = SDEL_SIGINPUT_HEAP;
    } else if (rfc9421) {
        d->siginput = d->sigbuf;
        d->siginput_cap = SDEL_SIGINPUT_IN_BUF;
        d->sig = d->sigbuf + SDEL_SIGINPUT_IN_BUF;
        d->sig_cap = SDEL_SIGBUF - SDEL_SIGINPUT_IN_BUF;
    } else {
        d->sig = d->sigbuf;
        d->sig_cap = SDEL_SIGBUF;
        d->siginput = d->sigbuf + SDEL_SIGBUF - 1; /* none: an empty string */
        d->siginput_cap = 1;
    }
    d->sig[0] = d->siginput[0] = '\0';
    return 0;
}

void hd_sched_del_dispose(struct sthread *th, struct sdel *d)
{
    free(d->sig_heap);
    if (!in_slab(th, d))
        free(d); /* the slab's go with it (hd_sched_lease_fini) */
}

void hd_sched_release(struct sthread *th, struct sdel *d)
{
    leased_del(th, d);
    if (d->act)
        d->act->refs--;
    free(d->csync);
    d->csync = NULL;
    free(d->sig_heap);
    d->sig_heap = NULL;
    if (th->ndel_free < DEL_FREE_MAX || in_slab(th, d)) {
        /* Kept for del_alloc: a 4 KB malloc/free per delivery showed in profiles. */
        d->next = th->del_free;
        th->del_free = d;
        th->ndel_free++;
        return;
    }
    free(d);
}

struct refill_ctx {
    struct sthread *th;
    struct shost *h;
    unsigned want, got;
    uint64_t now_wall;
    int err;
    int main;       /* the cursor scan: high and low deliveries are the indexes' */
    unsigned avail; /* index scans: unleased, due entries seen (taken or not) */
    unsigned limit; /* index scans: stop once more than this many were seen */
    /* The last inbox parsed whole in this scan: its origin (scheme and authority, olen
     * characters of the stored text at oraw, valid with the scan's snapshot) and where its
     * parse is (a delivery leased in this scan). The host's other inboxes parse their path
     * only. */
    const char *oraw;
    size_t olen;
    const struct hd_url *ourl;
};

/* Parses the stored inbox text (NUL-terminated copy in inbox) into d->url. *olen: the
 * length of its origin when it was parsed whole, else 0. */
static int parse_inbox(const struct refill_ctx *rc, const struct hd_qent *e, const char *inbox,
                       struct sdel *d, size_t *olen)
{
    *olen = 0;
    if (rc->ourl && e->inbox.n > rc->olen && memcmp(e->inbox.p, rc->oraw, rc->olen) == 0)
        return hd_url_parse_path(inbox, rc->olen, rc->ourl, &d->url);
    return hd_url_parse_origin(inbox, &d->url, olen);
}

/* A zeroed delivery, except its text buffers (url, date, signature headers: 3.7 KB of the
 * 4.1 KB), which are written (hd_url_parse, dispatch) before they are read: they are only
 * made empty strings. Zeroing all of it per delivery showed in profiles. The assert
 * keeps those buffers contiguous, between the fields that are zeroed. */
#define SDEL_END(f) (offsetof(struct sdel, f) + sizeof(((struct sdel *)0)->f))
_Static_assert(offsetof(struct sdel, date) == SDEL_END(url) &&
                   offsetof(struct sdel, sigbuf) == SDEL_END(date) &&
                   offsetof(struct sdel, hdrs) >= SDEL_END(sigbuf),
               "struct sdel: url, date, sigbuf must stay contiguous, before hdrs");

/* The thread's slab of deliveries: address space for as many as it may lease
 * (max_inflight_thread, at most DEL_SLAB_MAX), reserved at the first lease and handed out in
 * order, never freed before the thread ends; released ones are reused first (LIFO), so only
 * as much of it is ever touched as was leased at once. It asks for transparent huge pages:
 * a delivery is 6 KB, and the first touch of each 4 KB page of a fan-out's leased set
 * (several thousand deliveries) was a page fault, with the malloc of each, about a tenth of
 * the CPU outside signing in an Ed25519 fan-out. Without the mapping (or past its end),
 * deliveries come from malloc as before. */
#define SLAB_ALIGN ((uintptr_t)2 << 20)

static void slab_init(struct sthread *th)
{
    size_t n = th->o->max_inflight_thread + 64u; /* damaged or expired entries lease too */
    size_t len;
    uintptr_t a;
    void *p;

    th->del_slab_tried = 1;
    if (n > DEL_SLAB_MAX)
        n = DEL_SLAB_MAX;
    len = n * sizeof(struct sdel);
    /* Mapped with a huge page's worth of slack and trimmed to start on a huge page boundary:
     * the deliveries handed out first are the ones touched in every run, and a huge page
     * covers only an aligned 2 MB (before the first boundary, 4 KB pages fault one by one). */
    p = mmap(NULL, len + SLAB_ALIGN, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return;
    a = ((uintptr_t)p + SLAB_ALIGN - 1) & ~(uintptr_t)(SLAB_ALIGN - 1);
    if (a > (uintptr_t)p)
        munmap(p, a - (uintptr_t)p);
    munmap((void *)(a + len), (uintptr_t)p + SLAB_ALIGN - a); /* never empty: a < p + 2 MB */
    p = (void *)a;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, len, MADV_HUGEPAGE); /* refused: 4 KB pages */
#endif
    th->del_slab = p;
    th->del_slab_cap = n;
    th->del_slab_used = 0;
}

static struct sdel *del_alloc(struct sthread *th)
{
    struct sdel *d = th->del_free;

    if (d) {
        th->del_free = d->next;
        th->ndel_free--;
    } else {
        if (!th->del_slab_tried)
            slab_init(th);
        if (th->del_slab_used < th->del_slab_cap)
            d = &th->del_slab[th->del_slab_used++];
        else if (!(d = malloc(sizeof(*d))))
            return NULL;
    }
    memset(d, 0, offsetof(struct sdel, url));
    d->url.tls = 0;
    d->url.port = 0;
    d->url.host[0] = d->url.authority[0] = d->url.path[0] = '\0';
    d->date[0] = d->sigbuf[0] = '\0';
    d->sig = d->siginput = d->sigbuf; /* hd_sched_sig_bufs sets them apart at dispatch */
    d->sig_cap = d->siginput_cap = 1;
    memset(&d->hdrs, 0, sizeof(*d) - offsetof(struct sdel, hdrs));
    return d;
}

static int on_qent(const struct hd_qent *e, void *user_data)
{
    struct refill_ctx *rc = user_data;
    struct sthread *th = rc->th;
    struct sdel *d;
    char inbox[HD_URL_MAX + HD_HOST_MAX + 16];
    size_t olen = 0;
    int expired;

    if (rc->main && (e->flags & (HD_QF_HIGH | HD_QF_LOW)))
        return 0;
    if (hd_sched_leased_has(th, e->key, e->keylen))
        return 0;
    if (e->not_before_ms > rc->now_wall) {
        hd_sched_retry_due(rc->h, e->not_before_ms);
        return 0;
    }
    expired =
        th->o->max_age_ms && e->enqueued_ms && rc->now_wall > e->enqueued_ms + th->o->max_age_ms;
    if (!rc->main) {
        rc->avail++;
        if (rc->got >= rc->want)
            return rc->avail > rc->limit; /* only counting now */
    }
    d = del_alloc(th);
    if (!d) {
        rc->err = -ENOMEM;
        return 1;
    }
    memcpy(d->key, e->key, e->keylen);
    d->keylen = (uint16_t)e->keylen;
    d->seq = e->seq;
    d->attempts = e->attempts;
    d->flags = e->flags;
    d->host = rc->h;
    if (e->inbox.n >= sizeof(inbox) ||
        (memcpy(inbox, e->inbox.p, e->inbox.n), inbox[e->inbox.n] = 0,
         parse_inbox(rc, e, inbox, d, &olen) != 0)) {
        /* Damaged entry: final, with the reason kept. */
        if (hd_sched_leased_add(th, d) != 0) {
            hd_sched_del_dispose(th, d);
            rc->err = -ENOMEM;
            return 1;
        }
        if (!hd_sched_ack(th, d, HD_ACK_DEAD, 0, 0, "stored inbox URL is invalid")) {
            hd_sched_release(th, d); /* left queued, as if not scanned */
            rc->err = -ENOMEM;
            return 1;
        }
        return 0;
    }
    if (hd_sched_leased_add(th, d) != 0) {
        hd_sched_del_dispose(th, d);
        rc->err = -ENOMEM;
        return 1;
    }
    if (olen) { /* d stays leased through the scan: its parse serves the next inboxes */
        rc->oraw = e->inbox.p;
        rc->olen = olen;
        rc->ourl = &d->url;
    }
    if (expired) {
        struct hd_ack *a = hd_sched_ack(th, d, HD_ACK_DEAD, 0, 0, "expired: older than max age");
        if (!a) {
            hd_sched_release(th, d);
            rc->err = -ENOMEM;
            return 1;
        }
        a->expired = 1;
        return 0;
    }
    if (rc->h->ready_tail)
        rc->h->ready_tail->next = d;
    else
        rc->h->ready_head = d;
    rc->h->ready_tail = d;
    rc->h->nready++;
    return ++rc->got >= rc->want;
}

/* Leases up to cap due deliveries of class prio (HD_PRIO_HIGH or HD_PRIO_LOW) of h from its
 * index, read from the start (leased ones are passed over: at most the window's worth), and
 * counts in *avail the due, unleased ones it saw, up to limit + 1 (>= cap). Returns how many
 * were leased. */
static unsigned refill_class(struct sthread *th, struct shost *h, struct hd_txn *txn, int prio,
                             unsigned cap, unsigned limit, unsigned *avail)
{
    struct refill_ctx ctx = {th, h, cap, 0, hd_wall_ms(), 0, 0, 0, limit < cap ? cap : limit,
                            NULL, 0, NULL};
    int end = 0, n;

    *avail = 0;
    if (!(h->idx_check & (1u << prio)))
        return 0;
    if (h->idx_hold_until[prio] > ctx.now_wall) { /* look again when the hold ends */
        hd_sched_retry_due(h, h->idx_hold_until[prio] + 1);
        return 0;
    }
    n = hd_queue_scan_prio(th->st, txn, h->name, prio,
                           (size_t)ctx.limit + h->inflight + h->nready + 64, on_qent, &ctx, &end);
    if (ctx.err)
        hd_sched_retry_due(h, ctx.now_wall + HD_POLICY_LOCAL_RETRY_MS);
    if (n >= 0 && end && ctx.avail == 0)
        h->idx_check &= (uint8_t)~(1u << prio); /* nothing due in it that is not leased */
    *avail = ctx.avail - ctx.got;
    if (n > 0 && !end && *avail == 0)
        *avail = 1; /* the scan stopped before the end: maybe more */
    return ctx.got;
}

/* The starvation bound: a class takes at most PRIO_RUN_MAX deliveries in a row while a lower
 * class has one due: high at most 7 in a row while normal or low waits, high and normal
 * together at most 7 in a row while low waits. So a waiting low delivery gets at least 1
 * send in 8, a waiting normal one at least 1 in 9 (7 high, and the 1 owed to low). */
#define PRIO_RUN_MAX 7

static uint8_t streak_add(uint8_t s, unsigned n)
{
    return (uint8_t)(s + n > 255 ? 255 : s + n);
}

/* Per host, high before normal before low, each class in arrival order: high deliveries from
 * their index, normal ones by the cursor (which passes over the other two), low ones from
 * their index, shared out slot by slot under the starvation bound. Ordering still wins:
 * hd_sched_order holds back whatever would overtake the activity it depends on. */
void hd_sched_refill(struct sthread *th, struct shost *h)
{
    struct refill_ctx ctx = {th, h, 0, 0, hd_wall_ms(), 0, 1, 0, 0, NULL, 0, NULL};
    uint8_t last[HD_QKEY_MAX];
    size_t last_len = 0;
    int end = 0, n = 0;
    unsigned got_hi = 0, got_lo = 0, want, hi_av, lo_av, nh = 0, nn = 0, nl = 0, left;
    unsigned hs = h->hi_streak, us = h->up_streak;
    struct hd_txn *txn;
    unsigned busy = h->inflight + h->nready;

    unsigned window = hd_hostpol_window(&h->pol);

    if (h->exhausted || busy >= window || th->nleased >= th->o->max_inflight_thread)
        return;
    want = window - busy;
    if (want > th->o->max_inflight_thread - th->nleased)
        want = th->o->max_inflight_thread - (unsigned)th->nleased;
    txn = hd_sched_rtxn(th);
    if (!txn)
        return;
    /* What is due in the two indexed classes (a look: nothing leased), then the plan, slot by
     * slot; normal work is assumed until the cursor finds none. */
    refill_class(th, h, txn, HD_PRIO_HIGH, 0, want, &hi_av);
    refill_class(th, h, txn, HD_PRIO_LOW, 0, want, &lo_av);
    for (unsigned i = 0; i < want; i++) {
        if (us >= PRIO_RUN_MAX && nl < lo_av) { /* low's turn */
            nl++;
            us = 0;
        } else if (nh < hi_av && hs < PRIO_RUN_MAX) {
            nh++;
            hs++;
            us++;
        } else {
            nn++; /* normal; if there is none, low and then high fill it below */
            hs = 0;
            us++;
        }
    }
    if (nh)
        got_hi = refill_class(th, h, txn, HD_PRIO_HIGH, nh, nh, &hi_av);
    if (nn) {
        ctx.want = nn;
        n = hd_queue_scan(th->st, txn, h->name, h->poslen ? h->pos : NULL, h->poslen,
                          nn * 4 + 64, on_qent, &ctx, last, &last_len, &end);
        if (ctx.err) { /* an entry was left as it was (no memory): scan again soon */
            HD_LOG_HOST(HD_LOG_WARN, "sched", h->name,
                        "msg=\"queue scan stopped: local failure, tried again in %u ms\" "
                        "err=\"%s\"",
                        (unsigned)HD_POLICY_LOCAL_RETRY_MS, hd_strerror(ctx.err));
            hd_sched_retry_due(h, ctx.now_wall + HD_POLICY_LOCAL_RETRY_MS);
        }
        if (n >= 0 && last_len) {
            memcpy(h->pos, last, last_len);
            h->poslen = last_len;
        }
    }
    /* Low gets its planned slots and those normal work did not fill; high then any left. */
    left = want - got_hi - ctx.got;
    got_lo = refill_class(th, h, txn, HD_PRIO_LOW, left, left, &lo_av);
    left -= got_lo;
    if (left)
        got_hi += refill_class(th, h, txn, HD_PRIO_HIGH, left, left, &hi_av);
    /* The runs: reset by a lease of the class they keep waiting. */
    if (ctx.got == nn && got_lo == nl) {
        h->hi_streak = (uint8_t)(hs > 255 ? 255 : hs);
        h->up_streak = (uint8_t)(us > 255 ? 255 : us);
    } else { /* a class had less than planned: nothing of it waits */
        h->hi_streak = ctx.got ? 0 : streak_add(h->hi_streak, got_hi);
        h->up_streak = got_lo ? 0 : streak_add(h->up_streak, got_hi + ctx.got);
    }
    if (n < 0)
        return;
    if (nn && end && !hi_av && !lo_av && !(h->idx_check & HD_SCHED_IDX_ALL))
        h->exhausted = 1;
}

/* Frees the leased set's table and the deliveries kept for reuse (leased deliveries are
 * freed with their host's ready list or their batch). */
void hd_sched_lease_fini(struct sthread *th)
{
    free(th->leased);
    th->leased = NULL;
    th->leased_cap = th->nleased = 0;
    while (th->del_free) {
        struct sdel *d = th->del_free;
        th->del_free = d->next;
        hd_sched_del_dispose(th, d);
    }
    th->ndel_free = 0;
    if (th->del_slab)
        munmap(th->del_slab, th->del_slab_cap * sizeof(struct sdel));
    th->del_slab = NULL;
    th->del_slab_cap = th->del_slab_used = 0;
    th->del_slab_tried = 0;
}

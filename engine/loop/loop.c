#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loop.h"

struct hd_loop {
    struct io_uring ring;
    uint64_t now_ms;
    size_t pending;
    struct hd_timer *timers; /* root of the pairing heap of armed timers, or NULL */
    uint64_t timer_seq;      /* next hd_timer.seq */
    struct hd_loop_defer *defer_head, *defer_tail; /* FIFO of deferred callbacks */
};

static uint64_t clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int hd_loop_new(struct hd_loop **out, unsigned entries)
{
    struct hd_loop *loop = calloc(1, sizeof(*loop));
    struct io_uring_params p;
    int rv;

    if (!loop)
        return -ENOMEM;
    memset(&p, 0, sizeof(p));
    /* The completion queue is 4x the submission queue so bursts of completions never
     * overflow; the kernel also sets IORING_FEAT_NODROP on 5.5+. */
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = (entries ? entries : 1024) * 4;
    /* Completions are run when this thread enters the kernel, not by interrupting it:
     * without COOP_TASKRUN every answer from a peer on another CPU sends this thread an
     * inter-processor interrupt in the middle of its signing (a costly exit in a VM).
     * TASKRUN_FLAG says in the SQ ring that work is waiting (see hd_loop_run_once).
     * Kernels before 5.19 refuse the flags: the ring is then made without them. */
    p.flags |= IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    rv = io_uring_queue_init_params(entries ? entries : 1024, &loop->ring, &p);
    if (rv == -EINVAL) {
        memset(&p, 0, sizeof(p));
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = (entries ? entries : 1024) * 4;
        rv = io_uring_queue_init_params(entries ? entries : 1024, &loop->ring, &p);
    }
    if (rv < 0) {
        free(loop);
        return rv;
    }
    loop->now_ms = clock_ms();
    *out = loop;
    return 0;
}

void hd_loop_free(struct hd_loop *loop)
{
    if (!loop)
        return;
    io_uring_queue_exit(&loop->ring);
    free(loop);
}

uint64_t hd_loop_now_ms(struct hd_loop *loop)
{
    return loop->now_ms;
}

uint64_t hd_loop_update_now(struct hd_loop *loop)
{
    loop->now_ms = clock_ms();
    return loop->now_ms;
}

size_t hd_loop_pending(const struct hd_loop *loop)
{
    return loop->pending;
}

static struct io_uring_sqe *get_sqe(struct hd_loop *loop)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->ring);
    if (!sqe) {
        /* Ring full: flush what we have and try again. */
        if (io_uring_submit(&loop->ring) < 0)
            return NULL;
        sqe = io_uring_get_sqe(&loop->ring);
    }
    return sqe;
}

static int queue_op(struct hd_loop *loop, struct io_uring_sqe *sqe, struct hd_loop_op *op)
{
    io_uring_sqe_set_data(sqe, op);
    if (op)
        loop->pending++;
    return 0;
}

int hd_loop_connect(struct hd_loop *loop, struct hd_loop_op *op, int fd, const struct sockaddr *sa,
                    socklen_t salen)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_connect(sqe, fd, sa, salen);
    return queue_op(loop, sqe, op);
}

static int send_flags(struct hd_loop *loop, struct hd_loop_op *op, int fd, const void *buf,
                      size_t len, int flags)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL | flags);
    return queue_op(loop, sqe, op);
}

int hd_loop_send(struct hd_loop *loop, struct hd_loop_op *op, int fd, const void *buf, size_t len)
{
    return send_flags(loop, op, fd, buf, len, 0);
}

int hd_loop_send_last(struct hd_loop *loop, struct hd_loop_op *op, int fd, const void *buf,
                      size_t len)
{
    return send_flags(loop, op, fd, buf, len, MSG_MORE);
}

int hd_loop_recv(struct hd_loop *loop, struct hd_loop_op *op, int fd, void *buf, size_t len)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_recv(sqe, fd, buf, len, 0);
    return queue_op(loop, sqe, op);
}

int hd_loop_accept(struct hd_loop *loop, struct hd_loop_op *op, int fd)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC);
    return queue_op(loop, sqe, op);
}

int hd_loop_poll(struct hd_loop *loop, struct hd_loop_op *op, int fd, unsigned mask)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_poll_add(sqe, fd, mask);
    return queue_op(loop, sqe, op);
}

int hd_loop_close(struct hd_loop *loop, struct hd_loop_op *op, int fd)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_close(sqe, fd);
    return queue_op(loop, sqe, op);
}

int hd_loop_cancel(struct hd_loop *loop, struct hd_loop_op *op)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_cancel(sqe, op, 0);
    io_uring_sqe_set_data(sqe, NULL);
    return 0;
}

/* ---- timers: an intrusive pairing heap (Fredman, Sedgewick, Sleator, Tarjan 1986) ----
 *
 * Each node links to its first child, its next sibling and back to its previous sibling (or,
 * for a first child, to its parent), so any node can be cut out in O(1) and the heap needs
 * no memory of its own. Insert melds the new node with the root; taking the root out merges
 * its children in two passes (pairs left to right, then the pairs right to left), which is
 * what makes delete O(log n) amortized. Both passes are loops: no recursion depth to bound. */

/* a fires before b: earlier due time, then armed earlier. */
static int timer_before(const struct hd_timer *a, const struct hd_timer *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

/* Melds two heap roots (next and prev NULL on both) and returns the new root. */
static struct hd_timer *timer_meld(struct hd_timer *a, struct hd_timer *b)
{
    if (timer_before(b, a)) {
        struct hd_timer *t = a;
        a = b;
        b = t;
    }
    b->prev = a;
    b->next = a->child;
    if (a->child)
        a->child->prev = b;
    a->child = b;
    return a;
}

/* Merges a sibling list into one heap and returns its root (NULL for an empty list). */
static struct hd_timer *timer_merge_pairs(struct hd_timer *first)
{
    struct hd_timer *pairs = NULL, *root = NULL;

    /* Left to right: meld the siblings two by two, stacking the results on `pairs` (linked
     * through next, so the last pair is on top). */
    while (first) {
        struct hd_timer *a = first, *b = a->next;
        a->prev = a->next = NULL;
        if (b) {
            first = b->next;
            b->prev = b->next = NULL;
            a = timer_meld(a, b);
        } else {
            first = NULL;
        }
        a->next = pairs;
        pairs = a;
    }
    /* Right to left: meld each pair into the result. */
    while (pairs) {
        struct hd_timer *a = pairs;
        pairs = a->next;
        a->next = NULL;
        root = root ? timer_meld(root, a) : a;
    }
    return root;
}

void hd_timer_init(struct hd_timer *t, hd_timer_cb cb)
{
    memset(t, 0, sizeof(*t));
    t->cb = cb;
}

void hd_timer_disarm(struct hd_loop *loop, struct hd_timer *t)
{
    struct hd_timer *sub;

    if (!t->armed)
        return;
    if (t == loop->timers) {
        loop->timers = timer_merge_pairs(t->child);
    } else {
        /* Cut t (with its subtree) out of its sibling list, then meld its children back. */
        if (t->prev->child == t)
            t->prev->child = t->next;
        else
            t->prev->next = t->next;
        if (t->next)
            t->next->prev = t->prev;
        sub = timer_merge_pairs(t->child);
        if (sub)
            loop->timers = timer_meld(loop->timers, sub);
    }
    t->child = t->next = t->prev = NULL;
    t->armed = 0;
}

void hd_timer_arm(struct hd_loop *loop, struct hd_timer *t, uint64_t due_ms)
{
    hd_timer_disarm(loop, t);
    t->due_ms = due_ms;
    t->seq = loop->timer_seq++;
    t->child = t->next = t->prev = NULL;
    t->armed = 1;
    loop->timers = loop->timers ? timer_meld(loop->timers, t) : t;
}

/* ---- timeout queues ---- */

static void tq_fire(struct hd_timer *t)
{
    struct hd_tq *q = container_of(t, struct hd_tq, timer);
    uint64_t now = hd_loop_now_ms(q->loop), seq_end = q->seq;
    struct hd_tq_ent *e;

    /* Only entries set before this point: one a callback sets for "now" stops the turn (the
     * timer is re-armed for it), so a callback cannot keep this loop going. */
    while ((e = q->head) && e->due_ms <= now && e->seq < seq_end) {
        hd_tq_clear(e);
        e->cb(e);
    }
    if (q->head && !hd_timer_armed(&q->timer))
        hd_timer_arm(q->loop, &q->timer, q->head->due_ms);
}

void hd_tq_init(struct hd_tq *q, struct hd_loop *loop)
{
    hd_timer_init(&q->timer, tq_fire);
    q->loop = loop;
    q->head = q->tail = NULL;
    q->seq = 0;
}

void hd_tq_fini(struct hd_tq *q)
{
    while (q->head)
        hd_tq_clear(q->head);
    hd_timer_disarm(q->loop, &q->timer);
}

void hd_tq_ent_init(struct hd_tq_ent *e, hd_tq_cb cb)
{
    e->due_ms = e->seq = 0;
    e->next = e->prev = NULL;
    e->q = NULL;
    e->cb = cb;
}

void hd_tq_clear(struct hd_tq_ent *e)
{
    struct hd_tq *q = e->q;

    if (!q)
        return;
    if (e->prev)
        e->prev->next = e->next;
    else
        q->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        q->tail = e->prev;
    e->next = e->prev = NULL;
    e->q = NULL;
}

void hd_tq_set(struct hd_tq *q, struct hd_tq_ent *e, uint64_t due_ms)
{
    struct hd_tq_ent *after;

    hd_tq_clear(e);
    e->due_ms = due_ms;
    e->seq = q->seq++;
    e->q = q;
    /* After the last one due no later: the tail, unless the duration changed (a reload). */
    for (after = q->tail; after && after->due_ms > due_ms; after = after->prev)
        ;
    e->prev = after;
    e->next = after ? after->next : q->head;
    if (e->next)
        e->next->prev = e;
    else
        q->tail = e;
    if (after)
        after->next = e;
    else
        q->head = e;
    /* While the queue holds entries its timer is armed for the first one, or earlier (one
     * cleared since): only an entry that comes first and falls due before the timer moves it. */
    if (q->head == e && (!hd_timer_armed(&q->timer) || q->timer.due_ms > due_ms))
        hd_timer_arm(q->loop, &q->timer, due_ms);
}

static int run_timers(struct hd_loop *loop)
{
    int n = 0;
    /* Only timers armed before this point: one armed (or re-armed for "now") by a timer
     * callback fires on the next turn, so a callback cannot keep this loop going. Stopping at
     * the first such timer keeps the order: nothing due after it fires before it. */
    uint64_t seq_end = loop->timer_seq;
    while (loop->timers && loop->timers->seq < seq_end &&
           loop->timers->due_ms <= loop->now_ms) {
        struct hd_timer *t = loop->timers;
        hd_timer_disarm(loop, t);
        t->cb(t);
        n++;
    }
    return n;
}

void hd_loop_defer_init(struct hd_loop_defer *d, hd_loop_defer_cb cb)
{
    d->next = NULL;
    d->cb = cb;
    d->queued = 0;
}

void hd_loop_defer(struct hd_loop *loop, struct hd_loop_defer *d)
{
    if (d->queued)
        return;
    d->queued = 1;
    d->next = NULL;
    if (loop->defer_tail)
        loop->defer_tail->next = d;
    else
        loop->defer_head = d;
    loop->defer_tail = d;
    loop->pending++;
}

/* Callbacks deferred while these run join the end of the list and run in this pass too. */
static void run_deferred(struct hd_loop *loop)
{
    while (loop->defer_head) {
        struct hd_loop_defer *d = loop->defer_head;
        loop->defer_head = d->next;
        if (!loop->defer_head)
            loop->defer_tail = NULL;
        d->next = NULL;
        d->queued = 0;
        loop->pending--;
        d->cb(d); /* may free the object embedding d */
    }
}

int hd_loop_run_once(struct hd_loop *loop, unsigned timeout_ms)
{
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts;
    uint64_t wait = timeout_ms;
    unsigned head, seen = 0;
    int rv, n = 0;

    run_deferred(loop);
    loop->now_ms = clock_ms();
    if (loop->timers) {
        uint64_t due = loop->timers->due_ms;
        wait = due <= loop->now_ms ? 0 : (due - loop->now_ms < wait ? due - loop->now_ms : wait);
    }
    if (wait == 0) {
        /* Not waiting: enter the kernel only to submit, or when completions wait there as
         * task work (IORING_SQ_TASKRUN, set under COOP_TASKRUN + TASKRUN_FLAG). */
        if (IO_URING_READ_ONCE(*loop->ring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW))
            rv = io_uring_submit_and_get_events(&loop->ring);
        else
            rv = io_uring_submit(&loop->ring);
    } else {
        ts.tv_sec = (long long)(wait / 1000);
        ts.tv_nsec = (long long)(wait % 1000) * 1000000;
        rv = io_uring_submit_and_wait_timeout(&loop->ring, &cqe, 1, &ts, NULL);
    }
    if (rv < 0 && rv != -ETIME && rv != -EINTR && rv != -EAGAIN && rv != -EBUSY)
        return rv;

    loop->now_ms = clock_ms();
    io_uring_for_each_cqe(&loop->ring, head, cqe)
    {
        struct hd_loop_op *op = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        seen++;
        if (!op)
            continue;
        loop->pending--;
        /* Advance before the callback: it may queue new SQEs, which is fine, and it may
         * free the object embedding op, which is also fine since we no longer touch it. */
        op->cb(op, res);
        n++;
    }
    io_uring_cq_advance(&loop->ring, seen);
    n += run_timers(loop);
    return n;
}

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
    struct hd_timer **heap;
    size_t heap_len, heap_cap;
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
    rv = io_uring_queue_init_params(entries ? entries : 1024, &loop->ring, &p);
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
    free(loop->heap);
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

int hd_loop_send(struct hd_loop *loop, struct hd_loop_op *op, int fd, const void *buf, size_t len)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL);
    return queue_op(loop, sqe, op);
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

/* ---- timers: a binary min-heap of pointers, each timer knows its index ---- */

static void heap_swap(struct hd_loop *loop, size_t a, size_t b)
{
    struct hd_timer *t = loop->heap[a];
    loop->heap[a] = loop->heap[b];
    loop->heap[b] = t;
    loop->heap[a]->heap_idx = a;
    loop->heap[b]->heap_idx = b;
}

static void heap_up(struct hd_loop *loop, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (loop->heap[p]->due_ms <= loop->heap[i]->due_ms)
            break;
        heap_swap(loop, p, i);
        i = p;
    }
}

static void heap_down(struct hd_loop *loop, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < loop->heap_len && loop->heap[l]->due_ms < loop->heap[m]->due_ms)
            m = l;
        if (r < loop->heap_len && loop->heap[r]->due_ms < loop->heap[m]->due_ms)
            m = r;
        if (m == i)
            break;
        heap_swap(loop, i, m);
        i = m;
    }
}

void hd_timer_init(struct hd_timer *t, hd_timer_cb cb)
{
    t->due_ms = 0;
    t->heap_idx = (size_t)-1;
    t->cb = cb;
}

void hd_timer_disarm(struct hd_loop *loop, struct hd_timer *t)
{
    size_t i = t->heap_idx;
    if (i == (size_t)-1)
        return;
    loop->heap_len--;
    if (i != loop->heap_len) {
        loop->heap[i] = loop->heap[loop->heap_len];
        loop->heap[i]->heap_idx = i;
        heap_up(loop, i);
        heap_down(loop, loop->heap[i]->heap_idx);
    }
    t->heap_idx = (size_t)-1;
}

int hd_timer_arm(struct hd_loop *loop, struct hd_timer *t, uint64_t due_ms)
{
    if (t->heap_idx != (size_t)-1)
        hd_timer_disarm(loop, t);
    if (loop->heap_len == loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        struct hd_timer **h = realloc(loop->heap, cap * sizeof(*h));
        if (!h)
            return -ENOMEM;
        loop->heap = h;
        loop->heap_cap = cap;
    }
    t->due_ms = due_ms;
    t->heap_idx = loop->heap_len;
    loop->heap[loop->heap_len++] = t;
    heap_up(loop, t->heap_idx);
    return 0;
}

static int run_timers(struct hd_loop *loop)
{
    int n = 0;
    /* Bounded: timers re-armed for "now" inside a callback run on the next iteration. */
    size_t budget = loop->heap_len;
    while (loop->heap_len > 0 && budget-- > 0 && loop->heap[0]->due_ms <= loop->now_ms) {
        struct hd_timer *t = loop->heap[0];
        hd_timer_disarm(loop, t);
        t->cb(t);
        n++;
    }
    return n;
}

int hd_loop_run_once(struct hd_loop *loop, unsigned timeout_ms)
{
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts;
    uint64_t wait = timeout_ms;
    unsigned head, seen = 0;
    int rv, n = 0;

    loop->now_ms = clock_ms();
    if (loop->heap_len > 0) {
        uint64_t due = loop->heap[0]->due_ms;
        wait = due <= loop->now_ms ? 0 : (due - loop->now_ms < wait ? due - loop->now_ms : wait);
    }
    if (wait == 0) {
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

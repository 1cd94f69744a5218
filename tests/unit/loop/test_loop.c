/* Loop timers: order under random arm / disarm / re-arm, changes made from inside callbacks,
 * the wait for the next due timer, and arming that needs no memory. Deferred callbacks: run
 * once each, in order, before the next wait, those deferred by a callback in the same pass.
 *
 * The executable is linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc
 * (tests/CMakeLists.txt), so every allocation made by the test and by the engine code linked
 * into it passes through the hooks below; "alloc" makes them fail and counts the attempts.
 *
 *   test_loop [order|callbacks|future|wait|alloc|defer]...   (no argument: all of them)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loop.h"
#include "t.h"

/* ---- allocation hooks ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);

static int alloc_fail;          /* nonzero: every allocation fails */
static unsigned long alloc_seen; /* allocations attempted while alloc_fail was set */
static unsigned long alloc_all;  /* allocations attempted, ever */

void *__wrap_malloc(size_t n)
{
    alloc_all++;
    if (alloc_fail) {
        alloc_seen++;
        return NULL;
    }
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    alloc_all++;
    if (alloc_fail) {
        alloc_seen++;
        return NULL;
    }
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    alloc_all++;
    if (alloc_fail) {
        alloc_seen++;
        return NULL;
    }
    return __real_realloc(p, n);
}

/* ---- a timer under test and the model of what the loop should do with it ---- */

struct tt {
    struct hd_timer t;
    uint64_t due;  /* due time of the last arm */
    uint64_t seq;  /* test's own arm counter at the last arm */
    int armed;     /* armed by the model */
    int fired;     /* times fired */
};

static struct tt *g_tt;
static size_t g_n;
static uint64_t g_seq;
static size_t *g_order; /* indexes in firing order */
static size_t g_norder;
static struct hd_loop *g_loop;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    /* xorshift64*: deterministic, so a failure replays. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void model_arm(struct tt *x, uint64_t due)
{
    hd_timer_arm(g_loop, &x->t, due);
    x->due = due;
    x->seq = g_seq++;
    x->armed = 1;
}

static void model_disarm(struct tt *x)
{
    hd_timer_disarm(g_loop, &x->t);
    x->armed = 0;
}

static int before(const struct tt *a, const struct tt *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void on_fire(struct hd_timer *t)
{
    struct tt *x = container_of(t, struct tt, t);

    T_OK(x->armed);
    T_OK(!hd_timer_armed(t));
    x->armed = 0;
    x->fired++;
    g_order[g_norder++] = (size_t)(x - g_tt);
}

static void setup(size_t n, hd_timer_cb cb, size_t order_cap)
{
    g_tt = calloc(n, sizeof(*g_tt));
    g_order = calloc(order_cap, sizeof(*g_order));
    T_OK(g_tt && g_order);
    g_n = n;
    g_norder = 0;
    for (size_t i = 0; i < n; i++)
        hd_timer_init(&g_tt[i].t, cb);
}

static void teardown(void)
{
    for (size_t i = 0; i < g_n; i++)
        hd_timer_disarm(g_loop, &g_tt[i].t);
    free(g_tt);
    free(g_order);
    g_tt = NULL;
    g_order = NULL;
    g_n = 0;
}

/* Due times in the past (so one hd_loop_run_once fires all of them) spread over `span` ms,
 * narrow enough that many timers share a millisecond. */
static uint64_t past_due(uint64_t span)
{
    uint64_t now = hd_loop_now_ms(g_loop);
    uint64_t s = span < now ? span : now;
    return now - s + rnd() % (s + 1);
}

/* Runs the loop without waiting until no timer is left armed. */
static void run_all(void)
{
    for (int i = 0; i < 1000; i++) {
        int any = 0;
        for (size_t j = 0; j < g_n && !any; j++)
            any = g_tt[j].armed;
        if (!any)
            return;
        T_OK(hd_loop_run_once(g_loop, 0) >= 0);
    }
    T_FAIL("timers still armed after 1000 turns");
}

/* Every armed timer fired once, in (due, arm order), and no disarmed one fired. */
static void check_fired_in_order(const int *was_armed)
{
    size_t expect = 0;

    for (size_t i = 0; i < g_n; i++) {
        T_EQ_INT(g_tt[i].fired, was_armed[i] ? 1 : 0);
        expect += was_armed[i] != 0;
    }
    T_EQ_INT(g_norder, expect);
    for (size_t k = 1; k < g_norder; k++) {
        const struct tt *a = &g_tt[g_order[k - 1]], *b = &g_tt[g_order[k]];
        if (!before(a, b))
            T_FAIL("fired out of order at %zu: (due %llu, armed #%llu) then (due %llu, armed #%llu)",
                   k, (unsigned long long)a->due, (unsigned long long)a->seq,
                   (unsigned long long)b->due, (unsigned long long)b->seq);
    }
}

/* Random arms, disarms and re-arms of 50,000 timers, then all fire in order. */
static void test_order(void)
{
    const size_t n = 50000;
    int *was_armed = calloc(n, sizeof(*was_armed));

    T_OK(was_armed);
    setup(n, on_fire, n);
    for (size_t op = 0; op < 400000; op++) {
        struct tt *x = &g_tt[rnd() % n];
        unsigned r = (unsigned)(rnd() % 100);
        if (r < 55)
            model_arm(x, past_due(2000)); /* arms, or re-arms if armed */
        else if (r < 85)
            model_disarm(x);
        else if (x->armed)
            model_arm(x, x->due); /* same due time again: now it is the last armed of them */
        T_EQ_INT(hd_timer_armed(&x->t), x->armed);
    }
    for (size_t i = 0; i < n; i++) {
        T_EQ_INT(hd_timer_armed(&g_tt[i].t), g_tt[i].armed);
        was_armed[i] = g_tt[i].armed;
    }
    T_OK(hd_loop_run_once(g_loop, 0) >= 0); /* all are due: one turn fires them all */
    check_fired_in_order(was_armed);
    for (size_t i = 0; i < n; i++)
        T_OK(!hd_timer_armed(&g_tt[i].t));
    teardown();
    free(was_armed);
}

/* Callbacks that disarm, re-arm and arm other timers (and themselves): each timer that fires
 * must be the first due of those armed at that moment. */
static size_t g_rearms;

static void on_fire_mutating(struct hd_timer *t)
{
    struct tt *x = container_of(t, struct tt, t), *min = NULL;

    for (size_t i = 0; i < g_n; i++)
        if (g_tt[i].armed && (!min || before(&g_tt[i], min)))
            min = &g_tt[i];
    T_OK(min == x);
    on_fire(t);
    for (int k = 0; k < 2; k++) {
        struct tt *y = &g_tt[rnd() % g_n];
        unsigned r = (unsigned)(rnd() % 100);
        if (r < 30) {
            model_disarm(y);
        } else if (r < 60 && g_rearms < 20000) {
            g_rearms++;
            model_arm(y, past_due(50));
        }
    }
}

static void test_callbacks(void)
{
    const size_t n = 3000;

    setup(n, on_fire_mutating, 64 * n);
    g_rearms = 0;
    for (size_t i = 0; i < n; i++)
        model_arm(&g_tt[i], past_due(50));
    run_all();
    for (size_t i = 0; i < n; i++)
        T_OK(!hd_timer_armed(&g_tt[i].t));
    T_OK(g_norder >= n / 2);
    teardown();
}

/* A timer in the future stays armed; one re-armed for "now" from its own callback runs in the
 * next turn, not in the same one. */
static int g_self_left;

static void on_fire_self(struct hd_timer *t)
{
    struct tt *x = container_of(t, struct tt, t);

    on_fire(t);
    if (--g_self_left > 0)
        model_arm(x, hd_loop_now_ms(g_loop));
}

static void test_future(void)
{
    setup(2, on_fire_self, 16);
    g_self_left = 3;
    model_arm(&g_tt[0], hd_loop_now_ms(g_loop) + 60000);
    model_arm(&g_tt[1], hd_loop_now_ms(g_loop));
    T_EQ_INT(hd_loop_run_once(g_loop, 0), 1);
    T_EQ_INT(g_tt[1].fired, 1);
    T_OK(hd_timer_armed(&g_tt[1].t));
    T_EQ_INT(hd_loop_run_once(g_loop, 0), 1);
    T_EQ_INT(hd_loop_run_once(g_loop, 0), 1);
    T_EQ_INT(g_tt[1].fired, 3);
    T_OK(!hd_timer_armed(&g_tt[1].t));
    T_EQ_INT(hd_loop_run_once(g_loop, 0), 0);
    T_OK(hd_timer_armed(&g_tt[0].t));
    T_EQ_INT(g_tt[0].fired, 0);
    model_disarm(&g_tt[0]);
    T_OK(!hd_timer_armed(&g_tt[0].t));
    hd_timer_disarm(g_loop, &g_tt[0].t); /* disarming twice is a no-op */
    teardown();
}

/* hd_loop_run_once waits for the first due timer, not for its whole timeout. */
static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void test_wait(void)
{
    uint64_t t0, dt;

    setup(3, on_fire, 8);
    hd_loop_update_now(g_loop);
    model_arm(&g_tt[0], hd_loop_now_ms(g_loop) + 5000);
    model_arm(&g_tt[1], hd_loop_now_ms(g_loop) + 30);
    model_arm(&g_tt[2], hd_loop_now_ms(g_loop) + 3000);
    model_disarm(&g_tt[2]);
    t0 = mono_ms();
    while (!g_tt[1].fired && mono_ms() - t0 < 4000)
        T_OK(hd_loop_run_once(g_loop, 4000) >= 0);
    dt = mono_ms() - t0;
    T_EQ_INT(g_tt[1].fired, 1);
    T_OK(dt >= 25 && dt < 2000);
    T_EQ_INT(g_tt[0].fired, 0);
    T_EQ_INT(g_tt[2].fired, 0);
    teardown();
}

/* 100,000 timers armed, re-armed and fired while every allocation fails: arming needs no
 * memory, so none is asked for and none is missed. */
static void test_alloc(void)
{
    const size_t n = 100000;
    int *was_armed = calloc(n, sizeof(*was_armed));
    unsigned long before_all;
    size_t mismatch = 0;
    void *probe;
    void *(*volatile malloc_fn)(size_t) = malloc;

    T_OK(was_armed);
    /* The hooks are in place: this very call goes through them (called through a volatile
     * pointer, which the compiler cannot elide). */
    before_all = alloc_all;
    probe = malloc_fn(16);
    T_OK(alloc_all == before_all + 1);
    free(probe);

    setup(n, on_fire, n);
    alloc_fail = 1;
    alloc_seen = 0;
    for (size_t i = 0; i < n; i++)
        model_arm(&g_tt[i], past_due(1000));
    for (size_t i = 0; i < n; i += 3)
        model_arm(&g_tt[i], past_due(1000)); /* re-arm */
    for (size_t i = 1; i < n; i += 7)
        model_disarm(&g_tt[i]);
    for (size_t i = 0; i < n; i++) {
        mismatch += hd_timer_armed(&g_tt[i].t) != g_tt[i].armed;
        was_armed[i] = g_tt[i].armed;
    }
    T_OK(hd_loop_run_once(g_loop, 0) >= 0);
    alloc_fail = 0; /* checks below may print */
    T_EQ_INT(alloc_seen, 0);
    T_EQ_INT(mismatch, 0);
    for (size_t i = 0; i < n; i++)
        T_EQ_INT(hd_timer_armed(&g_tt[i].t), 0);
    check_fired_in_order(was_armed);
    teardown();
    free(was_armed);
}

/* ---- deferred callbacks ---- */

struct dnode {
    struct hd_loop_defer d;
    int id;
    int chain; /* defer this node again once (from its own callback), then node chain_to */
    struct dnode *chain_to;
};

static int d_order[16], d_n;

static void on_defer(struct hd_loop_defer *d)
{
    struct dnode *x = container_of(d, struct dnode, d);

    if (d_n < 16)
        d_order[d_n++] = x->id;
    T_EQ_INT(d->queued, 0); /* off the list before its callback: it may defer itself again */
    if (x->chain) {
        x->chain = 0;
        hd_loop_defer(g_loop, &x->d);
        if (x->chain_to)
            hd_loop_defer(g_loop, &x->chain_to->d);
    }
}

static void test_defer(void)
{
    struct dnode a, b, c;
    uint64_t t0;

    hd_loop_defer_init(&a.d, on_defer);
    hd_loop_defer_init(&b.d, on_defer);
    hd_loop_defer_init(&c.d, on_defer);
    a.id = 1, b.id = 2, c.id = 3;
    a.chain = b.chain = c.chain = 0;
    a.chain_to = b.chain_to = c.chain_to = NULL;
    T_EQ_INT(hd_loop_pending(g_loop), 0);

    /* Queued once however often deferred; counted as pending; FIFO. */
    d_n = 0;
    hd_loop_defer(g_loop, &b.d);
    hd_loop_defer(g_loop, &a.d);
    hd_loop_defer(g_loop, &b.d);
    T_EQ_INT(hd_loop_pending(g_loop), 2);
    /* Run before the wait: a 5 s timeout with nothing else to do returns at once after a
     * callback deferred in the same pass ran too. */
    a.chain = 1, a.chain_to = &c;
    t0 = mono_ms();
    T_OK(hd_loop_run_once(g_loop, 0) >= 0);
    T_OK(mono_ms() - t0 < 1000);
    T_EQ_INT(d_n, 4);
    T_EQ_INT(d_order[0], 2);
    T_EQ_INT(d_order[1], 1);
    T_EQ_INT(d_order[2], 1); /* a deferred itself again from its callback */
    T_EQ_INT(d_order[3], 3);
    T_EQ_INT(hd_loop_pending(g_loop), 0);
    T_EQ_INT(a.d.queued + b.d.queued + c.d.queued, 0);

    /* Nothing deferred: nothing runs. */
    T_OK(hd_loop_run_once(g_loop, 0) >= 0);
    T_EQ_INT(d_n, 4);
}

/* Timeout queues against a model: entries set mostly in due order (a fixed duration after a
 * clock that moves on) and sometimes earlier, cleared at random, moved between two queues,
 * and set and cleared from the callbacks. Every entry set when its queue fired runs once, in
 * (due, set order); a cleared one never does; a callback's own settings wait a turn. */
#define TQ_N 2000

struct tqe {
    struct hd_tq_ent e;
    struct hd_tq *q; /* model: the queue it is set in, or NULL */
    uint64_t due, seq;
    unsigned fired;
};

static struct tqe g_tqe[TQ_N];
static struct hd_tq g_tq[2];
static uint64_t g_tqseq, g_tq_fired;
static int g_tq_mutate; /* the callbacks set and clear entries: at most this many sets */

static void tq_model_set(struct tqe *x, struct hd_tq *q, uint64_t due)
{
    hd_tq_set(q, &x->e, due);
    x->q = q;
    x->due = due;
    x->seq = g_tqseq++;
}

static void tq_model_clear(struct tqe *x)
{
    hd_tq_clear(&x->e);
    x->q = NULL;
}

static void on_tq(struct hd_tq_ent *e)
{
    struct tqe *x = container_of(e, struct tqe, e), *min = NULL;

    T_OK(x->q != NULL && !hd_tq_is_set(e));
    T_OK(x->due <= hd_loop_now_ms(g_loop));
    /* The first due (then first set) of those set in its queue. */
    for (size_t i = 0; i < TQ_N; i++) {
        struct tqe *y = &g_tqe[i];
        if (y->q == x->q && (!min || y->due < min->due || (y->due == min->due && y->seq < min->seq)))
            min = y;
    }
    T_OK(min == x);
    x->q = NULL;
    x->fired++;
    g_tq_fired++;
    for (int k = 0; k < 2 && g_tq_mutate > 0; k++) {
        struct tqe *y = &g_tqe[rnd() % TQ_N];
        if (rnd() % 2) {
            tq_model_clear(y);
        } else {
            tq_model_set(y, &g_tq[rnd() % 2], hd_loop_now_ms(g_loop) - rnd() % 3);
            g_tq_mutate--;
        }
    }
}

static void test_tq(void)
{
    uint64_t base = hd_loop_now_ms(g_loop);

    for (int round = 0; round < 2; round++) {
        size_t set = 0;
        g_tq_mutate = round ? 5000 : 0;
        hd_tq_init(&g_tq[0], g_loop);
        hd_tq_init(&g_tq[1], g_loop);
        for (size_t i = 0; i < TQ_N; i++) {
            memset(&g_tqe[i], 0, sizeof(g_tqe[i]));
            hd_tq_ent_init(&g_tqe[i].e, on_tq);
        }
        for (size_t op = 0; op < 20 * TQ_N; op++) {
            struct tqe *x = &g_tqe[rnd() % TQ_N];
            unsigned r = (unsigned)(rnd() % 100);
            /* Due times in the past (all fire in the next turns), rising with op like a clock;
             * one set in ten falls earlier than the ones before it. */
            uint64_t due = base - 100000 + op / 8 - (r < 6 ? rnd() % 500 : 0);
            if (r < 60)
                tq_model_set(x, &g_tq[r % 2], due);
            else if (r < 90)
                tq_model_clear(x);
            T_EQ_INT(hd_tq_is_set(&x->e), x->q != NULL);
        }
        for (size_t i = 0; i < TQ_N; i++) {
            g_tqe[i].fired = 0;
            set += g_tqe[i].q != NULL;
        }
        g_tq_fired = 0;
        for (int turn = 0; turn < 1000 && (g_tq[0].head || g_tq[1].head); turn++)
            T_OK(hd_loop_run_once(g_loop, 0) >= 0);
        T_OK(!g_tq[0].head && !g_tq[1].head);
        for (size_t i = 0; i < TQ_N; i++) {
            T_OK(g_tqe[i].q == NULL);
            T_OK(g_tqe[i].fired <= (round ? TQ_N : 1u));
        }
        if (!round)
            T_EQ_INT(g_tq_fired, set);
        else
            T_OK(g_tq_fired >= set);
        /* A future entry stays; fini clears it and disarms. */
        tq_model_set(&g_tqe[0], &g_tq[0], hd_loop_now_ms(g_loop) + 60000);
        T_OK(hd_loop_run_once(g_loop, 0) >= 0);
        T_OK(hd_tq_is_set(&g_tqe[0].e));
        hd_tq_fini(&g_tq[0]);
        hd_tq_fini(&g_tq[1]);
        T_OK(!hd_tq_is_set(&g_tqe[0].e) && !hd_timer_armed(&g_tq[0].timer));
    }
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {{"order", test_order},   {"callbacks", test_callbacks}, {"future", test_future},
                 {"wait", test_wait},     {"alloc", test_alloc},         {"defer", test_defer},
                 {"tq", test_tq}};
    int rv = hd_loop_new(&g_loop, 64);

    if (rv < 0)
        T_SKIP("no io_uring here (%d)", rv);
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        int run = argc < 2;
        for (int a = 1; a < argc; a++)
            run |= strcmp(argv[a], tests[i].name) == 0;
        if (run) {
            hd_loop_update_now(g_loop);
            tests[i].fn();
            printf("%s: ok\n", tests[i].name);
        }
    }
    hd_loop_free(g_loop);
    T_DONE();
}

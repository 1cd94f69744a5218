/* Active-host slots of a loop thread. A host with requests in flight holds a connection (TLS
 * and HTTP/2 state, buffers), so the number of such hosts bounds a thread's memory. There are
 * two pools:
 *
 *  - the main pool, max_active_hosts slots: a host takes one when its first request goes out
 *    and gives it back when its last answer (or failure) comes in; hosts that find the pool
 *    full wait in FIFO order (slot_head / slot_tail);
 *  - the slow pool, slow_hosts slots: a host of the main pool that has waited longer than the
 *    slow threshold (in connection set-up, or for an answer) with no answer since it took its
 *    slot or since its last answer moves here, and its main slot goes to the next waiting
 *    host. It stays here until its last request is answered or fails (the hung ones at their
 *    time-out).
 *
 * A host is slow when its wait is abnormal for this thread now, three conditions together:
 *  - longer than slow_after_ms;
 *  - longer than SLOW_TURNS turns of the thread's loop (each turn handles every completion
 *    that is ready). A thread that is itself behind (signing and handshakes use all of its
 *    CPU) makes every host wait, but its turns are then long and few: a healthy host is
 *    answered within a few turns (connect, handshake, request, answer), while a hung or slow
 *    host waits turn after turn;
 *  - longer than twice the median of the thread's last SLOT_WAITS waits from a slot taken to
 *    its first answer. When every host answers late (a loaded machine, a slow network), that
 *    is the normal wait, not a reason to open more connections.
 * Counted in time alone, a busy thread moved nearly every host of a large fan-out (measured:
 * 1,910 of 2,000), and the slow pool then only adds connections, and memory.
 *
 * Hung and slow hosts therefore cannot hold the slots that healthy hosts need, and the main
 * cap can stay small. When the slow pool is full a slow host keeps its main slot, so the
 * number of hosts with connections never exceeds max_active_hosts + slow_hosts per thread.
 * The check runs every SLOT_CHECK_MS over the main pool only (at most max_active_hosts hosts).
 */
#include <stdlib.h>
#include <string.h>

#include "sched_impl.h"

static void list_add(struct shost **head, struct shost *h)
{
    h->sl_prev = NULL;
    h->sl_next = *head;
    if (*head)
        (*head)->sl_prev = h;
    *head = h;
}

static void list_del(struct shost **head, struct shost *h)
{
    if (h->sl_prev)
        h->sl_prev->sl_next = h->sl_next;
    else
        *head = h->sl_next;
    if (h->sl_next)
        h->sl_next->sl_prev = h->sl_prev;
    h->sl_prev = h->sl_next = NULL;
}

/* The longest-waiting hosts get the main slots that are free, one each. A host still in line
 * that got a slot meanwhile (it ran for another reason when one was free) is passed over, so
 * that its wake-up is not lost to the hosts behind it; a woken host that finds nothing to send
 * leaves its slot to the next call (a slot given back, or the periodic check). */
static void wake_waiters(struct sthread *th)
{
    unsigned woken = 0;

    while (th->slot_head && th->active_hosts + woken < th->o->max_active_hosts) {
        struct shost *w = th->slot_head;
        th->slot_head = w->snext;
        if (!th->slot_head)
            th->slot_tail = NULL;
        w->slot_waiting = 0;
        if (w->slot_pool != HD_SLOT_NONE)
            continue;
        hd_sched_runnable(w);
        woken++;
    }
}

int hd_sched_slot_wait(struct sthread *th, struct shost *h)
{
    if (h->inflight || th->active_hosts < th->o->max_active_hosts)
        return 0;
    if (!h->slot_waiting) {
        h->slot_waiting = 1;
        h->snext = NULL;
        if (th->slot_tail)
            th->slot_tail->snext = h;
        else
            th->slot_head = h;
        th->slot_tail = h;
    }
    return 1;
}

void hd_sched_slot_take(struct sthread *th, struct shost *h, uint64_t now)
{
    h->slot_pool = HD_SLOT_MAIN;
    h->slot_since = now;
    h->slot_turn = th->turns;
    h->slot_answered = 0;
    list_add(&th->main_hosts, h);
    th->active_hosts++;
}

void hd_sched_slot_progress(struct sthread *th, struct shost *h, uint64_t now)
{
    if (h->slot_pool != HD_SLOT_NONE && !h->slot_answered) {
        uint64_t w = now - h->slot_since;
        th->slot_wait[th->slot_wait_i] = w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
        th->slot_wait_i = (th->slot_wait_i + 1) % SLOT_WAITS;
        if (th->slot_wait_n < SLOT_WAITS)
            th->slot_wait_n++;
        h->slot_answered = 1;
    }
    h->slot_since = now;
    h->slot_turn = th->turns;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* slow_after_ms, or twice the median recent first-answer wait when longer (from 8 waits). */
static uint64_t slow_ms(const struct sthread *th)
{
    uint32_t w[SLOT_WAITS];
    uint64_t t = th->o->slow_after_ms, m;

    if (th->slot_wait_n < 8)
        return t;
    memcpy(w, th->slot_wait, th->slot_wait_n * sizeof(w[0]));
    qsort(w, th->slot_wait_n, sizeof(w[0]), cmp_u32);
    m = 2 * (uint64_t)w[th->slot_wait_n / 2];
    return m > t ? m : t;
}

void hd_sched_slot_give(struct sthread *th, struct shost *h)
{
    if (h->slot_pool == HD_SLOT_SLOW) {
        list_del(&th->slow_list, h);
        th->slow_hosts--;
    } else if (h->slot_pool == HD_SLOT_MAIN) {
        list_del(&th->main_hosts, h);
        th->active_hosts--;
        wake_waiters(th);
    }
    h->slot_pool = HD_SLOT_NONE;
}

void hd_sched_slots_check(struct sthread *th, uint64_t now)
{
    const struct hd_run_opts *o = th->o;
    struct shost *h, *next;
    uint64_t limit;

    th->last_slot_check_ms = now;
    wake_waiters(th); /* free slots never stay unused while hosts wait */
    if (!o->slow_hosts || !o->slow_after_ms || !th->main_hosts ||
        th->slow_hosts >= o->slow_hosts)
        return;
    limit = slow_ms(th);
    for (h = th->main_hosts; h && th->slow_hosts < o->slow_hosts; h = next) {
        next = h->sl_next;
        if (now - h->slot_since < limit || th->turns - h->slot_turn < SLOW_TURNS)
            continue;
        list_del(&th->main_hosts, h);
        th->active_hosts--;
        h->slot_pool = HD_SLOT_SLOW;
        list_add(&th->slow_list, h);
        th->slow_hosts++;
        th->slow_moves++;
        wake_waiters(th);
    }
}

/* The event loop: one io_uring ring per thread, completion dispatch and timers.
 *
 * Only loop.c includes liburing.h. Every asynchronous operation is described by a
 * struct hd_loop_op that the caller embeds in its own object (container_of style);
 * the op must stay alive until its callback has run. Each submitted op completes
 * exactly once: op->cb(op, res) where res is the CQE result (>= 0, or -errno,
 * -ECANCELED after hd_loop_cancel).
 *
 * Why function pointers rather than one switch on an op code in user_data (as
 * liburing's proxy.c does): the loop is shared by the transport, DNS, the
 * scheduler and bench/fedisim; a pointer per op keeps loop.c ignorant of all of
 * them while still dispatching from one place (hd_loop_run_once).
 */
#ifndef HD_LOOP_H
#define HD_LOOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct hd_loop;
struct hd_loop_op;

typedef void (*hd_loop_cb)(struct hd_loop_op *op, int res);

struct hd_loop_op {
    hd_loop_cb cb;
};

struct hd_timer;
typedef void (*hd_timer_cb)(struct hd_timer *t);

/* A timer embedded in its owner. Initialise with hd_timer_init before use.
 *
 * The loop keeps armed timers in an intrusive pairing heap whose links live here, in the
 * timer itself: arming never allocates and cannot fail. Timers fire in order of due time,
 * and timers due at the same millisecond in the order they were armed. Arm is O(1), disarm
 * and firing are O(log n) amortized. The fields are the loop's; read them only through the
 * functions below. */
struct hd_timer {
    uint64_t due_ms;        /* monotonic ms (hd_loop_now_ms clock) */
    uint64_t seq;           /* arm order, breaks ties between equal due times */
    struct hd_timer *child; /* first child in the heap */
    struct hd_timer *next;  /* next sibling */
    struct hd_timer *prev;  /* previous sibling, or the parent of a first child */
    hd_timer_cb cb;
    int armed;
};

struct hd_tq;
struct hd_tq_ent;
typedef void (*hd_tq_cb)(struct hd_tq_ent *e);

/* A timeout queue: deadlines that are mostly set in the order they fall due (one duration
 * after "now", as a pool's request timeouts are), kept as a list in due order. Setting one
 * (appended, or walked back from the tail when it falls earlier) and clearing one are O(1) in
 * that case, and the loop's heap holds one timer for the whole queue: armed for the first
 * deadline, re-armed when it fires. A deadline cleared early costs nothing then; the queue's
 * timer may fire for nothing once. Entries fire in due order (equal ones in the order they
 * were set), each once; a callback may set or clear any entry, its own included, and one it
 * sets fires on a later turn at the earliest, as timers do. The fields are the queue's. */
struct hd_tq_ent {
    uint64_t due_ms;
    uint64_t seq; /* set order: one set by a callback fires on a later turn */
    struct hd_tq_ent *next, *prev;
    struct hd_tq *q; /* the queue it is set in, or NULL */
    hd_tq_cb cb;
};

struct hd_tq {
    struct hd_timer timer;
    struct hd_loop *loop;
    struct hd_tq_ent *head, *tail;
    uint64_t seq;
};

struct hd_loop_defer;
typedef void (*hd_loop_defer_cb)(struct hd_loop_defer *d);

/* Work put off to the end of the current iteration, embedded in its owner: the callbacks
 * run at the start of the next hd_loop_run_once, before it submits to the kernel, in the
 * order they were deferred. A connection defers its send this way, so that everything it
 * has to say in one iteration (a SETTINGS ACK, requests, a GOAWAY) leaves in one send and
 * one segment. Initialise with hd_loop_defer_init; it counts in hd_loop_pending while
 * queued. */
struct hd_loop_defer {
    struct hd_loop_defer *next;
    hd_loop_defer_cb cb;
    int queued;
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* Creates a loop with a ring of `entries` SQEs (0: default 1024).
 * Returns 0, or -errno from io_uring_queue_init (-ENOSYS, -EPERM: no io_uring here), or -ENOMEM. */
int hd_loop_new(struct hd_loop **out, unsigned entries);
/* Frees the loop. Ops still in flight are abandoned: call only after every owner is gone. NULL ok. */
void hd_loop_free(struct hd_loop *loop);

/* Monotonic milliseconds, refreshed at each hd_loop_run_once iteration. */
uint64_t hd_loop_now_ms(struct hd_loop *loop);
/* Reads the monotonic clock now and refreshes the cached value. */
uint64_t hd_loop_update_now(struct hd_loop *loop);

/* Queue operations. Each returns 0 or -errno (only if the ring cannot be flushed).
 * Buffers and addresses must stay valid until the op completes. */
int hd_loop_connect(struct hd_loop *loop, struct hd_loop_op *op, int fd, const struct sockaddr *sa,
                    socklen_t salen);
int hd_loop_send(struct hd_loop *loop, struct hd_loop_op *op, int fd, const void *buf, size_t len);
/* hd_loop_send with MSG_MORE: the bytes wait in the socket for more, or for the close whose
 * FIN then leaves in the same segment (a connection's last frames). */
int hd_loop_send_last(struct hd_loop *loop, struct hd_loop_op *op, int fd, const void *buf,
                      size_t len);
int hd_loop_recv(struct hd_loop *loop, struct hd_loop_op *op, int fd, void *buf, size_t len);
int hd_loop_accept(struct hd_loop *loop, struct hd_loop_op *op, int fd);
/* One-shot poll; res is the returned event mask (POLLIN, POLLOUT, ...). */
int hd_loop_poll(struct hd_loop *loop, struct hd_loop_op *op, int fd, unsigned mask);
/* Closes fd asynchronously; op may be NULL (completion ignored). */
int hd_loop_close(struct hd_loop *loop, struct hd_loop_op *op, int fd);
/* Asks the kernel to cancel a pending op; the op still completes (usually -ECANCELED). */
int hd_loop_cancel(struct hd_loop *loop, struct hd_loop_op *op);

void hd_timer_init(struct hd_timer *t, hd_timer_cb cb);
/* Arms (or re-arms) t to fire once at due_ms; a re-armed timer counts as armed last. Never
 * fails: the timer carries its own links. A due_ms already past fires at the next
 * hd_loop_run_once. t must stay alive (or be disarmed) until it fires. */
void hd_timer_arm(struct hd_loop *loop, struct hd_timer *t, uint64_t due_ms);
/* Disarms t; no-op if not armed. */
void hd_timer_disarm(struct hd_loop *loop, struct hd_timer *t);
static inline int hd_timer_armed(const struct hd_timer *t)
{
    return t->armed;
}

void hd_tq_init(struct hd_tq *q, struct hd_loop *loop);
/* Clears every entry still set (none fires) and disarms the queue's timer. */
void hd_tq_fini(struct hd_tq *q);
void hd_tq_ent_init(struct hd_tq_ent *e, hd_tq_cb cb);
/* Sets e to fire at due_ms (moved from the queue it was set in, if any). */
void hd_tq_set(struct hd_tq *q, struct hd_tq_ent *e, uint64_t due_ms);
/* Clears e; no-op if not set. */
void hd_tq_clear(struct hd_tq_ent *e);
static inline int hd_tq_is_set(const struct hd_tq_ent *e)
{
    return e->q != NULL;
}

void hd_loop_defer_init(struct hd_loop_defer *d, hd_loop_defer_cb cb);
/* Queues d once (no-op while it is queued). d must stay alive until its callback has run. */
void hd_loop_defer(struct hd_loop *loop, struct hd_loop_defer *d);

/* Runs the deferred callbacks (those they defer included), submits queued SQEs, waits up to
 * timeout_ms (or until the next timer is due, whichever is sooner) for at least one
 * completion, then runs every ready completion callback and every due timer. Returns the
 * number of callbacks run, or -errno on a ring failure. */
int hd_loop_run_once(struct hd_loop *loop, unsigned timeout_ms);

/* Number of ops submitted and not yet completed, deferred callbacks included. */
size_t hd_loop_pending(const struct hd_loop *loop);

#endif

/* Idle connections of a client (conn.h): a list in the env, oldest idle first, bounded by
 * the idle time-out (a timer per connection), by max_idle_conns and by max_idle_bytes, of
 * which connections never reused may hold 1/HD_CONN_IDLE_FIRST_DIV. Over a cap, the
 * connection idle the longest among the never reused closes first, then among the others;
 * never one whose origin has requests waiting. A connection is reused once it goes idle and
 * busy again, or when an earlier connection to its origin went idle (idle_seen). So a
 * fan-out's hosts, each done after one busy spell, leave room for the connections of hosts
 * that keep receiving. A cleartext connection never reused is not kept at all: reconnecting
 * costs less than keeping it, and it closes at the end of the loop iteration in which it went
 * idle, without a receive armed meanwhile (a receive, its cancel and a timer less). */
#include "conn.h"
#include "conn_impl.h"
#include "h2.h"
#include "log.h"

/* FNV-1a of the origin, never 0 (0 marks an empty slot). */
static uint64_t origin_hash(const struct hd_conn_peer *peer)
{
    uint64_t h = 1469598103934665603ull;

    for (const char *p = peer->host; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ peer->port) * 1099511628211ull;
    h = (h ^ (unsigned)peer->tls) * 1099511628211ull;
    return h ? h : 1;
}

static size_t idle_cost(const struct hd_conn *conn)
{
    return conn->peer->tls ? HD_CONN_IDLE_TLS_BYTES : HD_CONN_IDLE_PLAIN_BYTES;
}

void hd_conn_idle_unlink(struct hd_conn *conn)
{
    struct hd_conn_env *env = conn->env;

    if (!conn->on_idle)
        return;
    if (conn->iprev)
        conn->iprev->inext = conn->inext;
    else
        env->idle_head = conn->inext;
    if (conn->inext)
        conn->inext->iprev = conn->iprev;
    else
        env->idle_tail = conn->iprev;
    conn->inext = conn->iprev = NULL;
    conn->on_idle = 0;
    env->nidle--;
    env->idle_bytes -= idle_cost(conn);
    if (!conn->reused)
        env->idle_first_bytes -= idle_cost(conn);
}

static void idle_push(struct hd_conn *conn)
{
    struct hd_conn_env *env = conn->env;
    uint64_t h = origin_hash(conn->peer);
    uint64_t *seen = &env->idle_seen[h % HD_CONN_IDLE_SEEN];

    /* A host whose earlier connection went idle (and closed since) is one that receives
     * again and again: its new connection counts as reused. */
    if (!conn->reused && !conn->idle_before && *seen == h)
        conn->reused = 1;
    *seen = h;
    conn->idle_before = 1;

    conn->iprev = env->idle_tail;
    conn->inext = NULL;
    if (env->idle_tail)
        env->idle_tail->inext = conn;
    else
        env->idle_head = conn;
    env->idle_tail = conn;
    conn->on_idle = 1;
    env->nidle++;
    env->idle_bytes += idle_cost(conn);
    if (!conn->reused)
        env->idle_first_bytes += idle_cost(conn);
}

void hd_conn_idle_close(struct hd_conn *conn)
{
    hd_conn_idle_unlink(conn);
    if (conn->h2 && !conn->draining && conn->state == HD_CONN_OPEN) {
        conn->draining = 1;
        hd_h2_terminate(conn->h2);
        hd_conn_arm(conn, HD_CT_IDLE, 1000); /* in case it cannot leave */
        hd_conn_flush(conn);
        return;
    }
    hd_conn_close(conn, 0);
}

void hd_conn_update_idle(struct hd_conn *conn)
{
    struct hd_conn_env *env = conn->env;
    unsigned ms = conn->env->opts->idle_timeout_ms, cap = conn->env->opts->max_idle_conns;
    size_t max_bytes = conn->env->opts->max_idle_bytes;

    if (conn->state != HD_CONN_OPEN || conn->draining) {
        hd_conn_idle_unlink(conn);
        return;
    }
    if (conn->h1_rq || conn->active.n > 0) {
        conn->idle_closing = 0; /* taken again: idle_end arms its receive if need be */
        if (conn->on_idle) {
            hd_conn_idle_unlink(conn);
            conn->reused = 1;
        }
        if (conn->timer_kind == HD_CT_IDLE)
            hd_conn_disarm(conn);
        return;
    }
    if (conn->on_idle) {
        if (conn->timer_kind != HD_CT_IDLE && ms)
            hd_conn_arm(conn, HD_CT_IDLE, ms);
        return;
    }
    idle_push(conn);
    if (!conn->peer->tls && !conn->reused &&
        !(conn->peer->waiting && conn->peer->waiting->n > 0)) {
        /* Cleartext, never reused, nothing waiting for its origin: a host a fan-out is done
         * with. Closed at the end of this loop turn unless a request takes it meanwhile: a
         * new h2c connection costs about 50 us of CPU and a round trip, while this one would
         * hold some 40 KiB (nghttp2's session with its frame buffer, the receive buffer),
         * whose first touch as the heap grows is a page fault each 4 KiB. TLS connections,
         * a handshake to set up again, stay within the never-reused share instead. */
        HD_LOG(HD_LOG_DEBUG, "conn", "msg=\"idle close\" host=%s reason=cleartext-first",
               conn->peer->host);
        hd_conn_close_at_turn_end(conn);
        return;
    }
    if (conn->timer_kind != HD_CT_IDLE && ms)
        hd_conn_arm(conn, HD_CT_IDLE, ms);
    /* Over a cap: the never-reused connection idle the longest goes first, then the others,
     * passing over those whose origin has requests waiting (they are about to be busy again)
     * and this one. */
    for (int pass = 0; pass < 2; pass++) {
        for (struct hd_conn *c = env->idle_head, *next; c; c = next) {
            int over = (cap && env->nidle > cap) || (max_bytes && env->idle_bytes > max_bytes);
            int over_first =
                max_bytes && env->idle_first_bytes > max_bytes / HD_CONN_IDLE_FIRST_DIV;

            next = c->inext;
            if (!over && (!over_first || pass == 1))
                return;
            if (c == conn || (c->peer->waiting && c->peer->waiting->n > 0) ||
                (pass == 0 && c->reused) || (pass == 1 && !c->reused && !over))
                continue;
            HD_LOG(HD_LOG_DEBUG, "conn",
                   "msg=\"idle cap\" host=%s reused=%d idle=%zu idle_bytes=%zu",
                   c->peer->host, c->reused, env->nidle, env->idle_bytes);
            hd_conn_idle_close(c);
        }
    }
}

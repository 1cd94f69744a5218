/* One client connection: DNS -> address guard -> TCP connect (each address in order) ->
 * TLS (wolfSSL on memory buffers) or h2c on probation -> HTTP/2 or HTTP/1.1. All socket I/O goes
 * through the loop; at most one recv and one send are in flight. The owner hears of it through
 * env->ops (conn.h).
 *
 * Lifetime: hd_conn_close marks CLOSING, cancels what is in flight and, once the last op has
 * completed (nops == 0), queues an async close of the fd; its completion frees the object.
 * When the ring cannot take the close, the object waits on env->dead for hd_conn_reap.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "clock.h"
#include "conn.h"
#include "conn_impl.h"
#include "dns.h"
#include "err.h"
#include "h2.h"
#include "h1.h"
#include "log.h"
#include "rq.h"
#include "tls.h"
#include "tlscache.h"

static void start_recv(struct hd_conn *conn);
static void try_next_addr(struct hd_conn *conn);
static void maybe_release(struct hd_conn *conn);

/* One of conn's operations (a completion, a deferred callback, a lookup) ended: 1 when conn is
 * closing (released if that was its last operation) and the caller must stop there. */
static int op_done(struct hd_conn *conn)
{
    conn->nops--;
    if (conn->state != HD_CONN_CLOSING)
        return 0;
    maybe_release(conn);
    return 1;
}

static struct hd_loop *loop_of(const struct hd_conn *conn)
{
    return conn->env->loop;
}

static const struct hd_http_opts *opts_of(const struct hd_conn *conn)
{
    return conn->env->opts;
}

/* ---- shared state ---- */

int hd_conn_env_init(struct hd_conn_env *env, struct hd_loop *loop,
                     const struct hd_http_opts *opts, struct hd_tls_ctx *tls_ctx,
                     struct hd_tls_cache *tls_cache, const struct hd_conn_ops *ops,
                     void *user_data)
{
    memset(env, 0, sizeof(*env));
    env->pbuf = malloc(HD_CONN_PBUF);
    if (!env->pbuf)
        return -ENOMEM;
    env->loop = loop;
    env->opts = opts;
    env->tls_ctx = tls_ctx;
    env->tls_cache = tls_cache;
    env->ops = ops;
    env->user_data = user_data;
    return 0;
}

void hd_conn_env_fini(struct hd_conn_env *env)
{
    hd_conn_reap(env);
    while (env->wbuf_pool_n > 0)
        free(env->wbuf_pool[--env->wbuf_pool_n]);
    free(env->pbuf);
    env->pbuf = NULL;
}

void hd_conn_arm(struct hd_conn *conn, enum hd_conn_timer kind, unsigned ms)
{
    conn->timer_kind = kind;
    if (ms)
        hd_timer_arm(loop_of(conn), &conn->timer, hd_loop_now_ms(loop_of(conn)) + ms);
    else
        hd_timer_disarm(loop_of(conn), &conn->timer);
}

void hd_conn_disarm(struct hd_conn *conn)
{
    conn->timer_kind = HD_CT_NONE;
    hd_timer_disarm(loop_of(conn), &conn->timer);
}

/* ---- send buffer ----
 * A connection holds a send buffer only while it has output: most connections of a large
 * fan-out sit idle waiting for answers, and 32 KiB each would add up. Buffers go back to a
 * small pool in the env (one per client), so steady traffic allocates nothing. */

static int wbuf_get(struct hd_conn *conn)
{
    struct hd_conn_env *c = conn->env;

    if (conn->wbuf)
        return 0;
    conn->wbuf = c->wbuf_pool_n > 0 ? c->wbuf_pool[--c->wbuf_pool_n] : malloc(HD_CONN_WBUF);
    conn->woff = conn->wlen = 0;
    return conn->wbuf ? 0 : -ENOMEM;
}

static void wbuf_put(struct hd_conn *conn)
{
    struct hd_conn_env *c = conn->env;

    if (!conn->wbuf || conn->send_busy || conn->wlen > conn->woff)
        return;
    if (c->wbuf_pool_n < HD_CONN_WBUF_POOL)
        c->wbuf_pool[c->wbuf_pool_n++] = conn->wbuf;
    else
        free(conn->wbuf);
    conn->wbuf = NULL;
    conn->woff = conn->wlen = 0;
}

/* Free plaintext space in the send buffer (after TLS overhead), compacting when possible. */
static size_t conn_room(struct hd_conn *conn)
{
    size_t room;

    if (wbuf_get(conn) != 0)
        return 0;
    if (!conn->send_busy && conn->woff > 0) {
        memmove(conn->wbuf, conn->wbuf + conn->woff, conn->wlen - conn->woff);
        conn->wlen -= conn->woff;
        conn->woff = 0;
    }
    room = HD_CONN_WBUF - conn->wlen;
    if (conn->tls) {
        size_t ovh = HD_TLS_OVERHEAD(room);
        room = room > ovh ? room - ovh : 0;
    }
    return room;
}

static int append(struct hd_conn *conn, const uint8_t *data, size_t n)
{
    if (wbuf_get(conn) != 0 || n > HD_CONN_WBUF - conn->wlen)
        return -1;
    memcpy(conn->wbuf + conn->wlen, data, n);
    conn->wlen += n;
    return 0;
}

static int tls_sink(const uint8_t *data, size_t n, void *user_data)
{
    struct hd_conn *conn = user_data;

    if (!conn->wbuf || n > HD_CONN_WBUF - conn->wlen)
        conn_room(conn); /* gets a buffer, compacts when no send is in flight */
    return append(conn, data, n);
}

/* Appends plaintext (encrypting when TLS). Caller checked conn_room. Returns 0 or err. */
static int conn_write(struct hd_conn *conn, const uint8_t *data, size_t n)
{
    if (conn->tls)
        return hd_tls_write(conn->tls, data, n);
    return append(conn, data, n) == 0 ? 0 : HD_ERR_FULL;
}

/* ---- HTTP/1.1 request output ---- */

static int h1_pump(struct hd_conn *conn)
{
    struct hd_http_rq *rq = conn->h1_rq;
    int rv;

    while (rq && rq->body_off < rq->req.body_len) {
        size_t room = conn_room(conn), n = rq->req.body_len - rq->body_off;
        if (room < 1024 && room < n)
            break;
        if (n > room)
            n = room;
        if (n > 16384)
            n = 16384;
        rv = conn_write(conn, rq->req.body + rq->body_off, n);
        if (rv != 0)
            return rv;
        rq->body_off += n;
    }
    return 0;
}

static void on_send(struct hd_loop_op *op, int res);
static void on_idle_end(struct hd_loop_defer *d);

/* An open HTTP/2 session with nothing more to read or write: what the send buffer holds are
 * its last frames (a GOAWAY), and the connection closes once they are written. */
static int h2_last_frames(const struct hd_conn *conn)
{
    return conn->h2 && conn->state == HD_CONN_OPEN && !hd_h2_alive(conn->h2);
}

/* Puts what the send buffer holds on the wire: one send in flight at a time. */
static void transmit(struct hd_conn *conn)
{
    int rv;

    if (!conn->send_busy && conn->wbuf && conn->wlen > conn->woff) {
        /* The last frames (h2_last_frames) go with MSG_MORE: they wait in the socket for the
         * close and leave with its FIN in one segment, not two (a segment costs the peer a
         * wake-up, and on loopback this CPU the delivery). The socket has TCP_NODELAY, so
         * anything that pushes it (an incoming ACK) sends them. */
        if (h2_last_frames(conn))
            rv = hd_loop_send_last(loop_of(conn), &conn->send_op, conn->fd,
                                   conn->wbuf + conn->woff, conn->wlen - conn->woff);
        else
            rv = hd_loop_send(loop_of(conn), &conn->send_op, conn->fd, conn->wbuf + conn->woff,
                              conn->wlen - conn->woff);
        if (rv != 0) {
            hd_conn_close(conn, HD_ERR_RESET);
            return;
        }
        conn->send_busy = 1;
        conn->nops++;
    }
    wbuf_put(conn); /* nothing left to send: give the buffer back */
}

/* The deferred send (hd_loop_defer): everything written in one loop iteration goes out
 * together. */
static void on_tx(struct hd_loop_defer *d)
{
    struct hd_conn *conn = container_of(d, struct hd_conn, tx);

    if (op_done(conn))
        return;
    transmit(conn);
    /* After the last frames, nothing more to read: no receive. */
    if (conn->state != HD_CONN_CLOSING && conn->state >= HD_CONN_TLS && !h2_last_frames(conn))
        start_recv(conn);
}

void hd_conn_close_at_turn_end(struct hd_conn *conn)
{
    conn->idle_closing = 1;
    if (!conn->idle_end.queued) {
        conn->nops++;
        hd_loop_defer(loop_of(conn), &conn->idle_end);
    }
}

/* The end of the iteration in which conn went idle (hd_conn_close_at_turn_end): closed if it
 * still is, else its receive armed (it was held back while the close was pending). */
static void on_idle_end(struct hd_loop_defer *d)
{
    struct hd_conn *conn = container_of(d, struct hd_conn, idle_end);

    if (op_done(conn))
        return;
    if (conn->idle_closing) {
        conn->idle_closing = 0;
        hd_conn_idle_close(conn);
    } else if (conn->state >= HD_CONN_TLS) {
        start_recv(conn);
    }
    maybe_release(conn);
}

void hd_conn_flush(struct hd_conn *conn)
{
    int rv = 0;

    if (conn->state == HD_CONN_CLOSING)
        return;
    if (conn->state == HD_CONN_OPEN) {
        if (conn->h2)
            rv = hd_h2_pull(conn->h2);
        else if (conn->proto == 1)
            rv = h1_pump(conn);
        if (rv != 0) {
            hd_conn_close(conn, rv);
            return;
        }
        if (conn->h2 && conn->state == HD_CONN_OPEN &&
            (!hd_h2_alive(conn->h2) || (conn->draining && conn->active.n == 0)) &&
            conn->wlen == conn->woff) {
            hd_conn_close(conn, 0);
            return;
        }
    }
    if (!conn->send_busy && conn->wbuf && conn->wlen > conn->woff) {
        if (!conn->tx.queued) {
            conn->nops++;
            hd_loop_defer(loop_of(conn), &conn->tx);
        }
        return;
    }
    wbuf_put(conn); /* nothing left to send: give the buffer back */
}

static void on_send(struct hd_loop_op *op, int res)
{
    struct hd_conn *conn = container_of(op, struct hd_conn, send_op);

    conn->send_busy = 0;
    if (op_done(conn))
        return;
    if (res < 0) {
        hd_conn_close(conn, conn->state == HD_CONN_TLS ? HD_ERR_TLS : HD_ERR_RESET);
        maybe_release(conn);
        return;
    }
    conn->woff += (size_t)res;
    if (conn->woff == conn->wlen)
        conn->woff = conn->wlen = 0;
    hd_conn_flush(conn);
    maybe_release(conn);
}

/* ---- lifecycle ---- */

static void on_timer(struct hd_timer *t);
/* Offers the session saved for this exact host name and port, if any. */
static void offer_session(struct hd_conn *conn)
{
    uint8_t der[HD_TLS_SESSION_MAX];
    long n;

    if (!conn->env->tls_cache)
        return;
    n = hd_tls_cache_get(conn->env->tls_cache, conn->peer->host, conn->peer->port, der,
                         sizeof(der), hd_wall_ms());
    if (n <= 0)
        return;
    if (hd_tls_session_import(conn->tls, der, (size_t)n) == 0)
        conn->tls_offered = 1;
    else
        hd_tls_cache_drop(conn->env->tls_cache, conn->peer->host, conn->peer->port);
    explicit_bzero(der, (size_t)n);
}

static void on_connect(struct hd_loop_op *op, int res);
static void on_recv(struct hd_loop_op *op, int res);
static void on_close(struct hd_loop_op *op, int res);
static void conn_free(struct hd_conn *conn);
static void on_dns(int err, const struct sockaddr_storage *addrs, size_t naddrs, void *ud);

int hd_conn_open(struct hd_conn_env *env, struct hd_conn_peer *peer)
{
    struct hd_conn *conn = calloc(1, sizeof(*conn));
    int rv;

    if (!conn)
        return -ENOMEM;
    conn->rbuf = malloc(HD_CONN_RBUF);
    if (!conn->rbuf) {
        free(conn);
        return -ENOMEM;
    }
    conn->env = env;
    conn->peer = peer;
    conn->fd = -1;
    conn->state = HD_CONN_RESOLVING;
    conn->connect_op.cb = on_connect;
    conn->send_op.cb = on_send;
    conn->recv_op.cb = on_recv;
    conn->close_op.cb = on_close;
    hd_loop_defer_init(&conn->tx, on_tx);
    hd_loop_defer_init(&conn->idle_end, on_idle_end);
    hd_timer_init(&conn->timer, on_timer);
    conn->onext = peer->conns;
    if (peer->conns)
        peer->conns->oprev = conn;
    peer->conns = conn;
    peer->nlive++;
    env->nconns++;
    env->stats.conns_opened++;
    conn->nops++; /* the DNS callback */
    rv = hd_dns_resolve(env->opts->dns, peer->host, peer->port, on_dns, conn);
    if (rv != 0) {
        conn->nops--;
        hd_conn_close(conn, rv);
    }
    return 0;
}

static void on_dns(int err, const struct sockaddr_storage *addrs, size_t naddrs, void *ud)
{
    struct hd_conn *conn = ud;

    if (op_done(conn))
        return;
    if (err != 0 || naddrs == 0) {
        hd_conn_close(conn, err ? err : HD_ERR_DNS);
        return;
    }
    if (naddrs > HD_CONN_MAX_ADDRS)
        naddrs = HD_CONN_MAX_ADDRS;
    memcpy(conn->addrs, addrs, naddrs * sizeof(*addrs));
    conn->naddrs = naddrs;
    conn->addr_idx = 0;
    conn->last_err = HD_ERR_CONNECT;
    conn->state = HD_CONN_CONNECTING;
    try_next_addr(conn);
}

static socklen_t sa_len(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static void try_next_addr(struct hd_conn *conn)
{
    const struct hd_http_opts *opts = opts_of(conn);

    while (conn->addr_idx < conn->naddrs) {
        const struct sockaddr_storage *ss = &conn->addrs[conn->addr_idx];
        char abuf[64];
        int rv, one = 1, zero = 0;

        /* The guard runs on the very address we dial. */
        rv = hd_addr_check((const struct sockaddr *)ss, opts->allow_private);
        if (rv != 0) {
            HD_LOG(HD_LOG_DEBUG, "conn", "msg=\"address refused\" host=%s addr=%s",
                   conn->peer->host,
                   hd_addr_format((const struct sockaddr *)ss, abuf, sizeof(abuf)));
            conn->last_err = rv;
            conn->addr_idx++;
            continue;
        }
        conn->fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (conn->fd < 0) {
            conn->last_err = -errno;
            conn->addr_idx++;
            continue;
        }
        setsockopt(conn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        /* Delayed ACKs from the start (as HAProxy does on connect): the handshake's last ACK
         * rides on the preface or the ClientHello that follow at once, and the answers' ACKs
         * on the next request or the GOAWAY, instead of a segment of their own each, which
         * the peer must take in (on loopback, on this CPU): about two segments per
         * connection of a fan-out. The kernel leaves this mode by itself once a delayed ACK
         * times out. */
        setsockopt(conn->fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof(zero));
        rv = hd_loop_connect(loop_of(conn), &conn->connect_op, conn->fd,
                             (const struct sockaddr *)ss, sa_len(ss));
        if (rv != 0) {
            close(conn->fd);
            conn->fd = -1;
            hd_conn_close(conn, rv);
            return;
        }
        conn->nops++;
        conn->connect_busy = 1;
        conn->timed_out = 0;
        hd_conn_arm(conn, HD_CT_CONNECT, opts->connect_timeout_ms);
        return;
    }
    hd_conn_close(conn, conn->last_err);
}

/* ---- HTTP/2: the session's callbacks ---- */

static size_t h2_send_room(void *user_data)
{
    return conn_room(user_data);
}

static int h2_send(const uint8_t *data, size_t n, void *user_data)
{
    return conn_write(user_data, data, n);
}

static void h2_on_stream_close(struct hd_http_rq *rq, int err, int refused, void *user_data)
{
    struct hd_conn *conn = user_data;
    struct hd_conn_env *env = conn->env;

    if (conn->state == HD_CONN_CLOSING)
        return; /* hd_conn_close hands the streams back itself */
    if (refused)
        env->ops->rq_lost(rq, err, 0, env->user_data);
    else
        env->ops->rq_done(rq, err, env->user_data);
    env->ops->on_available(conn, env->user_data);
}

static void h2_on_settings(void *user_data)
{
    struct hd_conn *conn = user_data;

    if (conn->state == HD_CONN_OPEN)
        conn->env->ops->on_available(conn, conn->env->user_data);
}

static void h2_on_goaway(void *user_data)
{
    struct hd_conn *conn = user_data;

    conn->draining = 1;
    conn->env->stats.goaways++;
    conn->env->ops->on_available(conn, conn->env->user_data);
}

static const struct hd_h2_callbacks h2_callbacks = {
    .send_room = h2_send_room,
    .send = h2_send,
    .on_stream_close = h2_on_stream_close,
    .on_settings = h2_on_settings,
    .on_goaway = h2_on_goaway,
};

static int h2_start(struct hd_conn *conn)
{
    return hd_h2_new(&conn->h2, conn->peer->host, conn->peer->tls,
                     opts_of(conn)->max_header_bytes, &h2_callbacks, conn);
}

static void established(struct hd_conn *conn, int proto)
{
    struct hd_conn_env *env = conn->env;

    hd_conn_disarm(conn);
    conn->proto = proto;
    if (proto == 2 && !conn->h2) {
        int rv = h2_start(conn);
        if (rv != 0) {
            hd_conn_close(conn, rv);
            return;
        }
    }
    if (proto == 1) {
        conn->h1p = malloc(sizeof(*conn->h1p));
        if (!conn->h1p) {
            hd_conn_close(conn, -ENOMEM);
            return;
        }
    }
    conn->state = HD_CONN_OPEN;
    if (proto == 1)
        env->stats.conns_h1++;
    else if (!conn->h2c_unconfirmed) /* h2c counts once confirmed (h2c_confirm) */
        env->stats.conns_h2++;
    HD_LOG(HD_LOG_DEBUG, "conn", "msg=\"connected\" host=%s port=%u proto=%d",
           conn->peer->host, conn->peer->port, proto);
    env->ops->on_open(conn, env->user_data);
    if (conn->state == HD_CONN_OPEN)
        hd_conn_update_idle(conn);
}

static void on_connect(struct hd_loop_op *op, int res)
{
    struct hd_conn *conn = container_of(op, struct hd_conn, connect_op);
    struct hd_conn_env *env = conn->env;
    int rv;

    conn->connect_busy = 0;
    if (op_done(conn))
        return;
    hd_conn_disarm(conn);
    if (res < 0) {
        conn->last_err = conn->timed_out ? HD_ERR_TIMEOUT_CONNECT : HD_ERR_CONNECT;
        HD_LOG(HD_LOG_DEBUG, "conn", "msg=\"connect failed\" host=%s err=%d", conn->peer->host,
               res);
        hd_loop_close(loop_of(conn), NULL, conn->fd);
        conn->fd = -1;
        conn->addr_idx++;
        try_next_addr(conn);
        return;
    }
    if (conn->peer->tls) {
        rv = hd_tls_new(&conn->tls, env->tls_ctx, conn->peer->host, tls_sink, conn);
        if (rv != 0) {
            hd_conn_close(conn, rv);
            return;
        }
        offer_session(conn);
        conn->state = HD_CONN_TLS;
        hd_conn_arm(conn, HD_CT_TLS, env->opts->tls_timeout_ms);
        rv = hd_tls_handshake(conn->tls);
        if (rv < 0) {
            hd_conn_close(conn, rv);
            return;
        }
    } else if (conn->peer->version != 1) {
        /* h2c with prior knowledge: open at once, so that the preface, SETTINGS and the
         * first requests leave in one segment instead of waiting a round trip for the
         * server's SETTINGS (a send, a receive and two segments less per connection); the
         * first frame back confirms it (plain_input). */
        conn->h2c_unconfirmed = 1;
        established(conn, 2);
    } else {
        established(conn, 1);
    }
    if (conn->state != HD_CONN_CLOSING) {
        hd_conn_flush(conn);
        start_recv(conn);
    }
}

static void start_recv(struct hd_conn *conn)
{
    /* With a send put off (on_tx), the receive waits for it: a receive that finds nothing
     * to read makes the kernel acknowledge what the last one read at once, in a segment of
     * its own, where the send would have carried that ACK. A connection about to close
     * (idle_closing) arms none. */
    if (conn->recv_busy || conn->state == HD_CONN_CLOSING || conn->tx.queued ||
        conn->idle_closing)
        return;
    if (hd_loop_recv(loop_of(conn), &conn->recv_op, conn->fd, conn->rbuf, HD_CONN_RBUF) != 0) {
        hd_conn_close(conn, HD_ERR_RESET);
        return;
    }
    conn->recv_busy = 1;
    conn->nops++;
}

/* h2c refused (garbage, an HTTP/1.x answer, EOF, silence): this origin speaks HTTP/1.1.
 * The requests sent on probation go back unprocessed (hd_conn_close). */
static void h2c_fallback(struct hd_conn *conn)
{
    HD_LOG(HD_LOG_INFO, "conn", "msg=\"h2c refused, using HTTP/1.1\" host=%s port=%u",
           conn->peer->host, conn->peer->port);
    conn->peer->version = 1;
    conn->h2c_refused = 1;
    hd_conn_close(conn, 0);
}

/* The server's first bytes on an h2c connection on probation: its first frame must be
 * SETTINGS, length(3) type(1)=4 flags(1) sid(4). Returns 0 when confirmed. */
static int h2c_confirm(struct hd_conn *conn, const uint8_t *data, size_t len)
{
    if (data[0] != 0 || (len >= 4 && data[3] != 4))
        return -1;
    conn->h2c_unconfirmed = 0;
    conn->env->stats.conns_h2++;
    if (conn->timer_kind == HD_CT_PROBE)
        hd_conn_disarm(conn);
    return 0;
}

/* ---- HTTP/1.1 response input ---- */

static int h1_on_header(const char *name, size_t nlen, const char *value, size_t vlen,
                        int truncated, void *ud)
{
    struct hd_conn *conn = ud;
    if (!conn->h1_rq || truncated)
        return 0;
    return hd_rq_header(conn->h1_rq, name, nlen, value, vlen);
}

static void h1_on_body(const uint8_t *data, size_t len, void *ud)
{
    struct hd_conn *conn = ud;
    if (conn->h1_rq)
        hd_rq_body(conn->h1_rq, data, len);
}

static void rq_done(struct hd_conn *conn, struct hd_http_rq *rq, int err)
{
    conn->env->ops->rq_done(rq, err, conn->env->user_data);
}

static void h1_input(struct hd_conn *conn, const uint8_t *data, size_t len)
{
    struct hd_http_rq *rq = conn->h1_rq;
    size_t used = 0;
    int rv;

    if (!rq) { /* nothing asked: a server talking out of turn cannot be trusted */
        hd_conn_close(conn, HD_ERR_PROTOCOL);
        return;
    }
    rv = hd_h1_parse(conn->h1p, data, len, &used);
    if (rv == 0)
        return;
    if (rv < 0) {
        rq_done(conn, rq, rv);
        hd_conn_close(conn, HD_ERR_PROTOCOL);
        return;
    }
    rq->status = conn->h1p->status;
    if (rq->body_off < rq->req.body_len || used < len || !conn->h1p->keep_alive) {
        /* Answered before we finished sending, extra bytes, or Connection: close. */
        rq_done(conn, rq, 0);
        hd_conn_close(conn, 0);
        return;
    }
    conn->nserved++;
    rq_done(conn, rq, 0);
    conn->env->ops->on_available(conn, conn->env->user_data);
}

static void h1_eof(struct hd_conn *conn)
{
    struct hd_http_rq *rq = conn->h1_rq;

    if (rq) {
        int rv = hd_h1_parse_eof(conn->h1p);
        if (rv == 1) {
            rq->status = conn->h1p->status;
            rq_done(conn, rq, 0);
        }
    }
    hd_conn_close(conn, HD_ERR_RESET);
}

/* ---- input dispatch ---- */

static void plain_input(struct hd_conn *conn, const uint8_t *data, size_t len)
{
    int rv;

    if (conn->h2c_unconfirmed) {
        if (h2c_confirm(conn, data, len) != 0) {
            h2c_fallback(conn);
            return;
        }
    }
    if (conn->proto == 2) {
        rv = hd_h2_recv(conn->h2, data, len);
        if (rv != 0)
            hd_conn_close(conn, rv);
        return;
    }
    h1_input(conn, data, len);
}

/* Keeps the latest resumable session of this verified connection in the shared table,
 * under the exact host name and port it was made with. */
static void save_session(struct hd_conn *conn)
{
    uint8_t der[HD_TLS_SESSION_MAX];
    size_t len = 0;
    uint64_t expires = 0;
    int rv;

    if (!conn->env->tls_cache)
        return;
    rv = hd_tls_session_export(conn->tls, der, sizeof(der), &len, &expires);
    if (rv == 1)
        hd_tls_cache_put(conn->env->tls_cache, conn->peer->host, conn->peer->port, der, len,
                         expires, 1, hd_wall_ms());
    if (len)
        explicit_bzero(der, len);
}

static void tls_input(struct hd_conn *conn, const uint8_t *data, size_t len)
{
    int rv;

    hd_tls_feed(conn->tls, data, len);
    if (conn->state == HD_CONN_TLS) {
        rv = hd_tls_handshake(conn->tls);
        if (rv < 0) {
            hd_conn_close(conn, rv);
            return;
        }
        if (rv == 1)
            return;
        HD_LOG(HD_LOG_DEBUG, "conn", "msg=\"tls established\" host=%s resumed=%d",
               conn->peer->host, hd_tls_resumed(conn->tls));
        conn->env->stats.tls_handshakes++;
        conn->env->stats.tls_resumed += hd_tls_resumed(conn->tls) != 0;
        save_session(conn);
        established(conn, hd_tls_alpn_h2(conn->tls) ? 2 : 1);
    }
    while (conn->state == HD_CONN_OPEN) {
        uint8_t *pbuf = conn->env->pbuf;
        ssize_t n = hd_tls_read(conn->tls, pbuf, HD_CONN_PBUF);
        if (n == 0)
            break;
        if (n == HD_ERR_RESET) {
            if (conn->proto == 1)
                h1_eof(conn);
            else
                hd_conn_close(conn, HD_ERR_RESET);
            break;
        }
        if (n < 0) {
            hd_conn_close(conn, (int)n);
            break;
        }
        plain_input(conn, pbuf, (size_t)n);
    }
    if (conn->state == HD_CONN_OPEN)
        save_session(conn);
}

static void on_recv(struct hd_loop_op *op, int res)
{
    struct hd_conn *conn = container_of(op, struct hd_conn, recv_op);

    conn->recv_busy = 0;
    if (op_done(conn))
        return;
    if (res <= 0) {
        if (conn->h2c_unconfirmed)
            h2c_fallback(conn);
        else if (conn->state == HD_CONN_TLS)
            hd_conn_close(conn, HD_ERR_TLS);
        else if (conn->proto == 1)
            h1_eof(conn);
        else
            hd_conn_close(conn, HD_ERR_RESET);
        maybe_release(conn);
        return;
    }
    if (conn->tls)
        tls_input(conn, conn->rbuf, (size_t)res);
    else
        plain_input(conn, conn->rbuf, (size_t)res);
    if (conn->state != HD_CONN_CLOSING) {
        hd_conn_flush(conn);
        start_recv(conn);
    }
    maybe_release(conn);
}

static void on_timer(struct hd_timer *t)
{
    struct hd_conn *conn = container_of(t, struct hd_conn, timer);
    enum hd_conn_timer kind = conn->timer_kind;

    conn->timer_kind = HD_CT_NONE;
    switch (kind) {
    case HD_CT_CONNECT:
        /* The connect completes with -ECANCELED; on_connect tries the next address. */
        conn->timed_out = 1;
        hd_loop_cancel(loop_of(conn), &conn->connect_op);
        break;
    case HD_CT_TLS:
        hd_conn_close(conn, HD_ERR_TIMEOUT_TLS);
        break;
    case HD_CT_PROBE:
        h2c_fallback(conn);
        break;
    case HD_CT_IDLE:
        hd_conn_idle_close(conn);
        break;
    default:
        break;
    }
}

int hd_conn_has_room(const struct hd_conn *conn)
{
    if (conn->state != HD_CONN_OPEN || conn->draining)
        return 0;
    if (conn->proto == 1)
        return conn->h1_rq == NULL;
    return conn->active.n < hd_conn_max_streams(conn);
}

unsigned hd_conn_max_streams(const struct hd_conn *conn)
{
    unsigned cap = opts_of(conn)->max_streams_per_host, peer;

    if (!conn->h2)
        return 1;
    peer = hd_h2_peer_max_streams(conn->h2);
    return peer < cap ? peer : cap;
}

int hd_conn_assign(struct hd_conn *conn, struct hd_http_rq *rq)
{
    int rv;

    rq->conn = conn;
    if (conn->proto == 2) {
        hd_rq_list_push(&conn->active, rq);
        rv = hd_h2_submit(conn->h2, rq);
        if (rv != 0) {
            hd_rq_list_remove(&conn->active, rq);
            rq->conn = NULL;
            return rv;
        }
    } else {
        uint8_t head[HD_CONN_MAX_HEAD];
        int n = hd_h1_write_head(&rq->req, head, sizeof(head));
        if (n < 0 || (size_t)n > conn_room(conn)) {
            rq->conn = NULL;
            return n < 0 ? n : HD_ERR_FULL;
        }
        rv = conn_write(conn, head, (size_t)n);
        if (rv != 0) {
            rq->conn = NULL;
            return rv;
        }
        conn->h1_rq = rq;
        rq->sent = 1;
        rq->body_off = 0;
        hd_h1_parser_init(conn->h1p, opts_of(conn)->max_header_bytes,
                          strcmp(rq->req.method, "HEAD") == 0, h1_on_header, h1_on_body, conn);
    }
    hd_conn_update_idle(conn);
    if (conn->h2c_unconfirmed && conn->timer_kind == HD_CT_NONE)
        hd_conn_arm(conn, HD_CT_PROBE, opts_of(conn)->tls_timeout_ms);
    return 0;
}

void hd_conn_detach(struct hd_conn *conn, struct hd_http_rq *rq)
{
    if (conn->h1_rq == rq)
        conn->h1_rq = NULL;
    else
        hd_rq_list_remove(&conn->active, rq);
    rq->conn = NULL;
}

void hd_conn_abandon(struct hd_conn *conn, struct hd_http_rq *rq)
{
    if (conn->proto == 2) {
        hd_h2_cancel(conn->h2, rq);
        hd_rq_list_remove(&conn->active, rq);
        rq->conn = NULL;
        hd_conn_update_idle(conn);
        conn->env->ops->on_available(conn, conn->env->user_data);
        return;
    }
    /* HTTP/1.1 cannot abandon a response and keep the connection. */
    conn->h1_rq = NULL;
    rq->conn = NULL;
    hd_conn_close(conn, HD_ERR_TIMEOUT_RESPONSE);
}

void hd_conn_close(struct hd_conn *conn, int err)
{
    struct hd_conn_env *env = conn->env;
    struct hd_loop *loop = loop_of(conn);
    enum hd_conn_state prev = conn->state;

    if (prev == HD_CONN_CLOSING)
        return;
    conn->state = HD_CONN_CLOSING;
    conn->err = err;
    hd_conn_idle_unlink(conn);
    hd_conn_disarm(conn);
    if (prev == HD_CONN_TLS && err && conn->tls_offered && env->tls_cache)
        /* A handshake that offered a saved session failed: never offer it again. */
        hd_tls_cache_drop(env->tls_cache, conn->peer->host, conn->peer->port);
    if (err && err != HD_ERR_CANCELLED)
        HD_LOG(HD_LOG_DEBUG, "conn", "msg=\"closing\" host=%s port=%u err=\"%s\"",
               conn->peer->host, conn->peer->port, hd_strerror(err));
    /* Requests on it: h2 streams know whether their HEADERS left. An h1 request was written,
     * so possibly processed, except on a reused keep-alive connection that closed without a
     * byte of response: that is the server closing an idle connection as we wrote (the
     * race every HTTP/1.1 client retries). */
    if (conn->h1_rq) {
        struct hd_http_rq *rq = conn->h1_rq;
        int processed = rq->sent;
        if (conn->nserved > 0 && conn->h1p->state == HD_H1_STATUS &&
            conn->h1p->header_bytes == 0 && conn->h1p->line_total == 0)
            processed = 0;
        env->ops->rq_lost(rq, err ? err : HD_ERR_RESET, processed, env->user_data);
    }
    while (conn->active.head) {
        struct hd_http_rq *rq = conn->active.head;
        env->ops->rq_lost(rq, err ? err : HD_ERR_RESET, rq->sent && !conn->h2c_refused,
                          env->user_data);
    }
    conn->peer->nlive--;
    env->ops->on_close(conn, prev, err, env->user_data);
    /* A recv on an idle socket would wait forever: cancel; if the ring cannot take the cancel,
     * shutting the socket down completes every op on it just as well. */
    if ((conn->recv_busy && hd_loop_cancel(loop, &conn->recv_op) != 0) ||
        (conn->connect_busy && hd_loop_cancel(loop, &conn->connect_op) != 0) ||
        (conn->send_busy && hd_loop_cancel(loop, &conn->send_op) != 0))
        shutdown(conn->fd, SHUT_RDWR);
    maybe_release(conn);
}

static void maybe_release(struct hd_conn *conn)
{
    struct hd_conn_env *c = conn->env;

    if (conn->state != HD_CONN_CLOSING || conn->nops > 0 || conn->released)
        return;
    conn->released = 1;
    if (conn->fd >= 0 && hd_loop_close(loop_of(conn), &conn->close_op, conn->fd) == 0) {
        conn->nops++;
        return;
    }
    if (conn->fd >= 0)
        close(conn->fd);
    conn->fd = -1;
    conn->dnext = c->dead;
    c->dead = conn;
    c->ops->on_dead(c->user_data);
}

static void on_close(struct hd_loop_op *op, int res)
{
    struct hd_conn *conn = container_of(op, struct hd_conn, close_op);

    conn->nops--;
    conn->fd = -1;
    conn_free(conn);
}

void hd_conn_reap(struct hd_conn_env *env)
{
    while (env->dead) {
        struct hd_conn *conn = env->dead;
        env->dead = conn->dnext;
        conn_free(conn);
    }
}

static void conn_free(struct hd_conn *conn)
{
    struct hd_conn_peer *o = conn->peer;

    if (conn->oprev)
        conn->oprev->onext = conn->onext;
    else
        o->conns = conn->onext;
    if (conn->onext)
        conn->onext->oprev = conn->oprev;
    conn->env->nconns--;
    hd_conn_idle_unlink(conn);
    hd_timer_disarm(loop_of(conn), &conn->timer);
    hd_h2_free(conn->h2);
    hd_tls_free(conn->tls);
    free(conn->h1p);
    free(conn->rbuf);
    conn->send_busy = 0;
    conn->woff = conn->wlen = 0;
    wbuf_put(conn);
    {
        struct hd_conn_env *env = conn->env;
        free(conn);
        if (!o->conns && env->ops->on_peer_empty)
            env->ops->on_peer_empty(o, env->user_data);
    }
}

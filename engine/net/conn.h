/* One client connection: DNS -> address guard -> TCP connect -> TLS or h2c probe -> HTTP/2
 * (h2.c) or HTTP/1.1 (h1.c), its buffers and timers, carrying request records (rq.h).
 *
 * It knows the origin it serves (struct hd_conn_peer) and what the connections of one client
 * share (struct hd_conn_env), both kept by its owner, the connection pool (pool.c); it tells
 * the owner what happens through struct hd_conn_ops and never calls up. Not for use outside
 * the transport: the public contract is http.h.
 */
#ifndef HD_CONN_H
#define HD_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http_types.h"
#include "loop.h"
#include "rq.h"

#define HD_CONN_MAX_ADDRS 8
#define HD_CONN_RBUF 16384     /* one recv at a time, into this */
#define HD_CONN_PBUF 16384     /* decrypted bytes: one per client, used synchronously */
#define HD_CONN_WBUF 32768     /* bytes waiting to be sent (ciphertext when TLS): room for two
                                * full HTTP/2 DATA frames as TLS records */
#define HD_CONN_WBUF_POOL 64   /* idle send buffers kept by the client */
#define HD_CONN_IDLE_SEEN 8192 /* origins remembered as having had an idle connection */
#define HD_CONN_MAX_HEAD 16384 /* request head cap: it is always written in one go */

struct hd_conn;
struct hd_conn_peer;
struct hd_h1_parser;
struct hd_h2;
struct hd_tls;
struct hd_tls_ctx;
struct hd_tls_cache;

enum hd_conn_state {
    HD_CONN_RESOLVING = 0,
    HD_CONN_CONNECTING,
    HD_CONN_TLS,
    HD_CONN_OPEN, /* h2c included: open at once, on probation until the server's first frame */
    HD_CONN_CLOSING
};

/* What a connection tells its owner. Each is called with the env's user_data. */
struct hd_conn_ops {
    /* conn reached OPEN (conn->proto known): it can take requests. */
    void (*on_open)(struct hd_conn *conn, void *user_data);
    /* conn can take more requests, its stream limit may have changed, or (GOAWAY) it stopped
     * taking new ones: look at its origin's queue again. */
    void (*on_available)(struct hd_conn *conn, void *user_data);
    /* conn entered CLOSING from state prev (before HD_CONN_OPEN: set-up failed with err).
     * Its requests were handed back through rq_lost just before. */
    void (*on_close)(struct hd_conn *conn, enum hd_conn_state prev, int err, void *user_data);
    /* A closed connection waits on env->dead: call hd_conn_reap soon, from the loop (not from
     * inside a call into a connection). */
    void (*on_dead)(void *user_data);
    /* rq is finished (err 0: rq->status is the answer). It is still on rq->conn: the owner
     * takes it off (hd_conn_detach). */
    void (*rq_done)(struct hd_http_rq *rq, int err, void *user_data);
    /* rq's connection is closing, or the server refused its stream; rq is still on rq->conn
     * (hd_conn_detach). processed 0: the peer cannot have acted on it, so it may go out
     * again on another connection. */
    void (*rq_lost)(struct hd_http_rq *rq, int err, int processed, void *user_data);
    /* The last connection object of peer was freed (peer->conns is NULL now): the owner may
     * drop the peer when nothing else needs it. Optional (NULL: not told). */
    void (*on_peer_empty)(struct hd_conn_peer *peer, void *user_data);
};

/* What the connections of one client share. Owned by the client (one per loop thread):
 * hd_conn_env_init / hd_conn_env_fini. */
struct hd_conn_env {
    struct hd_loop *loop;
    const struct hd_http_opts *opts; /* borrowed from the owner */
    struct hd_tls_ctx *tls_ctx;      /* borrowed */
    const struct hd_conn_ops *ops;
    void *user_data;                 /* for ops */
    struct hd_http_stats stats;      /* counters (the owner adds its own); gauges unused */
    size_t nconns;                   /* connection objects allocated */
    struct hd_conn *dead;            /* released, waiting for hd_conn_reap */
    uint8_t *pbuf; /* TLS plaintext, HD_CONN_PBUF: input is handled one connection at a time */
    uint8_t *wbuf_pool[HD_CONN_WBUF_POOL]; /* send buffers of connections with nothing to send */
    size_t wbuf_pool_n;
    /* Resumable TLS sessions by origin (tlscache.h), shared with the other threads' clients
     * when the owner passes one (hd_http_opts.tls_cache); borrowed. */
    struct hd_tls_cache *tls_cache;
    /* Open connections carrying no request, oldest idle first: at most opts->max_idle_conns
     * of them (the oldest is closed when one more goes idle), each for at most
     * opts->idle_timeout_ms. */
    struct hd_conn *idle_head, *idle_tail;
    size_t nidle;
    size_t idle_bytes; /* their estimated memory (HD_CONN_IDLE_TLS_BYTES, _PLAIN_BYTES) */
    size_t idle_first_bytes; /* the part of idle_bytes of connections never reused */
    /* Origins whose connections went idle before (hashes, direct-mapped, conn_idle.c): a new
     * connection to one of them counts as reused when it goes idle. */
    uint64_t idle_seen[HD_CONN_IDLE_SEEN];
};

/* The origin (scheme, host, port) a connection serves, shared by all its connections. Kept
 * by the owner. */
struct hd_conn_peer {
    char *host;     /* owned by the owner */
    uint16_t port;
    int tls;
    int version;    /* 0 unknown, 1, 2; a connection sets 1 when h2c is refused */
    const struct hd_rq_list *waiting;   /* the owner's requests queued for this origin, or
                                         * NULL: its idle connections are closed last */
    struct hd_conn *conns;              /* all connections, closing ones included */
    unsigned nlive;                     /* connections not closing */
};

enum hd_conn_timer { HD_CT_NONE = 0, HD_CT_CONNECT, HD_CT_TLS, HD_CT_PROBE, HD_CT_IDLE };

struct hd_conn {
    struct hd_conn_env *env;
    struct hd_conn_peer *peer;
    struct hd_conn *onext, *oprev; /* peer's connections */
    struct hd_conn *dnext;         /* env's list of connections to free */
    struct hd_conn *inext, *iprev; /* env's idle list, when on_idle */
    int on_idle;
    int reused; /* went idle and busy again at least once, or its origin's earlier
                 * connection went idle (conn_idle.c) */
    int idle_before; /* went idle at least once */
    int fd;
    enum hd_conn_state state;
    int proto;          /* 1 or 2 once known */
    int err;            /* why it closed */
    int timed_out;      /* connect timer fired */
    int released;       /* close issued / queued for free */
    int draining;       /* h2 GOAWAY received or sent: no new streams */
    int last_err;       /* last per-address failure */
    int tls_offered;    /* a saved session was offered in the handshake */
    /* h2c with prior knowledge, sent before the server said a word (RFC 9113, 3.4): the
     * preface, SETTINGS and the first requests leave together. Until the server's first
     * frame (SETTINGS) arrives the origin's answer is unknown; if it is anything else, an
     * EOF, or nothing within tls_timeout_ms (HD_CT_PROBE), the origin speaks HTTP/1.1, and
     * the requests go back as unprocessed (h2c_refused): no HTTP/1.1 server can read them. */
    int h2c_unconfirmed;
    int h2c_refused;
    unsigned nserved;   /* h1 responses completed on this connection */
    unsigned nops;      /* ops in flight pointing at this object (DNS included) */
    int recv_busy, send_busy, connect_busy;
    struct sockaddr_storage addrs[HD_CONN_MAX_ADDRS];
    size_t naddrs, addr_idx;
    struct hd_loop_op connect_op, send_op, recv_op, close_op;
    struct hd_loop_defer tx;       /* the send, put off to the end of the loop iteration */
    /* Cleartext, never reused, idle with nothing waiting for its origin: closes at the end of
     * this loop iteration unless a request takes it meanwhile (idle_end), with no receive
     * armed in between: the receive would only be cancelled. */
    int idle_closing;
    struct hd_loop_defer idle_end;
    struct hd_timer timer;
    enum hd_conn_timer timer_kind;
    struct hd_tls *tls;
    uint8_t *rbuf;
    uint8_t *wbuf;      /* from the env's pool while there is output, else NULL */
    size_t woff, wlen;
    /* HTTP/1.1: one request at a time */
    struct hd_http_rq *h1_rq;
    struct hd_h1_parser *h1p;
    /* HTTP/2 */
    struct hd_h2 *h2;
    struct hd_rq_list active; /* h2 streams (h1: unused) */
};

/* Prepares env (allocates its plaintext buffer). Returns 0 or -ENOMEM. */
int hd_conn_env_init(struct hd_conn_env *env, struct hd_loop *loop,
                     const struct hd_http_opts *opts, struct hd_tls_ctx *tls_ctx,
                     struct hd_tls_cache *tls_cache, const struct hd_conn_ops *ops,
                     void *user_data);
/* Frees env's buffers and the connections waiting on env->dead. Call once no connection is
 * left but those. */
void hd_conn_env_fini(struct hd_conn_env *env);

/* Allocates a connection to peer and starts resolving. Returns 0 or -ENOMEM. */
int hd_conn_open(struct hd_conn_env *env, struct hd_conn_peer *peer);
/* Starts closing (idempotent): requests on it are lost with err (0: idle close). */
void hd_conn_close(struct hd_conn *conn, int err);
/* Frees the connections waiting on env->dead. */
void hd_conn_reap(struct hd_conn_env *env);
/* Puts rq on conn (OPEN, h1 idle or h2 with room) and starts sending it. Returns 0 or err
 * (rq is then not on conn). */
int hd_conn_assign(struct hd_conn *conn, struct hd_http_rq *rq);
/* Takes rq (on conn) off it, without a word to the peer. */
void hd_conn_detach(struct hd_conn *conn, struct hd_http_rq *rq);
/* The owner gave up on rq (on conn; response timeout): h2 resets the stream and keeps the
 * connection, h1 closes it. rq is off conn afterwards. */
void hd_conn_abandon(struct hd_conn *conn, struct hd_http_rq *rq);
/* Can conn take one more request now? */
int hd_conn_has_room(const struct hd_conn *conn);
/* Stream limit in force on an h2 connection (1 for h1). */
unsigned hd_conn_max_streams(const struct hd_conn *conn);
/* Sends what the protocol layer has ready. */
void hd_conn_flush(struct hd_conn *conn);
/* Re-evaluates the idle timer and the idle list after a request left or joined conn: an
 * idle connection over the env's cap closes the oldest idle one. */
void hd_conn_update_idle(struct hd_conn *conn);

#endif

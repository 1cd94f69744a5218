/* Transport internals shared by http.c (client, origins, requests), conn.c (one socket's
 * DNS -> TCP -> TLS -> h1|h2 state machine and its buffers) and h2.c (nghttp2 session).
 * Not for use outside the transport: the public contract is http.h.
 */
#ifndef HD_CONN_H
#define HD_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http.h"
#include "loop.h"

#define HD_CONN_MAX_ADDRS 8
#define HD_CONN_RBUF 16384    /* one recv at a time, into this */
#define HD_CONN_PBUF 16384    /* decrypted bytes: one per client, used synchronously */
#define HD_CONN_WBUF 65536    /* bytes waiting to be sent (ciphertext when TLS) */
#define HD_CONN_WBUF_POOL 64  /* idle send buffers kept by the client */
#define HD_CONN_MAX_HEAD 16384 /* request head cap: it is always written in one go */
#define HD_HTTP_HDR_COPY_MAX 1024 /* Retry-After / Accept-Signature copies longer are dropped */
#define HD_HTTP_MAX_HEADERS 48    /* extra request headers per request (h2 builds them inline) */

struct hd_http_conn;
struct hd_http_origin;
struct hd_h1_parser;
struct hd_h2;
struct hd_tls;
struct hd_tls_ctx;

/* One request inside the client (pooled). */
struct hd_http_rq {
    struct hd_http_req req; /* caller's request, copied; pointers borrowed */
    struct hd_http_client *client;
    struct hd_http_origin *origin;
    struct hd_http_conn *conn;     /* while active on a connection */
    struct hd_http_rq *next, *prev; /* origin FIFO, conn's active list, or pool */
    struct hd_timer timer;         /* response timeout */
    uint64_t submit_ms;
    int32_t stream_id;             /* h2 */
    int status;
    int error;
    int version;
    int retried;                   /* already retried once on a new connection */
    int sent;                      /* bytes of it may have reached the peer */
    size_t body_off;               /* h1: request body bytes written so far */
    size_t hdr_bytes;              /* h2: response header bytes seen */
    char *retry_after;
    char *accept_signature;
    uint8_t *body;                 /* opts.max_body bytes, allocated on first use, kept */
    size_t body_len;
};

struct hd_rq_list {
    struct hd_http_rq *head, *tail;
    size_t n;
};

enum hd_conn_state {
    HD_CONN_RESOLVING = 0,
    HD_CONN_CONNECTING,
    HD_CONN_TLS,
    HD_CONN_H2C_PROBE, /* h2c preface sent, waiting for the server's first frame */
    HD_CONN_OPEN,
    HD_CONN_CLOSING
};

enum hd_conn_timer { HD_CT_NONE = 0, HD_CT_CONNECT, HD_CT_TLS, HD_CT_PROBE, HD_CT_IDLE };

struct hd_http_conn {
    struct hd_http_client *client;
    struct hd_http_origin *origin;
    struct hd_http_conn *onext, *oprev; /* origin's connections */
    struct hd_http_conn *dnext;         /* client's list of connections to free */
    int fd;
    enum hd_conn_state state;
    int proto;          /* 1 or 2 once known */
    int err;            /* why it closed */
    int timed_out;      /* connect timer fired */
    int released;       /* close issued / queued for free */
    int draining;       /* h2 GOAWAY received or sent: no new streams */
    int last_err;       /* last per-address failure */
    unsigned nserved;   /* h1 responses completed on this connection */
    unsigned nops;      /* ops in flight pointing at this object (DNS included) */
    int recv_busy, send_busy, connect_busy;
    struct sockaddr_storage addrs[HD_CONN_MAX_ADDRS];
    size_t naddrs, addr_idx;
    struct hd_loop_op connect_op, send_op, recv_op, close_op;
    struct hd_timer timer;
    enum hd_conn_timer timer_kind;
    struct hd_tls *tls;
    uint8_t *rbuf;
    uint8_t *wbuf;      /* from the client's pool while there is output, else NULL */
    size_t woff, wlen;
    /* HTTP/1.1: one request at a time */
    struct hd_http_rq *h1_rq;
    struct hd_h1_parser *h1p;
    /* HTTP/2 */
    struct hd_h2 *h2;
    struct hd_rq_list active; /* h2 streams (h1: unused) */
};

#define HD_TLS_SESSIONS_MAX 256 /* per client (loop thread) */

struct hd_http_origin {
    struct hd_http_origin *hnext; /* hash chain */
    struct hd_http_origin *knext; /* client's list of origins to dispatch */
    int kick;                     /* on that list */
    char *host;
    uint16_t port;
    int tls;
    int version;                  /* 0 unknown, 1, 2 */
    unsigned max_streams;         /* h2 limit in force */
    struct hd_rq_list queue;      /* FIFO of requests waiting for a connection/stream */
    struct hd_http_conn *conns;   /* all connections, closing ones included */
    unsigned nlive;               /* connections not closing */
    size_t inflight;              /* queued + active */
    struct hd_tls_session *tls_session; /* last session of a verified connection, to resume */
    uint64_t no_new_conn_until;   /* after a failed set-up beside live connections */
};

struct hd_http_client {
    struct hd_loop *loop;
    struct hd_http_opts opts;
    struct hd_tls_ctx *tls_ctx;
    struct hd_http_origin **buckets;
    size_t nbuckets, norigins;
    struct hd_http_origin *kick_list;
    struct hd_http_conn *dead;
    struct hd_timer kick;
    struct hd_http_rq *pool;
    size_t pool_n;
    size_t inflight;
    size_t nconns; /* allocated connection objects */
    struct hd_http_stats stats; /* counters; gauges are filled in by hd_http_stats */
    uint8_t *pbuf; /* TLS plaintext, HD_CONN_PBUF: input is handled one connection at a time */
    uint8_t *wbuf_pool[HD_CONN_WBUF_POOL]; /* send buffers of connections with nothing to send */
    size_t wbuf_pool_n;
    /* Origins holding a TLS session for resumption, oldest first: a wolfSSL session keeps the
     * peer's certificate chain (tens of KB), so only the HD_TLS_SESSIONS_MAX most recent are
     * kept; a fan-out to 20,000 hosts would otherwise hold 20,000 of them. */
    struct hd_http_origin *sess_ring[HD_TLS_SESSIONS_MAX];
    size_t sess_head, sess_n;
    int shutting_down;
};

/* ---- http.c, called by conn.c / h2.c ---- */

/* Arms the zero-delay timer that runs deferred work (dispatch, frees) inside the loop. */
void hd_http_kick(struct hd_http_client *c, struct hd_http_origin *o);
/* conn reached OPEN with conn->proto known: take queued requests. */
void hd_http_conn_ready(struct hd_http_conn *conn);
/* conn became able to take more requests (a response completed, settings changed). */
void hd_http_conn_available(struct hd_http_conn *conn);
/* conn entered CLOSING in state prev (before OPEN: establishment failed with err). */
void hd_http_conn_closed(struct hd_http_conn *conn, enum hd_conn_state prev, int err);
/* Completes rq (err 0: rq->status is the answer): timers off, unlinked, on_done, pooled. */
void hd_http_rq_complete(struct hd_http_rq *rq, int err);
/* rq's connection went away: retried once on a new connection when it was not processed
 * (processed == 0), else completed with err. */
void hd_http_rq_lost(struct hd_http_rq *rq, int err, int processed);
/* Response header and body sinks shared by h1 and h2. */
int hd_http_rq_header(struct hd_http_rq *rq, const char *name, size_t nlen, const char *value,
                      size_t vlen);
void hd_http_rq_body(struct hd_http_rq *rq, const uint8_t *data, size_t len);

void hd_rq_list_push(struct hd_rq_list *l, struct hd_http_rq *rq);
void hd_rq_list_push_front(struct hd_rq_list *l, struct hd_http_rq *rq);
void hd_rq_list_remove(struct hd_rq_list *l, struct hd_http_rq *rq);

/* ---- conn.c ---- */

/* Allocates a connection for o and starts resolving. Returns 0 or -ENOMEM. */
int hd_conn_open(struct hd_http_client *c, struct hd_http_origin *o);
/* Starts closing (idempotent): requests on it are lost with err (0: idle close). */
void hd_conn_close(struct hd_http_conn *conn, int err);
/* Frees a released connection (its last op completed). */
void hd_conn_free(struct hd_http_conn *conn);
/* Puts rq on conn (OPEN, h1 idle or h2 with room) and starts sending it. Returns 0 or err. */
int hd_conn_assign(struct hd_http_conn *conn, struct hd_http_rq *rq);
/* Can conn take one more request now? */
int hd_conn_has_room(const struct hd_http_conn *conn);
/* Stream limit in force on an h2 connection. */
unsigned hd_conn_max_streams(const struct hd_http_conn *conn);
/* Sends what the protocol layer has ready. */
void hd_conn_flush(struct hd_http_conn *conn);
/* A request on conn was abandoned by the client (response timeout). */
void hd_conn_abandon(struct hd_http_conn *conn, struct hd_http_rq *rq);
/* Re-evaluates the idle timer after a request left conn. */
void hd_conn_update_idle(struct hd_http_conn *conn);
/* Free plaintext space in the send buffer (after TLS overhead), compacting when possible. */
size_t hd_conn_room(struct hd_http_conn *conn);
/* Appends plaintext (encrypting when TLS). Caller checked hd_conn_room. Returns 0 or err. */
int hd_conn_write(struct hd_http_conn *conn, const uint8_t *data, size_t n);

#endif

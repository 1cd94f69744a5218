/* One accepted connection: socket I/O on the loop, TLS on memory buffers (wolfSSL, with the
 * server's TLS contexts made here), and the protocol that owns the bytes after the handshake.
 * The protocols (h1.c, h2.c) sit above this module: whoever accepts a connection hands them
 * down as struct fs_proto_ops, and they call the conn_* functions back.
 *
 * Lifetime: conn_close() only marks the connection closing and shuts the socket down; the
 * object is freed by conn_check() once no recv or send is in flight. Every entry point from
 * the loop (completion or timer) ends with conn_check() and touches nothing afterwards. */
#ifndef FS_CONN_H
#define FS_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "fedisim.h"

#define FS_RBUF 16384
#define FS_OUT_CAP (16u * 1024u * 1024u) /* output beyond this: the peer is not reading */
#define FS_OUT_HIGH (256u * 1024u)       /* stop pulling from nghttp2 above this */

struct fs_conn;

/* A protocol spoken on a connection (h1.c, h2.c). Its state hangs off c->pstate. */
struct fs_proto_ops {
    /* Creates the state (c->pstate). Returns 0 or a negative error. */
    int (*start)(struct fs_conn *c);
    /* Takes received plaintext. Returns 0, or < 0 when the connection must close. */
    int (*input)(struct fs_conn *c, const uint8_t *data, size_t len);
    /* Moves pending output into the connection (conn_write). Returns 0, or < 0 when the
     * connection must close. NULL: the protocol writes as it goes. */
    int (*pull)(struct fs_conn *c);
    /* Nonzero when the protocol is finished and the connection may close once flushed.
     * NULL: never by itself. */
    int (*done)(struct fs_conn *c);
    /* Nonzero while a request is being answered: the idle timer waits. */
    int (*busy)(const struct fs_conn *c);
    /* Frees the state (disarming its timers, abandoning requests); sets c->pstate NULL. */
    void (*free)(struct fs_conn *c);
};

/* The protocols a new connection may pick from: h1 always, h2 by ALPN or h2c preface. */
struct fs_protos {
    const struct fs_proto_ops *h1, *h2;
};

struct fs_obuf {
    uint8_t *p;
    size_t len, cap;
};

enum fs_cproto { FS_CP_NONE = 0, FS_CP_H1, FS_CP_H2 };

struct fs_conn {
    struct fs_server *srv;
    struct fs_worker *w; /* the worker (thread, loop) owning this connection */
    struct fs_conn *prev, *next;
    enum fs_lkind kind;
    int fd;
    void *ssl; /* WOLFSSL *, NULL for plain listeners */
    enum fs_cproto proto;
    const struct fs_protos *protos;
    const struct fs_proto_ops *pops; /* the protocol picked, once known */
    void *pstate;                    /* its state, once started */
    int alpn_h2; /* ALPN picked h2 */
    unsigned hs_done : 1, closing : 1, recv_pending : 1, send_pending : 1, read_paused : 1,
        draining : 1, close_after_flush : 1, hang : 1, aborting : 1;
    struct hd_loop_op rop, sop;
    const uint8_t *cin; /* ciphertext not yet taken by wolfSSL */
    size_t cin_len;
    uint8_t pre[24]; /* h2c port: the first bytes, until we know h2 preface or HTTP/1.1 */
    size_t pre_len;
    struct fs_obuf out[2];
    int snd; /* out[snd] is in flight (or empty), out[!snd] accumulates */
    size_t snd_off;
    struct hd_timer timer; /* idle check, or the drain deadline */
    uint64_t last_active_ms;
    uint8_t rbuf[FS_RBUF];
};

/* Takes an accepted socket fd on w's loop for a listener of kind; protos (borrowed, must
 * outlive the connection) are the protocols it may speak. Over w->max_conns, or out of
 * memory, fd is closed. */
void conn_accept(struct fs_worker *w, enum fs_lkind kind, int fd, const struct fs_protos *protos);
/* Queues bytes for the peer (through TLS when the connection has it). Returns 0 or an error
 * after which the connection is closing. */
int conn_write(struct fs_conn *c, const void *data, size_t len);
/* Pulls pending protocol output and starts a send if none is in flight. */
void conn_flush(struct fs_conn *c);
void conn_close(struct fs_conn *c);
/* An injected connection close: input is ignored and no further answer is written, but the
 * answers already written (and counted) are flushed before the FIN, so the count stays
 * honest. Only sets flags: safe from inside nghttp2 callbacks. */
void conn_abort(struct fs_conn *c);
/* Frees c if it is closing and has nothing in flight. Call last, from loop entry points. */
void conn_check(struct fs_conn *c);
/* Lets input flow again after the protocol paused it (c->read_paused). */
void conn_resume_read(struct fs_conn *c);

/* ---- TLS contexts of the server, whose callbacks are the connections' ---- */

/* ciphers: a wolfSSL cipher list, or NULL for the default (ChaCha20 first). */
int fs_server_tls_init(struct fs_server *srv, const char *cert, const char *key,
                       const char *ciphers);
/* --leaf-certs DIR: loads DIR/N.pem + DIR/N.key for N = 0.. up to the first missing N.pem
 * (at most FS_LEAF_MAX), one context each. After fs_server_tls_init. */
#define FS_LEAF_MAX 4096u
int fs_server_leaf_init(struct fs_server *srv, const char *dir, const char *ciphers);
/* Which leaf serves host (lower-cased or not): FNV-1a 64 of the lower-cased name mod nleaf. */
unsigned fs_leaf_index(const char *host, unsigned nleaf);
/* --ticket-key-file: reads the ticket key from path, or creates the file (0600) with a random
 * one when it does not exist, and makes every TLS context seal and open its session tickets
 * with it, so that a restarted server resumes the sessions of the one before. After
 * fs_server_tls_init and fs_server_leaf_init. Returns 0, or -errno / HD_ERR_INVALID (a file
 * that is not exactly 48 bytes) with a message on stderr. */
int fs_server_ticket_key(struct fs_server *srv, const char *path);

/* Frees the contexts and, when fs_server_tls_init ran, wolfSSL's globals. */
void fs_server_tls_fini(struct fs_server *srv);
/* Frees the calling thread's wolfSSL caches; each worker calls it as it ends. */
void fs_tls_thread_exit(void);

#endif

/* One accepted connection: socket I/O on the loop, TLS on memory buffers, and the protocol
 * (h1.c or h2.c) that owns the bytes after the handshake. Private to conn.c, h1.c, h2.c.
 *
 * Lifetime: conn_close() only marks the connection closing and shuts the socket down; the
 * object is freed by conn_check() once no recv or send is in flight. Every entry point from
 * the loop (completion or timer) ends with conn_check() and touches nothing afterwards. */
#ifndef FS_CONN_H
#define FS_CONN_H

#include <nghttp2/nghttp2.h>

#include "fedisim.h"

#define FS_RBUF 16384
#define FS_OUT_CAP (16u * 1024u * 1024u) /* output beyond this: the peer is not reading */
#define FS_OUT_HIGH (256u * 1024u)       /* stop pulling from nghttp2 above this */

struct fs_obuf {
    uint8_t *p;
    size_t len, cap;
};

enum fs_cproto { FS_CP_NONE = 0, FS_CP_H1, FS_CP_H2 };

struct fs_h1;
struct fs_stream;

struct fs_conn {
    struct fs_server *srv;
    struct fs_worker *w; /* the worker (thread, loop) owning this connection */
    struct fs_conn *prev, *next;
    enum fs_lkind kind;
    int fd;
    void *ssl; /* WOLFSSL *, NULL for plain listeners */
    enum fs_cproto proto;
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
    /* h2 */
    nghttp2_session *h2;
    struct fs_stream *streams;
    unsigned ndispatched;
    int goaway_sent;
    int32_t goaway_last_id;
    /* h1 */
    struct fs_h1 *h1;
    uint8_t rbuf[FS_RBUF];
};

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
/* Lets input flow again after h1 paused it. */
void conn_resume_read(struct fs_conn *c);

/* h2.c */
int h2_start(struct fs_conn *c);
int h2_input(struct fs_conn *c, const uint8_t *data, size_t len);
/* Pulls frames from nghttp2 into the output buffer until it is above FS_OUT_HIGH. */
int h2_pull(struct fs_conn *c);
int h2_done(struct fs_conn *c); /* nghttp2 wants neither read nor write */
void h2_free(struct fs_conn *c);

/* h1.c */
int h1_start(struct fs_conn *c);
int h1_input(struct fs_conn *c, const uint8_t *data, size_t len);
void h1_process(struct fs_conn *c); /* parses and answers buffered requests */
int h1_busy(const struct fs_conn *c);
void h1_free(struct fs_conn *c);

#endif

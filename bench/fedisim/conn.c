/* Connections: socket I/O on the loop, TLS (wolfSSL on memory buffers) and the server's TLS
 * contexts, and the hand-over of plaintext to the protocol the connection speaks (conn.h). */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <fcntl.h>
#include <sys/random.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "err.h"
#include "log.h"
#include "profile.h"
#include "req.h"

#define DRAIN_MS 1000u

static void on_recv(struct hd_loop_op *op, int res);
static void on_send(struct hd_loop_op *op, int res);
static void on_timer(struct hd_timer *t);

/* ---- output ---- */

static int obuf_append(struct fs_obuf *b, const void *data, size_t len)
{
    if (b->len + len > FS_OUT_CAP)
        return HD_ERR_FULL;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096; /* answers are small; grows by doubling */
        while (cap < b->len + len)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

static int tls_send_cb(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    struct fs_conn *c = ctx;
    if (obuf_append(&c->out[!c->snd], buf, (size_t)sz) < 0)
        return WOLFSSL_CBIO_ERR_GENERAL;
    return sz;
}

static int tls_recv_cb(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    struct fs_conn *c = ctx;
    size_t n = c->cin_len < (size_t)sz ? c->cin_len : (size_t)sz;

    if (n == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    memcpy(buf, c->cin, n);
    c->cin += n;
    c->cin_len -= n;
    return (int)n;
}

int conn_write(struct fs_conn *c, const void *data, size_t len)
{
    int rv;

    if (c->closing || c->hang)
        return 0;
    if (c->ssl) {
        /* Our send callback never blocks, so wolfSSL_write takes everything at once. */
        const uint8_t *p = data;
        while (len > 0) {
            int chunk = len > 16384 ? 16384 : (int)len;
            int n = wolfSSL_write(c->ssl, p, chunk);
            if (n <= 0) {
                conn_close(c);
                return HD_ERR_TLS;
            }
            p += n;
            len -= (size_t)n;
        }
        return 0;
    }
    rv = obuf_append(&c->out[!c->snd], data, len);
    if (rv < 0)
        conn_close(c);
    return rv;
}

static void start_send(struct fs_conn *c)
{
    struct fs_obuf *b;

    if (c->send_pending || c->closing)
        return;
    if (c->out[c->snd].len == 0) {
        if (c->out[!c->snd].len == 0)
            return;
        c->snd = !c->snd;
        c->snd_off = 0;
    }
    b = &c->out[c->snd];
    if (hd_loop_send(c->w->loop, &c->sop, c->fd, b->p + c->snd_off, b->len - c->snd_off) < 0) {
        conn_close(c);
        return;
    }
    c->send_pending = 1;
}

static void start_drain(struct fs_conn *c)
{
    /* Half-close and read until the peer closes: closing with unread input would make the
     * kernel send RST, and the peer might then lose the answer we just wrote. */
    c->draining = 1;
    shutdown(c->fd, SHUT_WR);
    hd_timer_arm(c->w->loop, &c->timer, hd_loop_now_ms(c->w->loop) + DRAIN_MS);
}

void conn_flush(struct fs_conn *c)
{
    if (c->closing)
        return;
    if (c->hang) {
        c->out[!c->snd].len = 0;
        return;
    }
    if (c->pstate && c->pops->pull) {
        if (c->pops->pull(c) < 0) {
            conn_close(c);
            return;
        }
        if (c->pops->done && c->pops->done(c))
            c->close_after_flush = 1;
    }
    start_send(c);
    if (!c->send_pending && c->close_after_flush && !c->draining)
        start_drain(c);
}

/* ---- lifecycle ---- */

void conn_abort(struct fs_conn *c)
{
    c->aborting = 1;
    c->close_after_flush = 1;
}

void conn_close(struct fs_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    hd_timer_disarm(c->w->loop, &c->timer);
    /* Wakes the pending recv (and send) with 0 or an error. */
    shutdown(c->fd, SHUT_RDWR);
    if (c->pstate)
        c->pops->free(c); /* disarms its timers; requests are abandoned */
}

void conn_check(struct fs_conn *c)
{
    struct fs_worker *w = c->w;

    if (!c->closing || c->recv_pending || c->send_pending)
        return;
    close(c->fd);
    if (c->ssl)
        wolfSSL_free(c->ssl);
    free(c->out[0].p);
    free(c->out[1].p);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    free(c);
}

static void arm_recv(struct fs_conn *c)
{
    /* Ciphertext wolfSSL has not taken yet is read first, unless the rest is discarded. */
    if (c->recv_pending || c->closing || c->read_paused ||
        (c->cin_len > 0 && !c->close_after_flush))
        return;
    if (hd_loop_recv(c->w->loop, &c->rop, c->fd, c->rbuf, sizeof(c->rbuf)) < 0) {
        conn_close(c);
        return;
    }
    c->recv_pending = 1;
}

/* ---- protocol selection and input ---- */

static const char H2_PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static int start_proto(struct fs_conn *c, enum fs_cproto p)
{
    c->proto = p;
    c->pops = p == FS_CP_H2 ? c->protos->h2 : c->protos->h1;
    return c->pops->start(c);
}

static int proto_input(struct fs_conn *c, const uint8_t *data, size_t len)
{
    if (c->close_after_flush)
        return 0; /* finishing: the rest is discarded */
    if (c->proto == FS_CP_NONE) {
        if (c->kind != FS_L_H2C)
            return start_proto(c, FS_CP_H1) < 0 ? -1 : c->pops->input(c, data, len);
        /* h2c port: prior-knowledge preface, or else HTTP/1.1. */
        size_t take = 24 - c->pre_len < len ? 24 - c->pre_len : len;
        memcpy(c->pre + c->pre_len, data, take);
        c->pre_len += take;
        data += take;
        len -= take;
        int match = memcmp(c->pre, H2_PREFACE, c->pre_len) == 0;
        if (match && c->pre_len < 24)
            return 0;
        if (start_proto(c, match ? FS_CP_H2 : FS_CP_H1) < 0)
            return -1;
        int rv = c->pops->input(c, c->pre, c->pre_len);
        if (rv < 0 || len == 0 || c->closing)
            return rv;
    }
    return c->pops->input(c, data, len);
}

static void tls_pump(struct fs_conn *c)
{
    uint8_t plain[16384];
    int n, err;

    if (!c->hs_done) {
        n = wolfSSL_accept(c->ssl);
        if (c->hang) {
            c->cin_len = 0;
            return;
        }
        if (n != WOLFSSL_SUCCESS) {
            err = wolfSSL_get_error(c->ssl, n);
            if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE)
                return;
            FS_LOCK(c->srv);
            c->srv->stats.tls_failures++;
            FS_UNLOCK(c->srv);
            if (!c->srv->quiet)
                HD_LOG(HD_LOG_DEBUG, "fedisim", "msg=\"TLS handshake failed\" err=%d", err);
            /* Send the alert wolfSSL queued, then close. */
            c->close_after_flush = 1;
            c->cin_len = 0;
            return;
        }
        c->hs_done = 1;
        FS_LOCK(c->srv);
        if (wolfSSL_session_reused(c->ssl) == 1)
            c->srv->stats.tls_resumed++;
        else
            c->srv->stats.tls_full++;
        FS_UNLOCK(c->srv);
        if (start_proto(c, c->alpn_h2 ? FS_CP_H2 : FS_CP_H1) < 0) {
            conn_close(c);
            return;
        }
    }
    while (!c->closing && !c->read_paused && !c->close_after_flush) {
        n = wolfSSL_read(c->ssl, plain, sizeof(plain));
        if (n > 0) {
            if (proto_input(c, plain, (size_t)n) < 0) {
                conn_close(c);
                return;
            }
            continue;
        }
        err = wolfSSL_get_error(c->ssl, n);
        if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE)
            return;
        /* close_notify or a fatal record error: either way the stream is over. */
        c->close_after_flush = 1;
        c->cin_len = 0;
        return;
    }
}

static void on_recv(struct hd_loop_op *op, int res)
{
    struct fs_conn *c = container_of(op, struct fs_conn, rop);

    c->recv_pending = 0;
    if (c->closing)
        goto out;
    if (res <= 0) {
        conn_close(c);
        goto out;
    }
    FS_LOCK(c->srv);
    c->srv->stats.bytes_in += (uint64_t)res;
    FS_UNLOCK(c->srv);
    c->last_active_ms = hd_loop_now_ms(c->w->loop);
    if (c->draining || c->hang || c->close_after_flush) {
        c->cin_len = 0; /* finishing or hanging: input is read and dropped */
        goto rearm;
    }
    if (c->ssl) {
        c->cin = c->rbuf;
        c->cin_len = (size_t)res;
        tls_pump(c);
    } else if (proto_input(c, c->rbuf, (size_t)res) < 0) {
        conn_close(c);
    }
    conn_flush(c);
rearm:
    arm_recv(c);
out:
    conn_check(c);
}

static void on_send(struct hd_loop_op *op, int res)
{
    struct fs_conn *c = container_of(op, struct fs_conn, sop);
    struct fs_obuf *b = &c->out[c->snd];

    c->send_pending = 0;
    if (c->closing)
        goto out;
    if (res <= 0) {
        conn_close(c);
        goto out;
    }
    FS_LOCK(c->srv);
    c->srv->stats.bytes_out += (uint64_t)res;
    FS_UNLOCK(c->srv);
    c->snd_off += (size_t)res;
    if (c->snd_off >= b->len) {
        b->len = 0;
        c->snd_off = 0;
    }
    conn_flush(c);
out:
    conn_check(c);
}

void conn_resume_read(struct fs_conn *c)
{
    if (!c->read_paused || c->closing)
        return;
    c->read_paused = 0;
    if (c->ssl && c->hs_done)
        tls_pump(c);
    conn_flush(c);
    arm_recv(c);
}

static void on_timer(struct hd_timer *t)
{
    struct fs_conn *c = container_of(t, struct fs_conn, timer);
    uint64_t now = hd_loop_now_ms(c->w->loop);

    if (c->draining) {
        conn_close(c);
    } else if (now - c->last_active_ms >= c->srv->idle_timeout_ms &&
               !(c->pstate && c->pops->busy(c))) {
        /* Idle: end with a FIN after any unsent bytes (a hung connection just closes). */
        if (c->hang || c->closing) {
            conn_close(c);
        } else {
            conn_abort(c);
            conn_flush(c);
        }
    } else {
        uint64_t due = c->last_active_ms + c->srv->idle_timeout_ms + 1;
        hd_timer_arm(c->w->loop, &c->timer, due > now ? due : now + c->srv->idle_timeout_ms);
    }
    conn_check(c);
}

/* ---- accepting ---- */

void conn_accept(struct fs_worker *w, enum fs_lkind kind, int fd, const struct fs_protos *protos)
{
    struct fs_server *srv = w->srv;
    struct fs_conn *c;
    int one = 1;

    if (w->nconns >= w->max_conns) {
        FS_LOCK(srv);
        srv->stats.conns_over_limit++;
        FS_UNLOCK(srv);
        close(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->srv = srv;
    c->w = w;
    c->kind = kind;
    c->fd = fd;
    c->protos = protos;
    c->rop.cb = on_recv;
    c->sop.cb = on_send;
    hd_timer_init(&c->timer, on_timer);
    c->last_active_ms = hd_loop_now_ms(w->loop);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    FS_LOCK(srv);
    srv->stats.conns++;
    FS_UNLOCK(srv);
    if (kind == FS_L_TLS || kind == FS_L_TLS_H1) {
        c->ssl = wolfSSL_new(kind == FS_L_TLS ? srv->tls_ctx : srv->tls_h1_ctx);
        if (!c->ssl) {
            conn_close(c);
            conn_check(c);
            return;
        }
        wolfSSL_SetIOReadCtx(c->ssl, c);
        wolfSSL_SetIOWriteCtx(c->ssl, c);
    }
    hd_timer_arm(w->loop, &c->timer, c->last_active_ms + srv->idle_timeout_ms + 1);
    arm_recv(c);
    conn_check(c);
}

/* ---- TLS contexts ---- */

static int alpn_select(WOLFSSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    struct fs_conn *c = wolfSSL_GetIOReadCtx(ssl);
    /* From the listener, not from arg: with --leaf-certs the SNI callback may have switched
     * the connection to a leaf's context, which both TLS listeners share. */
    int allow_h2 = c ? c->kind == FS_L_TLS : arg != NULL;
    const unsigned char *h1 = NULL;

    for (unsigned i = 0; i < inlen;) {
        unsigned l = in[i];
        if (i + 1 + l > inlen)
            break;
        if (allow_h2 && l == 2 && memcmp(in + i + 1, "h2", 2) == 0) {
            *out = in + i + 1;
            *outlen = 2;
            c->alpn_h2 = 1;
            return SSL_TLSEXT_ERR_OK;
        }
        if (l == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0)
            h1 = in + i + 1;
        i += 1 + l;
    }
    if (h1) {
        *out = h1;
        *outlen = 8;
        return SSL_TLSEXT_ERR_OK;
    }
    /* No protocol in common: carry on without ALPN and speak HTTP/1.1. */
    return SSL_TLSEXT_ERR_NOACK;
}

static int sni_cb(WOLFSSL *ssl, int *ret, void *arg)
{
    struct fs_conn *c = wolfSSL_GetIOReadCtx(ssl);
    const char *name = wolfSSL_get_servername(ssl, WOLFSSL_SNI_HOST_NAME);
    char host[256];
    const struct fs_profile *p;

    /* Only dead profiles act here, before any request: the rest waits for the Host. */
    if (!name || !c)
        return SSL_TLSEXT_ERR_OK;
    fs_host_from_authority(name, host, sizeof(host));
    p = fs_profiles_match(&c->srv->profiles, host);
    if (p->dead == FS_DEAD_REFUSE) {
        FS_LOCK(c->srv);
        c->srv->stats.conns_refused++;
        FS_UNLOCK(c->srv);
        *ret = 112; /* unrecognized_name alert */
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    if (p->dead == FS_DEAD_HANG) {
        FS_LOCK(c->srv);
        c->srv->stats.conns_hung++;
        FS_UNLOCK(c->srv);
        c->hang = 1;
    }
    if (c->srv->nleaf > 0) {
        /* The host's own certificate: switching the context swaps in its certificate chain
         * and key (the context keeps owning them); nothing else differs between contexts. */
        WOLFSSL_CTX *leaf = c->srv->leaf_ctx[fs_leaf_index(host, c->srv->nleaf)];
        if (wolfSSL_set_SSL_CTX(ssl, leaf) != leaf) {
            *ret = 80; /* internal_error alert */
            return SSL_TLSEXT_ERR_ALERT_FATAL;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

unsigned fs_leaf_index(const char *host, unsigned nleaf)
{
    /* FNV-1a 64 of the lower-cased name: stable across runs, builds and machines. */
    uint64_t h = 0xcbf29ce484222325ULL;

    for (const unsigned char *p = (const unsigned char *)host; *p; p++) {
        unsigned char ch = *p >= 'A' && *p <= 'Z' ? (unsigned char)(*p + 32) : *p;
        h = (h ^ ch) * 0x100000001b3ULL;
    }
    return nleaf ? (unsigned)(h % nleaf) : 0;
}

/* ChaCha20-Poly1305 first: Debian's wolfSSL has no AES-NI, and its table-driven AES-GCM cost
 * fedisim about 40% more CPU per request than ChaCha20 in h2load runs. */
static const char DEFAULT_CIPHERS[] =
    "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:"
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";

static WOLFSSL_CTX *make_ctx(const char *cert, const char *key, const char *ciphers, int allow_h2)
{
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());

    if (!ctx)
        return NULL;
    if (wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_use_certificate_chain_file(ctx, cert) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_use_PrivateKey_file(ctx, key, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
        HD_LOG(HD_LOG_ERROR, "fedisim", "msg=\"cannot load certificate or key\" cert=%s key=%s",
               cert, key);
        wolfSSL_CTX_free(ctx);
        return NULL;
    }
    if (wolfSSL_CTX_set_cipher_list(ctx, ciphers ? ciphers : DEFAULT_CIPHERS) != WOLFSSL_SUCCESS) {
        HD_LOG(HD_LOG_ERROR, "fedisim", "msg=\"bad cipher list\"");
        wolfSSL_CTX_free(ctx);
        return NULL;
    }
    wolfSSL_CTX_SetIORecv(ctx, tls_recv_cb);
    wolfSSL_CTX_SetIOSend(ctx, tls_send_cb);
    wolfSSL_CTX_set_alpn_select_cb(ctx, alpn_select, allow_h2 ? (void *)1 : NULL);
    wolfSSL_CTX_set_servername_callback(ctx, sni_cb);
    return ctx;
}

int fs_server_tls_init(struct fs_server *srv, const char *cert, const char *key,
                       const char *ciphers)
{
    if (wolfSSL_Init() != WOLFSSL_SUCCESS)
        return HD_ERR_TLS;
    srv->tls_inited = 1;
    srv->tls_ctx = make_ctx(cert, key, ciphers, 1);
    srv->tls_h1_ctx = srv->tls_ctx ? make_ctx(cert, key, ciphers, 0) : NULL;
    return srv->tls_h1_ctx ? 0 : HD_ERR_TLS;
}

int fs_server_leaf_init(struct fs_server *srv, const char *dir, const char *ciphers)
{
    char pem[4096], key[4096];
    unsigned n = 0;
    int rv = 0;

    /* Count DIR/0.pem, DIR/1.pem, ... up to the first gap; one past the cap is refused. */
    for (;;) {
        int len = snprintf(pem, sizeof(pem), "%s/%u.pem", dir, n);
        if (len < 0 || (size_t)len >= sizeof(pem))
            return -ENAMETOOLONG;
        if (access(pem, R_OK) != 0)
            break;
        if (n == FS_LEAF_MAX) {
            HD_LOG(HD_LOG_ERROR, "fedisim",
                   "msg=\"too many leaf certificates (the cap is %u)\" dir=%s", FS_LEAF_MAX,
                   dir);
            return HD_ERR_INVALID;
        }
        n++;
    }
    if (n == 0) {
        HD_LOG(HD_LOG_ERROR, "fedisim", "msg=\"no leaf certificate (want DIR/0.pem)\" dir=%s",
               dir);
        return HD_ERR_INVALID;
    }
    srv->leaf_ctx = calloc(n, sizeof(*srv->leaf_ctx));
    if (!srv->leaf_ctx)
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        snprintf(pem, sizeof(pem), "%s/%u.pem", dir, i);
        snprintf(key, sizeof(key), "%s/%u.key", dir, i);
        /* make_ctx logs a certificate or key that does not load. */
        srv->leaf_ctx[i] = make_ctx(pem, key, ciphers, 1);
        if (!srv->leaf_ctx[i]) {
            rv = HD_ERR_TLS;
            break;
        }
        srv->nleaf = i + 1;
    }
    /* A TLS 1.2 ticket is read before the SNI callback, with the default context's ticket
     * key, so a ticket from a leaf context never decrypts: give TLS 1.2 clients session IDs
     * instead (the session cache is shared by all contexts). TLS 1.3 tickets resume across
     * the switch as they are (tests/integration/fedisim_leafcerts.sh checks both). */
    if (rv == 0) {
        wolfSSL_CTX_NoTicketTLSv12(srv->tls_ctx);
        wolfSSL_CTX_NoTicketTLSv12(srv->tls_h1_ctx);
        for (unsigned i = 0; i < n; i++)
            wolfSSL_CTX_NoTicketTLSv12(srv->leaf_ctx[i]);
    }
    return rv;
}

/* Session tickets sealed with ChaCha20-Poly1305 under the key of --ticket-key-file; the
 * additional data is the key name, the IV and the ticket's length. A ticket under another key
 * name (another server's, or one from before the file existed) is declined: a full handshake. */
static int on_ticket_enc(WOLFSSL *ssl, unsigned char key_name[WOLFSSL_TICKET_NAME_SZ],
                         unsigned char iv[WOLFSSL_TICKET_IV_SZ],
                         unsigned char mac[WOLFSSL_TICKET_MAC_SZ], int enc, unsigned char *ticket,
                         int in_len, int *out_len, void *user_data)
{
    struct fs_server *srv = user_data;
    unsigned char aad[WOLFSSL_TICKET_NAME_SZ + WOLFSSL_TICKET_IV_SZ + 2];
    int rv;

    (void)ssl;
    if (!srv || in_len < 0 || in_len > 65535)
        return WOLFSSL_TICKET_RET_REJECT;
    if (enc) {
        memcpy(key_name, srv->ticket_key, WOLFSSL_TICKET_NAME_SZ);
        if (getrandom(iv, WOLFSSL_TICKET_IV_SZ, 0) != WOLFSSL_TICKET_IV_SZ)
            return WOLFSSL_TICKET_RET_REJECT;
    } else if (memcmp(key_name, srv->ticket_key, WOLFSSL_TICKET_NAME_SZ) != 0) {
        return WOLFSSL_TICKET_RET_REJECT;
    }
    memcpy(aad, key_name, WOLFSSL_TICKET_NAME_SZ);
    memcpy(aad + WOLFSSL_TICKET_NAME_SZ, iv, WOLFSSL_TICKET_IV_SZ);
    aad[sizeof(aad) - 2] = (unsigned char)(in_len >> 8);
    aad[sizeof(aad) - 1] = (unsigned char)in_len;
    if (enc)
        rv = wc_ChaCha20Poly1305_Encrypt(srv->ticket_key + WOLFSSL_TICKET_NAME_SZ, iv, aad,
                                         sizeof(aad), ticket, (word32)in_len, ticket, mac);
    else
        rv = wc_ChaCha20Poly1305_Decrypt(srv->ticket_key + WOLFSSL_TICKET_NAME_SZ, iv, aad,
                                         sizeof(aad), ticket, (word32)in_len, mac, ticket);
    if (rv != 0)
        return WOLFSSL_TICKET_RET_REJECT;
    *out_len = in_len;
    return WOLFSSL_TICKET_RET_OK;
}

static int ticket_ctx(void *ctx, struct fs_server *srv)
{
    if (!ctx)
        return 0;
    if (wolfSSL_CTX_set_TicketEncCb(ctx, on_ticket_enc) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_TicketEncCtx(ctx, srv) != WOLFSSL_SUCCESS)
        return HD_ERR_TLS;
    return 0;
}

int fs_server_ticket_key(struct fs_server *srv, const char *path)
{
    unsigned char *k = srv->ticket_key;
    size_t need = sizeof(srv->ticket_key), got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rv = 0;

    if (fd < 0 && errno == ENOENT) {
        /* A new key: written to a new file only, never over an existing one. */
        if (getrandom(k, need, 0) != (ssize_t)need) {
            fprintf(stderr, "fedisim: cannot draw a ticket key: %s\n", strerror(errno));
            return -EIO;
        }
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, k, need) != (ssize_t)need || fsync(fd) != 0) {
            rv = -errno;
            fprintf(stderr, "fedisim: cannot write the ticket key file %s: %s\n", path,
                    strerror(errno));
        }
        if (fd >= 0)
            close(fd);
        if (rv)
            return rv;
    } else if (fd < 0) {
        rv = -errno;
        fprintf(stderr, "fedisim: cannot read the ticket key file %s: %s\n", path,
                strerror(errno));
        return rv;
    } else {
        unsigned char buf[sizeof(srv->ticket_key) + 1];
        for (;;) {
            ssize_t n = read(fd, buf + got, sizeof(buf) - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t)n;
            if (got == sizeof(buf))
                break;
        }
        close(fd);
        if (got != need) {
            fprintf(stderr, "fedisim: the ticket key file %s must hold exactly %zu bytes\n",
                    path, need);
            return HD_ERR_INVALID;
        }
        memcpy(k, buf, need);
    }
    srv->ticket_key_set = 1;
    rv = ticket_ctx(srv->tls_ctx, srv);
    if (!rv)
        rv = ticket_ctx(srv->tls_h1_ctx, srv);
    for (unsigned i = 0; !rv && i < srv->nleaf; i++)
        rv = ticket_ctx(srv->leaf_ctx[i], srv);
    if (rv)
        fprintf(stderr, "fedisim: cannot set the ticket key callback\n");
    return rv;
}

void fs_tls_thread_exit(void)
{
#ifdef FP_ECC
    /* wolfSSL keeps a per-thread cache of ECC fixed-point tables (FP_ECC): a thread that did
     * handshakes must free its own before it ends. */
    wc_ecc_fp_free();
#endif
}

void fs_server_tls_fini(struct fs_server *srv)
{
    if (srv->tls_ctx)
        wolfSSL_CTX_free(srv->tls_ctx);
    if (srv->tls_h1_ctx)
        wolfSSL_CTX_free(srv->tls_h1_ctx);
    for (unsigned i = 0; i < srv->nleaf; i++)
        wolfSSL_CTX_free(srv->leaf_ctx[i]);
    free(srv->leaf_ctx);
    srv->leaf_ctx = NULL;
    srv->nleaf = 0;
    if (srv->tls_inited)
        wolfSSL_Cleanup();
    srv->tls_ctx = srv->tls_h1_ctx = NULL;
    srv->tls_inited = 0;
}

/* HTTP/2 server side: nghttp2 through mem_recv/mem_send, one fs_stream per request. */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "err.h"
#include "h2.h"
#include "handle.h"
#include "log.h"
#include "req.h"

#define H2_MAX_STREAMS 512
#define H2_STREAM_WINDOW (1 << 20)
#define H2_CONN_WINDOW (16 << 20)

struct fs_stream;

/* A connection's HTTP/2 state (its c->pstate). */
struct fs_h2 {
    nghttp2_session *session;
    struct fs_stream *streams;
    unsigned ndispatched;
    int goaway_sent;
    int32_t goaway_last_id;
};

struct fs_stream {
    struct fs_conn *c;
    struct fs_stream *prev, *next;
    int32_t id;
    struct fs_req req;
    struct fs_resp resp;
    struct hd_timer timer;
    size_t off;
    int dispatched;
};

static struct fs_h2 *h2_of(const struct fs_conn *c)
{
    return c->pstate;
}

static void stream_free(struct fs_conn *c, struct fs_stream *s)
{
    hd_timer_disarm(c->w->loop, &s->timer);
    if (s->prev)
        s->prev->next = s->next;
    else
        h2_of(c)->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    fs_req_fini(&s->req);
    fs_resp_fini(&s->resp);
    free(s);
}

static ssize_t read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    struct fs_stream *s = source->ptr;
    size_t n = s->resp.body_len - s->off;

    if (n > length)
        n = length;
    memcpy(buf, s->resp.body + s->off, n);
    s->off += n;
    if (s->off >= s->resp.body_len)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

#define NV(n, v, vl)                                                                               \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NONE                  \
    }

/* Writes the decided answer. Nothing is answered (or counted) once the connection is being
 * aborted: those bytes would never leave. */
static void stream_answer(struct fs_stream *s)
{
    struct fs_conn *c = s->c;
    nghttp2_session *session = h2_of(c)->session;
    struct fs_resp *r = &s->resp;
    char status[8], clen[24];
    nghttp2_nv nv[5];
    size_t n = 0;
    nghttp2_data_provider prd;

    if (c->aborting)
        return;
    switch (r->act) {
    case FS_ACT_HANG:
        return;
    case FS_ACT_RESET:
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
        return;
    case FS_ACT_CLOSE:
        conn_abort(c); /* only sets flags: safe inside nghttp2 callbacks */
        return;
    case FS_ACT_RESPOND:
        break;
    }
    snprintf(status, sizeof(status), "%d", r->status);
    snprintf(clen, sizeof(clen), "%zu", r->body_len);
    nv[n++] = (nghttp2_nv)NV(":status", status, strlen(status));
    nv[n++] = (nghttp2_nv)NV("content-length", clen, strlen(clen));
    if (r->ctype)
        nv[n++] = (nghttp2_nv)NV("content-type", r->ctype, strlen(r->ctype));
    if (r->retry_after[0])
        nv[n++] = (nghttp2_nv)NV("retry-after", r->retry_after, strlen(r->retry_after));
    if (r->accept_signature)
        nv[n++] = (nghttp2_nv)NV("accept-signature", r->accept_signature,
                                 strlen(r->accept_signature));
    prd.source.ptr = s;
    prd.read_callback = read_body;
    if (nghttp2_submit_response(session, s->id, nv, n, r->body_len ? &prd : NULL) != 0) {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    fs_commit(c->srv, r, FS_PROTO_H2);
}

static void on_stream_timer(struct hd_timer *t)
{
    struct fs_stream *s = container_of(t, struct fs_stream, timer);
    struct fs_conn *c = s->c;

    stream_answer(s);
    conn_flush(c);
    conn_check(c);
}

static void dispatch(struct fs_conn *c, struct fs_stream *s)
{
    struct fs_server *srv = c->srv;
    struct fs_h2 *h2 = h2_of(c);
    const struct fs_profile *p;

    s->dispatched = 1;
    if (h2->goaway_sent && s->id > h2->goaway_last_id) {
        /* Arrived after our GOAWAY was decided: the client will retry it elsewhere, so it is
         * neither processed nor counted. */
        fs_req_fini(&s->req);
        nghttp2_submit_rst_stream(h2->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_REFUSED_STREAM);
        return;
    }
    s->req.proto = FS_PROTO_H2;
    s->req.tls = c->ssl != NULL;
    fs_handle(c->w, &s->req, &s->resp);
    /* The request is no longer needed: give its memory back now, not at stream close. */
    fs_req_fini(&s->req);
    p = s->resp.host ? s->resp.host->prof : NULL;
    h2->ndispatched++;
    if (p && p->goaway_after && h2->ndispatched >= p->goaway_after && !h2->goaway_sent) {
        nghttp2_submit_goaway(h2->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR, NULL, 0);
        h2->goaway_sent = 1;
        h2->goaway_last_id = s->id;
        FS_COUNT(srv, srv->stats.goaways++);
    }
    if (s->resp.delay_ms > 0 && s->resp.act != FS_ACT_HANG) {
        hd_timer_arm(c->w->loop, &s->timer, hd_loop_now_ms(c->w->loop) + s->resp.delay_ms);
        return;
    }
    stream_answer(s);
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct fs_conn *c = user_data;
    struct fs_stream *s;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    s = calloc(1, sizeof(*s));
    if (!s)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    s->c = c;
    s->id = frame->hd.stream_id;
    fs_req_init(&s->req);
    hd_timer_init(&s->timer, on_stream_timer);
    s->next = h2_of(c)->streams;
    if (s->next)
        s->next->prev = s;
    h2_of(c)->streams = s;
    nghttp2_session_set_stream_user_data(session, s->id, s);
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    struct fs_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);

    if (!s || s->dispatched)
        return 0;
    /* Over the cap, the request is flagged and answered 431. */
    fs_req_add(&s->req, (const char *)name, namelen, (const char *)value, valuelen);
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user_data)
{
    struct fs_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);

    if (!s || s->dispatched)
        return 0;
    if (fs_req_body(&s->req, data, len) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct fs_conn *c = user_data;
    struct fs_stream *s;

    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s && !s->dispatched)
        dispatch(c, s);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    struct fs_conn *c = user_data;
    struct fs_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);

    if (s)
        stream_free(c, s);
    return 0;
}

static int h2_start(struct fs_conn *c)
{
    struct fs_h2 *h2 = calloc(1, sizeof(*h2));
    nghttp2_session_callbacks *cbs;
    nghttp2_settings_entry iv[2] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_MAX_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
    };
    int rv;

    if (!h2)
        return -ENOMEM;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        free(h2);
        return -ENOMEM;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    rv = nghttp2_session_server_new(&h2->session, cbs, c);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0) {
        free(h2);
        return -ENOMEM;
    }
    if (nghttp2_submit_settings(h2->session, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
        nghttp2_session_set_local_window_size(h2->session, NGHTTP2_FLAG_NONE, 0,
                                              H2_CONN_WINDOW) != 0) {
        nghttp2_session_del(h2->session);
        free(h2);
        return HD_ERR_PROTOCOL;
    }
    c->pstate = h2;
    return 0;
}

static int h2_input(struct fs_conn *c, const uint8_t *data, size_t len)
{
    ssize_t rv = nghttp2_session_mem_recv(h2_of(c)->session, data, len);

    if (rv < 0) {
        HD_LOG(HD_LOG_DEBUG, "fedisim", "msg=\"h2 input rejected\" err=\"%s\"",
               nghttp2_strerror((int)rv));
        return -1;
    }
    return 0;
}

/* Pulls frames from nghttp2 into the output buffer until it is above FS_OUT_HIGH. */
static int h2_pull(struct fs_conn *c)
{
    uint8_t stage[16384];
    size_t sl = 0;

    /* Frames are gathered into records of up to 16 KiB: one TLS record per small frame
     * would cost a record header and a cipher call for every 9-byte HEADERS frame. */
    while (c->out[!c->snd].len + sl < FS_OUT_HIGH) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(h2_of(c)->session, &data);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        if (sl + (size_t)n > sizeof(stage)) {
            if (sl > 0 && conn_write(c, stage, sl) < 0)
                return -1;
            sl = 0;
        }
        if ((size_t)n > sizeof(stage)) {
            if (conn_write(c, data, (size_t)n) < 0)
                return -1;
            continue;
        }
        memcpy(stage + sl, data, (size_t)n);
        sl += (size_t)n;
    }
    if (sl > 0 && conn_write(c, stage, sl) < 0)
        return -1;
    return c->closing ? -1 : 0;
}

/* nghttp2 wants neither to read nor to write. */
static int h2_done(struct fs_conn *c)
{
    nghttp2_session *session = h2_of(c)->session;

    return !nghttp2_session_want_read(session) && !nghttp2_session_want_write(session);
}

/* A request is being answered: a stream is open. */
static int h2_busy(const struct fs_conn *c)
{
    return h2_of(c)->streams != NULL;
}

static void h2_free(struct fs_conn *c)
{
    struct fs_h2 *h2 = h2_of(c);

    while (h2->streams)
        stream_free(c, h2->streams);
    nghttp2_session_del(h2->session);
    free(h2);
    c->pstate = NULL;
}

const struct fs_proto_ops fs_h2_proto = {
    .start = h2_start,
    .input = h2_input,
    .pull = h2_pull,
    .done = h2_done,
    .busy = h2_busy,
    .free = h2_free,
};

/* HTTP/2 client sessions through nghttp2_session_mem_recv / mem_send: nghttp2 never sees a
 * socket. Frames are pulled into the connection's send buffer while they fit, so output for
 * many streams leaves in one send. */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "h2.h"
#include "log.h"
#include "rq.h"

struct hd_h2 {
    nghttp2_session *session;
    const struct hd_h2_callbacks *cbs;
    void *user_data;
    const char *host;
    size_t max_header_bytes;
    int tls;
    int got_settings;
};

static struct hd_http_rq *stream_rq(nghttp2_session *s, int32_t id)
{
    return nghttp2_session_get_stream_user_data(s, id);
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    struct hd_h2 *h2 = ud;
    struct hd_http_rq *rq;

    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    rq = stream_rq(s, frame->hd.stream_id);
    if (!rq)
        return 0;
    rq->hdr_bytes += nlen + vlen + 32; /* RFC 9113 6.5.2 accounting */
    if (rq->hdr_bytes > h2->max_header_bytes) {
        rq->error = HD_ERR_TOO_LARGE;
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets this stream only */
    }
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        int st = 0;
        if (vlen != 3)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        for (size_t i = 0; i < 3; i++)
            st = st * 10 + (value[i] - '0');
        rq->status = st;
        return 0;
    }
    return hd_rq_header(rq, (const char *)name, nlen, (const char *)value, vlen);
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *ud)
{
    struct hd_http_rq *rq = stream_rq(s, stream_id);
    if (rq)
        hd_rq_body(rq, data, len);
    return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    if (frame->hd.type == NGHTTP2_HEADERS) {
        struct hd_http_rq *rq = stream_rq(s, frame->hd.stream_id);
        if (rq)
            rq->sent = 1;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    struct hd_h2 *h2 = ud;

    switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
            h2->got_settings = 1;
            h2->cbs->on_settings(h2->user_data);
        }
        break;
    case NGHTTP2_GOAWAY:
        /* Streams above last_stream_id are closed by nghttp2 with REFUSED_STREAM and
         * retried; the rest may finish. No new streams here. */
        HD_LOG(HD_LOG_DEBUG, "h2", "msg=\"GOAWAY\" host=%s last_stream=%d code=%u", h2->host,
               frame->goaway.last_stream_id, frame->goaway.error_code);
        h2->cbs->on_goaway(h2->user_data);
        break;
    default:
        break;
    }
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *ud)
{
    struct hd_h2 *h2 = ud;
    struct hd_http_rq *rq = stream_rq(s, stream_id);
    int err, refused = 0;

    if (!rq)
        return 0;
    nghttp2_session_set_stream_user_data(s, stream_id, NULL);
    if (error_code == NGHTTP2_NO_ERROR && rq->status >= 200 && !rq->error) {
        err = 0;
    } else if (error_code == NGHTTP2_REFUSED_STREAM) {
        err = HD_ERR_REFUSED_STREAM;
        refused = 1;
    } else if (rq->error) {
        err = rq->error;
    } else {
        /* Errors nghttp2 raises on the peer's frames (or the peer's own protocol-error
         * RST_STREAM) are protocol errors; the rest (CANCEL, INTERNAL_ERROR, ...) resets. */
        int proto = error_code == NGHTTP2_NO_ERROR || error_code == NGHTTP2_PROTOCOL_ERROR ||
                    error_code == NGHTTP2_COMPRESSION_ERROR ||
                    error_code == NGHTTP2_FLOW_CONTROL_ERROR ||
                    error_code == NGHTTP2_FRAME_SIZE_ERROR;
        err = proto ? HD_ERR_PROTOCOL : HD_ERR_RESET;
    }
    h2->cbs->on_stream_close(rq, err, refused, h2->user_data);
    return 0;
}

static ssize_t read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct hd_http_rq *rq = src->ptr;
    size_t n;

    /* A cancelled stream no longer names its request (hd_h2_cancel), which may be carrying
     * another stream by now. */
    if (!rq || stream_rq(s, stream_id) != rq) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    n = rq->req.body_len - rq->body_off;
    if (n > len)
        n = len;
    if (n)
        memcpy(buf, rq->req.body + rq->body_off, n);
    rq->body_off += n;
    if (rq->body_off == rq->req.body_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

int hd_h2_new(struct hd_h2 **out, const char *host, int tls, size_t max_header_bytes,
              const struct hd_h2_callbacks *cbs, void *user_data)
{
    nghttp2_session_callbacks *ncb;
    nghttp2_option *opt;
    struct hd_h2 *h2 = calloc(1, sizeof(*h2));
    nghttp2_settings_entry iv[2];
    int rv;

    if (!h2)
        return -ENOMEM;
    h2->cbs = cbs;
    h2->user_data = user_data;
    h2->host = host;
    h2->tls = tls != 0;
    h2->max_header_bytes = max_header_bytes;
    if (nghttp2_session_callbacks_new(&ncb) != 0) {
        free(h2);
        return -ENOMEM;
    }
    nghttp2_session_callbacks_set_on_header_callback(ncb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(ncb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(ncb, on_frame_send);
    nghttp2_session_callbacks_set_on_frame_recv_callback(ncb, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(ncb, on_stream_close);
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(ncb);
        free(h2);
        return -ENOMEM;
    }
    /* Servers may not push; and responses we drop still reopen the window (auto update). */
    nghttp2_option_set_peer_max_concurrent_streams(opt, 100);
    rv = nghttp2_session_client_new2(&h2->session, ncb, h2, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(ncb);
    if (rv != 0) {
        free(h2);
        return -ENOMEM;
    }
    /* No SETTINGS_MAX_HEADER_LIST_SIZE: it is advisory and what a server does when over it
     * varies (reset, or drop and let the stream time out). The cap is enforced in on_header,
     * which fails just that stream with HD_ERR_TOO_LARGE. */
    iv[0].settings_id = NGHTTP2_SETTINGS_ENABLE_PUSH;
    iv[0].value = 0;
    iv[1].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
    iv[1].value = 1 << 20;
    rv = nghttp2_submit_settings(h2->session, NGHTTP2_FLAG_NONE, iv, 2);
    if (rv != 0) {
        nghttp2_session_del(h2->session);
        free(h2);
        return -ENOMEM;
    }
    *out = h2;
    return 0;
}

void hd_h2_free(struct hd_h2 *h2)
{
    if (!h2)
        return;
    nghttp2_session_del(h2->session);
    free(h2);
}

/* Names and values are not copied by nghttp2: every one lives until the request completes
 * (the request's strings are borrowed until on_done, the rest is static or in rq), which is
 * after its HEADERS frame was sent or given up. Names are lower-case already
 * (hd_h1_check_request), as nghttp2 requires of names it does not copy. */
static void nv_set(nghttp2_nv *nv, const char *name, const char *value, size_t vlen)
{
    nv->name = (uint8_t *)(uintptr_t)name;
    nv->namelen = strlen(name);
    nv->value = (uint8_t *)(uintptr_t)value;
    nv->valuelen = vlen;
    nv->flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
}

#define HD_H2_MAX_NV (HD_HTTP_MAX_HEADERS + 5) /* + pseudo-headers, content-length */

/* Writes v in decimal (no NUL) and returns its length: snprintf's format parsing showed in
 * profiles, once per request. cap >= 20. */
static size_t put_u64(char *out, uint64_t v)
{
    char t[20];
    size_t n = 0, i;

    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (i = 0; i < n; i++)
        out[i] = t[n - 1 - i];
    return n;
}

int hd_h2_submit(struct hd_h2 *h2, struct hd_http_rq *rq)
{
    nghttp2_nv nva[HD_H2_MAX_NV];
    nghttp2_data_provider prd;
    char *clen = rq->clen;
    size_t n = 0;
    int32_t id;
    const struct hd_http_req *r = &rq->req;

    if (r->nheaders + 5 > HD_H2_MAX_NV)
        return HD_ERR_INVALID;
    nv_set(&nva[n++], ":method", r->method, strlen(r->method));
    nv_set(&nva[n++], ":scheme", h2->tls ? "https" : "http", h2->tls ? 5 : 4);
    nv_set(&nva[n++], ":authority", r->authority, strlen(r->authority));
    nv_set(&nva[n++], ":path", r->path, strlen(r->path));
    if (r->body_len > 0 || strcmp(r->method, "GET") != 0) {
        nv_set(&nva[n++], "content-length", clen, put_u64(clen, r->body_len));
    }
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *hn = r->headers[i].name;
        nv_set(&nva[n], hn, r->headers[i].value, strlen(r->headers[i].value));
        /* Values that change from one request to the next on a connection stay out of the
         * HPACK table: a signature (every request), a body's digest (nearly every one: a host
         * rarely gets the same activity twice) and the date (every second; a host that gets a
         * request a second gets a new one each time). In the table they would only evict the
         * headers that do repeat (user-agent, content-type, ...), cost insertions on both
         * sides, and lengthen nghttp2's search: its table chains entries by name, so each
         * request walked (and compared) every date the table held (a 4 KB table holds about
         * 60); that walk was 2-3% of Herald's CPU in the `platform` scenario. */
        if (strcmp(hn, "signature") == 0 || strcmp(hn, "signature-input") == 0 ||
            strcmp(hn, "digest") == 0 || strcmp(hn, "content-digest") == 0 ||
            strcmp(hn, "date") == 0)
            nva[n].flags |= NGHTTP2_NV_FLAG_NO_INDEX;
        n++;
    }
    rq->body_off = 0;
    prd.source.ptr = rq;
    prd.read_callback = read_body;
    /* nghttp2 copies the array now (nva is on our stack), not the strings (nv_set). */
    id = nghttp2_submit_request(h2->session, NULL, nva, n, r->body_len ? &prd : NULL, rq);
    if (id < 0)
        return id == NGHTTP2_ERR_NOMEM ? -ENOMEM : HD_ERR_PROTOCOL;
    rq->stream_id = id;
    return 0;
}

int hd_h2_recv(struct hd_h2 *h2, const uint8_t *data, size_t len)
{
    ssize_t rv = nghttp2_session_mem_recv(h2->session, data, len);

    if (rv < 0) {
        HD_LOG(HD_LOG_DEBUG, "h2", "msg=\"session error\" host=%s err=\"%s\"", h2->host,
               nghttp2_strerror((int)rv));
        return rv == NGHTTP2_ERR_NOMEM ? -ENOMEM : HD_ERR_PROTOCOL;
    }
    return 0;
}

int hd_h2_pull(struct hd_h2 *h2)
{
    /* A frame from mem_send must be taken whole; ask only while a full DATA frame fits. */
    while (nghttp2_session_want_write(h2->session) &&
           h2->cbs->send_room(h2->user_data) >= 16384 + 64) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(h2->session, &data);
        int rv;
        if (n < 0)
            return n == NGHTTP2_ERR_NOMEM ? -ENOMEM : HD_ERR_PROTOCOL;
        if (n == 0)
            break;
        if ((size_t)n > h2->cbs->send_room(h2->user_data))
            return HD_ERR_FULL;
        rv = h2->cbs->send(data, (size_t)n, h2->user_data);
        if (rv != 0)
            return rv;
    }
    return 0;
}

void hd_h2_cancel(struct hd_h2 *h2, struct hd_http_rq *rq)
{
    if (rq->stream_id > 0) {
        nghttp2_session_set_stream_user_data(h2->session, rq->stream_id, NULL);
        nghttp2_submit_rst_stream(h2->session, NGHTTP2_FLAG_NONE, rq->stream_id,
                                  NGHTTP2_CANCEL);
    }
    rq->stream_id = 0;
}

unsigned hd_h2_peer_max_streams(const struct hd_h2 *h2)
{
    uint32_t v;

    if (!h2->got_settings)
        return 100;
    v = nghttp2_session_get_remote_settings(h2->session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return v;
}

void hd_h2_terminate(struct hd_h2 *h2)
{
    nghttp2_session_terminate_session(h2->session, NGHTTP2_NO_ERROR);
}

int hd_h2_alive(const struct hd_h2 *h2)
{
    return nghttp2_session_want_read(h2->session) || nghttp2_session_want_write(h2->session);
}

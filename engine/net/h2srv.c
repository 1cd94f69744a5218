/* Server-side HTTP/2 over memory buffers (see h2srv.h). */
#include <ctype.h>
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "h2srv.h"

#define HDR_MAX 8192 /* one header value kept at most (longer ones are cut) */

struct stream {
    struct stream *next;
    int32_t id;
    char method[16], path[1024], ctype[256];
    char *auth; /* HDR_MAX cap */
    char *body;
    size_t blen, bcap;
    int too_large;
    /* answer */
    char *rbody;
    size_t rlen, roff;
};

struct hd_h2srv {
    nghttp2_session *sess;
    struct stream *streams;
    size_t nstreams;
    size_t max_body;
    hd_h2srv_request_cb cb;
    void *ud;
    int oom;
};

static void stream_free(struct stream *st)
{
    if (!st)
        return;
    free(st->auth);
    free(st->body);
    free(st->rbody);
    free(st);
}

static struct stream *stream_get(struct hd_h2srv *s, int32_t id)
{
    return nghttp2_session_get_stream_user_data(s->sess, id);
}

static void copy_value(char *dst, size_t cap, const uint8_t *v, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = 0;
}

static int on_begin_headers(nghttp2_session *sess, const nghttp2_frame *frame, void *ud)
{
    struct hd_h2srv *s = ud;
    struct stream *st;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    st = calloc(1, sizeof(*st));
    if (!st) {
        s->oom = 1;
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    st->id = frame->hd.stream_id;
    st->next = s->streams;
    s->streams = st;
    s->nstreams++;
    nghttp2_session_set_stream_user_data(sess, st->id, st);
    return 0;
}

static int on_header(nghttp2_session *sess, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud)
{
    struct hd_h2srv *s = ud;
    struct stream *st;

    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    st = stream_get(s, frame->hd.stream_id);
    if (!st)
        return 0;
    if (namelen == 7 && !memcmp(name, ":method", 7)) {
        copy_value(st->method, sizeof(st->method), value, valuelen);
    } else if (namelen == 5 && !memcmp(name, ":path", 5)) {
        copy_value(st->path, sizeof(st->path), value, valuelen);
    } else if (namelen == 12 && !memcmp(name, "content-type", 12)) {
        copy_value(st->ctype, sizeof(st->ctype), value, valuelen);
    } else if (namelen == 13 && !memcmp(name, "authorization", 13)) {
        free(st->auth);
        st->auth = malloc(HDR_MAX);
        if (!st->auth) {
            s->oom = 1;
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        copy_value(st->auth, HDR_MAX, value, valuelen);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *sess, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *ud)
{
    struct hd_h2srv *s = ud;
    struct stream *st = stream_get(s, stream_id);

    if (!st || st->too_large)
        return 0;
    if (st->blen + len > s->max_body) {
        st->too_large = 1; /* keep reading (flow control) but store nothing more */
        return 0;
    }
    if (st->blen + len + 1 > st->bcap) {
        size_t ncap = st->bcap ? st->bcap : 16384;
        char *nb;
        while (ncap < st->blen + len + 1)
            ncap *= 2;
        nb = realloc(st->body, ncap);
        if (!nb) {
            s->oom = 1;
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        st->body = nb;
        st->bcap = ncap;
    }
    memcpy(st->body + st->blen, data, len);
    st->blen += len;
    st->body[st->blen] = 0;
    return 0;
}

static int on_frame_recv(nghttp2_session *sess, const nghttp2_frame *frame, void *ud)
{
    struct hd_h2srv *s = ud;
    struct hd_h2srv_req r;
    struct stream *st;

    if ((frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    st = stream_get(s, frame->hd.stream_id);
    if (!st)
        return 0;
    memset(&r, 0, sizeof(r));
    r.stream_id = st->id;
    r.method = st->method;
    r.path = st->path;
    r.authorization = st->auth ? st->auth : "";
    r.content_type = st->ctype;
    r.body = st->body ? st->body : "";
    r.body_len = st->blen;
    r.too_large = st->too_large;
    s->cb(s, &r, s->ud);
    return 0;
}

static int on_stream_close(nghttp2_session *sess, int32_t stream_id, uint32_t error_code,
                           void *ud)
{
    struct hd_h2srv *s = ud;
    struct stream *st = stream_get(s, stream_id), **pp;

    if (!st)
        return 0;
    for (pp = &s->streams; *pp; pp = &(*pp)->next) {
        if (*pp == st) {
            *pp = st->next;
            break;
        }
    }
    s->nstreams--;
    nghttp2_session_set_stream_user_data(sess, stream_id, NULL);
    stream_free(st);
    return 0;
}

static ssize_t read_body(nghttp2_session *sess, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *ud)
{
    struct stream *st = source->ptr;
    size_t n = st->rlen - st->roff;

    if (n > length)
        n = length;
    if (n)
        memcpy(buf, st->rbody + st->roff, n);
    st->roff += n;
    if (st->roff == st->rlen)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

int hd_h2srv_new(struct hd_h2srv **out, size_t max_body, hd_h2srv_request_cb cb,
                 void *user_data)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, HD_H2SRV_MAX_STREAMS},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 65536},
    };
    struct hd_h2srv *s = calloc(1, sizeof(*s));
    int rc;

    if (!s)
        return -ENOMEM;
    s->max_body = max_body;
    s->cb = cb;
    s->ud = user_data;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        free(s);
        return -ENOMEM;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    rc = nghttp2_session_server_new(&s->sess, cbs, s);
    nghttp2_session_callbacks_del(cbs);
    if (rc != 0) {
        free(s);
        return -ENOMEM;
    }
    if (nghttp2_submit_settings(s->sess, NGHTTP2_FLAG_NONE, iv, 2) != 0) {
        hd_h2srv_free(s);
        return -ENOMEM;
    }
    *out = s;
    return 0;
}

void hd_h2srv_free(struct hd_h2srv *s)
{
    if (!s)
        return;
    /* Detach our streams first, so that nothing nghttp2 does while it tears the session down
     * can reach them; then free them ourselves. */
    for (struct stream *st = s->streams; st; st = st->next)
        nghttp2_session_set_stream_user_data(s->sess, st->id, NULL);
    nghttp2_session_del(s->sess);
    while (s->streams) {
        struct stream *st = s->streams;
        s->streams = st->next;
        stream_free(st);
    }
    free(s);
}

int hd_h2srv_recv(struct hd_h2srv *s, const char *p, size_t n)
{
    ssize_t r = nghttp2_session_mem_recv(s->sess, (const uint8_t *)p, n);
    if (s->oom)
        return -ENOMEM;
    if (r < 0 || (size_t)r != n)
        return HD_ERR_PROTOCOL;
    return 0;
}

int hd_h2srv_respond(struct hd_h2srv *s, int32_t stream_id, int status, const char *ctype,
                     const char *extra, char *body, size_t body_len)
{
    struct stream *st = stream_get(s, stream_id);
    nghttp2_nv nv[8];
    nghttp2_data_provider prd;
    char sstatus[8], slen[24], names[4][64], values[4][192];
    size_t nnv = 0;
    const char *line = extra;

    if (!st) {
        free(body);
        return HD_ERR_INVALID;
    }
    free(st->rbody);
    st->rbody = body;
    st->rlen = body ? body_len : 0;
    st->roff = 0;
    snprintf(sstatus, sizeof(sstatus), "%d", status);
    snprintf(slen, sizeof(slen), "%zu", st->rlen);
#define NV(n, v)                                                                                   \
    do {                                                                                           \
        nv[nnv].name = (uint8_t *)(n);                                                             \
        nv[nnv].namelen = strlen(n);                                                               \
        nv[nnv].value = (uint8_t *)(v);                                                            \
        nv[nnv].valuelen = strlen(v);                                                              \
        nv[nnv].flags = NGHTTP2_NV_FLAG_NONE;                                                      \
        nnv++;                                                                                     \
    } while (0)
    NV(":status", sstatus);
    NV("content-type", ctype);
    NV("content-length", slen);
    /* "Name: value\r\n" lines -> lower-case h2 fields (at most 4) */
    for (size_t k = 0; line && *line && k < 4; k++) {
        const char *colon = strchr(line, ':'), *eol = strstr(line, "\r\n"), *v;
        size_t nl, vl;
        if (!colon || !eol || colon > eol)
            break;
        nl = (size_t)(colon - line);
        v = colon + 1;
        while (*v == ' ')
            v++;
        vl = (size_t)(eol - v);
        if (nl >= sizeof(names[k]) || vl >= sizeof(values[k]))
            break;
        for (size_t i = 0; i < nl; i++)
            names[k][i] = (char)tolower((unsigned char)line[i]);
        names[k][nl] = 0;
        memcpy(values[k], v, vl);
        values[k][vl] = 0;
        NV(names[k], values[k]);
        line = eol + 2;
    }
#undef NV
    prd.source.ptr = st;
    prd.read_callback = read_body;
    /* nghttp2 copies the header fields; the body is read from st until the stream closes. */
    if (nghttp2_submit_response(s->sess, stream_id, nv, nnv, &prd) != 0)
        return -ENOMEM;
    return 0;
}

ssize_t hd_h2srv_pending(struct hd_h2srv *s, char **buf, size_t *len, size_t *cap, size_t max)
{
    size_t added = 0;

    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(s->sess, &data);
        char *nb;
        if (n < 0)
            return n == NGHTTP2_ERR_NOMEM ? -ENOMEM : HD_ERR_PROTOCOL;
        if (n == 0)
            break;
        if (*len + (size_t)n > max)
            return HD_ERR_FULL;
        if (*len + (size_t)n > *cap) {
            size_t ncap = *cap ? *cap : 16384;
            while (ncap < *len + (size_t)n)
                ncap *= 2;
            nb = realloc(*buf, ncap);
            if (!nb)
                return -ENOMEM;
            *buf = nb;
            *cap = ncap;
        }
        memcpy(*buf + *len, data, (size_t)n);
        *len += (size_t)n;
        added += (size_t)n;
    }
    return (ssize_t)added;
}

int hd_h2srv_alive(struct hd_h2srv *s)
{
    return nghttp2_session_want_read(s->sess) || nghttp2_session_want_write(s->sess);
}

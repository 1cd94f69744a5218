/* Server side of HTTP/2 over memory buffers (nghttp2 mem_recv/mem_send), for the local ingest
 * endpoint's h2c (prior knowledge). It knows nothing of what is served: complete requests
 * (headers and a capped body) come out through a callback, answers go in as a status, a
 * content type, extra header lines and a body. The caller owns the socket and does the I/O.
 * h2.c is the client side; the two share nothing but the library. */
#ifndef HD_H2SRV_H
#define HD_H2SRV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HD_H2SRV_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define HD_H2SRV_PREFACE_LEN 24
#define HD_H2SRV_MAX_STREAMS 32

struct hd_h2srv;

/* One complete request; every pointer is valid only during the callback. Header values are
 * NUL-terminated ("" when absent). too_large: the body passed max_body and was cut. */
struct hd_h2srv_req {
    int32_t stream_id;
    const char *method, *path, *authorization, *content_type;
    const char *body;
    size_t body_len;
    int too_large;
};

typedef void (*hd_h2srv_request_cb)(struct hd_h2srv *s, const struct hd_h2srv_req *r,
                                    void *user_data);

/* Creates a server session (sends our SETTINGS first). Returns 0 or -ENOMEM. */
int hd_h2srv_new(struct hd_h2srv **out, size_t max_body, hd_h2srv_request_cb cb,
                 void *user_data);
void hd_h2srv_free(struct hd_h2srv *s); /* NULL ok */

/* Feeds n received bytes (starting with the client preface). Complete requests are handed to
 * the callback before this returns. Returns 0, HD_ERR_PROTOCOL or -ENOMEM. */
int hd_h2srv_recv(struct hd_h2srv *s, const char *p, size_t n);

/* Answers stream_id: extra is "Name: value\r\n" lines or "" (names are lower-cased for h2).
 * Takes ownership of body (malloc'd or NULL). Returns 0, HD_ERR_INVALID (unknown stream) or
 * -ENOMEM. */
int hd_h2srv_respond(struct hd_h2srv *s, int32_t stream_id, int status, const char *ctype,
                     const char *extra, char *body, size_t body_len);

/* Appends the bytes nghttp2 has ready to send to *buf (grown with realloc, at most max bytes
 * in all; *cap is its allocated size). Returns the number appended (0: nothing to send now),
 * HD_ERR_FULL, HD_ERR_PROTOCOL or -ENOMEM. */
ssize_t hd_h2srv_pending(struct hd_h2srv *s, char **buf, size_t *len, size_t *cap, size_t max);

/* 1 while the session wants to read or write, 0 when it is over (GOAWAY both ways). */
int hd_h2srv_alive(struct hd_h2srv *s);

#endif

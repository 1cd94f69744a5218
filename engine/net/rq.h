/* One request inside the HTTP client: the caller's request (copied; its pointers borrowed),
 * where it stands (waiting for a connection, or on one), and what came back so far. Records
 * are pooled by pool.c and carried by conn.c (HTTP/1.1) and h2.c (a stream each); this
 * module owns the record, the intrusive lists that hold it and the sinks that fill in the
 * response.
 */
#ifndef HD_RQ_H
#define HD_RQ_H

#include <stddef.h>
#include <stdint.h>

#include "http_types.h"
#include "loop.h"

#define HD_RQ_HDR_COPY_MAX 1024 /* Retry-After / Accept-Signature copies longer are dropped */

struct hd_pool;
struct hd_origin;
struct hd_conn;

struct hd_http_rq {
    struct hd_http_req req;        /* caller's request, copied; pointers borrowed */
    struct hd_pool *pool;
    struct hd_origin *origin;
    struct hd_conn *conn;          /* while active on a connection */
    struct hd_http_rq *next, *prev; /* origin FIFO, conn's active list, or pool */
    struct hd_tq_ent deadline;     /* set-up and response budget, then response timeout */
    uint64_t submit_ms;
    int32_t stream_id;             /* h2 */
    int status;
    int error;
    int version;
    int retried;                   /* already retried once on a new connection */
    int sent;                      /* bytes of it may have reached the peer */
    size_t body_off;               /* request body bytes written so far */
    size_t hdr_bytes;              /* h2: response header bytes seen */
    char clen[24];                 /* h2: the content-length value, kept until sent */
    char *retry_after;
    char *accept_signature;
    uint8_t *body;                 /* max_body bytes, allocated on first use, kept */
    size_t body_len;
    size_t max_body;               /* response body bytes kept (opts.max_body) */
};

/* A FIFO of requests linked through next / prev (a request is on one list at a time). */
struct hd_rq_list {
    struct hd_http_rq *head, *tail;
    size_t n;
};

void hd_rq_list_push(struct hd_rq_list *l, struct hd_http_rq *rq);
void hd_rq_list_push_front(struct hd_rq_list *l, struct hd_http_rq *rq);
void hd_rq_list_remove(struct hd_rq_list *l, struct hd_http_rq *rq);

/* Response sinks shared by h1 and h2. A header: Retry-After and Accept-Signature are kept (up
 * to HD_RQ_HDR_COPY_MAX bytes), the rest ignored; returns 0. Body bytes: the first max_body
 * are kept, the rest dropped. */
int hd_rq_header(struct hd_http_rq *rq, const char *name, size_t nlen, const char *value,
                 size_t vlen);
void hd_rq_body(struct hd_http_rq *rq, const uint8_t *data, size_t len);
/* Forgets the response received so far (status, error, headers, body) and the progress of
 * sending, so that the request can go out again on another connection. */
void hd_rq_reset_response(struct hd_http_rq *rq);

#endif

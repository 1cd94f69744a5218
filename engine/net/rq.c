/* Request records: intrusive lists and response sinks (see rq.h). */
#include <stdlib.h>
#include <string.h>

#include "rq.h"

void hd_rq_list_push(struct hd_rq_list *l, struct hd_http_rq *rq)
{
    rq->next = NULL;
    rq->prev = l->tail;
    if (l->tail)
        l->tail->next = rq;
    else
        l->head = rq;
    l->tail = rq;
    l->n++;
}

void hd_rq_list_push_front(struct hd_rq_list *l, struct hd_http_rq *rq)
{
    rq->prev = NULL;
    rq->next = l->head;
    if (l->head)
        l->head->prev = rq;
    else
        l->tail = rq;
    l->head = rq;
    l->n++;
}

void hd_rq_list_remove(struct hd_rq_list *l, struct hd_http_rq *rq)
{
    if (rq->prev)
        rq->prev->next = rq->next;
    else
        l->head = rq->next;
    if (rq->next)
        rq->next->prev = rq->prev;
    else
        l->tail = rq->prev;
    rq->next = rq->prev = NULL;
    l->n--;
}

static char *copy_value(const char *v, size_t n)
{
    char *s;
    if (n > HD_RQ_HDR_COPY_MAX)
        return NULL;
    s = malloc(n + 1);
    if (!s)
        return NULL;
    memcpy(s, v, n);
    s[n] = 0;
    return s;
}

int hd_rq_header(struct hd_http_rq *rq, const char *name, size_t nlen, const char *value,
                 size_t vlen)
{
    if (nlen == 11 && memcmp(name, "retry-after", 11) == 0) {
        free(rq->retry_after);
        rq->retry_after = copy_value(value, vlen);
    } else if (nlen == 16 && memcmp(name, "accept-signature", 16) == 0) {
        free(rq->accept_signature);
        rq->accept_signature = copy_value(value, vlen);
    }
    return 0;
}

void hd_rq_body(struct hd_http_rq *rq, const uint8_t *data, size_t len)
{
    size_t cap = rq->max_body, n;

    /* Bytes beyond max_body are read and dropped: never buffered. */
    if (rq->body_len >= cap || len == 0)
        return;
    if (!rq->body) {
        rq->body = malloc(cap);
        if (!rq->body)
            return;
    }
    n = cap - rq->body_len < len ? cap - rq->body_len : len;
    memcpy(rq->body + rq->body_len, data, n);
    rq->body_len += n;
}

void hd_rq_reset_response(struct hd_http_rq *rq)
{
    rq->sent = 0;
    rq->status = 0;
    rq->error = 0;
    rq->body_len = 0;
    rq->body_off = 0;
    rq->hdr_bytes = 0;
    rq->stream_id = 0;
    free(rq->retry_after);
    free(rq->accept_signature);
    rq->retry_after = rq->accept_signature = NULL;
}

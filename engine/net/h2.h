/* HTTP/2 client session of one connection: nghttp2 through mem_recv / mem_send, so it never
 * sees a socket. The connection that owns it passes down callbacks: where frames go out
 * (send_room / send) and what happened (a stream closed, SETTINGS, GOAWAY). Streams carry
 * request records (rq.h) and fill in their responses.
 */
#ifndef HD_H2_H
#define HD_H2_H

#include <stddef.h>
#include <stdint.h>

struct hd_http_rq;
struct hd_h2;

struct hd_h2_callbacks {
    /* Free room in the connection's send buffer (plaintext bytes). */
    size_t (*send_room)(void *user_data);
    /* Appends n bytes (n <= send_room). Returns 0 or an error. */
    int (*send)(const uint8_t *data, size_t n, void *user_data);
    /* rq's stream closed. err 0: rq->status is the answer. refused: the server refused the
     * stream (REFUSED_STREAM, or above a GOAWAY's last stream), so it did not process it;
     * err is then HD_ERR_REFUSED_STREAM. */
    void (*on_stream_close)(struct hd_http_rq *rq, int err, int refused, void *user_data);
    /* The server's SETTINGS arrived: its stream limit may have changed. */
    void (*on_settings)(void *user_data);
    /* GOAWAY received: no new streams on this connection; the open ones may finish. */
    void (*on_goaway)(void *user_data);
};

/* Creates the client session and queues preface + SETTINGS. host: the origin, for log lines
 * (borrowed, must outlive the session); tls: the :scheme is https; max_header_bytes: cap on
 * a response's header block (a stream over it fails with HD_ERR_TOO_LARGE). Returns 0 or
 * -ENOMEM. */
int hd_h2_new(struct hd_h2 **out, const char *host, int tls, size_t max_header_bytes,
              const struct hd_h2_callbacks *cbs, void *user_data);
void hd_h2_free(struct hd_h2 *h2);
/* Submits rq as a new stream (rq->stream_id is set). Returns 0 or HD_ERR_INVALID /
 * HD_ERR_PROTOCOL / -ENOMEM. */
int hd_h2_submit(struct hd_h2 *h2, struct hd_http_rq *rq);
/* Feeds received plaintext. Returns 0 or HD_ERR_PROTOCOL / -ENOMEM. */
int hd_h2_recv(struct hd_h2 *h2, const uint8_t *data, size_t len);
/* Moves frames into the send buffer while a whole one fits. Returns 0 or an error. */
int hd_h2_pull(struct hd_h2 *h2);
/* Resets rq's stream (CANCEL) and forgets it: no callback will name rq again. */
void hd_h2_cancel(struct hd_h2 *h2, struct hd_http_rq *rq);
/* Peer's SETTINGS_MAX_CONCURRENT_STREAMS (100 until known). */
unsigned hd_h2_peer_max_streams(const struct hd_h2 *h2);
/* Queues GOAWAY(NO_ERROR): the session finishes once it has been sent. */
void hd_h2_terminate(struct hd_h2 *h2);
/* 0 when the session is finished (GOAWAY exchanged and no streams left). */
int hd_h2_alive(const struct hd_h2 *h2);

#endif

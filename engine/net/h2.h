/* HTTP/2 client session of one connection (nghttp2 through mem_recv / mem_send on the
 * connection's buffers). Used by conn.c; completes requests through http.c. */
#ifndef HD_H2_H
#define HD_H2_H

#include <stddef.h>
#include <stdint.h>

struct hd_http_conn;
struct hd_http_rq;
struct hd_h2;

/* Creates the nghttp2 client session on conn and queues preface + SETTINGS. */
int hd_h2_new(struct hd_http_conn *conn);
void hd_h2_free(struct hd_h2 *h2);
/* Submits rq as a new stream. Returns 0 or HD_ERR_PROTOCOL / -ENOMEM. */
int hd_h2_submit(struct hd_http_conn *conn, struct hd_http_rq *rq);
/* Feeds received plaintext. Returns 0 or HD_ERR_PROTOCOL. */
int hd_h2_recv(struct hd_http_conn *conn, const uint8_t *data, size_t len);
/* Moves frames into the send buffer while they fit. Returns 0 or an error. */
int hd_h2_pull(struct hd_http_conn *conn);
/* Resets rq's stream (CANCEL) and detaches it. */
void hd_h2_cancel(struct hd_http_conn *conn, struct hd_http_rq *rq);
/* Peer's SETTINGS_MAX_CONCURRENT_STREAMS (100 until known). */
unsigned hd_h2_peer_max_streams(const struct hd_h2 *h2);
/* Queues GOAWAY(NO_ERROR): the session finishes once it has been sent. */
void hd_h2_terminate(struct hd_h2 *h2);
/* 0 when the session is finished (GOAWAY exchanged and no streams left). */
int hd_h2_alive(const struct hd_h2 *h2);

#endif

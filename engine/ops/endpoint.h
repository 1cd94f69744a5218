/* A small HTTP server for the local endpoint: HTTP/1.1 on unix sockets and TCP addresses,
 * and h2c with prior knowledge on the same sockets (a connection that opens with the HTTP/2
 * preface goes to h2srv.h), on its own thread with its own io_uring loop (loop.h).
 *
 * It knows HTTP only. Whoever starts it passes an ops struct and user_data: on_request
 * answers each complete request, admit may refuse one as soon as its headers are in, before
 * a body is buffered or 100 Continue is sent. Both run on the server thread.
 *
 * HTTP/1.1: requests are capped (headers HD_ENDPOINT_HEADER_MAX, body max_body);
 * keep-alive and pipelining are supported, "Expect: 100-continue" is honoured, chunked
 * request bodies are refused with 411 (send Content-Length). Every refusal the server makes
 * itself (400, 411, 413, 431, 505) is {"error": "..."} and closes the connection. */
#ifndef HD_ENDPOINT_H
#define HD_ENDPOINT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define HD_ENDPOINT_MAX_LISTEN 4
#define HD_ENDPOINT_MAX_CONNS 256
#define HD_ENDPOINT_HEADER_MAX 16384

/* A request: every pointer borrowed until the handler returns; strings are not
 * NUL-terminated. */
struct hd_endpoint_req {
    const char *method, *target; /* target: path and query */
    size_t method_len, target_len;
    const char *auth; /* Authorization value, or NULL */
    size_t auth_len;
    const char *ctype; /* Content-Type value, or NULL */
    size_t ctype_len;
    const char *body; /* NULL in admit: the body is not read yet */
    size_t content_length;
    int keepalive, expect_continue, chunked, http10; /* HTTP/1.x only */
};

/* An answer, whatever protocol carries it. Set it with the hd_endpoint_respond* calls. */
struct hd_endpoint_resp {
    int status;
    const char *ctype;
    char *body; /* malloc'd; owned */
    size_t blen;
    char extra[512];  /* extra header lines, "Name: value\r\n" each */
    int close_after;  /* HTTP/1.1: close the connection after this answer */
};

/* Sets the answer; takes ownership of body (malloc'd, may be NULL). extra_headers: NULL or
 * header lines, each ending in "\r\n". */
void hd_endpoint_respond(struct hd_endpoint_resp *r, int status, const char *ctype, char *body,
                         size_t blen, const char *extra_headers);
/* Sets a JSON answer: o (released here) as one compact line. Without memory: 500, closing. */
void hd_endpoint_respond_json(struct hd_endpoint_resp *r, int status, json_t *o,
                              const char *extra_headers);
/* Sets {"error": msg}. */
void hd_endpoint_respond_error(struct hd_endpoint_resp *r, int status, const char *msg,
                               const char *extra_headers);

/* 1 when the request's path (its target without the query) is path. */
int hd_endpoint_path_is(const struct hd_endpoint_req *q, const char *path);
/* 1 when the request's method is m. */
int hd_endpoint_method_is(const struct hd_endpoint_req *q, const char *m);

/* Answers a complete request into resp (an answer left unset is a 500). */
typedef void (*hd_endpoint_request_cb)(struct hd_endpoint_resp *resp,
                                       const struct hd_endpoint_req *req, void *user_data);
/* A request's headers are in, its body is not: returns 0 to read on, or nonzero after
 * setting resp to refuse it (the connection closes after the answer). */
typedef int (*hd_endpoint_admit_cb)(struct hd_endpoint_resp *resp,
                                    const struct hd_endpoint_req *req, void *user_data);
/* Called on the server thread about once a second (now: the server loop's clock, ms). */
typedef void (*hd_endpoint_tick_cb)(uint64_t now_ms, void *user_data);

struct hd_endpoint_opts {
    const char *const *listen; /* "unix:PATH" or "ADDR:PORT" ("[::1]:PORT" for IPv6) */
    size_t nlisten;
    size_t max_body;          /* bigger bodies get 413 */
    unsigned idle_timeout_ms; /* close idle keep-alive connections */
    hd_endpoint_request_cb on_request;
    hd_endpoint_admit_cb admit; /* NULL: admit every request */
    hd_endpoint_tick_cb on_tick; /* NULL: none */
    void *user_data;
};

struct hd_endpoint;

/* Parses a listen address: "unix:PATH", "IPv4:PORT" or "[IPv6]:PORT" (PORT 0..65535) into
 * *ss and *len. Returns 0 or HD_ERR_INVALID. */
int hd_endpoint_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *len);

/* Binds every listen address (a stale unix socket file is replaced, any other file is not;
 * a unix socket is created under the process umask), then starts the server thread. On
 * return the sockets accept connections. Returns 0, HD_ERR_INVALID (bad address, no
 * on_request), -EEXIST (a unix path that is not a socket), -errno from socket, bind or
 * listen (e.g. -EADDRINUSE), or -ENOMEM. */
int hd_endpoint_start(struct hd_endpoint **out, const struct hd_endpoint_opts *o);

/* Stops the thread, closes every connection and listening socket, removes the unix socket
 * files, frees e. NULL ok. */
void hd_endpoint_stop(struct hd_endpoint *e);

/* The server loop's clock (monotonic ms), updated now. Server thread only. */
uint64_t hd_endpoint_now_ms(struct hd_endpoint *e);

#endif

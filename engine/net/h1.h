/* HTTP/1.1 client codec: request serialisation and a strict, incremental, bounded response
 * parser. Pure (no I/O, no allocation): the connection feeds it received bytes.
 *
 * Memory is bounded by construction: only one header line prefix is buffered
 * (HD_H1_LINE_MAX), bodies are handed out in place and never accumulated here.
 */
#ifndef HD_H1_H
#define HD_H1_H

#include <stddef.h>
#include <stdint.h>

#include "http_types.h"

#define HD_H1_LINE_MAX 2048 /* longer header lines are counted but only this prefix is kept */

/* Called for every response header of the final response (name lower-cased). A value longer
 * than the line buffer arrives truncated with truncated = 1. Return 0 or a negative code to
 * abort parsing with that code. */
typedef int (*hd_h1_header_cb)(const char *name, size_t nlen, const char *value, size_t vlen,
                               int truncated, void *user_data);
/* Called with body bytes (after chunk framing is removed). */
typedef void (*hd_h1_body_cb)(const uint8_t *data, size_t len, void *user_data);

enum hd_h1_state {
    HD_H1_STATUS = 0,
    HD_H1_HEADERS,
    HD_H1_BODY_LEN,
    HD_H1_CHUNK_SIZE,
    HD_H1_CHUNK_DATA,
    HD_H1_CHUNK_CRLF,
    HD_H1_TRAILERS,
    HD_H1_BODY_CLOSE,
    HD_H1_DONE
};

struct hd_h1_parser {
    enum hd_h1_state state;
    int status;
    int minor;              /* HTTP/1.<minor> */
    int keep_alive;         /* connection reusable after this response */
    int head;               /* response to HEAD: no body */
    int chunked;
    int have_len;
    int saw_te;
    uint64_t content_length;
    uint64_t remaining;     /* body bytes left (length or current chunk) */
    size_t header_bytes;    /* bytes of the header block (and trailers) so far */
    size_t max_header_bytes;
    size_t line_len;        /* bytes in line[] */
    size_t line_total;      /* bytes of the current line including those not kept */
    int line_cr;            /* previous byte was CR */
    hd_h1_header_cb on_header;
    hd_h1_body_cb on_body;
    void *user_data;
    char line[HD_H1_LINE_MAX];
};

/* Prepares p for one response. head: the request was HEAD. */
void hd_h1_parser_init(struct hd_h1_parser *p, size_t max_header_bytes, int head,
                       hd_h1_header_cb on_header, hd_h1_body_cb on_body, void *user_data);

/* Feeds len bytes. Returns 0 (need more), 1 (response complete; *consumed bytes were used and
 * anything after them is not part of this response), or HD_ERR_PROTOCOL / HD_ERR_TOO_LARGE
 * or a code returned by on_header. */
int hd_h1_parse(struct hd_h1_parser *p, const uint8_t *data, size_t len, size_t *consumed);

/* The peer closed the connection. Returns 1 when that completes the response (close-delimited
 * body), HD_ERR_RESET when it ends the response early. */
int hd_h1_parse_eof(struct hd_h1_parser *p);

/* Checks that req's method, path, authority and headers can be written safely in HTTP/1.1 and
 * HTTP/2: no CR, LF, NUL or other controls; header names are lower-case tokens and not one the
 * transport writes itself or a connection-specific one (host, content-length, connection,
 * keep-alive, transfer-encoding, upgrade, proxy-connection, te). Returns 0 or HD_ERR_INVALID. */
int hd_h1_check_request(const struct hd_http_req *req);

/* Size of the request head (request line, headers, blank line; not the body). */
size_t hd_h1_head_size(const struct hd_http_req *req);

/* Writes the request head into buf (cap >= hd_h1_head_size). Returns the bytes written or
 * HD_ERR_FULL. */
int hd_h1_write_head(const struct hd_http_req *req, uint8_t *buf, size_t cap);

#endif

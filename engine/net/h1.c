/* HTTP/1.1 client codec (see h1.h). Strict on framing: anything that could make two parties
 * disagree about where a response ends (bad Content-Length, obs-fold, bare CR, bad chunk
 * sizes) is HD_ERR_PROTOCOL, and the connection is not reused. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "h1.h"

void hd_h1_parser_init(struct hd_h1_parser *p, size_t max_header_bytes, int head,
                       hd_h1_header_cb on_header, hd_h1_body_cb on_body, void *user_data)
{
    /* line[] is left uninitialised on purpose: line_len says what is valid. */
    p->state = HD_H1_STATUS;
    p->status = 0;
    p->minor = 1;
    p->keep_alive = 1;
    p->head = head;
    p->chunked = 0;
    p->have_len = 0;
    p->saw_te = 0;
    p->content_length = 0;
    p->remaining = 0;
    p->header_bytes = 0;
    p->max_header_bytes = max_header_bytes;
    p->line_len = 0;
    p->line_total = 0;
    p->line_cr = 0;
    p->on_header = on_header;
    p->on_body = on_body;
    p->user_data = user_data;
}

static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int parse_status_line(struct hd_h1_parser *p, const char *s, size_t n)
{
    int code;

    /* HTTP-version SP 3DIGIT [SP reason]; some servers omit the SP before an empty reason. */
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
        return HD_ERR_PROTOCOL;
    if (s[9] < '1' || s[9] > '5' || s[10] < '0' || s[10] > '9' || s[11] < '0' || s[11] > '9')
        return HD_ERR_PROTOCOL;
    if (n > 12 && s[12] != ' ')
        return HD_ERR_PROTOCOL;
    code = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (code == 101) /* we never ask for an upgrade */
        return HD_ERR_PROTOCOL;
    p->minor = s[7] - '0';
    p->status = code;
    if (p->minor == 0)
        p->keep_alive = 0;
    return 0;
}

static int parse_content_length(struct hd_h1_parser *p, const char *v, size_t n)
{
    uint64_t x = 0;

    if (n == 0 || n > 18)
        return HD_ERR_PROTOCOL;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return HD_ERR_PROTOCOL;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    if (p->have_len && p->content_length != x)
        return HD_ERR_PROTOCOL;
    p->have_len = 1;
    p->content_length = x;
    return 0;
}

/* Returns the last comma-separated token of v (trimmed) through *tok / *tlen. */
static void last_token(const char *v, size_t n, const char **tok, size_t *tlen)
{
    size_t end = n, start;

    while (end > 0 && (v[end - 1] == ' ' || v[end - 1] == '\t' || v[end - 1] == ','))
        end--;
    start = end;
    while (start > 0 && v[start - 1] != ',')
        start--;
    while (start < end && (v[start] == ' ' || v[start] == '\t'))
        start++;
    *tok = v + start;
    *tlen = end - start;
}

static void parse_connection(struct hd_h1_parser *p, const char *v, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t s, e;
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        s = i;
        while (i < n && v[i] != ',')
            i++;
        e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == 5 && strncasecmp(v + s, "close", 5) == 0)
            p->keep_alive = 0;
        else if (e - s == 10 && strncasecmp(v + s, "keep-alive", 10) == 0 && p->minor == 0)
            p->keep_alive = 1;
    }
}

static int parse_header_line(struct hd_h1_parser *p, char *s, size_t n, int truncated)
{
    size_t i = 0, vs, ve;
    int rv;

    if (s[0] == ' ' || s[0] == '\t') /* obs-fold: rejected (RFC 9112 5.2) */
        return HD_ERR_PROTOCOL;
    while (i < n && s[i] != ':') {
        if (!is_tchar((unsigned char)s[i]))
            return HD_ERR_PROTOCOL;
        if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (char)(s[i] - 'A' + 'a');
        i++;
    }
    if (i == 0 || i == n)
        return HD_ERR_PROTOCOL;
    vs = i + 1;
    while (vs < n && (s[vs] == ' ' || s[vs] == '\t'))
        vs++;
    ve = n;
    while (ve > vs && (s[ve - 1] == ' ' || s[ve - 1] == '\t'))
        ve--;
    if (p->status < 200) /* headers of an interim response are not passed on */
        return 0;
    if (i == 14 && memcmp(s, "content-length", 14) == 0) {
        if (truncated)
            return HD_ERR_PROTOCOL;
        return parse_content_length(p, s + vs, ve - vs);
    }
    if (i == 17 && memcmp(s, "transfer-encoding", 17) == 0) {
        const char *tok;
        size_t tlen;
        if (truncated)
            return HD_ERR_PROTOCOL;
        last_token(s + vs, ve - vs, &tok, &tlen);
        p->saw_te = 1;
        p->chunked = tlen == 7 && strncasecmp(tok, "chunked", 7) == 0;
        return 0;
    }
    if (i == 10 && memcmp(s, "connection", 10) == 0)
        parse_connection(p, s + vs, ve - vs);
    if (p->on_header) {
        rv = p->on_header(s, i, s + vs, ve - vs, truncated, p->user_data);
        if (rv < 0)
            return rv;
    }
    return 0;
}

static int end_of_headers(struct hd_h1_parser *p)
{
    if (p->status < 200) { /* interim (100 Continue, 103): the real response follows */
        p->state = HD_H1_STATUS;
        return 0;
    }
    if (p->head || p->status == 204 || p->status == 304) {
        p->state = HD_H1_DONE;
        return 0;
    }
    if (p->saw_te) {
        if (p->have_len) /* RFC 9112 6.3: TE overrides CL, but the connection is suspect */
            p->keep_alive = 0;
        if (p->chunked) {
            p->state = HD_H1_CHUNK_SIZE;
            return 0;
        }
        p->keep_alive = 0;
        p->state = HD_H1_BODY_CLOSE;
        return 0;
    }
    if (p->have_len) {
        p->remaining = p->content_length;
        p->state = p->remaining ? HD_H1_BODY_LEN : HD_H1_DONE;
        return 0;
    }
    p->keep_alive = 0;
    p->state = HD_H1_BODY_CLOSE;
    return 0;
}

static int parse_chunk_size(struct hd_h1_parser *p, const char *s, size_t n)
{
    uint64_t x = 0;
    size_t i = 0;
    int d;

    while (i < n && (d = hexval((unsigned char)s[i])) >= 0) {
        if (i >= 15)
            return HD_ERR_PROTOCOL;
        x = x * 16 + (uint64_t)d;
        i++;
    }
    if (i == 0)
        return HD_ERR_PROTOCOL;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i < n && s[i] != ';') /* chunk extensions are ignored, anything else is not */
        return HD_ERR_PROTOCOL;
    p->remaining = x;
    p->state = x ? HD_H1_CHUNK_DATA : HD_H1_TRAILERS;
    return 0;
}

static int on_line(struct hd_h1_parser *p)
{
    size_t n = p->line_len;
    int truncated = p->line_total > n;

    switch (p->state) {
    case HD_H1_STATUS:
        if (truncated)
            return HD_ERR_PROTOCOL;
        return parse_status_line(p, p->line, n);
    case HD_H1_HEADERS:
        if (p->line_total == 0)
            return end_of_headers(p);
        return parse_header_line(p, p->line, n, truncated);
    case HD_H1_CHUNK_SIZE:
        if (truncated)
            return HD_ERR_PROTOCOL;
        return parse_chunk_size(p, p->line, n);
    case HD_H1_CHUNK_CRLF:
        if (p->line_total != 0)
            return HD_ERR_PROTOCOL;
        p->state = HD_H1_CHUNK_SIZE;
        return 0;
    case HD_H1_TRAILERS:
        if (p->line_total == 0) {
            p->state = HD_H1_DONE;
            return 0;
        }
        if (p->line[0] == ' ' || p->line[0] == '\t' || memchr(p->line, ':', n) == NULL)
            return HD_ERR_PROTOCOL;
        return 0;
    default:
        return HD_ERR_PROTOCOL;
    }
}

/* Consumes one byte of a line-oriented state. Returns 0 or an error. */
static int line_byte(struct hd_h1_parser *p, unsigned char c)
{
    int rv;

    if (p->state == HD_H1_STATUS || p->state == HD_H1_HEADERS || p->state == HD_H1_TRAILERS) {
        if (++p->header_bytes > p->max_header_bytes)
            return HD_ERR_TOO_LARGE;
    }
    if (c == '\n') {
        p->line_cr = 0;
        rv = on_line(p);
        if (rv < 0)
            return rv;
        if (p->state == HD_H1_STATUS && p->status >= 100 && p->status < 200 &&
            p->line_total == 0) {
            /* blank line ended an interim response: stay in STATUS */
        } else if (p->state == HD_H1_STATUS && p->status != 0 && p->line_total != 0) {
            p->state = HD_H1_HEADERS; /* status line parsed */
        }
        p->line_len = 0;
        p->line_total = 0;
        return 0;
    }
    if (p->line_cr) /* CR not followed by LF */
        return HD_ERR_PROTOCOL;
    if (c == '\r') {
        p->line_cr = 1;
        return 0;
    }
    if ((c < 0x20 && c != '\t') || c == 0x7f)
        return HD_ERR_PROTOCOL;
    if (p->state == HD_H1_CHUNK_SIZE || p->state == HD_H1_CHUNK_CRLF) {
        if (p->line_total >= 256) /* bounds chunk-ext, which nobody needs */
            return HD_ERR_PROTOCOL;
    }
    if (p->line_len < sizeof(p->line))
        p->line[p->line_len++] = (char)c;
    p->line_total++;
    return 0;
}

int hd_h1_parse(struct hd_h1_parser *p, const uint8_t *data, size_t len, size_t *consumed)
{
    size_t i = 0;
    int rv;

    while (i < len && p->state != HD_H1_DONE) {
        size_t take;
        switch (p->state) {
        case HD_H1_BODY_LEN:
        case HD_H1_CHUNK_DATA:
            take = len - i;
            if (take > p->remaining)
                take = (size_t)p->remaining;
            if (p->on_body)
                p->on_body(data + i, take, p->user_data);
            i += take;
            p->remaining -= take;
            if (p->remaining == 0)
                p->state = p->state == HD_H1_BODY_LEN ? HD_H1_DONE : HD_H1_CHUNK_CRLF;
            break;
        case HD_H1_BODY_CLOSE:
            if (p->on_body)
                p->on_body(data + i, len - i, p->user_data);
            i = len;
            break;
        default:
            rv = line_byte(p, data[i]);
            if (rv < 0)
                return rv;
            i++;
            break;
        }
    }
    *consumed = i;
    return p->state == HD_H1_DONE ? 1 : 0;
}

int hd_h1_parse_eof(struct hd_h1_parser *p)
{
    if (p->state == HD_H1_BODY_CLOSE) {
        p->state = HD_H1_DONE;
        return 1;
    }
    return p->state == HD_H1_DONE ? 1 : HD_ERR_RESET;
}

/* 1 when s[0..n) has no control character but HTAB, and no DEL. Eight bytes at a time (a
 * word with a byte below 0x20 or equal to 0x7f is then checked bytewise, for the tab): every
 * header value of every request passes here, the signature alone hundreds of bytes. */
static int clean_value(const char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, s + i, 8);
        y = x ^ (ones * 0x7f);
        if ((((x - ones * 0x20) & ~x) | ((y - ones) & ~y)) & highs)
            break;
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

static int safe_field(const char *s, int token)
{
    if (!s)
        return 0;
    if (!token)
        return clean_value(s, strlen(s));
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return 0;
    return 1;
}

/* Headers the transport writes itself, or that are connection-specific (forbidden in h2). */
static int is_reserved(const char *n)
{
    static const char *const names[] = {"host", "content-length", "connection", "keep-alive",
                                        "transfer-encoding", "upgrade", "proxy-connection", "te"};
    switch (n[0]) { /* their first letters: most names need no strcmp (every request) */
    case 'c': case 'h': case 'k': case 'p': case 't': case 'u':
        break;
    default:
        return 0;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(n, names[i]) == 0)
            return 1;
    return 0;
}

int hd_h1_check_request(const struct hd_http_req *req)
{
    if (!safe_field(req->method, 1) || !safe_field(req->authority, 0) || !req->authority[0])
        return HD_ERR_INVALID;
    if (!req->path || req->path[0] != '/' || strpbrk(req->path, " \t") != NULL ||
        !safe_field(req->path, 0))
        return HD_ERR_INVALID;
    for (size_t i = 0; i < req->nheaders; i++) {
        const char *n = req->headers[i].name;
        if (!safe_field(n, 1) || !safe_field(req->headers[i].value, 0))
            return HD_ERR_INVALID;
        for (const char *s = n; *s; s++)
            if (*s >= 'A' && *s <= 'Z') /* h2 field names must be lower-case */
                return HD_ERR_INVALID;
        if (is_reserved(n))
            return HD_ERR_INVALID;
    }
    return 0;
}

size_t hd_h1_head_size(const struct hd_http_req *req)
{
    /* "M P HTTP/1.1\r\n" "Host: A\r\n" "Content-Length: N\r\n" "\r\n" */
    size_t n = strlen(req->method) + 1 + strlen(req->path) + 11 + 6 + strlen(req->authority) + 2;
    n += 16 + 20 + 2 + 2;
    for (size_t i = 0; i < req->nheaders; i++)
        n += strlen(req->headers[i].name) + 2 + strlen(req->headers[i].value) + 2;
    return n;
}

static uint8_t *put(uint8_t *w, const char *s)
{
    size_t n = strlen(s);
    memcpy(w, s, n);
    return w + n;
}

int hd_h1_write_head(const struct hd_http_req *req, uint8_t *buf, size_t cap)
{
    uint8_t *w = buf;
    char num[24];
    int has_body = req->body_len > 0 || strcmp(req->method, "GET") != 0;

    if (cap < hd_h1_head_size(req))
        return HD_ERR_FULL;
    w = put(w, req->method);
    *w++ = ' ';
    w = put(w, req->path);
    w = put(w, " HTTP/1.1\r\nHost: ");
    w = put(w, req->authority);
    w = put(w, "\r\n");
    for (size_t i = 0; i < req->nheaders; i++) {
        w = put(w, req->headers[i].name);
        w = put(w, ": ");
        w = put(w, req->headers[i].value);
        w = put(w, "\r\n");
    }
    if (has_body) {
        snprintf(num, sizeof(num), "%zu", req->body_len);
        w = put(w, "Content-Length: ");
        w = put(w, num);
        w = put(w, "\r\n");
    }
    w = put(w, "\r\n");
    return (int)(w - buf);
}

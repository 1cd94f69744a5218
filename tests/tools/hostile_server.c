/* hostile_server: one scripted misbehaving HTTPS server for Herald's hardening tests.
 * One thread per connection, blocking I/O (a test tool, not engine code). TLS through
 * wolfSSL on the socket; HTTP/1.1 written by hand, and HTTP/2 frames written by hand (with a
 * minimal HPACK encoder) where nghttp2 would refuse to produce them.
 *
 *   hostile_server --mode NAME [--port-file F] [--stats-file F] --tls-cert F --tls-key F
 *                  [--location URL] [--dump FILE] [--max-seconds N]
 *   hostile_server --list          prints every mode, one per line
 *
 * The stats file is rewritten as "connections=N requests=M redirected=R" after each change
 * (redirected counts requests whose path contains "redirected": a followed redirect).
 * --dump appends every HTTP/1.1 request head received to FILE (the secrets test reads the
 * Signature headers Herald sent from it).
 * Modes starting with "h2-" select ALPN h2 and speak raw frames; every other mode leaves ALPN
 * unset (the client falls back to HTTP/1.1). See the table in modes[] for what each does.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct mode {
    const char *name;
    const char *what;
};

static const struct mode modes[] = {
    {"h1-ok", "control: 202 Accepted, keep-alive"},
    {"h1-403", "control: 403 Forbidden (final)"},
    {"h1-big-headers", "202 with 2,000 headers (about 120 KB of header block)"},
    {"h1-big-value", "202 with one 200 KB header value"},
    {"h1-endless-body", "200 with a close-delimited body that never ends (full speed)"},
    {"h1-endless-chunked", "200 with a chunked body that never ends (full speed)"},
    {"h1-trickle", "a complete 202 response sent one byte per second"},
    {"h1-trickle-body", "202 head at once, then a 100-byte body one byte per second"},
    {"h1-cl-long-close", "Content-Length 1000, 10 bytes sent, then close"},
    {"h1-cl-long-hang", "Content-Length 1000, 10 bytes sent, then silence"},
    {"h1-cl-short", "Content-Length 2 then junk after the body on a keep-alive connection"},
    {"h1-cl-double", "two different Content-Length headers"},
    {"h1-bad-status", "status line 'HTTP/1.1 2x2 Accepted'"},
    {"h1-bad-version", "status line 'HTPT/1.1 202 Accepted'"},
    {"h1-bad-chunk", "chunked body with chunk size 'zz'"},
    {"h1-chunk-overflow", "chunked body with a chunk size of 2^84"},
    {"h1-header-nocolon", "a header line without a colon"},
    {"h1-http09", "HTTP/0.9-style answer: bare bytes, no status line, then close"},
    {"h1-1xx-flood", "endless '100 Continue' interim responses"},
    {"h1-redirect-302", "302 Found to --location"},
    {"h1-redirect-307", "307 Temporary Redirect to --location"},
    {"h1-redirect-308", "308 Permanent Redirect to --location"},
    {"reset-accept", "TCP reset right after accept (before TLS)"},
    {"reset-tls", "TCP reset right after the TLS handshake"},
    {"reset-request", "TCP reset after reading the whole request"},
    {"reset-mid-response", "TCP reset after the head and 10 bytes of a 100-byte body"},
    {"tls-alert", "a fatal handshake_failure alert in answer to the ClientHello"},
    {"tls-garbage", "plain-text HTTP in answer to the ClientHello"},
    {"tls-silent", "reads the ClientHello and never answers"},
    {"h2-ok", "control: HTTP/2, 202"},
    {"h2-bad-frame", "SETTINGS frame of length 5 (FRAME_SIZE_ERROR)"},
    {"h2-data-stream0", "DATA frame on stream 0 (PROTOCOL_ERROR)"},
    {"h2-bad-hpack", "HEADERS with an invalid HPACK index"},
    {"h2-no-status", "response HEADERS without :status"},
    {"h2-push", "PUSH_PROMISE although the client disabled push"},
    {"h2-window-overflow", "WINDOW_UPDATE that overflows the connection window"},
    {"h2-flow-violation", "2 MiB of DATA at once, never waiting for WINDOW_UPDATE, no END_STREAM"},
    {"h2-settings-flood", "endless SETTINGS frames, never reading the ACKs"},
    {"h2-ping-flood", "endless PING frames, never reading the ACKs"},
    {"h2-rst-storm", "RST_STREAM for the request, then thousands more for closed streams"},
    {"h2-goaway-mid", "GOAWAY in the middle of a response (head and part of the body sent)"},
    {"h2-goaway-zero", "GOAWAY last_stream_id 0 in answer to every request"},
    {"h2-continuation-flood", "HEADERS without END_HEADERS, then endless CONTINUATION frames"},
    {"h2-big-header", "one 100 KB header value over CONTINUATION frames"},
    {"h2-1xx-flood", "endless :status 100 HEADERS frames"},
    {"h2-trickle", "202 head, then a 100-byte body one DATA byte per second"},
    {"h2-zero-streams", "SETTINGS_MAX_CONCURRENT_STREAMS 0: no stream may be opened"},
    {NULL, NULL}};

static const char *mode = "h1-ok";
static const char *stats_file;
static const char *dump_file;
static const char *location = "https://example.invalid/redirected";
static WOLFSSL_CTX *tls_ctx;
static atomic_long n_conns, n_reqs, n_redirected;
static pthread_mutex_t stats_mu = PTHREAD_MUTEX_INITIALIZER;

struct client {
    int fd;
    WOLFSSL *ssl;
};

static int is(const char *m)
{
    return strcmp(mode, m) == 0;
}

static void write_stats(void)
{
    char tmp[4096];
    FILE *f;

    if (!stats_file)
        return;
    pthread_mutex_lock(&stats_mu);
    snprintf(tmp, sizeof(tmp), "%s.tmp", stats_file);
    f = fopen(tmp, "w");
    if (f) {
        fprintf(f, "connections=%ld requests=%ld redirected=%ld\n", atomic_load(&n_conns),
                atomic_load(&n_reqs), atomic_load(&n_redirected));
        fclose(f);
        rename(tmp, stats_file);
    }
    pthread_mutex_unlock(&stats_mu);
}

static ssize_t c_read(struct client *c, void *buf, size_t n)
{
    if (c->ssl) {
        int r = wolfSSL_read(c->ssl, buf, (int)n);
        return r > 0 ? r : -1;
    }
    ssize_t r = recv(c->fd, buf, n, 0);
    return r > 0 ? r : -1;
}

static int c_read_full(struct client *c, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = c_read(c, p, n);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int c_write(struct client *c, const void *data, size_t n)
{
    const uint8_t *buf = data;
    while (n > 0) {
        ssize_t w;
        if (c->ssl)
            w = wolfSSL_write(c->ssl, buf, (int)n);
        else
            w = send(c->fd, buf, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static int c_puts(struct client *c, const char *s)
{
    return c_write(c, s, strlen(s));
}

/* Closes with a TCP RST (SO_LINGER 0) instead of a FIN. */
static void reset_fd(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/* Writes a string one byte per second (stops when the peer goes away). */
static void trickle(struct client *c, const char *s)
{
    for (; *s; s++) {
        if (c_write(c, s, 1) != 0)
            return;
        sleep(1);
    }
}

static void count_request(const char *head, size_t len)
{
    atomic_fetch_add(&n_reqs, 1);
    if (dump_file && len > 0) {
        FILE *f;
        pthread_mutex_lock(&stats_mu);
        f = fopen(dump_file, "a");
        if (f) {
            fwrite(head, 1, len, f);
            fclose(f);
        }
        pthread_mutex_unlock(&stats_mu);
    }
    if (memmem(head, len, "redirected", 10))
        atomic_fetch_add(&n_redirected, 1);
    write_stats();
}

/* ---- HTTP/1.1 ---- */

/* Reads one request (head and Content-Length body). Returns 0, or -1 when the peer left. */
static int h1_read_request(struct client *c, char *buf, size_t cap)
{
    size_t len = 0, hlen, blen = 0;
    char *end, *cl;

    while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
        ssize_t r;
        if (len == cap)
            return -1;
        r = c_read(c, buf + len, cap - len);
        if (r <= 0)
            return -1;
        len += (size_t)r;
    }
    hlen = (size_t)(end - buf) + 4;
    cl = memmem(buf, hlen, "content-length:", 15);
    if (!cl)
        cl = memmem(buf, hlen, "Content-Length:", 15);
    if (cl)
        blen = strtoul(cl + 15, NULL, 10);
    if (blen > cap - hlen)
        return -1;
    if (len < hlen + blen && c_read_full(c, buf + len, hlen + blen - len) != 0)
        return -1;
    count_request(buf, hlen);
    return 0;
}

static void endless(struct client *c, const char *chunk_prefix)
{
    static const char fill[16384] = {0};
    time_t end = time(NULL) + 120;

    while (time(NULL) < end) {
        if (chunk_prefix && c_puts(c, chunk_prefix) != 0)
            return;
        if (c_write(c, fill, sizeof(fill)) != 0)
            return;
        if (chunk_prefix && c_puts(c, "\r\n") != 0)
            return;
    }
}

/* Serves HTTP/1.1 requests on c until the mode ends the connection. */
static void serve_h1(struct client *c)
{
    static const size_t cap = 1 << 20;
    char *buf = malloc(cap), line[512];

    if (!buf)
        return;
    for (;;) {
        if (h1_read_request(c, buf, cap) != 0)
            break;
        if (is("reset-request")) {
            reset_fd(c->fd);
            break;
        }
        if (is("h1-ok")) {
            if (c_puts(c, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n") != 0)
                break;
            continue;
        }
        if (is("h1-403")) {
            c_puts(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden");
            continue;
        }
        if (is("h1-big-headers")) {
            c_puts(c, "HTTP/1.1 202 Accepted\r\n");
            for (int i = 0; i < 2000; i++) {
                snprintf(line, sizeof(line), "X-Filler-%04d: %050d\r\n", i, i);
                if (c_puts(c, line) != 0)
                    break;
            }
            c_puts(c, "Content-Length: 0\r\n\r\n");
            continue;
        }
        if (is("h1-big-value")) {
            c_puts(c, "HTTP/1.1 202 Accepted\r\nX-Big: ");
            for (int i = 0; i < 200 * 1024 / 64; i++)
                if (c_puts(c, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") != 0)
                    break;
            c_puts(c, "\r\nContent-Length: 0\r\n\r\n");
            continue;
        }
        if (is("h1-endless-body")) {
            c_puts(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
            endless(c, NULL);
            break;
        }
        if (is("h1-endless-chunked")) {
            c_puts(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            endless(c, "4000\r\n");
            break;
        }
        if (is("h1-trickle")) {
            trickle(c, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
            continue;
        }
        if (is("h1-trickle-body")) {
            c_puts(c, "HTTP/1.1 202 Accepted\r\nContent-Length: 100\r\n\r\n");
            trickle(c, "0123456789012345678901234567890123456789012345678901234567890123456789"
                       "012345678901234567890123456789");
            continue;
        }
        if (is("h1-cl-long-close") || is("h1-cl-long-hang")) {
            c_puts(c, "HTTP/1.1 202 Accepted\r\nContent-Length: 1000\r\n\r\n0123456789");
            if (is("h1-cl-long-hang"))
                sleep(120);
            break;
        }
        if (is("h1-cl-short")) {
            c_puts(c, "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nokJUNK JUNK\r\n\r\n");
            continue;
        }
        if (is("h1-cl-double")) {
            c_puts(c, "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n"
                      "okxyz");
            continue;
        }
        if (is("h1-bad-status")) {
            c_puts(c, "HTTP/1.1 2x2 Accepted\r\nContent-Length: 0\r\n\r\n");
            continue;
        }
        if (is("h1-bad-version")) {
            c_puts(c, "HTPT/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
            continue;
        }
        if (is("h1-bad-chunk")) {
            c_puts(c, "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n");
            continue;
        }
        if (is("h1-chunk-overflow")) {
            c_puts(c, "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "1000000000000000000000\r\nab\r\n0\r\n\r\n");
            continue;
        }
        if (is("h1-header-nocolon")) {
            c_puts(c, "HTTP/1.1 202 Accepted\r\nThis line has no colon\r\nContent-Length: 0\r\n\r\n");
            continue;
        }
        if (is("h1-http09")) {
            c_puts(c, "<html>hello, this is not HTTP/1.1</html>\n");
            break;
        }
        if (is("h1-1xx-flood")) {
            time_t end = time(NULL) + 120;
            while (time(NULL) < end)
                if (c_puts(c, "HTTP/1.1 100 Continue\r\n\r\n") != 0)
                    break;
            break;
        }
        if (!strncmp(mode, "h1-redirect-", 12)) {
            const char *st = mode + 12;
            snprintf(line, sizeof(line),
                     "HTTP/1.1 %s Moved\r\nLocation: %s\r\nContent-Length: 5\r\n\r\nmoved", st,
                     location);
            c_puts(c, line);
            continue;
        }
        if (is("reset-mid-response")) {
            c_puts(c, "HTTP/1.1 202 Accepted\r\nContent-Length: 100\r\n\r\n0123456789");
            usleep(100 * 1000);
            reset_fd(c->fd);
            break;
        }
        break;
    }
    free(buf);
}

/* ---- HTTP/2, by hand ---- */

enum { F_DATA = 0, F_HEADERS = 1, F_RST = 3, F_SETTINGS = 4, F_PUSH = 5, F_PING = 6,
       F_GOAWAY = 7, F_WINUP = 8, F_CONT = 9 };
enum { FL_END_STREAM = 1, FL_ACK = 1, FL_END_HEADERS = 4 };

static int frame(struct client *c, int type, int flags, uint32_t sid, const void *p, size_t n)
{
    uint8_t h[9] = {(uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n, (uint8_t)type,
                    (uint8_t)flags, (uint8_t)(sid >> 24 & 0x7f), (uint8_t)(sid >> 16),
                    (uint8_t)(sid >> 8), (uint8_t)sid};
    if (c_write(c, h, 9) != 0)
        return -1;
    return n ? c_write(c, p, n) : 0;
}

/* HPACK integer with an N-bit prefix into out; returns bytes written. */
static size_t hp_int(uint8_t *out, uint8_t first, int nbits, size_t v)
{
    size_t max = ((size_t)1 << nbits) - 1, n = 0;
    if (v < max) {
        out[n++] = (uint8_t)(first | v);
        return n;
    }
    out[n++] = (uint8_t)(first | max);
    v -= max;
    while (v >= 128) {
        out[n++] = (uint8_t)(v % 128 + 128);
        v /= 128;
    }
    out[n++] = (uint8_t)v;
    return n;
}

/* ":status" (literal without indexing, indexed name 8) */
static size_t hp_status(uint8_t *out, int status)
{
    size_t n = hp_int(out, 0x00, 4, 8);
    n += hp_int(out + n, 0x00, 7, 3);
    n += (size_t)sprintf((char *)out + n, "%03d", status);
    return n;
}

/* A literal header, new name, without indexing. out needs 10 + name + value bytes. */
static size_t hp_hdr(uint8_t *out, const char *name, const char *value, size_t vlen)
{
    size_t n = 0, nl = strlen(name);
    out[n++] = 0x00;
    n += hp_int(out + n, 0x00, 7, nl);
    memcpy(out + n, name, nl);
    n += nl;
    n += hp_int(out + n, 0x00, 7, vlen);
    memcpy(out + n, value, vlen);
    return n + vlen;
}

/* Reads frames until a request stream has ended; answers SETTINGS. Returns its stream id, or
 * 0 when the peer left. */
static uint32_t h2_read_request(struct client *c, uint8_t *buf, size_t cap)
{
    for (;;) {
        uint8_t h[9];
        size_t n;
        uint32_t sid;
        if (c_read_full(c, h, 9) != 0)
            return 0;
        n = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
        sid = ((uint32_t)h[5] & 0x7f) << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8];
        if (n > cap || c_read_full(c, buf, n) != 0)
            return 0;
        if (h[3] == F_SETTINGS && !(h[4] & FL_ACK))
            frame(c, F_SETTINGS, FL_ACK, 0, NULL, 0);
        if ((h[3] == F_HEADERS || h[3] == F_DATA) && (h[4] & FL_END_STREAM) && sid) {
            count_request("", 0);
            return sid;
        }
    }
}

static void flood(struct client *c, int type, int flags, uint32_t sid, const void *p, size_t n)
{
    time_t end = time(NULL) + 60;
    while (time(NULL) < end)
        for (int i = 0; i < 1000; i++)
            if (frame(c, type, flags, sid, p, n) != 0)
                return;
}

static void serve_h2(struct client *c)
{
    static const size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap), hb[512], pre[24];
    size_t n;
    uint32_t sid;

    if (!buf)
        return;
    if (c_read_full(c, pre, 24) != 0 || memcmp(pre, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24))
        goto out;
    if (is("h2-bad-frame")) {
        frame(c, F_SETTINGS, 0, 0, "\0\0\0\0\0", 5);
        goto out_wait;
    }
    if (is("h2-zero-streams"))
        frame(c, F_SETTINGS, 0, 0, "\0\x03\0\0\0\0", 6);
    else
        frame(c, F_SETTINGS, 0, 0, NULL, 0);
    while ((sid = h2_read_request(c, buf, cap)) != 0) {
        if (is("h2-ok")) {
            n = hp_status(hb, 202);
            frame(c, F_HEADERS, FL_END_HEADERS | FL_END_STREAM, sid, hb, n);
        } else if (is("h2-data-stream0")) {
            frame(c, F_DATA, 0, 0, "x", 1);
        } else if (is("h2-bad-hpack")) {
            frame(c, F_HEADERS, FL_END_HEADERS | FL_END_STREAM, sid, "\x80\xff\xff\x7f", 4);
        } else if (is("h2-no-status")) {
            n = hp_hdr(hb, "x-no-status", "1", 1);
            frame(c, F_HEADERS, FL_END_HEADERS | FL_END_STREAM, sid, hb, n);
        } else if (is("h2-push")) {
            uint8_t p[64] = {0, 0, 0, 2}; /* promised stream 2 */
            n = 4 + hp_status(p + 4, 200);
            frame(c, F_PUSH, FL_END_HEADERS, sid, p, n);
        } else if (is("h2-window-overflow")) {
            frame(c, F_WINUP, 0, 0, "\x7f\xff\xff\xff", 4);
            frame(c, F_WINUP, 0, 0, "\x7f\xff\xff\xff", 4);
        } else if (is("h2-flow-violation")) {
            static const uint8_t fill[16384];
            n = hp_status(hb, 200);
            frame(c, F_HEADERS, FL_END_HEADERS, sid, hb, n);
            /* the connection window is 65,535 until the client updates it: send 2 MiB */
            for (int i = 0; i < 128; i++)
                if (frame(c, F_DATA, 0, sid, fill, sizeof(fill)) != 0)
                    break;
        } else if (is("h2-settings-flood")) {
            flood(c, F_SETTINGS, 0, 0, "\0\x03\0\0\0\x64", 6);
        } else if (is("h2-ping-flood")) {
            flood(c, F_PING, 0, 0, "12345678", 8);
        } else if (is("h2-rst-storm")) {
            frame(c, F_RST, 0, sid, "\0\0\0\x02", 4);
            for (int i = 0; i < 5000; i++)
                if (frame(c, F_RST, 0, sid, "\0\0\0\x02", 4) != 0)
                    break;
        } else if (is("h2-goaway-mid")) {
            uint8_t g[8] = {(uint8_t)(sid >> 24), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8),
                            (uint8_t)sid, 0, 0, 0, 2};
            n = hp_status(hb, 202);
            n += hp_hdr(hb + n, "content-length", "100", 3);
            frame(c, F_HEADERS, FL_END_HEADERS, sid, hb, n);
            frame(c, F_DATA, 0, sid, "0123456789", 10);
            frame(c, F_GOAWAY, 0, 0, g, 8);
            usleep(100 * 1000);
            goto out;
        } else if (is("h2-goaway-zero")) {
            frame(c, F_GOAWAY, 0, 0, "\0\0\0\0\0\0\0\0", 8);
            usleep(100 * 1000);
            goto out;
        } else if (is("h2-continuation-flood")) {
            uint8_t v[120];
            memset(v, 'c', sizeof(v));
            n = hp_status(hb, 202);
            frame(c, F_HEADERS, 0, sid, hb, n);
            n = hp_hdr(hb, "x-flood", (const char *)v, sizeof(v));
            flood(c, F_CONT, 0, sid, hb, n);
            goto out;
        } else if (is("h2-big-header")) {
            size_t len = 100 * 1024, off = 0, fl;
            uint8_t *blk = malloc(len + 64);
            if (!blk)
                goto out;
            n = hp_status(blk, 202);
            blk[n++] = 0x00;
            n += hp_int(blk + n, 0, 7, 5);
            memcpy(blk + n, "x-big", 5);
            n += 5;
            n += hp_int(blk + n, 0, 7, len);
            memset(blk + n, 'b', len);
            n += len;
            while (off < n) {
                size_t k = n - off > 16384 ? 16384 : n - off;
                fl = off + k == n ? FL_END_HEADERS | FL_END_STREAM : 0;
                if (frame(c, off ? F_CONT : F_HEADERS, (int)fl, sid, blk + off, k) != 0)
                    break;
                off += k;
            }
            free(blk);
        } else if (is("h2-1xx-flood")) {
            n = hp_status(hb, 100);
            flood(c, F_HEADERS, FL_END_HEADERS, sid, hb, n);
            goto out;
        } else if (is("h2-trickle")) {
            n = hp_status(hb, 202);
            n += hp_hdr(hb + n, "content-length", "100", 3);
            frame(c, F_HEADERS, FL_END_HEADERS, sid, hb, n);
            for (int i = 0; i < 100; i++) {
                if (frame(c, F_DATA, i == 99 ? FL_END_STREAM : 0, sid, "x", 1) != 0)
                    goto out;
                sleep(1);
            }
        }
    }
    goto out;
out_wait:
    /* keep the connection until the peer closes it */
    while (c_read(c, buf, cap) > 0)
        ;
out:
    free(buf);
}

static void *serve(void *arg)
{
    struct client *c = arg;
    uint8_t hello[4096];

    if (is("reset-accept")) {
        reset_fd(c->fd);
        goto out;
    }
    if (is("tls-alert") || is("tls-garbage") || is("tls-silent")) {
        /* fatal alert, TLS 1.2 record: level 2, handshake_failure (40) */
        static const uint8_t alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};
        if (recv(c->fd, hello, sizeof(hello), 0) <= 0)
            goto out;
        if (is("tls-alert"))
            send(c->fd, alert, sizeof(alert), MSG_NOSIGNAL);
        else if (is("tls-garbage"))
            send(c->fd, "HTTP/1.1 400 Bad Request\r\n\r\n", 28, MSG_NOSIGNAL);
        else
            sleep(120);
        usleep(100 * 1000);
        goto out;
    }
    if (c->ssl) {
        if (!strncmp(mode, "h2-", 3))
            wolfSSL_UseALPN(c->ssl, (char *)"h2", 2, WOLFSSL_ALPN_FAILED_ON_MISMATCH);
        if (wolfSSL_accept(c->ssl) != WOLFSSL_SUCCESS)
            goto out;
    }
    if (is("reset-tls")) {
        reset_fd(c->fd);
        goto out;
    }
    if (!strncmp(mode, "h2-", 3))
        serve_h2(c);
    else
        serve_h1(c);
out:
    if (c->ssl)
        wolfSSL_free(c->ssl);
    close(c->fd);
    free(c);
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
    _exit(0);
}

int main(int argc, char **argv)
{
    const char *port_file = NULL, *cert = NULL, *key = NULL;
    int max_seconds = 300, lfd, one = 1, found = 0;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--list")) {
            for (const struct mode *m = modes; m->name; m++)
                printf("%s\t%s\n", m->name, m->what);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "hostile_server: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--port-file"))
            port_file = argv[++i];
        else if (!strcmp(a, "--stats-file"))
            stats_file = argv[++i];
        else if (!strcmp(a, "--tls-cert"))
            cert = argv[++i];
        else if (!strcmp(a, "--tls-key"))
            key = argv[++i];
        else if (!strcmp(a, "--mode"))
            mode = argv[++i];
        else if (!strcmp(a, "--dump"))
            dump_file = argv[++i];
        else if (!strcmp(a, "--location"))
            location = argv[++i];
        else if (!strcmp(a, "--max-seconds"))
            max_seconds = atoi(argv[++i]);
        else {
            fprintf(stderr, "hostile_server: unknown option %s\n", a);
            return 2;
        }
    }
    for (const struct mode *m = modes; m->name; m++)
        found |= is(m->name);
    if (!found) {
        fprintf(stderr, "hostile_server: unknown mode %s (see --list)\n", mode);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm((unsigned)max_seconds); /* never outlive a test */
    if (cert) {
        wolfSSL_Init();
        tls_ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
        if (!tls_ctx ||
            wolfSSL_CTX_use_certificate_chain_file(tls_ctx, cert) != WOLFSSL_SUCCESS ||
            wolfSSL_CTX_use_PrivateKey_file(tls_ctx, key, WOLFSSL_FILETYPE_PEM) !=
                WOLFSSL_SUCCESS) {
            fprintf(stderr, "hostile_server: cannot load %s / %s\n", cert, key);
            return 2;
        }
    }
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 128) != 0) {
        perror("hostile_server: bind/listen");
        return 2;
    }
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    write_stats();
    if (port_file) {
        char tmp[4096];
        FILE *f;
        snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
        f = fopen(tmp, "w");
        if (!f)
            return 2;
        fprintf(f, "%d\n", ntohs(sa.sin_port));
        fclose(f);
        rename(tmp, port_file);
    }
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        struct client *c;
        pthread_t th;
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        if (tls_ctx && !is("reset-accept") && strncmp(mode, "tls-", 4) != 0) {
            c->ssl = wolfSSL_new(tls_ctx);
            wolfSSL_set_fd(c->ssl, fd);
        }
        atomic_fetch_add(&n_conns, 1);
        write_stats();
        if (pthread_create(&th, NULL, serve, c) != 0) {
            if (c->ssl)
                wolfSSL_free(c->ssl);
            close(fd);
            free(c);
            continue;
        }
        pthread_detach(th);
    }
    return 0;
}

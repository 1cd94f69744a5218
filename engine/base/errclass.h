/* Failures per host by class (DNS, connect, TLS, timeout, 429, 4xx by code, 5xx), counted in
 * two rings of wall-clock buckets so that counts over the last 5 minutes and the last hour
 * (and rates from them) can be read at any later time without a timer: a bucket carries the
 * number of the minute (or five minutes) it counts, and a reader ignores stale ones.
 *
 * A struct hd_errwin is 880 bytes. The runner allocates one only for a host that failed in
 * the last hour (a pointer, 8 bytes, for every other host), so 20,000 hosts that all fail
 * take 17.6 MB and 20,000 healthy ones 160 KB. One writer; readers take a copy (the runner
 * publishes one to the store, where the CLI, /metrics and /v1/hosts read it). */
#ifndef HD_ERRCLASS_H
#define HD_ERRCLASS_H

#include <stddef.h>
#include <stdint.h>

enum hd_errclass {
    HD_EC_DNS,       /* name resolution failed (also NXDOMAIN) */
    HD_EC_CONNECT,   /* TCP connect refused or unreachable, address refused by the guard */
    HD_EC_TLS,       /* handshake, record or certificate verification failure */
    HD_EC_TIMEOUT,   /* connect, TLS or response timeout */
    HD_EC_429,       /* Too Many Requests */
    HD_EC_400,
    HD_EC_401,
    HD_EC_403,
    HD_EC_404,
    HD_EC_410,
    HD_EC_422,
    HD_EC_4XX_OTHER, /* any other 4xx */
    HD_EC_5XX,
    HD_EC_OTHER,     /* protocol violations, resets, oversized answers, other statuses */
    HD_EC__COUNT
};

#define HD_ERRWIN_MINUTES 5 /* one-minute buckets: the 5-minute window */
#define HD_ERRWIN_FIVES 12  /* five-minute buckets: the 1-hour window */

struct hd_errwin {
    uint32_t min_stamp[HD_ERRWIN_MINUTES]; /* wall minute (unix ms / 60000) each bucket counts */
    uint32_t five_stamp[HD_ERRWIN_FIVES];  /* wall five-minute number of each bucket */
    uint16_t min_n[HD_ERRWIN_MINUTES][HD_EC__COUNT]; /* saturates at 65535 */
    uint32_t five_n[HD_ERRWIN_FIVES][HD_EC__COUNT];
};

/* Counts over the two windows at one instant, and the seconds each window covered (the
 * current bucket is partly elapsed): rate = n / secs. */
struct hd_errcounts {
    uint32_t n5m[HD_EC__COUNT], n1h[HD_EC__COUNT];
    uint64_t total5m, total1h;
    double secs5m, secs1h;
};

/* The class of a failed attempt: HTTP status (0 when err != 0) or transport error err
 * (HD_ERR_* or negative errno). -1 for what is no failure of the host: a 2xx or 3xx answer
 * with no error, a request cancelled locally, a local failure (store, key, memory). */
int hd_errclass_of(int status, int err);
/* "dns", "connect", "tls", "timeout", "429", "400", ..., "4xx", "5xx", "other". */
const char *hd_errclass_name(int cls);

/* Counts one failure of class cls at wall time now_ms. */
void hd_errwin_add(struct hd_errwin *w, int cls, uint64_t now_ms);
/* Counts of w as seen at wall time now_ms. */
void hd_errwin_counts(const struct hd_errwin *w, uint64_t now_ms, struct hd_errcounts *out);
/* 1 when every bucket of w is older than an hour at now_ms (w counts nothing any more). */
int hd_errwin_expired(const struct hd_errwin *w, uint64_t now_ms);
/* Writes "dns 12 (0.04/s), 404 3 (0.01/s)" for one window (five_min: 1 = 5 minutes, 0 = 1
 * hour) into buf, or "none". Returns buf. */
char *hd_errcounts_format(const struct hd_errcounts *c, int five_min, char *buf, size_t size);

#endif

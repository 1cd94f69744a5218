/* Failures per host by class over 5 minutes and 1 hour (errclass.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "errclass.h"

static const char *const class_names[HD_EC__COUNT] = {
    "dns", "connect", "tls", "timeout", "429", "400", "401",
    "403", "404",     "410", "422",     "4xx", "5xx", "other",
};

const char *hd_errclass_name(int cls)
{
    return cls >= 0 && cls < HD_EC__COUNT ? class_names[cls] : "?";
}

static int class_of_status(int status)
{
    switch (status) {
    case 429: return HD_EC_429;
    case 400: return HD_EC_400;
    case 401: return HD_EC_401;
    case 403: return HD_EC_403;
    case 404: return HD_EC_404;
    case 410: return HD_EC_410;
    case 422: return HD_EC_422;
    default: break;
    }
    if (status >= 400 && status < 500)
        return HD_EC_4XX_OTHER;
    if (status >= 500 && status < 600)
        return HD_EC_5XX;
    if (status >= 200 && status < 400)
        return -1;
    return HD_EC_OTHER;
}

int hd_errclass_of(int status, int err)
{
    if (!err)
        return class_of_status(status);
    switch (err) {
    case HD_ERR_DNS:
    case HD_ERR_DNS_NXDOMAIN:
        return HD_EC_DNS;
    case HD_ERR_CONNECT:
    case HD_ERR_PRIVATE_ADDR:
    case -ECONNREFUSED:
    case -ENETUNREACH:
    case -EHOSTUNREACH:
    case -EADDRNOTAVAIL:
        return HD_EC_CONNECT;
    case HD_ERR_TLS:
    case HD_ERR_TLS_VERIFY:
        return HD_EC_TLS;
    case HD_ERR_TIMEOUT_CONNECT:
    case HD_ERR_TIMEOUT_TLS:
    case HD_ERR_TIMEOUT_RESPONSE:
    case -ETIMEDOUT:
        return HD_EC_TIMEOUT;
    case HD_ERR_CANCELLED:
    case HD_ERR_STORE:
    case HD_ERR_CRYPTO:
    case HD_ERR_NO_KEY:
    case HD_ERR_BUSY:
    case HD_ERR_FULL:
    case -ENOMEM:
        return -1;
    default:
        return HD_EC_OTHER;
    }
}

void hd_errwin_add(struct hd_errwin *w, int cls, uint64_t now_ms)
{
    uint32_t min = (uint32_t)(now_ms / 60000u), five = min / 5u;
    unsigned mi = min % HD_ERRWIN_MINUTES, fi = five % HD_ERRWIN_FIVES;

    if (cls < 0 || cls >= HD_EC__COUNT)
        return;
    if (w->min_stamp[mi] != min) {
        w->min_stamp[mi] = min;
        memset(w->min_n[mi], 0, sizeof(w->min_n[mi]));
    }
    if (w->five_stamp[fi] != five) {
        w->five_stamp[fi] = five;
        memset(w->five_n[fi], 0, sizeof(w->five_n[fi]));
    }
    if (w->min_n[mi][cls] < UINT16_MAX)
        w->min_n[mi][cls]++;
    if (w->five_n[fi][cls] < UINT32_MAX)
        w->five_n[fi][cls]++;
}

void hd_errwin_counts(const struct hd_errwin *w, uint64_t now_ms, struct hd_errcounts *out)
{
    uint32_t min = (uint32_t)(now_ms / 60000u), five = min / 5u;

    memset(out, 0, sizeof(*out));
    /* The current bucket is partly elapsed: the windows cover the whole buckets before it
     * and what has passed of it. */
    out->secs5m = (HD_ERRWIN_MINUTES - 1) * 60.0 + (double)(now_ms % 60000u) / 1000.0;
    out->secs1h = (HD_ERRWIN_FIVES - 1) * 300.0 + (double)(now_ms % 300000u) / 1000.0;
    if (!w)
        return;
    for (unsigned i = 0; i < HD_ERRWIN_MINUTES; i++) {
        uint32_t s = w->min_stamp[i];
        if (s > min || min - s >= HD_ERRWIN_MINUTES)
            continue;
        for (unsigned c = 0; c < HD_EC__COUNT; c++) {
            out->n5m[c] += w->min_n[i][c];
            out->total5m += w->min_n[i][c];
        }
    }
    for (unsigned i = 0; i < HD_ERRWIN_FIVES; i++) {
        uint32_t s = w->five_stamp[i];
        if (s > five || five - s >= HD_ERRWIN_FIVES)
            continue;
        for (unsigned c = 0; c < HD_EC__COUNT; c++) {
            out->n1h[c] += w->five_n[i][c];
            out->total1h += w->five_n[i][c];
        }
    }
}

int hd_errwin_expired(const struct hd_errwin *w, uint64_t now_ms)
{
    uint32_t five = (uint32_t)(now_ms / 300000u);

    for (unsigned i = 0; i < HD_ERRWIN_FIVES; i++) {
        uint32_t s = w->five_stamp[i];
        if (s && s <= five && five - s < HD_ERRWIN_FIVES)
            return 0;
    }
    return 1;
}

char *hd_errcounts_format(const struct hd_errcounts *c, int five_min, char *buf, size_t size)
{
    const uint32_t *n = five_min ? c->n5m : c->n1h;
    double secs = five_min ? c->secs5m : c->secs1h;
    size_t len = 0;

    if (!size)
        return buf;
    buf[0] = 0;
    for (unsigned k = 0; k < HD_EC__COUNT && len < size; k++) {
        int w;
        if (!n[k])
            continue;
        w = snprintf(buf + len, size - len, "%s%s %u (%.3g/s)", len ? ", " : "",
                     class_names[k], n[k], secs > 0 ? n[k] / secs : 0.0);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    if (!buf[0])
        snprintf(buf, size, "none");
    return buf;
}

/* Classification table (see README "Outcomes"):
 *   2xx                         done
 *   401                         retry (a passing 401 must not drop a delivery; scheme
 *                               fallback comes with RFC 9421 support)
 *   408, 425, 429, 5xx          retry
 *   other 4xx, 1xx/3xx          dead letter (redirects are never followed for a POST)
 *   transport errors            retry, except refusals that no retry can fix (private
 *                               destination address, invalid request)
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "policy.h"

void hd_retry_policy_default(struct hd_retry_policy *p)
{
    /* 60 s doubling to a 6 h cap: attempts at ~1m, 2m, 4m, ... 256m, then every 6 h; 16
     * attempts span about 2.9 days, more than the 48 h a receiver may be down for. */
    p->base_ms = 60 * 1000;
    p->cap_ms = 6 * 3600 * 1000ull;
    p->max_attempts = 16;
    p->retry_after_cap_ms = 6 * 3600 * 1000ull;
}

enum hd_outcome hd_policy_classify(int status, int err)
{
    if (err)
        return hd_err_is_transient(err) ? HD_OUT_RETRY : HD_OUT_DEAD;
    if (status >= 200 && status < 300)
        return HD_OUT_DONE;
    if (status == 401 || status == 408 || status == 425 || status == 429 || status >= 500)
        return HD_OUT_RETRY;
    return HD_OUT_DEAD;
}

uint64_t hd_policy_backoff_ms(const struct hd_retry_policy *p, uint32_t attempts, uint32_t rnd)
{
    uint64_t d = p->base_ms;
    for (uint32_t i = 1; i < attempts && d < p->cap_ms; i++)
        d *= 2;
    if (d > p->cap_ms)
        d = p->cap_ms;
    /* jitter in [-20%, +20%) so that a host's deliveries that failed together spread out */
    int64_t j = (int64_t)(d / 5);
    if (j > 0)
        d = (uint64_t)((int64_t)d - j + (int64_t)(rnd % (uint64_t)(2 * j)));
    return d;
}

int hd_policy_retry_after(const char *v, int64_t now_s, uint64_t cap_ms, uint64_t *delay_ms)
{
    struct tm tm;
    const char *end;
    uint64_t d;

    while (*v == ' ' || *v == '\t')
        v++;
    if (isdigit((unsigned char)*v)) {
        char *e;
        unsigned long long s = strtoull(v, &e, 10);
        while (*e == ' ' || *e == '\t')
            e++;
        if (*e)
            return HD_ERR_INVALID;
        d = s > cap_ms / 1000 ? cap_ms : (uint64_t)s * 1000;
        *delay_ms = d;
        return 0;
    }
    memset(&tm, 0, sizeof(tm));
    end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return HD_ERR_INVALID;
    int64_t t = (int64_t)timegm(&tm);
    d = t <= now_s ? 0 : (uint64_t)(t - now_s) * 1000;
    *delay_ms = d > cap_ms ? cap_ms : d;
    return 0;
}

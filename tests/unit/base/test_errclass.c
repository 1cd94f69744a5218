/* Failures by class: the mapping from an answer to a class, the two windows as time moves,
 * saturation, expiry and the text form. */
#include <errno.h>

#include "err.h"
#include "errclass.h"
#include "t.h"

#define MIN 60000ull

int main(void)
{
    struct hd_errwin w;
    struct hd_errcounts c;
    char buf[256];
    uint64_t t0 = 1800000000000ull - 1800000000000ull % (5 * MIN); /* a five-minute start */

    T_EQ_INT(hd_errclass_of(0, HD_ERR_DNS), HD_EC_DNS);
    T_EQ_INT(hd_errclass_of(0, HD_ERR_DNS_NXDOMAIN), HD_EC_DNS);
    T_EQ_INT(hd_errclass_of(0, HD_ERR_CONNECT), HD_EC_CONNECT);
    T_EQ_INT(hd_errclass_of(0, -ECONNREFUSED), HD_EC_CONNECT);
    T_EQ_INT(hd_errclass_of(0, HD_ERR_TLS_VERIFY), HD_EC_TLS);
    T_EQ_INT(hd_errclass_of(0, HD_ERR_TIMEOUT_RESPONSE), HD_EC_TIMEOUT);
    T_EQ_INT(hd_errclass_of(0, HD_ERR_TIMEOUT_CONNECT), HD_EC_TIMEOUT);
    T_EQ_INT(hd_errclass_of(0, HD_ERR_RESET), HD_EC_OTHER);
    T_EQ_INT(hd_errclass_of(0, HD_ERR_CANCELLED), -1);
    T_EQ_INT(hd_errclass_of(0, HD_ERR_NO_KEY), -1);
    T_EQ_INT(hd_errclass_of(429, 0), HD_EC_429);
    T_EQ_INT(hd_errclass_of(404, 0), HD_EC_404);
    T_EQ_INT(hd_errclass_of(410, 0), HD_EC_410);
    T_EQ_INT(hd_errclass_of(418, 0), HD_EC_4XX_OTHER);
    T_EQ_INT(hd_errclass_of(503, 0), HD_EC_5XX);
    T_EQ_INT(hd_errclass_of(202, 0), -1);
    T_EQ_STR(hd_errclass_name(HD_EC_4XX_OTHER), "4xx");
    T_EQ_STR(hd_errclass_name(HD_EC_5XX), "5xx");
    T_EQ_STR(hd_errclass_name(HD_EC_404), "404");

    memset(&w, 0, sizeof(w));
    T_OK(hd_errwin_expired(&w, t0));
    hd_errwin_add(&w, HD_EC_DNS, t0);
    hd_errwin_add(&w, HD_EC_DNS, t0 + 1000);
    hd_errwin_add(&w, HD_EC_404, t0 + 2 * MIN);
    hd_errwin_add(&w, -1, t0);           /* ignored */
    hd_errwin_add(&w, HD_EC__COUNT, t0); /* ignored */
    hd_errwin_counts(&w, t0 + 2 * MIN + 30000, &c);
    T_EQ_INT(c.n5m[HD_EC_DNS], 2);
    T_EQ_INT(c.n5m[HD_EC_404], 1);
    T_EQ_INT(c.total5m, 3);
    T_EQ_INT(c.total1h, 3);
    T_OK(c.secs5m > 269.9 && c.secs5m < 270.1); /* 4 whole minutes + 30 s */
    T_EQ_STR(hd_errcounts_format(&c, 1, buf, sizeof(buf)), "dns 2 (0.00741/s), 404 1 (0.0037/s)");

    /* 5 minutes on: the first minute left the 5-minute window, not the hour */
    hd_errwin_counts(&w, t0 + 5 * MIN + 1, &c);
    T_EQ_INT(c.n5m[HD_EC_DNS], 0);
    T_EQ_INT(c.n5m[HD_EC_404], 1);
    T_EQ_INT(c.n1h[HD_EC_DNS], 2);
    /* a bucket reused a ring later starts again from zero */
    hd_errwin_add(&w, HD_EC_5XX, t0 + 5 * MIN + 1);
    hd_errwin_counts(&w, t0 + 5 * MIN + 2, &c);
    T_EQ_INT(c.n5m[HD_EC_5XX], 1);
    T_EQ_INT(c.n5m[HD_EC_DNS], 0);
    T_EQ_INT(c.n1h[HD_EC_DNS], 2);
    T_EQ_INT(c.total1h, 4);
    /* an hour and more later: nothing in either window, expired */
    T_OK(!hd_errwin_expired(&w, t0 + 59 * MIN));
    hd_errwin_counts(&w, t0 + 61 * MIN, &c);
    T_EQ_INT(c.n1h[HD_EC_DNS], 0);
    T_EQ_INT(c.total1h, 1); /* the 5xx of minute 5 is still inside the hour */
    hd_errwin_counts(&w, t0 + 66 * MIN, &c);
    T_EQ_INT(c.total1h, 0);
    T_EQ_INT(c.total5m, 0);
    T_OK(hd_errwin_expired(&w, t0 + 66 * MIN));
    T_EQ_STR(hd_errcounts_format(&c, 0, buf, sizeof(buf)), "none");
    /* a reader's clock behind the writer's: future buckets are not counted */
    hd_errwin_counts(&w, t0 + 2 * MIN, &c);
    T_EQ_INT(c.total5m, 1); /* the 404 of minute 2; the 5xx of minute 5 is ahead */
    T_EQ_INT(c.n5m[HD_EC_5XX], 0);

    /* one-minute buckets saturate; five-minute ones keep counting */
    memset(&w, 0, sizeof(w));
    for (unsigned i = 0; i < 70000; i++)
        hd_errwin_add(&w, HD_EC_429, t0);
    hd_errwin_counts(&w, t0 + 10, &c);
    T_EQ_INT(c.n5m[HD_EC_429], 65535);
    T_EQ_INT(c.n1h[HD_EC_429], 70000);
    hd_errwin_counts(NULL, t0, &c);
    T_EQ_INT(c.total1h, 0);
    T_OK(sizeof(struct hd_errwin) <= 880);
    T_DONE();
}

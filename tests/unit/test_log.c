/* Log: level parsing, per-host rate limiting (one line per host per interval, drops counted,
 * interval 0 = no limit). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "t.h"

int main(void)
{
    unsigned sup;

    T_EQ_INT(hd_log_parse_level("warn"), HD_LOG_WARN);
    T_EQ_INT(hd_log_parse_level("loud"), -1);

    hd_log_warn_interval_ms = 0;
    for (int i = 0; i < 5; i++)
        T_EQ_INT(hd_log_ratelimit("a.example", &sup), 1);

    hd_log_warn_interval_ms = 200;
    T_EQ_INT(hd_log_ratelimit("b.example", &sup), 1);
    T_EQ_INT(sup, 0);
    T_EQ_INT(hd_log_ratelimit("b.example", &sup), 0);
    T_EQ_INT(hd_log_ratelimit("b.example", &sup), 0);
    T_EQ_INT(hd_log_ratelimit("c.example", &sup), 1); /* another host has its own budget */
    {
        struct timespec ts = {0, 250 * 1000000L};
        nanosleep(&ts, NULL);
    }
    T_EQ_INT(hd_log_ratelimit("b.example", &sup), 1);
    T_EQ_INT(sup, 2); /* the two dropped lines are reported with the next one */

    /* the macro writes one line per interval with host= appended */
    hd_log_level = HD_LOG_DEBUG;
    for (int i = 0; i < 3; i++)
        HD_LOG_HOST(HD_LOG_WARN, "test", "d.example", "msg=\"breaker open\" n=%d", i);
    T_DONE();
}

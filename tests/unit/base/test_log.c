/* Log: level parsing, per-host rate limiting (one line per host per interval, drops counted,
 * interval 0 = no limit), and the level and interval changing while other threads log (as a
 * reload does under the loop threads): built with -fsanitize=thread this shows that they are
 * read atomically. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "t.h"

static _Atomic int done;

static void *log_a_lot(void *arg)
{
    unsigned long n = 0;

    (void)arg;
    while (!atomic_load(&done)) {
        HD_LOG(HD_LOG_DEBUG, "test", "msg=\"not shown\" n=%lu", n);
        HD_LOG_HOST(HD_LOG_DEBUG, "test", "e.example", "msg=\"not shown\" n=%lu", n);
        n++;
    }
    return NULL;
}

static void reload_while_logging(void)
{
    pthread_t t[2];

    hd_log_level = HD_LOG_ERROR;
    for (int i = 0; i < 2; i++)
        T_EQ_INT(pthread_create(&t[i], NULL, log_a_lot, NULL), 0);
    for (int i = 0; i < 2000; i++) {
        hd_log_level = i % 2 ? HD_LOG_WARN : HD_LOG_ERROR;
        hd_log_warn_interval_ms = 1000 + (unsigned)i;
    }
    atomic_store(&done, 1);
    for (int i = 0; i < 2; i++)
        T_EQ_INT(pthread_join(t[i], NULL), 0);
    T_EQ_INT(hd_log_level, HD_LOG_WARN);
}

int main(void)
{
    unsigned sup;

    reload_while_logging();

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

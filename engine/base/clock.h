/* Wall-clock milliseconds (CLOCK_REALTIME): for values stored or shown (retry times, record
 * timestamps). Scheduling uses the loop's monotonic clock (hd_loop_now_ms). */
#ifndef HD_CLOCK_H
#define HD_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t hd_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif

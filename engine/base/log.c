#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

_Atomic int hd_log_level = HD_LOG_INFO;
_Atomic unsigned long long hd_log_warn_interval_ms = 60000;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* Rate-limit slots: part of the log sink, like the level (bounded: HD_LOG_RL_SLOTS). */
struct rl_slot {
    _Atomic uint64_t next_ms; /* earliest time the next line may go out */
    _Atomic uint32_t dropped;
};
static struct rl_slot rl_slots[HD_LOG_RL_SLOTS];

static void vwrite(int level, const char *mod, const char *suffix, const char *fmt, va_list ap)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    size_t n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ level=%s mod=%s ",
                          ts.tv_nsec / 1000000, level_names[level < 0 ? 0 : level > 3 ? 3 : level],
                          mod);
    if (n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    n = strlen(line);
    if (suffix && n < sizeof(line))
        snprintf(line + n, sizeof(line) - n, "%s", suffix);
    /* One write per line so that lines from two threads do not interleave. */
    n = strlen(line);
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    fwrite(line, 1, n, stderr);
}

void hd_log_write(int level, const char *mod, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vwrite(level, mod, NULL, fmt, ap);
    va_end(ap);
}

int hd_log_parse_level(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int hd_log_ratelimit(const char *key, unsigned *suppressed)
{
    uint64_t h = 1469598103934665603ull, now, next;
    unsigned long long interval =
        atomic_load_explicit(&hd_log_warn_interval_ms, memory_order_relaxed);
    struct rl_slot *s;

    *suppressed = 0;
    if (interval == 0)
        return 1;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    s = &rl_slots[h % HD_LOG_RL_SLOTS];
    now = mono_ms() + 1; /* + 1: next_ms 0 means "never written" */
    next = atomic_load_explicit(&s->next_ms, memory_order_relaxed);
    /* One winner per interval: whoever moves next_ms forward writes the line. */
    if (now < next ||
        !atomic_compare_exchange_strong(&s->next_ms, &next, now + (uint64_t)interval)) {
        atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
        return 0;
    }
    *suppressed = atomic_exchange_explicit(&s->dropped, 0, memory_order_relaxed);
    return 1;
}

void hd_log_write_host(int level, const char *mod, const char *host, const char *fmt, ...)
{
    char suffix[HD_LOG_RL_SUFFIX_MAX];
    unsigned dropped;
    va_list ap;

    if (!hd_log_ratelimit(host, &dropped))
        return;
    if (dropped)
        snprintf(suffix, sizeof(suffix), " host=%s suppressed=%u", host, dropped);
    else
        snprintf(suffix, sizeof(suffix), " host=%s", host);
    va_start(ap, fmt);
    vwrite(level, mod, suffix, fmt, ap);
    va_end(ap);
}

/* Logging: logfmt-ish lines on stderr, "ts=... level=warn mod=conn msg=\"...\" key=value".
 * Never pass keys, signatures, Authorization or Signature header values to these macros. */
#ifndef HD_LOG_H
#define HD_LOG_H

enum hd_log_level { HD_LOG_ERROR = 0, HD_LOG_WARN = 1, HD_LOG_INFO = 2, HD_LOG_DEBUG = 3 };

#include <stdatomic.h>

/* The only mutable global besides signal flags: the current level. Set at start-up and by the
 * operations thread on reload, read by every thread: an atomic, read with a relaxed load (a
 * plain load on x86 and arm64), so that HD_LOG stays one compare when the level is off. */
extern _Atomic int hd_log_level;

void hd_log_write(int level, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Evaluates its arguments only when the level is enabled. fmt is "msg=\"...\" k=v ..." style. */
#define HD_LOG(level, mod, ...)                                                                    \
    do {                                                                                           \
        if ((level) <= atomic_load_explicit(&hd_log_level, memory_order_relaxed))                  \
            hd_log_write((level), (mod), __VA_ARGS__);                                             \
    } while (0)

/* Parses "error|warn|info|debug"; returns the level or -1. */
int hd_log_parse_level(const char *s);

/* Per-host warnings are rate-limited (STYLE 7): at most one line per key (a host name) per
 * hd_log_warn_interval_ms (default 60 s; 0 = no limit; set at start-up and on reload). Keys
 * hash into a fixed table of HD_LOG_RL_SLOTS slots, so memory stays bounded however many
 * hosts there are; two keys sharing a slot share its budget. */
#define HD_LOG_RL_SLOTS 4096
#define HD_LOG_RL_SUFFIX_MAX 320
extern _Atomic unsigned long long hd_log_warn_interval_ms;

/* Returns 1 when a line for key may be written now (*suppressed then receives how many lines
 * for its slot were dropped since the last one written), else 0 (and counts the drop).
 * Thread-safe and lock-free. */
int hd_log_ratelimit(const char *key, unsigned *suppressed);

/* HD_LOG for one host: rate-limited per host, and the line ends with host=H (and
 * suppressed=N when lines were dropped). */
void hd_log_write_host(int level, const char *mod, const char *host, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define HD_LOG_HOST(level, mod, host, ...)                                                         \
    do {                                                                                           \
        if ((level) <= atomic_load_explicit(&hd_log_level, memory_order_relaxed))                  \
            hd_log_write_host((level), (mod), (host), __VA_ARGS__);                                \
    } while (0)

#endif

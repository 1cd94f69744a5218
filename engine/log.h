/* Logging: logfmt-ish lines on stderr, "ts=... level=warn mod=conn msg=\"...\" key=value".
 * Never pass keys, signatures, Authorization or Signature header values to these macros. */
#ifndef HD_LOG_H
#define HD_LOG_H

enum hd_log_level { HD_LOG_ERROR = 0, HD_LOG_WARN = 1, HD_LOG_INFO = 2, HD_LOG_DEBUG = 3 };

/* The only mutable global besides signal flags: the current level (read racily, set at start-up). */
extern int hd_log_level;

void hd_log_write(int level, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Evaluates its arguments only when the level is enabled. fmt is "msg=\"...\" k=v ..." style. */
#define HD_LOG(level, mod, ...)                                                                    \
    do {                                                                                           \
        if ((level) <= hd_log_level)                                                               \
            hd_log_write((level), (mod), __VA_ARGS__);                                             \
    } while (0)

/* Parses "error|warn|info|debug"; returns the level or -1. */
int hd_log_parse_level(const char *s);

#endif

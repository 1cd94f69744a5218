/* The audit trail: one log line per destructive operation (blocks, allowlist mode, an actor's
 * federation choice, dead-letter purges and retries, host resets), whoever asked for it:
 *   ts=... level=info mod=audit op=block_add target="spam.example" deliveries=12
 *   source=cli detail="severity=suspend"
 * Written whatever the log level (it goes through hd_log_write, not HD_LOG). */
#ifndef HD_AUDIT_H
#define HD_AUDIT_H

#include <stdint.h>

#define HD_AUDIT_CLI "cli"
#define HD_AUDIT_ENDPOINT "endpoint"
#define HD_AUDIT_API "api"

/* source: HD_AUDIT_*; op: what was done (a word); target: a domain, host, actor or "all"
 * (quoted, with quotes, backslashes and control bytes escaped; NULL = "-"); deliveries: how
 * many queued deliveries or dead letters it dropped, moved or removed; detail: more
 * key=value text, or NULL. */
void hd_audit(const char *source, const char *op, const char *target, uint64_t deliveries,
              const char *detail);

#endif

/* The audit trail (see audit.h). */
#include <inttypes.h>
#include <stdio.h>

#include "audit.h"
#include "log.h"

/* Copies s into out (cap bytes) with ", \ and bytes below 0x20 escaped; truncates. */
static void quote(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; s && *s && o + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = 0;
}

void hd_audit(const char *source, const char *op, const char *target, uint64_t deliveries,
              const char *detail)
{
    char t[1100], d[600];

    quote(target ? target : "-", t, sizeof(t));
    quote(detail ? detail : "", d, sizeof(d));
    hd_log_write(HD_LOG_INFO, "audit",
                 "op=%s target=\"%s\" deliveries=%" PRIu64 " source=%s%s%s%s", op, t,
                 deliveries, source, detail ? " detail=\"" : "", detail ? d : "",
                 detail ? "\"" : "");
}

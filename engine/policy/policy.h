/* Delivery outcome classification and retry timing: the one table that decides what an
 * answer means (grown by the per-host policy work; keep every rule here). */
#ifndef HD_POLICY_H
#define HD_POLICY_H

#include <stdint.h>

enum hd_outcome {
    HD_OUT_DONE = 1,     /* 2xx */
    HD_OUT_RETRY = 2,    /* transient: retry with backoff */
    HD_OUT_DEAD = 3,     /* final failure: dead letter */
};

struct hd_retry_policy {
    uint64_t base_ms;    /* first retry delay; default 60 s */
    uint64_t cap_ms;     /* largest delay; default 6 h */
    uint32_t max_attempts; /* attempts before a delivery is dead-lettered; default 16 */
    uint64_t retry_after_cap_ms; /* cap on honoured Retry-After; default 6 h */
};

void hd_retry_policy_default(struct hd_retry_policy *p);

/* Classifies an answer: status (0 when err != 0) and transport error err. */
enum hd_outcome hd_policy_classify(int status, int err);

/* Delay before attempt number `attempts + 1`, after `attempts` failed attempts (>= 1):
 * base * 2^(attempts-1), capped, with +-20% jitter from rnd (any 32-bit random value). */
uint64_t hd_policy_backoff_ms(const struct hd_retry_policy *p, uint32_t attempts, uint32_t rnd);

/* Parses a Retry-After value (delta-seconds or HTTP-date) relative to now (unix seconds).
 * Returns 0 and the delay in ms (capped at cap_ms), or HD_ERR_INVALID. */
int hd_policy_retry_after(const char *value, int64_t now_s, uint64_t cap_ms, uint64_t *delay_ms);

#endif

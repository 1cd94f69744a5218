/* What an answer means: the one classification table (policy.c) that maps one answer to one
 * delivery onto one verdict, and the retry timing it uses. The runner applies verdicts; it
 * decides none. */
#ifndef HD_POLICY_H
#define HD_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "hostpol.h"

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

/* The signal an answer (status, or transport error err) carries for its host's policy. */
enum hd_host_signal hd_policy_host_signal(int status, int err);

/* May this failed attempt have been processed by the server (status, or transport error
 * err)? 0 only for what certainly never got there. */
int hd_policy_reached(int status, int err);

/* A failure to read what a delivery needs (its activity, its actor, a key) or to load a key:
 * 1 when it is final (the record is missing or damaged, the key unusable), 0 when it is
 * passing (a store error, out of memory): the delivery is then released untouched and
 * looked at again after HD_POLICY_LOCAL_RETRY_MS, not turned into an outcome, as long as its
 * host's local failures have lasted less than HD_POLICY_LOCAL_GRACE_MS; after that each one
 * counts as an attempt (backoff, then a dead letter after max_attempts), so that a failure
 * that lasts ends like any other and --until-idle can stop. */
int hd_policy_local_final(int err);
#define HD_POLICY_LOCAL_RETRY_MS 1000
#define HD_POLICY_LOCAL_GRACE_MS 10000

/* Delay before attempt number `attempts + 1`, after `attempts` failed attempts (>= 1):
 * base * 2^(attempts-1), capped, with +-20% jitter from rnd (any 32-bit random value). */
uint64_t hd_policy_backoff_ms(const struct hd_retry_policy *p, uint32_t attempts, uint32_t rnd);

/* Parses a Retry-After value (delta-seconds or HTTP-date) relative to now (unix seconds).
 * Returns 0 and the delay in ms (capped at cap_ms), or HD_ERR_INVALID. */
int hd_policy_retry_after(const char *value, int64_t now_s, uint64_t cap_ms, uint64_t *delay_ms);

/* One answer to one delivery, and what the verdict depends on besides. Borrowed strings
 * need only live for the call. */
struct hd_policy_in {
    int status;                   /* HTTP status, 0 when err != 0 */
    int err;                      /* 0, or the transport (or signing) error */
    const char *retry_after;      /* Retry-After value, or NULL */
    const char *accept_signature; /* Accept-Signature value, or NULL */
    const uint8_t *body;          /* start of the answer's body (may be NULL) */
    size_t body_len;
    uint32_t attempts;            /* attempts made before this one */
    int shared;                   /* the inbox is a shared inbox */
    int switched;                 /* this delivery already switched scheme once */
    int local;                    /* err is the runner's own: nothing was sent (the delivery's
                                   * records or key could not be read or used) */
    uint64_t local_failing_ms;    /* local: how long the host's local failures have lasted
                                   * without a request going out since (0: this is the first) */
    uint8_t scheme;               /* HD_SCHEME_* (queue.h) the request was signed with */
    uint8_t ed;                   /* RFC 9421 request signed with an Ed25519 key */
    int64_t now_s;                /* wall clock, unix seconds (HTTP-date Retry-After) */
    uint32_t rnd;                 /* any 32-bit random value (backoff jitter) */
};

/* Settings the table reads. */
struct hd_policy_cfg {
    const struct hd_retry_policy *retry; /* backoff and maximum attempts */
    uint64_t retry_after_cap_ms;         /* cap on a honoured Retry-After */
};

enum hd_verdict_kind {
    HD_VERDICT_DONE = HD_OUT_DONE,   /* delivered: acknowledge */
    HD_VERDICT_RETRY = HD_OUT_RETRY, /* try again after retry_ms */
    HD_VERDICT_DEAD = HD_OUT_DEAD,   /* final: dead letter with error (and the body's start) */
    HD_VERDICT_SWITCH = 4,           /* send again at once with `scheme`: not an attempt */
    HD_VERDICT_RELEASE = 5,          /* nothing happened (cancelled at shutdown, or a transient
                                      * local failure before sending): give the lease back,
                                      * count nothing, tell the host nothing; look again after
                                      * retry_ms when it is not 0 */
};

struct hd_verdict {
    enum hd_verdict_kind kind;
    enum hd_host_signal sig;  /* for the host's policy; 0: none (nothing reached the host) */
    uint64_t pause_ms;        /* > 0: Retry-After pauses the whole host this long */
    uint64_t retry_ms;        /* RETRY: delay before the next attempt; RELEASE: before the
                                 * host is looked at again (0: not before the next run) */
    uint8_t counted;          /* an attempt: latency, metrics and the dead-letter log apply */
    uint8_t unsent;           /* nothing went out after all: the host's probe slot is free */
    uint8_t passing;          /* a passing local failure (RELEASE, or RETRY/DEAD once they
                               * have lasted): the host's local-failure streak goes on */
    uint8_t scheme;           /* SWITCH: HD_SCHEME_* of the immediate retry */
    uint8_t scheme_ok;        /* DONE: the scheme that worked, as hd_ack.scheme_ok (1 cavage,
                               * 2 RFC 9421 with RSA, 3 RFC 9421 with Ed25519) */
    uint8_t host_rfc9421;     /* Accept-Signature: the host wants RFC 9421 from now on ... */
    uint8_t host_ed25519;     /* ... with Ed25519 */
    uint8_t host_fail;        /* a host-level failure (counts for health and the breaker) */
    uint8_t host_gone;        /* 410 from a shared inbox: the host is gone */
    uint8_t follower_gone;    /* DEAD: 404/410 from a personal inbox */
    uint8_t reached;          /* not DONE, and this attempt may have been processed */
    char error[HD_ERRTEXT_MAX]; /* RETRY/DEAD: the reason ("" for DONE, SWITCH, RELEASE) */
};

/* The classification table: maps one answer to its verdict. Pure: no clock, no I/O. */
void hd_policy_verdict(const struct hd_policy_cfg *cfg, const struct hd_policy_in *in,
                       struct hd_verdict *v);

#endif

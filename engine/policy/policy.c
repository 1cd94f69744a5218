/* The classification table: what one answer to one delivery means for the delivery and for
 * its host (see README "Outcomes"). Every rule is here; the runner applies the verdict.
 *
 *   answer                        delivery                         host signal    reached
 *   2xx                           done                             ok             -
 *   401, 400 naming the signature once: send again at once with    neutral        -
 *                                 the other scheme (not an attempt)
 *   401 (after that), 408, 425    retry                            neutral        no
 *   429                           retry; Retry-After pauses host   slow down      no
 *   503                           retry; Retry-After pauses host   fail + slow    yes
 *   other 5xx                     retry                            fail           yes
 *   404/410, personal inbox       dead: follower gone              neutral        no
 *   410, shared inbox             dead: host gone                  neutral        no
 *   other 4xx, 1xx/3xx            dead (redirects are never        neutral        no
 *                                 followed for a POST)
 *   transport errors              retry, except refusals no retry  error_rows     error_rows
 *                                 can fix (hd_err_is_transient)
 *   signing failed, no usable key dead; nothing was sent           none           -
 *   (right before sending)
 *   store error or no memory      released untouched, looked at    none           -
 *   (before sending)              again in a second; after 10 s of
 *                                 such failures: an attempt (retry)
 *   cancelled (shutdown)          released as it was              none           -
 *   a retry on the last attempt   dead "(after N attempts)"
 *
 * "reached": the attempt may have been processed by the server, so a Create is never
 * cancelled after it (HD_QF_REACHED). Only what certainly never got there says no: no
 * connection, a refusal, or a 4xx answer.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "err.h"
#include "policy.h"
#include "queue.h"

/* Statuses (when there is no transport error), first matching row wins. */
static const struct status_row {
    int lo, hi;
    enum hd_outcome out;
    enum hd_host_signal sig;
    uint8_t reached;
} status_rows[] = {
    {200, 299, HD_OUT_DONE, HD_SIG_OK, 0},
    {401, 401, HD_OUT_RETRY, HD_SIG_NEUTRAL, 0},
    {408, 408, HD_OUT_RETRY, HD_SIG_NEUTRAL, 0},
    {425, 425, HD_OUT_RETRY, HD_SIG_NEUTRAL, 0},
    {429, 429, HD_OUT_RETRY, HD_SIG_SLOW_DOWN, 0},
    {503, 503, HD_OUT_RETRY, HD_SIG_FAIL_SLOW, 1},
    {500, INT_MAX, HD_OUT_RETRY, HD_SIG_FAIL, 1},
    {INT_MIN, 499, HD_OUT_DEAD, HD_SIG_NEUTRAL, 0}, /* other 4xx, 1xx, 3xx */
};

/* Transport errors: the host signal, and whether the request may have reached the server.
 * The delivery's outcome is hd_err_is_transient's (err.c): retry, or dead for a refusal. */
static const struct error_row {
    int err;
    enum hd_host_signal sig;
    uint8_t reached;
} error_rows[] = {
    {HD_ERR_TIMEOUT_CONNECT, HD_SIG_FAIL_SLOW, 0},
    {HD_ERR_TIMEOUT_TLS, HD_SIG_FAIL_SLOW, 0},
    {HD_ERR_TIMEOUT_RESPONSE, HD_SIG_FAIL_SLOW, 1},
    {HD_ERR_PRIVATE_ADDR, HD_SIG_NEUTRAL, 0},
    {HD_ERR_INVALID, HD_SIG_NEUTRAL, 1},
    {HD_ERR_CANCELLED, HD_SIG_NEUTRAL, 1},
    {HD_ERR_DNS, HD_SIG_FAIL, 0},
    {HD_ERR_DNS_NXDOMAIN, HD_SIG_FAIL, 0},
    {HD_ERR_CONNECT, HD_SIG_FAIL, 0},
    {HD_ERR_TLS_VERIFY, HD_SIG_FAIL, 0},
    {HD_ERR_REFUSED_STREAM, HD_SIG_FAIL, 0},
    {0, HD_SIG_FAIL, 1}, /* anything else: TLS, reset, protocol, -errno ... */
};

static const struct status_row *status_row(int status)
{
    size_t i = 0;
    while (status < status_rows[i].lo || status > status_rows[i].hi)
        i++; /* the last row takes whatever is left */
    return &status_rows[i];
}

static const struct error_row *error_row(int err)
{
    size_t i = 0;
    while (error_rows[i].err && error_rows[i].err != err)
        i++;
    return &error_rows[i];
}

void hd_retry_policy_default(struct hd_retry_policy *p)
{
    /* 60 s doubling to a 6 h cap: attempts at ~1m, 2m, 4m, ... 256m, then every 6 h; 16
     * attempts span about 2.9 days, more than the 48 h a receiver may be down for. */
    p->base_ms = 60 * 1000;
    p->cap_ms = 6 * 3600 * 1000ull;
    p->max_attempts = 16;
    p->retry_after_cap_ms = 6 * 3600 * 1000ull;
}

enum hd_outcome hd_policy_classify(int status, int err)
{
    if (err)
        return hd_err_is_transient(err) ? HD_OUT_RETRY : HD_OUT_DEAD;
    return status_row(status)->out;
}

enum hd_host_signal hd_policy_host_signal(int status, int err)
{
    return err ? error_row(err)->sig : status_row(status)->sig;
}

int hd_policy_reached(int status, int err)
{
    return status ? status_row(status)->reached : error_row(err)->reached;
}

uint64_t hd_policy_backoff_ms(const struct hd_retry_policy *p, uint32_t attempts, uint32_t rnd)
{
    uint64_t d = p->base_ms;
    for (uint32_t i = 1; i < attempts && d < p->cap_ms; i++)
        d *= 2;
    if (d > p->cap_ms)
        d = p->cap_ms;
    /* jitter in [-20%, +20%) so that a host's deliveries that failed together spread out */
    int64_t j = (int64_t)(d / 5);
    if (j > 0)
        d = (uint64_t)((int64_t)d - j + (int64_t)(rnd % (uint64_t)(2 * j)));
    return d;
}

int hd_policy_retry_after(const char *v, int64_t now_s, uint64_t cap_ms, uint64_t *delay_ms)
{
    struct tm tm;
    const char *end;
    uint64_t d;

    while (*v == ' ' || *v == '\t')
        v++;
    if (isdigit((unsigned char)*v)) {
        char *e;
        unsigned long long s = strtoull(v, &e, 10);
        while (*e == ' ' || *e == '\t')
            e++;
        if (*e)
            return HD_ERR_INVALID;
        d = s > cap_ms / 1000 ? cap_ms : (uint64_t)s * 1000;
        *delay_ms = d;
        return 0;
    }
    memset(&tm, 0, sizeof(tm));
    end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return HD_ERR_INVALID;
    int64_t t = (int64_t)timegm(&tm);
    d = t <= now_s ? 0 : (uint64_t)(t - now_s) * 1000;
    *delay_ms = d > cap_ms ? cap_ms : d;
    return 0;
}

/* A 400 whose body names the signature is a refused signature (some servers answer 400, not
 * 401, to a scheme they do not verify). */
static int mentions_signature(const uint8_t *body, size_t len)
{
    static const char w[] = "signature";
    for (size_t i = 0; body && i + sizeof(w) - 1 <= len; i++)
        if (strncasecmp((const char *)body + i, w, sizeof(w) - 1) == 0)
            return 1;
    return 0;
}

int hd_policy_local_final(int err)
{
    switch (err) {
    case HD_ERR_NOT_FOUND: /* activity or key record gone */
    case HD_ERR_NO_KEY:    /* the actor has no signing key */
    case HD_ERR_INVALID:   /* damaged record, or a PEM that is not a usable key */
    case HD_ERR_SCHEMA:    /* record of an unknown schema version */
    case HD_ERR_CRYPTO:    /* the crypto library refuses the key */
        return 1;
    default:
        return 0;
    }
}

static void set_error(struct hd_verdict *v, const char *text)
{
    size_t n = strnlen(text, sizeof(v->error) - 1);
    memcpy(v->error, text, n);
    v->error[n] = '\0';
}

void hd_policy_verdict(const struct hd_policy_cfg *cfg, const struct hd_policy_in *in,
                       struct hd_verdict *v)
{
    int status = in->status, follower_gone = 0;
    enum hd_outcome out;
    uint64_t ra = 0;

    memset(v, 0, offsetof(struct hd_verdict, error));
    v->error[0] = '\0';
    if (in->err == HD_ERR_CANCELLED) {
        /* Shutdown: the entry stays queued exactly as it was (no attempt counted, no host
         * signal); the next run sends it again. */
        v->kind = HD_VERDICT_RELEASE;
        return;
    }
    if (in->local || in->err == HD_ERR_CRYPTO) {
        /* Signing failed right before sending, or its key could not be loaded: nothing was
         * sent, and it says nothing about the host. Final when the key is gone or unusable;
         * a store error or a lack of memory passes: the delivery waits, untouched. */
        v->unsent = 1;
        if (in->err == HD_ERR_CRYPTO) {
            v->kind = HD_VERDICT_DEAD;
            set_error(v, "signing failed");
        } else if (hd_policy_local_final(in->err)) {
            v->kind = HD_VERDICT_DEAD;
            set_error(v, hd_strerror(in->err));
        } else {
            v->passing = 1;
            set_error(v, hd_strerror(in->err));
            if (in->local_failing_ms < HD_POLICY_LOCAL_GRACE_MS) {
                v->kind = HD_VERDICT_RELEASE;
                v->retry_ms = HD_POLICY_LOCAL_RETRY_MS;
            } else if (in->attempts + 1 >= cfg->retry->max_attempts) {
                size_t n = strlen(v->error);
                v->kind = HD_VERDICT_DEAD;
                snprintf(v->error + n, sizeof(v->error) - n, " (after %u attempts)",
                         in->attempts + 1);
            } else {
                v->kind = HD_VERDICT_RETRY;
                v->retry_ms = hd_policy_backoff_ms(cfg->retry, in->attempts + 1, in->rnd);
            }
        }
        return;
    }
    if (in->accept_signature) {
        /* The receiver says how it wants to be signed: RFC 9421 from now on (Ed25519 when
         * named and the actor has such a key). */
        v->host_rfc9421 = 1;
        v->host_ed25519 = strstr(in->accept_signature, "ed25519") != NULL;
    }
    /* 401, or 400 naming the signature: one immediate retry with the other scheme. Never on
     * 5xx or timeouts: those say nothing about signatures. */
    if (!in->switched &&
        (status == 401 || (status == 400 && mentions_signature(in->body, in->body_len)))) {
        v->kind = HD_VERDICT_SWITCH;
        v->sig = HD_SIG_NEUTRAL;
        /* With Accept-Signature the receiver said what it wants: RFC 9421 (with Ed25519 if it
         * named it, host_ed25519). Without, try the other scheme. */
        if (in->accept_signature || in->scheme == HD_SCHEME_CAVAGE)
            v->scheme = HD_SCHEME_RFC9421;
        else
            v->scheme = HD_SCHEME_CAVAGE;
        return;
    }
    v->counted = 1;
    out = hd_policy_classify(status, in->err);
    v->sig = hd_policy_host_signal(status, in->err);
    if (in->err)
        set_error(v, hd_strerror(in->err));
    else if (out != HD_OUT_DONE) /* a success keeps no text: no snprintf per delivery */
        snprintf(v->error, sizeof(v->error), "HTTP %d", status);

    /* Retry-After on 429 and 503 applies to the whole host (capped), not just this request. */
    if (in->retry_after && (status == 429 || status == 503) &&
        hd_policy_retry_after(in->retry_after, in->now_s, cfg->retry_after_cap_ms, &ra) != 0)
        ra = 0;
    v->pause_ms = ra;
    if (status == 410 && in->shared) {
        v->host_gone = 1;
        set_error(v, "HTTP 410 from a shared inbox: host gone");
    } else if ((status == 404 || status == 410) && !in->shared) {
        snprintf(v->error, sizeof(v->error), "HTTP %d from a personal inbox: follower gone",
                 status);
        follower_gone = 1;
    }
    if (out == HD_OUT_RETRY && in->attempts + 1 >= cfg->retry->max_attempts) {
        size_t n = strlen(v->error);
        out = HD_OUT_DEAD;
        snprintf(v->error + n, sizeof(v->error) - n, " (after %u attempts)", in->attempts + 1);
    }
    v->kind = (enum hd_verdict_kind)out;
    v->host_fail = v->sig == HD_SIG_FAIL || v->sig == HD_SIG_FAIL_SLOW;
    v->follower_gone = (uint8_t)(follower_gone && out == HD_OUT_DEAD);
    v->reached = (uint8_t)(out != HD_OUT_DONE && hd_policy_reached(status, in->err));
    if (out == HD_OUT_DONE) {
        v->scheme_ok = in->scheme == HD_SCHEME_CAVAGE ? 1 : in->ed ? 3 : 2;
    } else if (out == HD_OUT_RETRY) {
        v->retry_ms = hd_policy_backoff_ms(cfg->retry, in->attempts + 1, in->rnd);
        if (ra > v->retry_ms)
            v->retry_ms = ra;
    }
}

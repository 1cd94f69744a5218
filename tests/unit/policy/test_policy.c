/* The classification table (policy.c), row by row: one answer in, one verdict out. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "policy.h"
#include "queue.h"
#include "t.h"

static struct hd_retry_policy rp;
static struct hd_policy_cfg cfg;

static struct hd_policy_in answer(int status, int err)
{
    struct hd_policy_in in;
    memset(&in, 0, sizeof(in));
    in.status = status;
    in.err = err;
    in.scheme = HD_SCHEME_CAVAGE;
    in.now_s = 1800000000;
    in.rnd = 12345;
    return in;
}

static struct hd_verdict verdict_of(const struct hd_policy_in *in)
{
    struct hd_verdict v;
    memset(&v, 0xa5, sizeof(v)); /* every field must be written */
    hd_policy_verdict(&cfg, in, &v);
    return v;
}

/* One row: an answer to a personal (or shared) inbox on its first attempt, and the parts of
 * the verdict every row has. */
struct row {
    int status, err, shared;
    enum hd_verdict_kind kind;
    enum hd_host_signal sig;
    int reached, host_fail, follower_gone, host_gone;
    const char *error;
};

static const struct row rows[] = {
    /* 2xx: done, no text */
    {200, 0, 0, HD_VERDICT_DONE, HD_SIG_OK, 0, 0, 0, 0, ""},
    {202, 0, 1, HD_VERDICT_DONE, HD_SIG_OK, 0, 0, 0, 0, ""},
    {299, 0, 0, HD_VERDICT_DONE, HD_SIG_OK, 0, 0, 0, 0, ""},
    /* retried 4xx: say nothing of the host, never reached */
    {408, 0, 0, HD_VERDICT_RETRY, HD_SIG_NEUTRAL, 0, 0, 0, 0, "HTTP 408"},
    {425, 0, 0, HD_VERDICT_RETRY, HD_SIG_NEUTRAL, 0, 0, 0, 0, "HTTP 425"},
    {429, 0, 0, HD_VERDICT_RETRY, HD_SIG_SLOW_DOWN, 0, 0, 0, 0, "HTTP 429"},
    /* 5xx: retried, counts for the breaker, may have been processed */
    {500, 0, 0, HD_VERDICT_RETRY, HD_SIG_FAIL, 1, 1, 0, 0, "HTTP 500"},
    {502, 0, 1, HD_VERDICT_RETRY, HD_SIG_FAIL, 1, 1, 0, 0, "HTTP 502"},
    {503, 0, 0, HD_VERDICT_RETRY, HD_SIG_FAIL_SLOW, 1, 1, 0, 0, "HTTP 503"},
    {599, 0, 0, HD_VERDICT_RETRY, HD_SIG_FAIL, 1, 1, 0, 0, "HTTP 599"},
    /* gone: personal inbox -> follower, shared inbox -> 410 is the host */
    {404, 0, 0, HD_VERDICT_DEAD, HD_SIG_NEUTRAL, 0, 0, 1, 0,
     "HTTP 404 from a personal inbox: follower gone"},
    {410, 0, 0, HD_VERDICT_DEAD, HD_SIG_NEUTRAL, 0, 0, 1, 0,
     "HTTP 410 from a personal inbox: follower gone"},
    {404, 0, 1, HD_VERDICT_DEAD, HD_SIG_NEUTRAL, 0, 0, 0, 0, "HTTP 404"},
    {410, 0, 1, HD_VERDICT_DEAD, HD_SIG_NEUTRAL, 0, 0, 0, 1,
     "HTTP 410 from a shared inbox: host gone"},
    /* other 4xx, 1xx, 3xx: final */
    {400, 0, 0, HD_VERDICT_DEAD, HD_SIG_NEUTRAL, 0, 0, 0, 0, "HTTP 400"},
    {403, 0, 0, HD_VERDICT_DEAD, HD_SIG_NEUTRAL, 0, 0, 0, 0, "HTTP 403"},
    {422, 0, 1, HD_VERDICT_DEAD, HD_SIG_NEUTRAL, 0, 0, 0, 0, "HTTP 422"},
    {301, 0, 0, HD_VERDICT_DEAD, HD_SIG_NEUTRAL, 0, 0, 0, 0, "HTTP 301"},
    {308, 0, 0, HD_VERDICT_DEAD, HD_SIG_NEUTRAL, 0, 0, 0, 0, "HTTP 308"},
    {101, 0, 0, HD_VERDICT_DEAD, HD_SIG_NEUTRAL, 0, 0, 0, 0, "HTTP 101"},
    /* transport errors that never got there */
    {0, HD_ERR_DNS, 0, HD_VERDICT_RETRY, HD_SIG_FAIL, 0, 1, 0, 0, NULL},
    {0, HD_ERR_DNS_NXDOMAIN, 0, HD_VERDICT_RETRY, HD_SIG_FAIL, 0, 1, 0, 0, NULL},
    {0, HD_ERR_CONNECT, 0, HD_VERDICT_RETRY, HD_SIG_FAIL, 0, 1, 0, 0, NULL},
    {0, HD_ERR_TLS_VERIFY, 0, HD_VERDICT_RETRY, HD_SIG_FAIL, 0, 1, 0, 0, NULL},
    {0, HD_ERR_REFUSED_STREAM, 0, HD_VERDICT_RETRY, HD_SIG_FAIL, 0, 1, 0, 0, NULL},
    {0, HD_ERR_TIMEOUT_CONNECT, 0, HD_VERDICT_RETRY, HD_SIG_FAIL_SLOW, 0, 1, 0, 0, NULL},
    {0, HD_ERR_TIMEOUT_TLS, 0, HD_VERDICT_RETRY, HD_SIG_FAIL_SLOW, 0, 1, 0, 0, NULL},
    /* refusals no retry can fix: final, neutral for the host */
    {0, HD_ERR_PRIVATE_ADDR, 0, HD_VERDICT_DEAD, HD_SIG_NEUTRAL, 0, 0, 0, 0, NULL},
    {0, HD_ERR_INVALID, 0, HD_VERDICT_DEAD, HD_SIG_NEUTRAL, 1, 0, 0, 0, NULL},
    /* after the request may have left */
    {0, HD_ERR_TIMEOUT_RESPONSE, 0, HD_VERDICT_RETRY, HD_SIG_FAIL_SLOW, 1, 1, 0, 0, NULL},
    {0, HD_ERR_TLS, 0, HD_VERDICT_RETRY, HD_SIG_FAIL, 1, 1, 0, 0, NULL},
    {0, HD_ERR_RESET, 0, HD_VERDICT_RETRY, HD_SIG_FAIL, 1, 1, 0, 0, NULL},
    {0, HD_ERR_PROTOCOL, 1, HD_VERDICT_RETRY, HD_SIG_FAIL, 1, 1, 0, 0, NULL},
    {0, HD_ERR_TOO_LARGE, 0, HD_VERDICT_RETRY, HD_SIG_FAIL, 1, 1, 0, 0, NULL},
    {0, -ECONNRESET, 0, HD_VERDICT_RETRY, HD_SIG_FAIL, 1, 1, 0, 0, NULL},
};

static void check_rows(void)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *w = &rows[i];
        struct hd_policy_in in = answer(w->status, w->err);
        struct hd_verdict v;

        in.shared = w->shared;
        v = verdict_of(&in);
        fprintf(stderr, "row %zu: status=%d err=%d shared=%d\n", i, w->status, w->err,
                w->shared);
        T_EQ_INT(v.kind, w->kind);
        T_EQ_INT(v.sig, w->sig);
        T_EQ_INT(v.reached, w->reached);
        T_EQ_INT(v.host_fail, w->host_fail);
        T_EQ_INT(v.follower_gone, w->follower_gone);
        T_EQ_INT(v.host_gone, w->host_gone);
        T_EQ_STR(v.error, w->error ? w->error : hd_strerror(w->err));
        T_EQ_INT(v.counted, 1);
        T_EQ_INT(v.unsent, 0);
        T_EQ_INT(v.passing, 0);
        T_EQ_INT(v.pause_ms, 0);
        T_EQ_INT(v.host_rfc9421, 0);
        T_EQ_INT(v.host_ed25519, 0);
        T_EQ_INT(v.scheme_ok, w->kind == HD_VERDICT_DONE ? 1 : 0);
        if (w->kind == HD_VERDICT_RETRY) /* first retry: 60 s +-20% */
            T_OK(v.retry_ms >= 48000 && v.retry_ms < 72000);
        else
            T_EQ_INT(v.retry_ms, 0);
        /* the single-purpose lookups agree with the verdict */
        T_EQ_INT(hd_policy_host_signal(w->status, w->err), w->sig);
        T_EQ_INT(hd_policy_classify(w->status, w->err), (int)w->kind);
    }
}

/* 401 and 400 naming the signature: one switch of scheme, then ordinary outcomes. */
static void check_scheme_switch(void)
{
    struct hd_policy_in in = answer(401, 0);
    struct hd_verdict v = verdict_of(&in);
    static const char sigbody[] = "{\"error\":\"Verification failed: bad Signature header\"}";
    static const char otherbody[] = "{\"error\":\"Validation failed: Text can't be blank\"}";

    T_EQ_INT(v.kind, HD_VERDICT_SWITCH);
    T_EQ_INT(v.scheme, HD_SCHEME_RFC9421);
    T_EQ_INT(v.sig, HD_SIG_NEUTRAL);
    T_EQ_INT(v.counted, 0);
    T_EQ_INT(v.pause_ms, 0);
    T_EQ_INT(v.reached, 0);
    T_EQ_STR(v.error, "");
    in.scheme = HD_SCHEME_RFC9421;
    v = verdict_of(&in);
    T_EQ_INT(v.kind, HD_VERDICT_SWITCH);
    T_EQ_INT(v.scheme, HD_SCHEME_CAVAGE);
    /* Accept-Signature: RFC 9421 whatever was tried, and the host learns it */
    in.accept_signature = "sig1=(\"@method\");alg=\"ed25519\"";
    v = verdict_of(&in);
    T_EQ_INT(v.kind, HD_VERDICT_SWITCH);
    T_EQ_INT(v.scheme, HD_SCHEME_RFC9421);
    T_EQ_INT(v.host_rfc9421, 1);
    T_EQ_INT(v.host_ed25519, 1);
    in.accept_signature = "sig1=(\"@method\");alg=\"rsa-v1_5-sha256\"";
    v = verdict_of(&in);
    T_EQ_INT(v.host_rfc9421, 1);
    T_EQ_INT(v.host_ed25519, 0);
    /* the second 401 is an ordinary retried answer (Accept-Signature still learnt) */
    in.switched = 1;
    v = verdict_of(&in);
    T_EQ_INT(v.kind, HD_VERDICT_RETRY);
    T_EQ_INT(v.sig, HD_SIG_NEUTRAL);
    T_EQ_INT(v.reached, 0);
    T_EQ_INT(v.host_rfc9421, 1);
    T_EQ_STR(v.error, "HTTP 401");
    /* 400 switches only when its body names the signature */
    in = answer(400, 0);
    in.body = (const uint8_t *)sigbody;
    in.body_len = sizeof(sigbody) - 1;
    v = verdict_of(&in);
    T_EQ_INT(v.kind, HD_VERDICT_SWITCH);
    in.body_len = 20; /* "signature" beyond what was received */
    v = verdict_of(&in);
    T_EQ_INT(v.kind, HD_VERDICT_DEAD);
    in.body = (const uint8_t *)otherbody;
    in.body_len = sizeof(otherbody) - 1;
    v = verdict_of(&in);
    T_EQ_INT(v.kind, HD_VERDICT_DEAD);
    in.body = (const uint8_t *)sigbody;
    in.body_len = sizeof(sigbody) - 1;
    in.switched = 1;
    v = verdict_of(&in);
    T_EQ_INT(v.kind, HD_VERDICT_DEAD);
    T_EQ_STR(v.error, "HTTP 400");
    /* never on 5xx or timeouts */
    in = answer(500, 0);
    in.body = (const uint8_t *)sigbody;
    in.body_len = sizeof(sigbody) - 1;
    T_EQ_INT(verdict_of(&in).kind, HD_VERDICT_RETRY);
    in = answer(0, HD_ERR_TIMEOUT_RESPONSE);
    T_EQ_INT(verdict_of(&in).kind, HD_VERDICT_RETRY);
    /* Accept-Signature on a success still switches the host */
    in = answer(202, 0);
    in.accept_signature = "sig1=();alg=\"ed25519\"";
    v = verdict_of(&in);
    T_EQ_INT(v.kind, HD_VERDICT_DONE);
    T_EQ_INT(v.host_rfc9421, 1);
    T_EQ_INT(v.host_ed25519, 1);
}

/* The scheme that worked, as the store keeps it. */
static void check_scheme_ok(void)
{
    struct hd_policy_in in = answer(202, 0);

    T_EQ_INT(verdict_of(&in).scheme_ok, 1);
    in.ed = 1; /* an Ed25519 flag left from an earlier RFC 9421 try: cavage is cavage */
    T_EQ_INT(verdict_of(&in).scheme_ok, 1);
    in.scheme = HD_SCHEME_RFC9421;
    T_EQ_INT(verdict_of(&in).scheme_ok, 3);
    in.ed = 0;
    T_EQ_INT(verdict_of(&in).scheme_ok, 2);
}

static void check_local(void)
{
    struct hd_policy_in in = answer(0, HD_ERR_CANCELLED);
    struct hd_verdict v = verdict_of(&in);

    /* shutdown: released as it was, nothing counted, nothing said to the host */
    T_EQ_INT(v.kind, HD_VERDICT_RELEASE);
    T_EQ_INT(v.sig, 0);
    T_EQ_INT(v.counted, 0);
    T_EQ_INT(v.reached, 0);
    T_EQ_INT(v.host_fail, 0);
    T_EQ_INT(v.unsent, 0);
    T_EQ_INT(v.retry_ms, 0);
    /* signing failed: nothing was sent; final, without a host signal */
    in = answer(0, HD_ERR_CRYPTO);
    in.attempts = 3;
    in.local = 1;
    v = verdict_of(&in);
    T_EQ_INT(v.kind, HD_VERDICT_DEAD);
    T_EQ_STR(v.error, "signing failed");
    T_EQ_INT(v.sig, 0);
    T_EQ_INT(v.counted, 0);
    T_EQ_INT(v.unsent, 1);
    T_EQ_INT(v.reached, 0);
    T_EQ_INT(v.host_fail, 0);
    T_EQ_INT(v.retry_ms, 0);
    /* the key could not be loaded right before sending: gone (final) or not now (released,
     * looked at again in a second, no attempt counted) */
    for (int i = 0; i < 4; i++) {
        static const int final_errs[] = {HD_ERR_NO_KEY, HD_ERR_NOT_FOUND, HD_ERR_INVALID,
                                         HD_ERR_SCHEMA};
        in = answer(0, final_errs[i]);
        in.local = 1;
        v = verdict_of(&in);
        T_EQ_INT(v.kind, HD_VERDICT_DEAD);
        T_EQ_STR(v.error, hd_strerror(final_errs[i]));
        T_EQ_INT(v.sig, 0);
        T_EQ_INT(v.counted, 0);
        T_EQ_INT(v.unsent, 1);
        T_EQ_INT(v.reached, 0);
        T_EQ_INT(hd_policy_local_final(final_errs[i]), 1);
    }
    for (int i = 0; i < 2; i++) {
        static const int passing[] = {HD_ERR_STORE, -ENOMEM};
        in = answer(0, passing[i]);
        in.local = 1;
        in.attempts = rp.max_attempts - 1; /* not an attempt: the budget is not touched */
        in.local_failing_ms = HD_POLICY_LOCAL_GRACE_MS - 1;
        v = verdict_of(&in);
        T_EQ_INT(v.kind, HD_VERDICT_RELEASE);
        T_EQ_INT(v.passing, 1);
        T_EQ_INT(v.retry_ms, HD_POLICY_LOCAL_RETRY_MS);
        T_EQ_INT(v.sig, 0);
        T_EQ_INT(v.counted, 0);
        T_EQ_INT(v.unsent, 1);
        T_EQ_INT(v.reached, 0);
        T_EQ_INT(v.host_fail, 0);
        T_EQ_STR(v.error, hd_strerror(passing[i]));
        T_EQ_INT(hd_policy_local_final(passing[i]), 0);
    }
    /* local failures that last: each counts as an attempt, and the last one is final */
    in = answer(0, HD_ERR_STORE);
    in.local = 1;
    in.local_failing_ms = HD_POLICY_LOCAL_GRACE_MS;
    in.attempts = 2;
    v = verdict_of(&in);
    T_EQ_INT(v.kind, HD_VERDICT_RETRY);
    T_EQ_INT(v.passing, 1);
    T_OK(v.retry_ms >= 192000 && v.retry_ms < 288000); /* backoff after 3 attempts */
    T_EQ_INT(v.sig, 0);
    T_EQ_INT(v.counted, 0);
    T_EQ_INT(v.reached, 0);
    in.attempts = rp.max_attempts - 1;
    v = verdict_of(&in);
    T_EQ_INT(v.kind, HD_VERDICT_DEAD);
    T_EQ_INT(v.passing, 1);
    {
        char want[HD_ERRTEXT_MAX];
        snprintf(want, sizeof(want), "%s (after 16 attempts)", hd_strerror(HD_ERR_STORE));
        T_EQ_STR(v.error, want);
    }
    /* the same codes from the transport are ordinary transport failures */
    in = answer(0, -ENOMEM);
    v = verdict_of(&in);
    T_EQ_INT(v.kind, HD_VERDICT_RETRY);
    T_EQ_INT(v.unsent, 0);
    T_EQ_INT(v.counted, 1);
}

static void check_retry_after(void)
{
    struct hd_policy_in in = answer(429, 0);
    struct hd_verdict v;
    char date[64];
    time_t t = (time_t)in.now_s + 90;
    struct tm tm;

    in.retry_after = "120";
    v = verdict_of(&in);
    T_EQ_INT(v.kind, HD_VERDICT_RETRY);
    T_EQ_INT(v.pause_ms, 120000);
    T_EQ_INT(v.retry_ms, 120000); /* longer than the backoff: wins */
    in.retry_after = "1";
    v = verdict_of(&in);
    T_EQ_INT(v.pause_ms, 1000);
    T_OK(v.retry_ms >= 48000 && v.retry_ms < 72000); /* the backoff wins */
    in.retry_after = "999999999"; /* capped */
    v = verdict_of(&in);
    T_EQ_INT(v.pause_ms, cfg.retry_after_cap_ms);
    in.retry_after = "soon";
    T_EQ_INT(verdict_of(&in).pause_ms, 0);
    /* an HTTP-date, relative to the caller's clock, on 503 */
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    in = answer(503, 0);
    in.retry_after = date;
    v = verdict_of(&in);
    T_EQ_INT(v.pause_ms, 90000);
    T_EQ_INT(v.retry_ms, 90000);
    /* only 429 and 503 pause the host */
    in.status = 500;
    T_EQ_INT(verdict_of(&in).pause_ms, 0);
    in.status = 202;
    T_EQ_INT(verdict_of(&in).pause_ms, 0);
    /* a 429 on the last attempt still pauses the host, and is final */
    in = answer(429, 0);
    in.retry_after = "30";
    in.attempts = rp.max_attempts - 1;
    v = verdict_of(&in);
    T_EQ_INT(v.kind, HD_VERDICT_DEAD);
    T_EQ_INT(v.pause_ms, 30000);
}

static void check_max_attempts(void)
{
    struct hd_policy_in in = answer(503, 0);
    struct hd_verdict v;

    in.attempts = rp.max_attempts - 2; /* this one is number max - 1: retried */
    v = verdict_of(&in);
    T_EQ_INT(v.kind, HD_VERDICT_RETRY);
    /* 60 s doubling, capped at 6 h (14 failed attempts: 60 s * 2^13 > 6 h) */
    T_OK(v.retry_ms >= rp.cap_ms / 5 * 4 && v.retry_ms < rp.cap_ms / 5 * 6);
    in.attempts = rp.max_attempts - 1;
    v = verdict_of(&in);
    T_EQ_INT(v.kind, HD_VERDICT_DEAD);
    T_EQ_STR(v.error, "HTTP 503 (after 16 attempts)");
    T_EQ_INT(v.reached, 1);
    T_EQ_INT(v.host_fail, 1);
    T_EQ_INT(v.sig, HD_SIG_FAIL_SLOW);
    T_EQ_INT(v.retry_ms, 0);
    in = answer(0, HD_ERR_CONNECT);
    in.attempts = rp.max_attempts;
    v = verdict_of(&in);
    T_EQ_INT(v.kind, HD_VERDICT_DEAD);
    T_EQ_INT(v.reached, 0);
    {
        char want[HD_ERRTEXT_MAX];
        snprintf(want, sizeof(want), "%s (after 17 attempts)", hd_strerror(HD_ERR_CONNECT));
        T_EQ_STR(v.error, want);
    }
    /* a final answer stays what it is */
    in = answer(404, 0);
    in.attempts = rp.max_attempts - 1;
    v = verdict_of(&in);
    T_EQ_INT(v.follower_gone, 1);
    T_EQ_STR(v.error, "HTTP 404 from a personal inbox: follower gone");
    /* a success on the last attempt is a success */
    in = answer(200, 0);
    in.attempts = rp.max_attempts - 1;
    T_EQ_INT(verdict_of(&in).kind, HD_VERDICT_DONE);
}

static void check_backoff(void)
{
    struct hd_retry_policy p = rp;
    uint64_t d;

    T_EQ_INT(hd_policy_backoff_ms(&p, 1, 0), 48000);
    d = hd_policy_backoff_ms(&p, 3, 7);
    T_OK(d >= 192000 && d < 288000);
    T_EQ_INT(hd_policy_backoff_ms(&p, 40, 0), p.cap_ms - p.cap_ms / 5);
    p.base_ms = 0;
    T_EQ_INT(hd_policy_backoff_ms(&p, 5, 99), 0);
}

int main(void)
{
    hd_retry_policy_default(&rp);
    cfg.retry = &rp;
    cfg.retry_after_cap_ms = 6 * 3600 * 1000ull;

    check_rows();
    check_scheme_switch();
    check_scheme_ok();
    check_local();
    check_retry_after();
    check_max_attempts();
    check_backoff();
    T_DONE();
}

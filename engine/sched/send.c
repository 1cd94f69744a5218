/* Sending a delivery: dispatch (the activity, the domain rules, ordering), the request's
 * headers, the signature made right before the request is written on a connection
 * (prepare), and the hand-off to the HTTP client. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "hostpol.h"
#include "keytype.h"
#include "metrics.h"
#include "rules.h"
#include "sched_impl.h"
#include "sign.h"

/* The Date header (one-second resolution), formatted once per second rather than per request. */
static void date_now(struct sthread *th, char *out, size_t cap)
{
    time_t t = time(NULL);
    size_t n;

    if (t != th->date_t) {
        hd_http_date(t, th->date_s, sizeof(th->date_s));
        th->date_t = t;
    }
    n = strlen(th->date_s);
    if (n >= cap)
        n = cap ? cap - 1 : 0;
    if (cap) {
        memcpy(out, th->date_s, n);
        out[n] = 0;
    }
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Signing time: wall time for the ops histogram (when metrics are kept); thread CPU time of
 * one signature in SIGN_TIMED_EVERY for the run summary. The thread CPU clock is a system
 * call (about 1.3 us here, a fifteenth of an Ed25519 signature), and part of each read falls
 * inside the interval it measures: the smallest of a few back-to-back pairs, read once per
 * thread, is taken off every sample. */
#define SIGN_TIMED_EVERY 16u

static uint64_t clock_pair_ns(void)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 8; i++) {
        uint64_t a = thread_cpu_ns(), b = thread_cpu_ns();
        if (b - a < best)
            best = b - a;
    }
    return best;
}

struct sign_t {
    uint64_t wall_us, cpu_ns;
};

/* A signature header longer than the delivery's own room (HD_ERR_FULL): d's buffers move to
 * the heap and its headers follow them; the caller signs again. Returns 1 to sign again, 0
 * when it was already there (the header does not fit at all). */
static int sig_grow(struct sdel *d, int rfc9421)
{
    if (d->sig_heap || hd_sched_sig_bufs(d, rfc9421, 1) != 0)
        return 0;
    for (size_t i = 0; i < sizeof(d->hdrs) / sizeof(d->hdrs[0]) && d->hdrs[i].name; i++) {
        if (strcmp(d->hdrs[i].name, "signature") == 0)
            d->hdrs[i].value = d->sig;
        else if (strcmp(d->hdrs[i].name, "signature-input") == 0)
            d->hdrs[i].value = d->siginput;
    }
    return 1;
}

static struct sign_t sign_begin(struct sthread *th)
{
    struct sign_t t = {th->o->metrics ? hd_sched_mono_us() : 0, 0};
    if (th->signs++ % SIGN_TIMED_EVERY == 0) {
        if (!th->signs_timed)
            th->sign_clock_ns = clock_pair_ns();
        t.cpu_ns = thread_cpu_ns();
    }
    return t;
}

static void sign_end(struct sthread *th, struct sign_t t)
{
    if (t.cpu_ns) {
        uint64_t d = thread_cpu_ns() - t.cpu_ns;
        th->sign_ns += d > th->sign_clock_ns ? d - th->sign_clock_ns : 0;
        th->signs_timed++;
    }
    if (th->o->metrics) /* no clock reads for a histogram nobody keeps */
        hd_metrics_observe(th->o->metrics, th->idx, HD_MH_SIGN, hd_sched_mono_us() - t.wall_us);
}

static int sign_cavage(struct sthread *th, struct sdel *d)
{
    struct hd_sign_header sh[5];
    struct hd_sign_req sr;
    struct sign_t sign_t0;
    int rc;

    sh[0].name = "host";
    sh[0].value = d->url.authority;
    sh[1].name = "date";
    sh[1].value = d->date;
    sh[2].name = "digest";
    sh[2].value = d->act->digest;
    sh[3].name = "content-type";
    sh[3].value = "application/activity+json";
    sr.method = "POST";
    sr.target = d->url.path;
    sr.headers = sh;
    sr.nheaders = 4;
    sr.components = "(request-target) host date digest content-type";
    if (d->csync) { /* FEP-8fcf: the header is covered by the signature */
        sh[4].name = "collection-synchronization";
        sh[4].value = d->csync;
        sr.nheaders = 5;
        sr.components =
            "(request-target) host date digest content-type collection-synchronization";
    }
    rc = hd_sched_act_keys(th, d->act); /* a key changed since the activity was cached */
    if (rc)
        return rc;
    sr.key_id = d->act->key_id;
    rc = hd_sched_key_load(th, sr.key_id);
    if (rc)
        return rc;
    do {
        sign_t0 = sign_begin(th);
        rc = hd_sign_cavage(th->signer, &sr, d->sig, d->sig_cap);
        sign_end(th, sign_t0);
    } while (rc == HD_ERR_FULL && sig_grow(d, 0));
    return rc < 0 ? HD_ERR_CRYPTO : 0;
}

static int sign_rfc9421(struct sthread *th, struct sdel *d)
{
    struct shost *h = d->host;
    struct hd_sign_header sh[4];
    struct hd_sign9421_req r;
    struct sign_t sign_t0;
    int rc;

    sh[0] = (struct hd_sign_header){"content-type", "application/activity+json"};
    sh[1] = (struct hd_sign_header){"content-digest", d->act->cdigest};
    sh[2] = (struct hd_sign_header){"date", d->date};
    memset(&r, 0, sizeof(r));
    r.method = "POST";
    r.scheme = d->url.tls ? "https" : "http";
    r.authority = d->url.authority;
    r.target = d->url.path;
    r.headers = sh;
    r.nheaders = 3;
    r.components = "\"@method\" \"@target-uri\" \"content-type\" \"content-digest\" \"date\"";
    if (d->csync) { /* FEP-8fcf: the header is covered by the signature */
        sh[3] = (struct hd_sign_header){"collection-synchronization", d->csync};
        r.nheaders = 4;
        r.components = "\"@method\" \"@target-uri\" \"content-type\" \"content-digest\" "
                       "\"date\" \"collection-synchronization\"";
    }
    rc = hd_sched_act_keys(th, d->act); /* a key changed since the activity was cached */
    if (rc)
        return rc;
    r.key_id = d->act->key_id;
    r.created = (int64_t)time(NULL);
    r.expires = -1;
    r.label = "sig1";
    d->ed = d->act->ed_key_id && h->prefer_ed;
    if (d->ed) {
        rc = hd_sched_key_load(th, d->act->ed_key_id);
        if (rc && rc != HD_ERR_NO_KEY)
            return rc;
        d->ed = rc == 0; /* an Ed25519 key gone since: the primary key serves */
    }
    if (d->ed) {
        r.key_id = d->act->ed_key_id;
        r.alg = "ed25519";
    } else {
        /* The primary key: RSA, or Ed25519 for an actor that has no RSA key. */
        int kt = 0;
        unsigned kb = 0;
        rc = hd_sched_key_load(th, d->act->key_id);
        if (rc)
            return rc;
        hd_signer_key_info(th->signer, d->act->key_id, &kt, &kb);
        d->ed = kt == HD_KEY_ED25519;
        r.alg = d->ed ? "ed25519" : "rsa-v1_5-sha256";
    }
    do {
        sign_t0 = sign_begin(th);
        rc = hd_sign_rfc9421(th->signer, &r, d->siginput, d->siginput_cap, d->sig, d->sig_cap);
        sign_end(th, sign_t0);
    } while (rc == HD_ERR_FULL && sig_grow(d, 1));
    return rc < 0 ? HD_ERR_CRYPTO : 0;
}

/* hd_http_req.prepare: the request is about to be written on a connection. Dated and signed
 * now, so the Date is that of the sending and nothing is signed for a host that fails
 * before (refused connection or TLS, dead, hung in set-up). A failure here (no usable key,
 * signing failed, the key could not be read again) means nothing was sent: d->local tells
 * the classification so. */
static int prepare_request(void *user_data)
{
    struct sdel *d = user_data;
    struct sthread *th = d->host->th;
    int rc;

    if (th->o->host_gate && !th->o->host_gate(th->o->host_gate_ud, d->host->name, 1)) {
        d->local = 1; /* fenced: this node no longer owns the host's partition; nothing sent */
        return HD_ERR_INVALID;
    }
    date_now(th, d->date, sizeof(d->date));
    rc = d->scheme == HD_SCHEME_RFC9421 ? sign_rfc9421(th, d) : sign_cavage(th, d);
    d->local = rc != 0;
    if (rc == 0)
        d->host->local_fail_since = 0; /* a request goes out: local failures are over */
    return rc;
}

static int submit(struct sthread *th, struct sdel *d, size_t nhdrs)
{
    struct shost *h = d->host;
    struct hd_http_req req;
    int rc;

    memset(&req, 0, sizeof(req));
    req.tls = d->url.tls;
    req.host = d->url.host;
    req.port = d->url.port;
    req.authority = d->url.authority;
    req.method = "POST";
    req.path = d->url.path;
    req.headers = d->hdrs;
    req.nheaders = nhdrs;
    req.body = (const uint8_t *)d->act->body;
    req.body_len = d->act->body_len;
    req.on_done = hd_sched_on_response;
    req.user_data = d;
    req.prepare = prepare_request;
    d->start_ms = hd_loop_now_ms(th->loop);
    rc = hd_http_submit(th->http, &req);
    if (rc)
        return hd_sched_ack(th, d, HD_ACK_RETRY, 0, hd_wall_ms() + th->o->retry.base_ms,
                            hd_strerror(rc))
                   ? 0
                   : -ENOMEM;
    hd_hostpol_sent(&h->pol, d->start_ms);
    if (!h->inflight)
        hd_sched_slot_take(th, h, d->start_ms);
    h->inflight++;
    th->inflight++;
    atomic_fetch_add(&th->n_inflight, 1);
    atomic_fetch_add(&th->n_attempts, 1);
    hd_metrics_gauge_add(th->o->metrics, th->idx, HD_MG_IN_FLIGHT, 1); /* ops */
    hd_metrics_add(th->o->metrics, th->idx, HD_MC_ATTEMPTS, 1);
    hd_mhost_inflight_add(h->mh, 1);
    return 0;
}

/* RFC 9421: Ed25519 when the actor has such a key and the host asked for it (or accepts only
 * RFC 9421 and we have nothing better), else rsa-v1_5-sha256 with the RSA key. */
static int dispatch_rfc9421(struct sthread *th, struct sdel *d)
{
    d->date[0] = 0;
    if (hd_sched_sig_bufs(d, 1, d->sig_heap != NULL) != 0)
        return -ENOMEM;
    d->hdrs[0] = (struct hd_http_header){"content-type", "application/activity+json"};
    d->hdrs[1] = (struct hd_http_header){"date", d->date};
    d->hdrs[2] = (struct hd_http_header){"content-digest", d->act->cdigest};
    d->hdrs[3] = (struct hd_http_header){"user-agent", th->o->user_agent};
    d->hdrs[4] = (struct hd_http_header){"signature-input", d->siginput};
    d->hdrs[5] = (struct hd_http_header){"signature", d->sig};
    if (d->csync) {
        d->hdrs[6] = (struct hd_http_header){"collection-synchronization", d->csync};
        return submit(th, d, 7);
    }
    return submit(th, d, 6);
}

/* Sends d, or settles it without sending (a final failure, refused by the rules, cancelled,
 * held back behind the activity it must not overtake). Returns 0 when d was consumed, or an
 * error (a store read failed, no memory) with d untouched: the caller gives it back. */
int hd_sched_dispatch(struct sthread *th, struct sdel *d)
{
    struct shost *h = d->host;
    int err = 0, rc;

    if (!d->act) { /* set already when re-sent with the other scheme */
        d->act = hd_sched_act_get(th, d->seq, &err);
        if (!d->act) {
            if (!hd_policy_local_final(err))
                return err; /* a store error or no memory: nothing is decided */
            /* Activity body gone or actor without a usable key: final for this delivery. */
            return hd_sched_ack(th, d, HD_ACK_DEAD, 0, 0, hd_strerror(err)) ? 0 : -ENOMEM;
        }
        d->act->refs++;
    }
    if (th->o->host_gate && !th->o->host_gate(th->o->host_gate_ud, h->name, 0))
        return hd_sched_ack(th, d, HD_ACK_DROP, 0, 0, "partition owned by another node") ? 0
                                                                                          : -ENOMEM;
    if (th->rules && !hd_rules_allows(th->rules, h->name))
        return hd_sched_ack(th, d, HD_ACK_DROP, 0, 0, "refused by the domain rules") ? 0 : -ENOMEM;
    rc = hd_sched_order(th, d);
    if (rc)
        return rc < 0 ? rc : 0;
    if (!d->switched)
        d->scheme = h->scheme;
    rc = hd_sched_csync_del(th, d);
    if (rc)
        return rc;
    if (d->scheme == HD_SCHEME_RFC9421)
        return dispatch_rfc9421(th, d);
    /* Signed when the request goes out on a connection (prepare): a host that refuses
     * connections or TLS costs no signatures. */
    d->date[0] = 0; /* dated with the signature, in prepare_request */
    if (hd_sched_sig_bufs(d, 0, d->sig_heap != NULL) != 0)
        return -ENOMEM;
    d->hdrs[0] = (struct hd_http_header){"content-type", "application/activity+json"};
    d->hdrs[1] = (struct hd_http_header){"date", d->date};
    d->hdrs[2] = (struct hd_http_header){"digest", d->act->digest};
    d->hdrs[3] = (struct hd_http_header){"user-agent", th->o->user_agent};
    d->hdrs[4] = (struct hd_http_header){"signature", d->sig};
    if (d->csync) {
        d->hdrs[5] = (struct hd_http_header){"collection-synchronization", d->csync};
        return submit(th, d, 6);
    }
    return submit(th, d, 5);
}

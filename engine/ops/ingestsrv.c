/* The local ingest endpoint (see ingestsrv.h): the routes, the token, backpressure and
 * drain, and the read-only views, over the HTTP server in endpoint.c. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "endpoint.h"
#include "err.h"
#include "ingestsrv.h"
#include "ingestsrv_v1.h"
#include "log.h"
#include "metrics_render.h"
#include "queue.h"
#include "web.h"

#define QUEUE_DEPTH_TTL_MS 250 /* how long a computed queue depth is reused */
#define RATES_MAX 600          /* seconds of delivery rates kept for GET /v1/rates */

struct hd_ingestsrv {
    struct hd_endpoint *ep;
    struct hd_store *st;
    struct hd_metrics *metrics;
    struct hd_ingest_publish pub; /* cluster mode: envelopes go to JetStream */
    void (*on_enqueued)(void *user_data); /* after new envelopes were committed */
    void *on_enqueued_ud;
    atomic_int draining;
    _Atomic uint64_t max_queued;
    atomic_uint retry_after_s;
    char *token;
    size_t token_len;
    /* Server thread only: the cached count of queued deliveries. */
    uint64_t depth, depth_at_ms;
    int depth_valid;
    /* Server thread only: deliveries done and failed per second, sampled once a second (a
     * ring of RATES_MAX; rate_i is the next slot), and the counters at the last sample. */
    float rate_done[RATES_MAX], rate_failed[RATES_MAX];
    size_t rate_i, rate_n;
    uint64_t last_done, last_failed, last_tick_ms;
};

int hd_ingestsrv_token_eq(const char *given, size_t given_len, const char *want, size_t want_len)
{
    /* Touch every byte of want whatever the input, so timing reveals neither the length of
     * a matching prefix nor (beyond the loop count) anything about the token. */
    volatile unsigned char acc = (unsigned char)(given_len != want_len);
    for (size_t i = 0; i < want_len; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        acc |= (unsigned char)(g ^ (unsigned char)want[i]);
    }
    return acc == 0;
}

int hd_ingestsrv_read_token(const char *path, char **token)
{
    char buf[HD_INGESTSRV_TOKEN_MAX + 2];
    FILE *f = fopen(path, "r");
    size_t n;
    char *t;

    if (!f)
        return -errno;
    if (!fgets(buf, sizeof(buf), f)) {
        fclose(f);
        return HD_ERR_INVALID;
    }
    fclose(f);
    n = strlen(buf);
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        n--;
    buf[n] = 0;
    if (n == 0 || n > HD_INGESTSRV_TOKEN_MAX)
        return HD_ERR_INVALID;
    t = strdup(buf);
    memset(buf, 0, sizeof(buf));
    if (!t)
        return -ENOMEM;
    *token = t;
    return 0;
}

/* ---------------------------------------------------------------- admission */

static int authorized(const struct hd_ingestsrv *s, const struct hd_endpoint_req *r)
{
    if (!r->auth || r->auth_len < 7 || strncasecmp(r->auth, "Bearer ", 7) != 0)
        return 0;
    return hd_ingestsrv_token_eq(r->auth + 7, r->auth_len - 7, s->token, s->token_len);
}

static int writes(const struct hd_endpoint_req *r)
{
    return hd_endpoint_path_is(r, "/v1/activities") || hd_endpoint_path_is(r, "/v1/follows") ||
           hd_endpoint_path_is(r, "/v1/keys");
}

static void refuse_token(struct hd_endpoint_resp *c)
{
    hd_endpoint_respond_error(c, 401, "a valid bearer token is required",
                              "WWW-Authenticate: Bearer realm=\"herald\"\r\n");
}

/* Headers in, body not: a write without the token is refused before its body is buffered. */
static int admit(struct hd_endpoint_resp *c, const struct hd_endpoint_req *r, void *user_data)
{
    struct hd_ingestsrv *s = user_data;

    if (writes(r) && !authorized(s, r)) {
        refuse_token(c);
        return 1;
    }
    return 0;
}

/* Queued deliveries: the sum of the host records, recomputed at most every 250 ms. */
static int queue_depth(struct hd_ingestsrv *s, uint64_t *depth)
{
    uint64_t now = hd_endpoint_now_ms(s->ep);
    struct hd_txn *txn;
    struct hd_host_sum sum;
    int rc;

    if (s->depth_valid && now - s->depth_at_ms < QUEUE_DEPTH_TTL_MS) {
        *depth = s->depth;
        return 0;
    }
    rc = hd_store_begin(s->st, 0, &txn);
    if (rc)
        return rc;
    rc = hd_host_sum(s->st, txn, &sum);
    hd_store_abort(txn);
    if (rc)
        return rc;
    s->depth = sum.queued;
    s->depth_at_ms = now;
    s->depth_valid = 1;
    *depth = sum.queued;
    return 0;
}

static void throttled(struct hd_ingestsrv *s, struct hd_endpoint_resp *c, int status,
                      const char *msg)
{
    char extra[64];
    snprintf(extra, sizeof(extra), "Retry-After: %u\r\n", atomic_load(&s->retry_after_s));
    hd_metrics_add(s->metrics, HD_METRICS_SHARDS - 1, HD_MC_INGEST_THROTTLED, 1);
    hd_endpoint_respond_error(c, status, msg, extra);
}

/* May a write be taken now? Returns 1, or 0 with the answer set: 503 while draining, 500
 * when the queue cannot be counted, 429 over the bound (activities only). */
static int accepting(struct hd_ingestsrv *s, struct hd_endpoint_resp *c, int activities)
{
    uint64_t depth, bound = atomic_load(&s->max_queued);
    int rc;

    if (atomic_load(&s->draining)) {
        throttled(s, c, 503, "shutting down; retry later");
        return 0;
    }
    if (!activities)
        return 1;
    rc = queue_depth(s, &depth);
    if (rc) {
        hd_endpoint_respond_error(c, 500, hd_strerror(rc), NULL);
        return 0;
    }
    if (bound && depth >= bound) {
        throttled(s, c, 429, "queue over its bound; retry later");
        return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- views */

static void handle_metrics(struct hd_ingestsrv *s, struct hd_endpoint_resp *c)
{
    char *out;
    size_t len;
    int rc = hd_metrics_render(s->metrics, s->st, &out, &len);
    if (rc) {
        hd_endpoint_respond_error(c, 500, hd_strerror(rc), NULL);
        return;
    }
    hd_endpoint_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", out, len, NULL);
}

static void handle_hosts(struct hd_ingestsrv *s, struct hd_endpoint_resp *c,
                         const struct hd_endpoint_req *r)
{
    const char *q = memchr(r->target, '?', r->target_len);
    size_t limit = 0;
    char *out;
    size_t len;
    int rc;

    if (q) {
        const char *l = memmem(q, r->target_len - (size_t)(q - r->target), "limit=", 6);
        if (l)
            limit = (size_t)strtoul(l + 6, NULL, 10);
    }
    rc = hd_metrics_render_hosts_json(s->metrics, s->st, limit, &out, &len);
    if (rc) {
        hd_endpoint_respond_error(c, 500, hd_strerror(rc), NULL);
        return;
    }
    hd_endpoint_respond(c, 200, "application/json", out, len, NULL);
}

/* Samples the delivery counters once a second for GET /v1/rates. */
static void on_tick(uint64_t now_ms, void *user_data)
{
    struct hd_ingestsrv *s = user_data;
    uint64_t done = hd_metrics_counter(s->metrics, HD_MC_DONE);
    uint64_t failed = hd_metrics_counter(s->metrics, HD_MC_RETRY) +
                      hd_metrics_counter(s->metrics, HD_MC_DEAD);
    double secs = (double)(now_ms - s->last_tick_ms) / 1000.0;

    if (s->last_tick_ms && secs > 0) {
        s->rate_done[s->rate_i] = (float)((double)(done - s->last_done) / secs);
        s->rate_failed[s->rate_i] = (float)((double)(failed - s->last_failed) / secs);
        s->rate_i = (s->rate_i + 1) % RATES_MAX;
        if (s->rate_n < RATES_MAX)
            s->rate_n++;
    }
    s->last_done = done;
    s->last_failed = failed;
    s->last_tick_ms = now_ms;
}

/* GET /v1/rates: deliveries done and failed per second, oldest first, one per second. */
static void handle_rates(struct hd_ingestsrv *s, struct hd_endpoint_resp *c)
{
    json_t *d = json_array(), *f = json_array();

    for (size_t k = 0; d && f && k < s->rate_n; k++) {
        size_t i = (s->rate_i + RATES_MAX - s->rate_n + k) % RATES_MAX;
        json_array_append_new(d, json_real(s->rate_done[i]));
        json_array_append_new(f, json_real(s->rate_failed[i]));
    }
    if (!d || !f) {
        json_decref(d);
        json_decref(f);
        hd_endpoint_respond_error(c, 500, "out of memory", NULL);
        return;
    }
    hd_endpoint_respond_json(c, 200,
                             json_pack("{s:I, s:I, s:I, s:o, s:o}", "now_ms",
                                       (json_int_t)hd_wall_ms(), "interval_s", (json_int_t)1,
                                       "delivered", (json_int_t)s->last_done, "done_per_s", d,
                                       "failed_per_s", f),
                             NULL);
}

/* The dashboard's files and the OpenAPI description (web.h): no data in them, no token. */
static int handle_static(struct hd_endpoint_resp *c, const struct hd_endpoint_req *r)
{
    /* Four lines, each value under 192 bytes: what the h2c answer carries (h2srv.c). */
    static const char headers[] =
        "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
        "Referrer-Policy: no-referrer\r\n"
        "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n";

    for (size_t i = 0; i < hd_web_nassets; i++) {
        const struct hd_web_asset *a = &hd_web_assets[i];
        char *b;
        if (!hd_endpoint_path_is(r, a->path))
            continue;
        b = malloc(a->len ? a->len : 1);
        if (!b) {
            hd_endpoint_respond_error(c, 500, "out of memory", NULL);
            return 1;
        }
        memcpy(b, a->data, a->len);
        hd_endpoint_respond(c, 200, a->ctype, b, a->len, headers);
        return 1;
    }
    return 0;
}

static void handle_health(struct hd_ingestsrv *s, struct hd_endpoint_resp *c)
{
    char *b = strdup(atomic_load(&s->draining) ? "draining\n" : "ok\n");
    hd_endpoint_respond(c, b ? 200 : 500, "text/plain", b, b ? strlen(b) : 0, NULL);
}

/* ---------------------------------------------------------------- routes */

/* POST /v1/keys (import) and DELETE /v1/keys (remove): the token, then the route. Keys add
 * nothing to the queue: neither draining nor the queue bound refuses them. */
static void handle_keys(struct hd_ingestsrv *s, struct hd_endpoint_resp *c,
                        const struct hd_endpoint_req *r)
{
    int del = hd_endpoint_method_is(r, "DELETE");
    if (!del && !hd_endpoint_method_is(r, "POST")) {
        hd_endpoint_respond_error(c, 405, "method not allowed", "Allow: POST, DELETE\r\n");
        return;
    }
    if (!authorized(s, r)) {
        refuse_token(c);
        return;
    }
    if (del)
        hd_ingestsrv_v1_keys_remove(c, r, s->st);
    else
        hd_ingestsrv_v1_keys_import(c, r, s->st);
}

/* POST /v1/activities, POST and DELETE /v1/follows: method, token, admission, then the
 * route (ingestsrv_v1.c). */
static void handle_write(struct hd_ingestsrv *s, struct hd_endpoint_resp *c,
                         const struct hd_endpoint_req *r)
{
    int act = hd_endpoint_path_is(r, "/v1/activities");

    if (hd_endpoint_path_is(r, "/v1/keys")) {
        handle_keys(s, c, r);
        return;
    }
    if (!hd_endpoint_method_is(r, "POST") && (act || !hd_endpoint_method_is(r, "DELETE"))) {
        hd_endpoint_respond_error(c, 405, "method not allowed",
                                  act ? "Allow: POST\r\n" : "Allow: POST, DELETE\r\n");
        return;
    }
    if (!authorized(s, r)) {
        refuse_token(c);
        return;
    }
    if (!accepting(s, c, act))
        return;
    if (!act) {
        hd_ingestsrv_v1_follows(c, r, s->st, hd_endpoint_method_is(r, "DELETE"),
                                s->pub.follow ? &s->pub : NULL);
        return;
    }
    if (hd_ingestsrv_v1_activities(c, r, s->st, s->metrics, s->pub.fn ? &s->pub : NULL)) {
        s->depth_valid = 0; /* the queue grew: count it again next time */
        if (!s->pub.fn && s->on_enqueued)
            s->on_enqueued(s->on_enqueued_ud);
    }
}

/* GET /v1/activities/{id}, POST /v1/activities/{id}/cancel (ingestsrv_v1.c): token
 * required for both (a status names the hosts an activity went to). Returns 1 when this was
 * such a request (answered), 0 when not. */
static int handle_activity(struct hd_ingestsrv *s, struct hd_endpoint_resp *c,
                           const struct hd_endpoint_req *r)
{
    char name[512];
    int cancel = 0, rt = hd_ingestsrv_v1_activity_route(r, name, sizeof(name), &cancel);

    if (rt == 0)
        return 0;
    if (!hd_endpoint_method_is(r, cancel ? "POST" : "GET")) {
        hd_endpoint_respond_error(c, 405, "method not allowed",
                                  cancel ? "Allow: POST\r\n" : "Allow: GET\r\n");
        return 1;
    }
    if (!authorized(s, r)) {
        refuse_token(c);
        return 1;
    }
    if (rt < 0) {
        hd_endpoint_respond_error(c, 400, "malformed activity id in the path", NULL);
        return 1;
    }
    hd_ingestsrv_v1_activity(c, r, s->st, name, cancel);
    if (cancel)
        s->depth_valid = 0; /* the queue shrank */
    return 1;
}

static void on_request(struct hd_endpoint_resp *c, const struct hd_endpoint_req *r,
                       void *user_data)
{
    struct hd_ingestsrv *s = user_data;
    int get = hd_endpoint_method_is(r, "GET");

    if (handle_activity(s, c, r))
        return;

    if (get && hd_endpoint_path_is(r, "/metrics"))
        handle_metrics(s, c);
    else if (get && hd_endpoint_path_is(r, "/v1/hosts") && !authorized(s, r))
        refuse_token(c);
    else if (get && hd_endpoint_path_is(r, "/v1/hosts"))
        handle_hosts(s, c, r);
    else if (get && hd_endpoint_path_is(r, "/v1/rates") && !authorized(s, r))
        refuse_token(c);
    else if (get && hd_endpoint_path_is(r, "/v1/rates"))
        handle_rates(s, c);
    else if (get && hd_endpoint_path_is(r, "/healthz"))
        handle_health(s, c);
    else if (writes(r))
        handle_write(s, c, r);
    else if (get && handle_static(c, r))
        return;
    else
        hd_endpoint_respond_error(c, 404, "not found", NULL);
}

/* ---------------------------------------------------------------- service */

void hd_ingestsrv_set_limits(struct hd_ingestsrv *s, uint64_t max_queued, unsigned retry_after_s)
{
    if (!s)
        return;
    atomic_store(&s->max_queued, max_queued);
    atomic_store(&s->retry_after_s, retry_after_s ? retry_after_s : 5);
}

void hd_ingestsrv_set_draining(struct hd_ingestsrv *s, int draining)
{
    if (s)
        atomic_store(&s->draining, draining ? 1 : 0);
}

/* Over TCP the token is sent as is: say so when the address is not a loopback one. */
static void warn_clear_text(const char *spec)
{
    struct sockaddr_storage ss;
    socklen_t sl;

    if (hd_endpoint_addr(spec, &ss, &sl) == 0 && ss.ss_family == AF_INET &&
        (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) != 127)
        HD_LOG(HD_LOG_WARN, "ingest",
               "msg=\"listening on a non-loopback address: the bearer token travels in "
               "clear text\" listen=%s",
               spec);
}

int hd_ingestsrv_start(struct hd_ingestsrv **out, struct hd_store *st,
                       const struct hd_ingestsrv_opts *o)
{
    struct hd_endpoint_opts eo;
    struct hd_ingestsrv *s;
    int rc;

    if (!o->token || !o->token[0] || o->nlisten == 0 || o->nlisten > HD_INGESTSRV_MAX_LISTEN)
        return HD_ERR_INVALID;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->st = st;
    s->metrics = o->metrics;
    s->pub.fn = o->publish;
    s->on_enqueued = o->on_enqueued;
    s->on_enqueued_ud = o->on_enqueued_ud;
    s->pub.user_data = o->publish_ud;
    s->pub.follow = o->publish_follow;
    atomic_init(&s->draining, 0);
    atomic_init(&s->max_queued, o->max_queued);
    atomic_init(&s->retry_after_s, o->retry_after_s ? o->retry_after_s : 5);
    s->token = strdup(o->token);
    if (!s->token) {
        free(s);
        return -ENOMEM;
    }
    s->token_len = strlen(s->token);
    for (size_t i = 0; i < o->nlisten; i++)
        warn_clear_text(o->listen[i]);
    memset(&eo, 0, sizeof(eo));
    eo.listen = o->listen;
    eo.nlisten = o->nlisten;
    eo.max_body = o->max_body ? o->max_body : 64u << 20;
    eo.idle_timeout_ms = o->idle_timeout_ms ? o->idle_timeout_ms : 60000;
    eo.on_request = on_request;
    eo.admit = admit;
    eo.on_tick = on_tick;
    eo.user_data = s;
    rc = hd_endpoint_start(&s->ep, &eo);
    if (rc) {
        hd_ingestsrv_stop(s);
        return rc;
    }
    *out = s;
    return 0;
}

void hd_ingestsrv_stop(struct hd_ingestsrv *s)
{
    if (!s)
        return;
    hd_endpoint_stop(s->ep);
    if (s->token) {
        memset(s->token, 0, s->token_len);
        free(s->token);
    }
    free(s);
}

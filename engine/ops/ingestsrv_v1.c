/* The /v1 write routes of the ingest endpoint (see ingestsrv_v1.h). */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audit.h"
#include "activity.h"
#include "audience.h"
#include "clock.h"
#include "err.h"
#include "ingest.h"
#include "ingestsrv_v1.h"
#include "keyadd.h"
#include "keys.h"
#include "log.h"

struct line {
    const char *p;
    size_t n;
    size_t lineno;
};

/* Splits body into non-blank lines (or one "line" for a whole application/json body).
 * Returns the count, or -1 past HD_INGESTSRV_V1_MAX_LINES. */
static long split_lines(const char *body, size_t len, int whole, struct line *out)
{
    long n = 0;
    size_t lineno = 0, i = 0;

    if (whole) {
        out[0].p = body;
        out[0].n = len;
        out[0].lineno = 1;
        return len ? 1 : 0;
    }
    while (i < len) {
        const char *nl = memchr(body + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - body) : len, b = i, t = e;
        lineno++;
        while (b < t && isspace((unsigned char)body[b]))
            b++;
        while (t > b && isspace((unsigned char)body[t - 1]))
            t--;
        if (t > b) {
            if (n >= HD_INGESTSRV_V1_MAX_LINES)
                return -1;
            out[n].p = body + b;
            out[n].n = t - b;
            out[n].lineno = lineno;
            n++;
        }
        i = e + 1;
    }
    return n;
}

static int is_json_ctype(const struct hd_endpoint_req *r)
{
    return r->ctype && r->ctype_len >= 16 && strncasecmp(r->ctype, "application/json", 16) == 0 &&
           (r->ctype_len == 16 || r->ctype[16] == ';' || r->ctype[16] == ' ');
}

/* ---------------------------------------------------------------- activities */

/* Ingests every line in one write transaction (each line nested: a refused line changes
 * nothing). Returns 0 with res[] filled and the transaction committed, or the store error
 * that left nothing stored. */
static int store_lines(struct hd_store *st, const struct line *lines, long n,
                       struct hd_ingest_result *res)
{
    struct hd_counters cn;
    struct hd_txn *txn;
    uint64_t now = hd_wall_ms();
    int rc;

    rc = hd_store_begin(st, 1, &txn);
    if (rc)
        return rc;
    rc = hd_counters_get(st, txn, &cn);
    for (long i = 0; rc == 0 && i < n; i++) {
        if (lines[i].n > HD_INGEST_MAX_LINE) {
            res[i].rc = HD_ERR_INVALID;
            snprintf(res[i].why, sizeof(res[i].why), "envelope over %u bytes", HD_INGEST_MAX_LINE);
            continue;
        }
        hd_ingest_envelope(st, txn, &cn, lines[i].p, lines[i].n, now, &res[i]);
        if (res[i].rc == HD_ERR_STORE || res[i].rc == -ENOMEM)
            rc = res[i].rc;
    }
    if (rc == 0)
        rc = hd_counters_put(st, txn, &cn);
    if (rc) {
        hd_store_abort(txn);
        return rc;
    }
    return hd_store_commit(txn); /* durable from here on: only now do we answer */
}

/* The answer: counts and one result per line; counts them in m. Returns the HTTP status. */
static int results_json(const struct line *lines, long n, const struct hd_ingest_result *res,
                        struct hd_metrics *m, json_t **out)
{
    json_t *results = json_array(), *o;
    size_t accepted = 0, dups = 0, refused = 0;

    for (long i = 0; i < n && results; i++) {
        if (res[i].rc == 0) {
            accepted++;
            o = json_pack("{s:I, s:b, s:I, s:I}", "line", (json_int_t)lines[i].lineno, "ok", 1,
                          "seq", (json_int_t)res[i].seq, "deliveries",
                          (json_int_t)res[i].deliveries);
            if (o && res[i].withheld)
                json_object_set_new(o, "withheld", json_true());
        } else if (res[i].rc == HD_ERR_DUPLICATE) {
            dups++;
            o = json_pack("{s:I, s:b, s:b, s:I}", "line", (json_int_t)lines[i].lineno, "ok", 1,
                          "duplicate", 1, "seq", (json_int_t)res[i].seq);
        } else {
            refused++;
            o = json_pack("{s:I, s:b, s:s}", "line", (json_int_t)lines[i].lineno, "ok", 0,
                          "error", res[i].why[0] ? res[i].why : hd_strerror(res[i].rc));
        }
        json_array_append_new(results, o);
    }
    hd_metrics_add(m, HD_METRICS_SHARDS - 1, HD_MC_INGEST_ACCEPTED, accepted);
    hd_metrics_add(m, HD_METRICS_SHARDS - 1, HD_MC_INGEST_DUPLICATE, dups);
    hd_metrics_add(m, HD_METRICS_SHARDS - 1, HD_MC_INGEST_REFUSED, refused);
    *out = json_pack("{s:I, s:I, s:I, s:o}", "accepted", (json_int_t)accepted, "duplicates",
                     (json_int_t)dups, "refused", (json_int_t)refused, "results",
                     results ? results : json_array());
    return accepted ? 202 : refused ? 400 : 200;
}

/* Cluster mode: each line published and acknowledged by JetStream; the first that cannot be
 * published stops the rest (a retry is safe: JetStream de-duplicates on the activity id). */
static int publish_lines(const struct hd_ingest_publish *pub, const struct line *lines, long n,
                         struct hd_ingest_result *res)
{
    for (long i = 0; i < n; i++) {
        memset(&res[i], 0, sizeof(res[i]));
        res[i].rc = pub->fn(pub->user_data, lines[i].p, lines[i].n, &res[i]);
        if (res[i].rc == HD_ERR_CONNECT)
            return HD_ERR_CONNECT;
    }
    return 0;
}

int hd_ingestsrv_v1_activities(struct hd_endpoint_resp *resp, const struct hd_endpoint_req *req,
                               struct hd_store *st, struct hd_metrics *m,
                               const struct hd_ingest_publish *pub)
{
    struct line *lines;
    struct hd_ingest_result *res = NULL;
    json_t *answer;
    long n;
    int rc, status;

    lines = malloc(sizeof(*lines) * HD_INGESTSRV_V1_MAX_LINES);
    if (!lines) {
        hd_endpoint_respond_error(resp, 500, "out of memory", NULL);
        return 0;
    }
    n = split_lines(req->body, req->content_length, is_json_ctype(req), lines);
    if (n <= 0) {
        free(lines);
        if (n < 0)
            hd_endpoint_respond_error(resp, 413, "more than 10000 lines in one request", NULL);
        else
            hd_endpoint_respond_error(resp, 400,
                                      "empty body: expected an envelope or JSON lines", NULL);
        return 0;
    }
    res = calloc((size_t)n, sizeof(*res));
    if (!res) {
        free(lines);
        hd_endpoint_respond_error(resp, 500, "out of memory", NULL);
        return 0;
    }
    rc = pub ? publish_lines(pub, lines, n, res) : store_lines(st, lines, n, res);
    if (rc == HD_ERR_CONNECT) {
        free(lines);
        free(res);
        hd_endpoint_respond_error(resp, 503, "JetStream did not acknowledge; retry (duplicates "
                                             "are recognised)", NULL);
        return 0;
    }
    if (rc) {
        HD_LOG(HD_LOG_ERROR, "ingest", "msg=\"store write failed; nothing accepted\" err=\"%s\"",
               hd_strerror(rc));
        free(lines);
        free(res);
        hd_endpoint_respond_error(resp, 503, "store write failed; nothing was accepted", NULL);
        return 0;
    }
    status = results_json(lines, n, res, m, &answer);
    free(lines);
    free(res);
    hd_endpoint_respond_json(resp, status, answer, NULL);
    return 1;
}

/* ---------------------------------------------------------------- follows */

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Validates every line into b. Returns 0, or sets resp and returns nonzero. */
static int follow_lines(struct hd_endpoint_resp *resp, const struct line *lines, long n,
                        struct hd_follow_batch *b, int remove)
{
    for (long i = 0; i < n; i++) {
        json_error_t jerr;
        json_t *o = json_loadb(lines[i].p, lines[i].n, JSON_REJECT_DUPLICATES, &jerr);
        struct hd_follow f;
        const char *why = NULL;
        char msg[300];
        int rc;

        if (!o || !json_is_object(o)) {
            json_decref(o);
            snprintf(msg, sizeof(msg), "line %zu: not a JSON object", lines[i].lineno);
            hd_endpoint_respond_error(resp, 400, msg, NULL);
            return HD_ERR_INVALID;
        }
        f.actor = jstr(o, "actor");
        f.follower = jstr(o, "follower");
        f.inbox = jstr(o, "inbox");
        f.shared_inbox = jstr(o, "shared_inbox");
        if (!f.actor || !f.follower || (!remove && !f.inbox)) {
            why = remove ? "actor and follower are required"
                         : "actor, follower and inbox are required";
            rc = HD_ERR_INVALID;
        } else {
            rc = hd_follow_batch_add(b, &f, remove, &why);
        }
        json_decref(o);
        if (rc) {
            snprintf(msg, sizeof(msg), "line %zu: %s", lines[i].lineno,
                     why ? why : hd_strerror(rc));
            hd_endpoint_respond_error(resp, rc == HD_ERR_INVALID ? 400 : 500, msg, NULL);
            return rc;
        }
    }
    return 0;
}

/* Cluster mode: publishes the validated lines in order. */
static void follow_publish(struct hd_endpoint_resp *resp, const struct line *lines, long n,
                           const struct hd_ingest_publish *pub, int remove)
{
    char why[256] = "", msg[400];
    long done = 0;
    int rc = 0;

    for (; done < n && rc == 0; done++) {
        json_error_t jerr;
        json_t *o = json_loadb(lines[done].p, lines[done].n, JSON_REJECT_DUPLICATES, &jerr);
        rc = pub->follow(pub->user_data, jstr(o, "actor"), jstr(o, "follower"),
                         remove ? NULL : jstr(o, "inbox"), remove ? NULL : jstr(o, "shared_inbox"),
                         remove, why, sizeof(why));
        json_decref(o);
        if (rc)
            break;
    }
    if (rc) {
        snprintf(msg, sizeof(msg), "line %zu: %s; the %ld line%s before it %s published",
                 lines[done].lineno, why, done, done == 1 ? "" : "s", done == 1 ? "was" : "were");
        hd_endpoint_respond_error(resp, rc == HD_ERR_INVALID ? 400 : 503, msg, NULL);
        return;
    }
    if (remove) {
        char detail[48];
        snprintf(detail, sizeof(detail), "follows=%ld published", n);
        hd_audit(HD_AUDIT_ENDPOINT, "follows_remove", "DELETE /v1/follows", 0, detail);
    }
    hd_endpoint_respond_json(resp, 200, json_pack("{s:I}", "published", (json_int_t)n), NULL);
}

void hd_ingestsrv_v1_follows(struct hd_endpoint_resp *resp, const struct hd_endpoint_req *req,
                             struct hd_store *st, int remove, const struct hd_ingest_publish *pub)
{
    struct hd_follow_batch *b = NULL;
    struct hd_follow_stats fs;
    struct line *lines;
    struct hd_txn *txn;
    long n;
    int rc;

    lines = malloc(sizeof(*lines) * HD_INGESTSRV_V1_MAX_LINES);
    if (!lines || hd_follow_batch_new(&b) != 0) {
        free(lines);
        hd_endpoint_respond_error(resp, 500, "out of memory", NULL);
        return;
    }
    memset(&fs, 0, sizeof(fs));
    n = split_lines(req->body, req->content_length, 0, lines);
    if (n <= 0) {
        hd_endpoint_respond_error(resp, n < 0 ? 413 : 400,
                                  n < 0 ? "more than 10000 lines" : "empty body", NULL);
        goto out;
    }
    if (follow_lines(resp, lines, n, b, remove) != 0)
        goto out;
    if (pub && pub->follow) { /* cluster mode: to the follow stream, which every node applies */
        follow_publish(resp, lines, n, pub, remove);
        goto out;
    }
    rc = hd_store_begin(st, 1, &txn);
    if (!rc) {
        rc = hd_follow_batch_apply(st, txn, b, &fs);
        if (rc)
            hd_store_abort(txn);
        else
            rc = hd_store_commit(txn);
    }
    if (rc) {
        hd_endpoint_respond_error(resp, 503, "store write failed; nothing was applied", NULL);
        goto out;
    }
    if (remove && fs.removed) {
        char detail[48];
        snprintf(detail, sizeof(detail), "follows=%llu", (unsigned long long)fs.removed);
        hd_audit(HD_AUDIT_ENDPOINT, "follows_remove", "DELETE /v1/follows", 0, detail);
    }
    hd_endpoint_respond_json(
        resp, 200,
        json_pack("{s:I, s:I, s:I, s:I, s:I}", "added", (json_int_t)fs.added, "updated",
                  (json_int_t)fs.updated, "unchanged", (json_int_t)fs.unchanged, "removed",
                  (json_int_t)fs.removed, "absent", (json_int_t)fs.absent),
        NULL);
out:
    free(lines);
    hd_follow_batch_free(b);
}

/* ---------------------------------------------------------------- keys */

#define KEY_ERRORS_MAX 1000 /* bad lines listed in one answer; the count covers them all */

struct key_bad {
    json_t *errors;
    size_t base; /* line number of the line being imported, in the body */
};

static void key_bad(size_t lineno, const char *why, void *user_data)
{
    struct key_bad *kb = user_data;
    (void)lineno; /* the importer sees one line at a time: kb->base is its number */
    if (kb->errors && json_array_size(kb->errors) < KEY_ERRORS_MAX)
        json_array_append_new(kb->errors,
                              json_pack("{s:I, s:s}", "line", (json_int_t)kb->base, "error", why));
}

void hd_ingestsrv_v1_keys_import(struct hd_endpoint_resp *resp, const struct hd_endpoint_req *req,
                                 struct hd_store *st)
{
    struct key_bad kb = {json_array(), 0};
    struct hd_key_import_stats s;
    struct hd_key_import *imp = NULL;
    struct line *lines;
    long n;
    int rc;

    lines = malloc(sizeof(*lines) * HD_INGESTSRV_V1_MAX_LINES);
    if (!lines || !kb.errors || hd_key_import_new(st, 0, key_bad, &kb, &imp) != 0) {
        hd_endpoint_respond_error(resp, 500, "out of memory", NULL);
        goto out;
    }
    n = split_lines(req->body, req->content_length, 0, lines);
    if (n <= 0) {
        hd_endpoint_respond_error(resp, n < 0 ? 413 : 400,
                                  n < 0 ? "more than 10000 lines" : "empty body", NULL);
        goto out;
    }
    rc = 0;
    for (long i = 0; rc == 0 && i < n; i++) {
        kb.base = lines[i].lineno;
        rc = hd_key_import_line(imp, lines[i].p, lines[i].n);
    }
    if (rc == 0)
        rc = hd_key_import_finish(imp, &s);
    if (rc) {
        HD_LOG(HD_LOG_ERROR, "ingest", "msg=\"key import stopped\" err=\"%s\"", hd_strerror(rc));
        hd_endpoint_respond_error(resp, 503,
                                  "store write failed; groups committed before it stay", NULL);
        goto out;
    }
    hd_endpoint_respond_json(resp, s.imported || !s.bad ? 200 : 400,
                             json_pack("{s:I, s:I, s:O}", "imported", (json_int_t)s.imported,
                                       "bad", (json_int_t)s.bad, "errors", kb.errors),
                             NULL);
out:
    json_decref(kb.errors);
    hd_key_import_free(imp);
    free(lines);
}

void hd_ingestsrv_v1_keys_remove(struct hd_endpoint_resp *resp, const struct hd_endpoint_req *req,
                                 struct hd_store *st)
{
    json_error_t jerr;
    json_t *o = json_loadb(req->body ? req->body : "", req->content_length, JSON_REJECT_DUPLICATES,
                           &jerr);
    const char *kid = json_string_value(json_object_get(o, "key_id")), *why = NULL;
    uint64_t pending = 0;
    int rc;

    if (!kid || !*kid) {
        hd_endpoint_respond_error(resp, 400, "expected {\"key_id\": \"...\"}", NULL);
        json_decref(o);
        return;
    }
    rc = hd_keys_remove(st, kid, &pending, &why);
    if (rc == 0)
        hd_endpoint_respond_json(resp, 200, json_pack("{s:s}", "removed", kid), NULL);
    else if (rc == HD_ERR_NOT_FOUND)
        hd_endpoint_respond_error(resp, 404, "no such key", NULL);
    else if (rc == HD_ERR_BUSY)
        hd_endpoint_respond_json(resp, 409,
                                 json_pack("{s:s, s:I}", "error", why, "pending",
                                           (json_int_t)pending),
                                 NULL);
    else
        hd_endpoint_respond_error(resp, 503, "store error; nothing was removed", NULL);
    json_decref(o);
}

/* ---------------------------------------------------------------- one activity */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int hd_ingestsrv_v1_activity_route(const struct hd_endpoint_req *r, char *name, size_t cap,
                                   int *cancel)
{
    static const char pfx[] = "/v1/activities/", sfx[] = "/cancel";
    const char *t = r->target, *q = memchr(r->target, '?', r->target_len);
    size_t n = q ? (size_t)(q - t) : r->target_len, o = 0;

    if (n <= sizeof(pfx) - 1 || memcmp(t, pfx, sizeof(pfx) - 1) != 0)
        return 0;
    t += sizeof(pfx) - 1;
    n -= sizeof(pfx) - 1;
    *cancel = n > sizeof(sfx) - 1 && !memcmp(t + n - (sizeof(sfx) - 1), sfx, sizeof(sfx) - 1);
    if (*cancel)
        n -= sizeof(sfx) - 1;
    /* One path segment, percent-decoded: an id URL arrives as https%3A%2F%2F... */
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)t[i];
        if (c == '/')
            return -1;
        if (c == '%') {
            int hi = i + 2 < n ? hexval(t[i + 1]) : -1, lo = i + 2 < n ? hexval(t[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || o + 1 >= cap)
            return -1;
        name[o++] = (char)c;
    }
    name[o] = 0;
    return o ? 1 : -1;
}

void hd_ingestsrv_v1_activity(struct hd_endpoint_resp *resp, const struct hd_endpoint_req *req,
                              struct hd_store *st, const char *name, int cancel)
{
    int rc;

    if (cancel) {
        struct hd_cancel_result cr;
        rc = hd_activity_cancel(st, name, hd_wall_ms(), &cr);
        if (!rc) {
            hd_endpoint_respond_json(resp, 200, hd_activity_cancel_json(&cr), NULL);
            return;
        }
    } else {
        struct hd_act_status as;
        rc = hd_activity_status(st, name, hd_wall_ms(), &as);
        if (!rc) {
            hd_endpoint_respond_json(resp, 200, hd_activity_status_json(&as), NULL);
            return;
        }
    }
    if (rc == HD_ERR_NOT_FOUND)
        hd_endpoint_respond_error(resp, 404, "no such activity", NULL);
    else if (rc == HD_ERR_INVALID)
        hd_endpoint_respond_error(resp, 400, "an activity id URL or sequence number is expected",
                                  NULL);
    else
        hd_endpoint_respond_error(resp, 503, "store failure", NULL);
}

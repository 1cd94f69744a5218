/* The write side of the ingest endpoint (ingestsrv.h), one function per route, each
 * answering from the request body and one write transaction:
 *
 *   POST   /v1/activities   one envelope (Content-Type: application/json) or JSON lines (any
 *                           other type). 202 when at least one activity was accepted, 200
 *                           when every line was a duplicate (with the original seq), 400 when
 *                           none was accepted and some were refused; the body lists one
 *                           result per line. Answered only after the transaction committed,
 *                           so every seq in a 2xx answer is durable.
 *   POST   /v1/follows      JSON lines {"actor","follower","inbox","shared_inbox"}.
 *   DELETE /v1/follows      JSON lines {"actor","follower"}. All lines are validated before
 *                           any is applied; one transaction.
 *   GET    /v1/activities/{id}         one activity's delivery status (activity.h); {id} is
 *                           its id URL, percent-encoded, or its sequence number. 404 when
 *                           there is no such activity.
 *   POST   /v1/activities/{id}/cancel  takedown: every queued delivery of it is cancelled;
 *                           the answer gives cancelled, delivered and in_flight.
 *
 *   POST   /v1/keys         JSON lines {"key_id","actor","pem"} (key import, keyadd.h): 200
 *                           {"imported":N,"bad":N,"errors":[{"line":N,"error":"..."}]} (at
 *                           most 1000 errors listed), 400 when every line was bad.
 *   DELETE /v1/keys         {"key_id":"..."}: 200 {"removed":ID}, 404, or 409
 *                           {"error":"...","pending":N} when the actor's only key is still
 *                           needed by N deliveries (keys.h, hd_keys_remove).
 *
 * The caller has checked the method, the token, draining and the queue bound. */
#ifndef HD_INGESTSRV_V1_H
#define HD_INGESTSRV_V1_H

#include "endpoint.h"
#include "ingest.h"
#include "metrics.h"
#include "store.h"

#define HD_INGESTSRV_V1_MAX_LINES 10000 /* lines in one request body */

/* Cluster mode: where envelopes go instead of the store (hd_ingestsrv_opts.publish). */
struct hd_ingest_publish {
    int (*fn)(void *user_data, const char *line, size_t len, struct hd_ingest_result *res);
    void *user_data;
    /* follows (hd_ingestsrv_opts.publish_follow); NULL: follows go to the store */
    int (*follow)(void *user_data, const char *actor, const char *follower, const char *inbox,
                  const char *shared_inbox, int remove, char *why, size_t why_cap);
};

/* Answers POST /v1/activities into resp and counts the results in m (may be NULL). Returns
 * 1 when the transaction committed (the queue changed), else 0. With pub (cluster mode) each
 * line is published to JetStream instead, and answered once acknowledged. */
int hd_ingestsrv_v1_activities(struct hd_endpoint_resp *resp, const struct hd_endpoint_req *req,
                               struct hd_store *st, struct hd_metrics *m,
                               const struct hd_ingest_publish *pub);

/* Answers POST (remove 0) or DELETE (remove 1) /v1/follows into resp. With pub->follow
 * (cluster mode) every line is validated first, then each is published to the follow stream
 * in order: 200 {"published":N} once all were acknowledged, else 503 {"error"} naming the
 * line and how many before it were published (those apply; the rest were not sent). */
void hd_ingestsrv_v1_follows(struct hd_endpoint_resp *resp, const struct hd_endpoint_req *req,
                             struct hd_store *st, int remove, const struct hd_ingest_publish *pub);

/* Answer POST /v1/keys and DELETE /v1/keys into resp. */
void hd_ingestsrv_v1_keys_import(struct hd_endpoint_resp *resp, const struct hd_endpoint_req *req,
                                 struct hd_store *st);
void hd_ingestsrv_v1_keys_remove(struct hd_endpoint_resp *resp, const struct hd_endpoint_req *req,
                                 struct hd_store *st);

/* Is req's path /v1/activities/{id} or /v1/activities/{id}/cancel? Returns 1 with the
 * percent-decoded id in name (cap bytes) and *cancel set, 0 when the path is another one, or
 * -1 for a malformed id (a '/' in it, a bad escape, longer than cap). */
int hd_ingestsrv_v1_activity_route(const struct hd_endpoint_req *req, char *name, size_t cap,
                                   int *cancel);

/* Answers GET /v1/activities/{id} (cancel 0) or POST /v1/activities/{id}/cancel (cancel 1)
 * into resp for the activity named. */
void hd_ingestsrv_v1_activity(struct hd_endpoint_resp *resp, const struct hd_endpoint_req *req,
                              struct hd_store *st, const char *name, int cancel);

#endif

/* The NATS connection: options (reconnects, credentials, TLS), the stream and the bucket,
 * the producer's publish and the status view. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cluster_impl.h"
#include "err.h"
#include "log.h"

void hd_cluster_opts_default(struct hd_cluster_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->partitions = 256;
    o->replicas = 1;
    o->lease_ms = 15000;
    o->heartbeat_ms = 1000;
    o->max_age_ms = 7ull * 86400000ull;
}

int hd_cluster_node_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0 || n > 64)
        return HD_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return HD_ERR_INVALID;
    }
    return 0;
}

uint32_t hd_cluster_partition(const char *host, size_t host_len, unsigned p)
{
    return p ? hd_store_hash32(host, host_len) % p : 0;
}

static void say(char *why, size_t cap, const char *what, natsStatus s)
{
    if (why && cap)
        snprintf(why, cap, "%s: %s", what, s == NATS_OK ? "failed" : natsStatus_GetText(s));
}

int hd_cn_ensure_stream(struct hd_cluster_conn *c, const struct hd_cn_stream *def, char *why,
                        size_t cap)
{
    jsStreamInfo *si = NULL;
    jsStreamConfig sc;
    jsErrCode jerr = 0;
    const char *subj[1] = {def->subject};
    natsStatus s;

    s = js_GetStreamInfo(&si, c->js, def->name, NULL, &jerr);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return 0;
    }
    jsStreamConfig_Init(&sc);
    sc.Name = def->name;
    sc.Subjects = subj;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Retention = js_LimitsPolicy;
    sc.Replicas = c->o.replicas ? c->o.replicas : 1;
    if (def->max_age_ms)
        sc.MaxAge = (int64_t)def->max_age_ms * 1000000; /* ns */
    if (def->dup_window_ms)
        sc.Duplicates = (int64_t)def->dup_window_ms * 1000000; /* ns */
    if (def->max_per_subject)
        sc.MaxMsgsPerSubject = def->max_per_subject;
    sc.Discard = js_DiscardOld;
    s = js_AddStream(&si, c->js, &sc, NULL, &jerr);
    if (s != NATS_OK && jerr != JSStreamNameExistErr) {
        snprintf(why, cap, "cannot create stream %s: %s", def->name, natsStatus_GetText(s));
        return HD_ERR_CONNECT;
    }
    jsStreamInfo_Destroy(si);
    return 0;
}

/* Activities: file storage, replicas as configured, MsgId de-duplication over 2 minutes. */
static int ensure_stream(struct hd_cluster_conn *c, char *why, size_t cap)
{
    const struct hd_cn_stream def = {HD_CLUSTER_STREAM, HD_CLUSTER_SUBJECT, c->o.max_age_ms,
                                     120000, 0};
    return hd_cn_ensure_stream(c, &def, why, cap);
}

/* Follows: one subject per (actor, follower), one message kept per subject (a remove is a
 * tombstone), no age limit: the stream is the follow graph, replayed by a node that starts
 * with an empty store. */
static int ensure_follow_stream(struct hd_cluster_conn *c, char *why, size_t cap)
{
    const struct hd_cn_stream def = {HD_CLUSTER_FSTREAM, HD_CLUSTER_FSUBJECT ".*", 0, 0, 1};
    return hd_cn_ensure_stream(c, &def, why, cap);
}

static int ensure_bucket(struct hd_cluster_conn *c, char *why, size_t cap)
{
    kvConfig kc;
    natsStatus s = js_KeyValue(&c->kv, c->js, HD_CLUSTER_BUCKET);

    if (s == NATS_OK)
        return 0;
    kvConfig_Init(&kc);
    kc.Bucket = HD_CLUSTER_BUCKET;
    kc.History = 1;
    kc.StorageType = js_FileStorage;
    kc.Replicas = c->o.replicas ? (int)c->o.replicas : 1;
    s = js_CreateKeyValue(&c->kv, c->js, &kc);
    if (s != NATS_OK) /* created by another node at the same moment */
        s = js_KeyValue(&c->kv, c->js, HD_CLUSTER_BUCKET);
    if (s != NATS_OK) {
        say(why, cap, "cannot open bucket " HD_CLUSTER_BUCKET, s);
        return HD_ERR_CONNECT;
    }
    return 0;
}

int hd_cluster_connect(const struct hd_cluster_opts *o, struct hd_cluster_conn **out, char *why,
                       size_t why_cap)
{
    struct hd_cluster_conn *c;
    natsOptions *no = NULL;
    jsOptions jo;
    natsStatus s;
    int rc = HD_ERR_CONNECT;

    *out = NULL;
    if (!o->url || !*o->url) {
        say(why, why_cap, "no cluster URL", NATS_INVALID_ARG);
        return HD_ERR_INVALID;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->o = *o;
    s = natsOptions_Create(&no);
    if (s == NATS_OK)
        s = natsOptions_SetURL(no, o->url);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(no, 5000); /* connect */
    if (s == NATS_OK) /* a nats-server restart: keep trying, bounded buffer meanwhile */
        s = natsOptions_SetMaxReconnect(no, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(no, 250);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(no, 8 * 1024 * 1024);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(no, false, NULL, NULL);
    if (s == NATS_OK && o->creds)
        s = natsOptions_SetUserCredentialsFromFiles(no, o->creds, NULL);
    if (s == NATS_OK && o->ca) {
        s = natsOptions_SetSecure(no, true);
        if (s == NATS_OK)
            s = natsOptions_LoadCATrustedCertificates(no, o->ca);
    }
    if (s != NATS_OK) {
        say(why, why_cap, "NATS options", s);
        rc = HD_ERR_INVALID;
        goto fail_opts;
    }
    s = natsConnection_Connect(&c->nc, no);
    if (s != NATS_OK) {
        say(why, why_cap, "cannot connect to NATS", s);
        goto fail_opts;
    }
    jsOptions_Init(&jo);
    jo.Wait = HD_CLUSTER_JS_WAIT_MS;
    s = natsConnection_JetStream(&c->js, c->nc, &jo);
    if (s != NATS_OK) {
        say(why, why_cap, "JetStream", s);
        goto fail_conn;
    }
    rc = ensure_stream(c, why, why_cap);
    if (rc)
        goto fail_js;
    rc = ensure_follow_stream(c, why, why_cap);
    if (rc)
        goto fail_js;
    rc = hd_cn_ensure_ctl_stream(c, why, why_cap);
    if (rc)
        goto fail_js;
    rc = ensure_bucket(c, why, why_cap);
    if (rc)
        goto fail_js;
    natsOptions_Destroy(no);
    *out = c;
    return 0;
fail_js:
    jsCtx_Destroy(c->js);
fail_conn:
    natsConnection_Destroy(c->nc);
fail_opts:
    natsOptions_Destroy(no);
    free(c);
    return rc;
}

void hd_cluster_disconnect(struct hd_cluster_conn *c)
{
    if (!c)
        return;
    kvStore_Destroy(c->kv);
    jsCtx_Destroy(c->js);
    natsConnection_Close(c->nc);
    natsConnection_Destroy(c->nc);
    free(c);
}

/* The shape a producer can check without a store: an object with only the envelope's keys,
 * an activity object with string id, type and actor (or actor object with an id). */
static int check_envelope(const char *line, size_t len, char *id, size_t id_cap, char *why,
                          size_t cap)
{
    json_error_t jerr;
    json_t *env = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr), *act, *v;
    const char *key, *s;
    int rc = HD_ERR_INVALID;

    if (!env) {
        snprintf(why, cap, "malformed JSON: %s", jerr.text);
        return rc;
    }
    if (!json_is_object(env)) {
        snprintf(why, cap, "envelope must be a JSON object");
        goto out;
    }
    json_object_foreach(env, key, v)
    {
        if (strcmp(key, "activity") && strcmp(key, "inboxes") && strcmp(key, "to_followers")) {
            snprintf(why, cap, "unknown envelope key \"%.100s\"", key);
            goto out;
        }
    }
    act = json_object_get(env, "activity");
    s = json_string_value(json_object_get(act, "id"));
    if (!json_is_object(act) || !s || !*s || strlen(s) > 500) {
        snprintf(why, cap, "activity needs a string \"id\" (at most 500 bytes)");
        goto out;
    }
    if (!json_string_value(json_object_get(act, "type")) ||
        !(json_string_value(json_object_get(act, "actor")) ||
          json_string_value(json_object_get(json_object_get(act, "actor"), "id")))) {
        snprintf(why, cap, "activity needs a \"type\" and an \"actor\"");
        goto out;
    }
    if (strlen(s) >= id_cap)
        goto out;
    strcpy(id, s);
    rc = 0;
out:
    json_decref(env);
    return rc;
}

int hd_cn_publish(struct hd_cluster_conn *c, const char *subj, const char *data, size_t len,
                  const char *msg_id, uint64_t *seq, int *duplicate, char *why, size_t cap)
{
    char ver[16];
    natsMsg *m = NULL;
    jsPubAck *pa = NULL;
    jsPubOptions po;
    jsErrCode jerr = 0;
    natsStatus s;

    *seq = 0;
    if (duplicate)
        *duplicate = 0;
    snprintf(ver, sizeof(ver), "%d", HD_CLUSTER_SCHEMA);
    s = natsMsg_Create(&m, subj, NULL, data, (int)len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, HD_CLUSTER_SCHEMA_HEADER, ver);
    if (s != NATS_OK) {
        natsMsg_Destroy(m);
        say(why, cap, "message", s);
        return -ENOMEM;
    }
    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    po.MaxWait = HD_CLUSTER_JS_WAIT_MS;
    s = js_PublishMsg(&pa, c->js, m, &po, &jerr);
    natsMsg_Destroy(m);
    if (s != NATS_OK) {
        say(why, cap, "not acknowledged by JetStream", s);
        return HD_ERR_CONNECT;
    }
    *seq = pa->Sequence;
    if (duplicate)
        *duplicate = pa->Duplicate;
    jsPubAck_Destroy(pa);
    return 0;
}

uint64_t hd_cn_fnv64(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

int hd_cluster_publish(struct hd_cluster_conn *c, const char *line, size_t len, uint64_t *seq,
                       int *duplicate, char *why, size_t why_cap)
{
    char id[512];
    int rc;

    *seq = 0;
    *duplicate = 0;
    if (len > (1u << 20)) {
        snprintf(why, why_cap, "envelope larger than 1 MiB");
        return HD_ERR_INVALID;
    }
    rc = check_envelope(line, len, id, sizeof(id), why, why_cap);
    if (rc)
        return rc;
    return hd_cn_publish(c, HD_CLUSTER_SUBJECT, line, len, id, seq, duplicate, why, why_cap);
}

static int url_ok(const char *s)
{
    return s && (!strncmp(s, "https://", 8) || !strncmp(s, "http://", 7)) && strlen(s) <= 500;
}

int hd_cluster_publish_follow(struct hd_cluster_conn *c, const char *actor, const char *follower,
                              const char *inbox, const char *shared_inbox, int remove,
                              uint64_t *seq, char *why, size_t why_cap)
{
    char subj[64], *body;
    size_t alen = actor ? strlen(actor) : 0, flen = follower ? strlen(follower) : 0;
    uint8_t *pair;
    uint64_t h;
    json_t *o;
    int rc;

    *seq = 0;
    if (!url_ok(actor) || !url_ok(follower) || (!remove && !url_ok(inbox)) ||
        (!remove && shared_inbox && !url_ok(shared_inbox))) {
        snprintf(why, why_cap, "actor, follower%s must be http(s) URLs of at most 500 bytes",
                 remove ? "" : ", inbox and shared_inbox");
        return HD_ERR_INVALID;
    }
    /* The subject names the pair (a 64-bit FNV-1a of actor NUL follower): the stream keeps
     * its latest operation only. */
    pair = malloc(alen + flen + 1);
    if (!pair)
        return -ENOMEM;
    memcpy(pair, actor, alen);
    pair[alen] = 0;
    memcpy(pair + alen + 1, follower, flen);
    h = hd_cn_fnv64(pair, alen + flen + 1);
    free(pair);
    snprintf(subj, sizeof(subj), HD_CLUSTER_FSUBJECT ".%016" PRIx64, h);
    o = json_pack("{s:s,s:s,s:s}", "op", remove ? "remove" : "add", "actor", actor, "follower",
                  follower);
    if (o && !remove)
        json_object_set_new(o, "inbox", json_string(inbox));
    if (o && !remove && shared_inbox)
        json_object_set_new(o, "shared_inbox", json_string(shared_inbox));
    body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!body)
        return -ENOMEM;
    rc = hd_cn_publish(c, subj, body, strlen(body), NULL, seq, NULL, why, why_cap);
    free(body);
    return rc;
}

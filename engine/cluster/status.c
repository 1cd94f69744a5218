/* `herald cluster status`: the bucket's nodes, leases and checkpoints, and the stream. */
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cluster_impl.h"
#include "err.h"

/* Reads every key of the bucket into an object key -> parsed value. */
static json_t *read_bucket(struct hd_cluster_conn *c)
{
    kvKeysList kl = {NULL, 0};
    json_t *all = json_object();

    if (!all)
        return NULL;
    if (kvStore_Keys(&kl, c->kv, NULL) != NATS_OK)
        return all; /* an empty bucket answers "no keys found" */
    for (int i = 0; i < kl.Count; i++) {
        kvEntry *e = NULL;
        json_error_t jerr;
        json_t *v;
        if (kvStore_Get(&e, c->kv, kl.Keys[i]) != NATS_OK)
            continue;
        v = json_loadb(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), 0, &jerr);
        if (v)
            json_object_set_new(all, kl.Keys[i], v);
        kvEntry_Destroy(e);
    }
    kvKeysList_Destroy(&kl);
    return all;
}

int hd_cluster_status(struct hd_cluster_conn *c, FILE *f, int as_json)
{
    json_t *all = read_bucket(c), *out, *nodes, *parts, *v;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    uint64_t now = hd_wall_ms();
    const char *key;
    char *s;

    if (!all)
        return HD_ERR_CONNECT;
    out = json_object();
    nodes = json_object();
    parts = json_object();
    if (js_GetStreamInfo(&si, c->js, HD_CLUSTER_STREAM, NULL, &jerr) == NATS_OK) {
        json_object_set_new(out, "stream",
                            json_pack("{s:I,s:I,s:I}", "first_seq",
                                      (json_int_t)si->State.FirstSeq, "last_seq",
                                      (json_int_t)si->State.LastSeq, "messages",
                                      (json_int_t)si->State.Msgs));
        jsStreamInfo_Destroy(si);
    }
    json_object_foreach(all, key, v)
    {
        if (!strncmp(key, "n.", 2)) {
            json_t *n = json_deep_copy(v);
            uint64_t ts = (uint64_t)json_integer_value(json_object_get(v, "ts_ms"));
            uint64_t lease = (uint64_t)json_integer_value(json_object_get(v, "lease_ms"));
            json_object_set_new(n, "live", json_boolean(ts + (lease ? lease : c->o.lease_ms) >= now));
            json_object_set_new(n, "heartbeat_age_ms", json_integer((json_int_t)(now - ts)));
            json_object_set_new(nodes, key + 2, n);
        } else if (!strncmp(key, "p.", 2) || !strncmp(key, "cp.", 3)) {
            const char *num = key[0] == 'p' ? key + 2 : key + 3;
            json_t *p = json_object_get(parts, num);
            if (!p) {
                p = json_object();
                json_object_set_new(parts, num, p);
            }
            if (key[0] == 'p') {
                uint64_t exp = (uint64_t)json_integer_value(json_object_get(v, "expires_ms"));
                json_object_set(p, "node", json_object_get(v, "node"));
                json_object_set(p, "epoch", json_object_get(v, "epoch"));
                json_object_set_new(p, "lease_valid", json_boolean(exp > now));
            } else {
                json_object_set(p, "checkpoint", json_object_get(v, "seq"));
            }
        }
    }
    json_object_set_new(out, "nodes", nodes);
    json_object_set_new(out, "partitions", parts);
    if (as_json) {
        s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
        if (s)
            fprintf(f, "%s\n", s);
        free(s);
    } else {
        json_t *st = json_object_get(out, "stream");
        fprintf(f, "stream %s: last_seq %" JSON_INTEGER_FORMAT " messages %" JSON_INTEGER_FORMAT
                   "\n",
                HD_CLUSTER_STREAM, json_integer_value(json_object_get(st, "last_seq")),
                json_integer_value(json_object_get(st, "messages")));
        fprintf(f, "%-24s %-5s %10s %10s %12s\n", "node", "live", "partitions", "backlog",
                "stream_seq");
        json_object_foreach(nodes, key, v)
        {
            fprintf(f, "%-24s %-5s %10zu %10" JSON_INTEGER_FORMAT " %12" JSON_INTEGER_FORMAT "\n",
                    key, json_is_true(json_object_get(v, "live")) ? "yes" : "no",
                    json_array_size(json_object_get(v, "partitions")),
                    json_integer_value(json_object_get(v, "backlog")),
                    json_integer_value(json_object_get(v, "stream_seq")));
        }
    }
    json_decref(out);
    json_decref(all);
    return 0;
}

/* Node summaries in the bucket and their merge (views.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cluster_impl.h"
#include "err.h"
#include "views.h"

#define VIEWS_VALUE_MAX (900u * 1024u) /* under NATS's default 1 MB payload */

int hd_cluster_views_put(struct hd_cluster_conn *c, const char *node, json_t *view)
{
    char key[80];
    char *s;
    size_t len;
    uint64_t rev = 0;
    int rc = 0;

    if (hd_cluster_node_name_ok(node))
        return HD_ERR_INVALID;
    json_object_set_new(view, "schema", json_integer(HD_CLUSTER_VIEWS_SCHEMA));
    json_object_set_new(view, "node", json_string(node));
    json_object_set_new(view, "ts_ms", json_integer((json_int_t)hd_wall_ms()));
    s = json_dumps(view, JSON_COMPACT);
    if (!s)
        return -ENOMEM;
    len = strlen(s);
    snprintf(key, sizeof(key), "views.%s", node);
    if (len > VIEWS_VALUE_MAX)
        rc = HD_ERR_TOO_LARGE;
    else if (kvStore_Put(&rev, c->kv, key, s, (int)len) != NATS_OK)
        rc = HD_ERR_CONNECT;
    free(s);
    return rc;
}

static int by_backlog(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t bx = json_integer_value(json_object_get(x, "backlog"));
    json_int_t by = json_integer_value(json_object_get(y, "backlog"));
    if (bx != by)
        return bx > by ? -1 : 1;
    const char *hx = json_string_value(json_object_get(x, "host"));
    const char *hy = json_string_value(json_object_get(y, "host"));
    return strcmp(hx ? hx : "", hy ? hy : "");
}

/* Adds every number of from into the same key of to (oldest_ms: the oldest). */
static void add_totals(json_t *to, json_t *from)
{
    const char *k;
    json_t *v;

    json_object_foreach(from, k, v)
    {
        json_t *t = json_object_get(to, k);
        if (!strcmp(k, "oldest_ms")) { /* the oldest of the nodes: the smallest nonzero */
            json_int_t a = json_integer_value(t), b = json_integer_value(v);
            json_object_set_new(to, k, json_integer(a && (!b || a < b) ? a : b));
        } else if (json_is_integer(v))
            json_object_set_new(to, k,
                                json_integer(json_integer_value(t) + json_integer_value(v)));
        else if (json_is_real(v))
            json_object_set_new(to, k, json_real(json_number_value(t) + json_real_value(v)));
    }
}

int hd_cluster_views_get(struct hd_cluster_conn *c, uint64_t max_age_ms, json_t **out)
{
    kvKeysList kl = {NULL, 0};
    json_t *res = json_object(), *nodes = json_object(), *totals = json_object();
    json_t *hosts = json_array();
    uint64_t now = hd_wall_ms();
    json_t **rows = NULL;
    size_t n;

    *out = NULL;
    if (!res || !nodes || !totals || !hosts)
        goto nomem;
    if (kvStore_Keys(&kl, c->kv, NULL) == NATS_OK) {
        for (int i = 0; i < kl.Count; i++) {
            kvEntry *e = NULL;
            json_t *v, *h;
            uint64_t ts;
            size_t j;
            if (strncmp(kl.Keys[i], "views.", 6) != 0 ||
                kvStore_Get(&e, c->kv, kl.Keys[i]) != NATS_OK)
                continue;
            v = json_loadb(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), 0, NULL);
            kvEntry_Destroy(e);
            ts = (uint64_t)json_integer_value(json_object_get(v, "ts_ms"));
            if (!v || json_integer_value(json_object_get(v, "schema")) != HD_CLUSTER_VIEWS_SCHEMA ||
                ts + max_age_ms < now) {
                json_decref(v);
                continue;
            }
            json_object_set_new(nodes, kl.Keys[i] + 6,
                                json_pack("{s:I,s:O}", "ts_ms", (json_int_t)ts, "totals",
                                          json_object_get(v, "totals")));
            add_totals(totals, json_object_get(v, "totals"));
            json_array_foreach(json_object_get(v, "hosts"), j, h)
            {
                json_object_set_new(h, "node", json_string(kl.Keys[i] + 6));
                json_array_append(hosts, h);
            }
            json_decref(v);
        }
        kvKeysList_Destroy(&kl);
    }
    n = json_array_size(hosts);
    if (n) {
        rows = malloc(n * sizeof(*rows));
        if (!rows)
            goto nomem;
        for (size_t i = 0; i < n; i++)
            rows[i] = json_incref(json_array_get(hosts, i));
        qsort(rows, n, sizeof(*rows), by_backlog);
        json_array_clear(hosts);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(hosts, rows[i]);
        free(rows);
    }
    json_object_set_new(res, "schema", json_integer(HD_CLUSTER_VIEWS_SCHEMA));
    json_object_set_new(res, "now_ms", json_integer((json_int_t)now));
    json_object_set_new(res, "nodes", nodes);
    json_object_set_new(res, "totals", totals);
    json_object_set_new(res, "hosts", hosts);
    *out = res;
    return 0;
nomem:
    json_decref(res);
    json_decref(nodes);
    json_decref(totals);
    json_decref(hosts);
    return -ENOMEM;
}

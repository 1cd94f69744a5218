/* Envelope validation and persistence. jansson parses (strictly: duplicate keys refused),
 * and a small scanner finds the activity's raw bytes so the stored body is exactly what the
 * platform sent: receivers may compare digests of re-fetched objects, and re-serialising
 * would change key order and escapes. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ingest.h"
#include "keys.h"
#include "queue.h"
#include "strset.h"
#include "url.h"

#define HD_INGEST_MAX_INBOXES 1000000

static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* Returns the index just past the JSON string starting at s[i] == '"', or 0 on error. */
static size_t skip_string(const char *s, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return 0;
}

/* Returns the index just past the JSON value at s[i], or 0 on error. Depth-bounded. */
static size_t skip_value(const char *s, size_t i, size_t n, int depth)
{
    if (i >= n || depth > 64)
        return 0;
    if (s[i] == '"')
        return skip_string(s, i, n);
    if (s[i] == '{' || s[i] == '[') {
        char close = s[i] == '{' ? '}' : ']';
        i = skip_ws(s, i + 1, n);
        if (i < n && s[i] == close)
            return i + 1;
        for (;;) {
            if (close == '}') {
                if (i >= n || s[i] != '"')
                    return 0;
                i = skip_string(s, i, n);
                if (!i)
                    return 0;
                i = skip_ws(s, i, n);
                if (i >= n || s[i] != ':')
                    return 0;
                i = skip_ws(s, i + 1, n);
            }
            i = skip_value(s, i, n, depth + 1);
            if (!i)
                return 0;
            i = skip_ws(s, i, n);
            if (i < n && s[i] == ',') {
                i = skip_ws(s, i + 1, n);
                continue;
            }
            if (i < n && s[i] == close)
                return i + 1;
            return 0;
        }
    }
    while (i < n && !strchr(",}] \t\r\n", s[i]))
        i++;
    return i;
}

int hd_json_raw_member(const char *s, size_t n, const char *key, size_t *start, size_t *vlen)
{
    size_t kl = strlen(key), i = skip_ws(s, 0, n);

    if (i >= n || s[i] != '{')
        return HD_ERR_INVALID;
    i = skip_ws(s, i + 1, n);
    while (i < n && s[i] == '"') {
        size_t ks = i + 1, ke = skip_string(s, i, n), vs, ve;
        if (!ke)
            return HD_ERR_INVALID;
        i = skip_ws(s, ke, n);
        if (i >= n || s[i] != ':')
            return HD_ERR_INVALID;
        vs = skip_ws(s, i + 1, n);
        ve = skip_value(s, vs, n, 0);
        if (!ve)
            return HD_ERR_INVALID;
        /* Keys with escapes never match a plain key; jansson has validated the rest. */
        if (ke - 1 - ks == kl && memcmp(s + ks, key, kl) == 0) {
            *start = vs;
            *vlen = ve - vs;
            return 0;
        }
        i = skip_ws(s, ve, n);
        if (i < n && s[i] == ',')
            i = skip_ws(s, i + 1, n);
    }
    return HD_ERR_NOT_FOUND;
}

static int refuse(struct hd_ingest_result *res, int rc, const char *fmt, const char *arg)
{
    res->rc = rc;
    snprintf(res->why, sizeof(res->why), fmt, arg ? arg : "");
    return rc;
}

static const char *str_member(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The activity's object id (string object or object.id), for ordering and cancellation. */
static const char *object_id(json_t *act)
{
    json_t *o = json_object_get(act, "object");
    if (json_is_string(o))
        return json_string_value(o);
    if (json_is_object(o))
        return str_member(o, "id");
    return NULL;
}

static int addressed_public_in(json_t *o)
{
    static const char *const keys[] = {"to", "cc"};
    for (size_t k = 0; k < 2; k++) {
        json_t *v = json_object_get(o, keys[k]), *it;
        size_t i;
        if (json_is_string(v)) {
            const char *s = json_string_value(v);
            if (!strcmp(s, "https://www.w3.org/ns/activitystreams#Public") ||
                !strcmp(s, "as:Public") || !strcmp(s, "Public"))
                return 1;
        }
        json_array_foreach(v, i, it)
        {
            const char *s = json_string_value(it);
            if (s && (!strcmp(s, "https://www.w3.org/ns/activitystreams#Public") ||
                      !strcmp(s, "as:Public") || !strcmp(s, "Public")))
                return 1;
        }
    }
    return 0;
}

/* Federation "public": Create, Update and Announce of objects not addressed to Public are
 * withheld. The activity's own to/cc count, and so do the embedded object's. */
static int withheld_for_public(json_t *act, const char *type)
{
    json_t *obj;
    if (strcmp(type, "Create") && strcmp(type, "Update") && strcmp(type, "Announce"))
        return 0;
    if (addressed_public_in(act))
        return 0;
    obj = json_object_get(act, "object");
    if (json_is_object(obj) && addressed_public_in(obj))
        return 0;
    return 1;
}

static int add_inbox(struct hd_strset *seen, struct hd_url **urls, size_t *n, size_t *cap,
                     const char *s, struct hd_ingest_result *res)
{
    struct hd_url u;
    char norm[HD_URL_MAX + HD_HOST_MAX + 16];
    int rc;

    if (hd_url_parse(s, &u) != 0)
        return refuse(res, HD_ERR_INVALID, "invalid inbox URL: %.200s", s);
    if (hd_url_format(&u, norm, sizeof(norm)) != 0)
        return refuse(res, HD_ERR_INVALID, "inbox URL too long: %.200s", s);
    rc = hd_strset_add(seen, norm);
    if (rc < 0)
        return refuse(res, rc, "out of memory%s", NULL);
    if (rc == 0)
        return 0; /* already present: the same inbox twice is one delivery */
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct hd_url *p;
        if (nc > HD_INGEST_MAX_INBOXES)
            return refuse(res, HD_ERR_INVALID, "too many inboxes%s", NULL);
        p = realloc(*urls, nc * sizeof(*p));
        if (!p)
            return refuse(res, -ENOMEM, "out of memory%s", NULL);
        *urls = p;
        *cap = nc;
    }
    (*urls)[(*n)++] = u;
    return 0;
}

int hd_ingest_envelope(struct hd_store *st, MDB_txn *parent, struct hd_counters *c,
                       const char *line, size_t len, uint64_t now_ms, struct hd_ingest_result *res)
{
    json_error_t jerr;
    json_t *env = NULL, *act, *inboxes, *v, *tof;
    const char *id, *type, *actor, *key;
    struct hd_slice kid;
    struct hd_url *urls = NULL;
    size_t nurls = 0, cap = 0, raw_start, raw_len, i;
    struct hd_strset *seen = NULL;
    struct hd_activity_in ain;
    struct hd_counters c2 = *c;
    MDB_txn *txn = NULL;
    int fed, rc;

    memset(res, 0, sizeof(*res));
    if (len > HD_INGEST_MAX_LINE)
        return refuse(res, HD_ERR_INVALID, "envelope larger than 1 MiB%s", NULL);
    env = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!env) {
        rc = refuse(res, HD_ERR_INVALID, "malformed JSON: %s", jerr.text);
        goto out;
    }
    if (!json_is_object(env)) {
        rc = refuse(res, HD_ERR_INVALID, "envelope must be a JSON object%s", NULL);
        goto out;
    }
    json_object_foreach(env, key, v)
    {
        if (strcmp(key, "activity") && strcmp(key, "inboxes") && strcmp(key, "to_followers")) {
            rc = refuse(res, HD_ERR_INVALID, "unknown envelope key \"%.100s\"", key);
            goto out;
        }
    }
    act = json_object_get(env, "activity");
    if (!json_is_object(act)) {
        rc = refuse(res, HD_ERR_INVALID, "\"activity\" must be an object%s", NULL);
        goto out;
    }
    id = str_member(act, "id");
    type = str_member(act, "type");
    actor = str_member(act, "actor");
    if (!actor && json_is_object(json_object_get(act, "actor")))
        actor = str_member(json_object_get(act, "actor"), "id");
    if (!id || !*id || strlen(id) > 500) {
        rc = refuse(res, HD_ERR_INVALID, "activity needs a string \"id\" (at most 500 bytes)%s",
                    NULL);
        goto out;
    }
    if (!type || !*type) {
        rc = refuse(res, HD_ERR_INVALID, "activity needs a string \"type\"%s", NULL);
        goto out;
    }
    if (!actor || !*actor || strlen(actor) > 500) {
        rc = refuse(res, HD_ERR_INVALID, "activity needs an \"actor\"%s", NULL);
        goto out;
    }
    tof = json_object_get(env, "to_followers");
    if (tof && !json_is_boolean(tof)) {
        rc = refuse(res, HD_ERR_INVALID, "\"to_followers\" must be true or false%s", NULL);
        goto out;
    }
    if (json_is_true(tof)) {
        rc = refuse(res, HD_ERR_INVALID, "\"to_followers\" is not supported yet (no follows)%s",
                    NULL);
        goto out;
    }
    inboxes = json_object_get(env, "inboxes");
    if (inboxes && !json_is_array(inboxes)) {
        rc = refuse(res, HD_ERR_INVALID, "\"inboxes\" must be an array of URLs%s", NULL);
        goto out;
    }
    rc = hd_strset_new(&seen, json_array_size(inboxes) + 1);
    if (rc) {
        refuse(res, rc, "out of memory%s", NULL);
        goto out;
    }
    json_array_foreach(inboxes, i, v)
    {
        const char *s = json_string_value(v);
        if (!s) {
            rc = refuse(res, HD_ERR_INVALID, "each inbox must be a URL string%s", NULL);
            goto out;
        }
        rc = add_inbox(seen, &urls, &nurls, &cap, s, res);
        if (rc)
            goto out;
    }
    if (hd_json_raw_member(line, len, "activity", &raw_start, &raw_len) != 0) {
        rc = refuse(res, HD_ERR_INVALID, "cannot locate the activity text%s", NULL);
        goto out;
    }

    rc = hd_store_err(mdb_txn_begin(mdb_txn_env(parent), parent, 0, &txn));
    if (rc) {
        refuse(res, rc, "store error%s", NULL);
        goto out;
    }
    rc = hd_actor_get(st, txn, actor, strlen(actor), &kid, &fed);
    if (rc == HD_ERR_NOT_FOUND || (rc == 0 && !kid.p)) {
        rc = refuse(res, HD_ERR_NO_KEY, "actor has no signing key: %.200s", actor);
        c2.refused++;
        goto commit_counters;
    }
    if (rc) {
        refuse(res, rc, "store error reading actor%s", NULL);
        goto out;
    }
    if (fed == HD_FED_NONE) {
        rc = refuse(res, HD_ERR_INVALID, "actor's federation choice is none: nothing is federated%s",
                    NULL);
        c2.refused++;
        goto commit_counters;
    }
    if (fed == HD_FED_PUBLIC && withheld_for_public(act, type)) {
        rc = refuse(res, HD_ERR_INVALID,
                    "withheld: actor federates public posts only and this %s is not public", type);
        res->withheld = 1;
        c2.withheld++;
        goto commit_counters;
    }
    ain.id = id;
    ain.type = type;
    ain.actor = actor;
    ain.object_id = object_id(act);
    ain.body = line + raw_start;
    ain.body_len = raw_len;
    rc = hd_queue_enqueue(st, txn, &c2, &ain, urls, NULL, nurls, now_ms, &res->seq);
    if (rc == HD_ERR_DUPLICATE) {
        refuse(res, rc, "duplicate activity id (first enqueued as seq %s)", NULL);
        snprintf(res->why, sizeof(res->why), "duplicate activity id (first enqueued as seq %llu)",
                 (unsigned long long)res->seq);
        goto out;
    }
    if (rc) {
        refuse(res, rc, "store error: %s", hd_strerror(rc));
        goto out;
    }
    res->deliveries = nurls;
    rc = hd_store_err(mdb_txn_commit(txn));
    txn = NULL;
    if (rc) {
        refuse(res, rc, "store commit failed%s", NULL);
        goto out;
    }
    *c = c2;
    res->rc = 0;
    goto out;
commit_counters:
    /* Refused and withheld activities are counted, never silently lost; nothing else of
     * this envelope is written. */
    hd_store_abort(txn);
    txn = NULL;
    c->refused = c2.refused;
    c->withheld = c2.withheld;
out:
    hd_store_abort(txn);
    hd_strset_free(seen);
    free(urls);
    json_decref(env);
    return res->rc;
}

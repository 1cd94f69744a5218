/* Cluster-wide operator controls (blocks, allowlist, federation mode, actor federation, host
 * pause/resume/set/reset) through the control stream HERALD_CTL: a producer publishes one
 * operation, every node applies it to its own store with the calls the local commands use,
 * so its running engine picks it up as it picks up a local command. docs/cluster.md. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "enforce.h"
#include "err.h"
#include "hostctl.h"
#include "keys.h"
#include "log.h"
#include "node_impl.h"
#include "rules.h"

/* The operations, and the subject group each one's latest state is kept under. */
static const struct {
    const char *op, *group, *key;
} ops[] = {
    {"block.add", "block", "domain"},      {"block.remove", "block", "domain"},
    {"allow.add", "allow", "domain"},      {"allow.remove", "allow", "domain"},
    {"federation.mode", "fedmode", NULL},  {"actor.federation", "actor", "actor"},
    {"host.pause", "hostpause", "host"},   {"host.resume", "hostpause", "host"},
    {"host.set", "hostset", "host"},       {"host.reset", "hostreset", "host"},
};

static int op_index(const char *op)
{
    for (size_t i = 0; op && i < sizeof(ops) / sizeof(ops[0]); i++)
        if (!strcmp(op, ops[i].op))
            return (int)i;
    return -1;
}

int hd_cn_ensure_ctl_stream(struct hd_cluster_conn *c, char *why, size_t cap)
{
    /* the latest operation per (group, key) is kept: the current state, no age limit */
    const struct hd_cn_stream def = {HD_CLUSTER_CSTREAM, HD_CLUSTER_CSUBJECT ".>", 0, 0, 1};
    return hd_cn_ensure_stream(c, &def, why, cap);
}

int hd_cluster_publish_control(struct hd_cluster_conn *c, json_t *msg, uint64_t *seq, char *why,
                               size_t why_cap)
{
    const char *op = json_string_value(json_object_get(msg, "op")), *key = "";
    char subj[96], *body;
    uint64_t h;
    int rc;
    int i = op_index(op);

    *seq = 0;
    if (i < 0 || !json_is_object(msg)) {
        snprintf(why, why_cap, "unknown control operation %s", op ? op : "(none)");
        return HD_ERR_INVALID;
    }
    if (ops[i].key) {
        key = json_string_value(json_object_get(msg, ops[i].key));
        if (!key || !*key || strlen(key) > 1000) {
            snprintf(why, why_cap, "%s needs %s", op, ops[i].key);
            return HD_ERR_INVALID;
        }
    }
    h = hd_cn_fnv64(key, strlen(key)); /* the subject names the key */
    snprintf(subj, sizeof(subj), HD_CLUSTER_CSUBJECT ".%s.%016" PRIx64, ops[i].group, h);
    json_object_set_new(msg, "v", json_integer(HD_CLUSTER_SCHEMA));
    body = json_dumps(msg, JSON_COMPACT);
    if (!body)
        return -ENOMEM;
    rc = hd_cn_publish(c, subj, body, strlen(body), NULL, seq, NULL, why, why_cap);
    free(body);
    return rc;
}

/* ------------------------------------------------------------- applying on a node */

static int jbool(json_t *o, const char *k)
{
    return json_is_true(json_object_get(o, k));
}

/* Drops what the rules now refuse and writes the counters, as a local rule change does. */
static int enforce(struct hd_store *st, struct hd_txn *txn, uint64_t *dropped)
{
    struct hd_counters c;
    struct hd_rules *r = NULL;
    uint64_t hosts = 0;
    int rc;

    rc = hd_counters_get(st, txn, &c);
    if (!rc)
        rc = hd_rules_load(st, txn, &r);
    if (!rc)
        rc = hd_rules_enforce(st, txn, &c, r, dropped, &hosts);
    hd_rules_free(r);
    if (!rc)
        rc = hd_counters_put(st, txn, &c);
    return rc;
}

static int apply_block(struct hd_store *st, struct hd_txn *txn, json_t *o, int add,
                       const char *dom)
{
    struct hd_block b, old;
    const char *sev = json_string_value(json_object_get(o, "severity"));
    const char *comment = json_string_value(json_object_get(o, "comment"));

    if (!add) {
        int rc = hd_block_del(st, txn, dom);
        return rc == HD_ERR_NOT_FOUND ? 0 : rc;
    }
    memset(&b, 0, sizeof(b));
    snprintf(b.domain, sizeof(b.domain), "%s", dom);
    b.severity = sev ? hd_severity_parse(sev, strlen(sev)) : -1;
    if (b.severity < 0 || (comment && (strlen(comment) >= sizeof(b.comment) ||
                                       !hd_rules_utf8_valid(comment, strlen(comment)))))
        return HD_ERR_INVALID;
    snprintf(b.comment, sizeof(b.comment), "%s", comment ? comment : "");
    b.reject_media = jbool(o, "reject_media");
    b.reject_reports = jbool(o, "reject_reports");
    b.obfuscate = jbool(o, "obfuscate");
    b.created_ms = hd_wall_ms();
    if (hd_block_get(st, txn, b.domain, &old) == 0)
        b.created_ms = old.created_ms;
    return hd_block_put(st, txn, &b);
}

static int apply_host(struct hd_store *st, struct hd_txn *txn, json_t *o, const char *op,
                      const char *host)
{
    struct hd_hostctl c;
    json_t *v;
    int rc;

    if (!strcmp(op, "host.reset"))
        return hd_host_reset(st, txn, host);
    rc = hd_hostctl_get(st, txn, host, &c);
    if (rc)
        return rc;
    if (!strcmp(op, "host.pause"))
        c.paused = 1;
    else if (!strcmp(op, "host.resume"))
        c.paused = 0;
    if (jbool(o, "clear")) {
        c.max_inflight = 0;
        c.rate_milli = 0;
    }
    v = json_object_get(o, "max_inflight");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 100000)
            return HD_ERR_INVALID;
        c.max_inflight = (uint32_t)json_integer_value(v);
    }
    v = json_object_get(o, "rate_milli");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > 1000000000)
            return HD_ERR_INVALID;
        c.rate_milli = (uint64_t)json_integer_value(v);
    }
    return hd_hostctl_put(st, txn, host, &c);
}

/* Applies one operation in txn. Returns 0, HD_ERR_INVALID (malformed: logged, skipped) or a
 * store error. */
static int apply_op(struct hd_store *st, struct hd_txn *txn, json_t *o, uint64_t *dropped)
{
    const char *op = json_string_value(json_object_get(o, "op"));
    const char *dom_in = json_string_value(json_object_get(o, "domain"));
    const char *s;
    char dom[HD_DOMAIN_MAX];
    int i = op_index(op), rc;

    if (i < 0)
        return HD_ERR_INVALID;
    if (!strcmp(ops[i].group, "block") || !strcmp(ops[i].group, "allow")) {
        if (!dom_in || hd_rules_domain_norm(dom_in, dom, sizeof(dom)) != 0)
            return HD_ERR_INVALID;
        if (!strcmp(ops[i].group, "block"))
            rc = apply_block(st, txn, o, !strcmp(op, "block.add"), dom);
        else if (!strcmp(op, "allow.add"))
            rc = hd_allow_put(st, txn, dom, hd_wall_ms());
        else if ((rc = hd_allow_del(st, txn, dom)) == HD_ERR_NOT_FOUND)
            rc = 0;
        return rc ? rc : enforce(st, txn, dropped);
    }
    if (!strcmp(op, "federation.mode")) {
        s = json_string_value(json_object_get(o, "mode"));
        if (!s || (strcmp(s, "allowlist") && strcmp(s, "open")))
            return HD_ERR_INVALID;
        rc = hd_rules_mode_set(st, txn, !strcmp(s, "allowlist") ? HD_MODE_ALLOWLIST : HD_MODE_OPEN);
        return rc ? rc : enforce(st, txn, dropped);
    }
    if (!strcmp(op, "actor.federation")) {
        const char *a = json_string_value(json_object_get(o, "actor"));
        int f;
        s = json_string_value(json_object_get(o, "federation"));
        f = !s ? -1 : !strcmp(s, "all") ? HD_FED_ALL : !strcmp(s, "public") ? HD_FED_PUBLIC
                    : !strcmp(s, "none") ? HD_FED_NONE : -1;
        if (!a || f < 0)
            return HD_ERR_INVALID;
        return hd_actor_set_federation(st, txn, a, f);
    }
    s = json_string_value(json_object_get(o, "host"));
    if (!s || s[0] == '*' || hd_rules_domain_norm(s, dom, sizeof(dom)) != 0)
        return HD_ERR_INVALID;
    return apply_host(st, txn, o, op, dom);
}

/* One message: 1 stops the sync (a schema this version cannot read), else 0 or an error. */
static int apply_msg(struct hd_cluster_node *n, natsMsg *m, uint64_t seq)
{
    const char *v = NULL;
    char want[16];
    json_error_t jerr;
    json_t *o, *ver;
    struct hd_txn *txn = NULL;
    uint64_t dropped = 0;
    int rc;

    snprintf(want, sizeof(want), "%d", HD_CLUSTER_SCHEMA);
    o = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, &jerr);
    ver = json_object_get(o, "v");
    if (natsMsgHeader_Get(m, HD_CLUSTER_SCHEMA_HEADER, &v) != NATS_OK || !v || strcmp(v, want) ||
        (o && (!json_is_integer(ver) || json_integer_value(ver) != HD_CLUSTER_SCHEMA))) {
        if (n->ctl_blocked != seq)
            HD_LOG(HD_LOG_ERROR, "cluster",
                   "msg=\"control of an unknown schema: waiting for an upgrade\" seq=%" PRIu64,
                   seq);
        n->ctl_blocked = seq;
        n->schema_blocked = 1;
        json_decref(o);
        return 1;
    }
    rc = o ? hd_store_begin(n->st, 1, &txn) : HD_ERR_INVALID;
    if (!rc) {
        rc = apply_op(n->st, txn, o, &dropped);
        if (rc)
            hd_store_abort(txn);
        else
            rc = hd_store_commit(txn);
    }
    if (rc == 0) {
        n->controls++;
        HD_LOG(HD_LOG_INFO, "cluster", "msg=\"control applied\" seq=%" PRIu64 " op=%s dropped=%" PRIu64,
               seq, json_string_value(json_object_get(o, "op")), dropped);
    } else if (rc == HD_ERR_INVALID) {
        HD_LOG(HD_LOG_WARN, "cluster", "msg=\"control refused: malformed\" seq=%" PRIu64, seq);
        rc = 0;
    }
    json_decref(o);
    return rc;
}

int hd_cn_control_sync(struct hd_cluster_node *n)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    uint64_t last;
    int rc = 0;

    if (js_GetStreamInfo(&si, n->c->js, HD_CLUSTER_CSTREAM, NULL, &jerr) != NATS_OK)
        return HD_ERR_CONNECT;
    last = si->State.LastSeq;
    if (n->ccursor == 0)
        n->ccursor = 1;
    if (n->ccursor < si->State.FirstSeq)
        n->ccursor = si->State.FirstSeq;
    jsStreamInfo_Destroy(si);
    while (rc == 0 && n->ccursor <= last) {
        natsMsg *m = NULL;
        natsStatus s = js_GetMsg(&m, n->c->js, HD_CLUSTER_CSTREAM, n->ccursor, NULL, &jerr);
        if (s != NATS_OK && jerr != JSNoMessageFoundErr && s != NATS_NOT_FOUND)
            return HD_ERR_CONNECT;
        if (m) { /* absent: superseded by a later operation on the same key */
            rc = apply_msg(n, m, n->ccursor);
            natsMsg_Destroy(m);
            if (rc == 1)
                return HD_ERR_SCHEMA;
            if (rc)
                return rc;
        }
        n->ccursor++;
    }
    return rc;
}

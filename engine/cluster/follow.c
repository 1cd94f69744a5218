/* A node applies the follow stream to its store: every operation, in stream order, before it
 * reads an activity published after that operation (node.c asks for a sync first). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <string.h>

#include "audience.h"
#include "err.h"
#include "log.h"
#include "node_impl.h"

#define FOLLOW_BATCH 1024 /* operations per write transaction */

/* Adds the operation in m to b. A message this version cannot read stops the sync there
 * (returns 1), as for activities; a malformed one is logged and skipped (0). */
static int add_op(struct hd_cluster_node *n, struct hd_follow_batch *b, natsMsg *m, uint64_t seq)
{
    const char *v = NULL, *why = NULL;
    char want[16];
    json_error_t jerr;
    json_t *o;
    struct hd_follow f;
    int remove, rc;

    snprintf(want, sizeof(want), "%d", HD_CLUSTER_SCHEMA);
    if (natsMsgHeader_Get(m, HD_CLUSTER_SCHEMA_HEADER, &v) != NATS_OK || !v || strcmp(v, want)) {
        if (!n->schema_blocked)
            HD_LOG(HD_LOG_ERROR, "cluster",
                   "msg=\"follow of an unknown schema: waiting for an upgrade\" seq=%" PRIu64, seq);
        n->schema_blocked = 1;
        return 1;
    }
    o = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, &jerr);
    f.actor = json_string_value(json_object_get(o, "actor"));
    f.follower = json_string_value(json_object_get(o, "follower"));
    f.inbox = json_string_value(json_object_get(o, "inbox"));
    f.shared_inbox = json_string_value(json_object_get(o, "shared_inbox"));
    v = json_string_value(json_object_get(o, "op"));
    remove = v && !strcmp(v, "remove");
    rc = v && f.actor && f.follower ? hd_follow_batch_add(b, &f, remove, &why) : HD_ERR_INVALID;
    if (rc == HD_ERR_INVALID)
        HD_LOG(HD_LOG_WARN, "cluster", "msg=\"follow operation refused\" seq=%" PRIu64 " why=\"%s\"",
               seq, why ? why : "malformed");
    json_decref(o);
    return rc == HD_ERR_INVALID ? 0 : rc;
}

static int apply(struct hd_cluster_node *n, struct hd_follow_batch *b)
{
    struct hd_follow_stats s;
    struct hd_txn *txn = NULL;
    int rc;

    if (!hd_follow_batch_len(b))
        return 0;
    memset(&s, 0, sizeof(s));
    rc = hd_store_begin(n->st, 1, &txn);
    if (rc == 0)
        rc = hd_follow_batch_apply(n->st, txn, b, &s);
    if (rc == 0)
        return hd_store_commit(txn);
    hd_store_abort(txn);
    return rc;
}

int hd_cn_follow_sync(struct hd_cluster_node *n)
{
    struct hd_follow_batch *b = NULL;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    uint64_t last, pos;
    int rc;

    if (js_GetStreamInfo(&si, n->c->js, HD_CLUSTER_FSTREAM, NULL, &jerr) != NATS_OK)
        return HD_ERR_CONNECT;
    last = si->State.LastSeq;
    if (n->fcursor == 0)
        n->fcursor = 1; /* stream sequences start at 1; an empty stream has last 0 */
    if (n->fcursor < si->State.FirstSeq)
        n->fcursor = si->State.FirstSeq;
    jsStreamInfo_Destroy(si);
    if (n->fcursor > last)
        return 0;
    rc = hd_follow_batch_new(&b);
    if (rc)
        return rc;
    pos = n->fcursor;
    while (rc == 0 && pos <= last) {
        natsMsg *m = NULL;
        natsStatus s = js_GetMsg(&m, n->c->js, HD_CLUSTER_FSTREAM, pos, NULL, &jerr);
        if (s != NATS_OK && jerr != JSNoMessageFoundErr && s != NATS_NOT_FOUND) {
            rc = HD_ERR_CONNECT;
            break;
        }
        if (m) { /* absent: superseded by a later operation on the same pair */
            rc = add_op(n, b, m, pos);
            natsMsg_Destroy(m);
            if (rc == 1) {
                rc = HD_ERR_SCHEMA;
                break;
            }
            if (rc)
                break;
        }
        pos++;
        if (hd_follow_batch_len(b) >= FOLLOW_BATCH || pos > last) {
            rc = apply(n, b);
            if (rc == 0)
                n->fcursor = pos;
        }
    }
    if (rc == HD_ERR_SCHEMA || rc == HD_ERR_CONNECT) { /* what was read before still counts */
        if (apply(n, b) == 0)
            n->fcursor = pos;
    }
    hd_follow_batch_free(b);
    return rc;
}

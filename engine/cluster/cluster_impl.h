/* Private to engine/cluster/: the NATS connection shared by clients and nodes. */
#ifndef HD_CLUSTER_IMPL_H
#define HD_CLUSTER_IMPL_H

#include <nats/nats.h>

#include "cluster.h"

struct hd_cluster_conn {
    natsConnection *nc;
    jsCtx *js;
    kvStore *kv;
    struct hd_cluster_opts o;
};

/* KV keys: "p.<n>" partition lease {"node","epoch","expires_ms"}; "cp.<n>" checkpoint
 * {"seq"}; "n.<name>" node heartbeat {"ts_ms","backlog","partitions","replayed",...}. */
#define HD_CLUSTER_JS_WAIT_MS 5000

/* control.c: creates the control stream when it does not exist. Returns 0 or HD_ERR_CONNECT. */
/* A stream Herald uses: file storage, limits retention, the connection's replicas. */
struct hd_cn_stream {
    const char *name, *subject;
    uint64_t max_age_ms;    /* 0: no age limit */
    uint64_t dup_window_ms; /* MsgId de-duplication window; 0: the server's default */
    int64_t max_per_subject; /* messages kept per subject; 0: no limit */
};

/* Creates the stream def describes unless it exists. Returns 0, or HD_ERR_CONNECT with why
 * set. */
int hd_cn_ensure_stream(struct hd_cluster_conn *c, const struct hd_cn_stream *def, char *why,
                        size_t cap);

/* Publishes data to subj with the schema header (and Nats-Msg-Id msg_id unless NULL) and
 * waits for JetStream's acknowledgement (HD_CLUSTER_JS_WAIT_MS). Returns 0 with *seq (and
 * *duplicate unless NULL) set, -ENOMEM, or HD_ERR_CONNECT with why set. */
int hd_cn_publish(struct hd_cluster_conn *c, const char *subj, const char *data, size_t len,
                  const char *msg_id, uint64_t *seq, int *duplicate, char *why, size_t cap);

/* 64-bit FNV-1a of n bytes: names a subject after its key. */
uint64_t hd_cn_fnv64(const void *p, size_t n);

int hd_cn_ensure_ctl_stream(struct hd_cluster_conn *c, char *why, size_t cap);

#endif

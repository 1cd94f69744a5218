/* Private to the node's files (node.c, lease.c): its state. */
#ifndef HD_NODE_IMPL_H
#define HD_NODE_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "cluster_impl.h"

/* One ownership of a partition by this node, for its report (the fencing evidence). */
struct hd_cn_period {
    uint64_t epoch, from_ms, to_ms;  /* wall ms */
    uint64_t sends0, sends;          /* the partition's send counter at start, sends within */
    uint64_t last_send_ms;           /* of the partition, when the period ended */
    const char *end;                 /* "lost", "released", NULL while it lasts */
};
#define HD_CN_PERIODS 8 /* the last ones kept per partition */
#define HD_CN_REPLAY_BATCH 64 /* stream messages per replay transaction */

struct hd_cn_part {
    /* The bucket's view (the watcher's mirror). */
    char owner[65];     /* "" when released or never owned */
    uint64_t epoch, expires_ms, rev;
    int present;
    uint64_t cp;        /* checkpoint: every delivery below this stream seq is terminal */
    int cp_known;
    /* This node's. */
    int owned;
    uint64_t my_rev, renew_t0;
    uint64_t rpos;      /* next stream seq to replay; 0 when caught up with the head */
    uint64_t from;      /* head messages below this are not this partition's to expand */
    uint64_t cp_written;
    struct hd_cn_period per[HD_CN_PERIODS];
    unsigned nper;                   /* periods recorded (the last HD_CN_PERIODS kept) */
};

struct hd_cn_nodeinfo {
    char name[65];
    uint64_t ts_ms, backlog;
};

struct hd_cn_seqmap {
    uint64_t local, stream;
};

struct hd_cluster_node {
    struct hd_cluster_conn *c;
    struct hd_store *st;
    struct hd_cluster_opts o;
    char name[65];
    uint64_t margin_ms;
    pthread_t thr;
    _Atomic int stop;
    kvWatcher *w;
    struct hd_cn_part *p;
    _Atomic uint64_t *valid_until;   /* per partition: sends allowed before (monotonic ms) */
    _Atomic uint64_t *sends;         /* per partition: requests written */
    _Atomic uint64_t *last_send_ms;  /* per partition: wall ms of the last one */
    struct hd_cn_nodeinfo nodes[HD_CLUSTER_MAX_NODES];
    size_t nnodes;
    uint64_t cursor, last_seq, first_seq;
    uint64_t fcursor;          /* next follow-stream sequence to apply */
    uint64_t ccursor;          /* next control-stream sequence to apply */
    uint64_t controls;         /* control operations applied */
    uint64_t ctl_blocked;      /* the control seq this version cannot read (logged once); 0 */
    struct hd_cn_seqmap *map; /* local activity seq -> stream seq, in local order */
    size_t nmap, capmap;
    uint64_t replay_nonce;
    /* Replay reader (node thread only): an ephemeral pull consumer on the activity stream
     * from rnext, and the batch it fetched (rlist, next unread at ridx). */
    natsSubscription *rsub;
    natsMsgList rlist;
    int ridx;
    uint64_t rnext;
    uint64_t rfetches, rmsgs; /* replay batches fetched, messages taken from them */
    uint64_t enqueued, replayed, refused, acquired, lost, released, backlog;
    int schema_blocked;
};

uint64_t hd_cn_mono_ms(void);
uint64_t hd_cn_map_stream(const struct hd_cluster_node *n, uint64_t local);
void hd_cn_map_prune(struct hd_cluster_node *n, uint64_t min_local);

/* lease.c */
int hd_cn_watch_start(struct hd_cluster_node *n);
void hd_cn_watch_stop(struct hd_cluster_node *n);
void hd_cn_watch(struct hd_cluster_node *n, int64_t wait_ms); /* applies bucket changes */
void hd_cn_tick(struct hd_cluster_node *n);     /* heartbeat, leases, checkpoints */
void hd_cn_release_all(struct hd_cluster_node *n);
int hd_cn_drop_all(struct hd_cluster_node *n);
/* follow.c: applies the follow stream up to its current end. Returns 0 or an error. */
int hd_cn_follow_sync(struct hd_cluster_node *n);
/* control.c: applies the control stream up to its current end. Returns 0 or an error. */
int hd_cn_control_sync(struct hd_cluster_node *n);
void hd_cn_periods_close(struct hd_cluster_node *n); /* at stop: periods still open end now */

#endif

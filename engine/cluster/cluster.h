/* Cluster mode over NATS JetStream (docs/cluster.md). Every node reads every activity from
 * the stream HERALD_ACT and expands it only into deliveries for the hosts whose partition it
 * owns; partition ownership, node heartbeats and per-partition checkpoints live in the KV
 * bucket HERALD_CLUSTER. This folder is the only user of nats.h.
 *
 * Partition of a host: hd_store_hash32(host) % partitions, host as in queue keys (lower
 * case, IDNA, no port). hd_store_hash32 is frozen (its values are on disk), so the mapping
 * is stable across versions for a given partition count. */
#ifndef HD_CLUSTER_H
#define HD_CLUSTER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "store.h"

#define HD_CLUSTER_STREAM "HERALD_ACT"
#define HD_CLUSTER_SUBJECT "herald.v1.act"
#define HD_CLUSTER_BUCKET "HERALD_CLUSTER"
#define HD_CLUSTER_FSTREAM "HERALD_FOLLOW"       /* follows: the latest operation per pair */
#define HD_CLUSTER_FSUBJECT "herald.v1.follow"  /* .<16 hex digits of the pair's hash> */
#define HD_CLUSTER_CSTREAM "HERALD_CTL"          /* operator controls: the latest per key */
#define HD_CLUSTER_CSUBJECT "herald.v1.ctl"     /* .<group>.<16 hex digits of the key's hash> */
#define HD_CLUSTER_SCHEMA_HEADER "Herald-Schema"
#define HD_CLUSTER_SCHEMA 1 /* the one message schema this version reads and writes */
#define HD_CLUSTER_MAX_PARTITIONS 4096
#define HD_CLUSTER_MAX_NODES 256

struct hd_cluster_opts {
    const char *url;          /* nats://HOST:PORT (or tls://); required */
    const char *node;         /* this node's name: [A-Za-z0-9_-]{1,64}; required for a node */
    const char *creds;        /* NATS credentials file (--cluster-creds); NULL none */
    const char *ca;           /* CA PEM for TLS to NATS (--cluster-ca); NULL none */
    unsigned partitions;      /* P; default 256. Every node and producer must agree */
    unsigned replicas;        /* stream and bucket replicas when created; default 1 */
    uint64_t lease_ms;        /* partition lease; takeover after a loss within this; 15000 */
    uint64_t heartbeat_ms;    /* heartbeat, lease renewal and checkpoint period; 1000 */
    uint64_t max_age_ms;      /* stream retention when created; default 7 days */
};

void hd_cluster_opts_default(struct hd_cluster_opts *o);
/* Checks a node name. Returns 0 or HD_ERR_INVALID. */
int hd_cluster_node_name_ok(const char *name);
/* The partition of host (host_len bytes) among p partitions. */
uint32_t hd_cluster_partition(const char *host, size_t host_len, unsigned p);

/* A client connection (producers and `herald cluster status`). */
struct hd_cluster_conn;

/* Connects, and creates the stream and the bucket when they do not exist yet. Returns 0, or
 * HD_ERR_CONNECT / HD_ERR_INVALID with why filled. */
int hd_cluster_connect(const struct hd_cluster_opts *o, struct hd_cluster_conn **out, char *why,
                       size_t why_cap);
void hd_cluster_disconnect(struct hd_cluster_conn *c); /* NULL ok */

/* Publishes one envelope (a JSON object line; checked for its shape and activity id, the
 * full check is each node's) with the schema header and the activity id as the message id,
 * and returns only after JetStream's acknowledgement: then it is durable in the stream.
 * *seq is its stream sequence, *duplicate 1 when JetStream had it already (same id within
 * the duplicate window). Returns 0, HD_ERR_INVALID (bad envelope) or HD_ERR_CONNECT, with
 * why filled. */
int hd_cluster_publish(struct hd_cluster_conn *c, const char *line, size_t len, uint64_t *seq,
                       int *duplicate, char *why, size_t why_cap);

/* Publishes one follow operation (remove 0: follow, inbox required; remove 1: unfollow) to
 * the follow stream, which keeps the latest operation per (actor, follower): every node
 * applies it to its store before it reads an activity published after the acknowledgement.
 * Returns 0 once acknowledged, HD_ERR_INVALID or HD_ERR_CONNECT with why filled. */
int hd_cluster_publish_follow(struct hd_cluster_conn *c, const char *actor, const char *follower,
                              const char *inbox, const char *shared_inbox, int remove,
                              uint64_t *seq, char *why, size_t why_cap);

/* Publishes one operator control to the control stream, which keeps the latest operation per
 * (group, key); every node applies it to its store within about a second. msg is a JSON
 * object {"op": ...} with the operation's fields (docs/cluster.md lists them); "v" (the
 * schema) is added. Returns 0 once acknowledged, HD_ERR_INVALID or HD_ERR_CONNECT with why
 * filled. */
int hd_cluster_publish_control(struct hd_cluster_conn *c, json_t *msg, uint64_t *seq, char *why,
                               size_t why_cap);

/* Writes the cluster's state as one JSON object to f: the nodes (live or not, backlog,
 * partitions), each partition's owner and checkpoint, the stream's last sequence. json 0
 * writes a table. Returns 0 or HD_ERR_CONNECT. */
int hd_cluster_status(struct hd_cluster_conn *c, FILE *f, int json);

/* A running node: a thread that keeps its leases, follows the stream and enqueues into st. */
struct hd_cluster_node;

/* Connects, drops this store's queued deliveries (they are re-derived from the stream for
 * the partitions this node acquires) and starts the node's thread. Returns 0 or an error
 * (logged). */
int hd_cluster_node_start(struct hd_store *st, const struct hd_cluster_opts *o,
                          struct hd_cluster_node **out);
/* The node's connection (thread-safe: the endpoint publishes through it). */
struct hd_cluster_conn *hd_cluster_node_conn(struct hd_cluster_node *n);
/* The runner's host gate (hd_run_opts.host_gate): 1 while this node holds a valid lease on
 * host's partition by its own monotonic clock. Thread-safe, lock-free. */
int hd_cluster_gate(void *node, const char *host, int sending);
/* Stops the node after the runner has stopped sending: writes checkpoints, releases its
 * leases so that survivors take over at once, writes its per-partition counters to report
 * (when not NULL) as one JSON line, and frees it. NULL ok. */
void hd_cluster_node_stop(struct hd_cluster_node *n, FILE *report);

#endif

/* `herald run` as a daemon: everything around hd_run() that an operator needs, kept out of
 * the command line (cli_run.c: flags only) and the runner (runner.h: delivery only):
 *   - the configuration file (--config), loaded before the flags so flags override it, and
 *     reloaded on SIGHUP (a bad file keeps the old settings and logs why);
 *   - the metrics registry handed to the runner;
 *   - the ingest endpoint (--listen, --token-file) on its own thread;
 *   - systemd readiness (READY=1, RELOADING=1, STOPPING=1, STATUS=) via $NOTIFY_SOCKET;
 *   - SIGTERM drain: the endpoint answers 503, the runner stops leasing and waits for
 *     in-flight requests up to the drain deadline, then the process exits 0.
 *
 * What a reload changes live: log level and warning interval, [metrics] top_hosts, the
 * endpoint's max_queued and retry_after, and per-host max_inflight / rate from [host]
 * sections. Everything else is read at start; a reload that changes it logs that a restart
 * is needed. */
#ifndef HD_DAEMON_H
#define HD_DAEMON_H

#include <stdint.h>

#include "cluster.h"
#include "config.h"
#include "ingest.h"
#include "runner.h"
#include "store.h"

struct hd_daemon_opts {
    const char *config_path;                    /* --config */
    const char *listen[HD_CONFIG_MAX_LISTEN];   /* --listen (replaces the file's list) */
    size_t nlisten;
    const char *token_file;                     /* --token-file */
    int64_t drain_timeout_ms;                   /* --drain-timeout; -1 = file or default */
    int64_t max_queued;                         /* --max-queued; -1 = file or default */
    int64_t top_hosts;                          /* --metrics-top-hosts; -1 = file or default */
    struct hd_config *cfg;                      /* loaded by hd_daemon_preload; owned */
    struct hd_cluster_opts cluster;             /* [cluster] and --cluster...; url NULL: off */
};

void hd_daemon_opts_init(struct hd_daemon_opts *d);
void hd_daemon_opts_fini(struct hd_daemon_opts *d); /* frees cfg if still owned */

/* Finds --config FILE (or --config=FILE) in argv and loads it into d->cfg, then copies its
 * [run] settings into o, so that flags parsed afterwards override the file. Returns 0 (also
 * when there is no --config), or -1 after printing "herald run: FILE:LINE: reason". */
int hd_daemon_preload(struct hd_daemon_opts *d, int argc, char **argv, struct hd_run_opts *o);

/* Records one daemon flag: name is the long option name without dashes ("config",
 * "listen", "token-file", "drain-timeout", "max-queued", "metrics-top-hosts", and the
 * cluster's "cluster", "node", "cluster-creds", "cluster-ca", "cluster-partitions",
 * "cluster-replicas", "cluster-lease"). Returns 0,
 * or -1 for a bad value or an unknown name. */
int hd_daemon_opt(struct hd_daemon_opts *d, const char *name, const char *arg);

/* Cluster mode (daemon_cluster.c): a --cluster flag by name (0, or -1 for a bad value or a
 * name that is not the cluster's); the [cluster] section of d->cfg into d->cluster; and the
 * node, started when d->cluster.url is set (its gate is set in o), else *node NULL. */
int hd_daemon_cluster_opt(struct hd_daemon_opts *d, const char *name, const char *arg);
void hd_daemon_cluster_preload(struct hd_daemon_opts *d);
/* hd_ingestsrv_opts.publish in cluster mode: user_data is the node. */
int hd_daemon_cluster_publish(void *node, const char *line, size_t len,
                              struct hd_ingest_result *res);
/* hd_ingestsrv_opts.publish_follow in cluster mode: user_data is the node. */
int hd_daemon_cluster_publish_follow(void *node, const char *actor, const char *follower,
                                     const char *inbox, const char *shared_inbox, int remove,
                                     char *why, size_t why_cap);
int hd_daemon_cluster_start(struct hd_store *st, struct hd_daemon_opts *d, struct hd_run_opts *o,
                            struct hd_cluster_node **node);

/* Runs hd_run(st, o, stop, sum) with everything above around it. Returns what hd_run
 * returns, or an error from setting up the endpoint (HD_ERR_INVALID: --listen without a
 * token; -errno from bind), logged. */
int hd_daemon_run(struct hd_store *st, const struct hd_run_opts *o, struct hd_daemon_opts *d,
                  _Atomic int *stop, struct hd_run_summary *sum);

#endif

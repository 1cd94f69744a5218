/* The cluster's commands (docs/cluster.md): `herald cluster status`, and `herald enqueue
 * --cluster URL`, which publishes to JetStream instead of writing a local store. */
#ifndef HD_CLI_CLUSTER_H
#define HD_CLI_CLUSTER_H

/* 1 when argv (of enqueue) asks for the cluster (an argument starting with --cluster). */
int hd_cli_cluster_wanted(int argc, char **argv);
/* `herald enqueue --cluster URL [--cluster-creds F] [--cluster-ca PEM] [FILE|-]`: one JSON
 * result line per input line, printed after JetStream acknowledged it. Exit status as
 * enqueue's. */
int hd_cli_enqueue_cluster(int argc, char **argv);
/* `herald follow add|remove --cluster URL --actor A --follower F [--inbox I]
 * [--shared-inbox S]` and `herald follow import --cluster URL [FILE|-]` (JSON lines
 * {actor, follower, inbox, shared_inbox}): published to the follow stream; every node
 * applies them. argv[0] is "follow". Returns the exit status. */
int hd_cli_follow_cluster(int argc, char **argv);
/* The operator controls with --cluster URL [--cluster-creds F] [--cluster-ca PEM]: `block
 * add|remove|import`, `allow add|remove`, `federation mode allowlist|open`, `actor set` and
 * `host pause|resume|set|reset`, with the local command's arguments, published to the
 * control stream; every node applies them to its store. argv[0] is the command group.
 * Returns the exit status (2 after a usage error naming the argument). */
int hd_cli_control_cluster(int argc, char **argv);
/* `herald cluster status --cluster URL [--json]`. */
int hd_cli_cluster(const char *db, int argc, char **argv);

#endif

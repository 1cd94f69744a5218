/* `herald stats [--json]`: the store's counters and every host's queue, retries and failures,
 * with the in-flight count a running engine publishes. */
#ifndef HD_CLI_STATS_H
#define HD_CLI_STATS_H

/* argv[0] is "stats"; db is the store directory. Returns the process exit status: 0 ok,
 * 1 failure. */
int hd_cli_stats(const char *db, int argc, char **argv);

#endif
